//! Thresholds judged at the end of a run, on our HDR figures. A threshold on a path that recorded
//! nothing fails: an empty measurement proves nothing, and passing it silently is a known trap.

use serde::{Deserialize, Serialize};

use super::stats::PathStats;
use crate::model::profile::{Metric, Threshold};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// `all` or the path's name.
    pub scope: String,
    pub metric: Metric,
    pub limit: f64,
    /// `None` when the scope recorded no samples.
    pub observed: Option<f64>,
    pub passed: bool,
    /// How far past the limit, as a fraction of it (0.25 = 25% over a ceiling or under a floor).
    pub exceeded_by: Option<f64>,
    pub rule: String,
}

/// Judges every threshold. `find` gives the figures of a scope (`None`: all requests), and
/// `seconds` is the measured duration the rates are computed over.
pub fn evaluate<'a>(
    thresholds: &[Threshold],
    find: impl Fn(Option<&str>) -> Option<&'a PathStats>,
    seconds: f64,
) -> Vec<ThresholdOutcome> {
    thresholds
        .iter()
        .map(|t| {
            let stats = find(t.path.as_deref()).filter(|s| s.requests > 0);
            let observed = stats.and_then(|s| observe(t.metric, s, seconds));
            let passed = match observed {
                None => false,
                Some(v) if t.metric.is_floor() => v >= t.limit,
                Some(v) => v <= t.limit,
            };
            let exceeded_by = match observed {
                Some(v) if !passed && t.limit > 0.0 => Some((v - t.limit).abs() / t.limit),
                _ => None,
            };
            ThresholdOutcome {
                scope: t.path.clone().unwrap_or_else(|| "all".into()),
                metric: t.metric,
                limit: t.limit,
                observed,
                passed,
                exceeded_by,
                rule: t.rule(),
            }
        })
        .collect()
}

fn observe(metric: Metric, s: &PathStats, seconds: f64) -> Option<f64> {
    match metric {
        Metric::P50 => s.quantile_ms(0.50),
        Metric::P95 => s.quantile_ms(0.95),
        Metric::P99 => s.quantile_ms(0.99),
        Metric::MaxErrorRate => Some(s.error_rate()),
        Metric::MinRps if seconds > 0.0 => Some(s.requests as f64 / seconds),
        Metric::MinRps => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::{Failure, LiveCounters, PathRecorder};
    use std::time::Duration;

    fn stats(ms: &[u64], failures: usize) -> PathStats {
        let r = PathRecorder::new(std::sync::Arc::<LiveCounters>::default());
        for (i, m) in ms.iter().enumerate() {
            let f = (i < failures).then_some(Failure::Status(500));
            r.record(Duration::from_millis(*m), Some(200), f.as_ref(), None);
        }
        r.snapshot()
    }

    fn t(metric: Metric, limit: f64, path: Option<&str>) -> Threshold {
        Threshold { path: path.map(String::from), metric, limit }
    }

    #[test]
    fn ceilings_floors_and_margins() {
        let s = stats(&[10; 100], 10);
        let verdicts = evaluate(
            &[
                t(Metric::P95, 0.001, None),
                t(Metric::P95, 20.0, None),
                t(Metric::MaxErrorRate, 0.05, None),
                t(Metric::MinRps, 200.0, None),
                t(Metric::MinRps, 10.0, None),
            ],
            |_| Some(&s),
            1.0,
        );
        let passed: Vec<bool> = verdicts.iter().map(|v| v.passed).collect();
        assert_eq!(passed, [false, true, false, false, true]);
        assert!((verdicts[2].observed.unwrap() - 0.10).abs() < 1e-9);
        assert!((verdicts[2].exceeded_by.unwrap() - 1.0).abs() < 1e-9, "0.10 is 100% over 0.05");
        assert!((verdicts[3].exceeded_by.unwrap() - 0.5).abs() < 1e-9, "100 rps is 50% under 200");
    }

    #[test]
    fn a_scope_without_samples_fails() {
        let empty = PathStats::default();
        let v = evaluate(&[t(Metric::MaxErrorRate, 1.0, Some("introspection"))], |_| Some(&empty), 10.0);
        assert!(!v[0].passed && v[0].observed.is_none());
        let v = evaluate(&[t(Metric::P99, 1e9, Some("gone"))], |_| None, 10.0);
        assert!(!v[0].passed);
    }
}
