//! Request handling of the PSC mock (behind its TLS front).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::http_server::{Handle, Reply as ResponseTemplate, Request};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{CLIENT_SCOPES, Config, Defect, MTLS_PREFIX, PscAuth, PscClient, REALM, UserBehaviour};
use crate::mock::expiring::{self, ExpiringMap, Insert};
use crate::mock::signing::SigningKey;
use crate::support::clock::unix_now;
use crate::support::http_server::{SELF_SIGNED_HEADER, SUBJECT_HEADER, THUMBPRINT_HEADER};

pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
const EXCHANGE_GRANT: &str = crate::protocol::flows::token_exchange::GRANT_TYPE;
const ACCESS_TOKEN_TYPE: &str = crate::protocol::flows::token_exchange::ACCESS_TOKEN_TYPE;
/// The audience of exchanged tokens when the request names none.
const EXCHANGE_AUDIENCE: &str = "psc-protected-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug)]
struct Pending {
    client_id: String,
    login_hint: String,
    scope: String,
    created: Instant,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    answer: Answer,
    answer_at: Option<Instant>,
    exchanged: bool,
}

pub struct App {
    issuer: String,
    config: Config,
    clients: Vec<PscClient>,
    key: Arc<SigningKey>,
    /// By auth_req_id, each until [`REMEMBERED_AFTER_EXPIRY_SECS`] past its expiry.
    requests: Mutex<ExpiringMap<Pending>>,
    counter: Mutex<u64>,
}

/// How long an expired request is still known: a poll after `expires_in` is told
/// `expired_token` (CIBA §11), not that the id is unknown.
const REMEMBERED_AFTER_EXPIRY_SECS: i64 = 600;

struct Refusal(u16, &'static str, &'static str);

/// Who a request authenticated as.
struct Authenticated {
    client_id: String,
    method: crate::model::AuthMethod,
    thumbprint: Option<String>,
}

/// `Authorization: Basic` credentials, form-decoded after Base64 (RFC 6749 §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::STANDARD;
    let decoded = STANDARD.decode(header.strip_prefix("Basic ")?).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((decode(id)?, decode(secret)?))
}

impl App {
    pub fn new(issuer: String, config: Config, clients: Vec<PscClient>, key: Arc<SigningKey>) -> Self {
        let requests = Mutex::new(ExpiringMap::new(config.store_limit));
        Self { issuer, config, clients, key, requests, counter: Mutex::new(0) }
    }

    fn on(&self, d: Defect) -> bool {
        self.config.defects.on(d)
    }

    /// The client a request authenticates as, by the method it is registered for (CIBA §7.1),
    /// with the thumbprint of the certificate it presented, if any (tokens are bound to it).
    fn client(&self, request: &Request, form: &[(String, String)]) -> Result<Authenticated, Refusal> {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let claimed = param("client_id");
        let unauthorized = Refusal(401, "invalid_client", "client authentication failed");
        let thumbprint = header(THUMBPRINT_HEADER);
        let found = |id: &str| self.clients.iter().find(|c| c.client_id == id);
        let done = |c: &PscClient| {
            Ok(Authenticated { client_id: c.client_id.to_string(), method: c.method(), thumbprint: thumbprint.clone() })
        };
        // private_key_jwt: the assertion is the credential.
        if let Some(assertion) = param("client_assertion") {
            let client = self.verify_assertion(&assertion).ok_or(unauthorized)?;
            return done(client);
        }
        // client_secret_basic, then client_secret_post.
        if let Some((id, secret)) = header("authorization").as_deref().and_then(basic_credentials) {
            return match found(&id) {
                Some(c) if matches!(c.auth, PscAuth::Secret { secret: s, basic: true } if s == secret) => done(c),
                _ => Err(Refusal(401, "invalid_client", "client authentication failed")),
            };
        }
        if let (Some(id), Some(secret)) = (claimed.as_deref(), param("client_secret")) {
            return match found(id) {
                Some(c) if matches!(c.auth, PscAuth::Secret { secret: s, basic: false } if s == secret) => done(c),
                _ => Err(unauthorized),
            };
        }
        // The certificate: self-signed ones by thumbprint, CA-issued ones by subject DN.
        match (header(SUBJECT_HEADER), header(SELF_SIGNED_HEADER).is_some()) {
            (Some(_), true) => {
                let t = thumbprint.clone().unwrap_or_default();
                let c = self
                    .clients
                    .iter()
                    .find(|c| matches!(&c.auth, PscAuth::SelfSigned { thumbprint } if *thumbprint == t));
                c.map(done).unwrap_or(Err(unauthorized))
            }
            (Some(subject), false) => {
                let c = self
                    .clients
                    .iter()
                    .find(|c| matches!(&c.auth, PscAuth::Certificate { subject: s } if *s == subject));
                match c {
                    Some(c) => done(c),
                    None if self.on(Defect::MtlsAnySubject) => {
                        claimed.as_deref().and_then(found).map(done).unwrap_or(Err(unauthorized))
                    }
                    None => Err(unauthorized),
                }
            }
            (None, _) if self.on(Defect::MtlsNotEnforced) => {
                claimed.as_deref().and_then(found).map(done).unwrap_or(Err(unauthorized))
            }
            (None, _) => Err(unauthorized),
        }
    }

    /// A client assertion (RFC 7523 §3) of a private_key_jwt client: signed by its key, iss =
    /// sub = client_id, unexpired, for an audience CIBA §7.1 allows (the issuer, the token
    /// endpoint, the backchannel endpoint).
    fn verify_assertion(&self, assertion: &str) -> Option<&PscClient> {
        let unverified = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(assertion).ok()?;
        let iss = unverified.claims.get("iss")?.as_str()?.to_string();
        let client = self.clients.iter().find(|c| c.client_id == iss)?;
        let PscAuth::PrivateKeyJwt { public_pem } = &client.auth else { return None };
        let key = jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()).ok()?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES384);
        let audiences: Vec<String> = if self.on(Defect::AssertionAudTokenEndpointOnly) {
            vec![self.token_endpoint()]
        } else {
            vec![self.issuer.clone(), self.token_endpoint(), self.backchannel_endpoint()]
        };
        validation.set_audience(&audiences);
        validation.set_issuer(&[&iss]);
        validation.sub = Some(iss.clone());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).ok().map(|_| client)
    }

    fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    fn backchannel_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/ext/ciba/auth", self.issuer)
    }

    fn new_auth_req_id(&self) -> String {
        if self.on(Defect::WeakAuthReqId) {
            let mut n = self.counter.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            return n.to_string();
        }
        use aws_lc_rs::rand::{SecureRandom, SystemRandom};
        let mut bytes = [0u8; 24];
        SystemRandom::new().fill(&mut bytes).unwrap_or_else(|_| unreachable!("the system RNG does not fail"));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn discovery(&self) -> ResponseTemplate {
        let modes: Vec<&str> = if self.on(Defect::DiscoveryNoPollMode) { vec!["ping"] } else { vec!["poll"] };
        let mut doc = self.metadata(modes);
        if self.config.mtls_endpoint_aliases {
            let alias = |path: &str| format!("{}{MTLS_PREFIX}{path}", self.issuer);
            doc["mtls_endpoint_aliases"] = json!({
                "token_endpoint": alias("/protocol/openid-connect/token"),
                "backchannel_authentication_endpoint": alias("/protocol/openid-connect/ext/ciba/auth"),
                "introspection_endpoint": alias("/protocol/openid-connect/token/introspect"),
            });
        }
        ResponseTemplate::new(200).set_body_json(doc)
    }

    fn metadata(&self, modes: Vec<&str>) -> serde_json::Value {
        json!({
            "issuer": self.issuer,
            "token_endpoint": format!("{}/protocol/openid-connect/token", self.issuer),
            "jwks_uri": format!("{}/protocol/openid-connect/certs", self.issuer),
            "backchannel_authentication_endpoint": format!("{}/protocol/openid-connect/ext/ciba/auth", self.issuer),
            "backchannel_token_delivery_modes_supported": modes,
            "backchannel_user_code_parameter_supported": false,
            "introspection_endpoint": format!("{}/protocol/openid-connect/token/introspect", self.issuer),
            "grant_types_supported": [CIBA_GRANT, EXCHANGE_GRANT, "refresh_token"],
            "token_endpoint_auth_methods_supported": [
                "tls_client_auth", "self_signed_tls_client_auth", "client_secret_basic", "client_secret_post", "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384"],
            "tls_client_certificate_bound_access_tokens": true,
            "acr_values_supported": ["eidas1"],
            "scopes_supported": ["openid", "scope_all"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES384"],
        })
    }

    fn backchannel(&self, request: &Request, form: &[(String, String)]) -> Result<serde_json::Value, Refusal> {
        let param = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let client_id = self.client(request, form)?.client_id;
        let scope = param("scope").unwrap_or("");
        if !scope.split(' ').any(|s| s == "openid") && !self.on(Defect::OpenidScopeOptional) {
            return Err(Refusal(400, "invalid_scope", "scope must contain openid"));
        }
        let allowed = scope.split(' ').filter(|s| !s.is_empty()).all(|s| CLIENT_SCOPES.contains(&s));
        if !allowed && !self.on(Defect::CibaIgnoreScope) {
            return Err(Refusal(400, "invalid_scope", "a requested scope is not allowed for this client"));
        }
        let hints = ["login_hint", "id_token_hint", "login_hint_token"].iter().filter(|h| param(h).is_some()).count();
        if hints != 1 && !(hints > 1 && self.on(Defect::TwoHintsAccepted)) {
            return Err(Refusal(400, "invalid_request", "exactly one of login_hint, id_token_hint, login_hint_token"));
        }
        if param("acr_values") != Some("eidas1") {
            return Err(Refusal(400, "invalid_request", "acr_values must be eidas1"));
        }
        let binding_ok =
            param("binding_message").is_some_and(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_digit()));
        if !binding_ok {
            return Err(Refusal(400, "invalid_binding_message", "binding_message must be two digits"));
        }
        if !matches!(param("channel"), Some("CARD" | "MOBILE")) {
            return Err(Refusal(400, "invalid_request", "channel must be CARD or MOBILE"));
        }
        let login_hint = param("login_hint").unwrap_or("");
        let behaviour = match self.config.users.get(login_hint) {
            Some(b) => *b,
            None if hints > 1 || self.on(Defect::UnknownUserAccepted) => UserBehaviour::ApprovesAfterMs(1500),
            None => return Err(Refusal(400, "unknown_user_id", "no professional with this login_hint")),
        };
        // CIBA §7.1.1: requested_expiry, a number or a string holding one; never longer than ours.
        let expires_in = match param("requested_expiry").map(|r| r.trim().parse::<u64>()) {
            None => self.config.expires_in_secs,
            Some(Ok(r)) if r > 0 => r.min(self.config.expires_in_secs),
            Some(_) => return Err(Refusal(400, "invalid_request", "requested_expiry must be a positive number")),
        };
        let now = Instant::now();
        let (answer, answer_at) = match behaviour {
            UserBehaviour::ApprovesAfterMs(ms) => (Answer::Approved, Some(now + Duration::from_millis(ms))),
            UserBehaviour::DeniesAfterMs(ms) => (Answer::Denied, Some(now + Duration::from_millis(ms))),
            UserBehaviour::NeverAnswers | UserBehaviour::Manual => (Answer::Pending, None),
        };
        let id = self.new_auth_req_id();
        let pending = Pending {
            client_id,
            login_hint: login_hint.to_string(),
            scope: scope.to_string(),
            created: now,
            expires: now + Duration::from_secs(expires_in),
            interval: Duration::from_secs(self.config.interval_secs),
            last_poll: None,
            answer,
            answer_at,
            exchanged: false,
        };
        {
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            if self.config.one_pending_per_user {
                requests
                    .retain(|p| p.exchanged || p.client_id != pending.client_id || p.login_hint != pending.login_hint);
            }
            let now = unix_now();
            let until = now.saturating_add(expires_in as i64).saturating_add(REMEMBERED_AFTER_EXPIRY_SECS);
            if requests.insert(expiring::key(&[&id]), until, pending, now) == Insert::Full {
                return Err(Refusal(503, "temporarily_unavailable", "the mock holds as many live requests as it may"));
            }
        }
        let mut body = json!({ "auth_req_id": id, "expires_in": expires_in, "interval": self.config.interval_secs });
        if self.on(Defect::IntervalMissing) {
            body.as_object_mut().map(|o| o.remove("interval"));
        }
        Ok(body)
    }

    fn token(&self, request: &Request, form: &[(String, String)]) -> Result<serde_json::Value, Refusal> {
        let param = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let who = self.client(request, form)?;
        let (client_id, thumbprint) = (who.client_id.clone(), who.thumbprint.clone());
        if param("grant_type") == Some(EXCHANGE_GRANT) {
            return self.token_exchange(&who, form);
        }
        if param("grant_type") != Some(CIBA_GRANT) {
            return Err(Refusal(
                400,
                "unsupported_grant_type",
                "only the CIBA and token exchange grants are supported here",
            ));
        }
        let id = param("auth_req_id").unwrap_or("");
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = requests.get_mut(&expiring::key(&[id]), unix_now()) else {
            return Err(Refusal(400, "invalid_grant", "unknown auth_req_id"));
        };
        // The defect seen on a real server: only certificate clients were compared.
        let compared = !self.on(Defect::CrossClientOtherMethod) || who.method.uses_certificate();
        if p.client_id != client_id && compared && !self.on(Defect::CrossClient) {
            return Err(Refusal(400, "invalid_grant", "auth_req_id was issued to another client"));
        }
        if p.exchanged && !self.on(Defect::ReuseAuthReqId) {
            return Err(Refusal(400, "invalid_grant", "auth_req_id was already exchanged"));
        }
        let now = Instant::now();
        let expires =
            if self.on(Defect::ExpiredTooEarly) { p.created + (p.expires - p.created) / 3 } else { p.expires };
        if now > expires && !self.on(Defect::NoExpiry) {
            return Err(Refusal(400, "expired_token", "the authentication request has expired"));
        }
        let answered = p.answer_at.is_some_and(|at| now >= at);
        let too_fast = p.last_poll.unwrap_or(p.created) + p.interval > now + Duration::from_millis(50);
        p.last_poll = Some(now);
        match (answered, p.answer) {
            (true, Answer::Approved) => {}
            (true, Answer::Denied) if !self.on(Defect::AccessDeniedAsPending) => {
                return Err(Refusal(403, "access_denied", "the professional refused"));
            }
            _ if self.on(Defect::TokenBeforeApproval) => {}
            _ => {
                if too_fast && !self.on(Defect::NoSlowDown) {
                    p.interval += Duration::from_secs(5);
                    return Err(Refusal(400, "slow_down", "polled faster than the interval"));
                }
                return Err(Refusal(400, "authorization_pending", "the professional has not answered yet"));
            }
        }
        p.exchanged = true;
        let (login_hint, scope) = (p.login_hint.clone(), p.scope.clone());
        drop(requests);
        let iat = unix_now();
        let lifetime = self.config.token_lifetime_secs as i64;
        let mut access = json!({
            "iss": self.issuer, "sub": login_hint, "azp": client_id, "aud": "account", "scope": scope,
            "iat": iat, "exp": iat + if self.on(Defect::CibaWrongExpiresIn) { 3600 } else { lifetime },
            "acr": "eidas1", "typ": "Bearer",
        });
        if let (Some(t), false) = (thumbprint, self.on(Defect::CnfMissing)) {
            access["cnf"] = json!({ "x5t#S256": t });
        }
        let aud = if self.on(Defect::IdTokenWrongAud) { "someone-else".to_string() } else { client_id.clone() };
        let id_token = json!({
            "iss": self.issuer, "sub": login_hint, "aud": aud, "azp": client_id, "iat": iat, "exp": iat + lifetime,
            "auth_time": iat, "acr": "eidas1", "urn:openid:params:jwt:claim:auth_req_id": id, "typ": "ID",
        });
        Ok(json!({
            "access_token": self.key.sign(&access, "JWT"),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "id_token": self.key.sign(&id_token, "JWT"),
            "refresh_token": URL_SAFE_NO_PAD.encode(format!("refresh-{id}")),
            "refresh_expires_in": 1800,
            "session_state": URL_SAFE_NO_PAD.encode(format!("session-{id}")),
            "scope": scope,
        }))
    }

    /// RFC 8693 token exchange, as the ANS profiles it for APIs protected by PSC: a live access
    /// token of this mock, presented by the client it is bound to, becomes a token for the API
    /// bound to the certificate of this request. Every refusal is invalid_request (§2.2.2).
    fn token_exchange(&self, who: &Authenticated, form: &[(String, String)]) -> Result<serde_json::Value, Refusal> {
        let param = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let invalid = |why| Err(Refusal(400, "invalid_request", why));
        if param("subject_token_type") != Some(ACCESS_TOKEN_TYPE) && !self.on(Defect::ExchangeAnyTokenType) {
            return invalid("subject_token_type must be urn:ietf:params:oauth:token-type:access_token");
        }
        let Some(claims) = param("subject_token").and_then(|t| self.key.verify(t)) else {
            return invalid("the subject token is not an access token of this server");
        };
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64).unwrap_or(0);
        if exp <= unix_now() && !self.on(Defect::ExchangeAcceptsExpired) {
            return invalid("the subject token has expired");
        }
        // The token's holder proves itself: the certificate it is bound to, else its client id.
        let bound = claims.get("cnf").and_then(|c| c.get("x5t#S256")).and_then(|t| t.as_str());
        let holder = match bound {
            Some(t) => who.thumbprint.as_deref() == Some(t),
            None => claims.get("azp").and_then(|a| a.as_str()) == Some(who.client_id.as_str()),
        };
        if !holder && !self.on(Defect::ExchangeOtherClient) {
            return invalid("the subject token was issued to another client");
        }
        let iat = unix_now();
        let lifetime = self.config.token_lifetime_secs as i64;
        let mut access = json!({
            "iss": self.issuer, "sub": claims.get("sub"), "azp": who.client_id,
            "aud": param("audience").unwrap_or(EXCHANGE_AUDIENCE), "scope": claims.get("scope"),
            "iat": iat, "exp": iat + lifetime, "acr": claims.get("acr"), "typ": "Bearer",
        });
        if let (Some(t), false) = (&who.thumbprint, self.on(Defect::ExchangeUnbound)) {
            access["cnf"] = json!({ "x5t#S256": t });
        }
        let mut body = json!({
            "access_token": self.key.sign(&access, "JWT"),
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime,
        });
        if self.on(Defect::ExchangeNoIssuedTokenType) {
            body.as_object_mut().map(|o| o.remove("issued_token_type"));
        }
        Ok(body)
    }

    /// A stand-in for the API the tokens are for: it accepts a valid access token of this mock,
    /// and a certificate-bound one only with its certificate (RFC 8705 §3).
    fn resource(&self, request: &Request) -> ResponseTemplate {
        let challenge = |error: &str| {
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", &format!("Bearer error=\"{error}\""))
        };
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let Some(token) = header("authorization").and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned)) else {
            return ResponseTemplate::new(401).insert_header("WWW-Authenticate", "Bearer");
        };
        // The defect: any live token this mock signed, whatever it is (an id_token, too).
        let any_token = || {
            let claims = self.key.verify(&token)?;
            (claims.get("exp").and_then(|e| e.as_i64())? > unix_now()).then_some(claims)
        };
        let claims = self
            .live_access_token(&token)
            .or_else(|| self.on(Defect::ResourceAcceptsIdToken).then(any_token).flatten());
        let Some(claims) = claims else { return challenge("invalid_token") };
        let bound = claims.get("cnf").and_then(|c| c.get("x5t#S256")).and_then(|t| t.as_str()).map(str::to_owned);
        if let Some(bound) = bound {
            if header(THUMBPRINT_HEADER).as_deref() != Some(bound.as_str()) && !self.on(Defect::ResourceIgnoresBinding)
            {
                return challenge("invalid_token");
            }
        }
        ResponseTemplate::new(200).set_body_json(json!({ "resource": "psc-test-resource", "sub": claims.get("sub") }))
    }

    /// An access token this mock signed that has not expired, as its claims.
    fn live_access_token(&self, token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        let claims = self.key.verify(token)?;
        let exp = claims.get("exp").and_then(|e| e.as_i64())?;
        (claims.get("typ").and_then(|t| t.as_str()) == Some("Bearer") && exp > unix_now()).then_some(claims)
    }

    /// Token introspection (RFC 7662) for the mock's clients, with the binding (RFC 8705 §3.2).
    fn introspect(&self, request: &Request, form: &[(String, String)]) -> ResponseTemplate {
        if let Err(r) = self.client(request, form) {
            return refusal(r);
        }
        let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()).unwrap_or("");
        let Some(claims) = self.live_access_token(token) else {
            return ResponseTemplate::new(200).set_body_json(json!({ "active": false }));
        };
        let mut body = json!({
            "active": true, "scope": claims.get("scope"), "client_id": claims.get("azp"),
            "sub": claims.get("sub"), "exp": claims.get("exp"), "iat": claims.get("iat"), "token_type": "Bearer",
        });
        if let (Some(cnf), false) = (claims.get("cnf"), self.on(Defect::IntrospectionNoCnf)) {
            body["cnf"] = cnf.clone();
        }
        ResponseTemplate::new(200).insert_header("Cache-Control", "no-store").set_body_json(body)
    }

    /// A test-only hook: the professional approves (or denies) a pending request.
    fn test_answer(&self, id: &str, approve: bool) -> ResponseTemplate {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.get_mut(&expiring::key(&[id]), unix_now()) {
            Some(p) => {
                p.answer = if approve { Answer::Approved } else { Answer::Denied };
                p.answer_at = Some(Instant::now());
                ResponseTemplate::new(204)
            }
            None => ResponseTemplate::new(404),
        }
    }
}

fn refusal(r: Refusal) -> ResponseTemplate {
    let response = if r.0 == 503 {
        expiring::unavailable()
    } else {
        ResponseTemplate::new(r.0).insert_header("Cache-Control", "no-store")
    };
    response.set_body_json(json!({ "error": r.1, "error_description": r.2 }))
}

/// The request as an endpoint that never asked for a client certificate sees it.
fn without_certificate(request: &Request) -> Request {
    let mut headers = request.headers.clone();
    for name in [SUBJECT_HEADER, THUMBPRINT_HEADER, SELF_SIGNED_HEADER] {
        headers.remove(name);
    }
    Request { url: request.url.clone(), method: request.method.clone(), headers, body: request.body.clone() }
}

impl Handle for App {
    fn handle(&self, request: &Request) -> ResponseTemplate {
        let Some(realm_path) = request.url.path().strip_prefix(REALM) else { return ResponseTemplate::new(404) };
        // With aliases, mutual TLS happens at the aliases alone: elsewhere no certificate counts
        // (the test resource and hook are not the server's endpoints: they keep theirs).
        let aliases = self.config.mtls_endpoint_aliases;
        let stripped;
        let (path, request) = match realm_path.strip_prefix(MTLS_PREFIX) {
            Some(aliased) if aliases => (aliased, request),
            _ if aliases && !realm_path.starts_with("/test/") => {
                stripped = without_certificate(request);
                (realm_path, &stripped)
            }
            _ => (realm_path, request),
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
        let post = request.method.as_str() == "POST";
        match path {
            "/.well-known/wallet-openid-configuration" | "/.well-known/openid-configuration" => self.discovery(),
            "/protocol/openid-connect/certs" => ResponseTemplate::new(200).set_body_json(self.key.jwks()),
            "/protocol/openid-connect/ext/ciba/auth" if post => match self.backchannel(request, &form) {
                Ok(body) => ResponseTemplate::new(200).insert_header("Cache-Control", "no-store").set_body_json(body),
                Err(r) => refusal(r),
            },
            "/protocol/openid-connect/token" if post => match self.token(request, &form) {
                Ok(body) => ResponseTemplate::new(200)
                    .insert_header("Cache-Control", "no-store")
                    .insert_header("Pragma", "no-cache")
                    .set_body_json(body),
                Err(r) => refusal(r),
            },
            "/test/resource" => self.resource(request),
            "/protocol/openid-connect/token/introspect" if post => self.introspect(request, &form),
            p if post && p.starts_with("/test/ciba/") => {
                let rest = &p["/test/ciba/".len()..];
                match rest.rsplit_once('/') {
                    Some((id, "approve")) => self.test_answer(id, true),
                    Some((id, "deny")) => self.test_answer(id, false),
                    _ => ResponseTemplate::new(404),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}
