//! Thin entry point: parse the command line, run the command, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use oauth_harness::cli::Cli;
use oauth_harness::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(oauth_harness::exit::RUNTIME_ERROR);
        }
    };
    ExitCode::from(runtime.block_on(commands::dispatch(cli)))
}
