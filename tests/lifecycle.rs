//! A token's life: the harness's own client never sends an expired token, the expiry suite runs
//! in about the token's lifetime, and introspection problems are reported, not panicked on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{code, run_bin, stderr, stdout};
use oauth_harness::embedded::Embedded;
use oauth_harness::mock::DefectSet;
use oauth_harness::protocol::flows::token_cache::TokenCache;
use oauth_harness::support::secret::Secret;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Against the mock's 5-second tokens, for 6 s of resource calls every 150 ms: every call carries
/// a live token (the resource never answers 401) and the cache renewed along the way.
#[tokio::test]
async fn the_harness_client_renews_before_expiry_and_never_sends_an_expired_token() {
    let embedded = Embedded::start(DefectSet::default()).await.unwrap();
    let issuer = embedded.target.issuer.as_str().trim_end_matches('/').to_string();
    let http = reqwest::Client::new();
    let cache = TokenCache::default();
    let mut seen = HashSet::new();
    let started = Instant::now();
    for _ in 0..50 {
        if started.elapsed() > Duration::from_millis(6000) {
            break;
        }
        let token = cache
            .get_or_fetch("short-lived", || async {
                let bytes = http
                    .post(format!("{issuer}/connect/token"))
                    .basic_auth("implant-vendor-short", Some("implant-vendor-short-secret"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials&scope=implant")
                    .send()
                    .await?
                    .bytes()
                    .await?;
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let token = Secret::new(body["access_token"].as_str().unwrap_or_default());
                Ok::<_, reqwest::Error>((token, body["expires_in"].as_i64()))
            })
            .await
            .unwrap();
        seen.insert(token.expose().to_string());
        let status =
            http.get(format!("{issuer}/api/implant")).bearer_auth(token.expose()).send().await.unwrap().status();
        assert_eq!(status, 200, "the resource refused the cached token after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(seen.len() >= 2, "the cache renewed the 5-second token before it expired: {} tokens", seen.len());
}

#[test]
fn the_expiry_suite_takes_about_the_token_lifetime() {
    let started = Instant::now();
    let o = run_bin(&["run", "scenarios/expiry"]);
    let wall = started.elapsed();
    // Written past libtest's capture on purpose: the figure belongs in every test log.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\nrun scenarios/expiry against the mock (5 s tokens, 1 s skew): {:.2} s wall time",
        wall.as_secs_f64()
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(wall < Duration::from_secs(9), "took {wall:?} for a 5 s token lifetime");
    assert!(stdout(&o).contains("PASS  token-lifetime"), "{}", stdout(&o));
}

#[test]
fn a_missing_introspection_endpoint_names_what_to_configure() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &target,
        format!(
            "issuer: http://127.0.0.1:{port}\ntoken_endpoint: http://127.0.0.1:{port}/token\nclients:\n  confidential: {{ client_id: a, client_secret: b }}\n  resource-server: {{ client_id: c, client_secret: d }}\n  backend-rs384: {{ client_id: e, private_key: {} }}\n",
            common::repo_path("fixtures/keys/backend-rs384/private.pem").display()
        ),
    )
    .unwrap();
    let o = run_bin(&["run", "scenarios/introspection", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("needs the introspection_endpoint") && err.contains("set `introspection_endpoint`"), "{err}");
    assert!(err.contains("introspection.yaml:"), "located at the case: {err}");
}

#[tokio::test]
async fn a_non_json_introspection_answer_is_a_failed_check_with_an_excerpt() {
    let embedded = Embedded::start(DefectSet::default()).await.unwrap();
    let html = MockServer::builder().disable_request_recording().start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html><body>Gateway login</body></html>", "text/html"))
        .mount(&html)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    let issuer = embedded.target.issuer.as_str().trim_end_matches('/');
    std::fs::write(
        &target,
        format!(
            "issuer: {issuer}\nintrospection_endpoint: {}/introspect\nclients:\n  confidential: {{ client_id: implant-vendor, client_secret: implant-vendor-secret, scope: implant }}\n  resource-server: {{ client_id: fhir-facade, client_secret: fhir-facade-secret }}\n",
            html.uri()
        ),
    )
    .unwrap();
    let args: Vec<String> =
        ["run", "scenarios/introspection", "--filter", "introspect-active", "--target", target.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let o = tokio::task::spawn_blocking(move || run_bin(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("rfc7662.2.2.active") && out.contains("Content-Type: text/html") && out.contains("Gateway login"),
        "{out}"
    );
    assert!(!stderr(&o).contains("panicked"));
}
