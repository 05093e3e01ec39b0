//! OpenID CIBA poll mode (CIBA Core 1.0 §7, §10, §11): the backchannel authentication request,
//! and a poller that is a model client — it waits `interval` (5 s when absent) before every poll,
//! adds 5 s after `slow_down`, never has two polls in flight, stops on a final answer, and is
//! bounded by `expires_in` and a poll count. Its clock and sleep are injected so tests never wait.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::Method;
use url::Url;

use crate::model::AuthChoice;
use crate::protocol::auth::{self, Credentials};
use crate::protocol::exchange::{Exchange, PollRecord, RequestContext};
use crate::protocol::http::{Request, TransportError, Value};

pub const GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";
/// CIBA §7.3: the client polls every 5 s when the server says nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// CIBA §11: `slow_down` means at least 5 s more, for this and all later polls.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Whatever the server says, no more polls than this for one auth_req_id.
pub const MAX_POLLS: usize = 120;

/// One poll in flight: what `poll` awaits for each attempt.
pub type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<Exchange, TransportError>> + Send + 'a>>;

/// Time, as the poller sees it: injectable so tests run without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Real time, from a fixed start.
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// How to pace the polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As a good client: every `interval`, growing after `slow_down`.
    Honour,
    /// At once, without waiting, until the server says `slow_down` (at most 4 polls), then honour
    /// it. Independent of the announced interval, so a server that hides its own is still tested.
    TooFast,
}

pub struct PollOutcome {
    pub polls: Vec<PollRecord>,
    /// The last answer (tokens, or the final error); `None` if the deadline passed first.
    pub last: Option<Exchange>,
}

/// Polls until a final answer, the deadline, or `MAX_POLLS`.
pub async fn poll<'a, F>(
    clock: &dyn Clock,
    interval: Option<Duration>,
    expires_in: Duration,
    pace: Pace,
    mut send: F,
) -> Result<PollOutcome, TransportError>
where
    F: FnMut() -> PollFuture<'a>,
{
    let start = clock.now();
    let mut interval = interval.unwrap_or(DEFAULT_INTERVAL);
    // A little past expires_in, so the server's expired_token is seen rather than guessed, even
    // on a busy machine.
    let deadline = expires_in + interval + Duration::from_secs(5);
    let mut polls = Vec::new();
    let mut slowed = false;
    let mut last = None;
    while polls.len() < MAX_POLLS {
        let wait = match pace {
            Pace::TooFast if !slowed && polls.len() < 4 => Duration::ZERO,
            _ => interval,
        };
        if clock.now() - start + wait > deadline {
            break;
        }
        clock.sleep(wait).await;
        // One poll at a time: the next is only built after this one is answered.
        let exchange = send().await?;
        let error = exchange.response.json_str("error").map(str::to_owned);
        polls.push(PollRecord {
            at_ms: (clock.now() - start).as_millis() as u64,
            status: exchange.response.status,
            error: error.clone(),
            waited_ms: wait.as_millis() as u64,
            interval_ms: interval.as_millis() as u64,
        });
        match error.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => {
                interval += SLOW_DOWN_STEP;
                slowed = true;
            }
            _ => {
                last = Some(exchange);
                break;
            }
        }
        last = Some(exchange);
    }
    Ok(PollOutcome { polls, last })
}

/// The parameters of a backchannel authentication request (CIBA §7.1, as PSC takes them).
#[derive(Debug, Clone, Default)]
pub struct BackchannelParams {
    pub scope: Option<String>,
    pub acr_values: Option<String>,
    pub binding_message: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub channel: Option<String>,
    pub requested_expiry: Option<String>,
}

/// The backchannel authentication request (CIBA §7.1), authenticated as `choice` says (any
/// method the client is registered for; the certificate, when there is one, goes with the TLS
/// connection the caller picks).
pub fn backchannel_request(
    endpoint: &Url,
    params: &BackchannelParams,
    choice: AuthChoice,
    creds: &Credentials<'_>,
) -> (Request, RequestContext) {
    let mut form = Vec::new();
    let mut headers = vec![("Accept".to_string(), Value::Plain("application/json".into()))];
    let used = auth::apply(choice, creds, &mut headers, &mut form);
    let fields = [
        ("scope", &params.scope),
        ("acr_values", &params.acr_values),
        ("binding_message", &params.binding_message),
        ("login_hint", &params.login_hint),
        ("id_token_hint", &params.id_token_hint),
        ("channel", &params.channel),
        ("requested_expiry", &params.requested_expiry),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            form.push((name.to_string(), Value::Plain(v.clone())));
        }
    }
    let mut request = Request::new(Method::POST, endpoint.clone()).form(form);
    request.headers = headers;
    let context =
        RequestContext { auth: Some(used), requested_scope: params.scope.clone(), ..RequestContext::default() };
    (request, context)
}

/// A poll of the token endpoint for `auth_req_id` (CIBA §10.1), authenticated as `choice` says.
pub fn token_request(
    endpoint: &Url,
    auth_req_id: &crate::support::secret::Secret,
    choice: AuthChoice,
    creds: &Credentials<'_>,
) -> (Request, RequestContext) {
    let form = vec![
        ("grant_type".to_string(), Value::Plain(GRANT_TYPE.into())),
        ("auth_req_id".to_string(), Value::Secret(auth_req_id.clone())),
    ];
    super::grant_request(endpoint, form, GRANT_TYPE, choice, creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::exchange::{RecordedRequest, RecordedResponse};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// Time that only moves when the poller sleeps.
    #[derive(Default)]
    struct FakeClock(Mutex<Duration>);

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            *self.0.lock().unwrap()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            *self.0.lock().unwrap() += d;
            Box::pin(async {})
        }
    }

    fn answer(error: Option<&str>) -> Exchange {
        let body = match error {
            Some(e) => format!(r#"{{"error":"{e}"}}"#),
            None => r#"{"access_token":"a","token_type":"Bearer","id_token":"i"}"#.to_string(),
        };
        Exchange {
            request: RecordedRequest { method: "POST".into(), url: "x".into(), headers: vec![], body: None },
            response: RecordedResponse::new(
                if error.is_some() { 400 } else { 200 },
                vec![],
                body.into_bytes(),
                false,
                Duration::ZERO,
            ),
            context: RequestContext::default(),
        }
    }

    /// A server script: answers in order; counts polls in flight to prove there is never more
    /// than one.
    fn server(script: Vec<Option<&'static str>>) -> (impl FnMut() -> PollFuture<'static>, Arc<AtomicUsize>) {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let m = max_seen.clone();
        let send = move || {
            let (script, in_flight, max_seen) = (script.clone(), in_flight.clone(), m.clone());
            Box::pin(async move {
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(n, Ordering::SeqCst);
                let next = script.lock().unwrap().next().unwrap_or(Some("authorization_pending"));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(answer(next))
            }) as PollFuture<'static>
        };
        (send, max_seen)
    }

    #[tokio::test]
    async fn waits_the_interval_adds_five_after_slow_down_and_never_overlaps() {
        let clock = FakeClock::default();
        let (send, max_in_flight) =
            server(vec![Some("authorization_pending"), Some("slow_down"), Some("authorization_pending"), None]);
        let out =
            poll(&clock, Some(Duration::from_secs(2)), Duration::from_secs(60), Pace::Honour, send).await.unwrap();
        let at: Vec<u64> = out.polls.iter().map(|p| p.at_ms).collect();
        assert_eq!(at, vec![2000, 4000, 11000, 18000], "2 s, 2 s, then 7 s after slow_down, and 7 s on");
        assert_eq!(max_in_flight.load(Ordering::SeqCst), 1, "never two polls at once");
        assert_eq!(out.last.unwrap().response.status, 200);
    }

    #[tokio::test]
    async fn defaults_to_five_seconds_and_stops_on_final_errors() {
        for final_error in ["access_denied", "expired_token", "invalid_grant"] {
            let clock = FakeClock::default();
            let (send, _) = server(vec![Some("authorization_pending"), Some(final_error), None]);
            let out = poll(&clock, None, Duration::from_secs(120), Pace::Honour, send).await.unwrap();
            assert_eq!(out.polls.len(), 2, "{final_error} ends the polling");
            assert_eq!(out.polls[0].at_ms, 5000, "no interval means 5 s");
        }
    }

    #[tokio::test]
    async fn is_bounded_by_expires_in() {
        let clock = FakeClock::default();
        let (send, _) = server(vec![]);
        let out =
            poll(&clock, Some(Duration::from_secs(1)), Duration::from_secs(10), Pace::Honour, send).await.unwrap();
        assert!(out.polls.len() <= 16 && clock.now() <= Duration::from_secs(16), "{} polls", out.polls.len());
    }

    #[tokio::test]
    async fn too_fast_pacing_stops_at_slow_down_and_then_honours_it() {
        let clock = FakeClock::default();
        let (send, _) = server(vec![Some("slow_down"), Some("authorization_pending"), None]);
        let out =
            poll(&clock, Some(Duration::from_secs(4)), Duration::from_secs(60), Pace::TooFast, send).await.unwrap();
        let waits: Vec<u64> = out.polls.iter().map(|p| p.waited_ms).collect();
        assert_eq!(waits, vec![0, 9000, 9000]);
        let intervals: Vec<u64> = out.polls.iter().map(|p| p.interval_ms).collect();
        assert_eq!(intervals, vec![4000, 9000, 9000], "the first poll came faster than its interval");
    }
}
