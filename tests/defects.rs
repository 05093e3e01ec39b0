//! The harness's reason to exist: the shipped suites pass on the conformant mock, and every mock
//! defect fails exactly the checks of the rule it breaks — no more, no fewer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use common::defect_tables::{ANY_FAILURE, EXPECTED, EXPECTED_PSC};

use std::collections::BTreeSet;

use futures_util::StreamExt;
use std::path::PathBuf;

use oauth_harness::embedded::Embedded;
use oauth_harness::input::{Input, read_inputs};
use oauth_harness::mock::DefectSet;
use oauth_harness::mock::identity_server::Defect;
use oauth_harness::mock::psc::Defect as PscDefect;
use oauth_harness::model::Suite;
use oauth_harness::results::{CaseOutcome, RunReport, VerdictKind};
use oauth_harness::run::{RunOptions, Runner};
use oauth_harness::support::secret::Redactor;

fn shipped_suites() -> Vec<Suite> {
    let inputs = read_inputs(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")])
        .unwrap_or_else(|e| panic!("shipped scenarios read: {e:?}"));
    inputs
        .into_iter()
        .filter_map(|i| match i {
            Input::Suite(s) => Some(*s),
            Input::LoadProfile(_) | Input::ClientSuite(_) => None,
        })
        .collect()
}

/// Every shipped suite against the embedded mocks (each suite against its system's mock). A
/// defect of one mock cannot change what the other answers, so a run for one defect takes only
/// the suites of its own mock's systems.
async fn run_with(defects: &[Defect], psc_defects: &[PscDefect]) -> RunReport {
    let embedded =
        Embedded::start_with(DefectSet::new(defects.iter().copied()), DefectSet::new(psc_defects.iter().copied()))
            .await
            .expect("mocks start");
    let suites = shipped_suites().into_iter().filter(|s| {
        let psc = s.system == oauth_harness::mock::psc::NAME;
        match (defects.is_empty(), psc_defects.is_empty()) {
            (false, true) => !psc,
            (true, false) => psc,
            _ => true,
        }
    });
    let mut parts = Vec::new();
    for (target, suites) in embedded.group(suites.collect()) {
        let runner = Runner::prepare(target, embedded.jwks.clone(), Redactor::new(), RunOptions::default())
            .await
            .expect("mock reachable");
        parts.push(runner.run(&suites).await.expect("cases selected"));
    }
    RunReport::merge(parts).expect("some suites ran")
}

/// The checks the run found broken (failed, or warned: a SHOULD rule broken), each with where
/// and how: the case, what was expected and what was seen.
/// What a check says when the token had lapsed by the time the answer came (checks/introspection.rs).
const TOO_LATE: &str = "too near its expiry to judge";

fn broken_checks(report: &RunReport) -> Vec<(String, String)> {
    let cases = report.suites.iter().flat_map(|s| &s.cases);
    let checks = cases.flat_map(|case| case.steps.iter().flat_map(move |s| s.checks.iter().map(move |c| (case, c))));
    checks
        .filter(|(_, c)| matches!(c.verdict, VerdictKind::Fail | VerdictKind::Warn))
        // A step the harness declined to judge because the token had run out before its answer
        // came (eight runs on two cores can make a request seconds late) failed the run honestly,
        // but says nothing about the defect: no rule of the server's was judged either way.
        .filter(|(_, c)| {
            !(c.id == "harness.nothing-checked" && c.seen.as_deref().is_some_and(|s| s.contains(TOO_LATE)))
        })
        .map(|(case, c)| {
            let how = format!(
                "{} in {}: expected {}, seen {}",
                c.id,
                case.id,
                c.expected.as_deref().unwrap_or("-"),
                c.seen.as_deref().unwrap_or("-")
            );
            (c.id.clone(), how)
        })
        .collect()
}

#[tokio::test]
async fn conformant_mock_passes_every_shipped_case() {
    let report = run_with(&[], &[]).await;
    let cases = || report.suites.iter().flat_map(|s| &s.cases);
    // The embedded Identity Server mock speaks plain HTTP, so it registers no tls_client_auth
    // client: these cases are skipped there with this reason, and run on a real server
    // (tests/real_server.rs, oidc-provider).
    for id in SKIPPED_ON_THE_MOCKS {
        let case = cases().find(|c| c.id == *id).unwrap_or_else(|| panic!("no case `{id}`"));
        assert_eq!(case.outcome, CaseOutcome::Skipped, "{id}");
        let reason = case.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("no client `mtls`"), "{id} skipped for another reason: {reason}");
    }
    let not_passed: Vec<String> = cases()
        .filter(|c| c.outcome != CaseOutcome::Passed && !SKIPPED_ON_THE_MOCKS.contains(&c.id.as_str()))
        .map(|c| format!("{} ({:?}): {:?}", c.id, c.outcome, c.failed_checks().map(|k| &k.id).collect::<Vec<_>>()))
        .collect();
    assert!(not_passed.is_empty(), "not passed on the conformant mock: {not_passed:#?}");
    assert!(report.summary.cases >= 70);
}

/// Cases the embedded mocks cannot run (and say why), checked one by one above.
const SKIPPED_ON_THE_MOCKS: &[&str] =
    &["resource-mtls-bound-token", "resource-mtls-other-cert", "resource-mtls-fresh-token"];

#[tokio::test]
async fn each_defect_fails_exactly_its_rule() {
    let table: Vec<&str> = EXPECTED.iter().map(|(d, _)| *d).collect();
    let listed: Vec<&str> = Defect::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(table, listed, "the table must cover every defect the mock lists, in order");

    let table: Vec<&str> = EXPECTED_PSC.iter().map(|(d, _)| *d).collect();
    let listed: Vec<&str> = PscDefect::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(table, listed, "the PSC table must cover every defect the PSC mock lists, in order");

    // Each defect gets its own mocks; runs go eight at a time (the expiry and CIBA suites wait).
    let runs = EXPECTED.iter().map(|(n, e)| (*n, *e, true)).chain(EXPECTED_PSC.iter().map(|(n, e)| (*n, *e, false)));
    type Outcome<'a> = (&'a str, BTreeSet<String>, Vec<(String, String)>, usize);
    let results: Vec<Outcome> = futures_util::stream::iter(runs)
        .map(|(name, expected, identity_server)| async move {
            let report = if identity_server {
                run_with(&[Defect::from_name(name).expect("listed")], &[]).await
            } else {
                run_with(&[], &[PscDefect::from_name(name).expect("listed")]).await
            };
            let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
            (name, expected, broken_checks(&report), report.summary.errors)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut mismatches = Vec::new();
    for (name, expected, broken, errors) in results {
        let failed: BTreeSet<String> = broken.iter().map(|(id, _)| id.clone()).collect();
        if ANY_FAILURE.contains(&name) {
            if failed.is_empty() {
                mismatches.push(format!("{name}: no check failed"));
            }
        } else if failed != expected {
            // Where each unexpected failure happened, so a flaky one can be told from a wrong one.
            let unexpected: Vec<&String> =
                broken.iter().filter(|(id, _)| !expected.contains(id)).map(|(_, how)| how).collect();
            mismatches.push(format!("{name}: expected {expected:?}, failed {failed:?}; unexpected: {unexpected:#?}"));
        }
        assert_eq!(errors, 0, "{name} caused a runtime error");
    }
    assert!(mismatches.is_empty(), "defects not failing exactly their rule:\n{}", mismatches.join("\n"));
}

/// RFC 7009 §2.2.1 lets a server that does not revoke access tokens (it may revoke refresh tokens
/// only) answer 400 `unsupported_token_type`. That is conformant: the revocation check holds and
/// the case, which has no revoked token left to judge, is skipped with the reason — not failed.
#[tokio::test]
async fn a_server_that_does_not_revoke_access_tokens_is_not_failed() {
    use oauth_harness::mock::identity_server::{Config, IdentityServerMock};
    use oauth_harness::protocol::jwks_server::JwksServer;
    let mock = IdentityServerMock::start(Config { revokes_access_tokens: false, ..Config::default() }, None)
        .await
        .expect("mock starts");
    let jwks = std::sync::Arc::new(JwksServer::start(None).await.expect("JWKS server starts"));
    let suites: Vec<Suite> = shipped_suites().into_iter().filter(|s| s.name == "introspection").collect();
    let options = RunOptions { filter: Some("introspection/revoked-token".into()), ..RunOptions::default() };
    let runner = Runner::prepare(mock.target(), jwks, Redactor::new(), options).await.expect("mock reachable");
    let report = runner.run(&suites).await.expect("the case is selected");
    let case = report.suites.iter().flat_map(|s| &s.cases).find(|c| c.id == "revoked-token").expect("ran");
    assert_eq!(case.outcome, CaseOutcome::Skipped, "{case:#?}");
    let reason = case.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("unsupported_token_type") && reason.contains("§2.2.1"), "{reason}");
    let revocation = case.steps.iter().flat_map(|s| &s.checks).find(|c| c.id == "rfc7009.2.2.revocation-200");
    assert_eq!(revocation.map(|c| c.verdict), Some(VerdictKind::Pass), "{case:#?}");
}
