//! Run over run: a report compared with a previous one (`--baseline PREVIOUS.json`), path by
//! path, on p50/p95/p99, rate and error rate; the profile's regression limits judged on the
//! changes, and failing the run like thresholds.

use super::report::{BaselineComparison, Change, LoadReport, PathSummary, RegressionOutcome};
use crate::model::profile::{RegressionLimit, RegressionMetric};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    #[error("{file} is a report of profile `{theirs}`, not `{ours}`: a baseline must be a run of the same profile")]
    OtherProfile { file: String, theirs: String, ours: String },
    #[error("{file} shares no path with this run")]
    NoCommonPath { file: String },
}

fn figure(p: &PathSummary, metric: RegressionMetric) -> Option<f64> {
    match metric {
        RegressionMetric::P50 => p.latency_ms.p50,
        RegressionMetric::P95 => p.latency_ms.p95,
        RegressionMetric::P99 => p.latency_ms.p99,
        RegressionMetric::Rps => (p.requests > 0).then_some(p.rps),
        RegressionMetric::ErrorRate => (p.requests > 0).then_some(p.error_rate),
    }
}

fn change(metric: RegressionMetric, baseline: Option<f64>, current: Option<f64>) -> Option<f64> {
    let (b, c) = (baseline?, current?);
    match metric {
        RegressionMetric::ErrorRate => Some(c - b),
        _ if b > 0.0 => Some((c - b) / b),
        _ => None,
    }
}

/// Compares `current` with `baseline` (read from `file`) and judges `limits`.
pub fn compare(
    current: &LoadReport,
    baseline: &LoadReport,
    file: &str,
    limits: &[RegressionLimit],
) -> Result<BaselineComparison, BaselineError> {
    if baseline.profile != current.profile {
        return Err(BaselineError::OtherProfile {
            file: file.into(),
            theirs: baseline.profile.clone(),
            ours: current.profile.clone(),
        });
    }
    let pairs: Vec<(&PathSummary, &PathSummary)> = std::iter::once((&current.total, &baseline.total))
        .chain(current.paths.iter().filter_map(|p| baseline.paths.iter().find(|b| b.name == p.name).map(|b| (p, b))))
        .collect();
    if pairs.len() < 2 && !current.paths.is_empty() {
        return Err(BaselineError::NoCommonPath { file: file.into() });
    }
    let mut rows = Vec::new();
    for (cur, base) in &pairs {
        for metric in RegressionMetric::ALL {
            let (b, c) = (figure(base, *metric), figure(cur, *metric));
            rows.push(Change {
                path: cur.name.clone(),
                metric: *metric,
                baseline: b,
                current: c,
                change: change(*metric, b, c),
            });
        }
    }
    let mut outcomes = Vec::new();
    for limit in limits {
        for row in rows.iter().filter(|r| r.metric == limit.metric) {
            // A figure that cannot be compared (no samples on one side) proves nothing: it fails.
            let passed = match (row.change, limit.metric) {
                (None, _) => false,
                (Some(c), RegressionMetric::Rps) => c >= limit.limit,
                (Some(c), _) => c <= limit.limit,
            };
            outcomes.push(RegressionOutcome {
                path: row.path.clone(),
                metric: limit.metric,
                limit: limit.limit,
                change: row.change,
                passed,
                rule: limit.rule(),
            });
        }
    }
    Ok(BaselineComparison { file: file.into(), started_at: baseline.started_at.clone(), rows, limits: outcomes })
}
