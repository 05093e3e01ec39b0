//! CIBA and mTLS end to end: the poller's timing against a server that records it, the standalone
//! PSC mock driven from a target file with a PKCS#12 identity, and TLS input errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{code, run_bin, stderr, stdout};
use oauth_harness::protocol::flows::ciba::{self, Pace, SystemClock};
use oauth_harness::protocol::http::HttpClient;
use oauth_harness::support::secret::Secret;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A token endpoint that answers from a script and records when each poll arrived.
struct Recorder {
    script: Mutex<Vec<Option<&'static str>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Recorder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        let next = {
            let mut s = self.script.lock().unwrap();
            if s.is_empty() { None } else { Some(s.remove(0)) }
        };
        match next.flatten() {
            Some(error) => ResponseTemplate::new(400).set_body_json(serde_json::json!({ "error": error })),
            None => ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "access_token": "a", "token_type": "Bearer" })),
        }
    }
}

#[tokio::test]
async fn the_poller_keeps_the_interval_adds_five_after_slow_down_and_never_overlaps() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let server = MockServer::builder().disable_request_recording().start().await;
    let script = vec![Some("authorization_pending"), Some("slow_down"), None];
    Mock::given(any())
        .respond_with(Recorder { script: Mutex::new(script), arrivals: arrivals.clone() })
        .mount(&server)
        .await;
    let http = HttpClient::new(Duration::from_secs(5)).unwrap();
    let endpoint = url::Url::parse(&format!("{}/token", server.uri())).unwrap();
    let id = Secret::new("auth-req-id-0123456789abcdefghij");
    let started = Instant::now();
    let send = || {
        let creds = oauth_harness::protocol::auth::Credentials { client_id: "client", secret: None, assertion: None };
        let (request, context) =
            ciba::token_request(&endpoint, &id, oauth_harness::model::AuthChoice::TlsClientAuth, &creds);
        let http = http.clone();
        Box::pin(async move {
            let response = http.send(&request).await?;
            Ok(oauth_harness::protocol::exchange::Exchange { request: request.record(), response, context })
        }) as ciba::PollFuture<'_>
    };
    let outcome =
        ciba::poll(&SystemClock::default(), Some(Duration::from_secs(1)), Duration::from_secs(30), Pace::Honour, send)
            .await
            .unwrap();
    assert_eq!(outcome.last.unwrap().response.status, 200);
    let times = arrivals.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    let gaps: Vec<f64> = std::iter::once(times[0] - started)
        .chain(times.windows(2).map(|w| w[1] - w[0]))
        .map(|d| d.as_secs_f64())
        .collect();
    assert!(gaps[0] >= 0.99 && gaps[1] >= 0.99, "polls at least `interval` apart: {gaps:?}");
    assert!(gaps[2] >= 5.99, "after slow_down, the interval grew by 5 s: {gaps:?}");
    assert!(gaps.iter().all(|g| *g > 0.5), "never two polls at once: {gaps:?}");
}

/// `mock psc` as a process with `args`, and its port.
fn standalone_psc(args: &[&str]) -> (common::Reaped, u16) {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = common::bin()
        // Tokens of seconds: the token-exchange suite waits for one to expire.
        .args(["mock", "psc", "--port", &port.to_string(), "--token-lifetime", "3s"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = common::Reaped::new(child);
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(12)
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .collect();
    assert!(lines.iter().any(|l| l.contains(&format!("https://127.0.0.1:{port}/realms/esante-wallet"))), "{lines:?}");
    (child, port)
}

fn stop(child: common::Reaped) {
    drop(child);
}

/// fixtures/targets/psc-local.yaml pointed at `port`, its paths made absolute.
fn psc_local(port: u16) -> String {
    let pki = format!("{}/", common::repo_path("fixtures/pki").display());
    let keys = format!("{}/", common::repo_path("fixtures/keys").display());
    let fixture = std::fs::read_to_string(common::repo_path("fixtures/targets/psc-local.yaml")).unwrap();
    fixture.replace("8443", &port.to_string()).replace("../pki/", &pki).replace("../keys/", &keys)
}

/// `mock psc` as a process, a target file from fixtures/targets/psc-local.yaml with client A's
/// identity from PKCS#12 (password from the environment): the whole PSC suite is green.
#[test]
fn the_standalone_psc_mock_passes_the_suite_with_a_pkcs12_identity() {
    let (child, port) = standalone_psc(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pki = format!("{}/", common::repo_path("fixtures/pki").display());
    let target_text = psc_local(port).replace(
        &format!("    certificate: {pki}client.pem\n    certificate_key: {pki}client.key\n"),
        &format!("    pkcs12: {pki}client.p12\n    pkcs12_password: \"${{env:OAUTH_HARNESS_TEST_P12}}\"\n"),
    );
    assert!(target_text.contains("pkcs12:"), "the fixture still names client A's PEM files");
    let target = dir.path().join("psc.yaml");
    std::fs::write(&target, target_text).unwrap();
    let o = common::bin()
        .args(["run", "scenarios/psc-ciba", "--target", target.to_str().unwrap()])
        .env("OAUTH_HARNESS_TEST_P12", oauth_harness::support::pki::P12_PASSWORD)
        .output()
        .unwrap();
    stop(child);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(" 0 failed, 0 skipped, 0 errors"), "{}", stdout(&o));
}

/// A server that keeps one pending request per client and user (a new one supersedes the older)
/// passes too, however many cases run at once: cases sharing a client and user take turns.
#[test]
fn a_server_keeping_one_pending_request_per_user_passes_at_any_concurrency() {
    let (child, port) = standalone_psc(&["--one-pending-per-user"]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("psc.yaml");
    std::fs::write(&target, psc_local(port)).unwrap();
    let o = common::bin()
        .args(["run", "scenarios/psc-ciba", "--jobs", "16", "--target", target.to_str().unwrap()])
        .output()
        .unwrap();
    stop(child);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// A deployment that takes mutual TLS only at its RFC 8705 §5 `mtls_endpoint_aliases` (its
/// conventional endpoints never see a certificate) passes the whole suite: every request that
/// carries a certificate goes to the alias. The same target with the conventional endpoints
/// named by hand (which turns the aliases off) fails the certificate clients' cases: the test
/// could fail, and it is the aliases that make it pass.
#[test]
fn a_server_taking_mutual_tls_at_its_endpoint_aliases_only_passes_the_suite() {
    let (child, port) = standalone_psc(&["--mtls-endpoint-aliases"]);
    let dir = tempfile::tempdir().unwrap();
    let aliased = dir.path().join("psc.yaml");
    std::fs::write(&aliased, psc_local(port)).unwrap();
    let realm = format!("https://127.0.0.1:{port}/realms/esante-wallet/protocol/openid-connect");
    let by_hand = dir.path().join("psc-by-hand.yaml");
    let pinned = format!("ciba:\n  backchannel_endpoint: {realm}/ext/ciba/auth\n  token_endpoint: {realm}/token\n");
    std::fs::write(&by_hand, psc_local(port).replacen("ciba:\n", &pinned, 1)).unwrap();
    let run = |target: &std::path::Path| {
        common::bin().args(["run", "scenarios/psc-ciba", "--target", target.to_str().unwrap()]).output().unwrap()
    };
    let (followed, pinned) = (run(&aliased), run(&by_hand));
    stop(child);
    assert_eq!(code(&followed), 0, "{}{}", stdout(&followed), stderr(&followed));
    assert!(stdout(&followed).contains(" 0 failed, 0 skipped, 0 errors"), "{}", stdout(&followed));
    assert_eq!(code(&pinned), 1, "{}{}", stdout(&pinned), stderr(&pinned));
    assert!(stdout(&pinned).contains("FAIL  happy-path-card"), "{}", stdout(&pinned));
}

/// A target that names the CIBA endpoints by hand and reads no metadata has no `jwks_uri`: the
/// id_token's signature is then blocked (the missing keys are the case's one failure), not a
/// broken signature; with `ciba.jwks_uri` named too, it is verified and the case passes.
#[test]
fn without_metadata_the_id_token_signature_is_blocked_until_the_target_names_the_keys() {
    let (child, port) = standalone_psc(&[]);
    let dir = tempfile::tempdir().unwrap();
    let realm = format!("https://127.0.0.1:{port}/realms/esante-wallet");
    let by_hand = format!(
        "ciba:\n  discovery: /no-metadata-here\n  backchannel_endpoint: {realm}/protocol/openid-connect/ext/ciba/auth\n  \
         token_endpoint: {realm}/protocol/openid-connect/token\n"
    );
    let run = |extra: &str| {
        let target = dir.path().join("psc.yaml");
        std::fs::write(&target, psc_local(port).replacen("ciba:\n", &format!("{by_hand}{extra}"), 1)).unwrap();
        let json = dir.path().join("r.json");
        let args = ["run", "scenarios/psc-ciba", "--filter", "happy-path-card", "--target", target.to_str().unwrap()];
        let o = common::bin().args(args).args(["--report-json", json.to_str().unwrap()]).output().unwrap();
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let verdicts: std::collections::BTreeMap<String, String> = report["suites"][0]["cases"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["checks"].as_array().unwrap().clone())
            .map(|c| (c["id"].as_str().unwrap().to_string(), c["verdict"].as_str().unwrap().to_string()))
            .collect();
        (o, verdicts)
    };
    let (blocked, blocked_verdicts) = run("");
    let (named, named_verdicts) = run(&format!("  jwks_uri: {realm}/protocol/openid-connect/certs\n"));
    stop(child);
    assert_eq!(code(&blocked), 1, "{}", stdout(&blocked));
    assert_eq!(blocked_verdicts["ciba.id-token.signature"], "blocked", "{}", stdout(&blocked));
    assert_eq!(blocked_verdicts["harness.prerequisite"], "fail");
    assert!(stdout(&blocked).contains("set `ciba.jwks_uri` in the target"), "{}", stdout(&blocked));
    assert_eq!(code(&named), 0, "{}{}", stdout(&named), stderr(&named));
    assert_eq!(named_verdicts["ciba.id-token.signature"], "pass");
}

/// A target without `ciba.approval_hook` (a production server: no test call plays the user)
/// skips the cases that need one, saying so, and runs the rest.
#[test]
fn without_an_approval_hook_the_cases_that_need_one_are_skipped_with_the_reason() {
    let (child, port) = standalone_psc(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fixture = psc_local(port);
    let hook_at = fixture.find("  # A test-only call").unwrap();
    let hook_end = fixture[hook_at..].find("clients:").unwrap() + hook_at;
    let target = dir.path().join("psc.yaml");
    std::fs::write(&target, format!("{}{}", &fixture[..hook_at], &fixture[hook_end..])).unwrap();
    let json = dir.path().join("r.json");
    let o = common::bin()
        .args(["run", "scenarios/psc-ciba/ciba-poll.yaml", "--filter", "happy-path-*", "--target"])
        .args([target.to_str().unwrap(), "--report-json", json.to_str().unwrap()])
        .output()
        .unwrap();
    stop(child);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    let case = |id: &str| cases.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no {id}"));
    assert_eq!(case("happy-path-card")["outcome"], "passed");
    let hooked = case("happy-path-mobile-approval-hook");
    assert_eq!(hooked["outcome"], "skipped");
    assert!(hooked["reason"].as_str().unwrap().contains("no `ciba.approval_hook`"), "{hooked}");
}

fn target_with_client(dir: &std::path::Path, client: &str) -> std::path::PathBuf {
    let path = dir.join("t.yaml");
    std::fs::write(
        &path,
        format!("issuer: https://127.0.0.1:9/realms/x\nclients:\n  psc-client:\n    client_id: c\n{client}"),
    )
    .unwrap();
    path
}

#[test]
fn tls_input_errors_name_the_file_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::repo_path("fixtures/pki");
    std::fs::write(
        dir.path().join("corrupt.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases = [
        (
            format!(
                "    certificate: {}/missing.pem\n    certificate_key: {}/client.key\n",
                dir.path().display(),
                pki.display()
            ),
            "missing.pem",
        ),
        (
            format!(
                "    certificate: {}/corrupt.pem\n    certificate_key: {}/client.key\n",
                dir.path().display(),
                pki.display()
            ),
            "corrupt.pem",
        ),
        (
            format!("    certificate: {}/client.pem\n    certificate_key: {}/ca.pem\n", pki.display(), pki.display()),
            "ca.pem",
        ),
        (format!("    pkcs12: {}/client.p12\n    pkcs12_password: wrong-password\n", pki.display()), "wrong password"),
        // A token is bound only to a certificate the client presents (RFC 8705 §3).
        (
            "    client_secret: s\n    tls_client_certificate_bound_access_tokens: true\n".to_string(),
            "asks for certificate-bound tokens but has no certificate",
        ),
    ];
    for (client, needle) in cases {
        let target = target_with_client(dir.path(), &client);
        let o = run_bin(&["validate", "scenarios/psc-ciba", "--target", target.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{needle}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle) && stderr(&o).contains("t.yaml:"), "{needle}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_tls_error_with_exit_3() {
    let mock = oauth_harness::mock::psc::PscMock::start(Default::default(), None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.yaml");
    // No `tls: { ca: … }`: the test CA is not trusted.
    std::fs::write(
        &target,
        format!("issuer: {}\nclients:\n  psc-client: {{ client_id: c, client_secret: s }}\n", mock.issuer()),
    )
    .unwrap();
    let args: Vec<String> =
        ["run", "scenarios/psc-ciba", "--target", target.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    let o = tokio::task::spawn_blocking(move || run_bin(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("TLS with https://127.0.0.1:"), "{}", stderr(&o));
}

/// `tls.minimum: "1.3"` holds a server to a TLS 1.3 floor: a server offering 1.3 only passes the
/// `tls-versions` case, one that still takes TLS 1.2 fails it (the floor check alone).
#[test]
fn a_tls13_floor_passes_a_13_only_server_and_fails_one_taking_12() {
    for (mock_args, want_code, want) in
        [(&["--tls13-only"][..], 0, "PASS  tls-versions"), (&[][..], 1, "✗ rfc9325.3.1.1.tls13-floor")]
    {
        let (child, port) = standalone_psc(mock_args);
        let dir = tempfile::tempdir().unwrap();
        let target_text = psc_local(port).replacen("tls:\n", "tls:\n  minimum: \"1.3\"\n", 1);
        assert!(target_text.contains("minimum: \"1.3\""), "the fixture has no `tls:` section");
        let target = dir.path().join("psc.yaml");
        std::fs::write(&target, target_text).unwrap();
        let o = common::bin()
            .args(["run", "scenarios/psc-ciba/ciba-poll.yaml", "--filter", "tls-versions", "-v"])
            .args(["--target", target.to_str().unwrap()])
            .output()
            .unwrap();
        stop(child);
        assert_eq!(code(&o), want_code, "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(want), "{}", stdout(&o));
        assert!(stdout(&o).contains("TLS 1.0 and 1.1 not probed"), "{}", stdout(&o));
    }
}

/// Binding is what the client registered for (RFC 8705 §3.4, false when omitted). A server that
/// issues unbound tokens fails the binding checks for clients registered for bound tokens; for
/// clients that did not register so, the same server is conformant: the binding checks do not
/// apply (with the reason) and the bound-token case is skipped, naming the setting.
#[test]
fn certificate_binding_is_judged_only_for_clients_registered_for_it() {
    let (child, port) = standalone_psc(&["--defect", "cnf-missing"]);
    let dir = tempfile::tempdir().unwrap();
    let setting = "    tls_client_certificate_bound_access_tokens: true\n";
    let registered = psc_local(port);
    assert!(registered.contains(setting), "the fixture registers its certificate clients for bound tokens");
    let run = |text: &str| {
        let target = dir.path().join("psc.yaml");
        std::fs::write(&target, text).unwrap();
        let json = dir.path().join("r.json");
        let o = common::bin()
            .args(["run", "scenarios/psc-ciba/ciba-poll.yaml", "--no-color", "--target", target.to_str().unwrap()])
            .args(["--report-json", json.to_str().unwrap()])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (o, report)
    };
    let (bound, _) = run(&registered);
    let (unbound, report) = run(&registered.replace(setting, ""));
    stop(child);

    assert_eq!(code(&bound), 1, "{}", stdout(&bound));
    assert!(stdout(&bound).contains("✗ rfc8705.3.cnf"), "{}", stdout(&bound));
    assert_eq!(code(&unbound), 0, "{}{}", stdout(&unbound), stderr(&unbound));
    let cases: Vec<&serde_json::Value> = report["suites"][0]["cases"].as_array().unwrap().iter().collect();
    let skipped = cases.iter().find(|c| c["id"] == "bound-token-at-the-resource").unwrap();
    assert_eq!(skipped["outcome"], "skipped", "{skipped}");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(reason.contains("did not register for certificate-bound tokens"), "{reason}");
    // The CIBA answers of the certificate clients still name the binding check, as not applicable.
    let text = report.to_string();
    assert!(
        text.contains("did not register for certificate-bound tokens (`tls_client_certificate_bound_access_tokens`"),
        "the cnf check says why it did not apply"
    );
}

/// A case presenting another client's certificate needs a target with a second certificate: with
/// only its own client's, it is skipped with the reason before any traffic, not failed.
#[test]
fn a_case_needing_another_certificate_is_skipped_when_the_target_has_one() {
    let (child, port) = standalone_psc(&[]);
    let dir = tempfile::tempdir().unwrap();
    let full = psc_local(port);
    // The fixture's header (issuer, tls, ciba) and its psc-self-signed client alone.
    let header = &full[..full.find("clients:\n").unwrap()];
    let own = &full[full.find("  psc-self-signed:\n").unwrap()..];
    let target = dir.path().join("psc.yaml");
    std::fs::write(&target, format!("{header}clients:\n{own}")).unwrap();
    let json = dir.path().join("r.json");
    let run = |strict: &[&str]| {
        common::bin()
            .args(["run", "scenarios/psc-ciba/ciba-poll.yaml", "--filter", "bound-token-at-the-resource"])
            .args(["--target", target.to_str().unwrap(), "--report-json", json.to_str().unwrap()])
            .args(strict)
            .output()
            .unwrap()
    };
    let strict = run(&["--strict"]);
    let o = run(&[]);
    stop(child);
    // A skip is no failure of the server's, but nothing was checked: the headline says so, and
    // a --strict gate does not go green on it.
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("NOTHING CHECKED 1 case:"), "{}", stdout(&o));
    assert_eq!(code(&strict), 1, "{}{}", stdout(&strict), stderr(&strict));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let case = &report["suites"][0]["cases"][0];
    assert_eq!(case["outcome"], "skipped", "{case}");
    assert!(case["reason"].as_str().unwrap().contains("no client with a certificate other than"), "{case}");
    assert!(case["steps"].as_array().is_none_or(|s| s.is_empty()), "skipped before any traffic: {case}");
}
