//! Sending requests and recording exchanges: a per-request timeout, a cap on the body we read
//! (a 100 MB answer becomes a failed check, not an out-of-memory), credentials redacted in the
//! record by construction.

use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

use crate::protocol::exchange::{RecordedRequest, RecordedResponse};
use crate::support::http_body::{Capped, read_capped};
use crate::support::secret::Secret;

/// Bodies larger than this are cut; no OAuth answer comes near it.
pub const DEFAULT_BODY_CAP: usize = 1024 * 1024;

/// A request value that may be a credential: recorded as its fingerprint.
#[derive(Debug, Clone)]
pub enum Value {
    Plain(String),
    Secret(Secret),
}

impl Value {
    fn expose(&self) -> &str {
        match self {
            Value::Plain(s) => s,
            Value::Secret(s) => s.expose(),
        }
    }

    fn recorded(&self) -> String {
        match self {
            Value::Plain(s) => s.clone(),
            Value::Secret(s) => s.fingerprint(),
        }
    }
}

/// A request to send, built by a flow.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, Value)>,
    pub form: Option<Vec<(String, Value)>>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Self { method, url, headers: Vec::new(), form: None }
    }

    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.headers.push((name.to_string(), value));
        self
    }

    pub fn form(mut self, params: Vec<(String, Value)>) -> Self {
        self.form = Some(params);
        self
    }

    fn encoded_form(&self, expose: bool) -> Option<String> {
        self.form.as_ref().map(|params| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                if expose {
                    ser.append_pair(k, v.expose());
                } else {
                    ser.append_pair(k, &v.recorded());
                }
            }
            ser.finish()
        })
    }

    /// The request as reports show it. An `Authorization` header keeps its scheme (`Basic …`),
    /// so checks and readers can tell how the client authenticated.
    pub fn record(&self) -> RecordedRequest {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::Secret(s) if k.eq_ignore_ascii_case("authorization") => match s.expose().split_once(' ') {
                        Some((scheme, credential)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                            format!("{scheme} {}", crate::support::secret::fingerprint(credential))
                        }
                        _ => v.recorded(),
                    },
                    _ => v.recorded(),
                };
                (k.clone(), value)
            })
            .collect();
        if self.form.is_some() {
            headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
        RecordedRequest {
            method: self.method.to_string(),
            url: self.url.to_string(),
            headers,
            body: self.encoded_form(false),
        }
    }
}

/// Why no response was recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("TLS with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("request to {url} failed: {detail}")]
    Other { url: String, detail: String },
}

impl TransportError {
    /// What the user can do about it, where the cause says.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            TransportError::Tls { detail, .. }
                if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") =>
            {
                Some(
                    "the server's certificate is issued by a CA this machine does not trust: give its CA in the target, `tls: { ca: ca.pem }`",
                )
            }
            TransportError::Tls { detail, .. } if detail.contains("NotValidForName") => Some(
                "the server's certificate is not valid for this host name: use the name it was issued for in the target's URLs",
            ),
            TransportError::Tls { detail, .. } if detail.contains("Expired") => {
                Some("the server's certificate has expired")
            }
            TransportError::Tls { .. } => Some("check the target's `tls` settings and the client certificate"),
            TransportError::Timeout { .. } => {
                Some("the server is slow or unreachable: raise `timeout` in the target, or `--timeout`")
            }
            TransportError::Unreachable { .. } => Some("check the target's `issuer` and that the server is running"),
            TransportError::Other { .. } => None,
        }
    }
}

/// TLS settings of a client: trusted CAs (only these, when given) and an mTLS identity.
#[derive(Clone, Default, Debug)]
pub struct TlsSettings {
    pub ca: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
    /// Offer this TLS version only (a probe of what the server accepts); both 1.2 and 1.3 else.
    pub only: Option<reqwest::tls::Version>,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    timeout: Duration,
    body_cap: usize,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Result<Self, TransportError> {
        Self::with_tls(timeout, &TlsSettings::default())
    }

    pub fn with_tls(timeout: Duration, tls: &TlsSettings) -> Result<Self, TransportError> {
        let mut builder = reqwest::Client::builder();
        if !tls.ca.is_empty() {
            builder = builder.tls_certs_only(tls.ca.clone());
        }
        if let Some(identity) = &tls.identity {
            builder = builder.identity(identity.clone());
        }
        if let Some(version) = tls.only {
            builder = builder.min_tls_version(version).max_tls_version(version);
        }
        let inner = builder
            .timeout(timeout)
            .connect_timeout(timeout)
            // Redirects from a token endpoint are worth seeing, not following.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("oauth-harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Other { url: String::new(), detail: error_chain(&e) })?;
        Ok(Self { inner, timeout, body_cap: DEFAULT_BODY_CAP })
    }

    /// The underlying client, for `load`'s hot path (no recording, no body copy).
    pub fn reqwest_client(&self) -> &reqwest::Client {
        &self.inner
    }

    pub fn with_body_cap(mut self, cap: usize) -> Self {
        self.body_cap = cap;
        self
    }

    pub async fn send(&self, request: &Request) -> Result<RecordedResponse, TransportError> {
        let url = request.url.to_string();
        let mut builder = self.inner.request(request.method.clone(), request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        if let Some(body) = request.encoded_form(true) {
            builder = builder.header("Content-Type", "application/x-www-form-urlencoded").body(body);
        }
        let started = Instant::now();
        let mut response = builder.send().await.map_err(|e| self.classify(&url, &e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let Capped { body, truncated } =
            read_capped(&mut response, self.body_cap).await.map_err(|e| self.classify(&url, &e))?;
        Ok(RecordedResponse::new(status, headers, body, truncated, started.elapsed()))
    }

    fn classify(&self, url: &str, e: &reqwest::Error) -> TransportError {
        let detail = error_chain(e);
        if e.is_timeout() {
            TransportError::Timeout { url: url.to_string(), timeout: self.timeout }
        } else if ["certificate", "Certificate", "handshake", "TLS", "tls", "fatal alert"]
            .iter()
            .any(|w| detail.contains(w))
        {
            TransportError::Tls { url: url.to_string(), detail }
        } else if e.is_connect() {
            TransportError::Unreachable { url: url.to_string(), detail }
        } else {
            TransportError::Other { url: url.to_string(), detail }
        }
    }
}

/// reqwest's own message is "error sending request"; the cause is further down the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
