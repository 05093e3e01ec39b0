//! The Identity Server mock's clients file (`mock identity-server --clients FILE`, and the
//! built-in set), validated into [`crate::model::mock_clients::MockClients`].

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::target::SECRET_KEYS;
use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::AuthMethod;
use crate::model::mock_clients::{ClientConfig, MockClients};
use crate::support::diagnostics::SourceFile;

const SHAPES: Shapes = &[
    ("clients", "a list of clients, each with `name`, `client_id` and `auth_methods`"),
    ("auth_methods", "a list of methods, e.g. `[client_secret_basic, client_secret_post]`"),
    ("scopes", "a list of scopes, e.g. `[implant, profile]`"),
    ("token_ttl_secs", "a whole number of seconds from 1 to 86400"),
];

/// Reads a clients file (YAML, and so JSON too). `builtin_keys` are the fixture key names a
/// client may name with `key:`.
pub fn read_mock_clients(path: &Path, builtin_keys: &[&str]) -> Result<MockClients, InputErrors> {
    let source = read_source(path)?;
    parse_mock_clients(&source, builtin_keys)
}

pub fn parse_mock_clients(source: &SourceFile, builtin_keys: &[&str]) -> Result<MockClients, InputErrors> {
    let source = source.clone().masking(SECRET_KEYS);
    let file: ClientsFile = yaml::parse(&source, SHAPES).map_err(InputError::from)?;
    let mut v = Validator::new(&source);
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let clients = file.clients.into_iter().map(|c| client(&mut v, c, builtin_keys, &mut names, &mut ids)).collect();
    v.finish(MockClients { clients, insufficient_scope: file.insufficient_scope })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<ClientDef>,
    /// A scope clients may get that the resource does not accept.
    insufficient_scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDef {
    name: Spanned<String>,
    client_id: Spanned<String>,
    #[serde(default)]
    client_secret: String,
    auth_methods: Spanned<Vec<AuthMethod>>,
    key: Option<Spanned<String>>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    #[serde(default)]
    register_by_url: bool,
    #[serde(default)]
    scopes: Vec<String>,
    default_scope: Option<Spanned<String>>,
    token_ttl_secs: Option<Spanned<i64>>,
    #[serde(default)]
    introspects: bool,
    #[serde(default)]
    dpop_nonce: bool,
}

fn client(
    v: &mut Validator<'_>,
    c: ClientDef,
    builtin_keys: &[&str],
    names: &mut HashSet<String>,
    ids: &mut HashSet<String>,
) -> ClientConfig {
    if !names.insert(c.name.value.clone()) {
        v.error(at(&c.name), format!("two clients are named `{}`", c.name.value));
    }
    if !ids.insert(c.client_id.value.clone()) {
        v.error(at(&c.client_id), format!("two clients have the client_id `{}`", c.client_id.value));
    }
    let methods = &c.auth_methods.value;
    if methods.is_empty() && !c.introspects {
        v.error_help(
            at(&c.auth_methods),
            "`auth_methods` is empty: the client could never authenticate",
            "e.g. `[client_secret_basic]`",
        );
    }
    if methods.iter().any(|m| m.uses_secret()) && c.client_secret.is_empty() {
        v.error_help(
            at(&c.name),
            format!("client `{}` uses a secret method but has no `client_secret`", c.name.value),
            "give it a `client_secret`",
        );
    }
    if methods.contains(&AuthMethod::PrivateKeyJwt) && c.key.is_none() && c.jwks.is_none() && c.jwks_uri.is_none() {
        v.error_help(
            at(&c.name),
            format!("client `{}` uses private_key_jwt but registers no key", c.name.value),
            "give it `key`, `jwks` or `jwks_uri`",
        );
    }
    if let Some(k) = &c.key {
        v.one_of(k, "key", builtin_keys);
    }
    if let Some(d) = &c.default_scope {
        if !d.value.split(' ').all(|s| c.scopes.iter().any(|a| a == s)) {
            v.error_help(
                at(d),
                format!("default_scope `{}` is not among the client's `scopes`", d.value),
                "the default must be a scope the client may have",
            );
        }
    }
    let ttl = c.token_ttl_secs.as_ref().and_then(|t| v.number(t, "token_ttl_secs", 1, 86_400)).map(|t| t as u64);
    ClientConfig {
        name: c.name.value,
        client_id: c.client_id.value,
        client_secret: c.client_secret,
        auth_methods: c.auth_methods.value,
        key: c.key.map(|k| k.value),
        jwks: c.jwks,
        jwks_uri: c.jwks_uri,
        register_by_url: c.register_by_url,
        scopes: c.scopes,
        default_scope: c.default_scope.map(|d| d.value),
        token_ttl_secs: ttl,
        introspects: c.introspects,
        dpop_nonce: c.dpop_nonce,
    }
}
