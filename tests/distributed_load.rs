//! Load beyond one process (issue 17): shards run as separate processes against one mock with a
//! shared `--start-at`, their reports merged exactly; merge refuses what it cannot add up; a
//! baseline with a regression limit catches a slower release; JUnit for CI gates.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use common::Reaped;

use common::{bin, code, stderr, stdout};
use serde_json::Value;

/// `mock identity-server` as a process; ended on drop.
struct Mock {
    _child: Reaped,
    port: u16,
}

fn mock() -> Mock {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Reaped::new(
        bin().args(["mock", "identity-server", "--port", &port.to_string()]).stdout(Stdio::piped()).spawn().unwrap(),
    );
    // The banner ends with the Ctrl-C line: the mock listens by then.
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.take(20).map_while(Result::ok) {
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    Mock { _child: child, port }
}

fn target(dir: &Path, mock: &Mock) -> String {
    let keys = format!("{}/", common::repo_path("fixtures/keys").display());
    let text = std::fs::read_to_string(common::repo_path("fixtures/targets/local-mock.yaml"))
        .unwrap()
        .replace("8080", &mock.port.to_string())
        .replace("../keys/", &keys);
    let path = dir.join("target.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// private_key_jwt, so the mock's jti replay check sees every assertion of every shard; a p95
/// ceiling no run can meet, so only the merge — which judges the thresholds — fails.
const PROFILE: &str = "load:
  path: token
  client: backend-rs384
  users: 6
  duration: 2s
  assertion_pool: 3000
  thresholds:
    p95_ms: 0.001
    max_error_rate: 0.01
";

fn start_in(seconds: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[test]
fn three_shards_with_a_shared_start_merge_into_the_profile_exactly() {
    let mock = mock();
    let dir = tempfile::tempdir().unwrap();
    let target = target(dir.path(), &mock);
    let profile = write(dir.path(), "pkjwt.yaml", PROFILE);
    let start = start_in(8);
    let shards: Vec<(Child, String)> = (1..=3)
        .map(|k| {
            let report = dir.path().join(format!("shard-{k}.json")).display().to_string();
            let child = bin()
                .args(["load", &profile, "--target", &target, "--shard", &format!("{k}/3"), "--start-at", &start])
                .args(["-q", "--report-json", &report])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, report)
        })
        .collect();
    let mut reports = Vec::new();
    for (child, report) in shards {
        let o = child.wait_with_output().unwrap();
        // A shard does not judge the thresholds: it passes while the merge will not.
        assert_eq!(code(&o), 0, "a shard: {}{}", stdout(&o), stderr(&o));
        reports.push(report);
    }
    let shard: Vec<Value> = reports.iter().map(|r| json(r)).collect();
    let users: Vec<u64> = shard.iter().map(|s| s["settings"]["users"].as_u64().unwrap()).collect();
    assert_eq!(users, [2, 2, 2], "6 users over 3 shards");
    let starts: Vec<u64> = shard.iter().map(|s| s["traffic_started_unix_ms"].as_u64().unwrap()).collect();
    let start_ms =
        humantime::parse_rfc3339(&start).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    for s in &starts {
        assert!(*s >= start_ms && *s < start_ms + 1000, "each shard starts at --start-at: {starts:?} vs {start_ms}");
    }
    // Every assertion of every shard was accepted: no jti was seen twice by the replay check.
    for s in &shard {
        assert_eq!(s["total"]["errors"], 0, "{}", s["total"]["failures"]);
        assert!(s["total"]["requests"].as_u64().unwrap() > 10);
    }

    let merged_path = dir.path().join("merged.json").display().to_string();
    let junit = dir.path().join("merged.xml").display().to_string();
    let mut args = vec!["load".to_string(), "merge".into()];
    args.extend(reports.iter().cloned());
    args.extend([
        "--report-json".into(),
        merged_path.clone(),
        "--report-junit".into(),
        junit.clone(),
        "--no-color".into(),
    ]);
    let o = bin().args(&args).output().unwrap();
    assert_eq!(code(&o), 1, "the p95 ceiling is crossed by the merged figures: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("FAIL  p95_ms ≤ 0.001 (all)"), "{}", stdout(&o));
    let merged = json(&merged_path);
    let sum: u64 = shard.iter().map(|s| s["total"]["requests"].as_u64().unwrap()).sum();
    assert_eq!(merged["total"]["requests"].as_u64().unwrap(), sum);
    assert_eq!(merged["merged_from"], 3);
    assert_eq!(merged["settings"]["users"], 6);

    // The merged percentiles are those of one histogram holding every sample.
    let mut all = oauth_harness::load::stats::new_histogram();
    for s in &shard {
        for pair in s["paths"][0]["histogram"]["values"].as_array().unwrap() {
            all.record_n(pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()).unwrap();
        }
    }
    for (key, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
        let expected = all.value_at_quantile(q) as f64 / 1000.0;
        let got = merged["total"]["latency_ms"][key].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-9, "{key}: merged {got}, one histogram {expected}");
    }
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains(r#"testcase name="threshold p95_ms ≤ 0.001 (all)""#) && xml.contains("<failure"), "{xml}");
    assert!(xml.contains(r#"testcase name="threshold max_error_rate ≤ 0.01 (all)" classname="thresholds"/>"#), "{xml}");
}

/// A shard report for merge-refusal cases, written by a real (tiny) run.
fn one_shard(dir: &Path, profile: &str, shard: &str, name: &str) -> String {
    let report = dir.join(name).display().to_string();
    let o = bin()
        .args(["load", profile, "--shard", shard, "--duration", "1s", "--users", "2", "-q", "--report-json", &report])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    report
}

#[test]
fn merge_refuses_what_does_not_add_up_to_one_profile() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "load:\n  path: token\n  client: confidential\n");
    let b = write(dir.path(), "b.yaml", "load:\n  path: token\n  client: confidential\n  users: 3\n");
    let a1 = one_shard(dir.path(), &a, "1/2", "a1.json");
    let a2 = one_shard(dir.path(), &a, "2/2", "a2.json");
    let b2 = one_shard(dir.path(), &b, "2/2", "b2.json");
    let merge = |files: &[&str]| bin().args(["load", "merge"]).args(files).output().unwrap();

    let o = merge(&[&a1, &a2]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // A shard written by the previous version (v2: its pools under `assertion_pools`) still merges.
    let text = std::fs::read_to_string(&a2).unwrap();
    assert!(text.contains("oauth-harness/load-report/v3") && text.contains("\"signing_pools\""), "{text}");
    let v2 = write(
        dir.path(),
        "v2.json",
        &text.replace("load-report/v3", "load-report/v2").replace("\"signing_pools\"", "\"assertion_pools\""),
    );
    let o = merge(&[&a1, &v2]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // A shard stopped by Ctrl-C makes the merged figures partial: incomplete, and the note names it.
    assert!(text.contains("\"interrupted\": false"), "{text}");
    let cut = write(dir.path(), "cut.json", &text.replace("\"interrupted\": false", "\"interrupted\": true"));
    let o = merge(&[&a1, &cut]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("result: INTERRUPTED (")
            && stdout(&o).contains("partial: ")
            && stdout(&o).contains("cut.json"),
        "{}",
        stdout(&o)
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&a1], "shard 2 of 2 missing"),
        (vec![&a1, &a1], "shard 1 appears twice"),
        (vec![&a1, &b2], "is a run of profile `b`, the others of `a`"),
    ];
    for (files, message) in cases {
        let o = merge(&files);
        assert_eq!(code(&o), 2, "{files:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{files:?}: {}", stderr(&o));
    }
    // Another schema, and not a report at all: refused with where.
    let old = write(
        dir.path(),
        "old.json",
        &std::fs::read_to_string(&a2).unwrap().replace("load-report/v3", "load-report/v1"),
    );
    let o = merge(&[&a1, &old]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is a `oauth-harness/load-report/v1` report"), "{}", stderr(&o));
    let broken =
        write(dir.path(), "broken.json", "{\n  \"format\": \"oauth-harness/load-report/v3\",\n  \"profile\": 3\n}\n");
    let o = merge(&[&a1, &broken]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("broken.json:3:"), "{}", stderr(&o));
}

#[test]
fn a_baseline_p95_limit_catches_a_slower_release_and_holds_without_it() {
    let dir = tempfile::tempdir().unwrap();
    // p95 may double from one run to the next on a busy machine; 40 ms more per answer is a
    // slower release by any measure.
    let profile = write(
        dir.path(),
        "gate.yaml",
        "load:\n  path: token\n  client: confidential\n  users: 4\n  duration: 2s\n  regression: { p95: 100%, rps: -90% }\n",
    );
    let run = |extra: &[&str], report: &str| {
        let mut args = vec!["load", &profile, "-q", "--no-color", "--report-json", report];
        args.extend_from_slice(extra);
        bin().args(&args).output().unwrap()
    };
    let base = dir.path().join("base.json").display().to_string();
    assert_eq!(code(&run(&[], &base)), 0);

    let next = dir.path().join("next.json").display().to_string();
    let o = run(&["--baseline", &base], &next);
    assert_eq!(code(&o), 0, "the same release holds: {}", stdout(&o));
    assert!(stdout(&o).contains("vs baseline") && stdout(&o).contains("PASS  p95 +100% at most"), "{}", stdout(&o));

    let slow = dir.path().join("slow.json").display().to_string();
    let junit = dir.path().join("slow.xml").display().to_string();
    let o = run(&["--baseline", &base, "--mock-latency", "40ms", "--report-junit", &junit], &slow);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FAIL  p95 +100% at most") && stdout(&o).contains("crossed against the baseline"),
        "{}",
        stdout(&o)
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains(r#"testcase name="regression p95 +100% at most (all)""#) && xml.contains("<failure"), "{xml}");
    let report = json(&slow);
    let row = report["baseline"]["limits"].as_array().unwrap().iter().find(|l| l["metric"] == "p95").unwrap().clone();
    assert!(row["change"].as_f64().unwrap() > 1.0, "{row}");
}

#[test]
fn shards_and_start_times_are_checked_before_any_traffic() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--shard".into(), "4/3".into()], "shard 4 of 3 does not exist"),
        (vec!["--shard".into(), "two".into()], "is not a shard"),
        (vec!["--shard".into(), "17/17".into(), "--users".into(), "16".into()], "would have no user"),
        (vec!["--start-at".into(), "2020-01-01T00:00:00Z".into()], "is in the past"),
        (vec!["--start-at".into(), start_in(7200)], "more than an hour"),
        (vec!["--start-at".into(), "tomorrow".into()], "is not an RFC 3339 time"),
        (vec!["--shards".into(), "3".into()], "needs JOB_COMPLETION_INDEX"),
    ];
    for (extra, message) in cases {
        let o = bin()
            .args(["load", "scenarios/load/token-secret.yaml"])
            .args(&extra)
            .env_remove("JOB_COMPLETION_INDEX")
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{extra:?}: {}", stderr(&o));
    }
}

#[test]
fn an_indexed_job_index_picks_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json").display().to_string();
    let o = bin()
        .args(["load", "scenarios/load/token-secret.yaml", "--shards", "4", "--duration", "1s", "-q"])
        .args(["--report-json", &report])
        .env("JOB_COMPLETION_INDEX", "2")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = json(&report);
    assert_eq!(r["shard"]["index"], 3, "index 2 (0-based) is shard 3");
    assert_eq!(r["settings"]["users"], 4, "16 users over 4 shards");
}
