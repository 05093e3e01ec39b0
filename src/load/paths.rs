//! The hot path: one request of a path, sent, checked (status and body shape) and recorded —
//! in our HDR histogram and in goose's metrics. Everything that can be prepared before the run
//! (bodies, the Basic header) is, so a request costs a clone of shared bytes, not a format.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use goose::prelude::{GooseUser, TransactionResult};
use reqwest::header::HeaderValue;
use serde::Deserialize;

use super::pool::SigningPool;
use super::stats::{Failure, PathRecorder};
use super::transport::Transport;
use crate::model::profile::PathKind;
use crate::model::{AuthMethod, Client};
use crate::protocol::auth::basic_header;
use crate::support::secret::Secret;

/// How the path's client authenticates, prepared.
pub enum PreparedAuth {
    /// `Authorization: Basic …`, computed once.
    Basic(HeaderValue),
    /// Credentials (or just `client_id` for mTLS) appended to every body.
    InBody(String),
    /// A fresh signed assertion per request, from the pool.
    Assertion(Arc<SigningPool>),
}

impl PreparedAuth {
    /// The prepared credentials of `client` authenticating as `method`.
    pub fn prepare(client: &Client, method: AuthMethod, pool: Option<Arc<SigningPool>>) -> Result<Self, String> {
        let secret = || client.secret.as_ref().map(Secret::expose).unwrap_or_default();
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        Ok(match method {
            AuthMethod::ClientSecretBasic => {
                let mut value = HeaderValue::from_str(basic_header(&client.client_id, secret()).expose())
                    .map_err(|_| "the Basic header is not a valid header value".to_string())?;
                value.set_sensitive(true);
                PreparedAuth::Basic(value)
            }
            AuthMethod::ClientSecretPost => PreparedAuth::InBody(format!(
                "&client_id={}&client_secret={}",
                encode(&client.client_id),
                encode(secret())
            )),
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                PreparedAuth::InBody(format!("&client_id={}", encode(&client.client_id)))
            }
            AuthMethod::PrivateKeyJwt => PreparedAuth::Assertion(pool.ok_or("no assertion pool for private_key_jwt")?),
        })
    }
}

/// What a path sends, besides its authentication.
pub enum Bodies {
    /// The same parameters every time (a token request).
    Fixed(String),
    /// One body per pre-minted token, cycled (introspection).
    Cycle { bodies: Vec<String>, next: AtomicUsize },
}

pub struct PathRuntime {
    pub name: String,
    pub kind: PathKind,
    pub transport: Transport,
    auth: PreparedAuth,
    /// Full bodies for fixed-credential auth, prepared once; empty for assertions.
    prepared: Vec<Bytes>,
    bodies: Bodies,
    pub recorder: PathRecorder,
    /// The per-user cadence a target rate implies, for coordinated-omission correction (µs).
    pub expected_interval_us: Option<u64>,
    /// Whether goose keeps per-request metrics in this run (see `goose_metrics` in `mod.rs`);
    /// when it does not, recording one would build a metric for goose to throw away.
    pub goose_metrics: bool,
    /// A fresh DPoP proof per token request (RFC 9449), and a DPoP-bound token expected back.
    pub dpop: Option<Arc<SigningPool>>,
}

/// One request as it goes out: the body, and the prepared headers it carries.
struct Outgoing<'a> {
    body: Bytes,
    authorization: Option<&'a HeaderValue>,
    dpop: Option<HeaderValue>,
}

impl PathRuntime {
    pub fn new(
        name: String,
        kind: PathKind,
        transport: Transport,
        auth: PreparedAuth,
        bodies: Bodies,
        recorder: PathRecorder,
    ) -> Self {
        let params: Vec<&str> = match &bodies {
            Bodies::Fixed(b) => vec![b.as_str()],
            Bodies::Cycle { bodies, .. } => bodies.iter().map(String::as_str).collect(),
        };
        let prepared = match &auth {
            PreparedAuth::Basic(_) => params.iter().map(|p| Bytes::from(p.to_string())).collect(),
            PreparedAuth::InBody(creds) => params.iter().map(|p| Bytes::from(format!("{p}{creds}"))).collect(),
            PreparedAuth::Assertion(_) => Vec::new(),
        };
        Self {
            name,
            kind,
            transport,
            auth,
            prepared,
            bodies,
            recorder,
            expected_interval_us: None,
            goose_metrics: true,
            dpop: None,
        }
    }

    /// Which of the prepared bodies goes next.
    fn index(&self) -> usize {
        match &self.bodies {
            Bodies::Fixed(_) => 0,
            Bodies::Cycle { bodies, next } => next.fetch_add(1, Ordering::Relaxed) % bodies.len().max(1),
        }
    }

    /// The next request; `Err` when no assertion or proof could be had.
    async fn request(&self) -> Result<Outgoing<'_>, Failure> {
        let (body, authorization) = self.body_and_authorization().await?;
        let dpop = match &self.dpop {
            None => None,
            Some(pool) => {
                let proof = pool.take().await.ok_or(Failure::NoDpopProof)?;
                // base64url and dots: always a valid header value.
                Some(HeaderValue::from_maybe_shared(proof).map_err(|_| Failure::NoDpopProof)?)
            }
        };
        Ok(Outgoing { body, authorization, dpop })
    }

    /// The next request's body and `Authorization` value.
    async fn body_and_authorization(&self) -> Result<(Bytes, Option<&HeaderValue>), Failure> {
        let i = self.index();
        Ok(match &self.auth {
            PreparedAuth::Basic(value) => (self.prepared[i].clone(), Some(value)),
            PreparedAuth::InBody(_) => (self.prepared[i].clone(), None),
            PreparedAuth::Assertion(pool) => {
                let body = pool.take().await.ok_or(Failure::NoAssertion)?;
                match &self.bodies {
                    // The pool's bodies already carry the fixed parameters.
                    Bodies::Fixed(_) => (body, None),
                    Bodies::Cycle { bodies, .. } => {
                        let mut full = Vec::with_capacity(bodies[i].len() + 1 + body.len());
                        full.extend_from_slice(bodies[i].as_bytes());
                        full.push(b'&');
                        full.extend_from_slice(&body);
                        (Bytes::from(full), None)
                    }
                }
            }
        })
    }

    /// One request, checked and recorded. Returns whether it succeeded.
    pub async fn fire(&self, user: &mut GooseUser) -> TransactionResult {
        wait_for_throttle(user).await;
        let started = Instant::now();
        let (status, failure) = match self.request().await {
            Ok(outgoing) => self.send(outgoing).await,
            Err(failure) => (None, Some(failure)),
        };
        let elapsed = started.elapsed();
        self.recorder.record(elapsed, status, failure.as_ref(), self.expected_interval_us);
        if !self.goose_metrics {
            return Ok(());
        }
        let label = failure.as_ref().map(Failure::label);
        user.record_custom_request_duration("POST", &self.name, elapsed, failure.is_none(), status, label.as_deref())
            .await
    }

    async fn send(&self, outgoing: Outgoing<'_>) -> (Option<u16>, Option<Failure>) {
        let answer = match self.transport.post(outgoing.body, outgoing.authorization, outgoing.dpop).await {
            Ok(a) => a,
            Err(kind) => return (None, Some(Failure::Transport(kind))),
        };
        let failure = if answer.status != 200 {
            Some(Failure::Status(answer.status))
        } else {
            match self.kind {
                PathKind::Token => check_token_body(&answer.body, self.token_type()),
                PathKind::Introspection => check_introspection_body(&answer.body),
            }
            .err()
            .map(Failure::Body)
        };
        (Some(answer.status), failure)
    }

    /// One request before the run, unrecorded: fails only when the endpoint cannot be reached at
    /// all (answers, good or bad, are the run's business).
    pub async fn probe(&self) -> Result<(), &'static str> {
        let o = self.request().await.map_err(|_| "no client assertion or DPoP proof")?;
        self.transport.post(o.body, o.authorization, o.dpop).await.map(|_| ())
    }

    /// The `token_type` a token answer of this path must have.
    fn token_type(&self) -> &'static str {
        if self.dpop.is_some() { "DPoP" } else { "Bearer" }
    }

    /// A token request sent once, outside the run: for minting the tokens introspection cycles.
    pub async fn mint_token(&self) -> Result<Secret, String> {
        let o = self.request().await.map_err(|f| f.label())?;
        let answer =
            self.transport.post(o.body, o.authorization, o.dpop).await.map_err(|kind| format!("transport: {kind}"))?;
        if answer.status != 200 {
            return Err(format!("status {}", answer.status));
        }
        check_token_body(&answer.body, self.token_type()).map_err(|e| format!("body: {e}"))?;
        let token: TokenShape<'_> = serde_json::from_slice(&answer.body).map_err(|_| "body: not JSON".to_string())?;
        Ok(Secret::new(token.access_token.unwrap_or_default().into_owned()))
    }
}

/// goose's request throttle (`rate:`) applies to requests goose sends itself; ours take a token
/// from the same channel, so the target rate holds for them too.
async fn wait_for_throttle(user: &GooseUser) {
    if user.is_throttled {
        if let Some(throttle) = &user.throttle {
            let _ = throttle.send_async(true).await;
        }
    }
}

#[derive(Deserialize)]
struct TokenShape<'a> {
    #[serde(borrow)]
    access_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    token_type: Option<Cow<'a, str>>,
    expires_in: Option<serde_json::Value>,
}

/// RFC 6749 §5.1 in its essentials: a JSON object with an access_token, the `token_type` asked
/// for (Bearer; DPoP for a request with a proof, RFC 9449 §5), and expires_in (when present) a
/// positive number.
pub fn check_token_body(body: &[u8], token_type: &str) -> Result<(), &'static str> {
    let token: TokenShape<'_> = serde_json::from_slice(body).map_err(|_| "not a JSON object")?;
    match token.access_token.as_deref() {
        None | Some("") => return Err("no access_token"),
        Some(_) => {}
    }
    if !token.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(token_type)) {
        return Err(if token_type == "DPoP" { "token_type is not DPoP" } else { "token_type is not Bearer" });
    }
    match token.expires_in {
        None => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(()),
        Some(_) => Err("expires_in is not a positive integer"),
    }
}

#[derive(Deserialize)]
struct IntrospectionShape {
    active: Option<serde_json::Value>,
}

/// RFC 7662 §2.2: the token minted before the run must still be `"active": true`.
pub fn check_introspection_body(body: &[u8]) -> Result<(), &'static str> {
    let answer: IntrospectionShape = serde_json::from_slice(body).map_err(|_| "not a JSON object")?;
    match answer.active {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(serde_json::Value::Bool(false)) => Err("active is false"),
        _ => Err("active is not a boolean"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_token_body_bearer(body: &[u8]) -> Result<(), &'static str> {
        check_token_body(body, "Bearer")
    }

    #[test]
    fn a_dpop_path_wants_a_dpop_token() {
        assert_eq!(check_token_body(br#"{"access_token":"x","token_type":"DPoP"}"#, "DPoP"), Ok(()));
        assert_eq!(
            check_token_body(br#"{"access_token":"x","token_type":"Bearer"}"#, "DPoP"),
            Err("token_type is not DPoP")
        );
    }

    #[test]
    fn token_bodies_are_checked_for_shape() {
        assert_eq!(check_token_body_bearer(br#"{"access_token":"x","token_type":"Bearer","expires_in":3600}"#), Ok(()));
        assert_eq!(check_token_body_bearer(br#"{"access_token":"x","token_type":"bearer"}"#), Ok(()));
        assert_eq!(check_token_body_bearer(br#"{"token_type":"Bearer"}"#), Err("no access_token"));
        assert_eq!(
            check_token_body_bearer(br#"{"access_token":"x","token_type":"mac"}"#),
            Err("token_type is not Bearer")
        );
        assert_eq!(
            check_token_body_bearer(br#"{"access_token":"x","token_type":"Bearer","expires_in":"soon"}"#),
            Err("expires_in is not a positive integer")
        );
        assert_eq!(check_token_body_bearer(b"<html>"), Err("not a JSON object"));
    }

    #[test]
    fn introspection_bodies_must_say_active() {
        assert_eq!(check_introspection_body(br#"{"active":true,"scope":"implant"}"#), Ok(()));
        assert_eq!(check_introspection_body(br#"{"active":false}"#), Err("active is false"));
        assert_eq!(check_introspection_body(br#"{"active":"true"}"#), Err("active is not a boolean"));
    }
}
