//! Secrets that cannot leak by accident.
//!
//! A [`Secret`] prints as `[redacted]` in `Debug` and `Display`; the only way to the value is
//! [`Secret::expose`], which call sites use when they put it on the wire. Reports show a short
//! [`fingerprint`] instead, so two runs can still be compared ("same token?") without the value.
//!
//! [`Redactor`] is the safety net behind that: every text that leaves the process (terminal,
//! reports) goes through it, and it replaces every secret the run has seen — client secrets from
//! the target, tokens the server issued — by its fingerprint.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, RwLock};

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
const MIN_SCRUB_LEN: usize = 6;

/// Scrubs every registered secret out of text. Cheap to clone; shared by the whole run.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<BTreeSet<String>>>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, secret: &str) {
        if secret.len() >= MIN_SCRUB_LEN {
            self.secrets.write().unwrap_or_else(|e| e.into_inner()).insert(secret.to_owned());
        }
    }

    pub fn register_secret(&self, secret: &Secret) {
        self.register(secret.expose());
    }

    /// Replaces each registered secret (and its form-urlencoded spelling, as it appears in a
    /// request body) by its fingerprint. Longest first, so a token containing a shorter secret
    /// is replaced whole.
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut ordered: Vec<&String> = secrets.iter().collect();
        ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for secret in ordered {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &fingerprint(secret));
            }
            let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            if encoded != *secret && out.contains(&encoded) {
                out = out.replace(&encoded, &fingerprint(secret));
            }
        }
        out
    }
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
    fn short_values_are_not_scrubbed() {
        let r = Redactor::new();
        r.register("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }
}
