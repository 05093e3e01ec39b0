//! The JSON reports (run and load) match the JSON Schemas published in docs/schemas/: real reports,
//! written by the binary, validated by an independent JSON Schema implementation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{load_with_json_report, repo_path, run_bin};

fn validator(name: &str) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path(&format!("docs/schemas/{name}"))).unwrap()).unwrap();
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, report: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(report).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{what} does not match its schema:\n{}", errors.join("\n"));
}

#[test]
fn run_reports_match_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    // Passing, failing (a defect) and skipped cases, exchanges with setup steps, CIBA polls.
    for extra in [&[][..], &["--mock-defect", "no-cache-headers"][..]] {
        let o = run_bin(
            &[
                &[
                    "run",
                    "scenarios/identity-server",
                    "scenarios/introspection",
                    "-q",
                    "--report-json",
                    json.to_str().unwrap(),
                ][..],
                extra,
            ]
            .concat(),
        );
        assert!(common::code(&o) <= 1, "{}", common::stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_valid(&validator("run-report.schema.json"), &report, "the run report");
    }
    // The schema is not vacuous: a report missing its summary is refused.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut broken = report.clone();
    broken.as_object_mut().unwrap().remove("summary");
    assert!(!validator("run-report.schema.json").is_valid(&broken));
}

#[test]
fn load_reports_match_the_published_schema() {
    let (_, report) = load_with_json_report(&["scenarios/load/mixed.yaml", "--duration", "2s", "--users", "2"]);
    assert_valid(&validator("load-report.schema.json"), &report, "the load report");
    let mut broken = report.clone();
    broken["paths"][0]["histogram"]["unit"] = serde_json::json!("ms");
    assert!(!validator("load-report.schema.json").is_valid(&broken));
}

#[test]
fn shard_and_merged_reports_with_a_baseline_match_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let load = |extra: &[&str], out: &str| {
        let mut args = vec!["load", "scenarios/load/mixed.yaml", "--duration", "1s", "--users", "2", "-q"];
        args.extend_from_slice(extra);
        args.extend(["--report-json", out]);
        let o = run_bin(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (s1, s2, base, merged) = (path("s1.json"), path("s2.json"), path("base.json"), path("merged.json"));
    load(&["--shard", "1/2"], &s1);
    load(&["--shard", "2/2"], &s2);
    load(&[], &base);
    let o = run_bin(&["load", "merge", &s1, &s2, "--baseline", &base, "--report-json", &merged]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let schema = validator("load-report.schema.json");
    for file in [&s1, &merged] {
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_valid(&schema, &report, file);
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert!(report["baseline"]["rows"].as_array().is_some_and(|r| !r.is_empty()) && report["merged_from"] == 2);
}
