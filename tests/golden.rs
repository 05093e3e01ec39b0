//! Golden files for bad input: every file under tests/bad-input/ sits beside its `.expected`
//! output (exit code, then stderr), and this one driver checks them all. A new bad input is two
//! files; `UPDATE_GOLDEN=1 cargo test --test golden` writes the `.expected` of a new one (review it).
//!
//! tests/bad-input/*.yaml are scenarios (`validate FILE`); target/ files are given to
//! `validate --target`; profile/ files to `validate`; clients/ files to `mock identity-server
//! --clients` (which must refuse them before listening).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bin, repo_path};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The command that reads `file` as the user would, by the folder it is in.
fn command_for(kind: &str, rel: &str) -> Vec<String> {
    let args: Vec<&str> = match kind {
        "target" => vec!["validate", "tests/inputs/discovery-only.yaml", "--target", rel],
        "clients" => vec!["mock", "identity-server", "--clients", rel],
        _ => vec!["validate", rel],
    };
    args.into_iter().map(String::from).collect()
}

/// Runs `args`, killing the process if it has not finished in 20 s (a clients file that is
/// wrongly accepted would start a mock that waits for Ctrl-C).
fn run(args: &[String]) -> (i32, String) {
    let mut child =
        bin().args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            return (-1, "did not finish in 20 s: the input was accepted".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_bad_input_gives_its_expected_message() {
    let root = repo_path("tests/bad-input");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (kind, dir) in [
        ("scenario", root.clone()),
        ("target", root.join("target")),
        ("profile", root.join("profile")),
        ("clients", root.join("clients")),
    ] {
        for file in yaml_files(&dir) {
            let rel = file.strip_prefix(repo_path("")).unwrap().to_string_lossy().into_owned();
            let (code, err) = run(&command_for(kind, &rel));
            assert!(!err.contains("panicked"), "{rel}: {err}");
            let got = format!("exit {code}\n{err}");
            let expected_path = file.with_extension("expected");
            if update && !expected_path.exists() {
                std::fs::write(&expected_path, &got).unwrap();
            }
            let expected = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|_| panic!("{rel} has no {} (UPDATE_GOLDEN=1 writes it)", expected_path.display()));
            if got != expected {
                mismatches.push(format!("── {rel}\n── expected:\n{expected}\n── got:\n{got}"));
            }
            checked += 1;
        }
    }
    assert!(mismatches.is_empty(), "{} of {checked} golden files differ:\n{}", mismatches.len(), mismatches.join("\n"));
    assert!(checked >= 20, "only {checked} golden files");
}
