//! `faceenroll rollback`: undoes what the job did on the service
//! ([`crate::ops::rollback`]).

use super::verify::AfterArgs;
use super::Exit;
use crate::engine::StopSignal;
use crate::ops::rollback::{rollback, RollbackJob};
use crate::store::RollbackEntry;
use std::io::Write as _;
use std::sync::Arc;

const ROLLBACK_HELP: &str = "\
Each person is read (getinfo) just before it is undone: a person the job
created is deleted only if it holds nothing but what the job made, and a name or
tag someone changed since the job set it is left. After a rollback that went
through every person, the state directory is closed: enroll and verify refuse it
(enroll again with a new --state).";

/// `faceenroll rollback`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help_after(ROLLBACK_HELP))]
pub struct RollbackArgs {
    #[command(flatten)]
    pub after: AfterArgs,
    /// List the calls a rollback would make if every person were as the job left
    /// it, and make none (not even the readings).
    #[arg(long)]
    pub dry_run: bool,
    /// Start without asking.
    #[arg(long)]
    pub yes: bool,
    /// Instead of undoing the job: list what its mirror runs (`enroll --mirror`)
    /// deleted and what of it can come back. A face comes back only as its photo
    /// sent again (a new face id), which the next `enroll` does for each photo its
    /// source lists again; a person deleted is created again only if some of its
    /// photos are still in the source. A group a mirror took from a person is put
    /// back now (addgroupids, the person read first); no other call. What cannot
    /// come back is listed with the reason.
    #[arg(long, conflicts_with_all = ["dry_run", "yes"])]
    pub mirror: bool,
}

/// `rollback --mirror`: what the job's mirror runs deleted and what can come back;
/// the groups they took are put back.
fn mirror(args: &RollbackArgs) -> anyhow::Result<Exit> {
    let (state_dir, pace) = args.after.job()?;
    let (deleted, groups) = {
        let reading = crate::store::open_for_reading(&state_dir)?;
        let store = reading.store();
        (
            crate::ops::mirror_restore::deletions(store)?,
            store.mirrored_groups()?.len(),
        )
    };
    let groups = if groups == 0 {
        Default::default()
    } else {
        let client = args.after.client()?;
        crate::ops::mirror_restore::put_back_groups(
            &state_dir,
            &client,
            &pace,
            args.after.rebind_account,
        )?
    };
    let mut out = std::io::stdout().lock();
    let mut lost = 0;
    for d in &deleted {
        let what = match &d.face {
            Some(face) => format!(
                "face {} of person {} (photo {})",
                face.face_id, d.person, face.photo
            ),
            None => format!("person {}", d.person),
        };
        let at = crate::report::utc_time(d.at);
        match &d.back {
            Ok(how) => writeln!(out, "  comes back: {what}, deleted {at}: {how}")?,
            Err(why) => {
                lost += 1;
                writeln!(out, "  cannot come back: {what}, deleted {at}: {why}")?
            }
        }
    }
    for (person, group) in &groups.restored {
        writeln!(out, "  put back: person {person} in group {group}")?;
    }
    for (person, group, why) in &groups.left {
        lost += 1;
        writeln!(
            out,
            "  cannot put back: person {person} in group {group}: {why}"
        )?;
    }
    let total = deleted.len() + groups.restored.len() + groups.left.len();
    writeln!(
        out,
        "faceenroll rollback --mirror: {total} deletions by mirror runs, {} can come back \
         ({} groups put back now), {lost} cannot (listed). No photo was sent: the service \
         gives no deleted face back by its id, so run `faceenroll enroll` with the source \
         that lists them (without --mirror until it does) to send their photos again",
        total - lost,
        groups.restored.len(),
    )?;
    Ok(if lost == 0 { Exit::Ok } else { Exit::Failures })
}

pub fn run(args: RollbackArgs) -> anyhow::Result<Exit> {
    if args.mirror {
        return mirror(&args);
    }
    let client = args.after.client()?;
    let (state_dir, pace) = args.after.job()?;
    let job = RollbackJob {
        state_dir,
        dry_run: args.dry_run,
        pace,
        rebind_account: args.after.rebind_account,
    };
    let yes = args.yes;
    let stop = Arc::new(StopSignal::default());
    let done = rollback(&job, &client, &stop, |plan| {
        let count = |deleted: bool| {
            plan.planned
                .iter()
                .filter(|u| (u.entry == RollbackEntry::Deleted) == deleted)
                .filter(|u| !u.steps.is_empty())
                .count()
        };
        let confirmed = super::inspect::confirm(
            &format!(
                "Roll back the job in {}: delete {} persons it created and restore {} \
                 persons it changed ({} calls, each person read first)?",
                job.state_dir.display(),
                count(true),
                count(false),
                plan.planned_calls()
            ),
            yes,
        )?;
        if confirmed && !job.dry_run {
            // From here, the first Ctrl-C ends the rollback after the person being
            // undone, so what it did is printed (at the question, it still quits).
            super::enroll::install_signal_handlers(Arc::clone(&stop))?;
        }
        Ok(confirmed)
    })?;
    let mut out = std::io::stdout().lock();
    if let Some(at) = done.closed_before {
        for (person, why) in &done.left {
            let _ = writeln!(out, "# {person}: {why}");
        }
        let _ = writeln!(
            out,
            "faceenroll rollback: this job was rolled back at {}; {} persons were left; \
             0 calls",
            crate::report::utc_time(at),
            done.left.len()
        );
        return Ok(if done.left.is_empty() {
            Exit::Ok
        } else {
            Exit::Failures
        });
    }
    if job.dry_run {
        for undo in &done.planned {
            let _ = write!(out, "{undo}");
        }
        let _ = writeln!(
            out,
            "# at most {} calls for {} persons, if each is as the job left it; {} persons \
             rolled back before",
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
    for (person, why) in &done.left {
        let _ = writeln!(out, "# {person}: {why}");
    }
    let _ = writeln!(
        out,
        "faceenroll rollback: {} persons deleted, {} restored, {} with nothing of the \
         job's on the service, {} left (listed above), {} rolled back before; {} calls",
        done.deleted,
        done.restored,
        done.gone,
        done.left.len(),
        done.done_before,
        done.calls
    );
    if let Some(err) = &done.stopped {
        eprintln!("error: {err}\nThe rollback stopped; run the same command again to go on.");
        return Ok(Exit::Fatal);
    }
    if done.interrupted {
        eprintln!("The rollback was interrupted; run the same command again to go on.");
        return Ok(Exit::Interrupted);
    }
    Ok(if done.left.is_empty() {
        Exit::Ok
    } else {
        Exit::Failures
    })
}
