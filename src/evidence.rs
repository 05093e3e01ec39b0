//! Evidence for self-certification: a folder a vendor hands over, holding what was run, against
//! what, what came of it, and a SHA-256 manifest so the receiver can tell whether anything was
//! edited afterwards. The manifest's own digest sits beside it; a detached JWS over the manifest,
//! signed with a key from `keys generate`, proves who produced it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::support::keys::KeyPair;

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_DIGEST: &str = "manifest.json.sha256";
pub const SIGNATURE: &str = "manifest.jws";
/// No file of a bundle is larger than this (reports of very large runs included).
const MAX_FILE: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("cannot write `{path}`: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error(
        "the evidence folder `{0}` is not empty: a bundle must hold only what one run wrote (use an empty folder; --evidence-force replaces an earlier bundle)"
    )]
    NotEmpty(PathBuf),
    #[error(
        "the evidence folder `{path}` holds `{stranger}`, which no earlier bundle there wrote: --evidence-force replaces an earlier bundle only, never other files (use an empty folder)"
    )]
    NotABundle { path: PathBuf, stranger: String },
    #[error("the JWK file: {0}")]
    Jwk(String),
    #[error("`{0}` is not an evidence folder: it has no {MANIFEST}")]
    NoManifest(PathBuf),
    #[error(transparent)]
    Unreadable(#[from] crate::support::files::FileError),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub algorithm: String,
    /// Relative path → lower-case hex SHA-256.
    pub files: BTreeMap<String, String>,
}

/// What goes into a bundle; every text is already redacted by the caller.
pub struct Bundle {
    /// (relative path in the bundle, content).
    pub files: Vec<(String, Vec<u8>)>,
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A path inside the bundle for an input file: relative, without `..` or a root.
pub fn bundle_path(prefix: &str, path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    format!("{prefix}/{}", parts.join("/"))
}

/// An evidence folder may be written when it is missing or empty — or, with `force`, when it
/// holds an earlier bundle and nothing else, which is then removed: a bundle that mixed in older
/// files would never verify as intact, and a forced write must never delete what the harness did
/// not write (`--evidence . --evidence-force` in a project folder).
pub fn check_writable(dir: &Path, force: bool) -> Result<(), EvidenceError> {
    earlier_bundle(dir, force).map(|_| ())
}

/// The files of the earlier bundle `force` may remove (none when the folder is missing or empty).
fn earlier_bundle(dir: &Path, force: bool) -> Result<Vec<PathBuf>, EvidenceError> {
    if dir.exists() && !dir.is_dir() {
        return Err(EvidenceError::Unwritable { path: dir.to_path_buf(), reason: "it is not a folder".into() });
    }
    let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !non_empty {
        return Ok(Vec::new());
    }
    if !force {
        return Err(EvidenceError::NotEmpty(dir.to_path_buf()));
    }
    let stranger = |rel: &str| EvidenceError::NotABundle { path: dir.to_path_buf(), stranger: rel.to_string() };
    let manifest: Manifest = crate::support::files::read_bytes(&dir.join(MANIFEST), MAX_FILE)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| stranger(first_entry(dir).as_deref().unwrap_or(MANIFEST)))?;
    let known: std::collections::HashSet<&str> =
        manifest.files.keys().map(String::as_str).chain([MANIFEST, MANIFEST_DIGEST, SIGNATURE]).collect();
    let mut files = Vec::new();
    // Links are never followed: a link is a file to remove, and only if the bundle listed it.
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| EvidenceError::Unwritable { path: d.clone(), reason: e.to_string() })?;
        for entry in entries.flatten() {
            let p = entry.path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            // Folders count too: a tree of empty folders is not what a bundle leaves.
            seen += 1;
            if seen > MAX_WALK {
                return Err(stranger(&rel));
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                _ if known.contains(rel.as_str()) => files.push(p),
                _ => return Err(stranger(&rel)),
            }
        }
    }
    Ok(files)
}

/// The name of some entry of a non-empty folder, to say what is in the way.
fn first_entry(dir: &Path) -> Option<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names.into_iter().next()
}

/// Writes the bundle, its manifest, the manifest's digest, and (with `key`) a detached JWS, into
/// a folder that is empty (with `force`, an earlier bundle there is removed first).
pub fn write(dir: &Path, bundle: &Bundle, key: Option<&KeyPair>, force: bool) -> Result<Vec<PathBuf>, EvidenceError> {
    let unwritable =
        |path: &Path, e: std::io::Error| EvidenceError::Unwritable { path: path.to_path_buf(), reason: e.to_string() };
    for p in earlier_bundle(dir, force)? {
        std::fs::remove_file(&p).map_err(|e| unwritable(&p, e))?;
    }
    remove_empty_folders(dir);
    let mut manifest = Manifest { algorithm: "sha256".into(), files: BTreeMap::new() };
    let mut written = Vec::new();
    for (rel, content) in unique_paths(&bundle.files) {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| unwritable(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| unwritable(&path, e))?;
        manifest.files.insert(rel, hex_sha256(content));
        written.push(path);
    }
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let files = [
        (MANIFEST, manifest_bytes.clone()),
        (MANIFEST_DIGEST, format!("{}  {MANIFEST}\n", hex_sha256(&manifest_bytes)).into_bytes()),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| unwritable(&path, e))?;
        written.push(path);
    }
    if let Some(key) = key {
        let path = dir.join(SIGNATURE);
        std::fs::write(&path, detached_jws(key, &manifest_bytes)).map_err(|e| unwritable(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// The bundle's files with each path used once: two inputs that map to the same path (`a/x.yaml`
/// and `../a/x.yaml`) get `-2`, `-3`… so neither overwrites the other.
fn unique_paths(files: &[(String, Vec<u8>)]) -> Vec<(String, &Vec<u8>)> {
    let mut taken = std::collections::HashSet::new();
    files
        .iter()
        .map(|(rel, content)| {
            let mut candidate = rel.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = match rel.rsplit_once('.') {
                    Some((stem, ext)) if !ext.contains('/') => format!("{stem}-{n}.{ext}"),
                    _ => format!("{rel}-{n}"),
                };
                n += 1;
            }
            (candidate, content)
        })
        .collect()
}

/// RFC 7515 Appendix F: the compact JWS with its payload (the manifest bytes) left out.
fn detached_jws(key: &KeyPair, payload: &[u8]) -> String {
    let header = serde_json::json!({ "alg": key.alg.name(), "kid": key.kid, "typ": "oauth-harness-evidence+jws" });
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(signing_input.as_bytes());
    let (h, _) = signing_input.split_once('.').unwrap_or_default();
    format!("{h}..{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The outcome of `evidence verify`.
#[derive(Debug, Default)]
pub struct Verification {
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    /// The manifest does not match its recorded digest.
    pub manifest_changed: bool,
    /// `Some(valid?)` when a JWK was given to check the signature with.
    pub signature: Option<Result<(), String>>,
    pub checked: usize,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.changed.is_empty()
            && self.missing.is_empty()
            && self.unexpected.is_empty()
            && !self.manifest_changed
            && !matches!(self.signature, Some(Err(_)))
    }
}

pub fn verify(dir: &Path, jwk: Option<&serde_json::Value>) -> Result<Verification, EvidenceError> {
    let read = |path: &Path| crate::support::files::read_bytes(path, MAX_FILE).map_err(EvidenceError::Unreadable);
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(EvidenceError::NoManifest(dir.to_path_buf()));
    }
    let manifest_bytes = read(&manifest_path)?;
    let mut v = Verification::default();
    let recorded = String::from_utf8_lossy(&read(&dir.join(MANIFEST_DIGEST)).unwrap_or_default())
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    v.manifest_changed = recorded != hex_sha256(&manifest_bytes);
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(_) => {
            v.manifest_changed = true;
            return Ok(v);
        }
    };
    for (rel, digest) in &manifest.files {
        // A manifest that names a file outside the bundle was tampered with: never read it.
        let inside = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            v.changed.push(rel.clone());
            v.checked += 1;
            continue;
        }
        match crate::support::files::read_bytes(&dir.join(rel), MAX_FILE) {
            Ok(bytes) if hex_sha256(&bytes) == *digest => {}
            Ok(_) => v.changed.push(rel.clone()),
            Err(_) => v.missing.push(rel.clone()),
        }
        v.checked += 1;
    }
    let known: Vec<&str> =
        manifest.files.keys().map(String::as_str).chain([MANIFEST, MANIFEST_DIGEST, SIGNATURE]).collect();
    for path in walk(dir) {
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if !known.contains(&rel.as_str()) {
            v.unexpected.push(rel);
        }
    }
    if let Some(jwk) = jwk {
        v.signature = Some(verify_signature(&dir.join(SIGNATURE), &manifest_bytes, jwk));
    }
    Ok(v)
}

fn verify_signature(path: &Path, manifest: &[u8], jwk: &serde_json::Value) -> Result<(), String> {
    let jws = crate::support::files::read_text(path, 64 * 1024).map_err(|_| format!("no {SIGNATURE} in the bundle"))?;
    let (header, signature) = jws.trim().split_once("..").ok_or("manifest.jws is not a detached JWS")?;
    let compact = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(manifest));
    let alg: jsonwebtoken::Algorithm =
        jwk.get("alg").and_then(|a| a.as_str()).unwrap_or("RS384").parse().map_err(|_| "unknown alg in the JWK")?;
    let key: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).map_err(|e| format!("not a JWK: {e}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&key).map_err(|e| format!("unusable JWK: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(&compact, &key, &validation)
        .map(|_| ())
        .map_err(|e| format!("signature does not verify: {e}"))
}

/// Removes the folders under `dir` an earlier bundle left empty (not `dir` itself).
fn remove_empty_folders(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_folders(&entry.path());
            // Fails, and is meant to, on a folder that is not empty.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Every file under `dir`, at most [`MAX_WALK`] of them. A symlink is listed, never followed: a
/// link to `/` in a tampered bundle must not make `verify` walk the machine (nor a loop forever).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if out.len() >= MAX_WALK {
                out.sort();
                return out;
            }
            let p = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// A bundle holds a report, its inputs and a manifest: far fewer files than this.
const MAX_WALK: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_folder_is_an_unexpected_entry_and_never_walked() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle { files: vec![(bundle_path("scenarios", Path::new("a.yaml")), b"one".to_vec())] };
        write(dir.path(), &bundle, None, false).unwrap();
        // A loop back to the bundle, and a way out of it.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert_eq!(v.unexpected, ["loop", "root"], "{v:?}");
    }

    #[test]
    fn a_fresh_bundle_is_intact_even_when_two_inputs_share_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            files: vec![
                (bundle_path("scenarios", Path::new("a/x.yaml")), b"one".to_vec()),
                (bundle_path("scenarios", Path::new("../a/x.yaml")), b"two".to_vec()),
            ],
        };
        write(dir.path(), &bundle, None, false).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert!(v.intact(), "{v:?}");
        assert_eq!(v.checked, 2);
        assert!(matches!(write(dir.path(), &bundle, None, false), Err(EvidenceError::NotEmpty(_))));
    }

    #[test]
    fn a_manifest_naming_a_file_outside_the_bundle_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &Bundle { files: vec![("r.json".into(), b"{}".to_vec())] }, None, false).unwrap();
        let manifest = serde_json::json!({ "algorithm": "sha256", "files": { "../../etc/passwd": "00" } });
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        std::fs::write(dir.path().join(MANIFEST), &bytes).unwrap();
        std::fs::write(dir.path().join(MANIFEST_DIGEST), format!("{}  {MANIFEST}\n", hex_sha256(&bytes))).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert_eq!(v.changed, vec!["../../etc/passwd".to_string()]);
    }

    #[test]
    fn force_replaces_an_earlier_bundle_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let old =
            Bundle { files: vec![("inputs/a/x.yaml".into(), b"old".to_vec()), ("r.json".into(), b"{}".to_vec())] };
        let new = Bundle { files: vec![("r.json".into(), b"{\"n\":1}".to_vec())] };
        write(dir.path(), &old, None, false).unwrap();
        write(dir.path(), &new, None, true).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert!(v.intact() && v.checked == 1, "the earlier bundle's files and folders are gone: {v:?}");
        assert!(!dir.path().join("inputs").exists());
        // A file the bundle did not list: the folder is not only a bundle, so nothing is removed.
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").unwrap();
        match write(dir.path(), &new, None, true) {
            Err(EvidenceError::NotABundle { stranger, .. }) => assert_eq!(stranger, "src/main.rs"),
            other => panic!("{other:?}"),
        }
        assert!(dir.path().join("src/main.rs").exists() && dir.path().join(MANIFEST).exists());
    }

    #[test]
    fn force_never_empties_a_folder_that_holds_no_bundle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let bundle = Bundle { files: vec![("r.json".into(), b"{}".to_vec())] };
        match check_writable(dir.path(), true) {
            Err(EvidenceError::NotABundle { stranger, .. }) => assert_eq!(stranger, "notes.txt"),
            other => panic!("{other:?}"),
        }
        assert!(write(dir.path(), &bundle, None, true).is_err());
        assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine");
        // An unreadable manifest does not make a folder a bundle either.
        std::fs::write(dir.path().join(MANIFEST), "not json").unwrap();
        assert!(matches!(check_writable(dir.path(), true), Err(EvidenceError::NotABundle { .. })));
    }

    #[test]
    fn bundle_paths_stay_inside_the_bundle() {
        assert_eq!(bundle_path("scenarios", Path::new("../x/./y.yaml")), "scenarios/x/y.yaml");
        assert_eq!(bundle_path("target", Path::new("/etc/t.yaml")), "target/etc/t.yaml");
    }
}
