//! `enroll`: plan the source into the store, run the engine against the service (or
//! an in-process emulator), and leave a report and the figures of a summary.
//!
//! It prints nothing: the live view is handed in by the caller (the command line's
//! bars or log lines), and the plan or the summary is handed back to it to show.

use super::mirror::{MirrorPlan, Mirrored};
use crate::emulator::{rehearsal_credentials, Emulator, EmulatorConfig};
use crate::engine::{self, EngineOptions, RunOutcome, StopSignal};
use crate::metrics::{self, Figures, SummaryJson};
use crate::plan::{self, PlanOptions, PlanSummary};
use crate::report::{self, StoreCounts, Summary, Tally};
use crate::service::client::{Client, ClientConfig};
use crate::source::SourceSpec;
use crate::state_dir::StateDir;
use crate::store::{Account, Store};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the calls go.
pub enum Target {
    /// The service, as configured.
    Service(ClientConfig),
    /// An emulator started in this process for the run (a rehearsal).
    Emulator(EmulatorConfig),
}

impl Target {
    /// The account the calls go to, as the state directory records it.
    pub fn account(&self) -> anyhow::Result<Account> {
        Ok(match self {
            Target::Service(config) => {
                Account::service(&config.base_url()?, &config.appid, &config.bucket)
            }
            Target::Emulator(config) => Account::rehearsal(&config.appid),
        })
    }
}

/// One enroll run, fully resolved.
pub struct EnrollJob {
    pub source: SourceSpec,
    pub state_dir: PathBuf,
    pub plan: PlanOptions,
    pub engine: EngineOptions,
    /// Plan only (in a copy of the state), make no call.
    pub dry_run: bool,
    /// Bind the state to the target's account even if it recorded another
    /// (`--rebind-account`).
    pub rebind_account: bool,
    /// Where the report goes (default: `report.csv` in the state directory).
    pub report: Option<PathBuf>,
    /// The metrics file and the summary as JSON.
    pub outputs: Outputs,
    /// `--mirror`: after the adds, delete what left the source within the job's
    /// reach, at most this many (`--max-delete`).
    pub mirror: Option<crate::deletion::mirror::MaxDelete>,
}

/// What a run writes for machines besides the report.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The Prometheus text file, rewritten every `metrics_interval` and at the end.
    pub metrics_file: Option<PathBuf>,
    pub metrics_interval: Duration,
    /// The summary as JSON, written at the end.
    pub summary_json: Option<PathBuf>,
}

/// The live view of a run: shows the tally (photos and persons to do given) until
/// the receiver is sent to or dropped.
pub trait View: FnOnce(&Tally, u64, u64, Receiver<()>) + Send {}
impl<F: FnOnce(&Tally, u64, u64, Receiver<()>) + Send> View for F {}

/// What an enroll run did. Made once per run, so the size of its variants (a run's
/// tally holds its latency histogram) does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Done {
    /// A dry run: the plan (and with `--mirror` its deletions), with no call made.
    Planned(PlanSummary, Option<MirrorPlan>),
    /// A run: how it ended, with the figures of its summary.
    Ran(Finished),
}

/// The end of a run and what its summary tells.
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    /// The ending in words, as the summary and `faceenroll status` say it.
    pub words: String,
    pub counts: StoreCounts,
    pub tally: Tally,
    pub elapsed: Duration,
    pub state_dir: PathBuf,
    pub report: PathBuf,
    /// What `--mirror` deleted, or why it deleted nothing.
    pub mirror: Option<Mirrored>,
    /// Deletions `verify --repair` queued that wait for a run with `--mirror`
    /// (counted on a run without it).
    pub mirror_queued: usize,
}

impl Finished {
    /// The summary to print.
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            counts: &self.counts,
            tally: &self.tally,
            elapsed: self.elapsed,
            state_dir: &self.state_dir,
            report: Some(&self.report),
            ending: &self.words,
        }
    }
}

/// How an enroll run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every person was worked on; `failed` photos failed, `pending` are left for a
    /// later run.
    Completed { failed: u64, pending: u64 },
    /// Stopped by an error every later call would get too.
    Fatal(String),
    /// Stopped by the operator.
    Interrupted,
}

/// Why an enroll run could not go on, by when it happened: that decides whether the
/// operator has a usage problem or a stopped job to resume.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Before any call: the source, the configuration, or the state directory (e.g.
    /// in use by another job). Nothing was sent.
    #[error("{0:#}")]
    Setup(anyhow::Error),
    /// After calls were made: the progress database or the report could not be
    /// written. What was recorded stands; the next run resumes from it.
    #[error("{0:#}")]
    Run(anyhow::Error),
}

fn setup<E: Into<anyhow::Error>>(err: E) -> EnrollError {
    EnrollError::Setup(err.into())
}

fn during_run<E: Into<anyhow::Error>>(err: E) -> EnrollError {
    EnrollError::Run(err.into())
}

/// Runs an enroll job, showing its progress with `view`.
pub fn enroll(
    job: &EnrollJob,
    target: Target,
    stop: &StopSignal,
    view: impl View,
) -> Result<Done, EnrollError> {
    let started = Instant::now();
    let cannot_plan = || format!("cannot plan {}", job.source.describe());
    if job.dry_run {
        // Planned in a copy of the state: a dry run writes nothing to the job's.
        let scratch = crate::store::open_scratch_copy(Some(&job.state_dir)).map_err(setup)?;
        let summary = plan::build(scratch.store(), &job.source, &job.plan)
            .with_context(cannot_plan)
            .map_err(setup)?;
        let mirror = job
            .mirror
            .map(|max| {
                super::mirror::plan(
                    scratch.store(),
                    summary.source_health(),
                    max,
                    super::mirror::Planned::AheadOfAdds,
                )
            })
            .transpose()
            .map_err(setup)?;
        return Ok(Done::Planned(summary, mirror));
    }
    let store = Store::open(&job.state_dir).map_err(setup)?;
    super::rollback::refuse_if_rolled_back(&store).map_err(setup)?;
    store
        .bind_account(&target.account().map_err(setup)?, job.rebind_account)
        .map_err(setup)?;
    let report_path = job
        .report
        .clone()
        .unwrap_or_else(|| StateDir::new(&job.state_dir).report());
    let summary = plan::build(&store, &job.source, &job.plan)
        .with_context(cannot_plan)
        .map_err(setup)?;
    // Found now, not after every call was made: every output must be writable.
    check_writable(&report_path)
        .with_context(|| {
            format!(
                "cannot write the report {}; nothing was sent",
                report_path.display()
            )
        })
        .map_err(setup)?;
    for (path, what) in [
        (
            &job.outputs.metrics_file,
            "the metrics file (--metrics-file)",
        ),
        (&job.outputs.summary_json, "the summary (--summary-json)"),
    ] {
        if let Some(path) = path {
            metrics::check_writable_atomically(path)
                .with_context(|| {
                    format!("cannot write {what} {}; nothing was sent", path.display())
                })
                .map_err(setup)?;
        }
    }
    tracing::info!("{}", plan_line(&summary));

    // Keep the emulator alive for the run.
    let (emulator, client_config) = match target {
        Target::Service(config) => (None, config),
        Target::Emulator(config) => {
            let state_file = config.state_file.clone();
            let emulator = Emulator::start(config.clone(), "127.0.0.1:0".parse().expect("addr"))
                .with_context(|| match &state_file {
                    Some(path) => format!(
                        "cannot start the in-process emulator with state file {}",
                        path.display()
                    ),
                    None => "cannot start the in-process emulator".to_owned(),
                })
                .map_err(setup)?;
            tracing::info!(
                "rehearsal against the in-process emulator at {}",
                emulator.endpoint()
            );
            let client = ClientConfig::new(
                &emulator.endpoint(),
                &config.appid,
                "",
                rehearsal_credentials(),
            );
            (Some(emulator), client)
        }
    };
    let client = Client::new(client_config).map_err(setup)?;

    // The live figures start from what the job has settled: one count for the bars,
    // the progress lines, the summary and `faceenroll status`.
    //
    // A plan that leaves nothing to send and no person to bring in line leaves the
    // engine nothing to do: the store stays as it is, so one reading of it gives the
    // report and the counts, before the run and after.
    let idle =
        engine::queue::nothing_to_do(&store, summary.pending + summary.in_doubt).map_err(setup)?;
    // A mirror may change the store after the engine: the report is written after it.
    let (before, report_written) = if idle && job.mirror.is_none() {
        let (counts, written) = report_and_counts(&store, &report_path)?;
        (counts, Some(written))
    } else {
        (StoreCounts::read(&store).map_err(setup)?, None)
    };
    let tally = Tally::default();
    tally.settle(&before);
    let last_finished = store.last_finished().map_err(setup)?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (metrics_done_tx, metrics_done_rx) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|scope| {
        let tally = &tally;
        let (photos, persons) = (before.photos, summary.persons_with_work as u64);
        scope.spawn(move || view(tally, photos, persons, done_rx));
        if let Some(path) = &job.outputs.metrics_file {
            let (client, summary) = (&client, &summary);
            let interval = job.outputs.metrics_interval.max(Duration::from_millis(100));
            scope.spawn(move || loop {
                let figures = Figures::during(
                    summary,
                    tally,
                    client.calls_by_class(),
                    started.elapsed(),
                    last_finished,
                )
                .of_shard(job.plan.shard);
                write_metrics(path, &figures);
                match metrics_done_rx.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            });
        }
        let outcome = if !idle {
            engine::run(&store, &client, &job.engine, stop, tally)
        } else if stop.interrupted() {
            Ok(RunOutcome::Interrupted)
        } else {
            Ok(RunOutcome::Finished)
        };
        let _ = done_tx.send(());
        let _ = metrics_done_tx.send(());
        outcome
    })
    .map_err(during_run)?;

    // Deletions come after the adds, and only after a run that made them all.
    let mirror = match (job.mirror, &outcome) {
        (Some(max), RunOutcome::Finished) => {
            let plan = super::mirror::plan(
                &store,
                summary.source_health(),
                max,
                super::mirror::Planned::AfterAdds,
            )
            .map_err(during_run)?;
            let pace = super::paced::PaceOptions {
                qps: job.engine.qps,
                retry: job.engine.retry.clone(),
            };
            let done =
                super::mirror::run(&store, &client, &pace, stop, plan).map_err(during_run)?;
            if let Some(held) = &done.held {
                tracing::warn!("mirror: nothing deleted: {held}");
            }
            Some(done)
        }
        _ => None,
    };
    // Faces deleted from persons still listed made room: their photos over the
    // limit go in now, in a short second pass, so the next run has nothing to do.
    let outcome = match &mirror {
        Some(done) if done.stopped.is_none() && !done.interrupted && !done.room_made.is_empty() => {
            let promoted = super::mirror::make_room(&store, &done.room_made).map_err(during_run)?;
            if promoted > 0 {
                tracing::info!(
                    "mirror: {promoted} photos over the limit take the room the deletions made"
                );
                engine::run(&store, &client, &job.engine, stop, &tally).map_err(during_run)?
            } else {
                outcome
            }
        }
        _ => outcome,
    };
    if let Some(emulator) = emulator {
        if let Err(message) = emulator.shutdown() {
            tracing::error!("{message}; the emulated account was not kept");
        }
    }
    let (counts, report_written) = match report_written {
        Some(written) => (before, written),
        None => report_and_counts(&store, &report_path)?,
    };
    let ending = match outcome {
        RunOutcome::Finished => Ending::Completed {
            failed: counts.failed,
            pending: counts.pending,
        },
        RunOutcome::Fatal(err) => Ending::Fatal(format!(
            "{err}. To go on: {}, then run the same command again to resume",
            err.remedy()
        )),
        RunOutcome::Interrupted => Ending::Interrupted,
    };
    let words = match &ending {
        Ending::Completed {
            failed: 0,
            pending: 0,
        } => "finished: every photo accounted for".to_owned(),
        Ending::Completed { failed, pending } => format!(
            "finished with {failed} failed {} and {pending} left for the next run",
            report::plural(*failed, "photo", "photos")
        ),
        Ending::Fatal(message) => format!("stopped by a fatal service error: {message}"),
        Ending::Interrupted => "interrupted; run the same command again to resume".to_owned(),
    };
    let mut meta = store.meta().map_err(during_run)?;
    let now = unix_now();
    meta.finished = Some(now);
    meta.last_outcome = Some(words.clone());
    store.put_meta(&meta).map_err(during_run)?;
    if matches!(ending, Ending::Completed { .. }) {
        store.put_last_finished(now).map_err(during_run)?;
    }
    store.flush().map_err(during_run)?;
    report_written.map_err(during_run)?;
    let finished = Finished {
        ending,
        words,
        counts,
        tally,
        elapsed: started.elapsed(),
        state_dir: job.state_dir.clone(),
        report: report_path,
        mirror_queued: match job.mirror {
            None => store.queued_mirror_deletions().map_err(during_run)?.len(),
            Some(_) => 0,
        },
        mirror,
    };
    let mirror_figures = finished.mirror.as_ref().map(Mirrored::figures);
    if let Some(path) = &job.outputs.metrics_file {
        let last_finished = store.last_finished().map_err(during_run)?;
        let figures = Figures::at_end(&finished.summary(), client.calls_by_class(), last_finished)
            .of_shard(job.plan.shard)
            .with_mirror(mirror_figures.clone());
        write_metrics(path, &figures);
    }
    if let Some(path) = &job.outputs.summary_json {
        let json = serde_json::to_string_pretty(
            &SummaryJson::new(&finished.summary())
                .of_shard(job.plan.shard)
                .with_mirror(mirror_figures),
        )
        .expect("the summary serializes");
        metrics::write_atomically(path, &(json + "\n"))
            .with_context(|| format!("cannot write the summary {}", path.display()))
            .map_err(during_run)?;
    }
    Ok(Done::Ran(finished))
}

/// Writes the report and counts the job in one reading of the store. A report that
/// cannot be written still leaves the counts (read again), so the job's ending is
/// recorded; its error is handed back beside them.
fn report_and_counts(
    store: &Store,
    path: &std::path::Path,
) -> Result<(StoreCounts, anyhow::Result<()>), EnrollError> {
    let cannot_write = || format!("cannot write the report {}", path.display());
    Ok(
        match std::fs::File::create(path)
            .with_context(cannot_write)
            .and_then(|file| report::write_report_counted(store, file).with_context(cannot_write))
        {
            Ok(counts) => (counts, Ok(())),
            Err(e) => (StoreCounts::read(store).map_err(during_run)?, Err(e)),
        },
    )
}

/// Writes the metrics file; a failure is logged, not fatal: monitoring must not stop
/// the job it watches.
fn write_metrics(path: &std::path::Path, figures: &Figures) {
    if let Err(err) = metrics::write_atomically(path, &metrics::render(figures)) {
        tracing::warn!("cannot write the metrics file {}: {err}", path.display());
    }
}

/// The plan in one log line: the work of this run and what the plan settled already.
fn plan_line(s: &plan::PlanSummary) -> String {
    let photos = (s.pending + s.in_doubt) as u64;
    let mut line = format!(
        "plan: {photos} {} of {} {} to send ({} {})",
        report::plural(photos, "photo", "photos"),
        s.persons_with_work,
        report::plural(s.persons_with_work as u64, "person", "persons"),
        s.calls.total(),
        report::plural(s.calls.total() as u64, "call", "calls"),
    );
    let settled: Vec<String> = [
        (s.enrolled, "already enrolled"),
        (s.duplicate, "duplicate"),
        (s.skipped, "skipped"),
        (s.invalid, "invalid"),
        (s.failed_before, "failed before, not retried"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !settled.is_empty() {
        line.push_str("; settled by the plan: ");
        line.push_str(&settled.join(", "));
    }
    line
}

/// Whether a file can be written, leaving it as it was: an existing file is opened
/// for appending, a new one created and removed again.
fn check_writable(path: &std::path::Path) -> std::io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
