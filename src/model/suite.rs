//! A validated conformance suite: what the runner executes without further checks. Checks,
//! mocks and clients are named by id (with the place they were written); the runner resolves
//! them.

use super::Named;
use super::action::Action;
use super::auth::AuthMethod;
use crate::support::diagnostics::{SourceFile, Span};

/// A validated suite.
#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub title: Option<String>,
    pub spec: Option<String>,
    pub source: SourceFile,
    pub client: Option<Named>,
    /// The system the suite is for (one of [`super::SYSTEMS`]).
    pub system: String,
    /// SHOULD checks promoted to MUST for this suite (check id, the reason).
    pub required: Vec<(Named, String)>,
    pub cases: Vec<Case>,
}

impl Suite {
    /// The file name as reports show it.
    pub fn display_path(&self) -> String {
        self.source.path.display().to_string()
    }
}

#[derive(Debug)]
pub struct Case {
    pub id: String,
    pub title: String,
    pub span: Span,
    /// `metadata field` must contain `value`, else the case is skipped.
    pub advertised: Vec<(String, String)>,
    /// The case's client must be registered for these methods, else the case is skipped…
    pub registered: Vec<AuthMethod>,
    /// …and must not be registered for these.
    pub not_registered: Vec<AuthMethod>,
    /// The case's client must have registered for certificate-bound tokens (RFC 8705 §3.4).
    pub certificate_bound: bool,
    pub client: Option<Named>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    pub action: Action,
    pub expect: Expectation,
}

/// What a step expects. A case has at least one non-empty expectation (the input layer refuses
/// a case that expects nothing).
#[derive(Debug, Default)]
pub struct Expectation {
    pub status: Option<StatusSet>,
    pub error: Option<String>,
    /// Check ids or bundle names, as written.
    pub checks: Vec<Named>,
}

impl Expectation {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.error.is_none() && self.checks.is_empty()
    }
}

/// `status: 200` or `status: [400, 401]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    One(u16),
    Any(Vec<u16>),
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::One(s) => *s == status,
            StatusSet::Any(list) => list.contains(&status),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StatusSet::One(s) => s.to_string(),
            StatusSet::Any(list) => {
                let parts: Vec<String> = list.iter().map(u16::to_string).collect();
                format!("one of {}", parts.join(", "))
            }
        }
    }
}
