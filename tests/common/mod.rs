//! Shared by the integration tests: the binary, mocks, target files.
#![allow(dead_code)]

pub mod defect_tables;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use oauth_harness::mock::IdentityServerMock;
use oauth_harness::mock::identity_server::{Config, MockClients};

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-harness"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    cmd
}

/// A child process that is ended when this is dropped — also when the test panics first — so no
/// test leaves a mock or a harness running: SIGINT first (what a user's Ctrl-C sends; the
/// processes under test end cleanly on it), SIGKILL if it has not ended 5 s later.
pub struct Reaped(Option<Child>);

impl Reaped {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// Waits for the process to end by itself and collects what it printed.
    pub fn output(mut self) -> Output {
        self.0.take().expect("not yet collected").wait_with_output().expect("the child is waited for")
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("not yet collected")
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("not yet collected")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let Some(child) = self.0.as_mut() else { return };
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn run_bin(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

/// `oauth-harness load ARGS -q --report-json <a temporary file>`: the process output and the
/// report it wrote (a missing or invalid report panics with what the run printed).
pub fn load_with_json_report(args: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("load.json");
    let o = run_bin(&[&["load"], args, &["-q", "--report-json", report.to_str().unwrap()]].concat());
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no valid JSON report (exit {:?}): {}{}", o.status, stdout(&o), stderr(&o)));
    (o, json)
}

/// Whether a tool a test needs beyond Rust (Chromium, Node.js, a Python package) is here. When it
/// is not, the test says so loudly on stderr and is skipped — unless `OAUTH_HARNESS_REQUIRE_TOOLS`
/// is set (as `.ci/run` does, after installing them), where a missing tool fails the test.
pub fn tool_available(what: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("OAUTH_HARNESS_REQUIRE_TOOLS").is_some() {
        panic!("{what} is required (OAUTH_HARNESS_REQUIRE_TOOLS is set) but missing: {install}");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: this test needs {what}, which is not installed here. {install} (.ci/run does.) ***\n"
    );
    false
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Starts the Identity Server mock in this process.
pub async fn start_mock(config: Config) -> IdentityServerMock {
    IdentityServerMock::start(config, None).await.expect("mock starts")
}

/// A target file for `mock`, with the `confidential` client's secret read from `secret_env`.
pub fn write_target(dir: &Path, mock: &IdentityServerMock, secret_env: Option<&str>) -> PathBuf {
    let clients: &MockClients = &mock.config().clients;
    let mut yaml = format!(
        "issuer: {issuer}\nresource:\n  url: {issuer}/api/implant\n  insufficient_scope: {scope}\nclients:\n",
        issuer = mock.issuer(),
        scope = clients.insufficient_scope.clone().unwrap_or_default()
    );
    for c in &clients.clients {
        if let Some(key) = &c.key {
            let pem = repo_path(&format!("fixtures/keys/{key}/private.pem"));
            yaml.push_str(&format!(
                "  {}:\n    client_id: {}\n    auth: private_key_jwt\n    private_key: {}\n    scope: {}\n",
                c.name,
                c.client_id,
                pem.display(),
                c.default_scope.clone().unwrap_or_default()
            ));
            continue;
        }
        let secret = match secret_env {
            Some(var) if c.name == "confidential" => format!("\"${{env:{var}}}\""),
            _ => serde_json::to_string(&c.client_secret).unwrap(),
        };
        yaml.push_str(&format!(
            "  {}:\n    client_id: {}\n    client_secret: {}\n    auth: {}\n    scope: {}\n",
            c.name,
            serde_json::to_string(&c.client_id).unwrap(),
            secret,
            c.auth_methods[0],
            c.default_scope.clone().unwrap_or_default()
        ));
    }
    let path = dir.join("target.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Replaces what changes from run to run (ports, durations, timestamps) for snapshots.
pub fn normalise(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"\b\d+ ms\b", "N ms"),
        (r"in \d+\.\d+ s\b", "in N s"),
        (r"— \d+\.\d+ s against", "— N s against"),
        (r#"time="[0-9.]+""#, r#"time="N""#),
        (r#""(duration|elapsed_ms)": \d+"#, r#""$1": N"#),
        (r#""started_at": "[^"]+""#, r#""started_at": "TIME""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="TIME""#),
        (r"\[redacted sha256:[0-9a-f]{8}\]", "[redacted sha256:FP]"),
        // …and as a form body spells it (a random wrong secret's fingerprint changes every run).
        (r"%5Bredacted\+sha256%3A[0-9a-f]{8}%5D", "%5Bredacted+sha256%3AFP%5D"),
        // Header pairs are printed over several lines in the JSON report.
        (r#""date",(\s*)"[^"]+""#, r#""date",$1"DATE""#),
        (r#""content-length",(\s*)"\d+""#, r#""content-length",$1"N""#),
        // The same, as the HTML report prints headers and times.
        (r"(?m)^date: .*$", "date: DATE"),
        (r"(?m)^content-length: \d+$", "content-length: N"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME"),
        (r"<dd>\d+ ms</dd>", "<dd>N ms</dd>"),
        // Temporary folders of a test.
        (r"/tmp/\.tmp[A-Za-z0-9]+/", "TMP/"),
    ];
    let mut out = text.to_string();
    for (pattern, replacement) in rules {
        out = regex_lite::Regex::new(pattern).unwrap().replace_all(&out, *replacement).into_owned();
    }
    out
}
