//! `oauth-harness load` end to end against the embedded mock: reports, thresholds that fail the
//! run, error rates measured against a mock that fails one request in ten, private_key_jwt with
//! a replay-checking server, target-rate mode, and Ctrl-C. Runs are short and small (debug build,
//! 2 cores): these prove behaviour, the benchmark measures speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bin, code, load_with_json_report, run_bin, stderr, stdout};
use serde_json::Value;

fn profile(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("valid JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn token_secret_profile_passes_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let (j, h, m) = (dir.path().join("l.json"), dir.path().join("l.html"), dir.path().join("l.md"));
    let o = run_bin(&[
        "load",
        "scenarios/load/token-secret.yaml",
        "--duration",
        "3s",
        "--users",
        "4",
        "--report-json",
        j.to_str().unwrap(),
        "--report-html",
        h.to_str().unwrap(),
        "--report-md",
        m.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(out.contains("p95 ms") && out.contains("result: PASS"), "{out}");

    let r = json(&j);
    assert_eq!(r["format"], "oauth-harness/load-report/v3");
    let requests = r["total"]["requests"].as_u64().unwrap();
    assert!(requests > 50, "{requests}");
    assert_eq!(r["total"]["errors"], 0);
    let l = &r["total"]["latency_ms"];
    assert!(f(&l["p50"]) <= f(&l["p95"]) && f(&l["p95"]) <= f(&l["p99"]) && f(&l["p99"]) <= f(&l["max"]));
    assert!(f(&r["total"]["rps"]) > 0.0);
    // The histogram and the timeline account for every request.
    let path = &r["paths"][0];
    let in_histogram: u64 =
        path["histogram"]["values"].as_array().unwrap().iter().map(|v| v[1].as_u64().unwrap()).sum();
    let in_timeline: u64 = path["timeline"].as_array().unwrap().iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!((in_histogram, in_timeline), (requests, requests));
    assert_eq!(path["status_codes"]["200"].as_u64(), Some(requests));
    assert_eq!(path["transport"], "hyper", "plain HTTP goes through hyper directly");
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 3);
    assert_eq!(r["thresholds_passed"], true);

    let html = std::fs::read_to_string(&h).unwrap();
    assert!(html.contains(&format!("<span id='total-requests'>{requests}</span>")));
    assert!(html.contains("<svg") && !html.contains("<script"), "charts are inline SVG, nothing is fetched");
    let md = std::fs::read_to_string(&m).unwrap();
    assert!(md.starts_with("## Load `token-secret` — ✅ PASS"), "{md}");
    // The client secret and its Basic header appear nowhere.
    let basic = oauth_harness::protocol::auth::basic_header("implant-vendor", "implant-vendor-secret");
    for text in [&out, &std::fs::read_to_string(&j).unwrap(), &html, &md] {
        assert!(!text.contains("implant-vendor-secret") && !text.contains(&basic.expose()[6..]));
    }
}

#[test]
fn an_impossible_threshold_fails_the_run_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(
        dir.path(),
        "impossible",
        "load:\n  path: token\n  client: confidential\n  users: 2\n  thresholds: { p95_ms: 0.001, max_error_rate: 0.5 }\n",
    );
    let o = run_bin(&["load", &p, "--duration", "2s", "-q"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("FAIL  p95_ms ≤ 0.001 (all)"), "{out}");
    assert!(out.contains("PASS  max_error_rate ≤ 0.5 (all)"), "{out}");
    assert!(out.contains("% over"), "says by how much: {out}");
    assert!(out.contains("result: FAIL (1 of 2 thresholds failed)"), "{out}");
}

#[test]
fn server_errors_are_measured_and_gate_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(
        dir.path(),
        "errors",
        "load:\n  path: token\n  client: confidential\n  users: 4\n  thresholds: { max_error_rate: 0.05 }\n",
    );
    let (o, r) = load_with_json_report(&[&p, "--duration", "3s", "--mock-defect", "token-server-error-10pct"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    let rate = f(&r["total"]["error_rate"]);
    assert!((rate - 0.10).abs() <= 0.02, "error rate {rate} is not 10% ± 2 points");
    assert_eq!(r["paths"][0]["failures"]["status 500"], r["total"]["errors"]);
    assert!(out.contains("FAIL  max_error_rate ≤ 0.05 (all)"), "{out}");
    assert!(out.contains("errors on token: status 500"), "{out}");
}

#[test]
fn a_malformed_threshold_is_refused_before_any_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(
        dir.path(),
        "bad",
        "load:\n  path: token\n  client: confidential\n  thresholds:\n    p95_ms: 0\n    max_error_rate: 2\n",
    );
    // A target nobody listens on: reaching it would be exit 3, so exit 2 proves nothing was sent.
    let target = dir.path().join("t.yaml");
    std::fs::write(
        &target,
        "issuer: http://127.0.0.1:9\nclients:\n  confidential: { client_id: a, client_secret: b }\n",
    )
    .unwrap();
    let started = Instant::now();
    let o = run_bin(&["load", &p, "--target", target.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("p95_ms must be greater than zero") && err.contains("bad.yaml:5:13"), "{err}");
    assert!(err.contains("max_error_rate is a fraction") && err.contains("bad.yaml:6:21"), "{err}");
    assert!(stdout(&o).is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));

    // A client the target lacks is caught the same way, with a suggestion.
    let p = profile(dir.path(), "client", "load:\n  path: token\n  client: confidentail\n");
    let o = run_bin(&["load", &p]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean `confidential`?"), "{}", stderr(&o));
}

#[test]
fn private_key_jwt_sends_a_fresh_assertion_every_time() {
    // The mock refuses a replayed jti with 401: zero errors means every assertion was unique.
    let (o, r) =
        load_with_json_report(&["scenarios/load/token-private-key-jwt.yaml", "--duration", "2s", "--users", "4"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let requests = r["total"]["requests"].as_u64().unwrap();
    assert!(requests > 20);
    assert_eq!(r["total"]["errors"], 0);
    let pool = &r["signing_pools"]["token"];
    assert!(pool["signed"].as_u64().unwrap() >= requests, "{pool}");
}

#[test]
fn dpop_sends_a_fresh_proof_every_time_and_wants_dpop_tokens() {
    // The mock refuses a replayed proof: zero errors means every proof was fresh.
    let (o, r) = load_with_json_report(&["scenarios/load/token-dpop.yaml", "--duration", "2s", "--users", "4"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let requests = r["total"]["requests"].as_u64().unwrap();
    assert!(requests > 20);
    assert_eq!(r["total"]["errors"], 0);
    let pool = &r["signing_pools"]["token (DPoP proofs)"];
    assert!(pool["signed"].as_u64().unwrap() >= requests, "{pool}");
    // A server that ignores the proof answers Bearer tokens: every request fails the path.
    let (o, r) = load_with_json_report(&[
        "scenarios/load/token-dpop.yaml",
        "--duration",
        "1s",
        "--users",
        "2",
        "--mock-defect",
        "dpop-ignored",
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert_eq!(r["total"]["errors"], r["total"]["requests"]);
    assert!(r["paths"][0]["failures"]["body: token_type is not DPoP"].as_u64().unwrap() > 0, "{}", r["paths"][0]);
}

#[test]
fn mixed_profile_runs_every_path_in_its_weights() {
    let (o, r) = load_with_json_report(&["scenarios/load/mixed.yaml", "--duration", "3s", "--users", "4"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let count = |name: &str| {
        let p = r["paths"].as_array().unwrap().iter().find(|p| p["name"] == name).expect(name);
        assert_eq!(p["errors"], 0, "{name}");
        p["requests"].as_u64().unwrap() as f64
    };
    let (secret, jwt, introspection) = (count("token-secret"), count("token-private-key-jwt"), count("introspection"));
    // Weights 3:1:6 repeat within each iteration: the mix holds to within a partial iteration per user.
    assert!((secret / jwt - 3.0).abs() < 0.5, "{secret} / {jwt}");
    assert!((introspection / jwt - 6.0).abs() < 1.0, "{introspection} / {jwt}");
}

#[test]
fn target_rate_mode_holds_the_rate() {
    let (o, r) = load_with_json_report(&[
        "scenarios/load/token-secret.yaml",
        "--duration",
        "3s",
        "--users",
        "4",
        "--rate",
        "100/s",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let rps = f(&r["total"]["rps"]);
    // Unthrottled, this run does thousands a second; throttled, about 100 (startup and shutdown
    // are in the wall time, so a little under).
    assert!((60.0..=115.0).contains(&rps), "{rps} req/s at a 100/s target");
    assert_eq!(r["settings"]["rate"], 100);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_and_writes_the_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("c.json");
    let x = dir.path().join("c.xml");
    let mut child = common::Reaped::new(
        bin()
            .args(["load", "scenarios/load/token-secret.yaml", "--duration", "60s", "--users", "2", "-q"])
            .args(["--report-json", j.to_str().unwrap(), "--report-junit", x.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // Bounded wait: the run must stop by itself well before its 60 s.
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Thresholds judged on part of a profile say nothing about the profile: incomplete, as for `run`.
    assert_eq!(exit.code(), Some(3), "an interrupted load is incomplete, whatever its partial figures");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("note: interrupted (Ctrl-C)"), "{out}");
    assert!(out.contains("result: INTERRUPTED ("), "{out}");
    assert!(!out.contains("result: PASS"), "{out}");
    let junit = std::fs::read_to_string(&x).unwrap();
    assert!(junit.contains("the profile ran to its end") && junit.contains("<error"), "{junit}");
    assert!(!out.to_lowercase().contains("caught ctrl-c"), "goose's warnings go to stderr, not among the table: {out}");
    let r = json(&j);
    assert_eq!(r["interrupted"], true);
    assert!(r["total"]["requests"].as_u64().unwrap() > 0);
    assert!(f(&r["duration_secs"]) < 30.0);
}

#[test]
fn report_formats_snapshot() {
    use oauth_harness::load::report::{FORMAT, LoadReport, PathSummary, Settings};
    use oauth_harness::load::stats::{Failure, LiveCounters, PathRecorder};
    use oauth_harness::load::thresholds::evaluate;
    use oauth_harness::model::profile::{CoMitigation, Metric, Threshold};

    let recorder = PathRecorder::new(std::sync::Arc::<LiveCounters>::default());
    for i in 1..=200u64 {
        let failure = (i % 50 == 0).then_some(Failure::Status(503));
        recorder.record(Duration::from_micros(i * 100), Some(200), failure.as_ref(), None);
    }
    let stats = recorder.snapshot();
    let thresholds = [
        Threshold { path: None, metric: Metric::P95, limit: 5.0 },
        Threshold { path: None, metric: Metric::MaxErrorRate, limit: 0.01 },
        Threshold { path: Some("token".into()), metric: Metric::MinRps, limit: 10.0 },
    ];
    let verdicts = evaluate(&thresholds, |_| Some(&stats), 10.0);
    let report = LoadReport {
        format: FORMAT.into(),
        profile: "token-secret".into(),
        profile_digest: "0".repeat(64),
        traffic_started_unix_ms: 1_796_040_000_000,
        shard: None,
        merged_from: None,
        profile_thresholds: thresholds.to_vec(),
        regression_limits: vec![],
        baseline: None,
        description: None,
        target: "http://127.0.0.1:8080/".into(),
        target_origin: "fixtures/targets/local-mock.yaml".into(),
        started_at: "2026-11-29T12:00:00Z".into(),
        duration_secs: 10.0,
        interrupted: false,
        stopped_by_cap: false,
        settings: Settings {
            users: 4,
            ramp_secs: 0.0,
            duration_secs: Some(10.0),
            iterations: None,
            rate: None,
            coordinated_omission: CoMitigation::Disabled,
            max_duration_secs: 3600.0,
        },
        total: PathSummary::new("all", "all", "", 0, &stats, 10.0),
        paths: vec![PathSummary::new("token", "token", "hyper", 1, &stats, 10.0)],
        thresholds_passed: verdicts.iter().all(|v| v.passed),
        thresholds: verdicts,
        signing_pools: Default::default(),
        notes: vec![],
    };
    insta::assert_snapshot!("load_terminal", oauth_harness::report::load::terminal(&report, false));
    insta::assert_snapshot!("load_markdown", oauth_harness::report::load::markdown(&report));

    // The same figures cut short by Ctrl-C head with INTERRUPTED in every format, never PASS.
    let report = LoadReport { interrupted: true, ..report };
    let terminal = oauth_harness::report::load::terminal(&report, false);
    assert!(terminal.contains("result: INTERRUPTED (200 requests before Ctrl-C; 2 limits crossed;"), "{terminal}");
    assert!(oauth_harness::report::load::markdown(&report).contains("— ⚠️ INTERRUPTED"));
    assert!(
        oauth_harness::report::load::html(&report)
            .contains("<span id='verdict' class='INTERRUPTED'>INTERRUPTED</span>")
    );
    assert!(oauth_harness::report::load::junit(&report).contains("the profile ran to its end"));
}

#[test]
fn validate_checks_load_profiles_too() {
    let o = run_bin(&["validate", "scenarios"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("5 load profiles"), "{}", stdout(&o));
    let dir = tempfile::tempdir().unwrap();
    profile(dir.path(), "bad", "load:\n  path: token\n  client: confidential\n  thresholds: { p95_ms: 0 }\n");
    profile(dir.path(), "client", "load:\n  path: token\n  client: nobody\n");
    let o = run_bin(&["validate", dir.path().to_str().unwrap(), "--target", "fixtures/targets/local-mock.yaml"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("bad.yaml:4:25") && err.contains("p95_ms must be greater than zero"), "{err}");
    assert!(err.contains("the target has no client `nobody`"), "{err}");
}

#[test]
fn an_unreachable_endpoint_is_a_runtime_error_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of the loopback: the probe request is refused.
    let target = dir.path().join("t.yaml");
    std::fs::write(
        &target,
        "issuer: http://127.0.0.1:9\ntoken_endpoint: http://127.0.0.1:9/connect/token\nclients:\n  confidential: { client_id: a, client_secret: b }\n",
    )
    .unwrap();
    let o = run_bin(&["load", "scenarios/load/token-secret.yaml", "--target", target.to_str().unwrap(), "-q"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 3, "{err}");
    assert!(err.contains("http://127.0.0.1:9/connect/token cannot be reached (connect)"), "{err}");
    assert!(stdout(&o).is_empty(), "no report of a run that did not happen");
}
