//! The distributed-load recipes in deploy/ (docs/distributed.md) are valid where they run: every
//! Kubernetes manifest against the real OpenAPI schemas (kubernetes-validate, strict), the CI
//! recipes against GitHub's and GitLab's schemas (check-jsonschema), the shard Job agrees with its
//! inputs and with the merge Job, and the harness accepts the profile and target the ConfigMap
//! ships. The validators come from `.ci/install-deploy-validators.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{bin, code, repo_path, stderr, stdout};
use serde_json::Value;

/// The oldest Kubernetes release the manifests promise to work on (Indexed Jobs, the Pod Security
/// labels and `sizeLimit` are all older); kubernetes-validate bundles its schemas.
const KUBERNETES_VERSION: &str = "1.30.0";

/// A validator from the venv `.ci/install-deploy-validators.sh` makes, or None (the test skips).
fn validator(name: &str) -> Option<PathBuf> {
    let path = repo_path(&format!("target/tools/k8s-venv/bin/{name}"));
    let install = "Run `bash .ci/install-deploy-validators.sh` (a venv under target/tools/).";
    common::tool_available(name, path.exists(), install).then_some(path)
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// The value after `flag` in an argument list.
fn after<'a>(args: &[&'a str], flag: &str) -> &'a str {
    let at = args.iter().position(|a| *a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[at + 1]
}

/// The one container of a Job's pod.
fn container(job: &Value) -> &Value {
    let containers = job["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container per pod");
    &containers[0]
}

/// The name of the volume mounted at `path` in a Job's container.
fn volume_at<'a>(job: &'a Value, path: &str) -> &'a Value {
    let mounts = container(job)["volumeMounts"].as_array().unwrap();
    let mount = mounts.iter().find(|m| m["mountPath"] == path).unwrap_or_else(|| panic!("nothing at {path}"));
    let volumes = job["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    volumes.iter().find(|v| v["name"] == mount["name"]).unwrap_or_else(|| panic!("no volume {}", mount["name"]))
}

fn succeeds(cmd: &mut Command, what: &str) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what} failed:\n{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn kubernetes_manifests_match_the_openapi_schemas_strictly() {
    let Some(tool) = validator("kubernetes-validate") else { return };
    // Every object in deploy/kubernetes/; kustomization.yaml is kustomize's, checked below.
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    let count = files.len();
    assert!(count >= 6, "{files:?}");
    // --strict refuses unknown fields (a misspelt `backoffLimit` would pass otherwise).
    let out = succeeds(
        Command::new(tool).args(["--strict", "--kubernetes-version", KUBERNETES_VERSION]).args(files),
        "kubernetes-validate",
    );
    // A kind it has no schema for is only a warning (exit 0): each file must say "passed".
    assert_eq!(out.matches(" passed for resource ").count(), count, "{out}");
}

#[test]
fn ci_recipes_match_the_vendor_schemas() {
    let Some(tool) = validator("check-jsonschema") else { return };
    for (file, schema) in
        [("deploy/ci/github-actions.yml", "vendor.github-workflows"), ("deploy/ci/gitlab-ci.yml", "vendor.gitlab-ci")]
    {
        succeeds(
            Command::new(&tool).args(["--builtin-schema", schema]).arg(repo_path(file)),
            &format!("check-jsonschema {schema} {file}"),
        );
    }
}

#[test]
fn kustomization_applies_the_run_but_neither_the_example_secret_nor_the_merge() {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let resources = strings(&kustomization["resources"]);
    for file in &resources {
        assert!(repo_path(&format!("deploy/kubernetes/{file}")).exists(), "{file} is listed but missing");
    }
    for needed in ["namespace.yaml", "configmap.yaml", "pvc.yaml", "job.yaml"] {
        assert!(resources.contains(&needed), "{needed} missing from {resources:?}");
    }
    // A committed placeholder must never overwrite the real Secret; the merge must wait for the shards.
    for never in ["secret.example.yaml", "merge-job.yaml"] {
        assert!(!resources.contains(&never), "{never} must not be applied with -k");
    }
}

#[test]
fn shard_job_agrees_with_its_inputs_and_the_merge_job() {
    let job = yaml("deploy/kubernetes/job.yaml");
    let spec = &job["spec"];
    let shard = container(&job);
    let args = strings(&shard["args"]);
    let shards: u64 = after(&args, "--shards").parse().unwrap();
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], shards, "one pod per shard");
    assert_eq!(spec["parallelism"], shards, "every shard at once");
    assert_eq!(spec["backoffLimit"], 0, "a retried shard would start late");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");

    // Every $(VAR) in the args is the container's env or the index the Job controller sets.
    let env = shard["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name);
    let referenced = regex_lite::Regex::new(r"\$\(([A-Z_][A-Z0-9_]*)\)").unwrap();
    for arg in &args {
        for name in referenced.captures_iter(arg).map(|c| c[1].to_string()) {
            assert!(name == "JOB_COMPLETION_INDEX" || var(name.as_str()).is_some(), "{arg}: {name} is not set");
        }
    }
    assert_eq!(after(&args, "--start-at"), "$(START_AT)");

    // The files the args name under /inputs are keys of the ConfigMap mounted there.
    let configmap = yaml("deploy/kubernetes/configmap.yaml");
    assert_eq!(volume_at(&job, "/inputs")["configMap"]["name"], configmap["metadata"]["name"]);
    for input in args.iter().filter_map(|a| a.strip_prefix("/inputs/")) {
        assert!(configmap["data"][input].is_string(), "configmap.yaml has no key {input}");
    }

    // Each ${env:VAR} of the target comes from the Secret, under a key the example Secret has.
    let secret = yaml("deploy/kubernetes/secret.example.yaml");
    let target = configmap["data"]["target.yaml"].as_str().unwrap();
    let from_env = regex_lite::Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").unwrap();
    let secrets: Vec<&str> = from_env.captures_iter(target).map(|c| c.get(1).unwrap().as_str()).collect();
    assert_eq!(secrets, ["CLIENT_SECRET"]);
    for name in secrets {
        let source = &var(name).unwrap_or_else(|| panic!("{name} is not in the env"))["valueFrom"]["secretKeyRef"];
        assert_eq!(source["name"], secret["metadata"]["name"], "{name} must come from the Secret");
        assert!(secret["stringData"][source["key"].as_str().unwrap()].is_string(), "{name}: no such key");
    }

    // The merge reads exactly the reports the shards write, from the same volume, same image.
    let merge = yaml("deploy/kubernetes/merge-job.yaml");
    let report = after(&args, "--report-json");
    let expected: Vec<String> =
        (0..shards).map(|i| report.replace("$(JOB_COMPLETION_INDEX)", &i.to_string())).collect();
    let merge_args = strings(&container(&merge)["args"]);
    assert_eq!(merge_args[..2], ["load", "merge"]);
    let inputs: Vec<&str> = merge_args[2..].iter().take_while(|a| !a.starts_with('-')).copied().collect();
    assert_eq!(inputs, expected, "merge-job.yaml must list every shard's report, and only those");
    assert_eq!(volume_at(&merge, "/reports"), volume_at(&job, "/reports"));
    assert_eq!(container(&merge)["image"], shard["image"]);
    assert_eq!(container(&merge)["securityContext"], shard["securityContext"]);
    assert_eq!(merge["spec"]["template"]["spec"]["securityContext"], spec["template"]["spec"]["securityContext"]);
}

#[test]
fn ci_recipes_merge_every_shard_they_run() {
    let github = yaml("deploy/ci/github-actions.yml");
    let jobs = &github["jobs"];
    let matrix = jobs["shard"]["strategy"]["matrix"]["shard"].as_array().unwrap();
    let n = matrix.len() as u64;
    assert!(matrix.iter().zip(1..).all(|(shard, i)| *shard == i), "shards 1..={n}: {matrix:?}");
    let run = |job: &str| -> String {
        let steps = jobs[job]["steps"].as_array().unwrap();
        steps.iter().filter_map(|s| s["run"].as_str()).collect::<Vec<_>>().join("\n")
    };
    assert!(run("shard").contains(&format!("--shard ${{{{ matrix.shard }}}}/{n}")), "the shard flag must say /{n}");

    let gitlab = yaml("deploy/ci/gitlab-ci.yml");
    assert_eq!(gitlab["shard"]["parallel"], n, "both recipes run as many shards");
    let gitlab_merge = strings(&gitlab["merge"]["script"]).join("\n");

    let expected: Vec<String> = (1..=n).map(|i| format!("shard-{i}.json")).collect();
    for (recipe, script) in [("github-actions.yml", run("merge")), ("gitlab-ci.yml", gitlab_merge)] {
        let merged: Vec<&str> =
            script.split_whitespace().filter(|w| w.contains("shard-") && w.ends_with(".json")).collect();
        let names: Vec<&str> = merged.iter().map(|w| w.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, expected, "{recipe}: the merge must read every shard's report");
    }
}

#[test]
fn the_harness_accepts_the_configmaps_profile_and_target() {
    let configmap = yaml("deploy/kubernetes/configmap.yaml");
    let dir = tempfile::tempdir().unwrap();
    for key in ["profile.yaml", "target.yaml"] {
        std::fs::write(dir.path().join(key), configmap["data"][key].as_str().unwrap()).unwrap();
    }
    let validate = || {
        let mut cmd = bin();
        cmd.arg("validate").arg("--target").arg(dir.path().join("target.yaml")).arg(dir.path().join("profile.yaml"));
        cmd
    };
    // As a shard sees it: CLIENT_SECRET from the Secret.
    let o = validate().env("CLIENT_SECRET", "placeholder").output().unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 load profile"), "{}", stdout(&o));
    // Without it the target is refused: the secret really is read from the environment.
    let o = validate().env_remove("CLIENT_SECRET").output().unwrap();
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("CLIENT_SECRET"), "{}", stderr(&o));
}
