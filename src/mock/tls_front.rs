//! A TLS front for a wiremock mock, the way API gateways front Keycloak: it terminates TLS on
//! 127.0.0.1, asks for a client certificate (optional at the TLS layer, so the mock itself can
//! answer `invalid_client`), verifies it against the CA, and forwards each request to the mock
//! with the certificate's subject DN and SHA-256 in headers it strips from the incoming request.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Header carrying the verified client certificate's subject DN to the mock.
pub const SUBJECT_HEADER: &str = "x-client-cert-subject";
/// Header carrying base64url(SHA-256(certificate DER)) — RFC 8705's `x5t#S256`.
pub const THUMBPRINT_HEADER: &str = "x-client-cert-s256";

pub struct TlsFront {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// PEM material of the front: server chain and key, and the CA client certificates chain to.
pub struct FrontPki<'a> {
    pub server_chain_pem: &'a str,
    pub server_key_pem: &'a str,
    pub client_ca_pem: &'a str,
}

fn tls_config(pki: &FrontPki<'_>) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pki.server_chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).map_err(|e| format!("server key: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pki.client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|e| format!("client CA: {e}"))?).map_err(|e| format!("client CA: {e}"))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client verifier: {e}"))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate and key: {e}"))
}

/// The subject DN as the mock matches it, e.g. `C=FR, O=oauth-harness test, CN=harness-psc-client`.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

/// Starts the front on 127.0.0.1 (`port`, or a free one), forwarding to `backend`.
pub async fn start(port: Option<u16>, backend: String, pki: &FrontPki<'_>) -> std::io::Result<TlsFront> {
    let config = tls_config(pki).map_err(std::io::Error::other)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).await?;
    let addr = listener.local_addr()?;
    let client = reqwest::Client::builder().no_proxy().build().map_err(std::io::Error::other)?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, client, backend) = (acceptor.clone(), client.clone(), backend.clone());
            tokio::spawn(async move {
                // A client that fails the handshake (e.g. an untrusted certificate) is dropped.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let peer = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                let identity = peer
                    .map(|der| (subject_dn(&der).unwrap_or_default(), URL_SAFE_NO_PAD.encode(Sha256::digest(&der))));
                let service = service_fn(move |req| forward(req, client.clone(), backend.clone(), identity.clone()));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    Ok(TlsFront { addr, task })
}

async fn forward(
    req: hyper::Request<Incoming>,
    client: reqwest::Client,
    backend: String,
    identity: Option<(String, String)>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = client.request(parts.method.clone(), format!("{backend}{path}")).body(body);
    for (name, value) in &parts.headers {
        // Never let a caller claim a certificate it did not present.
        if name == "host" || name == SUBJECT_HEADER || name == THUMBPRINT_HEADER {
            continue;
        }
        out = out.header(name, value);
    }
    if let Some((subject, thumbprint)) = identity {
        out = out.header(SUBJECT_HEADER, subject).header(THUMBPRINT_HEADER, thumbprint);
    }
    let response = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            let mut bad = hyper::Response::new(Full::new(Bytes::from(format!("front: backend unreachable: {e}"))));
            *bad.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(bad);
        }
    };
    let mut builder = hyper::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        if name != "transfer-encoding" && name != "connection" {
            builder = builder.header(name, value);
        }
    }
    let bytes = response.bytes().await.unwrap_or_default();
    Ok(builder.body(Full::new(bytes)).unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}
