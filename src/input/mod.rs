//! The input layer: every file a user gives us — scenarios, targets, load profiles, the mock's
//! clients — read the same way (bounded, regular files only), interpolated the same way
//! (`${env:…}`, `${file:…}`), parsed with the same YAML options, and validated in one style into
//! the [`crate::model`]. Every problem is located at file:line:column and all of them are
//! reported at once.

mod client_suite;
mod deviations;
pub mod interpolate;
mod mock_clients;
mod profile;
mod scenario;
mod target;
mod validator;
pub mod yaml;

use std::path::{Path, PathBuf};

use miette::Diagnostic;

pub use client_suite::{MAX_OBSERVATION, parse_client_suite, read_client_suite};
pub use deviations::{parse_known_deviations, read_known_deviations};
pub use mock_clients::{parse_mock_clients, read_mock_clients};
pub use profile::check_profile_against;
pub use profile::{parse_profile, parse_rate, read_profile};
pub use scenario::{FileKind, Input, collect_files, file_kind, parse_suite, read_inputs, read_inputs_all};
pub use target::{SECRET_KEYS, parse_target, read_target};

use crate::support::diagnostics::{LocatedError, SourceFile};
use crate::support::files::{self, FileError};

/// The largest YAML file we read: no scenario, target or profile comes near it.
pub const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

/// A problem with our input (exit 2).
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum InputError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("no scenario files (*.yaml, *.yml) under `{0}`")]
    NoScenarios(PathBuf),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(Box<LocatedError>),
}

impl From<LocatedError> for InputError {
    fn from(e: LocatedError) -> Self {
        InputError::Located(Box::new(e))
    }
}

impl From<Box<LocatedError>> for InputError {
    fn from(e: Box<LocatedError>) -> Self {
        InputError::Located(e)
    }
}

/// Every problem found in some input, all at once.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} in the input", crate::support::text::count(.0.len(), "problem"))]
pub struct InputErrors(#[related] pub Vec<InputError>);

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        InputErrors(vec![e])
    }
}

/// Reads an input file: a regular file, at most [`MAX_INPUT_BYTES`], UTF-8.
pub fn read_source(path: &Path) -> Result<SourceFile, InputError> {
    Ok(SourceFile::new(path, files::read_text(path, MAX_INPUT_BYTES)?))
}
