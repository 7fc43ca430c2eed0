use clap::Parser;
use faceenroll::cli::{self, Cli, Command};

fn main() {
    limit_allocator_arenas();
    let cli = Cli::parse();
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

/// Holds glibc malloc to two arenas (its default is eight per core), unless the
/// operator sets `MALLOC_ARENA_MAX`.
///
/// Normalizing a camera original allocates buffers of several MB (the file, its
/// decoded pixels, the scaled copy) on the normalizing threads, and the copies are
/// freed on the threads that send them. With an arena per thread, each arena keeps
/// such freed buffers resident for reuse, so a job's peak memory grew with its
/// threads: 190 MiB for 200 camera originals at 8 workers, against 110 MiB with two
/// arenas and no more CPU a photo (BENCHMARKS.md, "Camera originals"). The threads
/// share the two arenas' locks for a few allocations a photo.
fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: changes one malloc setting, once, before any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
