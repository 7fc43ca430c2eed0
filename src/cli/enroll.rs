//! `faceenroll enroll`: the job. Resolves the configuration once (flags, then
//! environment, then the `[enroll]` table of the config file, then defaults), installs
//! the signal handlers, runs [`crate::ops::enroll`] and maps its ending to an exit
//! code.

use super::emulator::{ContractArgs, FaultArgs};
use super::plan::{PlanArgs, PlanSettings};
use super::progress::ViewOptions;
use super::settings::{self, EnrollSection, Layers};
use super::Exit;
use crate::config::{self, NetworkSettings, ServiceArgs};
use crate::emulator::EmulatorConfig;
use crate::engine::{
    retry::RetryPolicy, EngineOptions, StopSignal, Workers, DEFAULT_MAX_WORKERS, MAX_WORKERS,
};
use crate::limits::DEFAULT_QPS;
use crate::ops::enroll::{enroll, Done, Ending, EnrollError, EnrollJob, Outputs, Target};
use crate::source::Layout;
use crate::store::DEFAULT_STATE_DIR;
use anyhow::Context as _;
use serde::Serialize;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const AFTER_HELP: &str = "\
Every setting can also come from the environment (FACEENROLL_<OPTION>, e.g.
FACEENROLL_WORKERS=4, FACEENROLL_NO_RESIZE=true, FACEENROLL_GROUPS=staff,lab) or from
the [enroll] table of the --config file (e.g. workers = 4, no_resize = true,
groups = [\"staff\", \"lab\"]); a flag wins over the environment, which wins over the
file. --print-config shows the result. Credentials come only from
TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY or the [service] table of the file.

Exit codes:
  0    everything accounted for, no failure
  1    finished with failed photos (see the report)
  2    usage, configuration or input error before any call, or the state
       directory is in use by another job
  3    stopped by a fatal error: the service refused the account or credentials
       or could not be reached (certificate, proxy, DNS, refused connection), or
       the progress database could not be written (resumable: fix it, run again)
  130  interrupted (resumable: run again)";

/// The flags of `enroll`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct EnrollArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    service: ServiceArgs,
    /// The job's state directory: progress database, report, lock [default:
    /// ./faceenroll-state].
    #[arg(
        long,
        value_name = "DIR",
        env = "FACEENROLL_STATE",
        hide_env_values = true
    )]
    state: Option<PathBuf>,
    /// Plan and print what would be done; make no call.
    #[arg(long)]
    dry_run: bool,
    /// Print the settings resolved from flags, environment, config file and defaults
    /// (as a config file's [enroll] table) and exit.
    #[arg(long)]
    print_config: bool,
    /// Rehearse against an emulator started in this process (no account needed)
    /// [env: FACEENROLL_EMULATOR=true].
    #[arg(long)]
    emulator: bool,
    /// With --emulator: keep the emulated account in this JSON file, so a rehearsal
    /// can be run again against the same account (e.g. to watch a resume).
    #[arg(
        long,
        value_name = "FILE",
        env = "FACEENROLL_EMULATOR_STATE",
        hide_env_values = true
    )]
    emulator_state: Option<PathBuf>,
    /// A fixed number of workers, each enrolling one person at a time with one call
    /// in flight [default: as many as the service's latency and the rate need, up to
    /// --max-workers].
    #[arg(
        long,
        value_name = "N",
        env = "FACEENROLL_WORKERS",
        hide_env_values = true
    )]
    workers: Option<usize>,
    /// The most workers (calls in flight) the job starts as it measures the
    /// service's latency [default: 128, enough for 50 calls/s at 2 s per call].
    #[arg(long, value_name = "N", env = "FACEENROLL_MAX_WORKERS")]
    max_workers: Option<usize>,
    /// Calls per second in all, the service's cap [default: 50]; 0 is unlimited.
    /// With --shard I/N and no --qps, each shard paces at 50 / N (at least 1), so N
    /// shards together keep to the account's cap; a finished shard's share is not
    /// lent to the others. For more shards than that serves well, give --qps.
    #[arg(long, value_name = "N", env = "FACEENROLL_QPS", hide_env_values = true)]
    qps: Option<u32>,
    /// Attempts of one call before its photos count as failed for this run
    /// [default: 6].
    #[arg(long, value_name = "N", env = "FACEENROLL_RETRY_ATTEMPTS", hide_env_values = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    retry_attempts: Option<u32>,
    /// Seconds one call may spend waiting between its attempts [default: 60].
    #[arg(
        long,
        value_name = "SECS",
        env = "FACEENROLL_RETRY_MAX_WAIT",
        hide_env_values = true
    )]
    retry_max_wait: Option<u64>,
    /// Write the report here [default: report.csv in the state directory].
    #[arg(
        long,
        value_name = "PATH",
        env = "FACEENROLL_REPORT",
        hide_env_values = true
    )]
    report: Option<PathBuf>,
    /// Write the run's figures here in the Prometheus text format (for
    /// node_exporter's textfile collector), at every progress interval and at the end.
    #[arg(long, value_name = "PATH", env = "FACEENROLL_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
    /// Write the summary here as JSON at the end of the run.
    #[arg(long, value_name = "PATH", env = "FACEENROLL_SUMMARY_JSON")]
    summary_json: Option<PathBuf>,
    /// No progress bars, even at a terminal [env: FACEENROLL_NO_PROGRESS=true].
    #[arg(long)]
    no_progress: bool,
    /// Seconds between progress log lines when stderr is not a terminal [default: 60].
    #[arg(long, value_name = "SECS", env = "FACEENROLL_PROGRESS_INTERVAL", hide_env_values = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    progress_interval: Option<u64>,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    contract: ContractArgs,
}

/// Every setting of `enroll`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollSettings {
    pub plan: PlanSettings,
    pub state: PathBuf,
    pub emulator: bool,
    pub emulator_state: Option<PathBuf>,
    pub workers: Workers,
    pub qps: u32,
    pub retry_attempts: u32,
    pub retry_max_wait: u64,
    pub report: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub no_progress: bool,
    pub progress_interval: u64,
}

impl EnrollSettings {
    /// Resolves the settings: a flag wins over the environment, which wins over the
    /// file's `[enroll]` table, which wins over the defaults. Valued flags read their
    /// environment variable through clap; `env` supplies the boolean switches and
    /// `FACEENROLL_GROUPS`, which a flag cannot express.
    pub fn resolve(
        args: &EnrollArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: &EnrollSection,
    ) -> anyhow::Result<EnrollSettings> {
        let layers = Layers { env, file };
        // Flags and the environment are checked by clap; the file's values here.
        for (key, value) in [
            ("workers", file.workers.map(|v| v as u64)),
            ("retry_attempts", file.retry_attempts.map(u64::from)),
            ("max_photo_bytes", file.max_photo_bytes),
            ("max_edge", file.max_edge.map(u64::from)),
            ("progress_interval", file.progress_interval),
        ] {
            anyhow::ensure!(
                value != Some(0),
                "[enroll] {key} = 0: must be at least 1 (--{})",
                key.replace('_', "-")
            );
        }
        let plan = PlanSettings::resolve(&args.plan, &layers)?;
        let shard = plan.shard;
        let retry = RetryPolicy::default();
        let settings = EnrollSettings {
            plan,
            state: args
                .state
                .clone()
                .or_else(|| file.state.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            emulator: layers.switch(args.emulator, "FACEENROLL_EMULATOR", file.emulator)?,
            emulator_state: args
                .emulator_state
                .clone()
                .or_else(|| file.emulator_state.clone()),
            workers: resolve_workers(
                args.workers.or(file.workers),
                args.max_workers.or(file.max_workers),
            )?,
            // The account's rate is one budget: each shard paces at its share, unless
            // the rate is given (a finished shard's share is not lent to the others).
            qps: args
                .qps
                .or(file.qps)
                .unwrap_or_else(|| shard.share_of(DEFAULT_QPS)),
            retry_attempts: args
                .retry_attempts
                .or(file.retry_attempts)
                .unwrap_or(retry.max_attempts)
                .max(1),
            retry_max_wait: args
                .retry_max_wait
                .or(file.retry_max_wait)
                .unwrap_or(retry.max_total_wait.as_secs()),
            report: args.report.clone().or_else(|| file.report.clone()),
            metrics_file: args
                .metrics_file
                .clone()
                .or_else(|| file.metrics_file.clone()),
            summary_json: args
                .summary_json
                .clone()
                .or_else(|| file.summary_json.clone()),
            no_progress: layers.switch(
                args.no_progress,
                "FACEENROLL_NO_PROGRESS",
                file.no_progress,
            )?,
            progress_interval: args
                .progress_interval
                .or(file.progress_interval)
                .unwrap_or(60)
                .max(1),
        };
        anyhow::ensure!(
            settings.emulator || settings.emulator_state.is_none(),
            "--emulator-state needs --emulator"
        );
        anyhow::ensure!(
            settings.emulator || !args.faults.any(),
            "the rehearsal fault options (--latency-ms, --lose-answer, ...) need --emulator"
        );
        anyhow::ensure!(
            settings.emulator || !args.contract.any(),
            "the contract reading options (--full-reading, --body-limit, ...) need --emulator"
        );
        Ok(settings)
    }

    /// The settings as a config file's `[enroll]` table, every key filled.
    pub fn to_section(&self) -> EnrollSection {
        let layout = <Layout as clap::ValueEnum>::to_possible_value(&self.plan.layout)
            .map(|v| v.get_name().to_owned());
        EnrollSection {
            state: Some(self.state.clone()),
            groups: Some(self.plan.groups.clone()),
            layout,
            follow_symlinks: Some(self.plan.follow_symlinks),
            no_content_check: Some(!self.plan.content_check),
            no_resize: Some(!self.plan.normalize.enabled),
            max_request_bytes: Some(self.plan.max_request_bytes),
            retry_failed: Some(self.plan.retry_failed),
            allow_empty: Some(self.plan.allow_empty),
            emulator: Some(self.emulator),
            emulator_state: self.emulator_state.clone(),
            workers: match self.workers {
                Workers::Fixed(n) => Some(n),
                Workers::Adaptive { .. } => None,
            },
            max_workers: match self.workers {
                Workers::Fixed(_) => None,
                Workers::Adaptive { max } => Some(max),
            },
            qps: Some(self.qps),
            shard: Some(self.plan.shard.to_string()),
            retry_attempts: Some(self.retry_attempts),
            retry_max_wait: Some(self.retry_max_wait),
            max_photo_bytes: Some(self.plan.normalize.max_bytes),
            max_edge: Some(self.plan.normalize.max_edge),
            jpeg_quality: Some(self.plan.normalize.jpeg_quality),
            report: self.report.clone(),
            metrics_file: self.metrics_file.clone(),
            summary_json: self.summary_json.clone(),
            no_progress: Some(self.no_progress),
            progress_interval: Some(self.progress_interval),
        }
    }

    /// The settings as a config file's text: an `[enroll]` table with every key. Fails
    /// only on a path that is not UTF-8.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        #[derive(Serialize)]
        struct File {
            enroll: EnrollSection,
        }
        toml::to_string(&File {
            enroll: self.to_section(),
        })
    }

    fn engine(&self) -> EngineOptions {
        EngineOptions {
            workers: self.workers,
            qps: self.qps,
            retry: RetryPolicy {
                max_attempts: self.retry_attempts,
                max_total_wait: Duration::from_secs(self.retry_max_wait),
                ..RetryPolicy::default()
            },
            normalize: self.plan.normalize,
            max_request_bytes: self.plan.max_request_bytes,
            seed: None,
            group_limits: Default::default(),
        }
    }
}

/// The environment as the service settings read it: an empty variable is unset.
fn service_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A fixed number of workers, or a ceiling for the adaptive number; each between 1
/// and [`MAX_WORKERS`].
fn resolve_workers(fixed: Option<usize>, max: Option<usize>) -> anyhow::Result<Workers> {
    let check = |name: &str, n: usize| {
        anyhow::ensure!(
            (1..=MAX_WORKERS).contains(&n),
            "{name} {n}: expected 1 to {MAX_WORKERS} (each worker is a thread)"
        );
        Ok(())
    };
    match (fixed, max) {
        (Some(n), Some(max)) => anyhow::bail!(
            "--workers {n} and --max-workers {max} are both set (by flag, environment or \
             config file): --workers fixes the number, --max-workers bounds an adaptive one; \
             set one"
        ),
        (Some(n), None) => {
            check("--workers", n)?;
            Ok(Workers::Fixed(n))
        }
        (None, max) => {
            let max = max.unwrap_or(DEFAULT_MAX_WORKERS);
            check("--max-workers", max)?;
            Ok(Workers::Adaptive { max })
        }
    }
}

pub fn run(args: EnrollArgs) -> anyhow::Result<Exit> {
    let (file, section) = settings::load(args.service.config.as_deref())?;
    let env = |name: &str| std::env::var(name).ok();
    let settings = EnrollSettings::resolve(&args, &env, &section)?;
    if args.print_config {
        println!(
            "# faceenroll enroll {}: settings from flags, environment, config file and defaults",
            settings.plan.source.display()
        );
        let service = if settings.emulator {
            None
        } else {
            let network = NetworkSettings::resolve(&args.service, &service_env, file.as_ref())?;
            print!("{}", network.comment());
            Some(config::resolved_section(
                &args.service,
                &service_env,
                file.as_ref(),
            )?)
        };
        print!("{}", settings.to_toml()?);
        if let Some(service) = service {
            // The credentials are never serialized.
            #[derive(Serialize)]
            struct File {
                service: config::ServiceSection,
            }
            print!("\n{}", toml::to_string(&File { service })?);
        }
        return Ok(Exit::Ok);
    }

    let view = ViewOptions {
        bars: ViewOptions::bars_if_terminal(settings.no_progress),
        interval: Duration::from_secs(settings.progress_interval),
        state_dir: settings.state.clone(),
        source: settings.plan.source.display().to_string(),
    };
    let target = if settings.emulator || args.dry_run {
        // A dry run makes no call: it needs no account.
        let mut config = EmulatorConfig::rehearsal();
        config.faults = args.faults.faults();
        config.seed = args.faults.seed;
        config.contract = args.contract.contract();
        config.state_file = settings.emulator_state.clone();
        Target::Emulator(config)
    } else {
        Target::Service(config::client_config(
            &args.service,
            &service_env,
            file.as_ref(),
        )?)
    };
    let engine = settings.engine();
    let job = EnrollJob {
        source: settings.plan.source_spec(),
        state_dir: settings.state.clone(),
        plan: settings.plan.options(),
        engine,
        dry_run: args.dry_run,
        report: settings.report.clone(),
        outputs: Outputs {
            metrics_file: settings.metrics_file.clone(),
            metrics_interval: Duration::from_secs(settings.progress_interval),
            summary_json: settings.summary_json.clone(),
        },
    };

    let stop = Arc::new(StopSignal::default());
    let _signals = install_signal_handlers(Arc::clone(&stop))?;
    let show = |tally: &_, photos, persons, done| {
        super::progress::show(tally, photos, persons, &view, done)
    };
    let finished = match enroll(&job, target, &stop, show) {
        Ok(Done::Planned(plan)) => {
            // A reader gone from standard output (`| head`) is no failure of the plan.
            let _ = write!(std::io::stdout().lock(), "{}", super::plan::render(&plan));
            return Ok(Exit::Ok);
        }
        Ok(Done::Ran(finished)) => finished,
        Err(EnrollError::Setup(err)) => return Err(err),
        Err(EnrollError::Run(err)) => {
            eprintln!(
                "error: {}\nThe job stopped; once this is fixed, run the same command again \
                 to resume.",
                super::describe(&err)
            );
            return Ok(Exit::Fatal);
        }
    };
    // A reader gone from standard output must not turn a finished job into a panic:
    // the summary is also in the state directory's report and `faceenroll status`.
    let _ = write!(std::io::stdout().lock(), "{}", finished.summary());
    let shard = settings.plan.shard;
    if shard.is_split() {
        let share = if settings.qps == shard.share_of(DEFAULT_QPS) {
            format!(
                " (the account's {DEFAULT_QPS} split between {} shards; a finished shard's \
                 share is not lent to the others: --qps sets it)",
                shard.count()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            std::io::stdout().lock(),
            "Shard {shard}: paced at {} calls/s{share}",
            settings.qps
        );
    }
    Ok(match finished.ending {
        Ending::Completed {
            failed: 0,
            pending: 0,
        } => Exit::Ok,
        Ending::Completed { .. } => Exit::Failures,
        Ending::Fatal(_) => Exit::Fatal,
        Ending::Interrupted => Exit::Interrupted,
    })
}

/// The first Ctrl-C or SIGTERM asks the job to stop gracefully; a second one ends the
/// process at once (the progress database stays consistent: sled recovers its log).
fn install_signal_handlers(stop: Arc<StopSignal>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let asked = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&asked))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&asked))
            .context("cannot install the signal handler")?;
    }
    Ok(std::thread::spawn(move || loop {
        if asked.load(Ordering::SeqCst) {
            super::progress::interrupted();
            tracing::warn!(
                "stopping: finishing the calls in flight (press Ctrl-C again to stop at once)"
            );
            stop.interrupt();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::limits::MAX_REQUEST_BYTES;
    use crate::normalize::NormalizeOptions;
    use clap::Parser as _;

    fn args(extra: &[&str]) -> EnrollArgs {
        let mut argv = vec!["faceenroll", "enroll", "photos"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Enroll(args) => *args,
            other => panic!("parsed {other:?}"),
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn section(text: &str) -> EnrollSection {
        let file = ConfigFile::parse(std::path::Path::new("/etc/fe.toml"), text).unwrap();
        file.section("enroll").unwrap().unwrap_or_default()
    }

    const FILE: &str = "[enroll]\nstate = \"/file/state\"\ngroups = [\"file-group\"]\n\
        layout = \"group/person\"\nno_resize = true\nretry_failed = true\nworkers = 3\n\
        qps = 20\nmax_edge = 1000\nprogress_interval = 300\nemulator = true\n\
        metrics_file = \"/file/fe.prom\"\n";

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = EnrollSettings::resolve(&args(&[]), &env(&[]), &EnrollSection::default()).unwrap();
        assert_eq!(s.state, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(
            s.workers,
            Workers::Adaptive {
                max: DEFAULT_MAX_WORKERS
            }
        );
        assert_eq!(s.qps, DEFAULT_QPS);
        assert_eq!(s.plan.layout, Layout::Person);
        assert!(s.plan.groups.is_empty());
        assert!(s.plan.normalize.enabled && s.plan.content_check && !s.plan.retry_failed);
        assert_eq!(s.plan.normalize, NormalizeOptions::default());
        assert_eq!(s.plan.max_request_bytes, MAX_REQUEST_BYTES);
        assert!(!s.emulator && !s.no_progress);
        assert_eq!(s.progress_interval, 60);
    }

    #[test]
    fn the_file_fills_what_flags_and_environment_leave() {
        let s = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(FILE)).unwrap();
        assert_eq!(s.state, PathBuf::from("/file/state"));
        assert_eq!(s.plan.groups, ["file-group"]);
        assert_eq!(s.plan.layout, Layout::GroupPerson);
        assert!(!s.plan.normalize.enabled);
        assert!(s.plan.retry_failed);
        assert_eq!(
            (s.workers, s.qps, s.plan.normalize.max_edge),
            (Workers::Fixed(3), 20, 1000)
        );
        assert_eq!(s.progress_interval, 300);
        assert!(s.emulator);
        assert_eq!(s.metrics_file, Some(PathBuf::from("/file/fe.prom")));
    }

    #[test]
    fn the_environment_wins_over_the_file_and_flags_over_both() {
        const ENV: &[(&str, &str)] = &[
            ("FACEENROLL_GROUPS", "env-a, env-b"),
            ("FACEENROLL_NO_RESIZE", "false"),
            ("FACEENROLL_RETRY_FAILED", "0"),
            ("FACEENROLL_NO_PROGRESS", "yes"),
        ];
        let s = EnrollSettings::resolve(&args(&[]), &env(ENV), &section(FILE)).unwrap();
        assert_eq!(s.plan.groups, ["env-a", "env-b"]);
        assert!(
            s.plan.normalize.enabled,
            "FACEENROLL_NO_RESIZE=false beats the file's true"
        );
        assert!(!s.plan.retry_failed);
        assert!(s.no_progress);

        let flags = args(&[
            "--group",
            "flag-group",
            "--layout",
            "person",
            "--no-resize",
            "--retry-failed",
            "--state",
            "/flag/state",
            "--workers",
            "5",
            "--max-edge",
            "640",
        ]);
        let s = EnrollSettings::resolve(&flags, &env(ENV), &section(FILE)).unwrap();
        assert_eq!(s.plan.groups, ["flag-group"]);
        assert_eq!(s.plan.layout, Layout::Person);
        assert!(!s.plan.normalize.enabled && s.plan.retry_failed);
        assert_eq!(s.state, PathBuf::from("/flag/state"));
        assert_eq!(
            (s.workers, s.qps, s.plan.normalize.max_edge),
            (Workers::Fixed(5), 20, 640)
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let err = EnrollSettings::resolve(
            &args(&[]),
            &env(&[("FACEENROLL_NO_RESIZE", "maybe")]),
            &EnrollSection::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("FACEENROLL_NO_RESIZE"), "{err}");
        let err = EnrollSettings::resolve(
            &args(&[]),
            &env(&[]),
            &section("[enroll]\nlayout = \"flat\"\n"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("layout"), "{err}");
        let err = ConfigFile::parse(
            std::path::Path::new("/etc/fe.toml"),
            "[enroll]\nworkerz = 3\n",
        )
        .unwrap()
        .section::<EnrollSection>("enroll")
        .unwrap_err();
        assert!(err.to_string().contains("workerz"), "{err}");
        let err = EnrollSettings::resolve(
            &args(&["--lose-answer", "0.1"]),
            &env(&[]),
            &EnrollSection::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--emulator"), "{err}");
    }

    #[test]
    fn worker_counts_are_checked() {
        let resolve = |extra: &[&str], file: &str| {
            EnrollSettings::resolve(&args(extra), &env(&[]), &section(file))
        };
        let s = resolve(&["--max-workers", "64"], "").unwrap();
        assert_eq!(s.workers, Workers::Adaptive { max: 64 });
        for bad in [
            ["--workers", "100000"],
            ["--workers", "0"],
            ["--max-workers", "0"],
        ] {
            let err = resolve(&bad, "").unwrap_err().to_string();
            assert!(err.contains(bad[0]) && err.contains(bad[1]), "{err}");
            assert!(err.contains(&MAX_WORKERS.to_string()), "{err}");
        }
        let err = resolve(&["--workers", "4"], "[enroll]\nmax_workers = 32\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--workers 4") && err.contains("--max-workers 32"),
            "{err}"
        );
        // A ceiling prints back as a ceiling, a fixed number as a fixed number.
        for extra in [&["--max-workers", "64"][..], &["--workers", "3"][..]] {
            let s = resolve(extra, "").unwrap();
            let again = resolve(&[], &s.to_toml().unwrap()).unwrap();
            assert_eq!(again.workers, s.workers);
        }
    }

    #[test]
    fn printed_settings_read_back_as_a_config_file() {
        let s = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(FILE)).unwrap();
        let text = s.to_toml().unwrap();
        let again = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(&text)).unwrap();
        assert_eq!(again, s);
    }
}
