//! A reviewed list of deviations a CI gate accepts for now (`run --known-deviations FILE`):
//! each names a check, the cases it may fail in, and why that is accepted.

use super::Named;
use crate::support::diagnostics::{SourceFile, Span};

#[derive(Debug, Clone)]
pub struct KnownDeviations {
    pub source: SourceFile,
    /// What the list is about (the server and its version), for the reports.
    pub title: Option<String>,
    pub entries: Vec<KnownDeviation>,
}

#[derive(Debug, Clone)]
pub struct KnownDeviation {
    /// The check id that fails (or warns).
    pub check: Named,
    /// Globs over case ids, or `suite/id` (as `--filter` matches them).
    pub cases: Vec<String>,
    /// Why the gate accepts it, as reports show it.
    pub reason: String,
    pub span: Span,
}
