//! Scenarios: the YAML model, `${env:…}` interpolation, and validation into [`Suite`]s the runner
//! can execute without further checks.

pub mod interpolate;
mod load;
pub mod model;

pub use load::{LoadError, Loaded, collect_files, load_paths, parse_suite, yaml_error};

use crate::checks::CheckDef;
use crate::diagnostics::{SourceFile, Span};
pub use model::{AuthChoice, BearerChoice, DiscoveryDocument, FormParam, HttpMethod, StatusSet, TokenRef};

use crate::auth::assertion::Mutation;

/// A name with the place it was written, so run-time errors (an unknown client) can point at it.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub span: Span,
}

/// A validated suite.
#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub title: Option<String>,
    pub spec: Option<String>,
    pub source: SourceFile,
    pub client: Option<Named>,
    /// The system the suite is for (`identity-server`, `psc`).
    pub system: String,
    /// SHOULD checks promoted to MUST for this suite, with the reason.
    pub required: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub struct Case {
    pub id: String,
    pub title: String,
    pub span: Span,
    /// `metadata field` must contain `value`, else the case is skipped.
    pub advertised: Vec<(String, String)>,
    pub client: Option<Named>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    pub action: Action,
    pub expect: Expectation,
}

#[derive(Debug)]
pub enum Action {
    Token(Box<TokenSpec>),
    Resource(ResourceSpec),
    Discovery(DiscoverySpec),
    Introspect(IntrospectSpec),
    Revoke(RevokeSpec),
    Wait(WaitSpec),
    Ciba(CibaSpec),
    Poll(PollSpec),
    Approve,
}

#[derive(Debug)]
pub struct CibaSpec {
    pub client: Option<Named>,
    pub user: Option<Named>,
    pub channel: String,
    pub binding_message: String,
    pub acr_values: String,
    pub scope: String,
    pub requested_expiry: Option<u32>,
    pub two_hints: bool,
    pub without_certificate: bool,
    pub approve_with_hook: bool,
}

#[derive(Debug)]
pub struct PollSpec {
    pub client: Option<Named>,
    pub too_fast: bool,
    pub once: bool,
}

#[derive(Debug)]
pub struct IntrospectSpec {
    pub client: Option<Named>,
    pub auth: Option<AuthChoice>,
    pub wrong_secret: bool,
    pub token: TokenRef,
    pub token_type_hint: Option<String>,
}

#[derive(Debug)]
pub struct RevokeSpec {
    pub token: TokenRef,
    pub token_type_hint: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct WaitSpec {
    pub skew: std::time::Duration,
    pub max: std::time::Duration,
}

#[derive(Debug)]
pub struct DiscoverySpec {
    pub document: DiscoveryDocument,
    pub accept: Option<String>,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Token(_) => "token",
            Action::Resource(_) => "resource",
            Action::Discovery(_) => "discovery",
            Action::Introspect(_) => "introspect",
            Action::Revoke(_) => "revoke",
            Action::Wait(_) => "wait",
            Action::Ciba(_) => "ciba",
            Action::Poll(_) => "poll",
            Action::Approve => "approve",
        }
    }
}

#[derive(Debug, Default)]
pub struct TokenSpec {
    pub client: Option<Named>,
    pub grant: Option<String>,
    pub auth: Option<AuthChoice>,
    pub scope: Option<String>,
    pub omit: Vec<FormParam>,
    pub wrong_secret: bool,
    pub client_id: Option<String>,
    pub method: Option<HttpMethod>,
    pub params: Vec<(String, String)>,
    pub assertion: AssertionSpec,
}

/// The client assertion a private_key_jwt step sends.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AssertionSpec {
    pub mutation: Mutation,
    /// Send the case's previous assertion again.
    pub replay: bool,
    /// Sign with a key the server does not know.
    pub unregistered_key: bool,
    /// Put a harness-served JWKS URL (with the unregistered key) in `jku`.
    pub serve_jku: bool,
}

#[derive(Debug, Default)]
pub struct ResourceSpec {
    pub path: Option<String>,
    pub bearer: Option<BearerChoice>,
}

#[derive(Debug, Default)]
pub struct Expectation {
    pub status: Option<StatusSet>,
    pub error: Option<String>,
    pub checks: Vec<&'static CheckDef>,
}

impl Suite {
    /// The file name relative to the folder it was found in, as reports show it.
    pub fn display_path(&self) -> String {
        self.source.path.display().to_string()
    }
}
