//! The Identity Server mock's registered clients: the built-in set the shipped suites use (its
//! keys are compiled in), or a file read with the input layer.

use std::path::Path;

use crate::input::{InputErrors, parse_mock_clients, read_mock_clients};
use crate::model::mock_clients::MockClients;
use crate::support::diagnostics::SourceFile;

const BUILTIN: &str = include_str!("builtin-clients.yaml");

/// Test key pairs shipped in `fixtures/keys/` (made by `oauth-harness keys generate`), compiled in
/// so the embedded mocks work from any directory. Public test material, never real credentials.
pub const BUILTIN_KEYS: &[(&str, &str)] = &[
    ("backend-rs384", include_str!("../../../fixtures/keys/backend-rs384/private.pem")),
    ("backend-es384", include_str!("../../../fixtures/keys/backend-es384/private.pem")),
];

fn builtin_key_names() -> Vec<&'static str> {
    BUILTIN_KEYS.iter().map(|(n, _)| *n).collect()
}

/// A built-in fixture key by name.
pub fn builtin_key(name: &str) -> Option<crate::support::keys::KeyPair> {
    let (_, pem) = BUILTIN_KEYS.iter().find(|(n, _)| *n == name)?;
    crate::support::keys::KeyPair::from_pem(pem, Path::new(name), crate::support::keys::KidStyle::Rfc7638).ok()
}

/// The built-in clients (`src/mock/identity_server/builtin-clients.yaml`).
pub fn builtin() -> MockClients {
    let source = SourceFile::new(Path::new("builtin-clients.yaml"), BUILTIN.to_string());
    let mut clients = parse_mock_clients(&source, &builtin_key_names())
        .unwrap_or_else(|e| unreachable!("builtin-clients.yaml is valid: {e:?}"));
    resolve_keys(&mut clients);
    clients
}

/// A clients file, with its built-in keys resolved.
pub fn from_file(path: &Path) -> Result<MockClients, InputErrors> {
    let mut clients = read_mock_clients(path, &builtin_key_names())?;
    resolve_keys(&mut clients);
    Ok(clients)
}

/// Registers by value the public JWKS of every client that names a built-in key and has neither
/// its own `jwks` nor a `jwks_uri`.
fn resolve_keys(clients: &mut MockClients) {
    for c in clients.clients.iter_mut() {
        if let (Some(name), None, None) = (&c.key, &c.jwks, &c.jwks_uri) {
            c.jwks = builtin_key(name).map(|k| k.jwks());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_clients_parse() {
        let c = super::builtin();
        assert!(c.clients.iter().any(|c| c.name == "confidential"));
    }
}
