//! References for `benches/load-vs-oha.sh`, measured in the same run as the harness:
//!
//! - `serve PORT`: a fast token endpoint on 127.0.0.1 (hyper, fixed answer, reads the body) —
//!   the server side must not be the bottleneck of what is compared;
//! - `bare URL CONNECTIONS SECONDS`: the simplest reqwest load loop, one task per connection,
//!   each request checked for status 200 — what the harness is measured against.
//!
//! Both stop by themselves: `serve` after `--for` seconds (default 600), `bare` after SECONDS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const TOKEN: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl","token_type":"Bearer","expires_in":3600,"scope":"implant"}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("serve") => {
            let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(18080);
            let limit: u64 =
                args.iter().position(|a| a == "--for").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(600);
            runtime.block_on(serve(port, Duration::from_secs(limit)));
        }
        Some("bare") => {
            let url = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:18080/connect/token".into());
            let connections: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(32);
            let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
            let (requests, errors, elapsed) = runtime.block_on(bare(url, connections, Duration::from_secs(seconds)));
            println!(
                "{{\"requests\":{requests},\"errors\":{errors},\"seconds\":{elapsed:.3},\"rps\":{:.1}}}",
                requests as f64 / elapsed
            );
        }
        _ => eprintln!("usage: load_reference serve PORT [--for SECONDS] | bare URL CONNECTIONS SECONDS"),
    }
}

async fn serve(port: u16, limit: Duration) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let accept = async {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the body as a real endpoint would before answering.
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .header("cache-control", "no-store")
                            .body(Full::new(Bytes::from_static(TOKEN.as_bytes())))
                            .expect("static response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    };
    let _ = tokio::time::timeout(limit, accept).await;
}

async fn bare(url: String, connections: usize, duration: Duration) -> (u64, u64, f64) {
    let client = reqwest::Client::builder().build().expect("client");
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
