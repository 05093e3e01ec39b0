//! References for `benches/load-vs-oha.sh`, measured in the same run as the harness:
//!
//! - `serve PORT [--tls PKI_DIR]`: a fast token endpoint on 127.0.0.1 (hyper, fixed answer, reads
//!   the body) — the server side must not be the bottleneck of what is compared; with `--tls`,
//!   over TLS with `PKI_DIR/server.pem` and `server.key`, asking for (not requiring) a client
//!   certificate from `PKI_DIR/ca.pem`'s CA, as an mTLS token endpoint does;
//! - `bare URL CONNECTIONS SECONDS [--cacert CA]`: the simplest reqwest load loop, one task per
//!   connection, each request checked for status 200 — what the harness is measured against;
//! - `sign KEY_PEM SECONDS THREADS`: the machine's bare signing rate — THREADS threads signing, with
//!   aws-lc-rs over a pre-parsed key, an input the size of a client assertion's — what a sustained
//!   private_key_jwt run (`benches/pkjwt-sustained.sh`) is measured against.
//!
//! All stop by themselves: `serve` after `--for` seconds (default 600), `bare` and `sign` after
//! SECONDS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const TOKEN: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl","token_type":"Bearer","expires_in":3600,"scope":"implant"}"#;
/// The answer to a request with a DPoP proof (RFC 9449 §5); the proof is not verified: this
/// endpoint measures the client side only.
const DPOP_TOKEN: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl","token_type":"DPoP","expires_in":3600,"scope":"implant"}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("serve") => {
            let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(18080);
            let limit: u64 =
                args.iter().position(|a| a == "--for").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(600);
            let tls = option(&args, "--tls").map(|dir| tls_acceptor(&dir));
            runtime.block_on(serve(port, Duration::from_secs(limit), tls));
        }
        Some("bare") => {
            let url = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:18080/connect/token".into());
            let connections: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(32);
            let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
            let ca = option(&args, "--cacert");
            let (requests, errors, elapsed) =
                runtime.block_on(bare(url, connections, Duration::from_secs(seconds), ca.as_deref()));
            println!(
                "{{\"requests\":{requests},\"errors\":{errors},\"seconds\":{elapsed:.3},\"rps\":{:.1}}}",
                requests as f64 / elapsed
            );
        }
        Some("sign") => {
            let pem = std::fs::read_to_string(args.get(1).expect("a private key PEM")).expect("a key file");
            let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
            let threads: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
            let (signatures, elapsed) = bare_signing(&pem, Duration::from_secs(seconds), threads);
            println!(
                "{{\"signatures\":{signatures},\"seconds\":{elapsed:.3},\"threads\":{threads},\"rate\":{:.1}}}",
                signatures as f64 / elapsed
            );
        }
        _ => eprintln!(
            "usage: load_reference serve PORT [--for SECONDS] [--tls PKI_DIR] | bare URL CONNECTIONS SECONDS [--cacert CA] | sign KEY_PEM SECONDS THREADS"
        ),
    }
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// `threads` threads signing for `duration`, each with its own pre-parsed key (RS384 for an RSA
/// key, ES384 for a P-384 one): the ceiling of any private_key_jwt load on this machine.
fn bare_signing(pem: &str, duration: Duration, threads: usize) -> (u64, f64) {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA384, RsaKeyPair};
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pkcs8 = base64::engine::general_purpose::STANDARD.decode(body).expect("a PEM body");
    // A client assertion's signing input is about 330 bytes (header and claims, base64url).
    let input = vec![b'e'; 330];
    let signatures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let (pkcs8, input, signatures) = (&pkcs8, &input, signatures.clone());
            scope.spawn(move || {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sign: Box<dyn FnMut()> = match RsaKeyPair::from_pkcs8(pkcs8) {
                    Ok(rsa) => {
                        let mut sig = vec![0u8; rsa.public_modulus_len()];
                        Box::new(move || rsa.sign(&RSA_PKCS1_SHA384, &rng, input, &mut sig).expect("sign"))
                    }
                    Err(_) => {
                        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8)
                            .expect("an RSA or P-384 key");
                        Box::new(move || {
                            std::hint::black_box(ec.sign(&rng, input).expect("sign"));
                        })
                    }
                };
                let mut n = 0u64;
                while started.elapsed() < duration {
                    for _ in 0..8 {
                        sign();
                    }
                    n += 8;
                }
                signatures.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    (signatures.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}

/// The harness's own TLS front (the PSC mock's): client certificates asked for, not required.
fn tls_acceptor(dir: &str) -> tokio_rustls::TlsAcceptor {
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).expect("a PKI file");
    let (chain, key, ca) = (read("server.pem"), read("server.key"), read("ca.pem"));
    let pki = oauth_harness::support::http_server::ServerPki {
        server_chain_pem: &chain,
        server_key_pem: &key,
        client_ca_pem: &ca,
        versions: Default::default(),
    };
    oauth_harness::support::http_server::tls_acceptor(&pki).expect("a TLS configuration")
}

async fn serve(port: u16, limit: Duration, tls: Option<tokio_rustls::TlsAcceptor>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let accept = async {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let token = if req.headers().contains_key("dpop") { DPOP_TOKEN } else { TOKEN };
                    // Read the body as a real endpoint would before answering.
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .header("cache-control", "no-store")
                            .body(Full::new(Bytes::from_static(token.as_bytes())))
                            .expect("static response"),
                    )
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                    }
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    };
    let _ = tokio::time::timeout(limit, accept).await;
}

async fn bare(url: String, connections: usize, duration: Duration, ca: Option<&str>) -> (u64, u64, f64) {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca {
        let pem = std::fs::read(path).expect("a CA file");
        builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).expect("PEM certificates"));
    }
    let client = builder.build().expect("client");
    let body = "grant_type=client_credentials&scope=implant";
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, requests, errors, stop) =
                (client.clone(), url.clone(), requests.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = match client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        // Precomputed, as the harness does: Basic base64("implant-vendor:implant-vendor-secret").
                        .header("authorization", "Basic aW1wbGFudC12ZW5kb3I6aW1wbGFudC12ZW5kb3Itc2VjcmV0")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (requests.load(Ordering::Relaxed), errors.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}
