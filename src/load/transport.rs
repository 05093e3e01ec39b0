//! How a load request goes on the wire: hyper's pooled client directly, over plain TCP or over
//! rustls with the target's CA (and the client's identity, for mTLS). reqwest's per-request
//! layers (URL re-parsing, header maps, redirect and timeout wrappers) are most of the gap
//! between a reqwest loop and a bare load tool. An HTTPS target that names no CA (a publicly
//! trusted server) keeps reqwest, whose rustls trusts the platform's roots.
//! `OAUTH_HARNESS_LOAD_TRANSPORT=reqwest` forces reqwest everywhere, for comparison.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};

use crate::support::http_body::{Capped, read_capped};
use crate::support::secret::Secret;

/// Answers larger than this are cut (and counted as a failed read): a load run keeps no bodies.
const BODY_CAP: usize = 1 << 20;
const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
const DPOP: reqwest::header::HeaderName = reqwest::header::HeaderName::from_static("dpop");
const AGENT: HeaderValue = HeaderValue::from_static(concat!("oauth-harness/", env!("CARGO_PKG_VERSION")));

pub enum Transport {
    Reqwest { client: reqwest::Client, url: reqwest::Url },
    // Boxed: one per path, made once; keeps the enum small.
    Hyper(Box<HyperTransport<HttpConnector>>),
    HyperTls(Box<HyperTransport<HttpsConnector<HttpConnector>>>),
}

pub struct HyperTransport<C> {
    client: HyperClient<C, Full<Bytes>>,
    uri: hyper::Uri,
    timeout: Duration,
}

/// What an HTTPS path trusts and presents: the target's CA bundle (PEM) and, for mTLS, the
/// client's certificate chain and key (PEM).
pub struct TlsMaterial<'a> {
    pub ca_pem: &'a [u8],
    pub identity_pem: Option<&'a Secret>,
}

/// A status and a body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Transport {
    /// hyper for `http://` without a client identity, hyper over rustls for `https://` with a
    /// CA the target names (unless the environment says reqwest); reqwest otherwise.
    pub fn choose(url: reqwest::Url, reqwest: reqwest::Client, tls: TlsMaterial<'_>, timeout: Duration) -> Self {
        let forced = std::env::var("OAUTH_HARNESS_LOAD_TRANSPORT").is_ok_and(|v| v == "reqwest");
        let Ok(uri) = url.as_str().parse::<hyper::Uri>() else { return Transport::Reqwest { client: reqwest, url } };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        match url.scheme() {
            _ if forced => Transport::Reqwest { client: reqwest, url },
            "http" if tls.identity_pem.is_none() => {
                let client = HyperClient::builder(TokioExecutor::new()).build(connector);
                Transport::Hyper(Box::new(HyperTransport { client, uri, timeout }))
            }
            "https" if !tls.ca_pem.is_empty() => match rustls_config(&tls) {
                Some(config) => {
                    connector.enforce_http(false);
                    let https = hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(config)
                        .https_only()
                        .enable_http1()
                        .wrap_connector(connector);
                    let client = HyperClient::builder(TokioExecutor::new()).build(https);
                    Transport::HyperTls(Box::new(HyperTransport { client, uri, timeout }))
                }
                // What reqwest accepted and rustls would not: reqwest says it, as it does today.
                None => Transport::Reqwest { client: reqwest, url },
            },
            _ => Transport::Reqwest { client: reqwest, url },
        }
    }

    pub fn url(&self) -> String {
        match self {
            Transport::Reqwest { url, .. } => url.to_string(),
            Transport::Hyper(h) => h.uri.to_string(),
            Transport::HyperTls(h) => h.uri.to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Transport::Reqwest { .. } => "reqwest",
            Transport::Hyper(_) => "hyper",
            Transport::HyperTls(_) => "hyper+rustls",
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
                let mut response = request.send().await.map_err(reqwest_kind)?;
                let status = response.status().as_u16();
                // Over the cap is a failed read, as on the hyper paths (`Limited`).
                match read_capped(&mut response, BODY_CAP).await.map_err(reqwest_kind)? {
                    Capped { truncated: true, .. } => Err("body read"),
                    Capped { body, .. } => Ok(Answer { status, body: body.into() }),
                }
            }
            Transport::Hyper(h) => h.post(body, authorization, dpop).await,
            Transport::HyperTls(h) => h.post(body, authorization, dpop).await,
        }
    }
}

impl<C: Connect + Clone + Send + Sync + 'static> HyperTransport<C> {
    async fn post(
        &self,
        body: Bytes,
        authorization: Option<&HeaderValue>,
        dpop: Option<HeaderValue>,
    ) -> Result<Answer, &'static str> {
        let mut request = hyper::Request::post(self.uri.clone())
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
            let response =
                self.client.request(request).await.map_err(|e| if e.is_connect() { "connect" } else { "request" })?;
            let status = response.status().as_u16();
            let body =
                Limited::new(response.into_body(), BODY_CAP).collect().await.map_err(|_| "body read")?.to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| "timeout")?
    }
}

/// rustls trusting exactly the target's CAs (as the reqwest client does, `tls_certs_only`), with
/// the client's identity when it has one (the connector sets ALPN: HTTP/1.1, as the plain path).
fn rustls_config(tls: &TlsMaterial<'_>) -> Option<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(tls.ca_pem) {
        roots.add(cert.ok()?).ok()?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match tls.identity_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let pem = pem.expose().as_bytes();
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().ok()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(pem).ok()?).ok()?
        }
    };
    Some(config)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{TlsMaterial, Transport, rustls_config};
    use crate::support::secret::Secret;

    const CA: &str = include_str!("../../fixtures/pki/ca.pem");
    const CERT: &str = include_str!("../../fixtures/pki/client.pem");
    const KEY: &str = include_str!("../../fixtures/pki/client.key");

    fn transport(url: &str, ca: &[u8], identity: Option<&Secret>) -> Transport {
        let material = TlsMaterial { ca_pem: ca, identity_pem: identity };
        Transport::choose(url.parse().unwrap(), reqwest::Client::new(), material, std::time::Duration::from_secs(1))
    }

    #[test]
    fn the_target_ca_and_the_client_identity_make_a_rustls_config() {
        let identity = Secret::new(format!("{CERT}\n{KEY}"));
        assert!(rustls_config(&TlsMaterial { ca_pem: CA.as_bytes(), identity_pem: None }).is_some());
        assert!(rustls_config(&TlsMaterial { ca_pem: CA.as_bytes(), identity_pem: Some(&identity) }).is_some());
        let no_key = Secret::new(CERT.to_string());
        assert!(rustls_config(&TlsMaterial { ca_pem: CA.as_bytes(), identity_pem: Some(&no_key) }).is_none());
    }

    #[tokio::test]
    async fn https_with_a_ca_goes_through_hyper_and_without_one_through_reqwest() {
        let identity = Secret::new(format!("{CERT}\n{KEY}"));
        assert_eq!(transport("http://127.0.0.1:9/t", b"", None).name(), "hyper");
        assert_eq!(transport("https://127.0.0.1:9/t", CA.as_bytes(), None).name(), "hyper+rustls");
        assert_eq!(transport("https://127.0.0.1:9/t", CA.as_bytes(), Some(&identity)).name(), "hyper+rustls");
        // No CA named: the platform's roots, which reqwest's rustls knows.
        assert_eq!(transport("https://127.0.0.1:9/t", b"", None).name(), "reqwest");
        // A CA bundle rustls cannot read: reqwest, which says what is wrong with it.
        assert_eq!(
            transport("https://127.0.0.1:9/t", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", None)
                .name(),
            "reqwest"
        );
    }
}
