//! A validated load profile: the paths to drive, how a run goes, and the thresholds that judge it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::AuthMethod;
use crate::support::diagnostics::{SourceFile, Span};

pub const DEFAULT_USERS: usize = 10;
pub const MAX_USERS: usize = 100_000;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// Every run stops by itself: an iterations-bounded run is cut here if it has not finished.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);
pub const DEFAULT_INTROSPECTION_TOKENS: usize = 16;
pub const MAX_INTROSPECTION_TOKENS: usize = 10_000;
pub const MAX_ASSERTION_POOL: usize = 5_000_000;

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
    /// How much worse than a baseline run this one may be (`--baseline`).
    pub regression: Vec<RegressionLimit>,
}

/// How a run goes: read from the profile, which the command line may then override.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub users: usize,
    pub ramp: Duration,
    pub duration: Duration,
    pub iterations: Option<usize>,
    /// Requests per second for the whole run, when a target rate is asked for.
    pub rate: Option<usize>,
    pub max_duration: Duration,
    /// goose's own HTML report (it loads its chart library from a CDN).
    pub goose_report: Option<PathBuf>,
    /// How many private_key_jwt assertions to sign ahead; derived from the rate when absent.
    pub assertion_pool: Option<usize>,
    /// Traffic waits until this instant (every shard of a distributed run the same one).
    pub start_at: Option<std::time::SystemTime>,
    /// Which shard of a distributed run this is (settings already split to its part).
    pub shard: Option<(usize, usize)>,
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
    pub auth: Option<AuthMethod>,
    pub token_client: Option<(String, Span)>,
    pub tokens: usize,
    /// Every token request carries a fresh DPoP proof (RFC 9449 §4).
    pub dpop: bool,
    pub weight: usize,
}

/// goose's coordinated-omission mitigation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoMitigation {
    Disabled,
    Average,
    Minimum,
    Maximum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What a regression limit compares with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionMetric {
    P50,
    P95,
    P99,
    Rps,
    ErrorRate,
}

impl RegressionMetric {
    pub const ALL: &'static [RegressionMetric] = &[
        RegressionMetric::P50,
        RegressionMetric::P95,
        RegressionMetric::P99,
        RegressionMetric::Rps,
        RegressionMetric::ErrorRate,
    ];

    pub fn key(self) -> &'static str {
        match self {
            RegressionMetric::P50 => "p50",
            RegressionMetric::P95 => "p95",
            RegressionMetric::P99 => "p99",
            RegressionMetric::Rps => "rps",
            RegressionMetric::ErrorRate => "error_rate",
        }
    }
}

/// `regression: { p95: 10%, rps: -5%, error_rate: 0.5% }`: latency may grow by at most the
/// fraction, the rate drop by at most it, the error rate grow by at most those percentage
/// points — per path and for all requests, against the baseline's same figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionLimit {
    pub metric: RegressionMetric,
    /// A fraction: 0.10 for `10%`, -0.05 for `-5%`.
    pub limit: f64,
}

impl RegressionLimit {
    /// As the reports show it, e.g. `p95 +10% at most`.
    pub fn rule(&self) -> String {
        let pct = self.limit * 100.0;
        match self.metric {
            RegressionMetric::Rps => format!("rps {pct:+}% at most (a drop)"),
            RegressionMetric::ErrorRate => format!("error_rate +{pct} points at most"),
            m => format!("{} +{pct}% at most", m.key()),
        }
    }
}
