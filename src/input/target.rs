//! Target files: the server under test and the clients the suites name, validated into
//! [`crate::model::Target`]. Secret values are masked in any line an error quotes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use url::Url;

use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::target::{
    CibaSettings, DEFAULT_CIBA_DISCOVERY, DEFAULT_TIMEOUT, Resource, TlsMinimum, TokenExchangeSettings,
};
use crate::model::{AuthMethod, Client, ScopeRole, Target};
use crate::support::diagnostics::SourceFile;
use crate::support::keys::{KeyAlg, KeyPair, KidStyle};
use crate::support::secret::Secret;

/// The keys whose values are secrets: masked wherever an error quotes the line.
pub const SECRET_KEYS: &[&str] = &["client_secret", "pkcs12_password"];
/// A request may wait at most this long for an answer.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const HOOK_METHODS: &[&str] = &["POST", "PUT", "GET"];

/// Loads a target file, reporting every problem with its location.
pub fn read_target(path: &Path) -> Result<Target, InputErrors> {
    let source = read_source(path)?;
    parse_target(&source)
}

pub fn parse_target(source: &SourceFile) -> Result<Target, InputErrors> {
    let source = source.clone().masking(SECRET_KEYS);
    let file: TargetFile = yaml::parse(&source, SHAPES).map_err(InputError::from)?;
    let mut v = Validator::new(&source);
    let target = resolve(&mut v, &file);
    v.finish(target)
}

const SHAPES: Shapes = &[
    ("clients", "a mapping of client names to clients, e.g. `clients: { confidential: { client_id: … } }`"),
    ("users", "a mapping of behaviours to login hints, e.g. `approves: \"…\"`"),
    ("jwks_server_port", "a port number from 1 to 65535"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    issuer: Spanned<String>,
    token_endpoint: Option<Spanned<String>>,
    introspection_endpoint: Option<Spanned<String>>,
    revocation_endpoint: Option<Spanned<String>>,
    resource: Option<ResourceDef>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    clients: BTreeMap<String, ClientDef>,
    jwks_server_port: Option<Spanned<u16>>,
    tls: Option<TlsDef>,
    ciba: Option<CibaDef>,
    scopes: Option<ScopesDef>,
    /// Where the server publishes its metadata, when not at a standard place.
    metadata: Option<Spanned<String>>,
    token_exchange: Option<TokenExchangeDef>,
}

/// Where RFC 8693 token exchanges go, and for which audience.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenExchangeDef {
    endpoint: Option<Spanned<String>>,
    audience: Option<Spanned<String>>,
}

/// The server's names for the scope roles suites ask for (see `ScopeRole`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopesDef {
    default: Option<Spanned<String>>,
    second: Option<Spanned<String>>,
    not_allowed: Option<Spanned<String>>,
    smart_v1: Option<Spanned<String>>,
    smart_v2: Option<Spanned<String>>,
    ciba: Option<Spanned<String>>,
    ciba_not_allowed: Option<Spanned<String>>,
}

impl ScopesDef {
    fn entries(&self) -> [(ScopeRole, Option<&Spanned<String>>); 7] {
        [
            (ScopeRole::Default, self.default.as_ref()),
            (ScopeRole::Second, self.second.as_ref()),
            (ScopeRole::NotAllowed, self.not_allowed.as_ref()),
            (ScopeRole::SmartV1, self.smart_v1.as_ref()),
            (ScopeRole::SmartV2, self.smart_v2.as_ref()),
            (ScopeRole::Ciba, self.ciba.as_ref()),
            (ScopeRole::CibaNotAllowed, self.ciba_not_allowed.as_ref()),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsDef {
    /// PEM bundle of the CAs to trust (only these) for the target's server certificates.
    ca: Option<Spanned<String>>,
    /// The lowest TLS version the server must accept: "1.2" (the default) or "1.3".
    minimum: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CibaDef {
    /// Discovery document path under the issuer (`/.well-known/wallet-openid-configuration`).
    discovery: Option<Spanned<String>>,
    /// Login hints by behaviour: `approves`, `denies`, `never-answers`, `manual`, `unknown`.
    #[serde(default)]
    users: BTreeMap<String, Spanned<String>>,
    /// A test-only call that approves a pending request; `{auth_req_id}` is replaced.
    approval_hook: Option<HookDef>,
    /// Endpoints to use over what the CIBA discovery document says.
    backchannel_endpoint: Option<Spanned<String>>,
    token_endpoint: Option<Spanned<String>>,
    /// The server's keys, for the id_token's signature, over the metadata's `jwks_uri`.
    jwks_uri: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookDef {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceDef {
    url: Spanned<String>,
    /// A scope the client may get but the resource does not accept (for the 403 check).
    insufficient_scope: Option<String>,
    /// Another resource indicator the server knows (for the other-audience check).
    other_audience: Option<Spanned<String>>,
    /// Resource indicator (`url` or `other_audience`) → the `aud` the server maps it to.
    aud: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDef {
    client_id: Spanned<String>,
    client_secret: Option<Spanned<String>>,
    auth: Option<Spanned<AuthMethod>>,
    /// Every method the client is registered for; `[auth]` when absent.
    methods: Option<Spanned<Vec<AuthMethod>>>,
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
    /// RFC 8705 §3.4 client metadata, as registered: the client asked for certificate-bound
    /// access tokens.
    tls_client_certificate_bound_access_tokens: Option<Spanned<bool>>,
}

/// `resource.aud`: each key must be one of the resources the target names (a typo would make the
/// mapping never apply), each value a non-empty `aud`.
fn resource_aud(v: &mut Validator<'_>, def: &ResourceDef, url: &Url, other: Option<&Url>) -> Vec<(Url, String)> {
    let mut mapped = Vec::new();
    for (resource, aud) in def.aud.iter().flatten() {
        let known = Url::parse(resource).ok().filter(|r| r == url || Some(r) == other);
        match known {
            None => {
                let named: Vec<&str> = std::iter::once(url.as_str()).chain(other.map(Url::as_str)).collect();
                v.error_help(
                    at(aud),
                    format!(
                        "resource.aud names `{resource}`, which is neither resource.url nor resource.other_audience"
                    ),
                    format!("its keys are the resources the target names: {}", named.join(", ")),
                );
            }
            Some(_) if aud.value.trim().is_empty() => {
                v.error(at(aud), format!("resource.aud for `{resource}` is empty"));
            }
            Some(r) => mapped.push((r, aud.value.clone())),
        }
    }
    mapped
}

fn resolve(v: &mut Validator<'_>, file: &TargetFile) -> Target {
    // An unusable issuer is already an error; the placeholder only lets validation continue.
    let issuer = v
        .url(&file.issuer)
        .unwrap_or_else(|| Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("a static URL")));
    let token_endpoint = file.token_endpoint.as_ref().and_then(|u| v.url(u));
    let introspection_endpoint = file.introspection_endpoint.as_ref().and_then(|u| v.url(u));
    let revocation_endpoint = file.revocation_endpoint.as_ref().and_then(|u| v.url(u));
    let resource = file.resource.as_ref().and_then(|def| {
        let url = v.url(&def.url)?;
        let other_audience = def.other_audience.as_ref().and_then(|o| v.url(o));
        let aud = resource_aud(v, def, &url, other_audience.as_ref());
        Some(Resource { url, insufficient_scope: def.insufficient_scope.clone(), other_audience, aud })
    });
    let timeout =
        file.timeout.as_ref().and_then(|t| v.duration(t, "timeout", false, MAX_TIMEOUT)).unwrap_or(DEFAULT_TIMEOUT);
    let clients = file.clients.iter().map(|(name, def)| (name.clone(), client(v, name, def))).collect();
    let ca = match file.tls.as_ref().and_then(|t| t.ca.as_ref()) {
        None => Default::default(),
        Some(c) => match v.path(c) {
            None => Default::default(),
            Some(path) => crate::support::pki::ca_bundle(&path).unwrap_or_else(|e| {
                v.error(at(c), e.to_string());
                Default::default()
            }),
        },
    };
    let tls_minimum = match file.tls.as_ref().and_then(|t| t.minimum.as_ref()) {
        None => TlsMinimum::default(),
        Some(m) => match v.one_of(m, "tls.minimum", &["1.2", "1.3"]) {
            Some("1.3") => TlsMinimum::Tls13,
            _ => TlsMinimum::Tls12,
        },
    };
    if let Some(p) = &file.jwks_server_port {
        if p.value == 0 {
            v.error_help(at(p), "jwks_server_port must be a port from 1 to 65535", "leave it out for a free port");
        }
    }
    let ciba = file.ciba.as_ref().map(|def| ciba(v, def)).unwrap_or_default();
    let mut scopes = BTreeMap::new();
    for (role, value) in file.scopes.iter().flat_map(ScopesDef::entries) {
        if let Some(value) = value {
            let text = v.text(value);
            if !is_scope(&text) {
                v.error_help(
                    at(value),
                    format!("scopes.{} `{text}` is not a scope", role.key()),
                    "scope tokens are printable ASCII without `\"` or `\\`, separated by single spaces (RFC 6749 §3.3)",
                );
            }
            scopes.insert(role, text);
        }
    }
    Target {
        origin: v.source.path.display().to_string(),
        source: Some(v.source.clone()),
        issuer,
        token_endpoint,
        introspection_endpoint,
        revocation_endpoint,
        resource,
        timeout,
        clients,
        jwks_server_port: file.jwks_server_port.as_ref().map(|p| p.value),
        ca,
        ciba,
        scopes,
        metadata: file.metadata.as_ref().and_then(|u| v.url(u)),
        tls_minimum,
        token_exchange: TokenExchangeSettings {
            endpoint: file.token_exchange.as_ref().and_then(|t| t.endpoint.as_ref()).and_then(|u| v.url(u)),
            audience: file.token_exchange.as_ref().and_then(|t| t.audience.as_ref()).map(|a| v.text(a)),
        },
    }
}

/// RFC 6749 §3.3: `scope-token *( SP scope-token )`, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope(text: &str) -> bool {
    !text.is_empty()
        && text.split(' ').all(|token| {
            !token.is_empty()
                && token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        })
}

fn ciba(v: &mut Validator<'_>, def: &CibaDef) -> CibaSettings {
    let discovery_path = match &def.discovery {
        None => DEFAULT_CIBA_DISCOVERY.to_string(),
        Some(d) => {
            let path = v.text(d);
            if !path.starts_with('/') || path.contains("://") || path.contains(char::is_whitespace) {
                v.error_help(
                    at(d),
                    format!("ciba.discovery `{path}` must be a path under the issuer"),
                    format!("e.g. `{DEFAULT_CIBA_DISCOVERY}` or `/.well-known/openid-configuration`"),
                );
            }
            path
        }
    };
    let approval_hook = def.approval_hook.as_ref().and_then(|h| {
        let method = match &h.method {
            None => Some(reqwest::Method::POST),
            Some(m) => v.one_of(m, "method", HOOK_METHODS).and_then(|m| m.parse().ok()),
        };
        let url = v.text(&h.url);
        if !url.contains("{auth_req_id}") {
            v.error_help(
                at(&h.url),
                "the approval hook URL has no `{auth_req_id}`",
                "the hook approves one request: put `{auth_req_id}` where its id goes",
            );
        }
        method.map(|m| (m, url))
    });
    CibaSettings {
        discovery_path,
        users: def.users.iter().map(|(k, u)| (k.clone(), v.text(u))).collect(),
        approval_hook,
        backchannel_endpoint: def.backchannel_endpoint.as_ref().and_then(|u| v.url(u)),
        token_endpoint: def.token_endpoint.as_ref().and_then(|u| v.url(u)),
        jwks_uri: def.jwks_uri.as_ref().and_then(|u| v.url(u)),
    }
}

fn client(v: &mut Validator<'_>, name: &str, def: &ClientDef) -> Client {
    // Files that cannot be loaded make the client unusable, said when something uses it.
    let mut unusable = None;
    let key = def.private_key.as_ref().and_then(|p| {
        let path = v.path(p)?;
        let loaded = KeyPair::load(&path, def.kid_style)
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
                unusable.get_or_insert_with(|| Box::new(v.source.error_at(at(p), e.to_string())));
                None
            }
        }
    });
    let serve_jwks = match &def.jwks_url {
        Some(u) if u.value == "serve" => true,
        Some(u) => {
            v.error_help(
                at(u),
                format!("`jwks_url: {}` is not understood here", u.value),
                "`serve` is the only value: the harness serves the JWKS",
            );
            false
        }
        None => false,
    };
    let identity = identity(v, def, &mut unusable);
    let secret = def.client_secret.as_ref().map(|s| Secret::new(v.text(s)));
    // The method: as written, else the first registered one, else what the credentials imply.
    let auth = match (&def.auth, &def.methods) {
        (Some(a), _) => a.value,
        (None, Some(m)) if !m.value.is_empty() => m.value[0],
        (None, _) if def.private_key.is_some() => AuthMethod::PrivateKeyJwt,
        // What the file says, not what loaded: an unloadable certificate is reported as such.
        (None, _) if (def.certificate.is_some() || def.pkcs12.is_some()) && secret.is_none() => {
            AuthMethod::TlsClientAuth
        }
        (None, _) => AuthMethod::ClientSecretBasic,
    };
    let methods = registered_methods(v, name, auth, def);
    let client = Client {
        client_id: v.text(&def.client_id),
        secret,
        auth,
        methods: methods.clone(),
        scope: def.scope.as_ref().map(|s| v.text(s)),
        key,
        serve_jwks,
        identity,
        bound_tokens: def.tls_client_certificate_bound_access_tokens.as_ref().is_some_and(|b| b.value),
        unusable,
    };
    // A token can be bound only to a certificate the client presents (RFC 8705 §3).
    if let Some(b) = def.tls_client_certificate_bound_access_tokens.as_ref().filter(|b| b.value) {
        if def.certificate.is_none() && def.pkcs12.is_none() {
            v.error_help(
                at(b),
                format!("client `{name}` asks for certificate-bound tokens but has no certificate"),
                format!("give `{name}` a `certificate` and `certificate_key` (or `pkcs12`), or drop the setting"),
            );
        }
    }
    // A client that cannot authenticate the way it says is our input's problem, said before any
    // traffic (a load failure of a key file is reported where the key is named, above).
    let loaded_elsewhere = (auth == AuthMethod::PrivateKeyJwt && def.private_key.is_some())
        || (auth.uses_certificate() && (def.certificate.is_some() || def.pkcs12.is_some()));
    if let Some(missing) = client.lacks_for(auth).filter(|_| !loaded_elsewhere) {
        let span = def.auth.as_ref().map(at).unwrap_or_else(|| at(&def.client_id));
        v.error_help(
            span,
            format!("client `{name}` authenticates with {auth} but has no {}", missing.trim_start_matches("a ")),
            format!("give `{name}` {missing}, or another `auth`"),
        );
    }
    // Other registered methods need their credentials too, or the cases using them cannot run.
    for method in methods.iter().copied().filter(|m| *m != auth) {
        let loaded = (method == AuthMethod::PrivateKeyJwt && def.private_key.is_some())
            || (method.uses_certificate() && (def.certificate.is_some() || def.pkcs12.is_some()));
        if let (Some(missing), Some(span)) = (client.lacks_for(method).filter(|_| !loaded), def.methods.as_ref()) {
            v.error_help(
                at(span),
                format!("client `{name}` is registered for {method} but has no {}", missing.trim_start_matches("a ")),
                format!("give `{name}` {missing}, or drop {method} from `methods`"),
            );
        }
    }
    client
}

/// The methods a client is registered for: `methods` as written (with `auth` in it), else `[auth]`.
fn registered_methods(v: &mut Validator<'_>, name: &str, auth: AuthMethod, def: &ClientDef) -> Vec<AuthMethod> {
    let Some(listed) = &def.methods else { return vec![auth] };
    if listed.value.is_empty() {
        v.error_help(
            at(listed),
            format!("client `{name}` has no `methods`"),
            "list at least one, or leave `methods` out",
        );
        return vec![auth];
    }
    if !listed.value.contains(&auth) {
        v.error_help(
            at(listed),
            format!("client `{name}` authenticates with {auth}, which is not among its `methods`"),
            format!("add {auth} to `methods`, or pick one of them as `auth`"),
        );
    }
    let mut methods = vec![auth];
    for m in &listed.value {
        if !methods.contains(m) {
            methods.push(*m);
        }
    }
    methods
}

fn identity(
    v: &mut Validator<'_>,
    def: &ClientDef,
    unusable: &mut Option<Box<crate::support::diagnostics::LocatedError>>,
) -> Option<crate::support::pki::ClientIdentity> {
    let loaded = match (&def.certificate, &def.certificate_key, &def.pkcs12) {
        (Some(c), Some(k), None) => {
            let (cert, key) = (v.path(c), v.path(k));
            let (cert, key) = (cert?, key?);
            crate::support::pki::identity_from_pem(&cert, &key).map_err(|e| (c, e))
        }
        (None, None, Some(p)) => {
            let path = v.path(p)?;
            let password = def.pkcs12_password.as_ref().map(|p| v.text(p)).unwrap_or_default();
            crate::support::pki::identity_from_pkcs12(&path, &password).map_err(|e| (p, e))
        }
        (None, None, None) => return None,
        (Some(c), None, None) => {
            v.error_help(
                at(c),
                "`certificate` needs `certificate_key`",
                "give the key's PEM file too, or use `pkcs12`",
            );
            return None;
        }
        (None, Some(k), None) => {
            v.error_help(at(k), "`certificate_key` needs `certificate`", "give the certificate's PEM file too");
            return None;
        }
        _ => {
            v.error_help(
                at(&def.client_id),
                "a client has either `certificate` + `certificate_key`, or `pkcs12`",
                "keep one of them",
            );
            return None;
        }
    };
    match loaded {
        Ok(identity) => Some(identity),
        Err((at_value, e)) => {
            unusable.get_or_insert_with(|| Box::new(v.source.error_at(at(at_value), e.to_string())));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8707 §2: a target says which `aud` the server maps each of its resources to; the key
    /// is compared as a URL (a host in capitals is the same resource).
    #[test]
    fn resource_aud_maps_the_named_resources_only() {
        let text = "issuer: https://as.example\nresource:\n  url: https://api.example/implant\n  \
                    other_audience: https://api.example/fhir\n  aud: { \"https://API.example/implant\": implant-api }\n";
        let target = parse_target(&SourceFile::new(Path::new("t.yaml"), text.into())).expect("a valid target");
        let resource = target.resource.expect("a resource");
        assert_eq!(resource.aud_for("https://api.example/implant"), Some("implant-api"));
        assert_eq!(resource.aud_for("https://api.example/fhir"), None);
        assert_eq!(resource.aud_for("not a url"), None);
    }
}
