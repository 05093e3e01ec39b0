//! The registered clients of the Identity Server mock, validated: the built-in set the shipped
//! suites use, or a file given with `mock identity-server --clients FILE`.

use super::auth::AuthMethod;

#[derive(Debug, Clone)]
pub struct MockClients {
    pub clients: Vec<ClientConfig>,
    /// A scope clients may get that the resource does not accept.
    pub insufficient_scope: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name suites use for this client (`client: confidential`).
    pub name: String,
    pub client_id: String,
    /// Empty for clients that authenticate otherwise.
    pub client_secret: String,
    /// The methods the client is registered for; the first is its default.
    pub auth_methods: Vec<AuthMethod>,
    /// private_key_jwt: a built-in fixture key (`backend-rs384`, `backend-es384`).
    pub key: Option<String>,
    /// private_key_jwt: registered public keys, by value.
    pub jwks: Option<serde_json::Value>,
    /// private_key_jwt: registered JWKS URL.
    pub jwks_uri: Option<String>,
    /// Register the built-in key by URL rather than by value (embedded runs serve the JWKS).
    pub register_by_url: bool,
    /// Scopes the client may be granted, in registration order.
    pub scopes: Vec<String>,
    /// Granted when the request names no scope.
    pub default_scope: Option<String>,
    /// Access token lifetime for this client; the mock's `--token-ttl` otherwise.
    pub token_ttl_secs: Option<u64>,
    /// A resource server: may call the introspection endpoint.
    pub introspects: bool,
    /// RFC 9449 §8: the client's DPoP proofs at the token endpoint must carry a nonce the mock
    /// handed out (a per-client setting, as Authlete and oidc-provider allow).
    pub dpop_nonce: bool,
}

impl MockClients {
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
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }
}
