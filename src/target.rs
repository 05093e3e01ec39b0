//! Targets: the server under test — issuer, endpoints (configured or discovered), the resource,
//! and the clients the scenarios refer to by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use url::Url;

use std::sync::Arc;

use crate::diagnostics::{LocatedError, SourceFile, Span};
use crate::keys::{KeyAlg, KeyPair, KidStyle};
use crate::scenario::AuthChoice;
use crate::scenario::interpolate::interpolate;
use crate::secret::{Redactor, Secret};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    issuer: Spanned<String>,
    /// Overrides discovery for the token endpoint.
    token_endpoint: Option<Spanned<String>>,
    /// Overrides discovery for the introspection endpoint (RFC 7662).
    introspection_endpoint: Option<Spanned<String>>,
    /// Overrides discovery for the revocation endpoint (RFC 7009).
    revocation_endpoint: Option<Spanned<String>>,
    resource: Option<ResourceDef>,
    /// Per-request timeout, e.g. `10s`.
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    clients: BTreeMap<String, ClientDef>,
    /// Port for the JWKS the harness serves (`jwks_url: serve`); random when absent. Fix it when
    /// the server under test must be told the URL in advance.
    jwks_server_port: Option<u16>,
    tls: Option<TlsDef>,
    ciba: Option<CibaDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsDef {
    /// PEM bundle of the CAs to trust (only these) for the target's server certificates.
    ca: Option<Spanned<String>>,
}

/// CIBA settings: where the flow starts, the test users, and how a test can play the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CibaDef {
    /// Discovery document path under the issuer (`/.well-known/wallet-openid-configuration`).
    discovery: Option<String>,
    /// Login hints by behaviour: `approves`, `denies`, `never-answers`, `manual`, `unknown`.
    #[serde(default)]
    users: BTreeMap<String, Spanned<String>>,
    /// A test-only call that approves a pending request; `{auth_req_id}` is replaced.
    approval_hook: Option<HookDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookDef {
    method: Option<String>,
    url: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceDef {
    url: Spanned<String>,
    /// A scope the client may get but the resource does not accept (for the 403 check).
    insufficient_scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDef {
    client_id: Spanned<String>,
    client_secret: Option<Spanned<String>>,
    auth: Option<ClientAuth>,
    scope: Option<Spanned<String>>,
    /// private_key_jwt: the private key PEM, relative to the target file.
    private_key: Option<Spanned<String>>,
    /// RS384 or ES384; must match the key.
    alg: Option<KeyAlg>,
    /// The kid the key is registered under; derived (see `kid_style`) when absent.
    kid: Option<String>,
    kid_style: Option<KidStyle>,
    /// `serve`: the harness serves this client's JWKS on 127.0.0.1 for the run.
    jwks_url: Option<Spanned<String>>,
    /// mTLS identity: PEM certificate and key, relative to the target file…
    certificate: Option<Spanned<String>>,
    certificate_key: Option<Spanned<String>>,
    /// …or a PKCS#12 file and its password (use `${env:…}`).
    pkcs12: Option<Spanned<String>>,
    pkcs12_password: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    /// RFC 8705 §2: the client is authenticated by its TLS certificate.
    TlsClientAuth,
}

impl From<ClientAuth> for AuthChoice {
    fn from(a: ClientAuth) -> Self {
        match a {
            ClientAuth::ClientSecretBasic => AuthChoice::ClientSecretBasic,
            ClientAuth::ClientSecretPost => AuthChoice::ClientSecretPost,
            ClientAuth::PrivateKeyJwt => AuthChoice::PrivateKeyJwt,
            ClientAuth::TlsClientAuth => AuthChoice::TlsClientAuth,
        }
    }
}

/// A resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where it came from: a file path, or "embedded mock".
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
    pub ca: Vec<reqwest::Certificate>,
    pub ciba: CibaSettings,
}

/// CIBA settings of a target.
#[derive(Debug, Clone, Default)]
pub struct CibaSettings {
    pub discovery_path: String,
    /// Login hints by behaviour (`approves`, `denies`, `never-answers`, `manual`, `unknown`).
    pub users: BTreeMap<String, String>,
    pub approval_hook: Option<(reqwest::Method, String)>,
}

/// Pro Santé Connect publishes its CIBA metadata here, not at openid-configuration.
pub const DEFAULT_CIBA_DISCOVERY: &str = "/.well-known/wallet-openid-configuration";

#[derive(Debug, Clone)]
pub struct Resource {
    pub url: Url,
    pub insufficient_scope: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
    pub scope: Option<String>,
    /// The private key for private_key_jwt.
    pub key: Option<Arc<KeyPair>>,
    /// The harness serves this client's JWKS during the run.
    pub serve_jwks: bool,
    /// mTLS identity.
    pub identity: Option<crate::pki::ClientIdentity>,
}

impl Target {
    /// Loads a target file, reporting every problem with its location.
    pub fn load(path: &Path) -> Result<Target, Vec<crate::scenario::LoadError>> {
        use crate::scenario::LoadError;
        let source = SourceFile::read(path)
            .map_err(|e| vec![LoadError::Unreadable { path: path.to_path_buf(), reason: e.to_string() }])?;
        let file: TargetFile = serde_saphyr::from_str(&source.text)
            .map_err(|e| vec![LoadError::from(crate::scenario::yaml_error(&source, &e))])?;
        let mut errors = Vec::new();
        let target = resolve(&source, file, &mut errors);
        if errors.is_empty() { Ok(target) } else { Err(errors.into_iter().map(LoadError::from).collect()) }
    }

    /// Registers every client secret with the run's redactor.
    pub fn register_secrets(&self, redactor: &Redactor) {
        for client in self.clients.values() {
            if let Some(secret) = &client.secret {
                redactor.register_secret(secret);
            }
        }
    }

    /// The place a client name was expected, for "unknown client" errors.
    pub fn client_names(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(String::as_str)
    }
}

/// Interpolates and parses target values, collecting located errors.
struct Resolver<'a> {
    source: &'a SourceFile,
    errors: Vec<LocatedError>,
}

impl Resolver<'_> {
    fn fail(&mut self, v: &Spanned<String>, message: String) {
        self.errors.push(self.source.error_at(Span::from_location(&v.referenced), message));
    }

    fn text(&mut self, v: &Spanned<String>) -> String {
        let base = self.source.path.parent().unwrap_or(Path::new("."));
        interpolate(&v.value, base).unwrap_or_else(|e| {
            self.fail(v, e.to_string());
            String::new()
        })
    }

    fn client(&mut self, def: &ClientDef) -> Client {
        let key = def.private_key.as_ref().and_then(|p| {
            let path = self.source.path.parent().unwrap_or(Path::new(".")).join(self.text(p));
            let loaded = KeyPair::load(&path, def.kid_style.unwrap_or_default())
                .and_then(|k| match def.alg {
                    Some(alg) => k.require_alg(alg),
                    None => Ok(k),
                })
                .map(|k| match &def.kid {
                    Some(kid) => k.with_kid(kid.clone()),
                    None => k,
                });
            match loaded {
                Ok(k) => Some(Arc::new(k)),
                Err(e) => {
                    self.fail(p, e.to_string());
                    None
                }
            }
        });
        let serve_jwks = match &def.jwks_url {
            Some(v) if v.value == "serve" => true,
            Some(v) => {
                self.fail(v, format!("`jwks_url: {}` — only `serve` is understood here", v.value));
                false
            }
            None => false,
        };
        let auth =
            def.auth.unwrap_or(if key.is_some() { ClientAuth::PrivateKeyJwt } else { ClientAuth::ClientSecretBasic });
        if auth == ClientAuth::PrivateKeyJwt && key.is_none() && def.private_key.is_none() {
            self.fail(&def.client_id, "a private_key_jwt client needs `private_key`".into());
        }
        let identity = self.identity(def);
        let auth = match def.auth {
            Some(a) => a,
            None if identity.is_some() && key.is_none() && def.client_secret.is_none() => ClientAuth::TlsClientAuth,
            None => auth,
        };
        Client {
            client_id: self.text(&def.client_id),
            secret: def.client_secret.as_ref().map(|s| Secret::new(self.text(s))),
            auth,
            scope: def.scope.as_ref().map(|s| self.text(s)),
            key,
            serve_jwks,
            identity,
        }
    }

    fn path(&mut self, v: &Spanned<String>) -> PathBuf {
        self.source.path.parent().unwrap_or(Path::new(".")).join(self.text(v))
    }

    fn identity(&mut self, def: &ClientDef) -> Option<crate::pki::ClientIdentity> {
        let loaded = match (&def.certificate, &def.certificate_key, &def.pkcs12) {
            (Some(c), Some(k), None) => {
                let (cert, key) = (self.path(c), self.path(k));
                crate::pki::identity_from_pem(&cert, &key).map_err(|e| (c, e))
            }
            (None, None, Some(p)) => {
                let path = self.path(p);
                let password = def.pkcs12_password.as_ref().map(|p| self.text(p)).unwrap_or_default();
                crate::pki::identity_from_pkcs12(&path, &password).map_err(|e| (p, e))
            }
            (None, None, None) => return None,
            (Some(c), None, _) | (_, None, Some(c)) if def.certificate_key.is_none() && def.pkcs12.is_none() => {
                self.fail(c, "`certificate` needs `certificate_key`".into());
                return None;
            }
            (_, _, _) => {
                self.fail(&def.client_id, "give either `certificate` + `certificate_key`, or `pkcs12`".into());
                return None;
            }
        };
        match loaded {
            Ok(identity) => Some(identity),
            Err((at, e)) => {
                self.fail(at, e.to_string());
                None
            }
        }
    }

    fn url(&mut self, v: &Spanned<String>) -> Option<Url> {
        let raw = self.text(v);
        match Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            Ok(u) => {
                self.fail(v, format!("`{u}` is not an http(s) URL"));
                None
            }
            Err(e) => {
                self.fail(v, format!("`{raw}` is not a URL: {e}"));
                None
            }
        }
    }
}

fn resolve(source: &SourceFile, file: TargetFile, errors: &mut Vec<LocatedError>) -> Target {
    let mut r = Resolver { source, errors: Vec::new() };
    // An unusable issuer is already an error; the placeholder only lets validation continue.
    let issuer = r.url(&file.issuer).unwrap_or_else(|| Url::parse("http://invalid.invalid/").expect("static URL"));
    let token_endpoint = file.token_endpoint.as_ref().and_then(|v| r.url(v));
    let introspection_endpoint = file.introspection_endpoint.as_ref().and_then(|v| r.url(v));
    let revocation_endpoint = file.revocation_endpoint.as_ref().and_then(|v| r.url(v));
    let resource = file.resource.as_ref().and_then(|def| {
        r.url(&def.url).map(|url| Resource { url, insufficient_scope: def.insufficient_scope.clone() })
    });
    let timeout = match &file.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => humantime::parse_duration(&t.value).unwrap_or_else(|e| {
            r.errors.push(
                source
                    .error_at(Span::from_location(&t.referenced), format!("`{}` is not a duration: {e}", t.value))
                    .with_help("write it like `10s` or `1500ms`"),
            );
            DEFAULT_TIMEOUT
        }),
    };
    let clients = file.clients.iter().map(|(name, def)| (name.clone(), r.client(def))).collect();
    let ca = match file.tls.as_ref().and_then(|t| t.ca.as_ref()) {
        None => Vec::new(),
        Some(v) => {
            let path = r.path(v);
            crate::pki::ca_bundle(&path).unwrap_or_else(|e| {
                r.fail(v, e.to_string());
                Vec::new()
            })
        }
    };
    let ciba = match &file.ciba {
        None => CibaSettings { discovery_path: DEFAULT_CIBA_DISCOVERY.into(), ..CibaSettings::default() },
        Some(def) => CibaSettings {
            discovery_path: def.discovery.clone().unwrap_or_else(|| DEFAULT_CIBA_DISCOVERY.into()),
            users: def.users.iter().map(|(k, v)| (k.clone(), r.text(v))).collect(),
            approval_hook: def.approval_hook.as_ref().map(|h| {
                let method = h.method.as_deref().unwrap_or("POST").parse().unwrap_or(reqwest::Method::POST);
                (method, r.text(&h.url))
            }),
        },
    };
    errors.append(&mut r.errors);
    Target {
        origin: source.path.display().to_string(),
        source: Some(source.clone()),
        issuer,
        token_endpoint,
        introspection_endpoint,
        revocation_endpoint,
        resource,
        timeout,
        clients,
        jwks_server_port: file.jwks_server_port,
        ca,
        ciba,
    }
}
