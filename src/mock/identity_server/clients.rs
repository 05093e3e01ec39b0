//! Registered clients of the Identity Server mock: a built-in set that the shipped scenarios
//! use, or a YAML/JSON file given with `mock identity-server --clients FILE`.

use std::path::Path;

use serde::Deserialize;

use crate::diagnostics::SourceFile;
use crate::scenario::{LoadError, yaml_error};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockClients {
    pub clients: Vec<ClientConfig>,
    /// A scope clients may get that the resource does not accept.
    pub insufficient_scope: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The name scenarios use for this client (`client: confidential`).
    pub name: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`; the first is the default.
    pub auth_methods: Vec<String>,
    /// private_key_jwt: a built-in fixture key (`backend-rs384`, `backend-es384`) whose public
    /// JWKS is registered for the client.
    pub key: Option<String>,
    /// private_key_jwt: registered public keys, by value.
    pub jwks: Option<serde_json::Value>,
    /// private_key_jwt: registered JWKS URL (the harness serves it in embedded runs).
    pub jwks_uri: Option<String>,
    /// Register the built-in key by URL rather than by value (embedded runs serve the JWKS).
    #[serde(default)]
    pub register_by_url: bool,
    /// Scopes the client may be granted, in registration order.
    pub scopes: Vec<String>,
    /// Granted when the request names no scope.
    pub default_scope: Option<String>,
    /// Access token lifetime for this client; the mock's `--token-ttl` otherwise.
    pub token_ttl_secs: Option<u64>,
    /// A resource server: may call the introspection endpoint.
    #[serde(default)]
    pub introspects: bool,
}

const BUILTIN: &str = include_str!("builtin-clients.yaml");

/// Test key pairs shipped in `fixtures/keys/` (made by `oauth-harness keys generate`), compiled in
/// so the embedded mocks work from any directory. Public test material, never real credentials.
pub const BUILTIN_KEYS: &[(&str, &str)] = &[
    ("backend-rs384", include_str!("../../../fixtures/keys/backend-rs384/private.pem")),
    ("backend-es384", include_str!("../../../fixtures/keys/backend-es384/private.pem")),
];

/// A built-in fixture key by name.
pub fn builtin_key(name: &str) -> Option<crate::keys::KeyPair> {
    let (_, pem) = BUILTIN_KEYS.iter().find(|(n, _)| *n == name)?;
    crate::keys::KeyPair::from_pem(pem, Path::new(name), crate::keys::KidStyle::Rfc7638).ok()
}

impl MockClients {
    pub fn builtin() -> Self {
        let mut clients: Self =
            serde_saphyr::from_str(BUILTIN).unwrap_or_else(|e| unreachable!("builtin-clients.yaml is valid: {e}"));
        clients.resolve_keys();
        clients
    }

    /// Registers by value the public JWKS of every client that names a built-in key and has
    /// neither its own `jwks` nor a `jwks_uri`.
    pub fn resolve_keys(&mut self) {
        for c in self.clients.iter_mut() {
            if let (Some(name), None, None) = (&c.key, &c.jwks, &c.jwks_uri) {
                c.jwks = builtin_key(name).map(|k| k.jwks());
            }
        }
    }

    /// Reads a clients file (YAML, and so JSON too).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let source = SourceFile::read(path)
            .map_err(|e| LoadError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut clients: Self =
            serde_saphyr::from_str(&source.text).map_err(|e| LoadError::from(yaml_error(&source, &e)))?;
        clients.resolve_keys();
        Ok(clients)
    }

    pub fn by_id(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Replaces the secret of the client named `name` (tests use a distinctive one).
    pub fn with_secret(mut self, name: &str, secret: &str) -> Self {
        for c in self.clients.iter_mut().filter(|c| c.name == name) {
            c.client_secret = secret.to_string();
        }
        self
    }
}

impl ClientConfig {
    pub fn allows(&self, method: &str) -> bool {
        self.auth_methods.iter().any(|m| m == method)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_clients_parse() {
        let c = super::MockClients::builtin();
        assert!(c.clients.iter().any(|c| c.name == "confidential"));
    }
}
