use faceenroll::cli::{self, Command};

fn main() {
    faceenroll::memory::configure();
    let cli = cli::parse();
    if !matches!(cli.command, Command::Enroll(_) | Command::Emulator(_)) {
        end_quietly_on_a_closed_pipe();
    }
    cli::init_logging(cli.verbose, cli.quiet);
    let exit = cli::run(cli);
    std::process::exit(exit as i32);
}

/// A command whose reader has gone (`faceenroll plan ... | head`) ends as a shell
/// tool does: quietly, killed by SIGPIPE (exit status 141 in a shell). Rust ignores
/// SIGPIPE and turns the write into an error; the default action is restored here.
/// `enroll` keeps its exit code instead: its job is done before it prints the
/// summary, and a summary nobody reads is not a failure of the job.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default, once, before any thread
    // is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
