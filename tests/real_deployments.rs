//! Real servers as they are (issue 15): the target names the server's scopes and each client's
//! registration, and a verdict never blames the server for an assumption of ours.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{bin, stdout};
use oauth_harness::mock::identity_server::{Config, builtin};

fn report(args: Vec<String>) -> (std::process::Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut all = args;
    all.extend(["--report-json".into(), json.display().to_string(), "--no-color".into()]);
    let out = bin().args(&all).output().unwrap();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|_| "null".into())).unwrap();
    (out, report)
}

fn case<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["suites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id} in {report}"))
}

/// A server whose `confidential` client may have `implant` and `fhir`, and knows no `profile`.
async fn server_without_profile() -> oauth_harness::mock::identity_server::IdentityServerMock {
    let mut clients = builtin();
    for c in clients.clients.iter_mut().filter(|c| c.name == "confidential") {
        c.scopes = vec!["implant".into(), "fhir".into()];
    }
    common::start_mock(Config { clients, ..Config::default() }).await
}

async fn run_blocking(args: Vec<String>) -> (std::process::Output, serde_json::Value) {
    tokio::task::spawn_blocking(move || report(args)).await.unwrap()
}

#[tokio::test]
async fn scope_order_asks_for_the_servers_second_scope_when_the_target_names_it() {
    let mock = server_without_profile().await;
    let dir = tempfile::tempdir().unwrap();
    let target = common::write_target(dir.path(), &mock, None);
    let suite = common::repo_path("scenarios/identity-server/token-endpoint.yaml").display().to_string();
    let args = |t: &std::path::Path| {
        vec![
            "run".into(),
            suite.clone(),
            "--target".into(),
            t.display().to_string(),
            "--filter".into(),
            "token-scope-order".into(),
        ]
    };

    // Today's name for the role: the server rightly refuses a scope it does not know.
    let (_, unmapped) = run_blocking(args(&target)).await;
    assert_eq!(case(&unmapped, "token-scope-order")["outcome"], "failed", "{unmapped}");

    // The target maps the role to the server's own name: the rule is judged, and holds.
    let mapped = dir.path().join("mapped.yaml");
    let text = std::fs::read_to_string(&target).unwrap() + "scopes:\n  second: fhir\n";
    std::fs::write(&mapped, text).unwrap();
    let (out, report) = run_blocking(args(&mapped)).await;
    let c = case(&report, "token-scope-order");
    assert_eq!(c["outcome"], "passed", "{}", stdout(&out));
    let sent = c["steps"][0]["exchange"]["request"]["body"].as_str().unwrap_or_default().to_string();
    assert!(sent.contains("scope=fhir+implant"), "the request asked for the mapped scopes: {sent}");
}

#[tokio::test]
async fn a_post_case_is_skipped_for_a_client_registered_for_basic_alone() {
    let mock = common::start_mock(Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // write_target registers each client for its first method only: Basic for `confidential`.
    let target = common::write_target(dir.path(), &mock, None);
    let suite = common::repo_path("scenarios/identity-server").display().to_string();
    let args = vec![
        "run".into(),
        suite.clone(),
        "--target".into(),
        target.display().to_string(),
        "--filter".into(),
        "*-post".into(),
    ];
    let (out, report) = run_blocking(args).await;
    for id in ["token-client-secret-post", "reject-wrong-secret-post"] {
        let c = case(&report, id);
        assert_eq!(c["outcome"], "skipped", "{}", stdout(&out));
        assert!(c["reason"].as_str().unwrap().contains("not registered for client_secret_post"), "{c}");
    }

    // Registered for both, as the mock has it: the same cases run and pass.
    let both = dir.path().join("both.yaml");
    let text = std::fs::read_to_string(&target).unwrap().replace(
        "    auth: client_secret_basic\n",
        "    auth: client_secret_basic\n    methods: [client_secret_basic, client_secret_post]\n",
    );
    std::fs::write(&both, text).unwrap();
    let args =
        vec!["run".into(), suite, "--target".into(), both.display().to_string(), "--filter".into(), "*-post".into()];
    let (out, report) = run_blocking(args).await;
    for id in ["token-client-secret-post", "reject-wrong-secret-post"] {
        assert_eq!(case(&report, id)["outcome"], "passed", "{}", stdout(&out));
    }
}

#[tokio::test]
async fn the_unregistered_method_case_needs_a_client_that_is_not_registered_for_post() {
    let mock = common::start_mock(Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let target = common::write_target(dir.path(), &mock, None);
    let suite = common::repo_path("scenarios/identity-server/token-errors.yaml").display().to_string();
    let registered_for_both = dir.path().join("both.yaml");
    let text = std::fs::read_to_string(&target).unwrap().replace(
        "    auth: client_secret_basic\n",
        "    auth: client_secret_basic\n    methods: [client_secret_basic, client_secret_post]\n",
    );
    std::fs::write(&registered_for_both, text).unwrap();
    let args = vec![
        "run".into(),
        suite,
        "--target".into(),
        registered_for_both.display().to_string(),
        "--filter".into(),
        "reject-unregistered-method".into(),
    ];
    let (_, report) = run_blocking(args).await;
    let c = case(&report, "reject-unregistered-method");
    assert_eq!(c["outcome"], "skipped", "{c}");
    assert!(c["reason"].as_str().unwrap().contains("is registered for client_secret_post"), "{c}");
}

/// RFC 9449 §8 with private_key_jwt: a server asking for a DPoP nonce gets the request again
/// with the nonce and a new client assertion (an assertion is single-use, RFC 7523 §3 item 7), so
/// a client registered for both is judged, not skipped.
#[tokio::test]
async fn a_dpop_nonce_is_followed_with_a_new_assertion_for_a_private_key_jwt_client() {
    let mut clients = builtin();
    for c in clients.clients.iter_mut().filter(|c| c.name == "backend-rs384") {
        c.dpop_nonce = true;
    }
    let mock = common::start_mock(Config { clients, ..Config::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let target = common::write_target(dir.path(), &mock, None);
    let suite = dir.path().join("nonce.yaml");
    std::fs::write(
        &suite,
        "suite: nonce\nclient: backend-rs384\ncases:\n  - id: nonce-and-assertion\n    token: { dpop: good }\n    expect: { checks: [rfc9449.8.nonce, rfc9449.5.token-type, rfc6749.4.4.token-issued] }\n",
    )
    .unwrap();
    let args = vec!["run".into(), suite.display().to_string(), "--target".into(), target.display().to_string()];
    let (out, report) = run_blocking(args).await;
    let c = case(&report, "nonce-and-assertion");
    assert_eq!(c["outcome"], "passed", "{}", stdout(&out));
    // The first request (the one answered use_dpop_nonce) and the second carried different
    // assertions: their fingerprints differ.
    let assertion_of = |exchange: &serde_json::Value| {
        let body = exchange["request"]["body"].as_str().unwrap_or_default().to_string();
        body.split('&').find(|p| p.starts_with("client_assertion=")).map(str::to_owned).unwrap()
    };
    let first = assertion_of(&c["steps"][0]["setup"][0]);
    let second = assertion_of(&c["steps"][0]["exchange"]);
    assert_ne!(first, second, "the request sent again carried a new assertion");
}
