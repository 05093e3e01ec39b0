//! The observing wrapper around a mock: records every request a client makes (bounded), answers
//! from the case's script where it says so, and hands the rest to the mock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::checks::ciba::CIBA_GRANT;
use crate::model::client_suite::{Injected, Injection};
use crate::protocol::observation::{Answer, ClientEnd, Endpoint, Observation, Seen, SeenCertificate};
use crate::support::http_server::{Handle, Reply, Request, SUBJECT_HEADER, THUMBPRINT_HEADER};
use crate::support::secret::Redactor;

/// A case records at most this many requests, of at most this many bytes in all (a client that
/// sends megabyte forms fills the budget long before the count); later ones are answered and
/// counted.
pub const MAX_RECORDED: usize = 5000;
pub const MAX_RECORDED_BYTES: usize = 64 * 1024 * 1024;

/// The mock's paths, to tell endpoints apart.
#[derive(Debug, Clone)]
pub struct Paths {
    pub token: String,
    pub backchannel: Option<String>,
    pub resource: String,
}

pub struct Recorder {
    inner: Arc<dyn Handle>,
    paths: Paths,
    script: Vec<Injection>,
    poll_latency: Option<Duration>,
    redactor: Redactor,
    started: Instant,
    started_unix_ms: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    counts: HashMap<&'static str, u32>,
    seen: Vec<Seen>,
    /// What `seen` holds, by [`recorded_size`].
    bytes: usize,
    unrecorded: u64,
}

impl Recorder {
    pub fn new(
        inner: Arc<dyn Handle>,
        paths: Paths,
        script: Vec<Injection>,
        poll_latency: Option<Duration>,
        redactor: Redactor,
    ) -> Self {
        let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Self {
            inner,
            paths,
            script,
            poll_latency,
            redactor,
            started: Instant::now(),
            started_unix_ms,
            state: Mutex::default(),
        }
    }

    /// What was seen so far.
    pub fn observation(&self, end: ClientEnd, jwks: Option<Result<String, String>>) -> Observation {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut requests = state.seen.clone();
        requests.sort_by_key(|r| r.at);
        Observation {
            requests,
            unrecorded: state.unrecorded,
            duration: self.started.elapsed(),
            started_unix_ms: self.started_unix_ms,
            jwks,
            end,
        }
    }

    pub fn count(&self) -> usize {
        self.state.lock().map(|s| s.seen.len()).unwrap_or(0)
    }

    fn endpoint(&self, request: &Request, form: &[(String, String)]) -> Endpoint {
        let path = request.url.path();
        if path == self.paths.token {
            let ciba = form.iter().chain(&query(request)).any(|(k, v)| k == "grant_type" && v == CIBA_GRANT);
            if ciba { Endpoint::Poll } else { Endpoint::Token }
        } else if Some(path) == self.paths.backchannel.as_deref() {
            Endpoint::Backchannel
        } else if path == self.paths.resource {
            Endpoint::Resource
        } else {
            Endpoint::Other
        }
    }
}

impl Handle for Recorder {
    fn handle(&self, request: &Request) -> Reply {
        let at = self.started.elapsed();
        let content_type = request.headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let form: Vec<(String, String)> =
            if content_type.as_deref().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
                form_urlencoded::parse(&request.body).into_owned().collect()
            } else {
                Vec::new()
            };
        let endpoint = self.endpoint(request, &form);
        let nth = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let n = state.counts.entry(endpoint.label()).or_default();
            *n += 1;
            *n
        };
        let scripted =
            self.script.iter().find(|i| i.at == endpoint && nth >= i.nth && nth < i.nth.saturating_add(i.times));
        let mut reply = match scripted {
            Some(injection) => scripted_answer(injection),
            None => self.inner.handle(request),
        };
        if let (Endpoint::Poll, Some(latency)) = (endpoint, self.poll_latency) {
            let delay = latency.max(reply.delay().unwrap_or_default());
            reply = reply.set_delay(delay);
        }
        let answered = self.started.elapsed() + reply.delay().unwrap_or_default();
        let answer = read_answer(&reply, scripted.is_some());
        let seen = Seen {
            at,
            answered,
            endpoint,
            method: request.method.to_string(),
            path: request.url.path().to_string(),
            query: query(request),
            headers: request
                .headers
                .iter()
                .filter(|(k, _)| ![SUBJECT_HEADER, THUMBPRINT_HEADER].contains(&k.as_str()))
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            form,
            content_type,
            certificate: certificate(request),
            answer,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let size = recorded_size(&seen);
        // Once full, full for good: a later request never names a token whose issue went unseen.
        if state.unrecorded == 0 && state.seen.len() < MAX_RECORDED && state.bytes + size <= MAX_RECORDED_BYTES {
            // Whatever the mock issued or the client sent as a credential is never shown. Only
            // what is recorded can be shown, so the redactor grows no faster than the record.
            let assertions = seen.form.iter().filter(|(k, _)| k == "client_assertion").map(|(_, v)| v);
            for secret in seen.answer.access_token.iter().chain(assertions) {
                self.redactor.register(secret);
            }
            state.bytes += size;
            state.seen.push(seen);
        } else {
            state.unrecorded += 1;
        }
        reply
    }
}

/// The bytes a recorded request keeps: what the client chose to send (the rest is fixed-size).
fn recorded_size(seen: &Seen) -> usize {
    let pairs = |p: &[(String, String)]| p.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    seen.path.len() + pairs(&seen.query) + pairs(&seen.headers) + pairs(&seen.form)
}

fn query(request: &Request) -> Vec<(String, String)> {
    request.url.query_pairs().into_owned().collect()
}

fn certificate(request: &Request) -> Option<SeenCertificate> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (subject, thumbprint) = (header(SUBJECT_HEADER), header(THUMBPRINT_HEADER));
    (subject.is_some() || thumbprint.is_some()).then_some(SeenCertificate { subject, thumbprint })
}

fn read_answer(reply: &Reply, injected: bool) -> Answer {
    let body: Value = serde_json::from_slice(reply.body()).unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = |k: &str| body.get(k).and_then(Value::as_u64);
    let challenge_error = reply.header("www-authenticate").and_then(|h| {
        let (_, rest) = h.split_once("error=\"")?;
        rest.split_once('"').map(|(e, _)| e.to_string())
    });
    Answer {
        status: reply.status(),
        error: text("error").or(challenge_error),
        access_token: text("access_token"),
        expires_in: number("expires_in"),
        retry_after: reply.header("retry-after").and_then(|v| v.trim().parse().ok()),
        interval: number("interval"),
        auth_req_id: text("auth_req_id"),
        injected,
    }
}

/// The answer a script gives: what a real server says in that situation.
fn scripted_answer(injection: &Injection) -> Reply {
    let error = |status: u16, code: &str| {
        Reply::new(status)
            .set_body_json(serde_json::json!({ "error": code }))
            .insert_header("cache-control", "no-store")
    };
    let retry_after = injection.retry_after.unwrap_or(1).to_string();
    match injection.answer {
        Injected::SlowDown => error(400, "slow_down"),
        Injected::AuthorizationPending => error(400, "authorization_pending"),
        Injected::AccessDenied => error(400, "access_denied"),
        Injected::ExpiredToken => error(400, "expired_token"),
        Injected::InvalidGrant => error(400, "invalid_grant"),
        Injected::Unavailable => error(503, "temporarily_unavailable").insert_header("retry-after", &retry_after),
        Injected::TooManyRequests => error(429, "too_many_requests").insert_header("retry-after", &retry_after),
        Injected::ServerError => error(500, "server_error"),
        Injected::InvalidToken => Reply::new(401).insert_header(
            "www-authenticate",
            r#"Bearer error="invalid_token", error_description="the access token is no longer valid""#,
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A mock that issues a fresh token for every request.
    struct Issuing(std::sync::atomic::AtomicU32);

    impl Handle for Issuing {
        fn handle(&self, _: &Request) -> Reply {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Reply::new(200).set_body_json(serde_json::json!({ "access_token": format!("issued-token-number-{n:08}") }))
        }
    }

    fn token_request(body_len: usize) -> Request {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        let body = format!("grant_type=client_credentials&pad={}", "x".repeat(body_len)).into_bytes();
        Request { url: "http://127.0.0.1/connect/token".parse().unwrap(), method: hyper::Method::POST, headers, body }
    }

    #[test]
    fn the_record_is_bounded_in_bytes_and_stops_for_good_when_full() {
        let paths = Paths { token: "/connect/token".into(), backchannel: None, resource: "/api".into() };
        let redactor = Redactor::new();
        let recorder = Recorder::new(Arc::new(Issuing(0.into())), paths, Vec::new(), None, redactor.clone());
        // Megabyte forms fill the byte budget long before the request count.
        let big = token_request(1024 * 1024);
        for _ in 0..MAX_RECORDED_BYTES / (1024 * 1024) + 5 {
            recorder.handle(&big);
        }
        // A small request after the record filled is not recorded either, nor is its token
        // registered (the redactor grows no faster than the record).
        recorder.handle(&token_request(1));
        let o = recorder.observation(ClientEnd::Ended, None);
        let kept: usize = o.requests.iter().map(recorded_size).sum();
        assert!(kept <= MAX_RECORDED_BYTES, "{kept}");
        assert!(o.requests.len() < MAX_RECORDED && o.requests.len() >= 60, "{}", o.requests.len());
        assert_eq!(o.unrecorded as usize, MAX_RECORDED_BYTES / (1024 * 1024) + 6 - o.requests.len());
        let first = "issued-token-number-00000000";
        let last = format!("issued-token-number-{:08}", MAX_RECORDED_BYTES / (1024 * 1024) + 5);
        assert!(!redactor.scrub(first).contains(first), "a recorded token is scrubbed");
        assert_eq!(redactor.scrub(&last), last, "an unrecorded token was never registered");
    }
}
