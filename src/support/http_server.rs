//! The harness's own HTTP servers (the mocks, the JWKS server): hyper on 127.0.0.1, plain or TLS
//! (asking for, and verifying, a client certificate), handing each request to a handler that
//! answers synchronously. Bounded: a body larger than [`MAX_BODY`] is refused, and nothing about a
//! request outlives its answer — a server keeps only the state its protocol needs. (wiremock's
//! server records every request it matches, whatever its options say: under load that is
//! gigabytes, so wiremock stays in the tests, where it stands in for misbehaving servers.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A request as a handler sees it: the whole body read (at most [`MAX_BODY`]).
#[derive(Debug, Clone)]
pub struct Request {
    pub url: url::Url,
    pub method: hyper::Method,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

/// Header carrying the verified client certificate's subject DN to the handler.
pub const SUBJECT_HEADER: &str = "x-client-cert-subject";
/// Header carrying base64url(SHA-256(certificate DER)) — RFC 8705's `x5t#S256`.
pub const THUMBPRINT_HEADER: &str = "x-client-cert-s256";
/// Header present when the client's certificate is self-signed (it did not chain to the CA).
pub const SELF_SIGNED_HEADER: &str = "x-client-cert-self-signed";
/// No OAuth request comes near this.
pub const MAX_BODY: usize = 1024 * 1024;

/// A mock's request handling: one answer per request, no I/O.
pub trait Handle: Send + Sync + 'static {
    fn handle(&self, request: &Request) -> Reply;
}

/// An answer: status, headers, body, and an optional delay before it is sent.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Bytes::new(), delay: None }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.as_str().eq_ignore_ascii_case(name)).and_then(|(_, v)| v.to_str().ok())
    }

    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Sets a header, replacing one of the same name.
    pub fn insert_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.retain(|(k, _)| *k != n);
            self.headers.push((n, v));
        }
        self
    }

    pub fn set_body_json(self, body: impl serde::Serialize) -> Self {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.set_body_raw(bytes, "application/json")
    }

    pub fn set_body_string(self, body: impl Into<String>) -> Self {
        self.set_body_raw(body.into().into_bytes(), "text/plain")
    }

    pub fn set_body_raw(mut self, body: impl Into<Bytes>, mime: &str) -> Self {
        self.body = body.into();
        self.insert_header(CONTENT_TYPE.as_str(), mime)
    }

    pub fn set_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(self.body));
        *response.status_mut() =
            hyper::StatusCode::from_u16(self.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in self.headers {
            response.headers_mut().insert(k, v);
        }
        response
    }
}

/// A running server, on a thread and runtime of its own (a handler may block — the mock fetching
/// a client's JWKS — without stalling whoever called it); stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Worker threads of a server's runtime: two keep a mock from being the slow side of a load run
/// on this project's two-core machines without taking every core.
const WORKERS: usize = 2;

impl Server {
    /// `http://127.0.0.1:PORT`, or `https://…` for a TLS server.
    pub fn origin(&self, tls: bool) -> String {
        format!("{}://{}", if tls { "https" } else { "http" }, self.addr)
    }
}

/// A listener on 127.0.0.1 (`port`, or a free one), for [`serve_on`].
pub fn bind(port: Option<u16>) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `handler` on 127.0.0.1 (`port`, or a free one), over TLS when `tls` is given.
pub fn serve(port: Option<u16>, handler: Arc<dyn Handle>, tls: Option<TlsAcceptor>) -> std::io::Result<Server> {
    serve_on(bind(port)?, handler, tls)
}

/// Serves on a listener already bound (its address may be needed before the handler exists).
pub fn serve_on(
    listener: std::net::TcpListener,
    handler: Arc<dyn Handle>,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("mock-server")
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("mock-server".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(listener) else { return };
            tokio::select! {
                _ = accept_loop(listener, handler, tls) => {}
                _ = stopped => {}
            }
        });
        // Connections still open end with the runtime.
        runtime.shutdown_background();
    })?;
    Ok(Server { addr, stop: Some(stop), thread: Some(thread) })
}

async fn accept_loop(listener: TcpListener, handler: Arc<dyn Handle>, tls: Option<TlsAcceptor>) {
    let origin = match listener.local_addr() {
        Ok(addr) => format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }),
        Err(_) => return,
    };
    {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let (handler, tls, origin) = (handler.clone(), tls.clone(), origin.clone());
            tokio::spawn(async move {
                match tls {
                    None => {
                        let service = service_fn(move |req| answer(req, handler.clone(), origin.clone(), None));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    }
                    Some(acceptor) => {
                        // A client that fails the handshake (e.g. an untrusted certificate) is dropped.
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let peer =
                            stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                        let identity = peer.map(|der| ClientCert {
                            subject: subject_dn(&der).unwrap_or_default(),
                            thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
                            self_signed: is_self_signed(&der),
                        });
                        let service =
                            service_fn(move |req| answer(req, handler.clone(), origin.clone(), identity.clone()));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    }
}

/// The certificate a TLS client presented, as handlers see it.
#[derive(Debug, Clone)]
struct ClientCert {
    subject: String,
    thumbprint: String,
    self_signed: bool,
}

/// PEM material of a TLS server: its chain and key, and the CA client certificates chain to.
pub struct ServerPki<'a> {
    pub server_chain_pem: &'a str,
    pub server_key_pem: &'a str,
    pub client_ca_pem: &'a str,
    pub versions: TlsVersions,
}

/// The TLS versions a server offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3 (rustls's safe defaults).
    #[default]
    Both,
    Tls12Only,
    Tls13Only,
}

impl TlsVersions {
    fn rustls(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersions::Both => rustls::DEFAULT_VERSIONS,
            TlsVersions::Tls12Only => &TLS12,
            TlsVersions::Tls13Only => &TLS13,
        }
    }
}

/// A TLS acceptor that asks for a client certificate — optional at the TLS layer, so the handler
/// itself can answer `invalid_client` — and verifies it against the CA.
pub fn tls_acceptor(pki: &ServerPki<'_>) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pki.server_chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).map_err(|e| format!("server key: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pki.client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|e| format!("client CA: {e}"))?).map_err(|e| format!("client CA: {e}"))?;
    }
    let chained = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client verifier: {e}"))?;
    let verifier = Arc::new(ChainedOrSelfSigned { chained });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(pki.versions.rustls())
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate and key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client certificates that chain to the CA (RFC 8705 §2.1), or that are self-signed (§2.2: the
/// handler matches those by their registered thumbprint, and `SELF_SIGNED_HEADER` says which).
/// Either way the TLS handshake proves the client holds the certificate's key.
#[derive(Debug)]
struct ChainedOrSelfSigned {
    chained: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).ok().is_some_and(|(_, c)| c.subject() == c.issuer())
}

impl rustls::server::danger::ClientCertVerifier for ChainedOrSelfSigned {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        // No hints: a client holding a self-signed certificate must not hold it back.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        match self.chained.verify_client_cert(end_entity, intermediates, now) {
            Ok(v) => Ok(v),
            Err(_) if is_self_signed(end_entity.as_ref()) => {
                Ok(rustls::server::danger::ClientCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chained.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chained.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chained.supported_verify_schemes()
    }
}

/// The subject DN as the mocks match it, e.g. `C=FR, O=oauth-harness test, CN=harness-psc-client`.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

async fn answer(
    req: hyper::Request<Incoming>,
    handler: Arc<dyn Handle>,
    origin: String,
    identity: Option<ClientCert>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await.map(|b| b.to_bytes()) else {
        return Ok(Reply::new(413).set_body_string("request body too large").into_response());
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(url) = url::Url::parse(&format!("{origin}{path}")) else {
        return Ok(Reply::new(400).set_body_string("bad request target").into_response());
    };
    let mut headers = parts.headers;
    // Never let a caller claim a certificate it did not present.
    headers.remove(SUBJECT_HEADER);
    headers.remove(THUMBPRINT_HEADER);
    headers.remove(SELF_SIGNED_HEADER);
    if let Some(cert) = identity {
        if let (Ok(s), Ok(t)) = (HeaderValue::try_from(cert.subject), HeaderValue::try_from(cert.thumbprint)) {
            headers.insert(SUBJECT_HEADER, s);
            headers.insert(THUMBPRINT_HEADER, t);
        }
        if cert.self_signed {
            headers.insert(SELF_SIGNED_HEADER, HeaderValue::from_static("1"));
        }
    }
    let request = Request { url, method: parts.method, headers, body: body.to_vec() };
    let reply = handler.handle(&request);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    Ok(reply.into_response())
}
