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
  2  usage or configuration error, or the state directory is in use
  3  stopped by a service error (run it again to go on where it stopped)
  130  stopped by Ctrl-C or SIGTERM after the person being undone; what was
       undone is printed and recorded (run it again to go on)";

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
    let stop = std::sync::Arc::new(crate::engine::StopSignal::default());
    let job = RollbackJob {
        state_dir,
        dry_run: args.dry_run,
        pace,
        stop: std::sync::Arc::clone(&stop),
    };
    let yes = args.yes;
    let done = rollback(&job, &client, |plan| {
        let count = |entry: RollbackEntry| {
            plan.planned
                .iter()
                .filter(|u| u.entry == entry && !u.steps.is_empty())
                .count()
        };
        let confirmed = super::inspect::confirm(
            &format!(
                "Roll back the job in {}: delete {} persons it created and restore {} \
                 persons it changed ({} calls)?",
                job.state_dir.display(),
                count(RollbackEntry::Deleted),
                count(RollbackEntry::Restored),
                plan.planned_calls()
            ),
            yes,
        )?;
        if confirmed {
            // From here, the first Ctrl-C ends the rollback after the person being
            // undone, so what it did is printed (at the question, it still quits).
            super::enroll::install_signal_handlers(stop)?;
        }
        Ok(confirmed)
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
    if done.interrupted {
        eprintln!(
            "interrupted: the persons counted above are undone and recorded; run the same \
             command again to go on with the others"
        );
        return Ok(Exit::Interrupted);
    }
    Ok(if done.refused.is_empty() {
        Exit::Ok
    } else {
        Exit::Failures
    })
}
