//! Bad input gives a clear message, the documented exit code, and never a panic.
//! Scenario files live in tests/bad-input/; their expected stderr is a snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::time::Duration;

use common::{code, normalise, run_bin, stderr, stdout};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn validate(file: &str) -> (i32, String) {
    let o = run_bin(&["validate", &format!("tests/bad-input/{file}")]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    (code(&o), err)
}

#[test]
fn scenario_load_errors_are_located_and_exit_2() {
    for (file, needle) in [
        ("malformed.yaml", "bad-input/malformed.yaml:"),
        ("unknown-key.yaml", "did you mean `token`?"),
        ("wrong-type.yaml", "bad-input/wrong-type.yaml:5:"),
        ("missing-field.yaml", "missing field `id`"),
        ("missing-env.yaml", "OAUTH_HARNESS_TEST_UNSET_VARIABLE"),
        ("unknown-check.yaml", "did you mean `token-response`?"),
    ] {
        let (rc, err) = validate(file);
        assert_eq!(rc, 2, "{file}: {err}");
        assert!(err.contains(needle), "{file}: expected {needle:?} in\n{err}");
        assert!(regex_lite::Regex::new(r"\.yaml:\d+:\d+").unwrap().is_match(&err), "{file} has no location: {err}");
    }
}

#[test]
fn load_error_snapshots() {
    for file in ["unknown-key.yaml", "unknown-check.yaml", "missing-env.yaml"] {
        let (_, err) = validate(file);
        insta::assert_snapshot!(file.trim_end_matches(".yaml"), err);
    }
}

#[test]
fn validate_reports_every_problem_in_a_file() {
    let (rc, err) = validate("several-problems.yaml");
    assert_eq!(rc, 2);
    assert!(err.contains("3 problems found"), "{err}");
}

#[test]
fn a_bad_target_file_is_exit_2_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    std::fs::write(&target, "issuer: http://127.0.0.1:9\ntimeout: soon\nclients: {}\n").unwrap();
    let o = run_bin(&["run", "scenarios/identity-server", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("t.yaml:2:10"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a duration"), "{}", stderr(&o));
}

#[test]
fn an_unknown_client_in_a_scenario_is_exit_2_before_any_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    std::fs::write(&target, "issuer: http://127.0.0.1:9\ntoken_endpoint: http://127.0.0.1:9/token\nclients:\n  confidentail: { client_id: x, client_secret: y }\n").unwrap();
    let o = run_bin(&["run", "scenarios/identity-server/token-errors.yaml", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("did you mean `confidentail`?"), "{}", stderr(&o));
}

#[test]
fn a_target_that_refuses_connections_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    // Bind then drop a listener: the port is free and nothing answers on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &target,
        format!("issuer: http://127.0.0.1:{port}\nclients:\n  confidential: {{ client_id: x, client_secret: y }}\n"),
    )
    .unwrap();
    let o = run_bin(&["run", "scenarios/identity-server", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("target unreachable: cannot connect to"), "{}", stderr(&o));
}

/// A server that answers every request with `response`, and a target pointing at it.
async fn misbehaving_server(response: ResponseTemplate) -> (MockServer, tempfile::TempDir, String) {
    let server = MockServer::builder().disable_request_recording().start().await;
    Mock::given(any()).respond_with(response).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    std::fs::write(
        &target,
        format!(
            "issuer: {uri}\ntoken_endpoint: {uri}/connect/token\nclients:\n  confidential: {{ client_id: x, client_secret: y }}\n",
            uri = server.uri()
        ),
    )
    .unwrap();
    let path = target.to_str().unwrap().to_string();
    (server, dir, path)
}

async fn run_against(target: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "scenarios/identity-server/token-endpoint.yaml",
        "--filter",
        "token-client-secret-basic",
        "--target",
        target,
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    tokio::task::spawn_blocking(move || run_bin(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

#[tokio::test]
async fn a_server_answering_html_fails_the_check_with_an_excerpt() {
    let html = "<html><body>Service Unavailable</body></html>";
    let (_server, _dir, target) = misbehaving_server(ResponseTemplate::new(200).set_body_raw(html, "text/html")).await;
    let o = run_against(&target, &[]).await;
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Content-Type: text/html"), "{}", stdout(&o));
    assert!(stdout(&o).contains("Service Unavailable"), "{}", stdout(&o));
}

#[tokio::test]
async fn an_empty_body_fails_the_check() {
    let (_server, _dir, target) = misbehaving_server(ResponseTemplate::new(200)).await;
    let o = run_against(&target, &[]).await;
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("body: (empty)"), "{}", stdout(&o));
}

#[tokio::test]
async fn a_10_mb_body_is_cut_and_fails_the_check() {
    let huge = vec![b'a'; 10 * 1024 * 1024];
    let (_server, _dir, target) =
        misbehaving_server(ResponseTemplate::new(200).set_body_raw(huge, "application/json")).await;
    let o = run_against(&target, &[]).await;
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(truncated at 1048576 bytes)"), "{}", stdout(&o));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_with_exit_3() {
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(30));
    let (_server, _dir, target) = misbehaving_server(slow).await;
    let started = std::time::Instant::now();
    let o = run_against(&target, &["--timeout", "1s"]).await;
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("did not answer within 1s"), "{}", stdout(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
    let _ = normalise("");
}
