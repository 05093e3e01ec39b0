//! The subcommands: each returns how it came out, or the typed error it failed with; this edge
//! prints the error (scrubbed of every secret the run has seen) and `crate::exit` picks the code.

mod certify;
mod checks;
mod evidence;
mod keys;
mod load;
mod mock;
mod output;
mod run;
mod validate;

use crate::cli::{Cli, Command};
use crate::exit::{Failure, Outcome};

pub use output::Output;

pub async fn dispatch(cli: Cli) -> u8 {
    let out = Output::detect(cli.no_color);
    let result = execute(cli.command, &out).await;
    if let Err(failure) = &result {
        out.failure(failure);
    }
    crate::exit::code_of(&result)
}

async fn execute(command: Command, out: &Output) -> Result<Outcome, Failure> {
    match command {
        Command::Run(args) => run::run(args, out).await,
        Command::Load(args) => load::load(args, out).await,
        Command::Certify(args) => certify::certify(args, out).await,
        Command::Validate(args) => validate::validate(args, out),
        Command::Checks(args) if args.markdown => checks::print_markdown(out),
        Command::Checks(_) => checks::print(out),
        Command::Mock(which) => mock::mock(which, out).await,
        Command::Keys(command) => keys::keys(command, out),
        Command::Evidence(command) => evidence::evidence(command, out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "oauth-harness", &mut text);
            out.print(&String::from_utf8_lossy(&text));
            Ok(Outcome::Passed)
        }
    }
}
