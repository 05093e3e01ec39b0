//! The shipped suites, and the load command, against two real, independently written
//! authorization servers, each started once for this test binary on 127.0.0.1:
//! - panva's oidc-provider (OpenID Certified), fixtures/servers/oidc-provider: every suite;
//! - django-oauth-toolkit (PyPI), fixtures/servers/django-oauth-toolkit, configured as its own
//!   documentation suggests: the identity-server, introspection and expiry suites.
//!
//! The checks that fail or warn against each must be exactly its known-deviations list, case by
//! case (`run --known-deviations … --strict` exits 0).
//!
//! Needs Node.js and the oidc-provider fixture's packages (`npm ci` in that folder), and Python 3
//! with the DOT fixture's venv (`python3 -m venv .venv && .venv/bin/pip install -r
//! requirements.txt` there); `.ci/run` does both.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{code, load_with_json_report, repo_path, run_bin, stdout};
use serde_json::Value;

struct Server {
    _child: Child,
    target: PathBuf,
    _dir: tempfile::TempDir,
}

/// One server for the whole binary; it exits when this process does (it watches its stdin).
fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Server> = OnceLock::new();
    let dir = repo_path("fixtures/servers/oidc-provider");
    let installed = dir.join("node_modules/oidc-provider").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let install = format!("Install Node.js 20 or later and run `npm ci` in {}", dir.display());
    common::tool_available("Node.js and oidc-provider", installed, &install).then(|| SERVER.get_or_init(start))
}

/// The suite run and the load run share the server: one at a time, so CIBA timings stay honest.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn start() -> Server {
    let dir = repo_path("fixtures/servers/oidc-provider");
    let mut child = Command::new("node")
        .args(["server.js", "--port", "0", "--exit-with-stdin"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (Node.js 20 or later)");
    // The first line names the issuer; bounded by the read itself (the server prints it or dies).
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep draining: a closed pipe would kill the server on its next write (EPIPE).
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let issuer = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("unexpected: {line:?}")).to_string();
    wait_for_health(&issuer);

    // The shipped target file, pointed at this server's port, with its relative paths made absolute.
    let shipped = std::fs::read_to_string(repo_path("fixtures/targets/oidc-provider.yaml")).unwrap();
    let fixtures = repo_path("fixtures");
    let text = shipped
        .replace("https://127.0.0.1:8444", &issuer)
        .replace("../pki/", &format!("{}/pki/", fixtures.display()))
        .replace("../keys/", &format!("{}/keys/", fixtures.display()));
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("oidc-provider.yaml");
    std::fs::write(&target, text).unwrap();
    Server { _child: child, target, _dir: tmp }
}

/// django-oauth-toolkit, from its fixture's venv.
fn dot_server() -> Option<&'static Server> {
    static SERVER: OnceLock<Server> = OnceLock::new();
    let dir = repo_path("fixtures/servers/django-oauth-toolkit");
    let installed = dir.join(".venv/bin/python").is_file();
    let install = format!(
        "Install Python 3 and run `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` in {}",
        dir.display()
    );
    common::tool_available("django-oauth-toolkit", installed, &install).then(|| SERVER.get_or_init(start_dot))
}

fn start_dot() -> Server {
    let dir = repo_path("fixtures/servers/django-oauth-toolkit");
    let mut child = Command::new(dir.join(".venv/bin/python"))
        .args(["server.py", "--port", "0", "--exit-with-stdin"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the fixture's venv runs");
    // The first line names the origin, printed once the socket accepts connections.
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let origin = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("unexpected: {line:?}")).to_string();
    let shipped = std::fs::read_to_string(repo_path("fixtures/targets/django-oauth-toolkit.yaml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("django-oauth-toolkit.yaml");
    std::fs::write(&target, shipped.replace("http://127.0.0.1:8555", &origin)).unwrap();
    Server { _child: child, target, _dir: tmp }
}

/// Polls `/health` over TLS (trusting the test CA) for at most 30 s.
fn wait_for_health(issuer: &str) {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(repo_path("fixtures/pki/ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(2)).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    loop {
        let ok = runtime
            .block_on(async { client.get(format!("{issuer}/health")).send().await.is_ok_and(|r| r.status() == 200) });
        if ok {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "oidc-provider not healthy after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `suites` against `server` with its known-deviations list and `--strict`: exit 0 means
/// every failure is listed and every listed one still fails.
fn gate(server: &Server, suites: &[&str], known: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let known = repo_path(known);
    let args: Vec<&str> = ["run"]
        .into_iter()
        .chain(suites.iter().copied())
        .chain(["--target", server.target.to_str().unwrap(), "--known-deviations", known.to_str().unwrap()])
        .chain(["--strict", "-q", "--report-json", json.to_str().unwrap()])
        .chain(extra.iter().copied())
        .collect();
    let o = run_bin(&args);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).unwrap();
    assert_eq!(report["summary"]["errors"], 0, "runtime errors against the real server:\n{}", stdout(&o));
    let stale = &report["known_deviations"]["stale"];
    assert_eq!(
        code(&o),
        0,
        "the server no longer fails exactly {}: new failures above, stale entries: {stale:#}\n{}",
        known.display(),
        stdout(&o)
    );
    assert!(report["summary"]["known"].as_u64().unwrap() > 0, "the list applied");
    report
}

#[test]
fn oidc_provider_fails_only_its_known_deviations_and_all_of_them() {
    let Some(server) = server() else { return };
    let _one = exclusive();
    let report = gate(server, &["scenarios"], "fixtures/servers/oidc-provider/known-deviations.yaml", &[]);
    // Most of the suite holds: the real server is not a wall of failures.
    assert!(report["summary"]["passed"].as_u64().unwrap() >= 50, "{}", report["summary"]);
}

#[test]
fn django_oauth_toolkit_fails_only_its_known_deviations_and_all_of_them() {
    let Some(server) = dot_server() else { return };
    let _one = exclusive();
    // DOT stores client secrets hashed (Django's PBKDF2, its default): every token request costs
    // about a quarter of a second, so the case that mints 2000 tokens would take minutes.
    let report = gate(
        server,
        &["scenarios/identity-server", "scenarios/introspection", "scenarios/expiry"],
        "fixtures/servers/django-oauth-toolkit/known-deviations.yaml",
        &["--skip", "token-outlives-many-others"],
    );
    assert!(report["summary"]["passed"].as_u64().unwrap() >= 12, "{}", report["summary"]);
}

#[test]
fn load_runs_against_the_real_server() {
    let Some(server) = server() else { return };
    let _one = exclusive();
    let (o, r) = load_with_json_report(&[
        "scenarios/load/mixed.yaml",
        "--target",
        server.target.to_str().unwrap(),
        "--duration",
        "2s",
        "--users",
        "4",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // Over TLS, with a jti replay check on the server side: every path works, nothing fails.
    for path in r["paths"].as_array().unwrap() {
        assert!(path["requests"].as_u64().unwrap() > 0, "{}", path["name"]);
        assert_eq!(path["errors"], 0, "{}: {}", path["name"], path["failures"]);
        assert_eq!(path["transport"], "hyper+rustls", "TLS with the target's CA goes through hyper over rustls");
    }
}
