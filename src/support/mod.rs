//! The bottom layer: what every other layer may use and that uses nothing of ours — time, secrets
//! and their redaction, capped response bodies, located errors, key pairs, TLS identities,
//! counted nouns.

pub mod clock;
pub mod diagnostics;
pub mod files;
pub mod http_body;
pub mod http_server;
pub mod keys;
pub mod pki;
pub mod secret;
pub mod text;
