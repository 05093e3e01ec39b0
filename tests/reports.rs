//! HTML, Markdown and evidence: rendered for real (headless Chromium), tamper-evident, redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{code, normalise, run_bin, stderr, stdout};

/// A run with passes, failures and warnings: the SHOULD-only suite warns on a refresh token, the
/// refusals suite fails on a 400 where 401 is due.
fn mixed_run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "tests/inputs/should-only.yaml",
        "scenarios/identity-server/token-errors.yaml",
        "--mock-defect",
        "refresh-token-issued",
        "--mock-defect",
        "invalid-client-400",
    ];
    args.extend_from_slice(extra);
    let o = run_bin(&args);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let _ = dir;
    o
}

fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("OAUTH_HARNESS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
}

#[test]
fn html_report_renders_in_headless_chromium_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    mixed_run(dir.path(), &["--report-html", html.to_str().unwrap()]);
    let browser = chromium();
    if !common::tool_available("Chromium", browser.exists(), "Install Debian's `chromium`") {
        return;
    }

    // Every fetch the page could make (loopback included) goes through this proxy, which records
    // the request lines; bounded to the test's duration.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recorder = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            let deadline = std::time::Instant::now() + Duration::from_secs(150);
            let mut readers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match proxy.accept() {
                    // Chromium may open a connection ahead of need (a preconnect) and send nothing
                    // on it, or send later: each connection is read until its first bytes, its
                    // end, or the end of the test. One that carried no request fetched nothing.
                    Ok((mut conn, _)) => {
                        let (seen, stop) = (seen.clone(), stop.clone());
                        readers.push(std::thread::spawn(move || {
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 512];
                            while !stop.load(std::sync::atomic::Ordering::SeqCst)
                                && std::time::Instant::now() < deadline
                            {
                                match conn.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(n) => {
                                        let first = String::from_utf8_lossy(&buf[..n]);
                                        seen.lock().unwrap().push(first.lines().next().unwrap_or("").to_string());
                                        return;
                                    }
                                    Err(e)
                                        if e.kind() == std::io::ErrorKind::WouldBlock
                                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                                    Err(_) => return,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for reader in readers {
                let _ = reader.join();
            }
        })
    };
    let profile = dir.path().join("profile");
    let screenshot = dir.path().join("report.png");
    let flags = |extra: &str| {
        vec![
            "60".to_string(),
            browser.display().to_string(),
            "--headless".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--proxy-server={proxy_url}"),
            "--proxy-bypass-list=<-loopback>".into(),
            extra.to_string(),
            format!("file://{}", html.display()),
        ]
    };
    let dom = std::process::Command::new("timeout").args(flags("--dump-dom")).output().unwrap();
    assert!(dom.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let shot = std::process::Command::new("timeout")
        .args(flags(&format!("--screenshot={}", screenshot.display())))
        .arg("--window-size=1280,1800")
        .output()
        .unwrap();
    assert!(shot.status.success(), "chromium --screenshot: {}", String::from_utf8_lossy(&shot.stderr));

    // The DOM after the page's script ran: counts and the failed rule are there.
    assert!(dom.contains(r#"id="failed-count" data-count="2""#), "failed count in {dom:.2000}");
    assert!(dom.contains(r#"id="warned-count" data-count="1""#), "warned count");
    assert!(dom.contains(r#"id="passed-count" data-count="7""#), "passed count");
    assert!(dom.contains(r#"data-check="rfc6749.5.2.invalid-client-401""#) && dom.contains("RFC 6749 §5.2"));
    assert!(dom.contains(r#"<html lang="en" class="js">"#), "the inline script ran");
    assert!(dom.contains(">FAILED<"), "verdict banner");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot ({} bytes)", png.len());
    assert!(
        dom.contains("Content-Security-Policy") && dom.contains("default-src 'none'"),
        "the page forbids itself any fetch"
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    recorder.join().unwrap();
    // Chromium itself phones home (component updates, time, accounts) whatever the flags; those
    // go to Google hosts. Anything else would be the report's doing.
    let browser_own =
        |line: &str| ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"].iter().any(|h| line.contains(h));
    let from_page: Vec<String> = seen.lock().unwrap().iter().filter(|l| !browser_own(l)).cloned().collect();
    assert!(from_page.is_empty(), "the report made network requests: {from_page:?}");
}

#[test]
fn markdown_summary_puts_failures_first() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("summary.md");
    mixed_run(dir.path(), &["--report-md", md.to_str().unwrap()]);
    let text = std::fs::read_to_string(&md).unwrap();
    let fail = text.find("| ❌ |").expect("a failure row");
    let warn = text.find("| ⚠️ |").expect("a warning row");
    assert!(fail < warn, "failures before warnings:\n{text}");
    insta::assert_snapshot!("markdown_summary", normalise(&text));
}

#[test]
fn markdown_dash_appends_to_the_github_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let o = common::bin()
        .args(["run", "scenarios/identity-server/resource.yaml", "--report-md", "-"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("earlier step\n## oauth-harness: ✅ PASSED"), "{text}");
}

#[test]
fn html_skeleton_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let o = run_bin(&[
        "run",
        "scenarios/identity-server/token-errors.yaml",
        "--mock-defect",
        "invalid-client-400",
        "--filter",
        "reject-wrong-secret-*",
        "--report-html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    insta::assert_snapshot!("html_skeleton", normalise(&std::fs::read_to_string(&html).unwrap()));
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(all_files(&p)) } else { out.push(p) }
    }
    out.sort();
    out
}

#[test]
fn evidence_verify_detects_a_one_byte_change_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    mixed_run(dir.path(), &["--evidence", ev.to_str().unwrap()]);
    let o = run_bin(&["evidence", "verify", ev.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "fresh evidence verifies: {}", stdout(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["harness_version"], env!("CARGO_PKG_VERSION"));
    assert!(meta["git_commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(meta["target_issuer"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let files = all_files(&ev);
    assert!(files.iter().any(|f| f.ends_with("scenarios/identity-server/token-errors.yaml")), "{files:?}");
    for file in &files {
        let original = std::fs::read(file).unwrap();
        let mut changed = original.clone();
        changed[0] ^= 0x20;
        std::fs::write(file, &changed).unwrap();
        let o = run_bin(&["evidence", "verify", ev.to_str().unwrap()]);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(code(&o), 1, "a changed {name} goes unnoticed: {}", stdout(&o));
        assert!(stdout(&o).contains(&name), "the report names {name}: {}", stdout(&o));
        std::fs::write(file, &original).unwrap();
    }
    std::fs::write(ev.join("added.txt"), "x").unwrap();
    let o = run_bin(&["evidence", "verify", ev.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("unexpected: added.txt"), "{}", stdout(&o));
}

#[test]
fn signed_evidence_verifies_with_the_right_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    mixed_run(
        dir.path(),
        &["--evidence", ev.to_str().unwrap(), "--evidence-key", "fixtures/keys/backend-es384/private.pem"],
    );
    let o = run_bin(&["evidence", "verify", ev.to_str().unwrap(), "--jwk", "fixtures/keys/backend-es384/jwk.json"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("signature:  valid"), "{}", stdout(&o));
    let o = run_bin(&["evidence", "verify", ev.to_str().unwrap(), "--jwk", "fixtures/keys/backend-rs384/jwk.json"]);
    assert_eq!(code(&o), 1, "another key's JWK must not verify: {}", stdout(&o));
    assert!(stdout(&o).contains("signature:  INVALID"), "{}", stdout(&o));
}

#[test]
fn completions_are_generated() {
    let o = run_bin(&["completions", "bash"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("oauth-harness") && stdout(&o).contains("--report-html"));
}

#[test]
fn quiet_shows_only_failures_and_verbose_shows_exchanges() {
    let quiet = run_bin(&["run", "scenarios/identity-server", "--mock-defect", "invalid-client-400", "-q"]);
    let out = stdout(&quiet);
    assert!(out.contains("FAIL  reject-wrong-secret-basic") && !out.contains("PASS "), "{out}");
    let verbose = run_bin(&["run", "scenarios/identity-server/resource.yaml", "--filter", "resource-no-token", "-v"]);
    let out = stdout(&verbose);
    assert!(
        out.contains("> GET http://127.0.0.1:") && out.contains("< 401") && out.contains("< www-authenticate: Bearer"),
        "{out}"
    );
}

#[test]
fn load_html_report_renders_in_headless_chromium() {
    // A short load run whose p95 threshold cannot hold: the page must say FAILED and show it.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("impossible.yaml");
    std::fs::write(
        &profile,
        "load:\n  path: token\n  client: confidential\n  users: 2\n  thresholds: { p95_ms: 0.001, max_error_rate: 0.5 }\n",
    )
    .unwrap();
    let html = dir.path().join("load.html");
    let o = run_bin(&[
        "load",
        profile.to_str().unwrap(),
        "--duration",
        "2s",
        "-q",
        "--report-html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let browser = chromium();
    if !common::tool_available("Chromium", browser.exists(), "Install Debian's `chromium`") {
        return;
    }
    let screenshot = dir.path().join("load.png");
    let run = |extra: &[String]| {
        let out = std::process::Command::new("timeout")
            .args(["60", browser.to_str().unwrap(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".into()]);
    run(&[format!("--screenshot={}", screenshot.display()), "--window-size=1280,1600".into()]);

    assert!(dom.contains(r#"<span id="verdict" class="FAILED">FAILED</span>"#), "verdict in {dom:.1500}");
    let requests: u64 = dom
        .split(r#"<span id="total-requests">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .expect("a total request count");
    assert!(requests > 0);
    assert!(
        dom.contains("p95_ms ≤ 0.001 (all)") && dom.contains(r#"<td class="FAIL">FAIL</td>"#),
        "the failed threshold"
    );
    assert_eq!(dom.matches("<svg").count(), 3, "rate, latency and percentile charts");
    assert!(!dom.contains("<script"), "no script: nothing to fetch, nothing to run");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot ({} bytes)", png.len());
}
