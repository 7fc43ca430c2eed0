//! `faceenroll enroll`: the job. Resolves the configuration once (flags, then environment,
//! then the `[enroll]` table of the config file, then defaults), installs the signal
//! handlers, runs [`crate::ops::enroll`] and maps its ending to an exit code.

use super::plan::PlanArgs;
use super::progress::ViewOptions;
use super::Exit;
use crate::config::{ConfigFile, ServiceArgs, ServiceOptions};
use crate::emulator::EmulatorConfig;
use crate::engine::{retry::RetryPolicy, EngineOptions, StopSignal, DEFAULT_WORKERS};
use crate::limits::DEFAULT_QPS;
use crate::normalize::NormalizeOptions;
use crate::ops::enroll::{enroll, Ending, EnrollJob, Target};
use crate::plan::PlanOptions;
use crate::store::DEFAULT_STATE_DIR;
use anyhow::Context as _;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const AFTER_HELP: &str = "\
Every option can also come from the environment (FACEENROLL_<OPTION>, e.g.
FACEENROLL_WORKERS) or from the [enroll] table of the --config file; a flag wins over
the environment, which wins over the file. Credentials come only from
TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY or the [service] table of the file.

Exit codes:
  0    everything accounted for, no failure
  1    finished with failed photos (see the report)
  2    usage, configuration or input error before any call
  3    stopped by a fatal service error (resumable: fix it, run again)
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
    #[arg(long, value_name = "DIR", env = "FACEENROLL_STATE")]
    state: Option<PathBuf>,
    /// Plan and print what would be done; make no call.
    #[arg(long)]
    dry_run: bool,
    /// Rehearse against an emulator started in this process (no account needed).
    #[arg(long)]
    emulator: bool,
    /// Worker threads, each enrolling one person at a time [default: 8].
    #[arg(long, value_name = "N", env = "FACEENROLL_WORKERS")]
    workers: Option<usize>,
    /// Calls per second in all, the service's cap [default: 50]; 0 is unlimited.
    #[arg(long, value_name = "N", env = "FACEENROLL_QPS")]
    qps: Option<u32>,
    /// Attempts of one call before its photos count as failed for this run
    /// [default: 6].
    #[arg(long, value_name = "N", env = "FACEENROLL_RETRY_ATTEMPTS")]
    retry_attempts: Option<u32>,
    /// Seconds one call may spend waiting between its attempts [default: 60].
    #[arg(long, value_name = "SECS", env = "FACEENROLL_RETRY_MAX_WAIT")]
    retry_max_wait: Option<u64>,
    /// Largest photo sent as is, in bytes; larger ones are re-encoded [default:
    /// 300000].
    #[arg(long, value_name = "BYTES", env = "FACEENROLL_MAX_PHOTO_BYTES")]
    max_photo_bytes: Option<u64>,
    /// Longest edge in pixels of a photo sent; larger ones are scaled down
    /// [default: 2048].
    #[arg(long, value_name = "PX", env = "FACEENROLL_MAX_EDGE")]
    max_edge: Option<u32>,
    /// JPEG quality of re-encoded photos, 1-100 [default: 90].
    #[arg(long, value_name = "Q", env = "FACEENROLL_JPEG_QUALITY")]
    jpeg_quality: Option<u8>,
    /// Write the report here [default: report.csv in the state directory].
    #[arg(long, value_name = "PATH", env = "FACEENROLL_REPORT")]
    report: Option<PathBuf>,
    /// No progress bars, even at a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Seconds between progress log lines when stderr is not a terminal [default: 60].
    #[arg(long, value_name = "SECS", env = "FACEENROLL_PROGRESS_INTERVAL")]
    progress_interval: Option<u64>,
}

/// The `[enroll]` table of the config file: the same options as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollSection {
    state: Option<PathBuf>,
    workers: Option<usize>,
    qps: Option<u32>,
    retry_attempts: Option<u32>,
    retry_max_wait: Option<u64>,
    max_photo_bytes: Option<u64>,
    max_edge: Option<u32>,
    jpeg_quality: Option<u8>,
    report: Option<PathBuf>,
    progress_interval: Option<u64>,
}

pub fn run(args: EnrollArgs) -> anyhow::Result<Exit> {
    let file = args
        .service
        .config
        .as_deref()
        .map(ConfigFile::load)
        .transpose()?;
    let section: EnrollSection = match &file {
        Some(f) => f.section("enroll")?.unwrap_or_default(),
        None => EnrollSection::default(),
    };
    let state_dir = args
        .state
        .or(section.state)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let defaults = NormalizeOptions::default();
    let mut normalize = NormalizeOptions {
        enabled: !args.plan.no_resize,
        max_bytes: args
            .max_photo_bytes
            .or(section.max_photo_bytes)
            .unwrap_or(defaults.max_bytes),
        max_edge: args
            .max_edge
            .or(section.max_edge)
            .unwrap_or(defaults.max_edge),
        jpeg_quality: args
            .jpeg_quality
            .or(section.jpeg_quality)
            .unwrap_or(defaults.jpeg_quality),
    };
    anyhow::ensure!(
        (1..=100).contains(&normalize.jpeg_quality),
        "--jpeg-quality must be between 1 and 100"
    );
    normalize.max_bytes = normalize.max_bytes.max(1);
    let retry_defaults = RetryPolicy::default();
    let engine = EngineOptions {
        workers: args
            .workers
            .or(section.workers)
            .unwrap_or(DEFAULT_WORKERS)
            .max(1),
        qps: args.qps.or(section.qps).unwrap_or(DEFAULT_QPS),
        retry: RetryPolicy {
            max_attempts: args
                .retry_attempts
                .or(section.retry_attempts)
                .unwrap_or(retry_defaults.max_attempts)
                .max(1),
            max_total_wait: args
                .retry_max_wait
                .or(section.retry_max_wait)
                .map_or(retry_defaults.max_total_wait, Duration::from_secs),
            ..retry_defaults
        },
        normalize,
        max_request_bytes: args.plan.max_request_bytes,
        seed: None,
    };
    let view = ViewOptions {
        bars: ViewOptions::bars_if_terminal(args.no_progress),
        interval: Duration::from_secs(
            args.progress_interval
                .or(section.progress_interval)
                .unwrap_or(60)
                .max(1),
        ),
        state_dir: state_dir.clone(),
    };
    let target = if args.emulator {
        Target::Emulator(EmulatorConfig::rehearsal())
    } else if args.dry_run {
        // A dry run makes no call: it needs no account.
        Target::Emulator(EmulatorConfig::rehearsal())
    } else {
        let options = ServiceOptions::resolve(
            &args.service,
            &|name| std::env::var(name).ok(),
            file.as_ref(),
        )?;
        Target::Service(options.client_config())
    };
    let job = EnrollJob {
        source: args.plan.source_spec(),
        state_dir,
        plan: PlanOptions {
            normalize: engine.normalize,
            ..args.plan.options()
        },
        engine,
        dry_run: args.dry_run,
        report: args.report.or(section.report),
        view,
    };

    let stop = Arc::new(StopSignal::default());
    let _signals = install_signal_handlers(Arc::clone(&stop))?;
    let ending = enroll(&job, target, &stop)?;
    Ok(match ending {
        Ending::DryRun
        | Ending::Completed {
            failed: 0,
            pending: 0,
        } => Exit::Ok,
        Ending::Completed { .. } => Exit::Failures,
        Ending::Fatal(message) => {
            eprintln!("error: {message}");
            Exit::Fatal
        }
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
            tracing::warn!(
                "stopping: finishing the calls in flight (press Ctrl-C again to stop at once)"
            );
            stop.interrupt();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }))
}
