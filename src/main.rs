use clap::Parser;
use faceenroll::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    cli::init_logging(cli.verbose, cli.quiet);
    let exit = cli::run(cli);
    std::process::exit(exit as i32);
}
