//! What a load run measures, per path: an HDR histogram of latencies (goose's own percentiles come
//! from rounded buckets), counts by outcome and status, and a per-second timeline for the charts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to one hour, to 3 significant digits.
const HIGHEST_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| unreachable!("constant, valid bounds"))
}

/// Why a request counted as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an unexpected status.
    Status(u16),
    /// The status was right, the body was not (e.g. no `access_token`).
    Body(&'static str),
    /// No answer: connection, timeout, TLS.
    Transport(&'static str),
    /// No client assertion could be had in time (the pool was empty and stayed empty).
    NoAssertion,
    /// No DPoP proof could be had in time.
    NoDpopProof,
}

impl Failure {
    pub fn label(&self) -> String {
        match self {
            Failure::Status(s) => format!("status {s}"),
            Failure::Body(what) => format!("body: {what}"),
            Failure::Transport(what) => format!("transport: {what}"),
            Failure::NoAssertion => "no client assertion".to_string(),
            Failure::NoDpopProof => "no DPoP proof".to_string(),
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Second {
    pub requests: u64,
    pub errors: u64,
    pub latency_sum_us: u64,
    pub latency_max_us: u64,
}

/// Everything measured on one path.
#[derive(Debug, Clone)]
pub struct PathStats {
    pub histogram: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    pub failures: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub timeline: Vec<Second>,
}

impl Default for PathStats {
    fn default() -> Self {
        Self {
            histogram: new_histogram(),
            requests: 0,
            errors: 0,
            failures: BTreeMap::new(),
            statuses: BTreeMap::new(),
            timeline: Vec::new(),
        }
    }
}

impl PathStats {
    /// Adds another path's figures (for the "all requests" line, or merging runs).
    pub fn merge(&mut self, other: &PathStats) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.requests += other.requests;
        self.errors += other.errors;
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), Second::default());
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.requests += theirs.requests;
            mine.errors += theirs.errors;
            mine.latency_sum_us += theirs.latency_sum_us;
            mine.latency_max_us = mine.latency_max_us.max(theirs.latency_max_us);
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }

    /// A latency quantile in milliseconds; `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.histogram.is_empty()).then(|| self.histogram.value_at_quantile(q) as f64 / 1000.0)
    }
}

/// The recorder users write to while the run goes. One lock per path: the critical section is a
/// histogram increment, far shorter than a request.
pub struct PathRecorder {
    stats: Mutex<PathStats>,
    live: Arc<LiveCounters>,
}

/// Totals the progress line reads without taking any lock, and when traffic started (the
/// timeline's second 0; set just before the attack, after minting and pre-signing).
#[derive(Default)]
pub struct LiveCounters {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub started: std::sync::OnceLock<Instant>,
}

impl PathRecorder {
    pub fn new(live: Arc<LiveCounters>) -> Self {
        Self { stats: Mutex::new(PathStats::default()), live }
    }

    /// Records one request. `expected_interval` is set when coordinated-omission correction is on:
    /// a request slower than the interval adds the samples the stalled user never sent.
    pub fn record(
        &self,
        latency: Duration,
        status: Option<u16>,
        failure: Option<&Failure>,
        expected_interval: Option<u64>,
    ) {
        let us = (latency.as_micros() as u64).clamp(1, HIGHEST_US);
        let second = self.live.started.get().map(|s| s.elapsed().as_secs() as usize).unwrap_or(0);
        self.live.requests.fetch_add(1, Ordering::Relaxed);
        if failure.is_some() {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        let label = failure.map(Failure::label);
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let _ = match expected_interval {
            Some(interval) if interval > 0 => s.histogram.record_correct(us, interval),
            _ => s.histogram.record(us),
        };
        s.requests += 1;
        if let Some(status) = status {
            *s.statuses.entry(status).or_default() += 1;
        }
        if let Some(label) = label {
            s.errors += 1;
            *s.failures.entry(label).or_default() += 1;
        }
        if s.timeline.len() <= second {
            s.timeline.resize(second + 1, Second::default());
        }
        let slot = &mut s.timeline[second];
        slot.requests += 1;
        slot.errors += u64::from(failure.is_some());
        slot.latency_sum_us += us;
        slot.latency_max_us = slot.latency_max_us.max(us);
    }

    pub fn snapshot(&self) -> PathStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Arc<LiveCounters> {
        Arc::default()
    }

    #[test]
    fn records_counts_failures_and_exact_percentiles() {
        let r = PathRecorder::new(live());
        for ms in 1..=100u64 {
            let failure = (ms % 10 == 0).then_some(Failure::Status(500));
            r.record(
                Duration::from_millis(ms),
                Some(if failure.is_some() { 500 } else { 200 }),
                failure.as_ref(),
                None,
            );
        }
        let s = r.snapshot();
        assert_eq!((s.requests, s.errors), (100, 10));
        assert_eq!(s.failures.get("status 500"), Some(&10));
        assert_eq!(s.statuses.get(&200), Some(&90));
        assert!((s.error_rate() - 0.10).abs() < 1e-9);
        // 3 significant digits: p95 of 1..=100 ms is 95 ms within 0.1%.
        let p95 = s.quantile_ms(0.95).unwrap();
        assert!((p95 - 95.0).abs() < 0.1, "{p95}");
        assert_eq!(s.timeline.iter().map(|t| t.requests).sum::<u64>(), 100);
    }

    #[test]
    fn coordinated_omission_correction_adds_the_missing_samples() {
        let r = PathRecorder::new(live());
        r.record(Duration::from_millis(100), Some(200), None, Some(10_000));
        let s = r.snapshot();
        // A 100 ms stall at a 10 ms cadence hides nine requests that would have waited 90…10 ms.
        assert_eq!(s.histogram.len(), 10);
        assert_eq!(s.requests, 1);
    }

    #[test]
    fn merge_adds_everything() {
        let a = PathRecorder::new(live());
        let b = PathRecorder::new(live());
        a.record(Duration::from_millis(1), Some(200), None, None);
        b.record(Duration::from_millis(3), Some(500), Some(&Failure::Status(500)), None);
        let mut all = a.snapshot();
        all.merge(&b.snapshot());
        assert_eq!((all.requests, all.errors, all.histogram.len()), (2, 1, 2));
        assert_eq!(all.quantile_ms(1.0).map(|v| v.round()), Some(3.0));
        assert!(PathStats::default().quantile_ms(0.5).is_none());
    }
}
