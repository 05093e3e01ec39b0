//! Request handling of the PSC mock (behind its TLS front).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::http_server::{Handle, Reply as ResponseTemplate, Request};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{Config, Defect, PscClient, REALM, UserBehaviour};
use crate::mock::signing::SigningKey;
use crate::support::clock::unix_now;
use crate::support::http_server::{SUBJECT_HEADER, THUMBPRINT_HEADER};

pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

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
    requests: Mutex<HashMap<String, Pending>>,
    counter: Mutex<u64>,
}

struct Refusal(u16, &'static str, &'static str);

impl App {
    pub fn new(issuer: String, config: Config, clients: Vec<PscClient>, key: Arc<SigningKey>) -> Self {
        Self { issuer, config, clients, key, requests: Mutex::new(HashMap::new()), counter: Mutex::new(0) }
    }

    fn on(&self, d: Defect) -> bool {
        self.config.defects.on(d)
    }

    /// The client the certificate names (RFC 8705 §2.1: PSC matches the subject DN).
    fn client(&self, request: &Request, form: &[(String, String)]) -> Result<(String, Option<String>), Refusal> {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let claimed = form.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.clone());
        let unauthorized = Refusal(401, "invalid_client", "client certificate missing or not registered");
        let thumbprint = header(THUMBPRINT_HEADER);
        match header(SUBJECT_HEADER) {
            Some(subject) => match self.clients.iter().find(|c| c.subject == subject) {
                Some(c) => Ok((c.client_id.to_string(), thumbprint)),
                None if self.on(Defect::MtlsAnySubject) => claimed.map(|c| (c, thumbprint)).ok_or(unauthorized),
                None => Err(unauthorized),
            },
            None if self.on(Defect::MtlsNotEnforced) => claimed.map(|c| (c, None)).ok_or(unauthorized),
            None => Err(unauthorized),
        }
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
        ResponseTemplate::new(200).set_body_json(json!({
            "issuer": self.issuer,
            "token_endpoint": format!("{}/protocol/openid-connect/token", self.issuer),
            "jwks_uri": format!("{}/protocol/openid-connect/certs", self.issuer),
            "backchannel_authentication_endpoint": format!("{}/protocol/openid-connect/ext/ciba/auth", self.issuer),
            "backchannel_token_delivery_modes_supported": modes,
            "backchannel_user_code_parameter_supported": false,
            "grant_types_supported": [CIBA_GRANT, "refresh_token"],
            "token_endpoint_auth_methods_supported": ["tls_client_auth"],
            "tls_client_certificate_bound_access_tokens": true,
            "acr_values_supported": ["eidas1"],
            "scopes_supported": ["openid", "scope_all"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES384"],
        }))
    }

    fn backchannel(&self, request: &Request, form: &[(String, String)]) -> Result<serde_json::Value, Refusal> {
        let param = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (client_id, _) = self.client(request, form)?;
        let scope = param("scope").unwrap_or("");
        if !scope.split(' ').any(|s| s == "openid") && !self.on(Defect::OpenidScopeOptional) {
            return Err(Refusal(400, "invalid_scope", "scope must contain openid"));
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
            None if hints > 1 => UserBehaviour::ApprovesAfterMs(1500),
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
                requests.retain(|_, p| {
                    p.exchanged || p.client_id != pending.client_id || p.login_hint != pending.login_hint
                });
            }
            requests.insert(id.clone(), pending);
        }
        let mut body = json!({ "auth_req_id": id, "expires_in": expires_in, "interval": self.config.interval_secs });
        if self.on(Defect::IntervalMissing) {
            body.as_object_mut().map(|o| o.remove("interval"));
        }
        Ok(body)
    }

    fn token(&self, request: &Request, form: &[(String, String)]) -> Result<serde_json::Value, Refusal> {
        let param = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (client_id, thumbprint) = self.client(request, form)?;
        if param("grant_type") != Some(CIBA_GRANT) {
            return Err(Refusal(400, "unsupported_grant_type", "only the CIBA grant is supported here"));
        }
        let id = param("auth_req_id").unwrap_or("");
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = requests.get_mut(id) else { return Err(Refusal(400, "invalid_grant", "unknown auth_req_id")) };
        if p.client_id != client_id && !self.on(Defect::CrossClient) {
            return Err(Refusal(400, "invalid_grant", "auth_req_id was issued to another client"));
        }
        if p.exchanged && !self.on(Defect::ReuseAuthReqId) {
            return Err(Refusal(400, "invalid_grant", "auth_req_id was already exchanged"));
        }
        let now = Instant::now();
        if now > p.expires && !self.on(Defect::NoExpiry) {
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
        let mut access = json!({
            "iss": self.issuer, "sub": login_hint, "azp": client_id, "aud": "account", "scope": scope,
            "iat": iat, "exp": iat + 120, "acr": "eidas1", "typ": "Bearer",
        });
        if let (Some(t), false) = (thumbprint, self.on(Defect::CnfMissing)) {
            access["cnf"] = json!({ "x5t#S256": t });
        }
        let aud = if self.on(Defect::IdTokenWrongAud) { "someone-else".to_string() } else { client_id.clone() };
        let id_token = json!({
            "iss": self.issuer, "sub": login_hint, "aud": aud, "azp": client_id, "iat": iat, "exp": iat + 120,
            "auth_time": iat, "acr": "eidas1", "urn:openid:params:jwt:claim:auth_req_id": id,
        });
        Ok(json!({
            "access_token": self.key.sign(&access, "JWT"),
            "token_type": "Bearer",
            "expires_in": 120,
            "id_token": self.key.sign(&id_token, "JWT"),
            "refresh_token": URL_SAFE_NO_PAD.encode(format!("refresh-{id}")),
            "refresh_expires_in": 1800,
            "session_state": URL_SAFE_NO_PAD.encode(format!("session-{id}")),
            "scope": scope,
        }))
    }

    /// A test-only hook: the professional approves (or denies) a pending request.
    fn test_answer(&self, id: &str, approve: bool) -> ResponseTemplate {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.get_mut(id) {
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
    ResponseTemplate::new(r.0)
        .insert_header("Cache-Control", "no-store")
        .set_body_json(json!({ "error": r.1, "error_description": r.2 }))
}

impl Handle for App {
    fn handle(&self, request: &Request) -> ResponseTemplate {
        let Some(path) = request.url.path().strip_prefix(REALM) else { return ResponseTemplate::new(404) };
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
