//! What a mock saw of a client under certification: every request, when it came, what it carried
//! and what it was answered. Raw values, in memory only: the client checks need them (to decode a
//! Basic header, an assertion, to tell one token from another); reports get [`Timeline`], which
//! holds none.

use std::time::Duration;

use serde::Serialize;

use crate::model::AuthMethod;

pub use crate::model::client_suite::Endpoint;

/// The TLS client certificate a request came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCertificate {
    pub subject: Option<String>,
    pub thumbprint: Option<String>,
}

/// One request of the client, and its answer.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the request arrived, from the start of the observation.
    pub at: Duration,
    /// When its answer was handed to the connection (after any delay the case asks for).
    pub answered: Duration,
    pub endpoint: Endpoint,
    pub method: String,
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The form body's parameters, decoded, when the body was a form.
    pub form: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub certificate: Option<SeenCertificate>,
    pub answer: Answer,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The bearer token of a resource call, wherever the client put it.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .or_else(|| self.query_param("access_token"))
            .or_else(|| self.param("access_token"))
    }
}

/// What the mock answered.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    /// `error` of a JSON error body, or of a `WWW-Authenticate` challenge.
    pub error: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// CIBA: `interval` and `auth_req_id` of a backchannel answer.
    pub interval: Option<u64>,
    pub auth_req_id: Option<String>,
    /// The case's script answered, not the mock.
    pub injected: bool,
}

/// How the client command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum ClientEnd {
    /// It exited by itself with this status (`None`: killed by a signal).
    Exited { code: Option<i32> },
    /// The observation time ran out and it was ended.
    Ended,
    /// `--listen`: nothing was started.
    External,
}

/// Everything observed in one case.
#[derive(Debug, Clone)]
pub struct Observation {
    pub requests: Vec<Seen>,
    /// Requests answered but not recorded, past the bound.
    pub unrecorded: u64,
    pub duration: Duration,
    /// Wall-clock time of the observation's start (assertions carry Unix times).
    pub started_unix_ms: u64,
    /// The client's published JWKS, as fetched at the end of the observation.
    pub jwks: Option<Result<String, String>>,
    pub end: ClientEnd,
}

impl Observation {
    pub fn of(&self, endpoint: Endpoint) -> impl Iterator<Item = &Seen> {
        self.requests.iter().filter(move |r| r.endpoint == endpoint)
    }

    /// Requests that ask for a token: client_credentials ones and CIBA polls.
    pub fn token_requests(&self) -> impl Iterator<Item = &Seen> {
        self.requests.iter().filter(|r| matches!(r.endpoint, Endpoint::Token | Endpoint::Poll))
    }
}

/// What the client is registered as, and how the mock was set for the case: what the checks
/// compare the requests with.
#[derive(Debug, Clone)]
pub struct Registration {
    pub client_id: String,
    pub method: AuthMethod,
    pub secret: Option<String>,
    pub scopes: Vec<String>,
    /// private_key_jwt: the registered key ids.
    pub kids: Vec<String>,
    /// tls_client_auth: the registered subject DN.
    pub subject: Option<String>,
    pub issuer: String,
    pub token_endpoint: String,
    /// CIBA: `acr_values` the profile requires.
    pub acr_values: Option<String>,
}

/// One request as reports draw it: no value that could be a credential.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at_ms: u64,
    pub answered_ms: u64,
    pub endpoint: Endpoint,
    pub method: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which token a resource call carried, or a token answer issued: `#1`, `#2`… in order of issue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A token answer: the token's lifetime in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_ms: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub injected: bool,
}

/// The client's requests over time, for the HTML report's picture.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub duration_ms: u64,
    pub entries: Vec<TimelineEntry>,
    pub unrecorded: u64,
    pub end: ClientEnd,
}

impl Timeline {
    pub fn of(observation: &Observation) -> Self {
        let mut issued: Vec<String> = Vec::new();
        let mut label = |token: &str, issue: bool| {
            let index = match issued.iter().position(|t| *t == token) {
                Some(i) => i,
                None if issue => {
                    issued.push(token.to_string());
                    issued.len() - 1
                }
                None => return "unknown".to_string(),
            };
            format!("#{}", index + 1)
        };
        let entries = observation
            .requests
            .iter()
            .map(|r| {
                let token = match (&r.answer.access_token, r.bearer()) {
                    (Some(t), _) => Some(label(t, true)),
                    (None, Some(t)) if r.endpoint == Endpoint::Resource => Some(label(t, false)),
                    _ => None,
                };
                TimelineEntry {
                    at_ms: r.at.as_millis() as u64,
                    answered_ms: r.answered.as_millis() as u64,
                    endpoint: r.endpoint,
                    method: r.method.clone(),
                    status: r.answer.status,
                    error: r.answer.error.clone(),
                    lifetime_ms: r.answer.access_token.as_ref().and(r.answer.expires_in).map(|s| s * 1000),
                    token,
                    injected: r.answer.injected,
                }
            })
            .collect();
        Timeline {
            duration_ms: observation.duration.as_millis() as u64,
            entries,
            unrecorded: observation.unrecorded,
            end: observation.end.clone(),
        }
    }
}
