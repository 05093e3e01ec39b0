//! Secrets and tokens never appear in terminal output or reports: a run with a distinctive client
//! secret, and every spelling of it, is searched for in everything the harness wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use base64::Engine;
use common::{bin, code, stderr, stdout};
use oauth_harness::mock::identity_server::Config;

const SECRET: &str = "Zq7:pX%9+wL/distinctive-secret-4242";
const QUERY_KEY: &str = "gateway-key-distinctive-9191";

#[tokio::test]
async fn no_secret_or_token_in_any_output() {
    let clients = oauth_harness::mock::identity_server::builtin().with_secret("confidential", SECRET);
    let mock = common::start_mock(Config { clients, ..Config::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let target = common::write_target(dir.path(), &mock, Some("OAUTH_HARNESS_TEST_SECRET"));
    // An endpoint configured with a key in its query (as some API gateways want): every request
    // line shows its URL.
    let text = std::fs::read_to_string(&target).unwrap().replacen(
        "resource:",
        &format!("introspection_endpoint: {}/connect/introspect?api_key={QUERY_KEY}\nresource:", mock.issuer()),
        1,
    );
    std::fs::write(&target, text).unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let md = dir.path().join("summary.md");
    let evidence = dir.path().join("evidence");
    let args: Vec<String> = [
        "run",
        "-v",
        "scenarios/identity-server",
        "scenarios/smart-backend",
        "scenarios/introspection",
        "scenarios/expiry",
        "--target",
        target.to_str().unwrap(),
        "--report-junit",
        junit.to_str().unwrap(),
        "--report-json",
        json.to_str().unwrap(),
        "--report-html",
        html.to_str().unwrap(),
        "--report-md",
        md.to_str().unwrap(),
        "--evidence",
        evidence.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = tokio::task::spawn_blocking(move || {
        bin().args(&args).env("OAUTH_HARNESS_TEST_SECRET", SECRET).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    let mut outputs = vec![
        ("stdout".to_string(), stdout(&o)),
        ("stderr".to_string(), stderr(&o)),
        ("junit".to_string(), std::fs::read_to_string(&junit).unwrap()),
        ("json".to_string(), std::fs::read_to_string(&json).unwrap()),
        ("html".to_string(), std::fs::read_to_string(&html).unwrap()),
        ("markdown".to_string(), std::fs::read_to_string(&md).unwrap()),
    ];
    // Every file of the evidence bundle, the copied target file (which names the secret's
    // variable, not its value) included.
    let mut stack = vec![evidence.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                outputs.push((format!("evidence {}", p.display()), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    assert!(outputs.len() > 10, "the evidence bundle was written");
    let urlencoded: String = form_urlencoded_encode(SECRET);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("implant-vendor:{urlencoded}"));
    for (name, text) in &outputs {
        for needle in [SECRET, urlencoded.as_str(), basic.as_str(), "distinctive-secret", QUERY_KEY] {
            assert!(!text.contains(needle), "{name} contains a spelling of the secret ({needle})");
        }
        // Every token the mock issues is a JWS whose header starts `{"` → base64url `eyJ`.
        assert!(!text.contains("eyJ"), "{name} contains a token: {}", &text[text.find("eyJ").unwrap()..][..40]);
    }
    // The report still shows that a credential was sent, by fingerprint.
    assert!(outputs[3].1.contains("[redacted sha256:"));
    assert!(outputs[4].1.contains("[redacted sha256:"), "the HTML shows fingerprints");
}

fn form_urlencoded_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The CIBA flow carries other credentials: auth_req_id, id_token, refresh_token.
#[test]
fn no_ciba_credential_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("r.json"), dir.path().join("r.html"));
    let o = common::run_bin(&[
        "run",
        "scenarios/psc-ciba",
        "--filter",
        "happy-path-*",
        "--verbose",
        "--report-json",
        json.to_str().unwrap(),
        "--report-html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let texts =
        [stdout(&o), stderr(&o), std::fs::read_to_string(&json).unwrap(), std::fs::read_to_string(&html).unwrap()];
    for text in &texts {
        assert!(!text.contains("eyJ"), "a token leaked: {}", &text[text.find("eyJ").unwrap()..][..40]);
        // auth_req_ids are 32 base64url characters; only fingerprints may stand where they were.
        assert!(!text.contains("auth_req_id=") || text.contains("auth_req_id=%5Bredacted"), "an auth_req_id leaked");
        assert!(!text.contains("cmVmcmVzaC"), "a refresh token leaked");
        let hook_with_id = regex_lite::Regex::new(r"/test/ciba/[A-Za-z0-9_-]{20,}/").unwrap();
        assert!(!hook_with_id.is_match(text), "the approval hook URL shows the auth_req_id");
    }
    assert!(texts[2].contains("/test/ciba/[redacted sha256:"), "the hook call is in the report, fingerprinted");
    assert!(texts[0].contains("auth_req_id=%5Bredacted+sha256%3A"), "the verbose exchange shows the fingerprint");
}
