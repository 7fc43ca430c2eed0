//! The exit codes of every command, and what each means: one table, shown by every
//! command's `--help` and by the README, so a wrapper (cron with `chronic`, a
//! systemd unit, `--ping-url`) reads one meaning for each code whatever the command.
//!
//! The rule `enroll` follows: the exit code says what is **new this run** and asks
//! for someone to look (a new failure, work left for the next run, a mirror deletion
//! held or kept this run). What is known from earlier runs and unchanged (photos the
//! service refused for good months ago, a person a mirror left on an earlier night)
//! is counted in the summary, not in the exit code, unless `--strict` asks for it.
//! The code of a run is decided once, by [`crate::ops::enroll`].

/// How a command ended, as the process exit code a script can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Nothing new to act on.
    Ok = 0,
    /// Something new this run to look at (see [`TABLE`]).
    Failures = 1,
    /// Usage, configuration or input error before any call.
    Usage = 2,
    /// Stopped by a fatal error (account, credentials, network, store); resumable.
    Fatal = 3,
    /// `enroll --mirror`: a guard held every deletion back.
    Held = 4,
    /// Interrupted by a signal (resumable).
    Interrupted = 130,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The exit code of an error that ended a command, by the class its maker gave it:
/// a store error says its own ([`StoreError::exit`](crate::store::StoreError::exit)),
/// a full disk anywhere is a stop (3); anything else is a usage, configuration or
/// input error (2).
pub fn of_error(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(store) = cause.downcast_ref::<crate::store::StoreError>() {
            return store.exit();
        }
        // A store error held transparently (a plan's) shows its database error.
        if cause.downcast_ref::<sled::Error>().is_some() {
            return Exit::Fatal;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if crate::store::is_disk_full(io) {
                return Exit::Fatal;
            }
        }
    }
    Exit::Usage
}

/// Every exit code with its meaning, for every command.
pub const TABLE: &[(Exit, &str)] = &[
    (
        Exit::Ok,
        "nothing new to act on: enroll accounted for every photo; failures known from \
         earlier runs and unchanged (and a person a mirror left on an earlier night) are \
         counted in the summary (failed_earlier), not here, unless --strict; verify found \
         no difference, or --repair queued every repair for the next enroll; rollback \
         undid everything",
    ),
    (
        Exit::Failures,
        "something new this run to look at (the report and the summary say what): a photo \
         or a person's change (groups, name, tag) failed, work is left for the next run, \
         with --mirror a deletion failed or a person was kept or left this run; with \
         --strict also failures of earlier runs; verify found a difference (without \
         --repair); rollback or a delete was not confirmed or left something; an \
         inspection command's request was refused",
    ),
    (
        Exit::Usage,
        "usage, configuration or input error before any call (a manifest cut short, an \
         empty source, --max-delete without --mirror), the state directory is in use by \
         another job, belongs to another account or shard, or was rolled back (enroll \
         again with a new state directory)",
    ),
    (
        Exit::Fatal,
        "stopped by a fatal error: the service refused the account or credentials, could \
         not be reached as configured (certificate, proxy, DNS, refused connection), \
         answered no call for --unanswered-limit, or the progress database or report \
         could not be written or the state directory was deleted or replaced under the \
         job (resumable: fix it, run the same command again)",
    ),
    (
        Exit::Held,
        "enroll --mirror: the adds were made, but a guard held every deletion back: the \
         source had an error, listed no photo, or the deletions passed --max-delete (the \
         summary names the count and the limit)",
    ),
    (
        Exit::Interrupted,
        "interrupted by Ctrl-C, SIGTERM or SIGHUP (resumable: run the same command \
         again): the calls in flight end (a call the service does not answer, after \
         --read-timeout), no call is sent after the signal, and the summary, report and \
         end ping are written as for any ending; verify too ends with 130 and its summary",
    ),
];

/// The width the help text wraps the meanings at.
const HELP_WIDTH: usize = 80;

/// The table as a help text's section, to follow a command's own `after_help`.
pub fn help() -> String {
    let mut text = String::from("Exit codes (the same for every command):\n");
    for (exit, meaning) in TABLE {
        let mut line = format!("  {:<5}", exit.code());
        let indent = line.len();
        let mut width = indent;
        for word in meaning.split_whitespace() {
            if width + 1 + word.len() > HELP_WIDTH && width > indent {
                line.push('\n');
                line.push_str(&" ".repeat(indent));
                width = indent;
            } else if width > indent {
                line.push(' ');
                width += 1;
            }
            line.push_str(word);
            width += word.len();
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(
        "A command other than enroll whose reader goes away (`faceenroll report | head`)\n\
         ends quietly, as a shell tool does: killed by SIGPIPE, 141 in a shell.",
    );
    text
}

/// A command's own help text followed by the table.
pub fn help_after(own: &str) -> String {
    format!("{own}\n\n{}", help())
}

/// The table as the README shows it (Markdown).
pub fn markdown() -> String {
    let mut text = String::from("| code | meaning |\n| --- | --- |\n");
    for (exit, meaning) in TABLE {
        text.push_str(&format!("| {} | {meaning} |\n", exit.code()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_ends_with_the_class_its_maker_gave_it() {
        use crate::store::StoreError;
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        // A full disk while planning, under the plan's error and a context: a stop.
        let planning = anyhow::Error::new(crate::plan::PlanError::Store(StoreError::Db(
            sled::Error::Io(full()),
        )))
        .context("cannot plan /photos");
        assert_eq!(of_error(&planning), Exit::Fatal);
        // A full disk met writing any file (a plan's sorted runs, a report).
        let writing = anyhow::Error::new(full()).context("cannot write the report");
        assert_eq!(of_error(&writing), Exit::Fatal);
        // A state directory in use, or a bad flag: the operator's to fix first.
        let busy = anyhow::Error::new(StoreError::Busy {
            dir: "/s".into(),
            pid: Some(7),
        });
        assert_eq!(of_error(&busy), Exit::Usage);
        assert_eq!(
            of_error(&anyhow::anyhow!("--qps 0 is not allowed")),
            Exit::Usage
        );
    }

    #[test]
    fn the_readme_shows_the_table() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown()),
            "README.md's exit table differs from src/exit.rs; it should read:\n{}",
            markdown()
        );
    }

    #[test]
    fn the_help_lists_every_code_within_its_width() {
        let help = help();
        for (exit, _) in TABLE {
            assert!(help.contains(&format!("\n  {:<5}", exit.code())), "{help}");
        }
        assert!(help.lines().all(|l| l.len() <= HELP_WIDTH), "{help}");
    }
}
