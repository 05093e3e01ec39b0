//! Hard edges: every input bounded and every absurd value a usage error, Ctrl-C and a closed pipe
//! handled, discovery failures said precisely, evidence bundles that always verify, keys never
//! overwritten, and `validate` agreeing with `run`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, code, repo_path, run_bin, stderr, stdout};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn absurd_values_on_the_command_line_are_usage_errors() {
    for args in [
        vec!["run", "scenarios/identity-server", "--timeout", "0s"],
        vec!["run", "scenarios/identity-server", "--jobs", "0"],
        vec!["load", "scenarios/load/token-secret.yaml", "--users", "0"],
        vec!["load", "scenarios/load/token-secret.yaml", "--duration", "0s"],
        vec!["load", "scenarios/load/token-secret.yaml", "--rate", "0/s"],
    ] {
        let o = run_bin(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    // Durations past any sensible bound are refused with the range, not obeyed for hours (or a
    // zero lifetime silently raised to a second).
    for args in [
        vec!["run", "scenarios/identity-server", "--timeout", "1000h"],
        vec!["load", "scenarios/load/token-secret.yaml", "--mock-latency", "10h"],
        vec!["mock", "identity-server", "--token-ttl", "0s"],
        vec!["mock", "psc", "--interval", "0s"],
        vec!["mock", "psc", "--expires-in", "100h"],
        vec!["mock", "psc", "--token-lifetime", "400d"],
    ] {
        let o = run_bin(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("must be between"), "{args:?}: {}", stderr(&o));
    }
    // A defect of a mock the command never calls would make a "defective" run that is not.
    let o = run_bin(&["load", "scenarios/load/token-secret.yaml", "--mock-defect", "no-slow-down"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("`no-slow-down` is a defect of the PSC mock"), "{}", stderr(&o));
}

#[test]
fn file_interpolation_refuses_devices_fifos_and_large_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::write(dir.path().join("big"), vec![b'x'; 2 * 1024 * 1024]).unwrap();
    for (source, needle) in [
        ("/dev/zero".to_string(), "not a regular file (a device)"),
        (fifo.display().to_string(), "not a regular file (a FIFO)"),
        ("big".to_string(), "more than the 1048576 bytes"),
    ] {
        let target = write(
            dir.path(),
            "t.yaml",
            &format!(
                "issuer: http://127.0.0.1:1\nclients:\n  confidential: {{ client_id: x, client_secret: \"${{file:{source}}}\" }}\n"
            ),
        );
        let started = Instant::now();
        let o = run_bin(&["validate", "scenarios/identity-server", "--target", &target]);
        assert_eq!(code(&o), 2, "{source}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{source}: {}", stderr(&o));
        assert!(started.elapsed() < Duration::from_secs(10), "{source} was read");
    }
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    for args in [vec!["checks"], vec!["mock", "identity-server", "--list-defects"], vec!["completions", "bash"]] {
        let mut child = bin().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Read one byte, then close the pipe, as `| head -c 1` does.
        let mut out = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        out.read_exact(&mut byte).unwrap();
        drop(out);
        let status = child.wait().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(status.code().is_some(), "{args:?} was killed: {status:?}");
    }
}

#[test]
fn ctrl_c_during_run_writes_the_partial_reports_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let md = dir.path().join("r.md");
    // The CIBA and expiry suites wait for seconds: Ctrl-C comes while cases are in flight.
    let mut child = common::Reaped::new(
        bin()
            .args(["run", "scenarios/psc-ciba", "scenarios/expiry", "scenarios/identity-server", "-q"])
            .args(["--report-json", json.to_str().unwrap(), "--report-junit", junit.to_str().unwrap()])
            .args(["--report-md", md.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "run did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3), "an interrupted run is incomplete");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    let cases: Vec<&serde_json::Value> =
        report["suites"].as_array().unwrap().iter().flat_map(|s| s["cases"].as_array().unwrap()).collect();
    assert!(
        cases.iter().any(|c| c["reason"].as_str().is_some_and(|r| r.contains("interrupted"))),
        "not-run cases are marked"
    );
    assert!(cases.iter().any(|c| c["outcome"] == "passed"), "what finished is reported");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuites"));
    // The headline a CI job page shows says so: what finished passing is not a passed run.
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.starts_with("## oauth-harness: ⏹️ INTERRUPTED"), "{md}");
}

/// A server whose discovery document is `answer`.
async fn discovery_answering(answer: ResponseTemplate) -> (MockServer, tempfile::TempDir, String) {
    let server = MockServer::builder().disable_request_recording().start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let target = write(
        dir.path(),
        "t.yaml",
        &format!("issuer: {}\nclients:\n  confidential: {{ client_id: x, client_secret: y }}\n", server.uri()),
    );
    (server, dir, target)
}

#[tokio::test]
async fn discovery_failures_say_what_came_back() {
    let cases = [
        (
            ResponseTemplate::new(200).set_body_raw("<html>login</html>", "text/html"),
            "with an HTML page, not a JSON document",
        ),
        (ResponseTemplate::new(200), "with an empty body"),
        (ResponseTemplate::new(200).set_body_raw("{\"issuer\": ", "application/json"), "with invalid JSON"),
        (
            ResponseTemplate::new(302).insert_header("Location", "https://login.example/sso"),
            "redirecting to https://login.example/sso",
        ),
        (
            ResponseTemplate::new(200).set_body_raw(vec![b' '; 2 * 1024 * 1024], "application/json"),
            "with a body larger than",
        ),
        (ResponseTemplate::new(503).set_body_raw("down", "text/plain"), "it answered 503 (text/plain)"),
    ];
    for (answer, needle) in cases {
        let (_server, _dir, target) = discovery_answering(answer).await;
        let o =
            tokio::task::spawn_blocking(move || run_bin(&["run", "scenarios/identity-server", "--target", &target]))
                .await
                .unwrap();
        assert_eq!(code(&o), 3, "{needle}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
    }
}

#[tokio::test]
async fn an_untrusted_certificate_points_to_the_tls_ca_setting() {
    let mock = oauth_harness::mock::psc::PscMock::start(Default::default(), None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = write(dir.path(), "t.yaml", &format!("issuer: {}\nclients: {{}}\n", mock.issuer()));
    let o =
        tokio::task::spawn_blocking(move || run_bin(&["run", "tests/inputs/discovery-only.yaml", "--target", &target]))
            .await
            .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("tls: { ca: ca.pem }"), "{}", stderr(&o));
    // A URL is never broken across lines.
    let url_line = stderr(&o).lines().find(|l| l.contains("https://127.0.0.1:")).unwrap_or_default().to_string();
    assert!(url_line.contains("/realms/esante-wallet"), "{}", stderr(&o));
}

#[test]
fn evidence_goes_to_an_empty_folder_verifies_and_keeps_the_target_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("evidence");
    std::fs::create_dir(&evidence).unwrap();
    std::fs::write(evidence.join("old.txt"), "from another run").unwrap();
    // The standalone mock's target, with a literal secret, copied into the bundle.
    let target = repo_path("fixtures/targets/local-mock.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mock = common::Reaped::new(
        bin().args(["mock", "identity-server", "--port", &port.to_string()]).stdout(Stdio::null()).spawn().unwrap(),
    );
    let text = std::fs::read_to_string(&target).unwrap().replace("8080", &port.to_string());
    let target = write(&repo_path("fixtures/targets"), &format!(".edges-{port}.yaml"), &text);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = [
        "run",
        "scenarios/identity-server/token-endpoint.yaml",
        "--target",
        &target,
        "-q",
        "--evidence",
        evidence.to_str().unwrap(),
    ];
    let forced_args = [&args[..], &["--evidence-force"]].concat();
    let refused = run_bin(&args);
    let not_a_bundle = run_bin(&forced_args);
    std::fs::remove_file(evidence.join("old.txt")).unwrap();
    let first = run_bin(&args);
    let forced = run_bin(&forced_args);
    drop(mock);
    assert_eq!(code(&refused), 2, "a non-empty evidence folder is refused: {}", stderr(&refused));
    assert!(stderr(&refused).contains("not empty"), "{}", stderr(&refused));
    assert_eq!(
        code(&not_a_bundle),
        2,
        "--evidence-force never empties what is not a bundle: {}",
        stderr(&not_a_bundle)
    );
    assert!(stderr(&not_a_bundle).contains("old.txt"), "{}", stderr(&not_a_bundle));
    assert_eq!(code(&first), 0, "{}{}", stdout(&first), stderr(&first));
    assert_eq!(code(&forced), 0, "an earlier bundle is replaced: {}{}", stdout(&forced), stderr(&forced));
    let verify = run_bin(&["evidence", "verify", evidence.to_str().unwrap()]);
    assert_eq!(code(&verify), 0, "a fresh bundle is intact: {}", stdout(&verify));
    // The copied target: secrets redacted, still YAML, still a target that loads.
    let copied = walk(&evidence.join("target")).into_iter().next().expect("the target is in the bundle");
    let text = std::fs::read_to_string(&copied).unwrap();
    assert!(!text.contains("implant-vendor-secret") && text.contains("redacted"), "{text}");
    // Read where the original was, so its relative key paths resolve.
    let reloaded = oauth_harness::input::parse_target(&oauth_harness::support::diagnostics::SourceFile::new(
        std::path::Path::new(&target),
        text,
    ));
    let _ = std::fs::remove_file(&target);
    assert!(reloaded.is_ok(), "the redacted target still loads: {:?}", reloaded.err());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn keys_are_never_overwritten_and_jwks_derives_the_recorded_kid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k");
    let generate = |extra: &[&str]| {
        run_bin(
            &[
                &["keys", "generate", "--alg", "ES384", "--kid", "pem-sha256-16", "--out", out.to_str().unwrap()][..],
                extra,
            ]
            .concat(),
        )
    };
    let first = generate(&[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let kid = std::fs::read_to_string(out.join("jwk.json")).unwrap();
    let again = generate(&[]);
    assert_eq!(code(&again), 2, "an existing key is not replaced: {}", stderr(&again));
    assert!(stderr(&again).contains("already holds a key"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(out.join("jwk.json")).unwrap(), kid, "the key is untouched");
    assert_eq!(code(&generate(&["--force"])), 0);
    // `keys jwks` without --kid derives the kid the way `generate` recorded.
    let jwk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("jwk.json")).unwrap()).unwrap();
    let o = run_bin(&["keys", "jwks", out.join("private.pem").to_str().unwrap()]);
    let jwks: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], jwk["kid"], "{}", stdout(&o));
    assert_eq!(jwk["kid"].as_str().unwrap().len(), 16, "the pem-sha256-16 style");
}

#[test]
fn validate_checks_suites_against_the_embedded_mocks_clients_as_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write(
        dir.path(),
        "s.yaml",
        "suite: needs-a-client\nclient: no-such-client\ncases:\n  - id: a\n    token: {}\n    expect: { checks: [token-response] }\n",
    );
    let validate = run_bin(&["validate", &suite]);
    let run = run_bin(&["run", &suite]);
    for o in [&validate, &run] {
        assert_eq!(code(o), 2, "{}", stderr(o));
        assert!(
            stderr(o).contains("unknown client `no-such-client`: suite `needs-a-client` needs it"),
            "{}",
            stderr(o)
        );
    }
    // A profile with a bad number is still recognised as a profile, and its error is its own.
    let profile = write(dir.path(), "p.yaml", "load:\n  path: token\n  client: confidential\n  users: 1e999\n");
    let o = run_bin(&["validate", &profile]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("users") && !stderr(&o).contains("missing field `suite`"), "{}", stderr(&o));
}

#[test]
fn validate_warns_of_a_target_client_whose_files_do_not_load_even_when_no_case_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = write(
        dir.path(),
        "t.yaml",
        "issuer: http://127.0.0.1:1\nclients:\n  confidential:\n    client_id: implant-vendor\n    client_secret: s3cret-value\n  mtls:\n    client_id: implant-mtls\n    auth: tls_client_auth\n    certificate: missing.pem\n    certificate_key: missing.key\n",
    );
    let suite = write(
        dir.path(),
        "s.yaml",
        "suite: tiny\nclient: confidential\ncases:\n  - id: one\n    token: {}\n    expect: { checks: [token-response] }\n",
    );
    let o = run_bin(&["validate", "--target", &target, &suite]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("ok: 1 suite, 1 case, 0 load profiles"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("t.yaml:9:18: client `mtls` cannot be used") && err.contains("missing.pem"), "{err}");
    // A client whose files load is not mentioned.
    assert!(!err.contains("`confidential`"), "{err}");
}
