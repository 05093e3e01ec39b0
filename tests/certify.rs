#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `certify`: the reference client passes every client suite, each of its misbehaviours fails
//! exactly its rule's checks (the client defect matrix), a third-party library gets the verdicts
//! recorded in the README, nothing secret reaches any output, and bad clients end cleanly.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use common::{code, repo_path, run_bin, stderr, stdout};

const IS: &str = "scenarios/clients/identity-server.yaml";
const SMART: &str = "scenarios/clients/smart-backend.yaml";
const PSC: &str = "scenarios/clients/psc-ciba.yaml";

/// The example `cargo test` builds beside the tests.
fn reference_client() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let client = dir.join("examples").join("reference_client");
    assert!(client.exists(), "{} is not built (cargo test builds examples)", client.display());
    client
}

fn certify(suite: &str, extra: &[&str], client: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut args = vec!["certify", suite, "--report-json", json.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(client);
    let o = run_bin(&args);
    let report = std::fs::read_to_string(&json).map(|t| serde_json::from_str(&t).unwrap()).unwrap_or_default();
    (o, report)
}

/// Ids of the checks with one of `verdicts`, over every case.
fn judged(report: &serde_json::Value, verdicts: &[&str]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for case in report["suites"][0]["cases"].as_array().into_iter().flatten() {
        for check in case["steps"].as_array().into_iter().flatten().flat_map(|s| s["checks"].as_array().unwrap()) {
            if verdicts.iter().any(|v| check["verdict"] == *v) {
                ids.insert(check["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

/// Ids of the checks that failed, over every case.
fn failed(report: &serde_json::Value) -> BTreeSet<String> {
    judged(report, &["fail"])
}

#[test]
fn the_reference_client_passes_every_client_suite() {
    let client = reference_client();
    let client = client.to_str().unwrap();
    std::thread::scope(|s| {
        let runs: Vec<_> =
            [IS, SMART, PSC].iter().map(|suite| (suite, s.spawn(move || certify(suite, &[], &[client])))).collect();
        for (suite, run) in runs {
            let (o, report) = run.join().unwrap();
            assert_eq!(code(&o), 0, "{suite}: {}{}", stdout(&o), stderr(&o));
            assert!(failed(&report).is_empty());
            let cases = report["suites"][0]["cases"].as_array().unwrap();
            assert!(cases.iter().all(|c| c["outcome"] == "passed"), "{suite}");
            // Every case drew its timeline.
            assert!(cases.iter().all(|c| !c["timeline"]["entries"].as_array().unwrap().is_empty()));
        }
    });
}

#[test]
fn a_client_that_serves_its_jwks_late_is_still_read() {
    // A loaded machine may take seconds to start a client: its JWKS is read again while nothing
    // listens at the URL yet, not judged unreachable on the first try.
    let client = reference_client();
    let (o, report) = certify(SMART, &[], &["sh", "-c", r#"sleep 1.5 && exec "$0""#, client.to_str().unwrap()]);
    let passed = judged(&report, &["pass"]);
    assert!(passed.contains("client.jwks.public-only"), "{}{}", stdout(&o), stderr(&o));
}

/// Which suite catches each misbehaviour, and exactly which checks fail there. Checks beyond the
/// rule's own are there because the misbehaviour breaks them too (said in the comment).
const MATRIX: &[(&str, &str, &[&str])] = &[
    ("no-jti", SMART, &["client.assertion.jti-unique"]),
    ("reuse-jti", SMART, &["client.assertion.jti-unique"]),
    ("exp-one-hour", SMART, &["client.assertion.exp"]),
    ("aud-issuer", SMART, &["client.assertion.aud"]),
    ("kid-unknown", SMART, &["client.assertion.kid"]),
    ("private-jwks", SMART, &["client.jwks.public-only"]),
    ("secret-in-query", IS, &["client.auth.no-credentials-in-url"]),
    ("basic-not-form-encoded", IS, &["client.auth.basic-form-encoded"]),
    // The mock refuses the request, so nothing else can be judged in that case.
    ("two-auth-methods", IS, &["client.auth.one-method", "harness.nothing-checked"]),
    ("token-get", IS, &["client.token.post-form", "harness.nothing-checked"]),
    // A token per call is also more than one token request after a 401.
    ("token-per-call", IS, &["client.token.reused", "client.resource.one-renewal-after-invalid-token"]),
    ("token-per-call", SMART, &["client.token.reused"]),
    ("send-expired-token", IS, &["client.token.not-expired"]),
    ("send-expired-token", SMART, &["client.token.not-expired"]),
    ("bearer-in-query", IS, &["client.resource.bearer-header"]),
    ("retry-loop-on-invalid-token", IS, &["client.resource.one-renewal-after-invalid-token"]),
    ("reuse-refused-token", IS, &["client.resource.issued-token"]),
    // Retrying a 503 at once is also no backoff after a 5xx.
    ("retry-503-at-once", IS, &["client.resilience.retry-after", "client.resilience.backoff"]),
    // Polling too fast draws the mock's own slow_down, which it ignores as well.
    ("ignore-interval", PSC, &["client.ciba.interval", "client.ciba.slow-down"]),
    ("ignore-slow-down", PSC, &["client.ciba.slow-down"]),
    // Every poll twice: the twin is too soon, and redeems the auth_req_id again. Sent with the
    // final poll, it is no reaction to the final answer (whichever arrives first): stops-polling
    // holds.
    (
        "two-polls-at-once",
        PSC,
        &[
            "client.ciba.one-poll-in-flight",
            "client.ciba.interval",
            "client.ciba.slow-down",
            "client.ciba.auth-req-id-once",
        ],
    ),
    ("poll-after-denied", PSC, &["client.ciba.stops-polling"]),
    // PSC refuses the request, so no poll follows.
    ("no-openid-scope", PSC, &["client.ciba.openid-scope", "harness.nothing-checked"]),
    ("no-binding-message", PSC, &["client.ciba.psc-parameters", "harness.nothing-checked"]),
    ("no-client-certificate", PSC, &["client.ciba.certificate", "harness.nothing-checked"]),
    // The mock refuses a request without grant_type (unsupported_grant_type), so no resource
    // call follows.
    ("no-grant-type", IS, &["client.token.grant-type", "harness.nothing-checked"]),
    // IdentityServer takes either secret method; the registration names one.
    ("other-auth-method", IS, &["client.auth.registered-method"]),
    // A SHOULD: a warning. The mock refuses the scope (invalid_scope), so no resource call follows.
    ("unregistered-scope", IS, &["client.token.scope-registered", "harness.nothing-checked"]),
    ("wrong-assertion-type", SMART, &["client.assertion.type"]),
    ("alg-hs256", SMART, &["client.assertion.alg"]),
    ("iss-not-client-id", SMART, &["client.assertion.iss-sub"]),
    // A SHOULD the SMART suite requires: a failure.
    ("iat-in-future", SMART, &["client.assertion.iat-not-future"]),
    ("two-hints", PSC, &["client.ciba.one-hint", "harness.nothing-checked"]),
];

#[test]
fn every_client_check_has_a_misbehaviour_that_breaks_it() {
    for check in oauth_harness::checks::client::CHECKS {
        assert!(
            MATRIX.iter().any(|(_, _, ids)| ids.contains(&check.id)),
            "{} has no misbehaviour of the reference client that breaks it",
            check.id
        );
    }
}

#[test]
fn each_misbehaviour_fails_exactly_its_rules_checks() {
    let client = reference_client();
    let listed = std::process::Command::new(&client).arg("--list-misbehaviours").output().unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(MATRIX.iter().any(|(m, _, _)| m == name), "misbehaviour {name} has no row in the matrix");
    }
    let client = client.to_str().unwrap();
    // Four at a time: the clients mostly wait.
    for chunk in MATRIX.chunks(4) {
        std::thread::scope(|s| {
            let runs: Vec<_> = chunk
                .iter()
                .map(|row| (row, s.spawn(move || certify(row.1, &[], &[client, "--misbehave", row.0]))))
                .collect();
            for ((name, suite, expected), run) in runs {
                let (o, report) = run.join().unwrap();
                // A broken MUST fails the run; a broken SHOULD only warns.
                let fails = !failed(&report).is_empty();
                assert_eq!(code(&o), if fails { 1 } else { 0 }, "{name} on {suite}: {}", stdout(&o));
                let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
                assert_eq!(judged(&report, &["fail", "warn"]), expected, "{name} on {suite}");
                assert!(stdout(&o).contains(expected.iter().next().unwrap()), "the terminal names the rule");
            }
        });
    }
}

#[test]
fn nothing_secret_or_issued_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let client = reference_client();
    let o = common::bin()
        .env("REFERENCE_CLIENT_TOKEN_LOG", &tokens)
        .args(["certify", IS, "--verbose", "--report-junit", &out("r.xml"), "--report-html", &out("r.html")])
        .args(["--report-md", &out("r.md"), "--report-json", &out("r.json"), "--evidence", &out("evidence")])
        .args(["--evidence-key", "fixtures/keys/backend-rs384/private.pem"])
        .args(["--client-version", "9.9.9", "--"])
        .arg(&client)
        .args(["--misbehave", "secret-in-query"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let issued: Vec<String> = std::fs::read_to_string(&tokens).unwrap().lines().map(str::to_string).collect();
    assert!(issued.len() >= 3, "the client got tokens");
    let mut texts = vec![stdout(&o), stderr(&o)];
    for f in ["r.xml", "r.html", "r.md", "r.json"] {
        texts.push(std::fs::read_to_string(dir.path().join(f)).unwrap());
    }
    for entry in std::fs::read_dir(dir.path().join("evidence")).unwrap() {
        texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    use base64::Engine;
    let secret = "implant-vendor-secret";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("implant-vendor:{secret}"));
    for text in &texts {
        assert!(!text.contains(secret) && !text.contains(&basic), "the secret leaked");
        for token in &issued {
            assert!(!text.contains(token.as_str()), "an issued token leaked");
        }
    }
    let meta = std::fs::read_to_string(dir.path().join("evidence/meta.json")).unwrap();
    assert!(meta.contains("9.9.9") && meta.contains("reference_client"), "{meta}");
    // A vendor signs what it submits: the bundle verifies with its key's JWK, and no other.
    let ev = out("evidence");
    let o = common::bin()
        .args(["evidence", "verify", &ev, "--jwk", "fixtures/keys/backend-rs384/jwk.json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("signature:  valid"), "{}", stdout(&o));
    let o = common::bin()
        .args(["evidence", "verify", &ev, "--jwk", "fixtures/keys/backend-es384/jwk.json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stdout(&o));
}

#[test]
fn clients_that_cannot_run_or_never_call_end_with_a_clear_verdict() {
    // A command that does not exist: usage, exit 2.
    let (o, _) = certify(IS, &[], &["/nonexistent/oauth-client"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot start the client command `/nonexistent/oauth-client`"), "{}", stderr(&o));
    // One that exits at once, and one that hangs without calling: the case fails, saying so.
    let (o, report) = certify(IS, &[], &["false"]);
    assert_eq!(code(&o), 1);
    assert!(failed(&report).contains("harness.client-called"));
    assert!(stdout(&o).contains("exited with status 1 without a request"), "{}", stdout(&o));
    let marker = "86399.25";
    let (o, _) = certify(IS, &[], &["sleep", marker]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("no request in"), "{}", stdout(&o));
    // The hanging client was ended.
    let left = std::process::Command::new("pgrep").args(["-f", &format!("sleep {marker}")]).output();
    if let Ok(left) = left {
        assert!(left.stdout.is_empty(), "a client process outlived certify");
    }
    // No client at all.
    let o = run_bin(&["certify", IS]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no client to certify"));
}

#[test]
fn a_bad_client_suite_is_located_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("bad.yaml");
    std::fs::write(
        &suite,
        "client_suite: bad\nsystem: identity-server\nclient: confidential\ncases:\n  - id: a\n    title: t\n    mock: { inject: [{ at: resource, nth: 1, answer: slow_down }] }\n    observe: { for: 1s }\n    expect: { checks: [client.token.reusd] }\n",
    )
    .unwrap();
    let o = run_bin(&["certify", suite.to_str().unwrap(), "--", "true"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("bad.yaml:7:"), "{err}");
    assert!(err.contains("`slow_down` is not an answer of the resource endpoint"), "{err}");
    let o = run_bin(&["validate", suite.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    // Once the YAML is right, the unknown check is named with a suggestion.
    std::fs::write(
        &suite,
        std::fs::read_to_string(&suite).unwrap().replace("answer: slow_down", "answer: invalid_token"),
    )
    .unwrap();
    let o = run_bin(&["validate", suite.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean `client.token.reused`"), "{}", stderr(&o));
    // The shipped client suites validate, and `run` leaves them to certify.
    let o = run_bin(&["validate", "scenarios/clients"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn listen_mode_prints_the_configuration_and_judges_a_client_started_elsewhere() {
    let mut harness = common::Reaped::new(
        common::bin()
            .args(["certify", SMART, "--listen", "--for", "4s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read the printed configuration, then start the client with it.
    use std::io::BufRead;
    let mut err = std::io::BufReader::new(harness.stderr.take().unwrap());
    let mut env = Vec::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some((k, v)) = line.trim().split_once('=').filter(|(k, _)| k.starts_with("OAUTH_HARNESS_")) {
            env.push((k.to_string(), v.to_string()));
        }
        if line.contains("OAUTH_HARNESS_JWKS_LISTEN") {
            break;
        }
        line.clear();
    }
    assert!(env.iter().any(|(k, _)| k == "OAUTH_HARNESS_TOKEN_ENDPOINT"), "{env:?}");
    let client = common::Reaped::new(std::process::Command::new(reference_client()).envs(env).spawn().unwrap());
    let o = harness.output();
    drop(client);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Authlib (PyPI), configured as its documentation shows, through the suites it supports (it
/// has no CIBA). What it gets is recorded in the README; a change in either fails here.
#[test]
fn authlib_gets_the_verdicts_the_readme_records() {
    let python = repo_path("fixtures/clients/authlib/.venv/bin/python");
    if !common::tool_available(
        "Authlib (fixtures/clients/authlib)",
        python.exists(),
        "bash .ci/install-third-party-clients.sh",
    ) {
        return;
    }
    let script = repo_path("fixtures/clients/authlib/client.py");
    let (python, script) = (python.to_str().unwrap().to_string(), script.to_str().unwrap().to_string());
    std::thread::scope(|s| {
        let is = s.spawn(|| certify(IS, &[], &[&python, &script]));
        let smart = s.spawn(|| certify(SMART, &[], &[&python, &script]));
        let (o, report) = is.join().unwrap();
        // Authlib sends Basic credentials without RFC 6749 §2.3.1's form-encoding, and keeps
        // sending a token the resource refused with invalid_token until it expires.
        let expected = ["client.auth.basic-form-encoded", "client.resource.issued-token"];
        assert_eq!(failed(&report), expected.iter().map(|s| s.to_string()).collect(), "{}", stdout(&o));
        let (o, report) = smart.join().unwrap();
        // Authlib's PrivateKeyJWT signs assertions valid for an hour; SMART allows five minutes.
        assert_eq!(failed(&report), BTreeSet::from(["client.assertion.exp".to_string()]), "{}", stdout(&o));
    });
}

#[test]
fn ctrl_c_ends_every_client_and_exits_3() {
    let marker = "86397.75";
    let mut harness = common::Reaped::new(common::bin().args(["certify", IS, "--", "sleep", marker]).spawn().unwrap());
    let running = || {
        let o = std::process::Command::new("pgrep").args(["-f", &format!("^sleep {marker}")]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let cases = std::fs::read_to_string(repo_path(IS)).unwrap().matches("\n  - id: ").count();
    let started = std::time::Instant::now();
    while running() < cases && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let clients = running();
    // SIGINT to the harness alone, as a terminal's Ctrl-C (its clients lead groups of their own);
    // sent before any assertion, so a failed one leaves nothing running.
    let status = std::process::Command::new("kill").args(["-INT", &harness.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(harness.wait().unwrap().code(), Some(3));
    assert_eq!(clients, cases, "one client per case");
    assert_eq!(running(), 0, "a client outlived the interrupted run");
}
