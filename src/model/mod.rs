//! The validated model every command works from: suites and their actions, targets, load
//! profiles, the mock's registered clients. A leaf of the module graph (it uses only `support`):
//! checks, mocks and clients are named by id, and the layers above resolve them.

pub mod action;
pub mod auth;
pub mod client_suite;
pub mod deviations;
pub mod mock_clients;
pub mod profile;
pub mod spec;
pub mod suite;
pub mod target;

pub use action::{ACTIONS, Action, ActionKind};
pub use auth::{AuthChoice, AuthMethod};
pub use spec::*;
pub use suite::*;
pub use target::{Client, Target};

use crate::support::diagnostics::Span;

/// The systems a suite can be for; each has an embedded mock that runs its suites.
pub const SYSTEMS: &[&str] = &["identity-server", "psc"];
/// The system of a suite that names none.
pub const DEFAULT_SYSTEM: &str = "identity-server";

/// A name with the place it was written, so later errors (an unknown client, an unknown check)
/// can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub span: Span,
}
