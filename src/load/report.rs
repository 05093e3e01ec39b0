//! The load report's data: a stable JSON shape (`format` names its version) that keeps each path's
//! histogram, so runs can be merged or re-analysed later. Renderers live in `crate::report::load`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pool::PoolReport;
use super::shard::Shard;
use super::stats::{PathStats, Second};
use super::thresholds::ThresholdOutcome;
use crate::model::profile::{CoMitigation, RegressionLimit, RegressionMetric, Threshold};

/// The report's shape. v2 added what merging and baselines need: the profile's digest and
/// thresholds, the shard, the traffic's start to the millisecond, the baseline comparison. v3
/// renamed `assertion_pools` to `signing_pools` (it holds the DPoP proof pools too).
pub const FORMAT: &str = "oauth-harness/load-report/v3";

/// The formats `load merge` and `--baseline` read: v2 differs from v3 only by that name.
pub const READABLE_FORMATS: &[&str] = &[FORMAT, "oauth-harness/load-report/v2"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub format: String,
    pub profile: String,
    /// SHA-256 of the profile file: `load merge` merges only reports of the same profile.
    pub profile_digest: String,
    pub description: Option<String>,
    pub target: String,
    pub target_origin: String,
    pub started_at: String,
    /// Unix time (ms) traffic started: shards' timelines are aligned on it when merged.
    pub traffic_started_unix_ms: u64,
    /// Wall time of the run, ramp included; the rates are computed over it.
    pub duration_secs: f64,
    /// Set for one shard of a distributed run (`--shard`); its thresholds are judged by `merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a merged report: how many shard reports it adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<usize>,
    /// Stopped early by Ctrl-C: the figures are those of the part that ran.
    pub interrupted: bool,
    /// Stopped by `max_duration`, the hard cap.
    pub stopped_by_cap: bool,
    pub settings: Settings,
    pub total: PathSummary,
    pub paths: Vec<PathSummary>,
    /// The profile's thresholds, as written (judged again on merged figures).
    pub profile_thresholds: Vec<Threshold>,
    /// The profile's regression limits (judged against a `--baseline`).
    pub regression_limits: Vec<RegressionLimit>,
    pub thresholds: Vec<ThresholdOutcome>,
    pub thresholds_passed: bool,
    /// The comparison with a `--baseline` report, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineComparison>,
    /// The pre-signed JWT pools by path: client assertions, and DPoP proofs (`PATH (DPoP proofs)`).
    #[serde(alias = "assertion_pools")]
    pub signing_pools: BTreeMap<String, PoolReport>,
    pub notes: Vec<String>,
}

/// A run compared with a baseline (`load::baseline` makes it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// The baseline report's file and when it ran.
    pub file: String,
    pub started_at: String,
    /// Every figure of every path present in both, with its change.
    pub rows: Vec<Change>,
    /// The regression limits, judged on `rows`.
    pub limits: Vec<RegressionOutcome>,
}

impl BaselineComparison {
    pub fn passed(&self) -> bool {
        self.limits.iter().all(|l| l.passed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// `all`, or a path's name.
    pub path: String,
    pub metric: RegressionMetric,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Relative change (0.12 = 12% more); for the error rate, the difference in points.
    pub change: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressionOutcome {
    pub path: String,
    pub metric: RegressionMetric,
    pub limit: f64,
    pub change: Option<f64>,
    pub passed: bool,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub users: usize,
    pub ramp_secs: f64,
    pub duration_secs: Option<f64>,
    pub iterations: Option<usize>,
    /// Requests per second the run was throttled to (`rate:`), if any.
    pub rate: Option<usize>,
    pub coordinated_omission: CoMitigation,
    pub max_duration_secs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathSummary {
    pub name: String,
    pub kind: String,
    /// How the requests went on the wire: `hyper` (plain HTTP) or `reqwest` (TLS, mTLS).
    pub transport: String,
    pub weight: usize,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub latency_ms: Latency,
    /// Error counts by cause (`status 500`, `body: no access_token`, `transport: timeout`).
    pub failures: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    pub timeline: Vec<Second>,
    pub histogram: HistogramDump,
}

/// Latency figures from the HDR histogram (3 significant digits), in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// The histogram itself: every recorded value (µs, at its bucket's highest equivalent value) with
/// its count. Re-recording these into a histogram of the same bounds reproduces it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramDump {
    pub unit: String,
    pub significant_digits: u8,
    pub values: Vec<[u64; 2]>,
}

impl LoadReport {
    /// Not one request succeeded: a run like that fails whatever its thresholds say.
    pub fn nothing_succeeded(&self) -> bool {
        self.total.requests == self.total.errors
    }

    /// Every threshold and regression limit held, and something succeeded.
    pub fn passed(&self) -> bool {
        self.thresholds_passed && self.baseline.as_ref().is_none_or(|b| b.passed()) && !self.nothing_succeeded()
    }

    /// The run's verdict. An interrupted run outranks its figures, as for `run`: thresholds judged
    /// on part of a profile say nothing about the profile, so it is never PASSED.
    pub fn verdict(&self) -> LoadVerdict {
        if self.interrupted {
            LoadVerdict::Interrupted
        } else if self.passed() {
            LoadVerdict::Passed
        } else {
            LoadVerdict::Failed
        }
    }
}

/// What a load report heads with, in every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadVerdict {
    Passed,
    Failed,
    Interrupted,
}

impl LoadVerdict {
    pub fn word(self) -> &'static str {
        match self {
            LoadVerdict::Passed => "PASSED",
            LoadVerdict::Failed => "FAILED",
            LoadVerdict::Interrupted => "INTERRUPTED",
        }
    }
}

impl PathSummary {
    pub fn new(name: &str, kind: &str, transport: &str, weight: usize, stats: &PathStats, seconds: f64) -> Self {
        let h = &stats.histogram;
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                min: Some(ms(h.min())),
                mean: Some(h.mean() / 1000.0),
                p50: stats.quantile_ms(0.50),
                p90: stats.quantile_ms(0.90),
                p95: stats.quantile_ms(0.95),
                p99: stats.quantile_ms(0.99),
                p999: stats.quantile_ms(0.999),
                max: Some(ms(h.max())),
            }
        };
        let values =
            h.iter_recorded().map(|v| [h.highest_equivalent(v.value_iterated_to()), v.count_at_value()]).collect();
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            transport: transport.to_string(),
            weight,
            requests: stats.requests,
            errors: stats.errors,
            error_rate: stats.error_rate(),
            rps: if seconds > 0.0 { stats.requests as f64 / seconds } else { 0.0 },
            latency_ms: latency,
            failures: stats.failures.clone(),
            status_codes: stats.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            timeline: stats.timeline.clone(),
            histogram: HistogramDump { unit: "us".into(), significant_digits: 3, values },
        }
    }

    /// The counts a harness writes agree with each other: every request is in the histogram
    /// (coordinated-omission mitigation adds more), the timeline and the statuses, every error
    /// is a request and has a label. A report edited by hand, or cut short, that breaks one
    /// would make merged percentiles and rates that no run measured.
    fn consistent(&self, latencies: u64) -> Result<(), String> {
        let sum = |values: &mut dyn Iterator<Item = u64>| values.fold(0u64, u64::saturating_add);
        let timeline_requests = sum(&mut self.timeline.iter().map(|s| s.requests));
        let timeline_errors = sum(&mut self.timeline.iter().map(|s| s.errors));
        let statuses = sum(&mut self.status_codes.values().copied());
        let labelled = sum(&mut self.failures.values().copied());
        let problem = if latencies < self.requests {
            format!("the histogram holds {latencies} latencies for {} requests", self.requests)
        } else if self.errors > self.requests {
            format!("{} errors for {} requests", self.errors, self.requests)
        } else if timeline_requests != self.requests || timeline_errors != self.errors {
            format!(
                "the timeline counts {timeline_requests} requests and {timeline_errors} errors, the path {} and {}",
                self.requests, self.errors
            )
        } else if statuses > self.requests {
            format!("{statuses} status codes for {} requests", self.requests)
        } else if labelled != self.errors {
            format!("{labelled} labelled failures for {} errors", self.errors)
        } else {
            return Ok(());
        };
        Err(format!("path `{}`: {problem}: the report was altered or cut short", self.name))
    }

    /// The figures back from a report (for merging): the histogram re-recorded from its dump.
    pub fn stats(&self) -> Result<PathStats, String> {
        if self.histogram.unit != "us" || self.histogram.significant_digits != 3 {
            return Err(format!(
                "path `{}`: a histogram in {} at {} digits (this version writes µs at 3)",
                self.name, self.histogram.unit, self.histogram.significant_digits
            ));
        }
        let mut histogram = super::stats::new_histogram();
        for [value, count] in &self.histogram.values {
            histogram
                .record_n(*value, *count)
                .map_err(|e| format!("path `{}`: histogram value {value}: {e}", self.name))?;
        }
        let statuses = self
            .status_codes
            .iter()
            .map(|(k, v)| k.parse::<u16>().map(|k| (k, *v)).map_err(|_| format!("path `{}`: status `{k}`", self.name)))
            .collect::<Result<_, _>>()?;
        self.consistent(histogram.len())?;
        Ok(PathStats {
            histogram,
            requests: self.requests,
            errors: self.errors,
            failures: self.failures.clone(),
            statuses,
            timeline: self.timeline.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::{LiveCounters, PathRecorder, new_histogram};
    use std::time::Duration;

    #[test]
    fn the_histogram_dump_reproduces_the_histogram() {
        let recorder = PathRecorder::new(std::sync::Arc::<LiveCounters>::default());
        for i in 0..5000u64 {
            recorder.record(Duration::from_micros(37 + i * i % 900_000), Some(200), None, None);
        }
        let stats = recorder.snapshot();
        let dump = PathSummary::new("p", "token", "hyper", 1, &stats, 1.0).histogram;
        let mut rebuilt = new_histogram();
        for [value, count] in dump.values {
            rebuilt.record_n(value, count).unwrap();
        }
        assert_eq!(rebuilt.len(), stats.histogram.len());
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(rebuilt.value_at_quantile(q), stats.histogram.value_at_quantile(q), "q={q}");
        }
    }

    #[test]
    fn a_report_whose_counts_disagree_is_refused_and_a_written_one_is_not() {
        let recorder = PathRecorder::new(std::sync::Arc::<LiveCounters>::default());
        for i in 0..100u64 {
            recorder.record(Duration::from_micros(100 + i), Some(200), None, Some(50));
        }
        let summary = PathSummary::new("p", "token", "hyper", 1, &recorder.snapshot(), 1.0);
        assert!(summary.stats().is_ok(), "{:?}", summary.stats().err());
        let altered = [
            PathSummary { requests: 1000, ..summary.clone() },
            PathSummary { errors: 101, ..summary.clone() },
            PathSummary { errors: 3, ..summary.clone() },
            PathSummary { status_codes: [("200".to_string(), 500)].into(), ..summary.clone() },
        ];
        for a in altered {
            let e = a.stats().err().unwrap_or_default();
            assert!(e.contains("altered or cut short"), "{e}");
        }
    }
}
