//! The subcommands. Each returns an exit code from [`crate::exit`]; errors are printed here, at
//! the edge, as diagnostics.

mod checks;
mod evidence;
mod keys;
mod load;
mod mock;
mod run;
mod validate;

use std::io::IsTerminal;

use miette::Diagnostic;

use crate::cli::{Cli, Command};
use crate::diagnostics::render;

/// How to print: colour only for a terminal that wants it.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color: bool,
}

impl Output {
    pub fn detect(no_color: bool) -> Self {
        let wanted = !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { color: wanted && std::io::stdout().is_terminal() }
    }

    /// Prints a diagnostic to stderr.
    pub fn error(&self, diagnostic: &dyn Diagnostic) {
        let color = self.color && std::io::stderr().is_terminal();
        eprintln!("{}", render(diagnostic, color).trim_end());
    }
}

pub async fn dispatch(cli: Cli) -> u8 {
    let out = Output::detect(cli.no_color);
    match cli.command {
        Command::Run(args) => run::run(args, out).await,
        Command::Load(args) => load::load(args, out).await,
        Command::Validate(args) => validate::validate(args, out),
        Command::Checks => checks::print(),
        Command::Mock(which) => mock::mock(which, out).await,
        Command::Keys(command) => keys::keys(command, out),
        Command::Evidence(command) => evidence::evidence(command, out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "oauth-harness", &mut std::io::stdout());
            crate::exit::SUCCESS
        }
    }
}

/// A plain message as a diagnostic, for errors without a source location.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Plain {
    pub message: String,
    #[help]
    pub help: Option<String>,
}

impl Plain {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}
