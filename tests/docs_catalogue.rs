//! docs/checks.md is the catalogue as `oauth-harness checks --markdown` prints it: a check added,
//! renamed or re-sectioned without the page fails here. `UPDATE_DOCS=1 cargo test --test
//! docs_catalogue` rewrites the page (review the diff before committing).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

use std::process::Command;

#[test]
fn docs_checks_md_is_the_catalogue() {
    let out = Command::new(env!("CARGO_BIN_EXE_oauth-harness")).args(["checks", "--markdown"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &printed).unwrap();
    }
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(page == printed, "docs/checks.md differs from `oauth-harness checks --markdown`: rerun with UPDATE_DOCS=1");
    // Every check the page lists names its section with a link.
    for line in page.lines().filter(|l| l.starts_with("| `") && (l.contains("| MUST |") || l.contains("| SHOULD |"))) {
        assert!(line.contains("](https://"), "{line}");
    }
}
