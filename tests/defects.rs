//! The harness's reason to exist: the shipped suites pass on the conformant mock, and every mock
//! defect fails exactly the checks of the rule it breaks — no more, no fewer.

mod common;

use std::collections::BTreeSet;

use futures_util::StreamExt;
use std::path::PathBuf;

use oauth_harness::mock::DefectSet;
use oauth_harness::mock::embedded::Embedded;
use oauth_harness::mock::identity_server::Defect;
use oauth_harness::mock::psc::Defect as PscDefect;
use oauth_harness::results::{CaseOutcome, RunReport, VerdictKind};
use oauth_harness::run::{RunOptions, Runner};
use oauth_harness::scenario::{Loaded, Suite, load_paths};
use oauth_harness::secret::Redactor;

/// Defect → the check ids that must fail with it. Every listed defect must appear here.
const EXPECTED: &[(&str, &[&str])] = &[
    ("no-cache-headers", &["rfc6749.5.1.cache-control", "rfc6749.5.1.pragma"]),
    ("token-type-not-bearer", &["rfc6749.5.1.token-type"]),
    ("missing-expires-in", &["rfc6749.5.1.expires-in"]),
    ("token-content-type-text", &["rfc6749.5.1.content-type"]),
    ("refresh-token-issued", &["rfc6749.4.4.3.no-refresh-token"]),
    ("omit-scope-when-different", &["rfc6749.5.1.scope-when-different"]),
    ("wrong-expires-in", &["rfc7519.exp-matches-expires-in", "rfc7662.2.2.exp-matches-jwt"]),
    ("invalid-client-400", &["rfc6749.5.2.invalid-client-401"]),
    ("basic-no-www-authenticate", &["rfc6749.5.2.www-authenticate"]),
    ("accept-wrong-secret", &["rfc6749.5.2.invalid-client"]),
    ("basic-not-form-decoded", &["rfc6749.2.3.1.form-encoded-credentials"]),
    ("client-secret-post-ignored", &["rfc6749.2.3.1.client-secret-post"]),
    ("accept-two-auth-methods", &["rfc6749.2.3.single-auth-method"]),
    ("token-endpoint-accepts-get", &["rfc6749.3.2.post-only"]),
    ("ignore-scope-restriction", &["rfc6749.5.2.invalid-scope"]),
    ("scope-order-sensitive", &["rfc6749.3.3.scope-order"]),
    ("unsupported-grant-as-invalid-request", &["rfc6749.5.2.unsupported-grant-type"]),
    ("missing-grant-type-accepted", &["rfc6749.5.2.invalid-request"]),
    ("error-not-json", &["rfc6749.5.2.error-json"]),
    ("error-description-bad-charset", &["rfc6749.5.2.error-charset"]),
    ("resource-accepts-no-token", &["rfc6750.3.no-token"]),
    // RFC 6750 §3.1's invalid_token covers invalid, expired and revoked tokens alike.
    (
        "resource-invalid-token-no-error",
        &["rfc6750.3.1.expired-token", "rfc6750.3.1.invalid-token", "rfc7009.2.revoked-refused"],
    ),
    ("resource-ignores-scope", &["rfc6750.3.1.insufficient-scope"]),
    ("accept-wrong-aud", &["rfc7523.3.3.aud"]),
    ("accept-expired-assertion", &["rfc7523.3.4.exp"]),
    ("accept-long-exp", &["smart.331.exp-max-5-min"]),
    ("accept-replayed-jti", &["smart.336.jti-replay"]),
    ("accept-missing-jti", &["smart.330.jti-required"]),
    ("accept-sub-mismatch", &["rfc7523.3.2.sub"]),
    ("accept-alg-none", &["rfc8725.3.1.alg-none"]),
    ("accept-hs256-confusion", &["rfc8725.3.1.hs256-confusion"]),
    ("accept-unadvertised-alg", &["smart.324.signing-alg"]),
    ("accept-bad-signature", &["rfc7523.3.9.signature"]),
    ("accept-unregistered-key", &["smart.338.key-lookup"]),
    ("follow-any-jku", &["rfc8725.3.10.jku-not-fetched", "rfc8725.3.10.jku-refused"]),
    ("accept-wrong-assertion-type", &["rfc7521.4.2.assertion-type"]),
    ("discovery-missing-private-key-jwt", &["smart.discovery.private-key-jwt"]),
    ("smart-config-html-for-browsers", &["smart.discovery.json"]),
    ("smart-config-no-asymmetric-capability", &["smart.discovery.asymmetric-capability"]),
    ("discovery-issuer-mismatch", &["oidc.discovery.issuer"]),
    ("introspect-no-auth", &["rfc7662.2.1.no-credentials-401", "rfc7662.2.1.wrong-credentials-401"]),
    ("introspect-expired-active", &["rfc7662.4.expired-inactive"]),
    ("introspect-unknown-active", &["rfc7662.2.2.inactive"]),
    ("introspect-inactive-extra-fields", &["rfc7662.2.2.inactive-only-active"]),
    ("introspect-missing-exp", &["smart.introspection.exp"]),
    ("introspect-wrong-scope", &["rfc7662.2.2.scope"]),
    ("revocation-ignored", &["rfc7009.2.revoked-inactive", "rfc7009.2.revoked-refused"]),
    ("resource-accepts-expired", &["rfc6750.3.1.expired-token"]),
];

/// The PSC mock's defects and the checks each must fail.
const EXPECTED_PSC: &[(&str, &[&str])] = &[
    ("no-slow-down", &["ciba.11.slow-down"]),
    ("interval-missing", &["ciba.7.3.interval"]),
    // Tokens handed out early show wherever the user had not answered yet.
    (
        "token-before-approval",
        &[
            "ciba.10.1.id-token",
            "ciba.11.access-denied",
            "ciba.11.authorization-pending",
            "ciba.11.expired-token",
            "ciba.11.slow-down",
        ],
    ),
    ("reuse-auth-req-id", &["ciba.11.reused-auth-req-id"]),
    ("cross-client", &["ciba.11.other-client"]),
    ("no-expiry", &["ciba.11.expired-token"]),
    ("access-denied-as-pending", &["ciba.11.access-denied"]),
    ("id-token-wrong-aud", &["ciba.id-token.aud"]),
    ("cnf-missing", &["rfc8705.3.cnf"]),
    ("mtls-not-enforced", &["rfc8705.2.no-certificate"]),
    ("mtls-any-subject", &["rfc8705.2.subject-mismatch"]),
    ("two-hints-accepted", &["ciba.7.1.two-hints"]),
    ("openid-scope-optional", &["ciba.7.1.openid-scope"]),
    ("weak-auth-req-id", &["ciba.7.3.auth-req-id"]),
    ("discovery-no-poll-mode", &["ciba.4.poll-mode"]),
];

fn shipped_suites() -> Vec<Suite> {
    let loaded = load_paths(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")])
        .unwrap_or_else(|e| panic!("shipped scenarios load: {e:?}"));
    loaded
        .into_iter()
        .filter_map(|l| match l {
            Loaded::Suite(s) => Some(*s),
            Loaded::LoadProfile(_) => None,
        })
        .collect()
}

/// Every shipped suite against the embedded mocks (each suite against its system's mock).
async fn run_with(defects: &[Defect], psc_defects: &[PscDefect]) -> RunReport {
    let embedded =
        Embedded::start_with(DefectSet::new(defects.iter().copied()), DefectSet::new(psc_defects.iter().copied()))
            .await
            .expect("mocks start");
    let mut parts = Vec::new();
    for (target, suites) in embedded.group(shipped_suites()) {
        let runner = Runner::prepare(target, embedded.jwks.clone(), Redactor::new(), RunOptions::default())
            .await
            .expect("mock reachable");
        parts.push(runner.run(&suites).await.expect("cases selected"));
    }
    RunReport::merge(parts).expect("some suites ran")
}

fn failed_checks(report: &RunReport) -> BTreeSet<String> {
    report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.steps)
        .flat_map(|s| &s.checks)
        .filter(|c| c.verdict == VerdictKind::Fail)
        .map(|c| c.id.clone())
        .collect()
}

#[tokio::test]
async fn conformant_mock_passes_every_shipped_case() {
    let report = run_with(&[], &[]).await;
    let not_passed: Vec<String> = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.outcome != CaseOutcome::Passed)
        .map(|c| format!("{} ({:?}): {:?}", c.id, c.outcome, c.failed_checks().map(|k| &k.id).collect::<Vec<_>>()))
        .collect();
    assert!(not_passed.is_empty(), "not passed on the conformant mock: {not_passed:#?}");
    assert!(report.summary.cases >= 70);
}

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
    let results: Vec<(&str, BTreeSet<String>, BTreeSet<String>, usize)> = futures_util::stream::iter(runs)
        .map(|(name, expected, identity_server)| async move {
            let report = if identity_server {
                run_with(&[Defect::from_name(name).expect("listed")], &[]).await
            } else {
                run_with(&[], &[PscDefect::from_name(name).expect("listed")]).await
            };
            let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
            (name, expected, failed_checks(&report), report.summary.errors)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut mismatches = Vec::new();
    for (name, expected, failed, errors) in results {
        if failed != expected {
            mismatches.push(format!("{name}: expected {expected:?}, failed {failed:?}"));
        }
        assert_eq!(errors, 0, "{name} caused a runtime error");
    }
    assert!(mismatches.is_empty(), "defects not failing exactly their rule:\n{}", mismatches.join("\n"));
}
