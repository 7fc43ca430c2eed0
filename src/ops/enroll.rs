//! `enroll`: plan the source into the store, run the engine against the service (or
//! an in-process emulator), and leave a report and the figures of a summary.
//!
//! It prints nothing: the live view is handed in by the caller (the command line's
//! bars or log lines), and the plan or the summary is handed back to it to show.

use super::mirror::{MirrorPlan, Mirrored};
use crate::emulator::{rehearsal_credentials, Emulator, EmulatorConfig};
use crate::engine::{self, EngineOptions, RunOutcome, StopSignal};
use crate::exit::Exit;
use crate::metrics::{self, Figures, SummaryJson};
use crate::output_file;
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
    /// `--strict`: photos that failed for good in earlier runs count in the exit
    /// code as new failures do.
    pub strict: bool,
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
    /// The exit code the run ends with ([`exit_of`]).
    pub exit: Exit,
    /// Failed photos known from earlier runs and unchanged: refused for good
    /// before and not retried, or rows found invalid for the same reason before.
    /// Counted among the failed photos, and in the exit code only with `--strict`.
    pub failed_earlier: u64,
    /// The ending in words, as the summary and `faceenroll status` say it.
    pub words: String,
    pub counts: StoreCounts,
    pub tally: Tally,
    pub elapsed: Duration,
    pub state_dir: PathBuf,
    pub report: PathBuf,
    /// Why the report was not written this run (the previous one is kept), for a
    /// run stopped by its state directory ([`Ending::Stopped`]).
    pub report_unwritten: Option<String>,
    /// What `--mirror` deleted, or why it deleted nothing.
    pub mirror: Option<Mirrored>,
    /// Deletions `verify --repair` queued that wait for a run with `--mirror`
    /// (counted on a run without it).
    pub mirror_queued: usize,
    /// The job's earlier sources this run's plan took out of the job.
    pub gone_sources: Vec<String>,
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
            report_unwritten: self.report_unwritten.as_deref(),
            ending: &self.words,
            stopped: match self.ending {
                Ending::Completed { .. } => crate::report::Stopped::No,
                Ending::Fatal(_) | Ending::Stopped(_) => crate::report::Stopped::ByError,
                Ending::Interrupted => crate::report::Stopped::ByOperator,
            },
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
    /// Stopped after calls were made because the progress database could not be
    /// written (a full disk, the state directory deleted): the summary comes from
    /// the run's tally in memory ([`counts_in_memory`]).
    Stopped(String),
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

/// An error before any call: a setup error, unless its class is a stop (a full
/// disk while planning, the progress database unwritable), which ends as a stopped
/// job does (exit 3).
fn setup<E: Into<anyhow::Error>>(err: E) -> EnrollError {
    let err = err.into();
    match crate::exit::of_error(&err) {
        crate::exit::Exit::Fatal => EnrollError::Run(err),
        _ => EnrollError::Setup(err),
    }
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
    output_file::check_replaceable(&report_path)
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
            output_file::check_replaceable(path)
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
    });
    // A store error from here on (a full disk, the state directory replaced) ends
    // the run with its summary from memory, not with one error line.
    macro_rules! or_stop {
        ($result:expr) => {
            match $result {
                Ok(value) => value,
                Err(err) => {
                    let err = anyhow::Error::from(err);
                    return Ok(Done::Ran(stopped_by_the_store(
                        &err,
                        &before,
                        tally,
                        job,
                        report_path,
                        started,
                    )));
                }
            }
        };
    }
    let outcome = or_stop!(outcome);

    // Deletions come after the adds, and only after a run that made them all.
    let mirror = match (job.mirror, &outcome) {
        (Some(max), RunOutcome::Finished) => {
            let plan = super::mirror::plan(
                &store,
                summary.source_health(),
                max,
                super::mirror::Planned::AfterAdds,
            );
            let plan = or_stop!(plan);
            let pace = super::paced::PaceOptions {
                qps: job.engine.qps,
                retry: job.engine.retry.clone(),
            };
            let done = or_stop!(super::mirror::run(&store, &client, &pace, stop, plan));
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
            let promoted = or_stop!(super::mirror::make_room(&store, &done.room_made));
            if promoted > 0 {
                tracing::info!(
                    "mirror: {promoted} photos over the limit take the room the deletions made"
                );
                or_stop!(engine::run(&store, &client, &job.engine, stop, &tally))
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
        Some(written) => (before.clone(), written),
        None => or_stop!(report_and_counts(&store, &report_path)),
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
    if let Some(done) = &mirror {
        tally.calls_made(done.calls);
    }
    let failed_earlier =
        ((summary.failed_before + summary.invalid_before) as u64).min(counts.failed);
    let exit = exit_of(
        &ending,
        &RunNews {
            failed_earlier,
            strict: job.strict,
            changes_failed: tally.snapshot().changes_failed,
        },
        mirror.as_ref(),
    );
    let held = mirror.as_ref().and_then(|m| m.held.as_ref());
    let words = match (&ending, held) {
        (Ending::Completed { failed, pending }, Some(held)) => format!(
            "the adds finished ({failed} failed {}, {pending} left for the next run), but \
             --mirror deleted nothing: {held}",
            report::plural(*failed, "photo", "photos")
        ),
        (
            Ending::Completed {
                failed: 0,
                pending: 0,
            },
            None,
        ) if exit == Exit::Ok => "finished: every photo accounted for".to_owned(),
        (Ending::Completed { failed, pending }, None) => {
            let earlier = if failed_earlier > 0 {
                format!(" ({failed_earlier} of them known from earlier runs)")
            } else {
                String::new()
            };
            let changes = tally.snapshot().changes_failed;
            let changes = if changes > 0 {
                format!(
                    ", {changes} {} of a person's groups, name or tag failed",
                    report::plural(changes, "change", "changes")
                )
            } else {
                String::new()
            };
            format!(
                "finished with {failed} failed {}{earlier}{changes} and {pending} left for \
                 the next run",
                report::plural(*failed, "photo", "photos")
            )
        }
        (Ending::Fatal(message), _) => format!("stopped by a fatal service error: {message}"),
        (Ending::Interrupted, _) => "interrupted; run the same command again to resume".to_owned(),
        (Ending::Stopped(message), _) => format!("stopped: {message}"),
    };
    let mut meta = or_stop!(store.meta());
    let now = unix_now();
    meta.finished = Some(now);
    meta.last_outcome = Some(words.clone());
    or_stop!(store.put_meta(&meta));
    // A run that finished its work: not one stopped, nor one whose deletions a guard
    // held back (the nightly job did not do what it is for).
    if matches!(exit, Exit::Ok | Exit::Failures) {
        or_stop!(store.put_last_finished(now));
    }
    or_stop!(store.flush());
    or_stop!(report_written);
    let finished = Finished {
        ending,
        exit,
        failed_earlier,
        words,
        counts,
        tally,
        elapsed: started.elapsed(),
        state_dir: job.state_dir.clone(),
        report: report_path,
        report_unwritten: None,
        mirror_queued: match job.mirror {
            None => store.queued_mirror_deletions().map_err(during_run)?.len(),
            Some(_) => 0,
        },
        mirror,
        gone_sources: summary.gone_sources.clone(),
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
                .with_exit(exit, failed_earlier)
                .with_mirror(mirror_figures)
                .with_gone_sources(finished.gone_sources.clone()),
        )
        .expect("the summary serializes");
        output_file::replace(path, &(json + "\n"))
            .with_context(|| format!("cannot write the summary {}", path.display()))
            .map_err(during_run)?;
    }
    Ok(Done::Ran(finished))
}

/// What a finished run found new, beside its ending and its mirror.
#[derive(Debug, Clone, Default)]
pub struct RunNews {
    /// Failed photos known from earlier runs (see [`Finished::failed_earlier`]).
    pub failed_earlier: u64,
    /// `--strict`.
    pub strict: bool,
    /// Changes of persons (groups, name, tag) the service refused this run, past
    /// their retries.
    pub changes_failed: u64,
}

/// The exit code of a run: the one place it is decided ([`crate::exit`] says what
/// each means). A run exits 1 for what is new this run: a photo failed by it (not
/// one known from earlier runs, unless `--strict`), a person's change refused, work
/// left for the next run, or with `--mirror` a deletion that failed or a person kept
/// or left this run; a person an earlier run left, said then and unchanged, does not
/// count. A guard that held the deletions exits 4; a mirror stopped by a fatal error
/// 3, interrupted 130.
pub fn exit_of(ending: &Ending, news: &RunNews, mirror: Option<&Mirrored>) -> Exit {
    let (failed, pending) = match ending {
        Ending::Fatal(_) | Ending::Stopped(_) => return Exit::Fatal,
        Ending::Interrupted => return Exit::Interrupted,
        Ending::Completed { failed, pending } => (*failed, *pending),
    };
    if let Some(m) = mirror {
        if m.interrupted {
            return Exit::Interrupted;
        }
        if m.stopped.is_some() {
            return Exit::Fatal;
        }
        if m.held.is_some() {
            return Exit::Held;
        }
    }
    let counted = if news.strict {
        failed
    } else {
        failed.saturating_sub(news.failed_earlier)
    };
    // A person left as the last mirror run left it, for the same reason, is said
    // again but is not new.
    let mirror_news = mirror.is_some_and(|m| {
        let left = m.left.len() as u64;
        m.failed > 0 || left > if news.strict { 0 } else { m.left_before }
    });
    if counted > 0 || pending > 0 || news.changes_failed > 0 || mirror_news {
        Exit::Failures
    } else {
        Exit::Ok
    }
}

/// The end of a run the store stopped after calls were made (a full disk, the state
/// directory deleted or replaced): what it did, from the run's tally in memory
/// ([`counts_in_memory`]), with nothing more asked of the store. The report is not
/// written: on a full disk it could not be, and a state directory replaced under
/// the job may be another job's now. The previous report stays whole (it is only
/// ever replaced whole, [`output_file`]) and the summary says so; the next run
/// writes it. The job's meta (its last outcome) is not written either.
fn stopped_by_the_store(
    err: &anyhow::Error,
    before: &StoreCounts,
    tally: Tally,
    job: &EnrollJob,
    report_path: PathBuf,
    started: Instant,
) -> Finished {
    // Each cause once: an engine's store error says what its source says.
    let mut message = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !message.contains(&part) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&part);
        }
    }
    let counts = counts_in_memory(before, &tally);
    let report_unwritten = Some(
        "not written, as the run stopped before its end; the previous report is kept \
         whole and the next run writes it"
            .to_owned(),
    );
    let ending = Ending::Stopped(message.clone());
    let exit = exit_of(&ending, &RunNews::default(), None);
    let finished = Finished {
        ending,
        exit,
        failed_earlier: 0,
        words: format!("stopped: {message}"),
        counts,
        tally,
        elapsed: started.elapsed(),
        state_dir: job.state_dir.clone(),
        report: report_path,
        report_unwritten,
        mirror: None,
        mirror_queued: 0,
        gone_sources: Vec::new(),
    };
    if let Some(path) = &job.outputs.summary_json {
        let json = serde_json::to_string_pretty(
            &SummaryJson::new(&finished.summary())
                .of_shard(job.plan.shard)
                .with_exit(exit, 0),
        )
        .expect("the summary serializes");
        if let Err(e) = output_file::replace(path, &(json + "\n")) {
            tracing::warn!("cannot write the summary {}: {e}", path.display());
            let _ = std::fs::remove_file(path);
        }
    }
    finished
}

/// The job's counts as the run's tally has them: the photos settled before the run
/// and those the run settled, the rest pending. What a run stopped by its store
/// tells when the store cannot be asked: its photos and persons are the plan's
/// (`before`), a person failed this run is added to those failed before.
pub fn counts_in_memory(before: &StoreCounts, tally: &Tally) -> StoreCounts {
    let t = tally.snapshot();
    let settled = t.enrolled + t.duplicate + t.skipped + t.failed;
    StoreCounts {
        photos: before.photos,
        enrolled: t.enrolled,
        duplicate: t.duplicate,
        skipped: t.skipped,
        failed: t.failed,
        pending: before.photos.saturating_sub(settled),
        failures_by_code: tally.failures_by_code(),
        ignored: before.ignored.clone(),
        persons: before.persons,
        persons_failed: (before.persons_failed + t.persons_failed).min(before.persons),
    }
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
        match output_file::replace_with(path, |out| report::write_report_counted(store, out))
            .with_context(cannot_write)
        {
            Ok(counts) => (counts, Ok(())),
            Err(e) => (StoreCounts::read(store).map_err(during_run)?, Err(e)),
        },
    )
}

/// Writes the metrics file; a failure is logged, not fatal: monitoring must not stop
/// the job it watches.
fn write_metrics(path: &std::path::Path, figures: &Figures) {
    if let Err(err) = output_file::replace(path, &metrics::render(figures)) {
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(failed: u64, pending: u64) -> Ending {
        Ending::Completed { failed, pending }
    }

    #[test]
    fn a_run_stopped_by_its_store_is_counted_from_the_tally() {
        use crate::report::Counted;
        let before = StoreCounts {
            photos: 10,
            enrolled: 2,
            failed: 1,
            pending: 7,
            failures_by_code: [(Some(1301), 1)].into_iter().collect(),
            persons: 4,
            persons_failed: 1,
            ..StoreCounts::default()
        };
        let tally = Tally::default();
        tally.settle(&before);
        for outcome in [Counted::Enrolled, Counted::Enrolled, Counted::Failed(None)] {
            tally.photo(outcome);
        }
        tally.person_failed();
        let counts = counts_in_memory(&before, &tally);
        assert_eq!(
            (
                counts.photos,
                counts.enrolled,
                counts.failed,
                counts.pending
            ),
            (10, 4, 2, 4)
        );
        assert_eq!(
            counts.failures_by_code,
            [(None, 1), (Some(1301), 1)].into_iter().collect()
        );
        assert_eq!((counts.persons, counts.persons_failed), (4, 2));
        let ending = Ending::Stopped("the disk holding the state directory is full".into());
        assert_eq!(exit_of(&ending, &RunNews::default(), None), Exit::Fatal);
    }

    #[test]
    fn only_what_is_new_this_run_exits_1() {
        let earlier = RunNews {
            failed_earlier: 3,
            ..RunNews::default()
        };
        assert_eq!(exit_of(&done(3, 0), &earlier, None), Exit::Ok);
        assert_eq!(exit_of(&done(4, 0), &earlier, None), Exit::Failures);
        assert_eq!(exit_of(&done(3, 1), &earlier, None), Exit::Failures);
        let strict = RunNews {
            strict: true,
            ..earlier.clone()
        };
        assert_eq!(exit_of(&done(3, 0), &strict, None), Exit::Failures);
        let change = RunNews {
            changes_failed: 1,
            ..RunNews::default()
        };
        assert_eq!(exit_of(&done(0, 0), &change, None), Exit::Failures);
        assert_eq!(exit_of(&done(0, 0), &RunNews::default(), None), Exit::Ok);
    }

    #[test]
    fn a_mirror_exits_for_what_it_did_this_run() {
        let news = RunNews::default();
        let mirror = |f: &dyn Fn(&mut Mirrored)| {
            let mut m = Mirrored::default();
            f(&mut m);
            m
        };
        let quiet = mirror(&|m| {
            m.still_left
                .push((crate::model::PersonId::new("p").unwrap(), "why".into()))
        });
        assert_eq!(exit_of(&done(0, 0), &news, Some(&quiet)), Exit::Ok);
        let left = mirror(&|m| {
            m.left
                .push((crate::model::PersonId::new("p").unwrap(), "why".into()))
        });
        assert_eq!(exit_of(&done(0, 0), &news, Some(&left)), Exit::Failures);
        // Left as the last run left it: said, not new, unless --strict.
        let again = mirror(&|m| {
            m.left
                .push((crate::model::PersonId::new("p").unwrap(), "why".into()));
            m.left_before = 1;
        });
        assert_eq!(exit_of(&done(0, 0), &news, Some(&again)), Exit::Ok);
        let strict = RunNews {
            strict: true,
            ..RunNews::default()
        };
        assert_eq!(exit_of(&done(0, 0), &strict, Some(&again)), Exit::Failures);
        let failed = mirror(&|m| m.failed = 1);
        assert_eq!(exit_of(&done(0, 0), &news, Some(&failed)), Exit::Failures);
        let interrupted = mirror(&|m| m.interrupted = true);
        assert_eq!(
            exit_of(&done(0, 0), &news, Some(&interrupted)),
            Exit::Interrupted
        );
        assert_eq!(
            exit_of(&Ending::Interrupted, &news, None),
            Exit::Interrupted
        );
        assert_eq!(
            exit_of(&Ending::Fatal("x".into()), &news, None),
            Exit::Fatal
        );
    }
}
