//! `faceenroll enroll`: the job. Resolves the configuration once (flags, then
//! environment, then the `[enroll]` table of the config file, then defaults), installs
//! the signal handlers, runs [`crate::ops::enroll`] and maps its ending to an exit
//! code.

use super::emulator::{ContractArgs, FaultArgs};
use super::progress::ViewOptions;
use super::settings::{
    self, EnrollSection, JobArgs, JobSettings, PlanArgs, PlanSettings, RunArgs, RunSettings,
    ServiceArgs, ServiceSettings,
};
use super::Exit;
use crate::config::{self, ConfigFile, NetworkSettings};
use crate::emulator::EmulatorConfig;
use crate::engine::{retry::RetryPolicy, EngineOptions, StopSignal, Workers, DEFAULT_MAX_WORKERS};
use crate::limits::DEFAULT_QPS;
use crate::metrics::{self, StoppedJson};
use crate::ops::enroll::{enroll, Done, EnrollError, EnrollJob, Outputs, Target};
use crate::ping::Pinger;
use anyhow::Context as _;
use serde::Serialize;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const AFTER_HELP: &str = "\
Every setting can also come from the environment (FACEENROLL_<OPTION>, e.g.
FACEENROLL_WORKERS=4, FACEENROLL_NO_RESIZE=true, FACEENROLL_GROUPS=staff,lab) or from
the [enroll] table of the --config file (e.g. workers = 4, no_resize = true,
groups = [\"staff\", \"lab\"]); a flag wins over the environment, which wins over the
file. --print-config shows the result. Credentials come only from
TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY or the [service] table of the file.";

/// The flags of `enroll`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help_after(AFTER_HELP))]
pub struct EnrollArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    service: ServiceArgs,
    /// Plan and print what would be done; make no call and write nothing to the
    /// job's state (the plan is made in a copy of it).
    #[arg(long)]
    dry_run: bool,
    /// The state directory records the account (endpoint, AppID, bucket; a rehearsal
    /// is the emulator's) of its first call and refuses another; this binds it to the
    /// account given now, on purpose (the same account at a migrated endpoint).
    #[arg(long)]
    rebind_account: bool,
    /// Print the settings resolved from flags, environment, config file and defaults
    /// (as a config file's [enroll] table) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    contract: ContractArgs,
}

/// Every setting of `enroll`, resolved: the planning settings, the job's, how it
/// runs, and what follows from them.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollSettings {
    pub plan: PlanSettings,
    pub job: JobSettings,
    pub run: RunSettings,
    /// A fixed number of workers (`--workers`) or a ceiling for an adaptive one
    /// (`--max-workers`).
    pub workers: Workers,
    /// `--qps`, else the shard's share of the account's rate.
    pub qps: u32,
}

impl EnrollSettings {
    /// Resolves the settings ([`super::settings`]): a flag wins over the environment,
    /// which wins over the file's `[enroll]` table, which wins over the defaults.
    pub fn resolve(
        args: &EnrollArgs,
        env: settings::Env,
        file: &EnrollSection,
    ) -> anyhow::Result<EnrollSettings> {
        let plan = PlanSettings::resolve_checked(&args.plan, env, file)?;
        let job = JobSettings::resolve(&args.job, env, file)?;
        let run = RunSettings::resolve(&args.run, env, file)?;
        let workers = resolve_workers(run.workers, run.max_workers)?;
        // The account's rate is one budget: each shard paces at its share, unless
        // the rate is given (a finished shard's share is not lent to the others).
        let qps = job.qps.unwrap_or_else(|| plan.shard.share_of(DEFAULT_QPS));
        anyhow::ensure!(
            run.emulator || run.emulator_state.is_none(),
            "--emulator-state needs --emulator"
        );
        anyhow::ensure!(
            run.emulator || !args.faults.any(),
            "the rehearsal fault options (--latency-ms, --lose-answer, ...) need --emulator"
        );
        anyhow::ensure!(
            run.emulator || !args.contract.any(),
            "the contract reading options (--full-reading, --body-limit, ...) need --emulator"
        );
        Ok(EnrollSettings {
            plan,
            job,
            run,
            workers,
            qps,
        })
    }

    /// The settings as a config file's `[enroll]` table, every key filled.
    pub fn to_section(&self) -> EnrollSection {
        let mut section = EnrollSection::default();
        self.plan.write_to(&mut section);
        self.job.write_to(&mut section);
        self.run.write_to(&mut section);
        section.qps = Some(self.qps);
        if let Workers::Adaptive { max } = self.workers {
            section.max_workers = Some(max);
        }
        section
    }

    /// The settings as a config file's text: an `[enroll]` table with every key. Fails
    /// only on a path that is not UTF-8.
    #[cfg(test)]
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml_of(self.to_section())
    }

    /// The settings as `--print-config` shows them: a config file's text, with the
    /// token in the path of the ping URL shown as `***`.
    pub fn printed_toml(&self) -> Result<String, toml::ser::Error> {
        let mut enroll = self.to_section();
        if let Some(settings::TextOrNumber::Text(url)) = &mut enroll.ping_url {
            *url = crate::redact::ping_url_shown(url);
        }
        toml_of(enroll)
    }

    fn engine(&self) -> EngineOptions {
        EngineOptions {
            workers: self.workers,
            qps: self.qps,
            retry: RetryPolicy {
                max_attempts: self.run.retry_attempts,
                max_total_wait: Duration::from_secs(self.run.retry_max_wait),
                ..RetryPolicy::default()
            },
            normalize: self.plan.normalize(),
            budget: self.plan.options().budget,
            seed: None,
            group_limits: Default::default(),
            faces: self.plan.faces(),
            unanswered_limit: Duration::from_secs(self.run.unanswered_limit),
        }
    }
}

/// The environment as the service settings read it: an empty variable is unset.
fn service_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A fixed number of workers, or a ceiling for the adaptive number (each already
/// checked to lie between 1 and [`crate::engine::MAX_WORKERS`]), not both.
fn resolve_workers(fixed: Option<usize>, max: Option<usize>) -> anyhow::Result<Workers> {
    match (fixed, max) {
        (Some(n), Some(max)) => anyhow::bail!(
            "--workers {n} and --max-workers {max} are both set (by flag, environment or \
             config file): --workers fixes the number, --max-workers bounds an adaptive one; \
             set one"
        ),
        (Some(n), None) => Ok(Workers::Fixed(n)),
        (None, max) => Ok(Workers::Adaptive {
            max: max.unwrap_or(DEFAULT_MAX_WORKERS),
        }),
    }
}

/// An `[enroll]` table as a config file's text.
fn toml_of(enroll: EnrollSection) -> Result<String, toml::ser::Error> {
    #[derive(Serialize)]
    struct File {
        enroll: EnrollSection,
    }
    toml::to_string(&File { enroll })
}

pub fn run(args: EnrollArgs) -> anyhow::Result<Exit> {
    let env = |name: &str| std::env::var(name).ok();
    let (file, section) = settings::load(args.service.config.as_deref(), &env)?;
    let settings = EnrollSettings::resolve(&args, &env, &section)?;
    if args.print_config {
        let mut text = format!(
            "# faceenroll enroll {}: settings from flags, environment, config file and \
             defaults\n# HEIC/HEIF photos: {}\n",
            settings.plan.source.display(),
            crate::normalize::heif::availability()
        );
        let service = if settings.run.emulator {
            None
        } else {
            let service =
                ServiceSettings::from_sources(&args.service, &service_env, file.as_ref())?;
            let network = NetworkSettings::resolve(&service, &service_env)?;
            text.push_str(&network.comment());
            Some(config::printed_section(&service, &network))
        };
        text.push_str(&settings.printed_toml()?);
        if let Some(service) = service {
            // The credentials are never serialized.
            #[derive(Serialize)]
            struct File {
                service: settings::ServiceSection,
            }
            text.push('\n');
            text.push_str(&toml::to_string(&File { service })?);
        }
        super::print_out(&text)?;
        return Ok(Exit::Ok);
    }
    // A dry run is not the job a monitor watches.
    let pinger = match &settings.run.ping_url {
        Some(url) if !args.dry_run => Some(pinger(url, &args.service, file.as_ref())?),
        _ => None,
    };
    if let Some(pinger) = &pinger {
        pinger.start();
    }
    let result = run_job(&args, &settings, file.as_ref());
    if let (Err(err), Some(path), false) = (&result, &settings.run.summary_json, args.dry_run) {
        let stopped = StoppedJson {
            ending: format!("stopped before any call: {}", super::describe(err)),
            exit_code: crate::exit::of_error(err) as i32,
        };
        metrics::write_stopped_summary(path, &stopped);
    }
    if let Some(pinger) = &pinger {
        pinger.finish(match &result {
            Ok(exit) => *exit as i32,
            Err(err) => crate::exit::of_error(err) as i32,
        });
    }
    result
}

/// The pinger of `--ping-url`, trusting the service's CA file (`--ca-cert`, ...,
/// `SSL_CERT_FILE`) and reaching the monitor through the proxy the proxy variables
/// name for it, as the service's calls do.
fn pinger(url: &str, service: &ServiceArgs, file: Option<&ConfigFile>) -> anyhow::Result<Pinger> {
    let settings = ServiceSettings::from_sources(service, &service_env, file)?;
    let network = NetworkSettings::resolve(&settings, &service_env)?;
    Pinger::new(url, network.ca_cert.as_deref(), &service_env)
        .context("--ping-url (FACEENROLL_PING_URL, [enroll] ping_url)")
}

/// Runs the job of resolved settings (or plans it, with `--dry-run`).
fn run_job(
    args: &EnrollArgs,
    settings: &EnrollSettings,
    file: Option<&ConfigFile>,
) -> anyhow::Result<Exit> {
    let view = ViewOptions {
        bars: ViewOptions::bars_if_terminal(settings.run.no_progress),
        interval: Duration::from_secs(settings.run.progress_interval),
        state_dir: settings.job.state.clone(),
        source: settings.plan.source.display().to_string(),
        shard: Some(settings.plan.shard),
    };
    let target = if settings.run.emulator || args.dry_run {
        // A dry run makes no call: it needs no account.
        let mut config = EmulatorConfig::rehearsal();
        config.faults = args.faults.faults();
        config.seed = args.faults.seed;
        config.contract = args.contract.contract();
        config.state_file = settings.run.emulator_state.clone();
        Target::Emulator(config)
    } else {
        let service = ServiceSettings::from_sources(&args.service, &service_env, file)?;
        Target::Service(config::client_config(&service, &service_env, file)?)
    };
    let engine = settings.engine();
    let job = EnrollJob {
        source: settings.plan.source_spec(),
        state_dir: settings.job.state.clone(),
        plan: settings.plan.options(),
        engine,
        dry_run: args.dry_run,
        rebind_account: args.rebind_account,
        report: settings.run.report.clone(),
        outputs: Outputs {
            metrics_file: settings.run.metrics_file.clone(),
            metrics_interval: Duration::from_secs(settings.run.progress_interval),
            summary_json: settings.run.summary_json.clone(),
        },
        mirror: settings.plan.mirror.then_some(settings.plan.max_delete),
        strict: settings.run.strict,
    };

    let stop = Arc::new(StopSignal::default());
    let _signals = install_signal_handlers(Arc::clone(&stop))?;
    let show = |tally: &_, photos, persons, done| {
        super::progress::show(tally, photos, persons, &view, done)
    };
    let finished = match enroll(&job, target, &stop, show) {
        Ok(Done::Planned(plan, mirror)) => {
            // A reader gone from standard output (`| head`) is no failure of the plan.
            let _ = write!(std::io::stdout().lock(), "{}", super::plan::render(&plan));
            if let Some(mirror) = mirror {
                let _ = write!(std::io::stdout().lock(), "{}", mirror.render());
            }
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
            if let Some(path) = &job.outputs.summary_json {
                let stopped = StoppedJson {
                    ending: format!(
                        "stopped: {}; run the same command again to resume",
                        super::describe(&err)
                    ),
                    exit_code: Exit::Fatal as i32,
                };
                metrics::write_stopped_summary(path, &stopped);
            }
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
    if let Some(mirror) = &finished.mirror {
        let mut out = std::io::stdout().lock();
        match &mirror.held {
            Some(reason) => {
                let _ = writeln!(out, "Mirror: nothing deleted: {reason}");
            }
            None => {
                let groups = if mirror.groups_deleted > 0 {
                    format!(
                        ", {} {} taken from persons",
                        mirror.groups_deleted,
                        crate::report::plural(mirror.groups_deleted, "group", "groups"),
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "Mirror: {} {} and {} {} deleted{groups} ({})",
                    mirror.persons_deleted,
                    crate::report::plural(mirror.persons_deleted, "person", "persons"),
                    mirror.faces_deleted,
                    crate::report::plural(mirror.faces_deleted, "face", "faces"),
                    crate::report::count(mirror.calls, "call", "calls")
                );
            }
        }
        for (person, why) in &mirror.left {
            let _ = writeln!(out, "  {person}: {why}");
        }
        for (person, why) in &mirror.still_left {
            let _ = writeln!(
                out,
                "  {person}: left the source and stays on the service, as an earlier run \
                 left it: {why}"
            );
        }
        if mirror.failed > 0 {
            let _ = writeln!(
                out,
                "Mirror: {} {} failed (the log says why); the next run with --mirror tries \
                 again",
                mirror.failed,
                crate::report::plural(mirror.failed, "deletion", "deletions"),
            );
        }
        if let Some(err) = &mirror.stopped {
            let _ = writeln!(
                out,
                "Mirror stopped: {err}; the next run with --mirror goes on"
            );
        }
        if mirror.interrupted {
            let _ = writeln!(
                out,
                "Mirror interrupted; the next run with --mirror goes on"
            );
        }
    }
    for gone in &finished.gone_sources {
        let _ = writeln!(
            std::io::stdout().lock(),
            "Source gone: {gone} is no longer a source of the job (with --mirror, the run's \
             source is the job's whole source)"
        );
    }
    if finished.mirror_queued > 0 {
        let _ = writeln!(
            std::io::stdout().lock(),
            "Mirror: {} {} queued by verify --repair {} for a run with --mirror",
            finished.mirror_queued,
            crate::report::plural(finished.mirror_queued as u64, "deletion", "deletions"),
            if finished.mirror_queued == 1 {
                "waits"
            } else {
                "wait"
            }
        );
    }
    Ok(finished.exit)
}

/// The first Ctrl-C, SIGTERM or SIGHUP asks the job to stop gracefully; a second one
/// ends the process at once (the progress database stays consistent: sled recovers
/// its log). A closed terminal (SIGHUP) ends a job as an operator's stop does, with
/// the summary, the report and the end ping, not with a default death.
pub(super) fn install_signal_handlers(
    stop: Arc<StopSignal>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let asked = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
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
    use crate::engine::MAX_WORKERS;
    use crate::limits::MAX_REQUEST_BYTES;
    use crate::normalize::NormalizeOptions;
    use crate::source::Layout;
    use crate::store::DEFAULT_STATE_DIR;
    use clap::Parser as _;
    use std::path::PathBuf;

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
        assert_eq!(s.job.state, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(
            s.workers,
            Workers::Adaptive {
                max: DEFAULT_MAX_WORKERS
            }
        );
        assert_eq!(s.qps, DEFAULT_QPS);
        assert_eq!(s.plan.layout, Layout::Person);
        assert!(s.plan.groups.is_empty());
        assert!(s.plan.normalize().enabled && !s.plan.no_content_check && !s.plan.retry_failed);
        assert_eq!(s.plan.normalize(), NormalizeOptions::default());
        assert_eq!(s.plan.max_request_bytes, MAX_REQUEST_BYTES);
        assert!(!s.run.emulator && !s.run.no_progress);
        assert_eq!(s.run.progress_interval, 60);
    }

    #[test]
    fn the_file_fills_what_flags_and_environment_leave() {
        let s = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(FILE)).unwrap();
        assert_eq!(s.job.state, PathBuf::from("/file/state"));
        assert_eq!(s.plan.groups, ["file-group"]);
        assert_eq!(s.plan.layout, Layout::GroupPerson);
        assert!(!s.plan.normalize().enabled);
        assert!(s.plan.retry_failed);
        assert_eq!(
            (s.workers, s.qps, s.plan.normalize().max_edge),
            (Workers::Fixed(3), 20, 1000)
        );
        assert_eq!(s.run.progress_interval, 300);
        assert!(s.run.emulator);
        assert_eq!(s.run.metrics_file, Some(PathBuf::from("/file/fe.prom")));
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
            s.plan.normalize().enabled,
            "FACEENROLL_NO_RESIZE=false beats the file's true"
        );
        assert!(!s.plan.retry_failed);
        assert!(s.run.no_progress);

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
        assert!(!s.plan.normalize().enabled && s.plan.retry_failed);
        assert_eq!(s.job.state, PathBuf::from("/flag/state"));
        assert_eq!(
            (s.workers, s.qps, s.plan.normalize().max_edge),
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
            &env(&[("FACEENROLL_RETRY_ATTEMPTS", "0")]),
            &EnrollSection::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "FACEENROLL_RETRY_ATTEMPTS=0: must be at least 1 (--retry-attempts)"
        );
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
    fn help_names_each_variable_once_and_never_an_unset_value() {
        use clap::CommandFactory as _;
        let mut cli = crate::cli::Cli::command();
        let help = cli
            .find_subcommand_mut("enroll")
            .unwrap()
            .render_long_help()
            .to_string();
        // As one line: clap wraps the help at the terminal's width.
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for var in [
            "[env: FACEENROLL_WORKERS]",
            "[env: FACEENROLL_MAX_WORKERS]",
            "[env: FACEENROLL_METRICS_FILE]",
            "[env: FACEENROLL_NO_RESIZE=true]",
            "[env: FACEENROLL_GROUPS, comma separated]",
            "[env: FACEENROLL_CONNECT_TIMEOUT]",
        ] {
            assert_eq!(help.matches(var).count(), 1, "{var}: {help}");
        }
        assert!(!help.contains("=]"), "{help}");
    }

    #[test]
    fn printed_settings_read_back_as_a_config_file() {
        let s = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(FILE)).unwrap();
        let text = s.to_toml().unwrap();
        let again = EnrollSettings::resolve(&args(&[]), &env(&[]), &section(&text)).unwrap();
        assert_eq!(again, s);
    }
}
