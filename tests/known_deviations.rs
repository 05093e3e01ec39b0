//! `run --known-deviations FILE`: a reviewed list a CI gate accepts for now. Listed failures are
//! reported as known and do not fail the run; a listed deviation that no longer fails is stale
//! (exit 1 with --strict); a list naming a check that does not exist is refused before any traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{code, normalise, run_bin, stderr, stdout};

const SUITE: &str = "scenarios/identity-server/token-endpoint.yaml";

fn list(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("known.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const PRAGMA: &str = "title: a server that dropped Pragma
deviations:
  - check: rfc6749.5.1.pragma
    cases: [token-client-secret-*]
    reason: OAuth 2.1 dropped Pragma; Cache-Control no-store is sent
";

#[test]
fn a_listed_failure_is_known_and_does_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let known = list(dir.path(), PRAGMA);
    let args = ["run", SUITE, "--filter", "token-client-secret-*", "--mock-defect", "no-cache-headers", "--no-color"];
    // Without the list, the defect fails both cases.
    let o = run_bin(&args);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    // The list names Pragma only: the defect also breaks Cache-Control, which still fails.
    let o = run_bin(&[&args[..], &["--known-deviations", &known]].concat());
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("≈ rfc6749.5.1.pragma known deviation: OAuth 2.1 dropped Pragma"), "{text}");
    assert!(text.contains("✗ rfc6749.5.1.cache-control"), "{text}");
    // Both listed: every finding is known, and the run passes.
    let both = list(
        dir.path(),
        &format!(
            "{PRAGMA}  - check: rfc6749.5.1.cache-control\n    cases: [token-client-secret-*]\n    reason: a caching proxy adds it\n"
        ),
    );
    let o = run_bin(&[&args[..], &["--known-deviations", &both]].concat());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("KNOWN token-client-secret-basic") && text.contains("2 known in"), "{text}");
}

#[test]
fn a_listed_deviation_that_no_longer_fails_is_stale_and_fails_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let known = list(dir.path(), PRAGMA);
    let args = ["run", SUITE, "--filter", "token-client-secret-*", "--no-color", "--known-deviations", &known];
    let o = run_bin(&args);
    assert_eq!(code(&o), 0, "stale entries alone do not fail a run: {}", stdout(&o));
    insta::assert_snapshot!("known_stale_terminal", normalise(&stdout(&o)));
    let o = run_bin(&[&args[..], &["--strict"]].concat());
    assert_eq!(code(&o), 1, "--strict fails on stale entries: {}", stdout(&o));

    let json = dir.path().join("r.json");
    let o = run_bin(&[&args[..], &["--report-json", json.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 0);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let stale = report["known_deviations"]["stale"].as_array().unwrap();
    let cases: Vec<&str> = stale.iter().map(|s| s["case"].as_str().unwrap()).collect();
    assert_eq!(
        cases,
        ["identity-server-token/token-client-secret-basic", "identity-server-token/token-client-secret-post"]
    );
}

#[test]
fn a_list_naming_an_unknown_check_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let known = list(dir.path(), &PRAGMA.replace("rfc6749.5.1.pragma", "rfc6749.5.1.pragmaa"));
    let o = run_bin(&["run", SUITE, "--no-color", "--known-deviations", &known]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("unknown check `rfc6749.5.1.pragmaa`") && err.contains("known.yaml:3:12"), "{err}");
    assert!(err.contains("did you mean `rfc6749.5.1.pragma`?"), "{err}");
}

#[test]
fn an_entry_matching_no_case_is_flagged_and_one_that_matches_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A typo in the case glob: the entry would silently apply to nothing, forever.
    let typo = list(dir.path(), &PRAGMA.replace("token-client-secret-*", "token-client-secert-*"));
    let args = ["run", SUITE, "--filter", "token-client-secret-basic", "--no-color", "--known-deviations"];
    let o = run_bin(&[&args[..], &[&typo]].concat());
    let err = stderr(&o);
    assert!(
        err.contains("known.yaml:3:") && err.contains("`rfc6749.5.1.pragma` lists cases (token-client-secert-*)"),
        "{err}"
    );
    assert!(err.contains("match no case of the scenarios given"), "{err}");
    let known = list(dir.path(), PRAGMA);
    let o = run_bin(&[&args[..], &[&known]].concat());
    assert!(!stderr(&o).contains("match no case"), "{}", stderr(&o));
}
