//! Load profiles: the YAML under a top-level `load:` key, validated whole before any traffic, with
//! every problem located at file:line:column (exit 2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::RunSettings;
use crate::diagnostics::{LocatedError, SourceFile, Span, did_you_mean};
use crate::scenario::LoadError;
use crate::target::{ClientAuth, Target};

pub const DEFAULT_USERS: usize = 10;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// Every run stops by itself: an iterations-bounded run is cut here if it has not finished.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);
pub const DEFAULT_INTROSPECTION_TOKENS: usize = 16;
/// The client that introspects when a path names none (as in the conformance suites).
pub const DEFAULT_INTROSPECTION_CLIENT: &str = crate::run::DEFAULT_INTROSPECTION_CLIENT;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    load: LoadDef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadDef {
    description: Option<String>,
    /// `token`, `introspection`, or `mixed` (then `mix:` lists the paths).
    path: Spanned<String>,
    /// The target client that authenticates: the token requester, or the introspection caller.
    client: Option<Spanned<String>>,
    /// Overrides the client's own authentication method.
    auth: Option<Spanned<ClientAuth>>,
    /// Introspection: the client whose tokens are minted before the run and introspected.
    token_client: Option<Spanned<String>>,
    /// Introspection: how many tokens to mint and cycle through.
    tokens: Option<Spanned<u64>>,
    #[serde(default)]
    mix: Vec<MixEntry>,
    users: Option<Spanned<u64>>,
    ramp: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    iterations: Option<Spanned<u64>>,
    /// Target rate for the whole run, e.g. `500/s` (goose's request throttle).
    rate: Option<Spanned<String>>,
    /// The hard cap on the run's wall time.
    max_duration: Option<Spanned<String>>,
    coordinated_omission: Option<Spanned<String>>,
    /// private_key_jwt: how many assertions to sign before traffic starts (default: enough for
    /// the rate — or 1000/s per user — over the run, at most 500000).
    assertion_pool: Option<Spanned<u64>>,
    /// Thresholds on all requests together.
    thresholds: Option<ThresholdsDef>,
    /// Thresholds on one path, by its name.
    #[serde(default)]
    path_thresholds: BTreeMap<String, ThresholdsDef>,
}

/// What a path needs; from a single-path profile or a `mix` entry (serde's `flatten` cannot be
/// combined with `deny_unknown_fields`, so both spell the fields out).
struct PathFields<'a> {
    client: &'a Option<Spanned<String>>,
    auth: &'a Option<Spanned<ClientAuth>>,
    token_client: &'a Option<Spanned<String>>,
    tokens: &'a Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixEntry {
    name: Option<Spanned<String>>,
    path: Spanned<String>,
    /// The target client that authenticates: the token requester, or the introspection caller.
    client: Option<Spanned<String>>,
    /// Overrides the client's own authentication method.
    auth: Option<Spanned<ClientAuth>>,
    /// Introspection: the client whose tokens are minted before the run and introspected.
    token_client: Option<Spanned<String>>,
    /// Introspection: how many tokens to mint and cycle through.
    tokens: Option<Spanned<u64>>,
    weight: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsDef {
    p50_ms: Option<Spanned<f64>>,
    p95_ms: Option<Spanned<f64>>,
    p99_ms: Option<Spanned<f64>>,
    #[serde(alias = "error_rate")]
    max_error_rate: Option<Spanned<f64>>,
    min_rps: Option<Spanned<f64>>,
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub source: SourceFile,
    /// The file stem, e.g. `token-secret`.
    pub name: String,
    pub description: Option<String>,
    pub paths: Vec<PathSpec>,
    /// Users, ramp, duration, rate…: what the command line may then override.
    pub settings: RunSettings,
    pub coordinated_omission: CoMitigation,
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Token,
    Introspection,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Token => "token",
            PathKind::Introspection => "introspection",
        }
    }
}

/// One request stream of the run: a goose transaction with its weight.
#[derive(Debug, Clone)]
pub struct PathSpec {
    pub name: String,
    pub kind: PathKind,
    pub client: String,
    pub client_span: Span,
    pub auth: Option<ClientAuth>,
    pub token_client: Option<(String, Span)>,
    pub tokens: usize,
    pub weight: usize,
}

/// Goose's coordinated-omission mitigation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoMitigation {
    Disabled,
    Average,
    Minimum,
    Maximum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Metric {
    #[serde(rename = "p50_ms")]
    P50,
    #[serde(rename = "p95_ms")]
    P95,
    #[serde(rename = "p99_ms")]
    P99,
    #[serde(rename = "max_error_rate")]
    MaxErrorRate,
    #[serde(rename = "min_rps")]
    MinRps,
}

impl Metric {
    pub fn key(self) -> &'static str {
        match self {
            Metric::P50 => "p50_ms",
            Metric::P95 => "p95_ms",
            Metric::P99 => "p99_ms",
            Metric::MaxErrorRate => "max_error_rate",
            Metric::MinRps => "min_rps",
        }
    }

    /// Percentile thresholds and the error rate are ceilings; `min_rps` is a floor.
    pub fn is_floor(self) -> bool {
        self == Metric::MinRps
    }
}

/// One threshold: a metric, its limit, and the path it judges (`None`: all requests).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub path: Option<String>,
    pub metric: Metric,
    pub limit: f64,
}

impl Threshold {
    /// As the reports show it, e.g. `p95_ms ≤ 250 (token)`.
    pub fn rule(&self) -> String {
        let op = if self.metric.is_floor() { "≥" } else { "≤" };
        format!("{} {op} {} ({})", self.metric.key(), self.limit, self.path.as_deref().unwrap_or("all"))
    }
}

/// Loads and validates a profile file.
pub fn load(path: &Path) -> Result<Profile, Vec<LoadError>> {
    let source = SourceFile::read(path)
        .map_err(|e| vec![LoadError::Unreadable { path: path.to_path_buf(), reason: e.to_string() }])?;
    parse(&source)
}

pub fn parse(source: &SourceFile) -> Result<Profile, Vec<LoadError>> {
    let file: ProfileFile = serde_saphyr::from_str(&source.text)
        .map_err(|e| vec![LoadError::from(crate::scenario::yaml_error(source, &e))])?;
    let mut v = Validator { source, errors: Vec::new() };
    let profile = v.profile(file.load);
    if v.errors.is_empty() { Ok(profile) } else { Err(v.errors.into_iter().map(LoadError::from).collect()) }
}

macro_rules! fields_of {
    ($def:expr) => {
        PathFields { client: &$def.client, auth: &$def.auth, token_client: &$def.token_client, tokens: &$def.tokens }
    };
}

struct Validator<'a> {
    source: &'a SourceFile,
    errors: Vec<LocatedError>,
}

fn at<T>(spanned: &Spanned<T>) -> Span {
    Span::from_location(&spanned.referenced)
}

impl Validator<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        let mut e = self.source.error_at(span, message);
        if let Some(help) = help {
            e = e.with_help(help);
        }
        self.errors.push(e);
    }

    fn profile(&mut self, def: LoadDef) -> Profile {
        let name = self.source.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let paths = self.paths(&def);
        let users = match &def.users {
            Some(u) if u.value == 0 || u.value > 100_000 => {
                self.error(at(u), "users must be between 1 and 100000", None);
                DEFAULT_USERS
            }
            Some(u) => u.value as usize,
            None => DEFAULT_USERS,
        };
        let ramp = self.duration(&def.ramp, "ramp", true).unwrap_or(Duration::ZERO);
        let duration = self.duration(&def.duration, "duration", false).unwrap_or(DEFAULT_DURATION);
        let max_duration = self.duration(&def.max_duration, "max_duration", false).unwrap_or(DEFAULT_MAX_DURATION);
        if let Some(d) = &def.duration {
            if duration + ramp > max_duration {
                self.error(
                    at(d),
                    format!(
                        "ramp + duration is longer than max_duration ({})",
                        humantime::format_duration(max_duration)
                    ),
                    Some("raise `max_duration` if the run really must be this long".into()),
                );
            }
        }
        let iterations = match &def.iterations {
            Some(i) if i.value == 0 => {
                self.error(at(i), "iterations must be at least 1", None);
                None
            }
            Some(i) => Some(i.value as usize),
            None => None,
        };
        let rate = def.rate.as_ref().and_then(|r| match parse_rate(&r.value) {
            Ok(rate) => Some(rate),
            Err(message) => {
                self.error(at(r), message, Some("write a rate as `500/s` or `30000/min`".into()));
                None
            }
        });
        let coordinated_omission = match &def.coordinated_omission {
            None => CoMitigation::Disabled,
            Some(c) => match c.value.as_str() {
                "disabled" => CoMitigation::Disabled,
                "average" => CoMitigation::Average,
                "minimum" => CoMitigation::Minimum,
                "maximum" => CoMitigation::Maximum,
                other => {
                    self.error(
                        at(c),
                        format!("unknown coordinated_omission mode `{other}`"),
                        Some("one of: disabled, average, minimum, maximum".into()),
                    );
                    CoMitigation::Disabled
                }
            },
        };
        let assertion_pool = match &def.assertion_pool {
            Some(n) if n.value == 0 || n.value > 5_000_000 => {
                self.error(at(n), "assertion_pool must be between 1 and 5000000", None);
                None
            }
            Some(n) => Some(n.value as usize),
            None => None,
        };
        let mut thresholds = Vec::new();
        if let Some(t) = &def.thresholds {
            self.thresholds(t, None, &mut thresholds);
        }
        for (path, t) in &def.path_thresholds {
            if !paths.iter().any(|p| &p.name == path) {
                let span = first_span(t).unwrap_or_default();
                let names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
                let help = match did_you_mean(path, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("this profile's paths: {}", names.join(", ")),
                };
                self.error(
                    span,
                    format!("path_thresholds names `{path}`, which is not a path of this profile"),
                    Some(help),
                );
            }
            self.thresholds(t, Some(path.clone()), &mut thresholds);
        }
        Profile {
            source: self.source.clone(),
            name,
            description: def.description,
            paths,
            settings: RunSettings {
                users,
                ramp,
                duration,
                iterations,
                rate,
                max_duration,
                goose_report: None,
                assertion_pool,
            },
            coordinated_omission,
            thresholds,
        }
    }

    fn paths(&mut self, def: &LoadDef) -> Vec<PathSpec> {
        let mut paths = Vec::new();
        match def.path.value.as_str() {
            "mixed" => {
                if def.mix.is_empty() {
                    self.error(at(&def.path), "a mixed profile needs `mix:`, a list of paths with weights", None);
                }
                if let Some(c) = def.client.as_ref().or(def.token_client.as_ref()) {
                    self.error(at(c), "in a mixed profile, each `mix` entry names its client", None);
                }
                for entry in &def.mix {
                    let Some(kind) = self.kind(&entry.path, false) else { continue };
                    let name = entry.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| kind.name().to_string());
                    if paths.iter().any(|p: &PathSpec| p.name == name) {
                        let span = entry.name.as_ref().map(at).unwrap_or_else(|| at(&entry.path));
                        self.error(
                            span,
                            format!("two paths are named `{name}`"),
                            Some("give each `mix` entry a `name`".into()),
                        );
                    }
                    let weight = match &entry.weight {
                        Some(w) if w.value == 0 || w.value > 1000 => {
                            self.error(at(w), "weight must be between 1 and 1000", None);
                            1
                        }
                        Some(w) => w.value as usize,
                        None => 1,
                    };
                    if let Some(path) = self.path(name, kind, &fields_of!(entry), weight, at(&entry.path)) {
                        paths.push(path);
                    }
                }
            }
            _ => {
                if let Some(first) = def.mix.first() {
                    self.error(at(&first.path), "`mix` is for `path: mixed` profiles", None);
                }
                if let Some(kind) = self.kind(&def.path, true) {
                    if let Some(path) = self.path(kind.name().to_string(), kind, &fields_of!(def), 1, at(&def.path)) {
                        paths.push(path);
                    }
                }
            }
        }
        paths
    }

    fn kind(&mut self, path: &Spanned<String>, mixed_allowed: bool) -> Option<PathKind> {
        match path.value.as_str() {
            "token" => Some(PathKind::Token),
            "introspection" => Some(PathKind::Introspection),
            other => {
                let choices = if mixed_allowed { "token, introspection, mixed" } else { "token, introspection" };
                self.error(at(path), format!("unknown path `{other}`"), Some(format!("one of: {choices}")));
                None
            }
        }
    }

    fn path(
        &mut self,
        name: String,
        kind: PathKind,
        f: &PathFields<'_>,
        weight: usize,
        span: Span,
    ) -> Option<PathSpec> {
        let (client, client_span) = match (f.client, kind) {
            (Some(c), _) => (c.value.clone(), at(c)),
            (None, PathKind::Introspection) => (DEFAULT_INTROSPECTION_CLIENT.to_string(), span),
            (None, PathKind::Token) => {
                self.error(span, "a token path needs `client:` (a client of the target)", None);
                return None;
            }
        };
        let token_client = f.token_client.as_ref().map(|c| (c.value.clone(), at(c)));
        let tokens = f.tokens.as_ref().map(|t| (t.value, at(t)));
        match kind {
            PathKind::Token => {
                if let Some(c) = &f.token_client {
                    self.error(at(c), "`token_client` is for introspection paths", None);
                }
                if let Some((_, span)) = tokens {
                    self.error(span, "`tokens` is for introspection paths", None);
                }
            }
            PathKind::Introspection if token_client.is_none() => {
                self.error(span, "an introspection path needs `token_client:` (whose tokens are introspected)", None);
                return None;
            }
            PathKind::Introspection => {
                if let Some((n, span)) = tokens.filter(|(n, _)| *n == 0 || *n > 10_000) {
                    self.error(span, format!("tokens must be between 1 and 10000, not {n}"), None);
                }
            }
        }
        Some(PathSpec {
            name,
            kind,
            client,
            client_span,
            auth: f.auth.as_ref().map(|a| a.value),
            token_client,
            tokens: tokens.map(|(n, _)| n as usize).unwrap_or(DEFAULT_INTROSPECTION_TOKENS),
            weight,
        })
    }

    fn duration(&mut self, d: &Option<Spanned<String>>, key: &str, zero_ok: bool) -> Option<Duration> {
        let d = d.as_ref()?;
        match humantime::parse_duration(d.value.trim()) {
            Ok(v) if v.is_zero() && !zero_ok => {
                self.error(at(d), format!("{key} must be longer than zero"), None);
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    at(d),
                    format!("{key}: `{}` is not a duration ({e})", d.value),
                    Some("e.g. `30s`, `2m`".into()),
                );
                None
            }
        }
    }

    fn thresholds(&mut self, def: &ThresholdsDef, path: Option<String>, out: &mut Vec<Threshold>) {
        let entries = [
            (Metric::P50, &def.p50_ms),
            (Metric::P95, &def.p95_ms),
            (Metric::P99, &def.p99_ms),
            (Metric::MaxErrorRate, &def.max_error_rate),
            (Metric::MinRps, &def.min_rps),
        ];
        for (metric, value) in entries {
            let Some(value) = value else { continue };
            let limit = value.value;
            let problem = match metric {
                _ if !limit.is_finite() => Some("a threshold must be a finite number".to_string()),
                Metric::MaxErrorRate if !(0.0..=1.0).contains(&limit) => {
                    Some(format!("max_error_rate is a fraction between 0 and 1 (0.01 = 1%), not {limit}"))
                }
                Metric::P50 | Metric::P95 | Metric::P99 | Metric::MinRps if limit <= 0.0 => {
                    Some(format!("{} must be greater than zero, not {limit}", metric.key()))
                }
                _ => None,
            };
            match problem {
                Some(message) => self.error(at(value), message, None),
                None => out.push(Threshold { path: path.clone(), metric, limit }),
            }
        }
    }
}

fn first_span(def: &ThresholdsDef) -> Option<Span> {
    [&def.p50_ms, &def.p95_ms, &def.p99_ms, &def.max_error_rate, &def.min_rps].into_iter().flatten().next().map(at)
}

/// `500/s`, `30000/min`, or a bare number of requests per second.
pub fn parse_rate(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, per) = match text.split_once('/') {
        Some((n, unit)) => (n.trim(), unit.trim()),
        None => (text, "s"),
    };
    let divisor = match per {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        other => return Err(format!("unknown rate unit `/{other}`")),
    };
    let n: f64 = number.parse().map_err(|_| format!("`{text}` is not a rate"))?;
    let per_second = n / divisor;
    if !per_second.is_finite() || !(1.0..=1_000_000.0).contains(&per_second) {
        return Err(format!("rate `{text}` must be between 1/s and 1000000/s"));
    }
    Ok(per_second.round() as usize)
}

/// Checks the profile against the target: every client exists and can authenticate as asked.
pub fn check_against(profile: &Profile, target: &Target) -> Vec<LocatedError> {
    let mut errors = Vec::new();
    let names: Vec<&str> = target.client_names().collect();
    let need = |client: &str, span: Span, auth: Option<ClientAuth>, errors: &mut Vec<LocatedError>| {
        let Some(c) = target.clients.get(client) else {
            let mut e = profile.source.error_at(span, format!("the target has no client `{client}`"));
            e = match did_you_mean(client, names.iter().copied()) {
                Some(best) => e.with_help(format!("did you mean `{best}`? ({})", target.origin)),
                None => e.with_help(format!("clients of {}: {}", target.origin, names.join(", "))),
            };
            errors.push(e);
            return;
        };
        let auth = auth.unwrap_or(c.auth);
        let problem = match auth {
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost if c.secret.is_none() => {
                Some("has no client_secret")
            }
            ClientAuth::PrivateKeyJwt if c.key.is_none() => Some("has no private_key"),
            ClientAuth::TlsClientAuth if c.identity.is_none() => Some("has no certificate"),
            _ => None,
        };
        if let Some(problem) = problem {
            errors.push(profile.source.error_at(span, format!("client `{client}` {problem}, which {auth:?} needs")));
        }
    };
    for path in &profile.paths {
        need(&path.client, path.client_span, path.auth, &mut errors);
        if let Some((client, span)) = &path.token_client {
            need(client, *span, None, &mut errors);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Profile, Vec<String>> {
        let source = SourceFile::new(Path::new("p.yaml"), text.to_string());
        parse(&source).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn single_path_profile_gets_defaults() {
        let p = parse_text("load:\n  path: token\n  client: confidential\n").unwrap();
        assert_eq!(p.paths.len(), 1);
        assert_eq!(p.paths[0].name, "token");
        assert_eq!(p.settings.users, DEFAULT_USERS);
        assert_eq!(p.settings.duration, DEFAULT_DURATION);
        assert!(p.thresholds.is_empty());
    }

    #[test]
    fn thresholds_are_parsed_per_scope() {
        let text = "load:\n  path: mixed\n  mix:\n    - { path: token, client: a, weight: 3 }\n    - { path: introspection, token_client: a }\n  thresholds: { p95_ms: 250, error_rate: 0.01 }\n  path_thresholds:\n    introspection: { min_rps: 10 }\n";
        let p = parse_text(text).unwrap();
        assert_eq!(p.paths[0].weight, 3);
        assert_eq!(p.paths[1].client, DEFAULT_INTROSPECTION_CLIENT);
        assert_eq!(
            p.thresholds,
            vec![
                Threshold { path: None, metric: Metric::P95, limit: 250.0 },
                Threshold { path: None, metric: Metric::MaxErrorRate, limit: 0.01 },
                Threshold { path: Some("introspection".into()), metric: Metric::MinRps, limit: 10.0 },
            ]
        );
    }

    #[test]
    fn malformed_thresholds_are_located() {
        let errs =
            parse_text("load:\n  path: token\n  client: a\n  thresholds:\n    p95_ms: -1\n    max_error_rate: 5\n")
                .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("p95_ms must be greater than zero") && errs[0].contains("p.yaml:5:13"), "{errs:?}");
        assert!(errs[1].contains("max_error_rate is a fraction") && errs[1].contains("p.yaml:6:21"), "{errs:?}");
        let errs = parse_text("load:\n  path: token\n  client: a\n  thresholds: { p96_ms: 1 }\n").unwrap_err();
        assert!(errs[0].contains("unknown field `p96_ms`"), "{errs:?}");
    }

    #[test]
    fn threshold_on_an_unknown_path_is_refused() {
        let errs =
            parse_text("load:\n  path: token\n  client: a\n  path_thresholds:\n    tokn: { p95_ms: 1 }\n").unwrap_err();
        assert!(errs[0].contains("`tokn`, which is not a path"), "{errs:?}");
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("500/s"), Ok(500));
        assert_eq!(parse_rate("600/min"), Ok(10));
        assert_eq!(parse_rate("42"), Ok(42));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5/h").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
