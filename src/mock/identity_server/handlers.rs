//! Request handling of the Identity Server mock: one handler that routes by path.

use std::sync::Arc;

use crate::support::http_server::{Handle, Reply as ResponseTemplate, Request};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::assertion::{JwksCache, Rejection, ReplayCache, SIGNING_ALGS, Verifier};
use super::state::{IssuedToken, IssuedTokens};
use super::{Defect, FHIR_RESOURCE_PATH, MockClients, RESOURCE_PATH, RESOURCE_SCOPE};
use crate::mock::defects::DefectSet;
use crate::mock::expiring;
use crate::mock::signing::SigningKey;
use crate::model::AuthMethod;
use crate::model::INTROSPECTION_JWT;
use crate::support::clock::unix_now;

pub struct App {
    pub issuer: String,
    pub clients: MockClients,
    pub token_ttl_secs: u64,
    pub defects: DefectSet<Defect>,
    /// Signs the metadata's JWT answers; published at `jwks_uri`.
    pub key: Arc<SigningKey>,
    /// Signs (and reads back) access tokens: `key`, unless a defect says otherwise.
    pub token_key: Arc<SigningKey>,
    /// Signs JWT introspection answers (RFC 9701): `key`, unless a defect says otherwise.
    pub introspection_key: Arc<SigningKey>,
    pub tokens: Arc<IssuedTokens>,
    pub replay: Arc<ReplayCache>,
    pub jwks_cache: Arc<JwksCache>,
    /// The DPoP nonce handed to clients registered for nonces (RFC 9449 §8: unpredictable).
    pub dpop_nonce: String,
    /// Token requests answered so far, for the one-in-ten server error defect.
    pub token_requests: Arc<std::sync::atomic::AtomicU64>,
    pub token_delay: Option<std::time::Duration>,
    /// Off: access tokens are not revocable (400 unsupported_token_type, RFC 7009 §2.2.1).
    pub revokes_access_tokens: bool,
}

impl Handle for App {
    fn handle(&self, request: &Request) -> ResponseTemplate {
        match request.url.path() {
            "/connect/token" => self.token(request),
            "/connect/introspect" => self.introspect(request),
            "/connect/revocation" => self.revoke(request),
            // The same metadata at OIDC Discovery's place and at RFC 8414's (the issuer has no path).
            "/.well-known/openid-configuration" => self.discovery(false),
            "/.well-known/oauth-authorization-server" => self.discovery(true),
            "/.well-known/smart-configuration" => self.smart_configuration(request),
            "/.well-known/openid-configuration/jwks" => json_ok(&self.key.jwks()),
            RESOURCE_PATH => self.resource(request, r#"Bearer realm="implant""#, |s| s == RESOURCE_SCOPE),
            FHIR_RESOURCE_PATH => self.resource(request, r#"Bearer realm="fhir""#, |s| {
                s.starts_with("system/Patient.") || s == "system/*.read"
            }),
            _ => ResponseTemplate::new(404).set_body_json(json!({ "error": "not_found" })),
        }
    }
}

/// The scope of a token its client may introspect with (SMART 2.2).
const INTROSPECT_SCOPE: &str = "introspect";

/// A refusal at the token endpoint.
struct OAuthError {
    status: u16,
    code: &'static str,
    description: &'static str,
    /// Answer with `WWW-Authenticate: Basic` (the client used the Authorization header).
    basic_challenge: bool,
    /// Hand out the DPoP nonce (`use_dpop_nonce`, RFC 9449 §8).
    dpop_nonce: bool,
}

impl OAuthError {
    fn new(code: &'static str, description: &'static str) -> Self {
        Self { status: 400, code, description, basic_challenge: false, dpop_nonce: false }
    }

    /// The replay cache is full of live jtis: 503 (`expiring::unavailable`), no refusal of the
    /// client.
    fn replay_cache_full() -> Self {
        Self {
            status: 503,
            ..Self::new("temporarily_unavailable", "the mock's replay cache is full of live jtis: retry later")
        }
    }
}

/// Who the client claims to be, and how.
struct Presented {
    client_id: String,
    secret: String,
    via_header: bool,
    /// Authenticated by a verified client assertion (private_key_jwt).
    by_assertion: bool,
}

fn json_ok(body: &serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

impl App {
    /// A token this mock issued, as it issued it (nothing is stored per token: see `state`).
    fn issued(&self, token: &str) -> Option<IssuedToken> {
        let lifetime = |client_id: &str| {
            let client = self.clients.by_id(client_id);
            client.and_then(|c| c.token_ttl_secs).unwrap_or(self.token_ttl_secs) as i64
        };
        let issued = self.tokens.get(token, &self.token_key, lifetime)?;
        if self.defects.on(Defect::EvictLiveTokens) && !self.tokens.bounded_holds(&issued.jti) {
            return None;
        }
        Some(issued)
    }

    fn token_endpoint(&self) -> String {
        format!("{}/connect/token", self.issuer)
    }

    fn discovery(&self, rfc8414: bool) -> ResponseTemplate {
        let issuer = if self.defects.on(Defect::DiscoveryIssuerMismatch)
            || (rfc8414 && self.defects.on(Defect::Rfc8414IssuerMismatch))
        {
            format!("{}/identity", self.issuer)
        } else {
            self.issuer.clone()
        };
        let mut doc = json!({
            "issuer": issuer,
            "token_endpoint": self.token_endpoint(),
            "introspection_endpoint": format!("{}/connect/introspect", self.issuer),
            "revocation_endpoint": format!("{}/connect/revocation", self.issuer),
            "jwks_uri": format!("{}/.well-known/openid-configuration/jwks", self.issuer),
            "grant_types_supported": ["client_credentials"],
            "dpop_signing_alg_values_supported": super::dpop::ALGS,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
            "scopes_supported": [RESOURCE_SCOPE, "profile", "system/Patient.rs", "system/Observation.rs", "system/*.read"],
            "response_types_supported": ["token"],
            // OIDC Discovery §3 REQUIRED members, as an IdentityServer publishes them.
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        if self.defects.on(Defect::MetadataNoResponseTypes) {
            doc.as_object_mut().map(|o| o.remove("response_types_supported"));
        }
        if self.defects.on(Defect::MetadataTextPlain) {
            return ResponseTemplate::new(200).set_body_raw(doc.to_string(), "text/plain");
        }
        json_ok(&doc)
    }

    /// SMART App Launch 2.2 §2.4 well-known document; JSON whatever the Accept header says.
    fn smart_configuration(&self, request: &Request) -> ResponseTemplate {
        let accept = request.headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        if self.defects.on(Defect::SmartConfigHtmlForBrowsers) && accept.contains("text/html") {
            return ResponseTemplate::new(200)
                .set_body_raw("<html><body>SMART configuration</body></html>", "text/html");
        }
        let mut methods = vec!["client_secret_basic", "private_key_jwt"];
        if self.defects.on(Defect::DiscoveryMissingPrivateKeyJwt) {
            methods.retain(|m| *m != "private_key_jwt");
        }
        let mut capabilities = vec!["client-confidential-asymmetric", "client-confidential-symmetric"];
        if self.defects.on(Defect::SmartConfigNoAsymmetricCapability) {
            capabilities.retain(|c| *c != "client-confidential-asymmetric");
        }
        json_ok(&json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/openid-configuration/jwks", self.issuer),
            "token_endpoint": self.token_endpoint(),
            "introspection_endpoint": format!("{}/connect/introspect", self.issuer),
            "revocation_endpoint": format!("{}/connect/revocation", self.issuer),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
            "scopes_supported": ["system/Patient.rs", "system/Observation.rs", "system/*.read"],
            "capabilities": capabilities,
        }))
    }

    fn token(&self, request: &Request) -> ResponseTemplate {
        let n = self.token_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.defects.on(Defect::TokenServerError10Pct) && n % 10 == 9 {
            return ResponseTemplate::new(500).set_body_string("Internal Server Error");
        }
        let get_allowed = self.defects.on(Defect::TokenEndpointAcceptsGet);
        let form: Vec<(String, String)> = match request.method.as_str() {
            "POST" => form_urlencoded::parse(&request.body).into_owned().collect(),
            "GET" if get_allowed => request.url.query_pairs().into_owned().collect(),
            _ => {
                return ResponseTemplate::new(405)
                    .insert_header("Allow", "POST")
                    .set_body_json(json!({ "error": "invalid_request", "error_description": "use POST" }));
            }
        };
        match self.issue(request, &form) {
            Ok(body) => self.token_response(body),
            Err(e) => self.error_response(e),
        }
    }

    fn issue(&self, request: &Request, form: &[(String, String)]) -> Result<serde_json::Value, OAuthError> {
        let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let presented = self.authenticate(request, form)?;
        let invalid_client = |presented: &Presented| OAuthError {
            status: if presented.via_header && !self.defects.on(Defect::InvalidClient400) { 401 } else { 400 },
            code: "invalid_client",
            description: "client authentication failed",
            basic_challenge: presented.via_header,
            dpop_nonce: false,
        };
        let Some(client) = self.clients.by_id(&presented.client_id) else {
            return Err(invalid_client(&presented));
        };
        let secret_ok = !client.client_secret.is_empty() && client.client_secret == presented.secret;
        if !presented.by_assertion && !secret_ok && !self.defects.on(Defect::AcceptWrongSecret) {
            return Err(invalid_client(&presented));
        }
        let method = match (presented.by_assertion, presented.via_header) {
            (true, _) => AuthMethod::PrivateKeyJwt,
            (false, true) => AuthMethod::ClientSecretBasic,
            (false, false) => AuthMethod::ClientSecretPost,
        };
        let post_refused = method == AuthMethod::ClientSecretPost && self.defects.on(Defect::ClientSecretPostIgnored);
        let unregistered = !client.allows(method) && !self.defects.on(Defect::AcceptUnregisteredMethod);
        if unregistered || post_refused {
            return Err(invalid_client(&presented));
        }
        let grant = match param("grant_type") {
            Some(g) => g,
            None if self.defects.on(Defect::MissingGrantTypeAccepted) => "client_credentials",
            None => return Err(OAuthError::new("invalid_request", "grant_type is required")),
        };
        if grant != "client_credentials" {
            return Err(if self.defects.on(Defect::UnsupportedGrantAsInvalidRequest) {
                OAuthError::new("invalid_request", "bad grant")
            } else {
                OAuthError::new("unsupported_grant_type", "only client_credentials is supported")
            });
        }
        let requested: Vec<&str> =
            param("scope").map(|s| s.split(' ').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        let granted: Vec<String> = if requested.is_empty() {
            client.default_scope.iter().cloned().collect()
        } else {
            let allowed = |s: &&str| client.scopes.iter().any(|a| a == s);
            if !self.defects.on(Defect::IgnoreScopeRestriction) && !requested.iter().all(allowed) {
                return Err(OAuthError::new("invalid_scope", "a requested scope is not allowed for this client"));
            }
            if self.defects.on(Defect::ScopeOrderSensitive) {
                let positions: Vec<usize> =
                    requested.iter().filter_map(|s| client.scopes.iter().position(|a| a == s)).collect();
                if positions.windows(2).any(|w| w[0] > w[1]) {
                    return Err(OAuthError::new("invalid_scope", "scopes out of order"));
                }
            }
            requested.iter().map(|s| s.to_string()).collect()
        };
        let scope = granted.join(" ");
        // RFC 9449: a DPoP proof binds the token to its key; a bad one is refused.
        let dpop = request.headers.get("dpop").and_then(|v| v.to_str().ok());
        let jkt = match dpop {
            Some(_) if self.defects.on(Defect::DpopIgnored) => None,
            Some(proof) => {
                let htu = self.token_endpoint();
                match super::dpop::verify(proof, "POST", &htu, &self.replay, unix_now(), &self.defects) {
                    // §8: a client registered for nonces gets one first, and then must use it.
                    Ok(p) if client.dpop_nonce && p.nonce.as_deref() != Some(self.dpop_nonce.as_str()) => {
                        return Err(OAuthError {
                            dpop_nonce: true,
                            ..OAuthError::new("use_dpop_nonce", "the DPoP proof must carry the server's nonce")
                        });
                    }
                    Ok(_) if client.dpop_nonce && self.defects.on(Defect::DpopNonceNeverTaken) => {
                        return Err(OAuthError::new("invalid_dpop_proof", "the nonce is not valid"));
                    }
                    Ok(p) => Some(p.jkt),
                    Err(Rejection::Unavailable) => return Err(OAuthError::replay_cache_full()),
                    Err(Rejection::Refused(why)) => return Err(OAuthError::new("invalid_dpop_proof", why)),
                }
            }
            None => None,
        };
        // RFC 8707: a token for one of this server's resources names it; an unknown one is refused.
        let resources = [format!("{}{RESOURCE_PATH}", self.issuer), format!("{}{FHIR_RESOURCE_PATH}", self.issuer)];
        let audience = match param("resource") {
            Some(r) if resources.iter().any(|k| k == r) && !self.defects.on(Defect::IgnoreResourceParameter) => {
                r.to_string()
            }
            Some(r) if !resources.iter().any(|k| k == r) && !self.defects.on(Defect::AcceptUnknownResource) => {
                return Err(OAuthError::new("invalid_target", "the requested resource is unknown"));
            }
            _ => format!("{}/resources", self.issuer),
        };
        let now = unix_now();
        let ttl = client.token_ttl_secs.unwrap_or(self.token_ttl_secs) as i64;
        let exp_offset = if self.defects.on(Defect::WrongExpiresIn) { ttl + 600 } else { ttl };
        let jti = random_id();
        if self.defects.on(Defect::EvictLiveTokens) {
            self.tokens.store_bounded(&jti);
        }
        let mut claims = json!({
            "iss": self.issuer, "sub": client.client_id, "client_id": client.client_id,
            "aud": audience, "scope": scope,
            // `iat` is the second the token was issued in; `exp` one second later than `iat + ttl`,
            // so the token lives at least the `expires_in` the answer promises (RFC 6749 §5.1).
            "iat": now, "nbf": now, "exp": now + exp_offset + 1, "jti": jti,
        });
        if let (Some(jkt), Some(o)) = (&jkt, claims.as_object_mut()) {
            o.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        if self.defects.on(Defect::AccessTokenNoAud) {
            claims.as_object_mut().map(|o| o.remove("aud"));
        }
        if let (true, Some(o)) = (self.defects.on(Defect::AccessTokenSubNotClient), claims.as_object_mut()) {
            o.insert("sub".into(), json!(random_id()));
        }
        let typ = if self.defects.on(Defect::AccessTokenTypJwt) { "JWT" } else { "at+jwt" };
        let access_token = self.token_key.sign(&claims, typ);
        let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
        let mut body =
            json!({ "access_token": access_token, "token_type": token_type, "expires_in": ttl, "scope": scope });
        let obj = body.as_object_mut().unwrap_or_else(|| unreachable!());
        if self.defects.on(Defect::TokenTypeNotBearer) && jkt.is_none() {
            obj.insert("token_type".into(), json!("Token"));
        }
        if self.defects.on(Defect::MissingExpiresIn) {
            obj.remove("expires_in");
        }
        if self.defects.on(Defect::OmitScopeWhenDifferent) {
            obj.remove("scope");
        }
        if self.defects.on(Defect::RefreshTokenIssued) {
            obj.insert("refresh_token".into(), json!(random_id()));
        }
        Ok(body)
    }

    /// Reads client credentials from the Authorization header and/or the form.
    fn authenticate(&self, request: &Request, form: &[(String, String)]) -> Result<Presented, OAuthError> {
        let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let header = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        if param("client_assertion").is_some() || param("client_assertion_type").is_some() {
            return self.authenticate_assertion(form, header.is_some());
        }
        let basic = header.and_then(|h| h.strip_prefix("Basic ")).map(|b64| self.decode_basic(b64));
        let form_secret = param("client_secret");
        match (basic, form_secret) {
            (Some(Some(_)), Some(_)) if !self.defects.on(Defect::AcceptTwoAuthMethods) => {
                Err(OAuthError::new("invalid_request", "use one client authentication method"))
            }
            (Some(Some((client_id, secret))), _) => {
                Ok(Presented { client_id, secret, via_header: true, by_assertion: false })
            }
            (Some(None), _) => Err(OAuthError {
                status: 401,
                code: "invalid_client",
                description: "malformed Basic credentials",
                basic_challenge: true,
                dpop_nonce: false,
            }),
            (None, Some(secret)) => Ok(Presented {
                client_id: param("client_id").unwrap_or_default(),
                secret,
                via_header: false,
                by_assertion: false,
            }),
            (None, None) => Err(OAuthError::new("invalid_client", "no client authentication")),
        }
    }

    /// private_key_jwt (RFC 7523 §2.2): the assertion is the credential; refusals are 401
    /// invalid_client (SMART @340).
    fn authenticate_assertion(&self, form: &[(String, String)], with_header: bool) -> Result<Presented, OAuthError> {
        let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if with_header && !self.defects.on(Defect::AcceptTwoAuthMethods) {
            return Err(OAuthError::new("invalid_request", "use one client authentication method"));
        }
        let token_endpoint = self.token_endpoint();
        let verifier = Verifier {
            token_endpoint: &token_endpoint,
            defects: &self.defects,
            replay: &self.replay,
            jwks: &self.jwks_cache,
        };
        match verifier.authenticate(param("client_assertion_type"), param("client_assertion"), &self.clients.clients) {
            Ok(client) => Ok(Presented {
                client_id: client.client_id.clone(),
                secret: String::new(),
                via_header: false,
                by_assertion: true,
            }),
            Err(Rejection::Unavailable) => Err(OAuthError::replay_cache_full()),
            Err(Rejection::Refused(description)) => Err(OAuthError {
                status: 401,
                code: "invalid_client",
                description,
                basic_challenge: false,
                dpop_nonce: false,
            }),
        }
    }

    /// RFC 6749 §2.3.1: Base64, split at the first `:`, then form-urldecode each half.
    fn decode_basic(&self, b64: &str) -> Option<(String, String)> {
        let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
        let (id, secret) = raw.split_once(':')?;
        if self.defects.on(Defect::BasicNotFormDecoded) {
            return Some((id.to_string(), secret.to_string()));
        }
        let decode = |s: &str| -> String {
            form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
        };
        Some((decode(id), decode(secret)))
    }

    fn token_response(&self, body: serde_json::Value) -> ResponseTemplate {
        let mut response = if self.defects.on(Defect::TokenContentTypeText) {
            ResponseTemplate::new(200).set_body_raw(body.to_string(), "text/plain")
        } else {
            ResponseTemplate::new(200).set_body_json(body)
        };
        if !self.defects.on(Defect::NoCacheHeaders) {
            response = response.insert_header("Cache-Control", "no-store").insert_header("Pragma", "no-cache");
        }
        if let Some(delay) = self.token_delay {
            response = response.set_delay(delay);
        }
        response
    }

    fn error_response(&self, e: OAuthError) -> ResponseTemplate {
        let mut response = if e.status == 503 {
            expiring::unavailable()
        } else {
            ResponseTemplate::new(e.status).insert_header("Cache-Control", "no-store")
        };
        if e.basic_challenge && !self.defects.on(Defect::BasicNoWwwAuthenticate) {
            response = response.insert_header("WWW-Authenticate", r#"Basic realm="oauth-harness mock""#);
        }
        if e.dpop_nonce && !self.defects.on(Defect::DpopNonceWithoutHeader) {
            response = response.insert_header("DPoP-Nonce", self.dpop_nonce.as_str());
        }
        if self.defects.on(Defect::ErrorNotJson) {
            let html = format!("<html><body><h1>{} Bad Request</h1></body></html>", e.status);
            return response.set_body_raw(html, "text/html");
        }
        let description = if self.defects.on(Defect::ErrorDescriptionBadCharset) {
            "requête refusée: \"client\" inconnu"
        } else {
            e.description
        };
        response.set_body_json(json!({ "error": e.code, "error_description": description }))
    }

    /// Authenticates a caller of introspection or revocation: the same methods as the token
    /// endpoint; `None` when the caller is not a registered client with the right credentials.
    fn caller(&self, request: &Request, form: &[(String, String)]) -> Option<&super::ClientConfig> {
        let presented = self.authenticate(request, form).ok()?;
        let client = self.clients.by_id(&presented.client_id)?;
        let secret_ok = !client.client_secret.is_empty() && client.client_secret == presented.secret;
        (presented.by_assertion || secret_ok).then_some(client)
    }

    /// RFC 7662: POST `token`; 401 for a caller that is not an authenticated resource server.
    /// RFC 7662 introspection; RFC 9701: a signed JWT answer for a caller that asks for one.
    fn introspect(&self, request: &Request) -> ResponseTemplate {
        let answer = self.introspect_json(request);
        let accept = request.headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !accept.contains(INTROSPECTION_JWT)
            || answer.status() != 200
            || self.defects.on(Defect::IntrospectionJwtIgnored)
        {
            return answer;
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(answer.body()) else { return answer };
        let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let caller = self.caller(request, &form).map(|c| c.client_id.clone()).unwrap_or_default();
        let mut claims = json!({ "iss": self.issuer, "aud": caller, "iat": unix_now(), "token_introspection": body });
        if self.defects.on(Defect::IntrospectionJwtNoAud) {
            claims.as_object_mut().map(|o| o.remove("aud"));
        }
        if self.defects.on(Defect::IntrospectionJwtWrongIss) {
            claims["iss"] = json!(format!("{}/identity", self.issuer));
        }
        let typ = if self.defects.on(Defect::IntrospectionJwtTypJwt) { "JWT" } else { "token-introspection+jwt" };
        ResponseTemplate::new(200)
            .set_body_raw(self.introspection_key.sign(&claims, typ), INTROSPECTION_JWT)
            .insert_header("Cache-Control", "no-store")
    }

    fn introspect_json(&self, request: &Request) -> ResponseTemplate {
        let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let caller_ok = self.caller(request, &form).is_some_and(|c| c.introspects) || self.bearer_introspector(request);
        if request.method.as_str() != "POST" || (!caller_ok && !self.defects.on(Defect::IntrospectNoAuth)) {
            return ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", r#"Basic realm="oauth-harness mock""#)
                .set_body_json(json!({ "error": "invalid_client" }));
        }
        let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()).unwrap_or("");
        let now = unix_now();
        let issued = self.issued(token);
        let live = issued
            .as_ref()
            .is_some_and(|t| !t.revoked && (t.exp > now || self.defects.on(Defect::IntrospectExpiredActive)));
        if let (true, Some(t)) = (live, &issued) {
            let client = self.clients.by_id(&t.client_id);
            let scope = match client {
                Some(c) if self.defects.on(Defect::IntrospectWrongScope) => c.scopes.join(" "),
                _ => t.scope.clone(),
            };
            let mut body = json!({
                "active": true, "scope": scope, "client_id": t.client_id, "sub": t.client_id,
                "iss": self.issuer, "iat": t.iat, "exp": t.exp, "token_type": "Bearer",
            });
            // RFC 9449 §6.2: a DPoP-bound token's binding, for the resource to check the proof.
            if let (Some(jkt), Some(o), false) =
                (&t.jkt, body.as_object_mut(), self.defects.on(Defect::IntrospectionDpopUnbound))
            {
                o.insert("cnf".into(), json!({ "jkt": jkt }));
                o.insert("token_type".into(), json!("DPoP"));
            }
            if self.defects.on(Defect::IntrospectMissingExp) {
                body.as_object_mut().map(|o| o.remove("exp"));
            }
            return json_ok(&body);
        }
        if issued.is_none() && self.defects.on(Defect::IntrospectUnknownActive) {
            return json_ok(
                &json!({ "active": true, "scope": RESOURCE_SCOPE, "client_id": "unknown", "exp": now + 3600 }),
            );
        }
        if self.defects.on(Defect::IntrospectInactiveExtraFields) {
            if let Some(t) = issued {
                return json_ok(&json!({ "active": false, "client_id": t.client_id, "scope": t.scope, "exp": t.exp }));
            }
            return json_ok(&json!({ "active": false, "token_type": "Bearer" }));
        }
        json_ok(&json!({ "active": false }))
    }

    /// RFC 7009: the client the token was issued to revokes it; 200 whatever the token was.
    fn revoke(&self, request: &Request) -> ResponseTemplate {
        let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let Some(caller) = self.caller(request, &form) else {
            return ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", r#"Basic realm="oauth-harness mock""#)
                .set_body_json(json!({ "error": "invalid_client" }));
        };
        let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()).unwrap_or("");
        if let Some(issued) = self.issued(token).filter(|t| t.client_id == caller.client_id) {
            if !self.revokes_access_tokens {
                return ResponseTemplate::new(400).set_body_json(json!({
                    "error": "unsupported_token_type",
                    "error_description": "access tokens are not revoked here"
                }));
            }
            if !self.defects.on(Defect::RevocationIgnored) && !self.tokens.revoke(&issued, unix_now()) {
                // RFC 7009 §2.2.1: the client must assume the token still exists, and may retry.
                return expiring::unavailable();
            }
        }
        ResponseTemplate::new(200)
    }

    /// A protected resource in `realm`, for tokens with a scope `wanted` accepts.
    fn resource(&self, request: &Request, realm: &str, wanted: fn(&str) -> bool) -> ResponseTemplate {
        let header = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        let dpop_scheme =
            header.and_then(|h| h.strip_prefix("DPoP ")).filter(|_| !self.defects.on(Defect::ResourceDpopUnsupported));
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")).or(dpop_scheme) else {
            if self.defects.on(Defect::ResourceAcceptsNoToken) {
                return json_ok(&json!({ "implants": [] }));
            }
            return ResponseTemplate::new(401).insert_header("WWW-Authenticate", realm);
        };
        let live =
            |t: &IssuedToken| !t.revoked && (t.exp > unix_now() || self.defects.on(Defect::ResourceAcceptsExpired));
        let issued = self.issued(token.trim()).filter(live);
        let Some(issued) = issued else {
            let challenge = if self.defects.on(Defect::ResourceInvalidTokenNoError) {
                realm.to_string()
            } else {
                format!(r#"{realm}, error="invalid_token", error_description="the token is unknown or expired""#)
            };
            return ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str());
        };
        // RFC 9068 §4: a token for another of the server's resources is not for this one.
        let own = [format!("{}{}", self.issuer, request.url.path()), format!("{}/resources", self.issuer)];
        let for_us = issued.aud.is_empty() || issued.aud.iter().any(|a| own.contains(a));
        if !for_us && !self.defects.on(Defect::ResourceIgnoresAudience) {
            let scheme = if dpop_scheme.is_some() { "DPoP" } else { realm };
            let challenge =
                format!(r#"{scheme}, error="invalid_token", error_description="the token is for another resource""#);
            return ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str());
        }
        if let Err(refusal) = self.dpop_at_resource(request, token.trim(), &issued, dpop_scheme.is_some()) {
            return refusal;
        }
        let has_scope = issued.scope.split(' ').any(wanted);
        if !has_scope && !self.defects.on(Defect::ResourceIgnoresScope) {
            let challenge = format!(r#"{realm}, error="insufficient_scope", scope="{RESOURCE_SCOPE}""#);
            return ResponseTemplate::new(403).insert_header("WWW-Authenticate", challenge.as_str());
        }
        json_ok(&json!({ "client_id": issued.client_id, "implants": [] }))
    }
}

impl App {
    /// SMART 2.2: a client allowed to introspect may present its own token carrying the
    /// `introspect` scope instead of its credentials.
    fn bearer_introspector(&self, request: &Request) -> bool {
        let header = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else { return false };
        let Some(issued) = self.issued(token.trim()).filter(|t| !t.revoked && t.exp > unix_now()) else { return false };
        let allowed = self.clients.by_id(&issued.client_id).is_some_and(|c| c.introspects);
        allowed
            && issued.scope.split(' ').any(|s| s == INTROSPECT_SCOPE)
            && !self.defects.on(Defect::IntrospectionBearerRefused)
    }

    /// RFC 9449 §7: a DPoP-bound token only with the DPoP scheme and a proof for this request by
    /// its key; an unbound token with the DPoP scheme is no DPoP token. Else the answer: a 401
    /// challenge, or 503 while the replay cache cannot take the proof.
    fn dpop_at_resource(
        &self,
        request: &Request,
        token: &str,
        issued: &IssuedToken,
        dpop_scheme: bool,
    ) -> Result<(), ResponseTemplate> {
        let challenge = |error: &str, description: &str| {
            let algs = super::dpop::ALGS.join(" ");
            let value = format!(r#"DPoP algs="{algs}", error="{error}", error_description="{description}""#);
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", value.as_str())
        };
        let Some(jkt) = &issued.jkt else {
            return if dpop_scheme { Err(challenge("invalid_token", "the token is not DPoP-bound")) } else { Ok(()) };
        };
        if !dpop_scheme {
            return if self.defects.on(Defect::ResourceDpopAsBearer) {
                Ok(())
            } else {
                Err(challenge("invalid_token", "a DPoP-bound token needs the DPoP scheme"))
            };
        }
        let proof = request
            .headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| challenge("invalid_dpop_proof", "no DPoP proof"))?;
        let mut htu = request.url.clone();
        htu.set_query(None);
        let proof = super::dpop::verify(proof, "GET", htu.as_str(), &self.replay, unix_now(), &self.defects).map_err(
            |rejection| match rejection {
                Rejection::Refused(why) => challenge("invalid_dpop_proof", why),
                Rejection::Unavailable => expiring::unavailable(),
            },
        )?;
        if self.defects.on(Defect::ResourceDpopProofUnchecked) {
            return Ok(());
        }
        if proof.ath.as_deref() != Some(crate::protocol::auth::dpop::ath(token).as_str()) {
            return Err(challenge("invalid_dpop_proof", "ath is not the hash of the access token"));
        }
        if &proof.jkt != jkt {
            return Err(challenge("invalid_token", "Invalid DPoP key binding"));
        }
        Ok(())
    }
}

/// 128 random bits, base64url.
fn random_id() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).unwrap_or_else(|_| unreachable!("the system RNG does not fail"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
