//! How a load request goes on the wire. Plain-HTTP targets get hyper's pooled client directly:
//! reqwest's per-request layers (URL re-parsing, header maps, redirect and timeout wrappers) are
//! most of the gap between a reqwest loop and a bare load tool. HTTPS and mTLS targets keep
//! reqwest and its rustls configuration (trusted CAs, client identity).
//! `OAUTH_HARNESS_LOAD_TRANSPORT=reqwest` forces reqwest everywhere, for comparison.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};

/// Answers larger than this are cut (and counted as a failed read): a load run keeps no bodies.
const BODY_CAP: usize = 1 << 20;
const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
const DPOP: reqwest::header::HeaderName = reqwest::header::HeaderName::from_static("dpop");
const AGENT: HeaderValue = HeaderValue::from_static(concat!("oauth-harness/", env!("CARGO_PKG_VERSION")));

pub enum Transport {
    Reqwest { client: reqwest::Client, url: reqwest::Url },
    // Boxed: one per path, made once; keeps the enum small.
    Hyper(Box<HyperTransport>),
}

pub struct HyperTransport {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    timeout: Duration,
}

/// A status and a body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Transport {
    /// hyper for `http://` without a client identity (unless the environment says reqwest);
    /// reqwest otherwise.
    pub fn choose(url: reqwest::Url, reqwest: reqwest::Client, has_identity: bool, timeout: Duration) -> Self {
        let forced = std::env::var("OAUTH_HARNESS_LOAD_TRANSPORT").is_ok_and(|v| v == "reqwest");
        let uri = url.as_str().parse::<hyper::Uri>();
        match uri {
            Ok(uri) if url.scheme() == "http" && !has_identity && !forced => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(timeout));
                let client = HyperClient::builder(TokioExecutor::new()).build(connector);
                Transport::Hyper(Box::new(HyperTransport { client, uri, timeout }))
            }
            _ => Transport::Reqwest { client: reqwest, url },
        }
    }

    pub fn url(&self) -> String {
        match self {
            Transport::Reqwest { url, .. } => url.to_string(),
            Transport::Hyper(h) => h.uri.to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Transport::Reqwest { .. } => "reqwest",
            Transport::Hyper(_) => "hyper",
        }
    }

    /// POSTs a form body, with an `Authorization` and a `DPoP` header when given; `Err` names
    /// the transport failure.
    pub async fn post(
        &self,
        body: Bytes,
        authorization: Option<&HeaderValue>,
        dpop: Option<HeaderValue>,
    ) -> Result<Answer, &'static str> {
        match self {
            Transport::Reqwest { client, url } => {
                let mut request = client.post(url.clone()).header(CONTENT_TYPE, FORM).body(body);
                if let Some(value) = authorization {
                    request = request.header(AUTHORIZATION, value.clone());
                }
                if let Some(proof) = dpop {
                    request = request.header(DPOP, proof);
                }
                let response = request.send().await.map_err(reqwest_kind)?;
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(reqwest_kind)?;
                Ok(Answer { status, body })
            }
            Transport::Hyper(h) => {
                let HyperTransport { client, uri, timeout } = h.as_ref();
                let mut request = hyper::Request::post(uri.clone())
                    .header(CONTENT_TYPE, FORM)
                    .header(USER_AGENT, AGENT)
                    .body(Full::new(body))
                    .map_err(|_| "request")?;
                if let Some(value) = authorization {
                    request.headers_mut().insert(AUTHORIZATION, value.clone());
                }
                if let Some(proof) = dpop {
                    request.headers_mut().insert(DPOP, proof);
                }
                let exchange = async {
                    let response = client
                        .request(request)
                        .await
                        .map_err(|e| if e.is_connect() { "connect" } else { "request" })?;
                    let status = response.status().as_u16();
                    let body = Limited::new(response.into_body(), BODY_CAP)
                        .collect()
                        .await
                        .map_err(|_| "body read")?
                        .to_bytes();
                    Ok(Answer { status, body })
                };
                tokio::time::timeout(*timeout, exchange).await.map_err(|_| "timeout")?
            }
        }
    }
}

fn reqwest_kind(e: reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body read"
    } else {
        "request"
    }
}
