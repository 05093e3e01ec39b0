//! The ready-made targets for real servers (`fixtures/targets/templates/`). Those servers cannot be
//! reached from CI, so each template is checked for shape only: copied into a temporary folder
//! beside placeholder keys and certificates made by `oauth-harness keys` where it expects its
//! `secrets/`, with every `${env:…}` it reads set to a placeholder, `validate --target` must
//! accept it for every suite its header says it carries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{bin, code, repo_path, stderr, stdout};
use oauth_harness::support::pki::P12_PASSWORD;

/// A template, what it needs beside it, and what it must validate for.
struct Template {
    /// Under `fixtures/targets/templates/`.
    file: &'static str,
    /// `keys generate --alg ALG --out DIR`, DIR relative to the template.
    keys: &'static [(&'static str, &'static str)],
    /// Files of a `keys tls` PKI, copied to where the template expects them (relative to it).
    pki: &'static [(&'static str, &'static str)],
    /// Every `${env:…}` the template reads, with its placeholder.
    env: &'static [(&'static str, &'static str)],
    /// The suites and load profiles its header says it carries.
    carries: &'static [&'static str],
}

const PSC_BAS: Template = Template {
    file: "psc-bas.yaml",
    keys: &[],
    pki: &[
        ("ca.pem", "secrets/psc-bas/igc-sante-test-chain.pem"),
        ("client.p12", "secrets/psc-bas/psc-client.p12"),
        ("client-b.pem", "secrets/psc-bas/psc-client-b.pem"),
        ("client-b.key", "secrets/psc-bas/psc-client-b.key"),
        ("unregistered-client.pem", "secrets/psc-bas/unregistered-client.pem"),
        ("unregistered-client.key", "secrets/psc-bas/unregistered-client.key"),
    ],
    env: &[
        ("PSC_BAS_CLIENT_ID", "placeholder-intermediate-server"),
        ("PSC_BAS_CLIENT_SECRET", "placeholder-secret"),
        // The PKI's PKCS#12 opens with this one only: a wrong password fails validation.
        ("PSC_BAS_P12_PASSWORD", P12_PASSWORD),
        ("PSC_BAS_CLIENT_B_ID", "placeholder-intermediate-server-b"),
        ("PSC_BAS_CLIENT_B_SECRET", "placeholder-secret-b"),
        ("PSC_BAS_USER_APPROVES", "500000001815646/CPAT00045"),
        ("PSC_BAS_USER_DENIES", "500000001815647/CPAT00046"),
        ("PSC_BAS_USER_NEVER_ANSWERS", "500000001815648/CPAT00047"),
        ("PSC_BAS_USER_MANUAL", "500000001815649/CPAT00048"),
        ("PSC_BAS_USER_UNKNOWN", "899999999999999/UNKNOWN00"),
    ],
    carries: &["scenarios/psc-ciba"],
};

const MITREID: Template = Template {
    file: "mitreid.yaml",
    keys: &[("RS384", "secrets/mitreid/backend-rs384"), ("ES384", "secrets/mitreid/backend-es384")],
    pki: &[],
    env: &[
        ("MITREID_CONFIDENTIAL_SECRET", "placeholder-confidential-secret"),
        ("MITREID_RESERVED_SECRET", "s:e%c+r/et=1"),
        ("MITREID_SHORT_LIVED_SECRET", "placeholder-short-lived-secret"),
        ("MITREID_RESOURCE_SERVER_SECRET", "placeholder-resource-server-secret"),
    ],
    carries: SECRET_AND_BACKEND_SUITES,
};

const DUENDE: Template = Template {
    file: "duende-identityserver.yaml",
    keys: &[("RS384", "secrets/duende/backend-rs384"), ("ES384", "secrets/duende/backend-es384")],
    pki: &[],
    env: &[
        ("DUENDE_CONFIDENTIAL_SECRET", "placeholder-confidential-secret"),
        ("DUENDE_RESERVED_CLIENT_SECRET", "s:e%c+r/et=1"),
        ("DUENDE_SHORT_LIVED_SECRET", "placeholder-short-lived-secret"),
        ("DUENDE_API_SECRET", "placeholder-api-secret"),
    ],
    carries: SECRET_AND_BACKEND_SUITES,
};

/// What a client_credentials server with secret and private_key_jwt clients carries.
const SECRET_AND_BACKEND_SUITES: &[&str] = &[
    "scenarios/identity-server",
    "scenarios/introspection",
    "scenarios/expiry",
    "scenarios/smart-backend/private-key-jwt.yaml",
    "scenarios/smart-backend/assertion-rejections.yaml",
    "scenarios/load",
];

const ALL: &[&Template] = &[&PSC_BAS, &MITREID, &DUENDE];

/// Each line without its comment (templates hold no `#` inside a value).
fn values(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| line.split('#').next().unwrap_or_default())
}

/// The leading comment block, its lines joined by spaces.
fn header(text: &str) -> String {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The variables of every `${env:…}` outside comments.
fn env_vars(text: &str) -> BTreeSet<String> {
    let re = regex_lite::Regex::new(r"\$\{env:([^}]+)\}").unwrap();
    values(text).flat_map(|line| re.captures_iter(line).map(|c| c[1].to_string()).collect::<Vec<_>>()).collect()
}

/// The value of `key:` on each line that sets it (outside comments), unquoted.
fn settings<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}:");
    values(text)
        .filter_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .map(|value| value.trim().trim_matches('"'))
        .collect()
}

fn run_ok(args: &[&str]) {
    let out = bin().args(args).output().unwrap();
    assert_eq!(code(&out), 0, "oauth-harness {args:?}: {}{}", stdout(&out), stderr(&out));
}

/// The template in a temporary folder beside its placeholder files; validated for what it carries.
fn check(t: &Template) {
    let source = repo_path(&format!("fixtures/targets/templates/{}", t.file));
    let text = std::fs::read_to_string(&source).unwrap();

    let head = header(&text);
    assert!(
        head.contains("cannot be reached from our machines") && head.contains("checked for shape only"),
        "{}: its header must say the server cannot be reached and the template is checked for shape only",
        t.file
    );
    for suite in t.carries {
        assert!(head.contains(suite), "{}: its header does not name {suite}, which the test validates", t.file);
    }
    for key in ["client_secret", "pkcs12_password"] {
        for value in settings(&text, key) {
            assert!(value.starts_with("${env:"), "{}: `{key}: {value}` is not read from the environment", t.file);
        }
    }
    for key in ["private_key", "certificate", "certificate_key", "pkcs12", "ca"] {
        for value in settings(&text, key) {
            assert!(value.starts_with("secrets/"), "{}: `{key}: {value}` is not under secrets/", t.file);
        }
    }
    let read: BTreeSet<String> = env_vars(&text);
    let placeholders: BTreeSet<String> = t.env.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(read, placeholders, "{}: the variables it reads, and those the test sets", t.file);

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join(t.file);
    std::fs::copy(&source, &target).unwrap();
    for &(alg, out) in t.keys {
        run_ok(&["keys", "generate", "--alg", alg, "--out", dir.path().join(out).to_str().unwrap()]);
    }
    if !t.pki.is_empty() {
        let pki = dir.path().join("pki");
        run_ok(&["keys", "tls", "--out", pki.to_str().unwrap()]);
        for &(from, to) in t.pki {
            let to = dir.path().join(to);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(pki.join(from), &to).unwrap();
        }
    }

    let out = bin()
        .args(["validate", "--no-color", "--target", target.to_str().unwrap()])
        .args(t.carries)
        .envs(t.env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{} does not validate for {:?}:\n{}{}", t.file, t.carries, stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok:"), "{}", stdout(&out));
}

#[test]
fn psc_bas_validates_for_the_ciba_suite() {
    check(&PSC_BAS);
}

#[test]
fn mitreid_validates_for_the_secret_smart_and_load_suites() {
    check(&MITREID);
}

#[test]
fn duende_identityserver_validates_for_the_secret_smart_and_load_suites() {
    check(&DUENDE);
}

#[test]
fn every_template_is_checked_here() {
    let folder = repo_path("fixtures/targets/templates");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "yaml"))
        .collect();
    let checked: BTreeSet<String> = ALL.iter().map(|t| t.file.to_string()).collect();
    assert_eq!(on_disk, checked, "a template in {} without a check here (or the reverse)", folder.display());
}
