//! `faceenroll status` and `faceenroll report`: what a job has done, read from its
//! state directory without touching the service.

use super::progress::ProgressFile;
use super::Exit;
use crate::report::{self, Format, Only, StoreCounts};
use crate::store::{self, Store, DEFAULT_STATE_DIR};
use anyhow::Context as _;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The job's state directory.
    #[arg(long, default_value = DEFAULT_STATE_DIR, env = "FACEENROLL_STATE", hide_env_values = true)]
    state: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Status {
    state: PathBuf,
    running: Option<u32>,
    source: Option<String>,
    last_outcome: Option<String>,
    counts: Option<StoreCounts>,
    progress: Option<ProgressFile>,
}

/// Refuses a directory that holds no job, rather than creating one there.
fn ensure_job(state: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        crate::state_dir::StateDir::new(state).db().exists(),
        "{} holds no faceenroll job (no progress database); pass the --state DIR of the job",
        state.display()
    );
    Ok(())
}

pub fn status(args: StatusArgs) -> anyhow::Result<Exit> {
    ensure_job(&args.state)?;
    let status = match store::running_job(&args.state) {
        Some(pid) => Status {
            state: args.state.clone(),
            running: Some(pid),
            source: None,
            last_outcome: None,
            counts: None,
            progress: ProgressFile::read(&args.state),
        },
        None => {
            let store = Store::open(&args.state)?;
            let meta = store.meta()?;
            Status {
                state: args.state.clone(),
                running: None,
                source: meta.source,
                last_outcome: meta.last_outcome,
                counts: Some(StoreCounts::read(&store)?),
                progress: None,
            }
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(Exit::Ok);
    }
    println!("state:   {}", status.state.display());
    match status.running {
        Some(pid) => {
            println!("running: yes (pid {pid})");
            if let Some(p) = &status.progress {
                if !p.source.is_empty() {
                    println!("source:  {}", p.source);
                }
                println!(
                    "photos:  {}/{} done: {} enrolled, {} duplicate, {} skipped, {} failed; {} \
                     left",
                    p.photos_done,
                    p.photos_total,
                    p.enrolled,
                    p.duplicate,
                    p.skipped,
                    p.failed,
                    p.photos_total.saturating_sub(p.photos_done)
                );
                println!("persons: {}/{} done", p.persons_done, p.persons_total);
                println!(
                    "calls:   {} ({} retries, {} rate-limited) in {} s",
                    p.calls, p.retries, p.rate_limited, p.elapsed_secs
                );
                println!("flow:    {}", p.flow());
            }
        }
        None => {
            println!("running: no");
            if let Some(source) = &status.source {
                println!("source:  {source}");
            }
            if let Some(outcome) = &status.last_outcome {
                println!("last run: {outcome}");
            }
            if let Some(c) = &status.counts {
                println!(
                    "photos:  {} in the plan: {} enrolled, {} duplicate, {} skipped, {} failed, {} left to do",
                    c.photos, c.enrolled, c.duplicate, c.skipped, c.failed, c.pending
                );
                println!("persons: {} ({} failed)", c.persons, c.persons_failed);
            }
        }
    }
    Ok(Exit::Ok)
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The job's state directory.
    #[arg(long, default_value = DEFAULT_STATE_DIR, env = "FACEENROLL_STATE", hide_env_values = true)]
    state: PathBuf,
    /// Only the photos with this status.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// csv (default; its first columns are a manifest's) or jsonl.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    ensure_job(&args.state)?;
    let store = Store::open(&args.state).map_err(|err| match err {
        store::StoreError::Busy { .. } => anyhow::anyhow!(
            "{err}. The report is written when the job ends; `faceenroll status --state {}` \
             shows its progress now",
            args.state.display()
        ),
        other => other.into(),
    })?;
    let rows = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            report::write_report(&store, args.only, args.format, file)?
        }
        None => {
            match report::write_report(&store, args.only, args.format, std::io::stdout().lock()) {
                Ok(rows) => rows,
                // The reader had enough (`| head`): not an error of the report.
                Err(err) if is_broken_pipe(&err) => return Ok(Exit::Ok),
                Err(err) => return Err(err),
            }
        }
    };
    tracing::debug!("{rows} rows written");
    Ok(Exit::Ok)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}
