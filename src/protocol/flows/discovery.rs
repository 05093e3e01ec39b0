//! Server metadata (OpenID Connect Discovery 1.0 §4, RFC 8414 §3): where the endpoints are.

use miette::Diagnostic;
use reqwest::Method;
use url::Url;

use crate::model::Target;
use crate::protocol::exchange::{RecordedResponse, RequestContext};
use crate::protocol::http::{HttpClient, Request, TransportError, Value};

/// The endpoints of a target, found once per run: its discovery document, overridden by what
/// the target file names.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub token: Url,
    pub introspection: Option<Url>,
    pub revocation: Option<Url>,
    /// The discovery document, when the server publishes one.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// RFC 8705 §5: where a client doing mutual TLS goes instead, when the server says.
    pub mtls: MtlsAliases,
}

/// RFC 8705 §5 `mtls_endpoint_aliases`: "alternative authorization server endpoints, which,
/// when present, an OAuth client intending to do mutual TLS uses in preference to the
/// conventional endpoints". Only for endpoints the target file does not name itself: an
/// endpoint set by hand is the one the user wants.
#[derive(Debug, Clone, Default)]
pub struct MtlsAliases {
    pub token: Option<Url>,
    pub introspection: Option<Url>,
    pub revocation: Option<Url>,
}

impl Endpoints {
    /// The token endpoint for a client that presents a certificate (`mtls`) or not.
    pub fn token_for(&self, mtls: bool) -> &Url {
        self.mtls.token.as_ref().filter(|_| mtls).unwrap_or(&self.token)
    }

    pub fn introspection_for(&self, mtls: bool) -> Option<&Url> {
        self.mtls.introspection.as_ref().filter(|_| mtls).or(self.introspection.as_ref())
    }

    pub fn revocation_for(&self, mtls: bool) -> Option<&Url> {
        self.mtls.revocation.as_ref().filter(|_| mtls).or(self.revocation.as_ref())
    }
}

/// The alias `member` of a metadata document's `mtls_endpoint_aliases`, if it is a URL.
pub fn mtls_alias(metadata: Option<&serde_json::Map<String, serde_json::Value>>, member: &str) -> Option<Url> {
    let aliases = metadata?.get("mtls_endpoint_aliases")?.as_object()?;
    Url::parse(aliases.get(member)?.as_str()?).ok()
}

/// Why the endpoints of a target cannot be found.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum DiscoveryError {
    #[error("target unreachable: {0}")]
    #[diagnostic(help("{}", .0.hint().unwrap_or("check the target's `issuer` and that the server is running")))]
    Unreachable(TransportError),
    #[error("cannot find the token endpoint: {0}")]
    #[diagnostic(help("set `token_endpoint` in the target file, or fix the server's discovery document"))]
    NoTokenEndpoint(String),
}

/// Reads the target's metadata and picks its endpoints: at the target's `metadata` URL when it
/// names one, else OpenID Provider metadata, else RFC 8414's. Used by `run` and by `load`.
pub async fn discover_endpoints(http: &HttpClient, target: &Target) -> Result<Endpoints, DiscoveryError> {
    let places = match &target.metadata {
        Some(url) => vec![url.clone()],
        None => vec![document_url(&target.issuer, "/.well-known/openid-configuration"), rfc8414_url(&target.issuer)],
    };
    let mut metadata = None;
    let mut tried = Vec::new();
    for url in places {
        let (request, _) = get(url);
        match http.send(&request).await {
            Ok(r) => match r.json_object() {
                Some(m) if r.status == 200 => {
                    metadata = Some(m.clone());
                    break;
                }
                _ => tried.push(format!("{}: {}", request.url, describe_non_document(&r))),
            },
            Err(e) if target.token_endpoint.is_none() => return Err(DiscoveryError::Unreachable(e)),
            Err(e) => tried.push(format!("{}: {e}", request.url)),
        }
    }
    let token = match (&target.token_endpoint, &metadata) {
        (Some(t), _) => t.clone(),
        (None, Some(m)) => {
            m.get("token_endpoint").and_then(|v| v.as_str()).and_then(|s| Url::parse(s).ok()).ok_or_else(|| {
                DiscoveryError::NoTokenEndpoint("the server's metadata has no usable token_endpoint".into())
            })?
        }
        (None, None) => {
            return Err(DiscoveryError::NoTokenEndpoint(format!("no metadata document ({})", tried.join("; "))));
        }
    };
    let from_metadata = |member: &str| {
        metadata.as_ref().and_then(|m| m.get(member)).and_then(|v| v.as_str()).and_then(|s| Url::parse(s).ok())
    };
    let introspection = target.introspection_endpoint.clone().or_else(|| from_metadata("introspection_endpoint"));
    let revocation = target.revocation_endpoint.clone().or_else(|| from_metadata("revocation_endpoint"));
    let alias = |set_by_hand: &Option<Url>, member: &str| {
        set_by_hand.is_none().then(|| mtls_alias(metadata.as_ref(), member)).flatten()
    };
    let mtls = MtlsAliases {
        token: alias(&target.token_endpoint, "token_endpoint"),
        introspection: alias(&target.introspection_endpoint, "introspection_endpoint"),
        revocation: alias(&target.revocation_endpoint, "revocation_endpoint"),
    };
    Ok(Endpoints { token, introspection, revocation, metadata, mtls })
}

/// What came back instead of a metadata document, said precisely: the status, the content type,
/// and why the body is not a JSON object (empty, HTML, invalid JSON, too large, a redirect).
pub fn describe_non_document(r: &RecordedResponse) -> String {
    let content_type = r.header("content-type").unwrap_or("no Content-Type");
    let mut why = match r.status {
        300..=399 => format!(
            "it answered {} redirecting to {} (redirects are not followed: configure the URL they lead to)",
            r.status,
            r.header("location").unwrap_or("nowhere")
        ),
        200 => String::from("it answered 200"),
        s => format!("it answered {s}"),
    };
    why.push_str(&format!(" ({content_type}), "));
    why.push_str(&if r.truncated {
        format!("with a body larger than {} bytes", r.body.len())
    } else if r.body.is_empty() {
        "with an empty body".to_string()
    } else if r.media_type().is_some_and(|m| m.contains("html")) || r.body.trim_ascii_start().starts_with(b"<") {
        "with an HTML page, not a JSON document".to_string()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&r.body) {
            Err(e) => format!("with invalid JSON ({e})"),
            Ok(v) if !v.is_object() => "with JSON that is not an object".to_string(),
            Ok(_) => "with a JSON object".to_string(),
        }
    });
    why
}

/// `{issuer}/.well-known/…`: the well-known path is appended to the issuer's path, as OIDC
/// Discovery §4.1 says (not RFC 8414's insertion), which is what IdentityServer and Keycloak use.
pub fn document_url(issuer: &Url, well_known: &str) -> Url {
    let mut url = issuer.clone();
    let path = format!("{}{}", issuer.path().trim_end_matches('/'), well_known);
    url.set_path(&path);
    url.set_query(None);
    url
}

/// RFC 8414 §3: the well-known string is inserted between the host and the issuer's path
/// (`https://as.example/tenant` → `https://as.example/.well-known/oauth-authorization-server/tenant`).
pub fn rfc8414_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url
}

pub fn build(issuer: &Url, well_known: &str) -> (Request, RequestContext) {
    get(document_url(issuer, well_known))
}

/// A GET of a metadata document at `url`.
pub fn get(url: Url) -> (Request, RequestContext) {
    let request = Request::new(Method::GET, url).header("Accept", Value::Plain("application/json".into()));
    (request, RequestContext::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_inserts_before_the_issuer_path() {
        let tenant = Url::parse("https://as.example/o").unwrap();
        assert_eq!(rfc8414_url(&tenant).as_str(), "https://as.example/.well-known/oauth-authorization-server/o");
        let root = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(rfc8414_url(&root).as_str(), "http://127.0.0.1:8080/.well-known/oauth-authorization-server");
    }

    #[test]
    fn appends_to_the_issuer_path() {
        let issuer = Url::parse("https://id.example/realms/esante-wallet").unwrap();
        assert_eq!(
            document_url(&issuer, "/.well-known/openid-configuration").as_str(),
            "https://id.example/realms/esante-wallet/.well-known/openid-configuration"
        );
        let root = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            document_url(&root, "/.well-known/openid-configuration").path(),
            "/.well-known/openid-configuration"
        );
    }

    #[test]
    fn a_client_presenting_a_certificate_goes_to_the_mtls_aliases() {
        let doc = serde_json::json!({
            "token_endpoint": "https://as.example/token",
            "mtls_endpoint_aliases": { "token_endpoint": "https://mtls.as.example/token", "revocation_endpoint": 7 },
        });
        let metadata = doc.as_object();
        let alias = super::mtls_alias(metadata, "token_endpoint");
        assert_eq!(alias.as_ref().map(Url::as_str), Some("https://mtls.as.example/token"));
        // Not a URL, or not aliased: none.
        assert!(super::mtls_alias(metadata, "revocation_endpoint").is_none());
        assert!(super::mtls_alias(metadata, "introspection_endpoint").is_none());
        let endpoints = super::Endpoints {
            token: Url::parse("https://as.example/token").unwrap(),
            introspection: Url::parse("https://as.example/introspect").ok(),
            revocation: None,
            metadata: None,
            mtls: super::MtlsAliases { token: alias, ..Default::default() },
        };
        assert_eq!(endpoints.token_for(true).as_str(), "https://mtls.as.example/token");
        assert_eq!(endpoints.token_for(false).as_str(), "https://as.example/token");
        assert_eq!(endpoints.introspection_for(true).map(Url::as_str), Some("https://as.example/introspect"));
        assert!(endpoints.revocation_for(true).is_none());
    }
}
