//! oauth-harness: a conformance and load test harness for OAuth 2.0 / OpenID Connect servers.
//!
//! Pipeline: scenario, target, profile YAML ─[`input`]→ the [`model`] ─[`run::Runner`] (or
//! [`load`])→ [`results::RunReport`] ─[`report`]→ terminal, JUnit, JSON, HTML, Markdown.

pub mod certify;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod embedded;
pub mod evidence;
pub mod exit;
pub mod input;
pub mod known;
pub mod load;
pub mod mock;
pub mod model;
pub mod protocol;
pub mod report;
pub mod results;
pub mod run;
pub mod support;
