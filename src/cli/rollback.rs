//! `faceenroll rollback`: undoes what the job did on the service
//! ([`crate::ops::rollback`]).

use super::verify::AfterArgs;
use super::Exit;
use crate::ops::rollback::{rollback, RollbackJob};
use crate::store::RollbackEntry;
use std::io::Write as _;

const ROLLBACK_EXIT_HELP: &str = "\
Exit codes:
  0  every person of the job undone (or nothing left to undo)
  1  not confirmed (no --yes without a terminal to confirm on counts as not
     confirmed, as for delete-person), or some persons left as they are (listed)
  2  usage or configuration error, the state directory is in use, or it belongs
     to another account (endpoint, AppID or bucket; nothing was called)
  3  stopped by a service error (run it again to go on where it stopped)";

/// `faceenroll rollback`
#[derive(Debug, clap::Args)]
#[command(after_help = ROLLBACK_EXIT_HELP)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub after: AfterArgs,
    /// List the calls a rollback would make, and make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Start without asking.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: RollbackArgs) -> anyhow::Result<Exit> {
    let client = args.after.client()?;
    let (state_dir, pace) = args.after.job()?;
    let job = RollbackJob {
        state_dir,
        dry_run: args.dry_run,
        pace,
        rebind_account: args.after.rebind_account,
    };
    let yes = args.yes;
    let done = rollback(&job, &client, |plan| {
        let count = |entry: RollbackEntry| {
            plan.planned
                .iter()
                .filter(|u| u.entry == entry && !u.steps.is_empty())
                .count()
        };
        super::inspect::confirm(
            &format!(
                "Roll back the job in {}: delete {} persons it created and restore {} \
                 persons it changed ({} calls)?",
                job.state_dir.display(),
                count(RollbackEntry::Deleted),
                count(RollbackEntry::Restored),
                plan.planned_calls()
            ),
            yes,
        )
    })?;
    let mut out = std::io::stdout().lock();
    if job.dry_run {
        for undo in &done.planned {
            let _ = write!(out, "{undo}");
        }
        let _ = writeln!(
            out,
            "# {} calls for {} persons; {} persons rolled back before",
            done.planned_calls(),
            done.planned.len(),
            done.done_before
        );
        return Ok(Exit::Ok);
    }
    if done.declined {
        eprintln!("not confirmed; nothing changed");
        return Ok(Exit::Failures);
    }
    for undo in &done.planned {
        if undo.unnamed_faces > 0 || undo.steps.is_empty() {
            let _ = write!(out, "{undo}");
        }
    }
    for (person, why) in &done.refused {
        let _ = writeln!(out, "# {person}: {why}");
    }
    let _ = writeln!(
        out,
        "faceenroll rollback: {} persons deleted, {} restored, {} left as they are, {} \
         rolled back before; {} calls",
        done.deleted, done.restored, done.left, done.done_before, done.calls
    );
    if let Some(err) = &done.stopped {
        eprintln!("error: {err}\nThe rollback stopped; run the same command again to go on.");
        return Ok(Exit::Fatal);
    }
    Ok(if done.refused.is_empty() {
        Exit::Ok
    } else {
        Exit::Failures
    })
}
