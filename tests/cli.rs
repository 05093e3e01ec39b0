//! The CLI contract: commands, exit codes, report files, help text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{code, normalise, run_bin, stderr, stdout};

#[test]
fn run_identity_server_suite_passes_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("reports/junit.xml");
    let json = dir.path().join("report.json");
    let o = run_bin(&[
        "run",
        "scenarios/identity-server",
        "--report-junit",
        junit.to_str().unwrap(),
        "--report-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.matches("<testcase ").count() >= 18, "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 5, "one testsuite per scenario suite");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["summary"]["failed"], 0);
    assert!(report["summary"]["passed"].as_u64().unwrap() >= 18);
}

#[test]
fn a_mock_defect_fails_the_run_with_exit_1_and_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let o = run_bin(&[
        "run",
        "scenarios",
        "--mock-defect",
        "invalid-client-400",
        "--report-junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("rfc6749.5.2.invalid-client-401 [MUST · RFC 6749 §5.2]"), "{}", stdout(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<failure message="rfc6749.5.2.invalid-client-401 (RFC 6749 §5.2)"#), "{xml}");
}

#[test]
fn unknown_defect_is_a_usage_error_with_a_suggestion() {
    let o = run_bin(&["run", "scenarios", "--mock-defect", "no-cache-header"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean `no-cache-headers`?"), "{}", stderr(&o));
}

#[test]
fn a_filter_that_selects_nothing_is_exit_2() {
    let o = run_bin(&["run", "scenarios", "--filter", "no-such-case-*"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("selects no case"), "{}", stderr(&o));
}

#[test]
fn filter_matches_case_ids() {
    let o = run_bin(&["run", "scenarios", "--filter", "reject-*"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(out.contains("reject-get") && !out.contains("token-client-secret-basic"), "{out}");
}

#[test]
fn strict_turns_should_findings_into_failures() {
    // tests/inputs/should-only.yaml checks the SHOULD rule "no refresh_token" without requiring it.
    let args = ["run", "tests/inputs/should-only.yaml", "--mock-defect", "refresh-token-issued"];
    let o = run_bin(&args);
    assert_eq!(code(&o), 0, "a SHOULD finding alone warns: {}", stdout(&o));
    assert!(
        stdout(&o).contains("WARN") && stdout(&o).contains("rfc6749.4.4.3.no-refresh-token [SHOULD"),
        "{}",
        stdout(&o)
    );
    let o = run_bin(&[&args[..], &["--strict"]].concat());
    assert_eq!(code(&o), 1, "--strict fails on it: {}", stdout(&o));
    assert!(stdout(&o).contains("SHOULD→MUST (--strict)"), "{}", stdout(&o));
}

#[test]
fn mock_lists_its_defects_one_a_line_name_first() {
    let o = run_bin(&["mock", "identity-server", "--list-defects"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 10);
    for line in lines {
        let name = line.split_whitespace().next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{line}");
        // A defect names the rule it breaks, or says it breaks none (a slower release).
        assert!(["RFC ", "SMART ", "OIDC "].iter().any(|r| line.contains(r)), "each defect names its rule: {line}");
    }
}

#[test]
fn checks_prints_the_catalogue() {
    let o = run_bin(&["checks"]);
    assert_eq!(code(&o), 0);
    let line = stdout(&o).lines().find(|l| l.trim_start().starts_with("rfc6749.5.1.cache-control ")).map(str::to_owned);
    let line = line.expect("the catalogue lists rfc6749.5.1.cache-control");
    assert!(line.contains("MUST") && line.contains("RFC 6749 §5.1"), "{line}");
}

#[test]
fn terminal_report_snapshot() {
    let o = run_bin(&["run", "scenarios/identity-server", "--mock-defect", "missing-expires-in"]);
    assert_eq!(code(&o), 1);
    insta::assert_snapshot!("terminal_report", normalise(&stdout(&o)));
}

#[test]
fn junit_and_json_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let json = dir.path().join("r.json");
    let o = run_bin(&[
        "run",
        "scenarios/identity-server/token-errors.yaml",
        "--mock-defect",
        "invalid-client-400",
        "--filter",
        "reject-wrong-secret-*",
        "--report-junit",
        junit.to_str().unwrap(),
        "--report-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    insta::assert_snapshot!("junit_report", normalise(&std::fs::read_to_string(&junit).unwrap()));
    insta::assert_snapshot!("json_report", normalise(&std::fs::read_to_string(&json).unwrap()));
}

#[test]
fn help_snapshots() {
    insta::assert_snapshot!("help", stdout(&run_bin(&["--help"])));
    insta::assert_snapshot!("help_run", stdout(&run_bin(&["run", "--help"])));
    insta::assert_snapshot!("help_load", stdout(&run_bin(&["load", "--help"])));
    insta::assert_snapshot!("help_mock", stdout(&run_bin(&["mock", "identity-server", "--help"])));
}

#[test]
fn standalone_mock_serves_the_shipped_suites_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = common::Reaped::new(
        common::bin()
            .args(["mock", "identity-server", "--port", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner: Vec<String> =
        lines.by_ref().take(12).map_while(Result::ok).take_while(|l| !l.starts_with("Ctrl-C")).collect();
    assert!(banner.iter().any(|l| l.contains(&format!("http://127.0.0.1:{port}"))), "{banner:?}");
    assert!(banner.iter().all(|l| !l.contains("implant-vendor-secret")), "the banner shows no secret: {banner:?}");

    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(common::repo_path("fixtures/targets/local-mock.yaml")).unwrap();
    let target = dir.path().join("t.yaml");
    let keys = format!("{}/", common::repo_path("fixtures/keys").display());
    std::fs::write(&target, fixture.replace("8080", &port.to_string()).replace("../keys/", &keys)).unwrap();
    let suites =
        ["scenarios/identity-server", "scenarios/smart-backend", "scenarios/introspection", "scenarios/expiry"];
    let o = run_bin(&[&["run"][..], &suites[..], &["--target", target.to_str().unwrap()]].concat());
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(status.success(), "the mock exits 0 on Ctrl-C: {status:?}");
}
