//! oauth-harness: a conformance and load test harness for OAuth 2.0 / OpenID Connect servers.
//!
//! Pipeline: scenario YAML ─load→ [`scenario::Suite`] · target YAML ─load→ [`target::Target`] ·
//! both ─[`run::Runner`]→ [`results::RunReport`] ─[`report`]→ terminal, JUnit, JSON.

pub mod auth;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod diagnostics;
pub mod evidence;
pub mod exchange;
pub mod exit;
pub mod flows;
pub mod http;
pub mod jwks_server;
pub mod keys;
pub mod load;
pub mod mock;
pub mod pki;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod secret;
pub mod target;
