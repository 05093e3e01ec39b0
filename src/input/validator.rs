//! The one validation style every input kind shares: a validator over a source file that
//! collects located errors, and the checks every kind needs — interpolated text, durations and
//! numbers within bounds, URLs, paths relative to the file, a value from a closed set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;
use url::Url;

use super::interpolate::interpolate;
use super::{InputError, InputErrors};
use crate::model::Named;
use crate::support::diagnostics::{LocatedError, SourceFile, Span, did_you_mean};

/// Longer than any path a target names: a longer value is a file's contents.
const MAX_PATH_LEN: usize = 4096;

pub struct Validator<'a> {
    pub source: &'a SourceFile,
    errors: Vec<LocatedError>,
}

/// Where a parsed value was written.
pub fn at<T>(spanned: &Spanned<T>) -> Span {
    Span::from_location(&spanned.referenced)
}

impl<'a> Validator<'a> {
    pub fn new(source: &'a SourceFile) -> Self {
        Self { source, errors: Vec::new() }
    }

    /// Records a problem at `span`; the returned error can take a help text.
    pub fn error(&mut self, span: Span, message: impl Into<String>) -> &mut LocatedError {
        self.errors.push(self.source.error_at(span, message));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    pub fn error_help(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.error(span, message).help = Some(help.into());
    }

    /// The value, or every problem found (one per place).
    pub fn finish<T>(self, value: T) -> Result<T, InputErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        let mut seen = std::collections::HashSet::new();
        let errors = self
            .errors
            .into_iter()
            .filter(|e| seen.insert((e.location.clone(), e.message.clone())))
            .map(InputError::from)
            .collect();
        Err(InputErrors(errors))
    }

    fn base_dir(&self) -> &Path {
        self.source.path.parent().unwrap_or(Path::new("."))
    }

    /// `${env:…}` and `${file:…}` expanded; a failure is reported where the value was written.
    pub fn text(&mut self, value: &Spanned<String>) -> String {
        self.text_at(&value.value, at(value))
    }

    /// `raw` with its `${…}` references resolved; a failure is reported at `span`.
    pub fn text_at(&mut self, raw: &str, span: Span) -> String {
        match interpolate(raw, self.base_dir()) {
            Ok(s) => s,
            Err(e) => {
                self.error(span, e.to_string());
                String::new()
            }
        }
    }

    pub fn named(&self, value: &Option<Spanned<String>>) -> Option<Named> {
        value.as_ref().map(|v| Named { name: v.value.clone(), span: at(v) })
    }

    /// A duration like `2s` or `1500ms`; zero only when `zero_ok`, never more than `max`.
    pub fn duration(&mut self, v: &Spanned<String>, key: &str, zero_ok: bool, max: Duration) -> Option<Duration> {
        match humantime::parse_duration(v.value.trim()) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.error_help(at(v), format!("{key} must be longer than zero"), "e.g. `10s`");
                None
            }
            Ok(d) if d > max => {
                self.error(
                    at(v),
                    format!("{key} must be at most {}, not {}", humantime::format_duration(max), v.value),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error_help(
                    at(v),
                    format!("{key}: `{}` is not a duration ({e})", v.value),
                    "write it like `10s`, `1500ms` or `2m`",
                );
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn number(&mut self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&v.value) {
            Some(v.value)
        } else {
            self.error(at(v), format!("{key} must be between {min} and {max}, not {}", v.value));
            None
        }
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self, v: &Spanned<String>) -> Option<Url> {
        let raw = self.text(v);
        match Url::parse(&raw) {
            // Credentials in a URL would go to every request made to it and into every report
            // that names it (RFC 3986 §3.2.1 deprecates them): refused, without quoting them.
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.error_help(
                    at(v),
                    "this URL holds credentials (`user:password@`), which would be sent and printed with it",
                    "write the URL without them: a client's credentials go in its `client_secret` or key",
                );
                None
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            Ok(u) => {
                self.error(at(v), format!("`{u}` is not an http(s) URL"));
                None
            }
            Err(e) => {
                self.error(at(v), format!("`{raw}` is not a URL: {e}"));
                None
            }
        }
    }

    /// A path written in the file, relative to the file's folder. A value that expanded to a
    /// file's contents (`${file:key.pem}` where the path was meant) is refused without quoting
    /// the expansion: it is usually a private key.
    pub fn path(&mut self, v: &Spanned<String>) -> Option<PathBuf> {
        let rel = self.text(v);
        if rel.contains('\n') || rel.contains("-----BEGIN") || rel.len() > MAX_PATH_LEN {
            self.error_help(
                at(v),
                format!("`{}` expands to a file's contents, not to a path", v.value),
                "write the path itself (e.g. `keys/client.pem`, or `${env:KEY_PATH}` holding a path)",
            );
            return None;
        }
        Some(self.base_dir().join(rel))
    }

    /// One of `choices`, with "did you mean" when it is not.
    pub fn one_of<'c>(&mut self, v: &Spanned<String>, key: &str, choices: &[&'c str]) -> Option<&'c str> {
        if let Some(found) = choices.iter().find(|c| **c == v.value) {
            return Some(found);
        }
        self.not_one_of(at(v), &v.value, &format!("a valid `{key}`"), choices);
        None
    }

    /// `word` is none of `choices`: an error at `span` naming the closest one.
    pub fn not_one_of(&mut self, span: Span, word: &str, what: &str, choices: &[&str]) {
        let help = match did_you_mean(word, choices.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("one of: {}", choices.join(", ")),
        };
        self.error_help(span, format!("`{word}` is not {what}"), help);
    }
}
