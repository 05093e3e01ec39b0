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
    pub client_secret: String,
    /// `client_secret_basic`, `client_secret_post`; the first is the client's default.
    pub auth_methods: Vec<String>,
    /// Scopes the client may be granted, in registration order.
    pub scopes: Vec<String>,
    /// Granted when the request names no scope.
    pub default_scope: Option<String>,
}

const BUILTIN: &str = include_str!("builtin-clients.yaml");

impl MockClients {
    pub fn builtin() -> Self {
        serde_saphyr::from_str(BUILTIN)
            .unwrap_or_else(|e| unreachable!("builtin-clients.yaml is valid: {e}"))
    }

    /// Reads a clients file (YAML, and so JSON too).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let source = SourceFile::read(path).map_err(|e| LoadError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        serde_saphyr::from_str(&source.text).map_err(|e| LoadError::from(yaml_error(&source, &e)))
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
