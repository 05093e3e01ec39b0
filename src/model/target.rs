//! A resolved target: the server under test — issuer, endpoints (configured or to discover), the
//! resource, TLS trust, CIBA settings, and the clients the suites refer to by name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::auth::AuthMethod;
use super::spec::{ScopeRole, ScopeSpec};
use crate::support::diagnostics::SourceFile;
use crate::support::keys::KeyPair;
use crate::support::pki::ClientIdentity;
use crate::support::secret::{Redactor, Secret};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pro Santé Connect publishes its CIBA metadata here, not at openid-configuration.
pub const DEFAULT_CIBA_DISCOVERY: &str = "/.well-known/wallet-openid-configuration";
/// The client that introspects when a step or a load path names none.
pub const DEFAULT_INTROSPECTION_CLIENT: &str = "resource-server";

#[derive(Debug, Clone)]
pub struct Target {
    /// Where it came from: a file path, or "embedded … mock".
    pub origin: String,
    pub source: Option<SourceFile>,
    pub issuer: Url,
    pub token_endpoint: Option<Url>,
    pub introspection_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub resource: Option<Resource>,
    pub timeout: Duration,
    pub clients: BTreeMap<String, Client>,
    pub jwks_server_port: Option<u16>,
    /// CAs to trust for the target's server certificates (only these), when given.
    pub ca: crate::support::pki::CaBundle,
    pub ciba: CibaSettings,
    /// The server's names for the scope roles the suites ask for.
    pub scopes: BTreeMap<ScopeRole, String>,
    /// Where the server publishes its metadata when not at a standard place.
    pub metadata: Option<Url>,
    pub token_exchange: TokenExchangeSettings,
    /// The lowest TLS version the target's endpoints must accept (`tls.minimum`).
    pub tls_minimum: TlsMinimum,
}

/// The TLS floor a target is held to: BCP 195's (1.2), or 1.3 where the deployment requires it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsMinimum {
    #[default]
    Tls12,
    Tls13,
}

/// Where a token exchange (RFC 8693) happens: the authorization server of the protected API,
/// which may not be the one that issued the subject token.
#[derive(Debug, Clone, Default)]
pub struct TokenExchangeSettings {
    /// The exchange endpoint; the CIBA token endpoint when not named (Keycloak, and the PSC mock,
    /// take the grant there).
    pub endpoint: Option<Url>,
    /// The `audience` asked for (RFC 8693 §2.1): the API the new token is for.
    pub audience: Option<String>,
}

/// CIBA settings of a target.
#[derive(Debug, Clone)]
pub struct CibaSettings {
    pub discovery_path: String,
    /// Login hints by behaviour (`approves`, `denies`, `never-answers`, `manual`, `unknown`).
    pub users: BTreeMap<String, String>,
    pub approval_hook: Option<(reqwest::Method, String)>,
    /// Endpoints named by the target, over what the metadata says.
    pub backchannel_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    /// Where the id_token's keys are, over the metadata's `jwks_uri`.
    pub jwks_uri: Option<Url>,
}

impl Default for CibaSettings {
    fn default() -> Self {
        Self {
            discovery_path: DEFAULT_CIBA_DISCOVERY.into(),
            users: BTreeMap::new(),
            approval_hook: None,
            backchannel_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub url: Url,
    pub insufficient_scope: Option<String>,
    /// Another resource the server issues tokens for (RFC 8707): a token for it is one this
    /// resource must refuse (RFC 9068 §4).
    pub other_audience: Option<Url>,
    /// The `aud` value the server gives a token asked for one of these resources, where it maps
    /// the resource indicator to another identifier (RFC 8707 §2 allows it).
    pub aud: Vec<(Url, String)>,
}

impl Resource {
    /// The `aud` the target says the server uses for `resource`, if it maps it.
    pub fn aud_for(&self, resource: &str) -> Option<&str> {
        let resource = Url::parse(resource).ok()?;
        self.aud.iter().find(|(r, _)| *r == resource).map(|(_, a)| a.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// The method it authenticates with unless a step says otherwise.
    pub auth: AuthMethod,
    /// The methods it is registered for (RFC 7591 §2 `token_endpoint_auth_method`); `auth` first.
    pub methods: Vec<AuthMethod>,
    pub scope: Option<String>,
    /// The private key for private_key_jwt.
    pub key: Option<Arc<KeyPair>>,
    /// The harness serves this client's JWKS during the run.
    pub serve_jwks: bool,
    /// mTLS identity.
    pub identity: Option<ClientIdentity>,
    /// The client registered for certificate-bound access tokens (RFC 8705 §3.4
    /// `tls_client_certificate_bound_access_tokens`, false when omitted): only then must its
    /// tokens carry `cnf.x5t#S256`.
    pub bound_tokens: bool,
    /// A key or certificate file the target names that could not be loaded: reported (where the
    /// target names it) when a suite or a profile uses this client, not for clients nobody uses.
    pub unusable: Option<Box<crate::support::diagnostics::LocatedError>>,
}

impl Client {
    /// What `method` needs that this client lacks, if anything.
    pub fn lacks_for(&self, method: AuthMethod) -> Option<&'static str> {
        match method {
            m if m.uses_secret() && self.secret.is_none() => Some("a `client_secret`"),
            AuthMethod::PrivateKeyJwt if self.key.is_none() => Some("a `private_key`"),
            m if m.uses_certificate() && self.identity.is_none() => Some("a certificate"),
            _ => None,
        }
    }
}

impl Target {
    /// Registers every client secret with the run's redactor, with the client id for the
    /// encodings a Basic header gives it.
    pub fn register_secrets(&self, redactor: &Redactor) {
        for client in self.clients.values() {
            if let Some(secret) = &client.secret {
                redactor.register_credentials(&client.client_id, secret);
            }
        }
        for url in self.urls() {
            redactor.register_url_credentials(url);
        }
    }

    /// Every URL the target file names.
    fn urls(&self) -> impl Iterator<Item = &Url> {
        let resource = self.resource.iter().flat_map(|r| std::iter::once(&r.url).chain(&r.other_audience));
        let ciba = self.ciba.backchannel_endpoint.iter().chain(&self.ciba.token_endpoint).chain(&self.ciba.jwks_uri);
        std::iter::once(&self.issuer)
            .chain(&self.token_endpoint)
            .chain(&self.introspection_endpoint)
            .chain(&self.revocation_endpoint)
            .chain(&self.metadata)
            .chain(&self.token_exchange.endpoint)
            .chain(resource)
            .chain(ciba)
    }

    /// A client holding a certificate other than `own` (any certificate when `own` is none): the
    /// "other certificate" a bound token must be refused over (RFC 8705 §3).
    pub fn client_with_other_certificate(&self, own: Option<&ClientIdentity>) -> Option<&str> {
        self.clients
            .iter()
            .find(|(_, c)| c.identity.as_ref().is_some_and(|i| own.is_none_or(|o| o.cert_sha256 != i.cert_sha256)))
            .map(|(name, _)| name.as_str())
    }

    pub fn client_names(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(String::as_str)
    }

    /// The server's scope for `role`: the client's own for `default`, then the target's mapping,
    /// then today's name.
    pub fn scope(&self, role: ScopeRole, client: Option<&Client>) -> String {
        let own = client.and_then(|c| c.scope.clone()).filter(|_| role == ScopeRole::Default);
        own.or_else(|| self.scopes.get(&role).cloned()).unwrap_or_else(|| role.default_scope().to_string())
    }

    /// What `spec` asks for, in the server's names.
    pub fn resolve_scope(&self, spec: &ScopeSpec, client: Option<&Client>) -> String {
        match spec {
            ScopeSpec::Literal(s) => s.clone(),
            ScopeSpec::Roles(roles) => roles.iter().map(|r| self.scope(*r, client)).collect::<Vec<_>>().join(" "),
        }
    }
}
