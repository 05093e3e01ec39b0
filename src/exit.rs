//! Exit codes: the contract scripts and CI gates rely on (documented in README), decided here and
//! only here — from a command's outcome, or from the typed error it failed with.

use miette::Diagnostic;

use crate::evidence::EvidenceError;
use crate::input::InputErrors;
use crate::load::LoadError;
use crate::mock::defects::UnknownDefect;
use crate::run::RunError;
use crate::support::keys::KeyError;
use crate::support::pki::PkiError;

/// Every check passed (warnings allowed unless `--strict`).
pub const SUCCESS: u8 = 0;
/// A MUST check failed, a SHOULD check failed under `--strict`, or a load threshold was crossed.
pub const CHECK_FAILED: u8 = 1;
/// Our input is wrong: scenario, target or profile YAML, key files, CLI usage, a filter selecting
/// nothing.
pub const INVALID_INPUT: u8 = 2;
/// The run could not complete: target unreachable, timeout, TLS failure, an interrupted run, a
/// file that cannot be written.
pub const RUNTIME_ERROR: u8 = 3;

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// A check failed, a threshold was crossed, a bundle was changed.
    Failed,
    /// The run did not complete (runtime errors in cases, or interrupted): it outranks failures.
    Incomplete,
}

/// A command line that cannot be carried out as written.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Usage {
    pub message: String,
    #[help]
    pub help: Option<String>,
}

impl Usage {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A file we were asked to write and could not.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot write `{path}`: {reason}")]
pub struct WriteError {
    pub path: String,
    pub reason: String,
}

/// Everything a command can fail with, each kept typed up to here.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Failure {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Input(#[from] InputErrors),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Usage(#[from] Usage),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Defect(#[from] UnknownDefect),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Write(#[from] WriteError),
    #[error("cannot start {what}: {reason}")]
    Start { what: &'static str, reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Report(#[from] crate::load::merge::ReportFileError),
    #[error(transparent)]
    Certify(#[from] crate::certify::CertifyError),
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Passed => SUCCESS,
            Outcome::Failed => CHECK_FAILED,
            Outcome::Incomplete => RUNTIME_ERROR,
        }
    }
}

impl Failure {
    /// The one mapping from what went wrong to the exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Input(_) | Failure::Usage(_) | Failure::Defect(_) => INVALID_INPUT,
            Failure::Run(e) => match e {
                RunError::EmptyFilter(_) | RunError::Preflight(_) => INVALID_INPUT,
                RunError::Discovery(_) | RunError::Client(_) => RUNTIME_ERROR,
            },
            Failure::Load(e) => match e {
                LoadError::MissingEndpoint { .. } => INVALID_INPUT,
                _ => RUNTIME_ERROR,
            },
            Failure::Key(e) => match e {
                KeyError::Generation(_) | KeyError::Unwritable { .. } => RUNTIME_ERROR,
                _ => INVALID_INPUT,
            },
            Failure::Pki(e) => match e {
                PkiError::Unwritable { .. } | PkiError::Generation(_) => RUNTIME_ERROR,
                _ => INVALID_INPUT,
            },
            Failure::Evidence(e) => match e {
                EvidenceError::Unwritable { .. } => RUNTIME_ERROR,
                _ => INVALID_INPUT,
            },
            Failure::Write(_) | Failure::Start { .. } => RUNTIME_ERROR,
            Failure::Report(_) => INVALID_INPUT,
            Failure::Certify(e) => match e {
                crate::certify::CertifyError::Spawn(_) => INVALID_INPUT,
                crate::certify::CertifyError::Setup(_) => RUNTIME_ERROR,
            },
        }
    }
}

/// The exit code of a command's result.
pub fn code_of(result: &Result<Outcome, Failure>) -> u8 {
    match result {
        Ok(outcome) => outcome.code(),
        Err(failure) => failure.code(),
    }
}
