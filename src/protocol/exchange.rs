//! One HTTP request and its response, as the checks and the reports see them.
//!
//! The request is recorded redacted at construction (credentials become fingerprints); the
//! response keeps its raw body because checks must read tokens (a JWT's `exp`), and reports
//! redact it on the way out with [`redact_body`].

use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;

use crate::support::secret::fingerprint;

/// How the client authenticated in a request; checks depend on it (RFC 6749 §5.2: 401 after
/// Basic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthUsed {
    ClientSecretBasic,
    ClientSecretPost,
    Both,
    PrivateKeyJwt,
    TlsClientAuth,
    None,
    Bearer,
    /// RFC 9449 §7.1: `Authorization: DPoP` with a proof.
    Dpop,
}

impl AuthUsed {
    pub fn used_authorization_header(self) -> bool {
        matches!(self, AuthUsed::ClientSecretBasic | AuthUsed::Both)
    }

    /// The method put a client secret on the wire.
    pub fn sends_secret(self) -> bool {
        matches!(self, AuthUsed::ClientSecretBasic | AuthUsed::ClientSecretPost | AuthUsed::Both)
    }
}

/// A second metadata document a server publishes (RFC 8414 beside OpenID Discovery): both
/// must name the same issuer.
#[derive(Debug, Clone, Serialize)]
pub struct AlsoPublished {
    pub url: String,
    pub issuer: Option<String>,
}

/// What the step meant to ask, for checks that compare the answer with the question.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestContext {
    pub auth: Option<AuthUsed>,
    pub grant_type: Option<String>,
    pub requested_scope: Option<String>,
    /// For a CIBA request authenticated by private_key_jwt: the assertion's `aud`.
    pub assertion_audience: Option<String>,
    /// For discovery and introspection: the issuer the target is configured with (what a
    /// metadata document and a JWT introspection answer must name).
    pub expected_issuer: Option<String>,
    /// For discovery: which document was asked for (`openid-configuration`,
    /// `oauth-authorization-server`), and the standard places already tried without one.
    pub document: Option<&'static str>,
    pub tried: Vec<String>,
    /// For discovery of OpenID metadata: the RFC 8414 document the server also publishes.
    pub also_published: Option<AlsoPublished>,
    /// For a `jku` assertion: how often the server fetched the harness-served URL.
    pub jku_fetches: Option<usize>,
    /// For an assertion after a `rotate_key` step: which key signed it, and the JWKS fetches.
    pub key_rotation: Option<KeyRotationFacts>,
    /// For introspection, revocation and resource calls: what is known about the token sent.
    pub subject: Option<TokenFacts>,
    /// For CIBA polls: the sequence of polls and what the answer must match.
    pub ciba: Option<CibaFacts>,
    /// The registered id of the client the request is made for, when there is one.
    pub client_id: Option<String>,
    /// What the request deliberately got wrong, as its builder made it.
    pub deviations: Deviations,
    /// The client assertion sent, decoded: its header and claims are no secret (the JWS is).
    pub assertion: Option<AssertionFacts>,
    /// Whether a TLS client certificate went with the request, and whose.
    pub certificate: Option<CertificateFacts>,
    /// RFC 6749 §2.3.1's form-encoding changes the client id or the secret sent over Basic.
    pub credentials_need_encoding: bool,
    /// RFC 9449: the DPoP proof the request carried.
    pub dpop: Option<DpopFacts>,
    /// RFC 8693: what the exchanged subject token is, and who exchanges it.
    pub token_exchange: Option<TokenExchangeFacts>,
    /// RFC 9068 §4: the JWT access token's signature against the server's `jwks_uri`, when a
    /// check of the step reads it.
    pub access_token_signature: Option<Result<(), String>>,
    /// For a JWT introspection answer (RFC 9701): its signature against the server's JWKS.
    pub answer_signature: Option<Result<(), String>>,
    /// RFC 9325: which TLS versions the endpoint accepted.
    pub tls: Option<TlsFacts>,
    /// RFC 8707: the token was asked for another resource than the target's.
    pub for_other_resource: bool,
    /// RFC 8707 §2: the `aud` the target says the server maps the requested resource to.
    pub mapped_audience: Option<String>,
    /// SMART 2.2: an introspection authenticated by the caller's own bearer token.
    pub by_bearer_token: bool,
}

/// What a TLS probe found: each version offered alone, accepted (`Ok`) or refused at the
/// handshake (what the TLS library said), and the floor the target is held to.
#[derive(Debug, Clone, Serialize)]
pub struct TlsFacts {
    pub tls12: Result<(), String>,
    pub tls13: Result<(), String>,
    /// The target requires TLS 1.3 (`tls.minimum: "1.3"`).
    pub tls13_required: bool,
}

/// A token exchange as the checks judge it: the subject token's state, and the exchanging
/// client against the one the token was issued to.
#[derive(Debug, Clone, Serialize)]
pub struct TokenExchangeFacts {
    /// The target client names of who got the subject token, and who exchanges it.
    pub issued_to: String,
    pub exchanged_by: String,
    /// The subject token had expired when it was sent (by `expires_in`, else its `exp`).
    pub subject_expired: bool,
    /// `subject_token_type` named a type the token is not.
    pub wrong_type: bool,
    /// base64url SHA-256 of the certificate the exchanging client presented.
    pub thumbprint: Option<String>,
    /// The subject token's `sub`, when it is a JWT.
    pub subject: Option<String>,
}

impl TokenExchangeFacts {
    /// What the request got wrong on purpose, if anything (a server must refuse it).
    pub fn deviation(&self) -> Option<&'static str> {
        if self.subject_expired {
            Some("the subject token had expired")
        } else if self.wrong_type {
            Some("subject_token_type named a type the token is not")
        } else if self.issued_to != self.exchanged_by {
            Some("another client exchanged the subject token")
        } else {
            None
        }
    }
}

/// An assertion of a case whose client's JWKS was rotated (SMART key rotation).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotationFacts {
    pub signed_with: RotatedKey,
    /// Requests of the case signed with a key the JWKS never held, this one included.
    pub unknown_kid_requests: usize,
    /// The server's fetches of the client's JWKS during those requests.
    pub unknown_kid_fetches: usize,
}

/// Which key signed an assertion after a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotatedKey {
    /// The client's own key, before a new one was added.
    Current,
    /// The key the rotation added (the only one once the old is retired).
    New,
    /// The key the rotation took out of the set.
    Retired,
    /// A key the set never held (an unknown `kid`).
    Unknown,
}

/// The DPoP proof a request carried: its key's thumbprint, and how it was broken, if it was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DpopFacts {
    pub jkt: String,
    pub broken: Option<&'static str>,
    /// The proof of an earlier request, sent again (same `jti`).
    pub replayed: bool,
    /// At a resource: how the DPoP-bound token was presented (RFC 9449 §7).
    pub presented: Option<crate::model::ResourceDpop>,
    /// The server asked for a nonce first (§8, §9): whether its answer carried `DPoP-Nonce`.
    pub nonce_asked: Option<NonceAsked>,
}

/// A `use_dpop_nonce` answer the harness got before this exchange.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NonceAsked {
    /// The answer carried a `DPoP-Nonce` header, and the proof of this exchange used it.
    pub header: bool,
}

/// The deliberate deviations of a request, so a check that judges a refusal can tell that the
/// request it sees is the one its rule is about (a check's name is true only then).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Deviations {
    /// A random secret in place of the registered one.
    pub wrong_secret: bool,
    /// A client id nobody registered.
    pub unknown_client: bool,
    /// The case's previous assertion, sent again.
    pub replayed_assertion: bool,
    /// An assertion signed by a key the server does not know.
    pub unregistered_key: bool,
    /// An assertion whose signature was corrupted.
    pub bad_signature: bool,
    /// A method the client is not registered for (as its target says).
    pub unregistered_method: bool,
    /// A CIBA request for the target's unknown user (`ciba.users.unknown`).
    pub unknown_user: bool,
    /// An id_token presented to the resource as an access token.
    pub id_token_as_access_token: bool,
}

/// A client assertion as it was sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AssertionFacts {
    pub header: serde_json::Map<String, serde_json::Value>,
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The kid the client's key is registered under.
    pub registered_kid: Option<String>,
    /// The token endpoint the assertion is meant for.
    pub token_endpoint: String,
    /// The algorithm the client's key is registered for.
    pub registered_alg: Option<String>,
    /// What the server advertises in `token_endpoint_auth_signing_alg_values_supported`, if it says.
    pub advertised_algs: Option<Vec<String>>,
}

/// The TLS client certificate of a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CertificateFacts {
    pub presented: bool,
    /// The CN of the certificate's subject, when one was presented.
    pub subject_cn: Option<String>,
    /// base64url SHA-256 of the certificate presented (RFC 8705 `x5t#S256`).
    pub thumbprint: Option<String>,
    /// The client registered for certificate-bound access tokens (RFC 8705 §3.4): a token
    /// issued on this request must then be bound to the certificate.
    pub bound_tokens: bool,
}

/// What CIBA checks compare the final poll answer with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CibaFacts {
    pub polls: Vec<PollRecord>,
    pub client_id: String,
    pub issuer: String,
    /// The request's auth_req_id (a credential: never serialized).
    #[serde(skip)]
    pub auth_req_id: String,
    /// The id_token's signature checked against the server's `jwks_uri`.
    pub id_token_signature: Option<Result<(), String>>,
    /// The target client names of who made the backchannel request, and who polled.
    pub requested_by: String,
    pub polled_by: String,
    /// An earlier poll of the case already got tokens for this auth_req_id.
    pub already_exchanged: bool,
    /// The request's lifetime, as the backchannel answer's `expires_in` gave it.
    pub expires_in_ms: u64,
}

/// One poll, as the checks see the sequence.
#[derive(Debug, Clone, Serialize)]
pub struct PollRecord {
    /// Since the backchannel answer arrived.
    pub at_ms: u64,
    pub status: u16,
    pub error: Option<String>,
    /// The wait before this poll.
    pub waited_ms: u64,
    /// The interval in force when it was sent: the announced one, plus 5 s per `slow_down`.
    /// A wait shorter than this is polling too fast (CIBA §11).
    pub interval_ms: u64,
}

/// What the harness knows about a token it obtained, to compare with what servers say of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenFacts {
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scope: the answer's `scope`, else the requested one.
    pub scope: Option<String>,
    pub expires_in: Option<i64>,
    /// Unix time the answer arrived.
    pub received_at: i64,
    /// Unix time the request left, when known: the server started counting `expires_in` no
    /// earlier than this, and no later than `received_at`.
    pub sent_at: Option<i64>,
    /// `exp` and `iat` of a JWT access token.
    pub jwt_exp: Option<i64>,
    pub jwt_iat: Option<i64>,
    /// An earlier step of the case revoked it.
    pub revoked: bool,
    /// base64url SHA-256 of the certificate the client presented when the token was issued.
    pub issued_with_cert: Option<String>,
    /// The client registered for certificate-bound tokens (RFC 8705 §3.4).
    pub bound_tokens: bool,
    /// The certificate the token is bound to (`cnf.x5t#S256`), from the JWT or from introspection.
    pub cnf: Option<String>,
    /// RFC 9449: the thumbprint of the proof key the token was asked with, when the server
    /// answered token_type DPoP.
    pub dpop_jkt: Option<String>,
    /// Asked for another resource than the target's (RFC 8707): the target's must refuse it.
    pub for_other_resource: bool,
}

impl TokenFacts {
    /// When the token must stop being accepted: receipt + `expires_in` (the server's promise to
    /// the client, RFC 6749 §5.1), else the JWT's `exp`.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_in.map(|e| self.received_at.saturating_add(e)).or(self.jwt_exp)
    }

    /// Until when the token is surely alive: request sent + `expires_in`, else the JWT's `exp`.
    /// A slow answer (a busy machine) makes this earlier than [`Self::expires_at`], by as much as
    /// the answer took: rules about live tokens are judged against this one, rules about dead
    /// ones against `expires_at`, so neither blames the server for the time the answer took.
    pub fn alive_until(&self) -> Option<i64> {
        let sent = self.sent_at.unwrap_or(self.received_at);
        self.expires_in.map(|e| sent.saturating_add(e)).or(self.jwt_exp)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    /// Header values with credentials already replaced by fingerprints.
    pub headers: Vec<(String, String)>,
    /// Form body with secret values already replaced by fingerprints.
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
    /// The server sent more than the body cap; `body` holds the first part only.
    pub truncated: bool,
    #[serde(serialize_with = "serialize_millis")]
    pub elapsed: Duration,
    #[serde(skip)]
    json: OnceLock<Option<serde_json::Value>>,
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl RecordedResponse {
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>, truncated: bool, elapsed: Duration) -> Self {
        Self { status, headers, body, truncated, elapsed, json: OnceLock::new() }
    }

    /// First value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The media type without parameters, lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The body parsed as JSON, if it is complete, valid JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| {
                if self.truncated {
                    return None;
                }
                serde_json::from_slice(&self.body).ok()
            })
            .as_ref()
    }

    /// The body as a JSON object, if it is one.
    pub fn json_object(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.json().and_then(|v| v.as_object())
    }

    pub fn json_str(&self, member: &str) -> Option<&str> {
        self.json_object()?.get(member)?.as_str()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A short, redacted description for failure messages: status, content type, body excerpt.
    pub fn summary(&self) -> String {
        let mut s = format!("status {}", self.status);
        if let Some(ct) = self.header("content-type") {
            s.push_str(&format!(", Content-Type: {ct}"));
        }
        s.push_str(&format!(", body: {}", self.body_excerpt(160)));
        s
    }

    /// The body, redacted and cut to `max` characters.
    pub fn body_excerpt(&self, max: usize) -> String {
        if self.body.is_empty() {
            return String::from("(empty)");
        }
        let text = redact_body(&self.body, self.json());
        let mut excerpt: String = text.chars().take(max).collect();
        if text.chars().count() > max || self.truncated {
            excerpt.push('…');
        }
        if self.truncated {
            excerpt.push_str(&format!(" (truncated at {} bytes)", self.body.len()));
        }
        excerpt
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
    pub context: RequestContext,
}

/// JSON members whose values are credentials: replaced by their fingerprint in every report.
pub const SENSITIVE_MEMBERS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "token",
    "auth_req_id",
    "device_code",
    "code",
];

/// The body as text for a report: JSON with sensitive members fingerprinted, otherwise the
/// (lossy UTF-8) text. Free-text secrets are scrubbed later by the run's `Redactor`.
pub fn redact_body(body: &[u8], json: Option<&serde_json::Value>) -> String {
    match json {
        Some(value) => {
            let mut value = value.clone();
            redact_json(&mut value);
            serde_json::to_string(&value).unwrap_or_default()
        }
        // A body that is one compact JWS (an RFC 9701 introspection answer) is shown as its
        // fingerprint, like every token-shaped value.
        None => {
            let text = String::from_utf8_lossy(body).into_owned();
            let trimmed = text.trim();
            let jws = trimmed.split('.').count() == 3
                && trimmed.len() > 40
                && trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if jws { fingerprint(trimmed) } else { mask_named_values(&text) }
        }
    }
}

/// Fingerprints the value after every sensitive member name in a body that is not complete JSON
/// (form-encoded, a BOM before the JSON, a body cut at the size limit): the run only learns a
/// token's value from parsed JSON, so without this an unparseable answer would show it raw.
fn mask_named_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let is_value_end = |b: u8| b"&\",;}]<> \t\r\n'".contains(&b);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let name = SENSITIVE_MEMBERS.iter().find(|name| {
            bytes[i..].starts_with(name.as_bytes())
                && (i == 0 || !is_name_byte(bytes[i - 1]))
                && bytes.get(i + name.len()).is_none_or(|&b| !is_name_byte(b))
        });
        let Some(name) = name else {
            i += 1;
            continue;
        };
        // After the name: an optional closing quote, blanks, `=` or `:`, blanks, an opening quote.
        let mut j = i + name.len();
        j += usize::from(bytes.get(j) == Some(&b'"'));
        while bytes.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if !matches!(bytes.get(j), Some(b'=' | b':')) {
            i += name.len();
            continue;
        }
        j += 1;
        while bytes.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        j += usize::from(bytes.get(j) == Some(&b'"'));
        let start = j;
        while bytes.get(j).is_some_and(|&b| !is_value_end(b)) {
            j += 1;
        }
        // Short values are words ("code: 500" on an error page), not credentials.
        if j - start >= crate::support::secret::MIN_SCRUB_LEN {
            out.push_str(&text[copied..start]);
            out.push_str(&fingerprint(&text[start..j]));
            copied = j;
        }
        i = j.max(i + name.len());
    }
    out.push_str(&text[copied..]);
    out
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SENSITIVE_MEMBERS.contains(&key.as_str()) {
                    if let Some(s) = v.as_str() {
                        *v = serde_json::Value::String(fingerprint(s));
                        continue;
                    }
                }
                redact_json(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> RecordedResponse {
        RecordedResponse::new(
            200,
            vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
            body.as_bytes().to_vec(),
            false,
            Duration::ZERO,
        )
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        assert_eq!(response("{}").media_type().as_deref(), Some("application/json"));
    }

    #[test]
    fn a_body_that_is_not_json_shows_no_token() {
        let form = "access_token=LEAKYTOKEN0123456789&token_type=Bearer&expires_in=60";
        let with_bom = "\u{feff}{\"access_token\" : \"LEAKYTOKEN0123456789\",\"refresh_token\":\"R-LEAKY-99\",\"token_type\":\"Bearer\"}";
        let cut = "{\"token_type\":\"Bearer\",\"access_token\":\"LEAKYTOKEN01234";
        for body in [form, with_bom, cut] {
            let shown = redact_body(body.as_bytes(), None);
            assert!(!shown.contains("LEAKY"), "{shown}");
            assert!(shown.contains("token_type"), "the rest of the body stays readable: {shown}");
        }
        // A word that only contains a member name, or a name with no value, is left alone.
        let prose = "the tokens expired; see access_token docs";
        assert_eq!(redact_body(prose.as_bytes(), None), prose);
    }

    #[test]
    fn excerpt_redacts_tokens() {
        let r = response(r#"{"access_token":"eyJhbGciOi.secret.sig","token_type":"Bearer"}"#);
        let excerpt = r.body_excerpt(500);
        assert!(!excerpt.contains("eyJhbGciOi"), "{excerpt}");
        assert!(excerpt.contains("Bearer"));
    }
}
