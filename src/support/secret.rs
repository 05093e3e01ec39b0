//! Secrets that cannot leak by accident.
//!
//! A [`Secret`] prints as `[redacted]` in `Debug` and `Display`; the only way to the value is
//! [`Secret::expose`], which call sites use when they put it on the wire. Reports show a short
//! [`fingerprint`] instead, so two runs can still be compared ("same token?") without the value.
//!
//! [`Redactor`] is the safety net behind that: every text that leaves the process (terminal,
//! reports) goes through it, and it replaces every secret the run has seen — client secrets from
//! the target, tokens the server issued — by its fingerprint.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// A secret value: client secret, token, assertion, private key material.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `[redacted sha256:1a2b3c4d]`: enough to tell two values apart, useless to an attacker.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("[redacted sha256:{hex}]")
}

/// Values shorter than this are not scrubbed from free text: replacing every `a` or `42` in a
/// report would destroy it, and such values are not secrets worth the name.
pub const MIN_SCRUB_LEN: usize = 6;

/// How a scrubbed value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// `[redacted sha256:1a2b3c4d]`, in reports and on the terminal.
    Fingerprint,
    /// `redacted-sha256-1a2b3c4d`: a plain YAML scalar wherever it lands, so a redacted YAML file
    /// still parses to the same shape.
    YamlScalar,
}

/// Scrubs every registered secret out of text, in every spelling it may take on the way: raw,
/// form- and URL-encoded, JSON-escaped, Base64 (alone, and as the `id:secret` of a Basic header,
/// with and without RFC 6749 §2.3.1 form-encoding, padded or not). Cheap to clone; shared by the
/// whole run.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Spelling → fingerprint of the secret it spells.
    spellings: BTreeMap<String, String>,
    /// Built from `spellings` on the first scrub after a change.
    matcher: Option<Arc<(AhoCorasick, Vec<String>)>>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret (a client secret, a token, an assertion) in all its spellings.
    pub fn register(&self, secret: &str) {
        if secret.len() < MIN_SCRUB_LEN {
            return;
        }
        let fp = fingerprint(secret);
        let mut spellings = encodings(secret);
        spellings.push(STANDARD.encode(secret));
        self.add(spellings, &fp);
    }

    pub fn register_secret(&self, secret: &Secret) {
        self.register(secret.expose());
    }

    /// Registers a client's secret and the Basic credentials it makes with its id: Base64 of
    /// `id:secret`, raw and form-encoded first (RFC 6749 §2.3.1), with or without padding.
    pub fn register_credentials(&self, client_id: &str, secret: &Secret) {
        self.register_secret(secret);
        let secret = secret.expose();
        if secret.is_empty() {
            return;
        }
        let form = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let fp = fingerprint(secret);
        let mut spellings = Vec::new();
        for pair in [format!("{client_id}:{secret}"), format!("{}:{}", form(client_id), form(secret))] {
            for engine in [&STANDARD, &URL_SAFE] {
                let b64 = engine.encode(&pair);
                spellings.push(b64.trim_end_matches('=').to_string());
                spellings.push(b64);
            }
        }
        self.add(spellings, &fp);
    }

    /// Registers the values of a URL's query parameters whose names say they are credentials
    /// (`api_key`, `sig`, `access_token`…): an endpoint configured with one sends it in every
    /// request line the reports show, and nothing else marks it secret.
    pub fn register_url_credentials(&self, url: &url::Url) {
        const CREDENTIAL_WORDS: &[&str] = &["key", "token", "secret", "pass", "sig", "auth", "credential", "code"];
        for (name, value) in url.query_pairs() {
            let name = name.to_ascii_lowercase();
            if CREDENTIAL_WORDS.iter().any(|w| name.contains(w)) {
                self.register(&value);
            }
        }
    }

    fn add(&self, spellings: Vec<String>, fp: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = inner.spellings.len();
        for s in spellings.into_iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
            inner.spellings.entry(s).or_insert_with(|| fp.to_string());
        }
        if inner.spellings.len() != before {
            inner.matcher = None;
        }
    }

    /// Replaces every registered spelling of every secret by its fingerprint.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_as(text, Shown::Fingerprint)
    }

    pub fn scrub_as(&self, text: &str, shown: Shown) -> String {
        let Some(matcher) = self.matcher() else { return text.to_owned() };
        let (automaton, fingerprints) = &*matcher;
        let mut out = String::with_capacity(text.len());
        automaton.replace_all_with(text, &mut out, |m, _, dst| {
            let fp = &fingerprints[m.pattern().as_usize()];
            match shown {
                Shown::Fingerprint => dst.push_str(fp),
                Shown::YamlScalar => dst.push_str(&yaml_scalar(fp)),
            }
            true
        });
        out
    }

    fn matcher(&self) -> Option<Arc<(AhoCorasick, Vec<String>)>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.spellings.is_empty() {
            return None;
        }
        if inner.matcher.is_none() {
            let (patterns, fps): (Vec<&String>, Vec<String>) =
                inner.spellings.iter().map(|(s, f)| (s, f.clone())).unzip();
            // Leftmost-longest: a token that contains a shorter secret is replaced whole.
            let automaton = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(patterns).ok()?;
            inner.matcher = Some(Arc::new((automaton, fps)));
        }
        inner.matcher.clone()
    }
}

/// The spellings a value takes in requests, URLs, JSON and logs.
fn encodings(secret: &str) -> Vec<String> {
    const URL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    vec![
        secret.to_string(),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        utf8_percent_encode(secret, URL).to_string(),
        // Some servers also escape `/` in JSON strings.
        json.replace('/', "\\/"),
        json,
    ]
}

/// `[redacted sha256:1a2b3c4d]` → `redacted-sha256-1a2b3c4d`.
fn yaml_scalar(fp: &str) -> String {
    fp.trim_matches(['[', ']']).replace([' ', ':'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-super-secret");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2-super-secret");
    }

    #[test]
    fn fingerprint_is_stable_and_short() {
        assert_eq!(fingerprint("abc"), "[redacted sha256:ba7816bf]");
    }

    #[test]
    fn credentials_in_a_configured_query_are_scrubbed_and_other_parameters_kept() {
        let r = Redactor::new();
        let url =
            url::Url::parse("https://fhir.example/Patient?_count=100000&api_key=k3y-v4lue&X-Sig=s1gn4ture").unwrap();
        r.register_url_credentials(&url);
        let out = r.scrub(url.as_str());
        assert!(!out.contains("k3y-v4lue") && !out.contains("s1gn4ture"), "{out}");
        assert!(out.contains("_count=100000"), "{out}");
    }

    #[test]
    fn scrub_replaces_plain_and_urlencoded_spellings() {
        let r = Redactor::new();
        r.register("s:e%c+r/et");
        let text = "basic s:e%c+r/et and form s%3Ae%25c%2Br%2Fet";
        let out = r.scrub(text);
        assert!(!out.contains("s:e%c+r/et"), "{out}");
        assert!(!out.contains("s%3Ae%25c%2Br%2Fet"), "{out}");
        assert_eq!(out.matches("[redacted sha256:").count(), 2);
    }

    #[test]
    fn scrub_catches_every_spelling_of_basic_credentials() {
        let r = Redactor::new();
        r.register_credentials("my client", &Secret::new("s\"e/c:r+e%t"));
        let raw = "my client:s\"e/c:r+e%t";
        let form = "my+client:s%22e%2Fc%3Ar%2Be%25t";
        let texts = [
            STANDARD.encode(raw),
            STANDARD.encode(raw).trim_end_matches('=').to_string(),
            STANDARD.encode(form),
            URL_SAFE.encode(form),
            r#"{"secret":"s\"e/c:r+e%t"}"#.to_string(),
            r#"{"secret":"s\"e\/c:r+e%t"}"#.to_string(),
            "s%22e%2Fc%3Ar%2Be%25t".to_string(),
        ];
        for text in texts {
            let out = r.scrub(&text);
            assert!(out.contains("[redacted sha256:"), "{text} → {out}");
            assert!(!out.contains("e%t") && !out.contains("e%25t") && !out.contains("r+e"), "{text} → {out}");
        }
        assert_eq!(
            r.scrub_as("k: s\"e/c:r+e%t", Shown::YamlScalar),
            format!("k: {}", yaml_scalar(&fingerprint("s\"e/c:r+e%t")))
        );
    }

    #[test]
    fn short_values_are_not_scrubbed() {
        let r = Redactor::new();
        r.register("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }
}
