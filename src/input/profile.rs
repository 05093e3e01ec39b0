//! Load profiles: the YAML under a top-level `load:` key, validated whole before any traffic, with
//! every problem located at file:line:column (exit 2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::profile::*;
use crate::model::target::DEFAULT_INTROSPECTION_CLIENT;
use crate::model::{AuthMethod, Target};
use crate::support::diagnostics::{LocatedError, SourceFile, Span, did_you_mean};

/// A run may not be planned longer than a day.
const MAX_RUN: Duration = Duration::from_secs(24 * 3600);

const SHAPES: Shapes = &[
    ("users", "a whole number of users from 1 to 100000"),
    ("iterations", "a whole number of iterations, at least 1"),
    ("tokens", "a whole number of tokens from 1 to 10000"),
    ("weight", "a whole number from 1 to 1000"),
    ("assertion_pool", "a whole number from 1 to 5000000"),
    ("mix", "a list of paths, e.g. `[{ path: token, client: confidential, weight: 3 }]`"),
    ("thresholds", "a mapping of thresholds, e.g. `{ p95_ms: 250, max_error_rate: 0.01 }`"),
    ("path_thresholds", "a mapping of path names to thresholds"),
    ("p50_ms", "a number of milliseconds"),
    ("p95_ms", "a number of milliseconds"),
    ("p99_ms", "a number of milliseconds"),
    ("max_error_rate", "a fraction between 0 and 1"),
    ("error_rate", "a fraction between 0 and 1"),
    ("min_rps", "a number of requests per second"),
];

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
    auth: Option<Spanned<AuthMethod>>,
    /// Introspection: the client whose tokens are minted before the run and introspected.
    token_client: Option<Spanned<String>>,
    /// Introspection: how many tokens to mint and cycle through.
    tokens: Option<Spanned<i64>>,
    /// Token: every request carries a fresh DPoP proof (RFC 9449), signed ahead in a pool.
    dpop: Option<Spanned<bool>>,
    #[serde(default)]
    mix: Vec<MixEntry>,
    users: Option<Spanned<i64>>,
    ramp: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    iterations: Option<Spanned<i64>>,
    /// Target rate for the whole run, e.g. `500/s` (goose's request throttle).
    rate: Option<Spanned<String>>,
    /// The hard cap on the run's wall time.
    max_duration: Option<Spanned<String>>,
    coordinated_omission: Option<CoMitigation>,
    /// private_key_jwt: how many assertions to sign before traffic starts (default: enough for
    /// the rate — or 1000/s per user — over the run, at most 500000).
    assertion_pool: Option<Spanned<i64>>,
    /// Thresholds on all requests together.
    thresholds: Option<ThresholdsDef>,
    /// Thresholds on one path, by its name.
    #[serde(default)]
    path_thresholds: BTreeMap<String, ThresholdsDef>,
    /// How much worse than a `--baseline` run this one may be.
    regression: Option<RegressionDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegressionDef {
    p50: Option<Spanned<String>>,
    p95: Option<Spanned<String>>,
    p99: Option<Spanned<String>>,
    rps: Option<Spanned<String>>,
    error_rate: Option<Spanned<String>>,
}

/// What a path needs; from a single-path profile or a `mix` entry (serde's `flatten` cannot be
/// combined with `deny_unknown_fields`, so both spell the fields out).
struct PathFields<'a> {
    client: &'a Option<Spanned<String>>,
    auth: &'a Option<Spanned<AuthMethod>>,
    token_client: &'a Option<Spanned<String>>,
    tokens: &'a Option<Spanned<i64>>,
    dpop: &'a Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixEntry {
    name: Option<Spanned<String>>,
    path: Spanned<String>,
    /// The target client that authenticates: the token requester, or the introspection caller.
    client: Option<Spanned<String>>,
    /// Overrides the client's own authentication method.
    auth: Option<Spanned<AuthMethod>>,
    /// Introspection: the client whose tokens are minted before the run and introspected.
    token_client: Option<Spanned<String>>,
    /// Introspection: how many tokens to mint and cycle through.
    tokens: Option<Spanned<i64>>,
    /// Token: every request carries a fresh DPoP proof (RFC 9449).
    dpop: Option<Spanned<bool>>,
    weight: Option<Spanned<i64>>,
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

/// Loads and validates a profile file.
pub fn read_profile(path: &Path) -> Result<Profile, InputErrors> {
    let source = read_source(path)?;
    parse_profile(&source)
}

pub fn parse_profile(source: &SourceFile) -> Result<Profile, InputErrors> {
    let file: ProfileFile = yaml::parse(source, SHAPES).map_err(InputError::from)?;
    let mut v = Validator::new(source);
    let profile = profile(&mut v, file.load);
    v.finish(profile)
}

macro_rules! fields_of {
    ($def:expr) => {
        PathFields {
            client: &$def.client,
            auth: &$def.auth,
            token_client: &$def.token_client,
            tokens: &$def.tokens,
            dpop: &$def.dpop,
        }
    };
}

fn profile(v: &mut Validator<'_>, def: LoadDef) -> Profile {
    let name = v.source.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let paths = paths(v, &def);
    let users = def.users.as_ref().and_then(|u| v.number(u, "users", 1, MAX_USERS as i64)).map(|u| u as usize);
    let ramp = def.ramp.as_ref().and_then(|r| v.duration(r, "ramp", true, MAX_RUN)).unwrap_or(Duration::ZERO);
    let duration =
        def.duration.as_ref().and_then(|d| v.duration(d, "duration", false, MAX_RUN)).unwrap_or(DEFAULT_DURATION);
    let max_duration = def
        .max_duration
        .as_ref()
        .and_then(|d| v.duration(d, "max_duration", false, MAX_RUN))
        .unwrap_or(DEFAULT_MAX_DURATION);
    if let Some(d) = &def.duration {
        if duration + ramp > max_duration {
            v.error_help(
                at(d),
                format!("ramp + duration is longer than max_duration ({})", humantime::format_duration(max_duration)),
                "raise `max_duration` if the run really must be this long",
            );
        }
    }
    let iterations =
        def.iterations.as_ref().and_then(|i| v.number(i, "iterations", 1, 1_000_000_000)).map(|i| i as usize);
    // A run is either counted or timed: with both, one would be silently ignored.
    if let (Some(i), Some(_)) = (&def.iterations, &def.duration) {
        v.error_help(
            at(i),
            "a profile has `iterations` or `duration`, not both",
            "keep `iterations` for a counted run, `duration` for a timed one (`max_duration` still caps either)",
        );
    }
    let rate = def.rate.as_ref().and_then(|r| match parse_rate(&r.value) {
        Ok(rate) => Some(rate),
        Err(message) => {
            v.error_help(at(r), message, "write a rate as `500/s` or `30000/min`");
            None
        }
    });
    let assertion_pool = def
        .assertion_pool
        .as_ref()
        .and_then(|n| v.number(n, "assertion_pool", 1, MAX_ASSERTION_POOL as i64))
        .map(|n| n as usize);
    let mut thresholds = Vec::new();
    if let Some(t) = &def.thresholds {
        threshold_list(v, t, None, &mut thresholds);
    }
    for (path, t) in &def.path_thresholds {
        if !paths.iter().any(|p| &p.name == path) {
            let span = first_span(t).unwrap_or_default();
            let names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
            let help = match did_you_mean(path, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("this profile's paths: {}", names.join(", ")),
            };
            v.error_help(span, format!("path_thresholds names `{path}`, which is not a path of this profile"), help);
        }
        threshold_list(v, t, Some(path.clone()), &mut thresholds);
    }
    let regression = def.regression.as_ref().map(|r| regression_limits(v, r)).unwrap_or_default();
    Profile {
        source: v.source.clone(),
        name,
        description: def.description,
        paths,
        settings: RunSettings {
            users: users.unwrap_or(DEFAULT_USERS),
            ramp,
            duration,
            iterations,
            rate,
            max_duration,
            goose_report: None,
            assertion_pool,
            start_at: None,
            shard: None,
        },
        coordinated_omission: def.coordinated_omission.unwrap_or(CoMitigation::Disabled),
        thresholds,
        regression,
    }
}

/// `10%`, `-5%`, `0.5%`: a percentage, with the sign each metric needs.
fn regression_limits(v: &mut Validator<'_>, def: &RegressionDef) -> Vec<RegressionLimit> {
    let entries = [
        (RegressionMetric::P50, &def.p50),
        (RegressionMetric::P95, &def.p95),
        (RegressionMetric::P99, &def.p99),
        (RegressionMetric::Rps, &def.rps),
        (RegressionMetric::ErrorRate, &def.error_rate),
    ];
    let mut limits = Vec::new();
    for (metric, value) in entries {
        let Some(value) = value else { continue };
        let text = value.value.trim();
        let Some(number) = text.strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok()).filter(|n| n.is_finite())
        else {
            v.error_help(
                at(value),
                format!("regression.{} `{text}` is not a percentage", metric.key()),
                "write it as `10%` (or `-5%` for rps)",
            );
            continue;
        };
        let wrong_sign = match metric {
            RegressionMetric::Rps => number > 0.0,
            _ => number < 0.0,
        };
        if wrong_sign || number.abs() > 1000.0 {
            let help = match metric {
                RegressionMetric::Rps => "an rps limit is the largest drop allowed: e.g. `-5%`",
                RegressionMetric::ErrorRate => "percentage points the error rate may grow by: e.g. `0.5%`",
                _ => "how much slower the run may be: e.g. `10%`",
            };
            v.error_help(at(value), format!("regression.{} `{text}` has the wrong sign or size", metric.key()), help);
            continue;
        }
        limits.push(RegressionLimit { metric, limit: number / 100.0 });
    }
    limits
}

fn paths(v: &mut Validator<'_>, def: &LoadDef) -> Vec<PathSpec> {
    let mut paths = Vec::new();
    if def.path.value == "mixed" {
        if def.mix.is_empty() {
            v.error(at(&def.path), "a mixed profile needs `mix:`, a list of paths with weights");
        }
        if let Some(c) = def.client.as_ref().or(def.token_client.as_ref()) {
            v.error(at(c), "in a mixed profile, each `mix` entry names its client");
        }
        for entry in &def.mix {
            let Some(kind) = kind(v, &entry.path, false) else { continue };
            let name = entry.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| kind.name().to_string());
            if paths.iter().any(|p: &PathSpec| p.name == name) {
                let span = entry.name.as_ref().map(at).unwrap_or_else(|| at(&entry.path));
                v.error_help(span, format!("two paths are named `{name}`"), "give each `mix` entry a `name`");
            }
            let weight = entry.weight.as_ref().and_then(|w| v.number(w, "weight", 1, 1000)).unwrap_or(1) as usize;
            if let Some(path) = path(v, name, kind, &fields_of!(entry), weight, at(&entry.path)) {
                paths.push(path);
            }
        }
    } else {
        if let Some(first) = def.mix.first() {
            v.error(at(&first.path), "`mix` is for `path: mixed` profiles");
        }
        if let Some(kind) = kind(v, &def.path, true) {
            if let Some(path) = path(v, kind.name().to_string(), kind, &fields_of!(def), 1, at(&def.path)) {
                paths.push(path);
            }
        }
    }
    paths
}

fn kind(v: &mut Validator<'_>, path: &Spanned<String>, mixed_allowed: bool) -> Option<PathKind> {
    let choices: &[&str] =
        if mixed_allowed { &["token", "introspection", "mixed"] } else { &["token", "introspection"] };
    match v.one_of(path, "path", choices)? {
        "token" => Some(PathKind::Token),
        "introspection" => Some(PathKind::Introspection),
        _ => None,
    }
}

fn path(
    v: &mut Validator<'_>,
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
            v.error(span, "a token path needs `client:` (a client of the target)");
            return None;
        }
    };
    let token_client = f.token_client.as_ref().map(|c| (c.value.clone(), at(c)));
    let mut tokens = DEFAULT_INTROSPECTION_TOKENS;
    if let (PathKind::Introspection, Some(d)) = (kind, f.dpop) {
        v.error(at(d), "`dpop` is for token paths (a DPoP proof goes with the token request)");
    }
    match kind {
        PathKind::Token => {
            if let Some(c) = &f.token_client {
                v.error(at(c), "`token_client` is for introspection paths");
            }
            if let Some(t) = f.tokens {
                v.error(at(t), "`tokens` is for introspection paths");
            }
        }
        PathKind::Introspection if token_client.is_none() => {
            v.error(span, "an introspection path needs `token_client:` (whose tokens are introspected)");
            return None;
        }
        PathKind::Introspection => {
            if let Some(t) = f.tokens {
                tokens = v.number(t, "tokens", 1, MAX_INTROSPECTION_TOKENS as i64).unwrap_or(1) as usize;
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
        tokens,
        dpop: f.dpop.as_ref().is_some_and(|d| d.value),
        weight,
    })
}

fn threshold_list(v: &mut Validator<'_>, def: &ThresholdsDef, path: Option<String>, out: &mut Vec<Threshold>) {
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
            Some(message) => {
                v.error(at(value), message);
            }
            None => out.push(Threshold { path: path.clone(), metric, limit }),
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
pub fn check_profile_against(profile: &Profile, target: &Target) -> Vec<LocatedError> {
    let mut errors = Vec::new();
    let names: Vec<&str> = target.client_names().collect();
    let need = |client: &str, span: Span, auth: Option<AuthMethod>, errors: &mut Vec<LocatedError>| {
        let Some(c) = target.clients.get(client) else {
            let mut e = profile.source.error_at(span, format!("the target has no client `{client}`"));
            e = match did_you_mean(client, names.iter().copied()) {
                Some(best) => e.with_help(format!("did you mean `{best}`? ({})", target.origin)),
                None => e.with_help(format!("clients of {}: {}", target.origin, names.join(", "))),
            };
            errors.push(e);
            return;
        };
        if let Some(problem) = &c.unusable {
            errors.push((**problem).clone());
            return;
        }
        let auth = auth.unwrap_or(c.auth);
        if let Some(missing) = c.lacks_for(auth) {
            errors.push(profile.source.error_at(
                span,
                format!("client `{client}` has no {}, which {auth} needs", missing.trim_start_matches("a ")),
            ));
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
        parse_profile(&source).map_err(|errs| errs.0.iter().map(|e| e.to_string()).collect())
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
        assert!(errs[0].contains("unknown key `p96_ms`"), "{errs:?}");
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
