//! The command line: every flag is defined here or in the file of its command, each
//! with its documentation beside it. `main.rs` parses, calls [`run`], and exits with
//! the [`Exit`] it returns.

mod emulator;
mod enroll;
pub mod inspect;
pub mod plan;
pub mod progress;
mod rollback;
pub mod settings;
mod sign;
mod status;
mod verify;

use clap::{Parser, Subcommand};

pub use crate::exit::Exit;

/// The end of the top-level help.
const TOP_HELP: &str = "\
A rehearsal needs no account: faceenroll enroll ARCHIVE --group GROUP --emulator";

/// Enrolls photo archives into the face recognition person/group API.
#[derive(Debug, Parser)]
#[command(name = "faceenroll", version, about, after_help = crate::exit::help_after(TOP_HELP))]
pub struct Cli {
    /// More log output: -v adds the plan's outline, a line per person created or
    /// reconciled and per photo skipped or sent as a smaller copy (not per photo
    /// enrolled), and the progress line without a terminal; -vv debug, -vvv trace.
    /// RUST_LOG (e.g. RUST_LOG=faceenroll=debug) overrides -v and -q.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output: errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll a photo archive: plan it, create its persons, add their faces.
    Enroll(Box<enroll::EnrollArgs>),
    /// Print the Authorization value for given fields, to reproduce a call with curl.
    Sign(sign::SignArgs),
    /// What a job has done and has left, and whether it is running now.
    Status(status::StatusArgs),
    /// One row per input photo: status, face id, code, reason (CSV or JSON lines).
    Report(status::ReportArgs),
    /// List the groups of the AppID.
    Groups(inspect::GroupsArgs),
    /// List the persons of a group.
    Persons(inspect::PersonsArgs),
    /// Show a person: name, tag, groups and faces.
    Person(inspect::PersonArgs),
    /// List the faces of a person.
    Faces(inspect::PersonArgs),
    /// Show what the service knows of a face.
    Face(inspect::FaceArgs),
    /// Delete a person and all its faces (asks unless --yes).
    DeletePerson(inspect::DeletePersonArgs),
    /// Delete faces of a person (asks unless --yes).
    DeleteFaces(inspect::DeleteFacesArgs),
    /// Serve a local emulator of the face person API, for rehearsals and tests.
    Emulator(emulator::EmulatorArgs),
    /// Check the source and print what a job would do, without making a call.
    Plan(plan::PlanCommand),
    /// Compare the service with what the job recorded; write a drift report.
    Verify(verify::VerifyArgs),
    /// Undo what the job did on the service, and nothing else (asks unless --yes).
    Rollback(rollback::RollbackArgs),
}

/// The variable that names the libheif shared library to load for HEIC/HEIF photos,
/// in place of looking for it under its usual names.
pub const LIBHEIF_ENV: &str = "FACEENROLL_LIBHEIF";

/// Parses the process's command line. The library for HEIC/HEIF photos is taken from
/// [`LIBHEIF_ENV`] when set; `--version` also says whether such photos can be decoded
/// here, and by which library (it is loaded only for that flag, or at the first HEIC
/// photo).
pub fn parse() -> Cli {
    use crate::normalize::heif;
    use clap::{CommandFactory, FromArgMatches};
    if let Some(path) = std::env::var_os(LIBHEIF_ENV).filter(|p| !p.is_empty()) {
        heif::use_library(path.into());
    }
    let mut command = Cli::command();
    if std::env::args_os().skip(1).any(|a| a == "--version") {
        let text = format!(
            "{}\nHEIC/HEIF photos: {}",
            env!("CARGO_PKG_VERSION"),
            heif::availability()
        );
        command = command.long_version(text);
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Command::Enroll(args) => enroll::run(*args),
        Command::Sign(args) => sign::run(args),
        Command::Status(args) => status::status(args),
        Command::Report(args) => status::report(args),
        Command::Groups(args) => inspect::groups(args),
        Command::Persons(args) => inspect::persons(args),
        Command::Person(args) => inspect::person(args),
        Command::Faces(args) => inspect::faces(args),
        Command::Face(args) => inspect::face(args),
        Command::DeletePerson(args) => inspect::delete_person(args),
        Command::DeleteFaces(args) => inspect::delete_faces(args),
        Command::Emulator(args) => emulator::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Rollback(args) => rollback::run(args),
    };
    match result {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            crate::exit::of_error(&err)
        }
    }
}

/// Writes `text` to stdout. A reader that has gone (`| head -1`) is not an error: the
/// rest is dropped quietly, and the command goes on to its own exit code. Any other
/// failure to write (a full disk behind a redirection) is an error naming stdout.
/// `println!` is never used for what a command prints: it panics on a closed pipe
/// where `enroll` and `emulator` keep SIGPIPE ignored.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    write_quietly(&mut std::io::stdout().lock(), text)
}

/// [`print_out`] to any writer.
fn write_quietly(out: &mut dyn std::io::Write, text: &str) -> anyhow::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(err).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// An error and its causes on one line, each cause once: many errors already name
/// their source in their own message.
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// Sets up logging to stderr (above the progress bars while they are shown).
///
/// `RUST_LOG`, when set, decides (e.g. `RUST_LOG=faceenroll=debug`). Otherwise `-q`
/// logs errors only; the default logs the job's own milestones (plan, progress lines,
/// stop) and every photo or person that went wrong, but not each person created, so a
/// nightly run's mail stays a few lines long however large the archive; `-v` adds a
/// line per person created and per call outcome, `-vv` debug detail, `-vvv` all but
/// the HTTP library's debug lines, which name whole URLs.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing::Level;
    use tracing_subscriber::filter::{self, EnvFilter, FilterExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let layer = || {
        tracing_subscriber::fmt::layer()
            .with_writer(progress::LogWriter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
    };
    let from_env = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    // Spans name the person a line is about: kept at info whatever the level of
    // events, so a warning shows its person even when info events are off.
    let person_spans = || filter::filter_fn(|meta| meta.is_span() && *meta.level() <= Level::INFO);
    let _ = if from_env {
        tracing_subscriber::registry()
            .with(layer().with_filter(EnvFilter::from_default_env().or(person_spans())))
            .try_init()
    } else {
        let milestones = !quiet;
        tracing_subscriber::registry()
            .with(
                layer().with_filter(
                    filter::filter_fn(move |meta| {
                        // The HTTP library's own lines name whole URLs (the token
                        // in a monitor's path) and headers: never past INFO,
                        // whatever -v asks (RUST_LOG=ureq=debug shows them).
                        if meta.target().starts_with("ureq") {
                            return *meta.level() <= level.min(Level::INFO);
                        }
                        // The database library's own lines (a failed flush per tree
                        // on a full disk, in debug form) repeat what the store's
                        // errors say in words: shown at -vvv only.
                        if meta.target().starts_with("sled") {
                            return level == Level::TRACE;
                        }
                        let own = meta.target().starts_with("faceenroll::cli")
                            || meta.target().starts_with("faceenroll::ops");
                        *meta.level() <= level
                            || (milestones && own && *meta.level() <= Level::INFO)
                    })
                    .or(person_spans()),
                ),
            )
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_gone_is_not_an_error_but_a_full_disk_is() {
        struct Failing(std::io::ErrorKind);
        impl std::io::Write for Failing {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(self.0.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gone = &mut Failing(std::io::ErrorKind::BrokenPipe);
        assert!(write_quietly(gone, "text").is_ok());
        let full = &mut Failing(std::io::ErrorKind::StorageFull);
        let err = write_quietly(full, "text").unwrap_err();
        assert!(
            describe(&err).starts_with("cannot write to stdout"),
            "{err}"
        );
    }

    #[test]
    fn an_error_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(crate::config::ResolveError::Read {
            path: "/etc/fe.toml".into(),
            source: io,
        })
        .context("cannot start");
        assert_eq!(
            describe(&err),
            "cannot start: cannot read config file /etc/fe.toml: no such file"
        );
    }
}
