//! What a run produces: plain, redacted data. Every report format is a pure function of these.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::checks::Severity;
use crate::protocol::exchange::RecordedRequest;

/// Version of the JSON report's shape; bumped on any incompatible change.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub harness_version: &'static str,
    /// The target's issuer URL.
    pub target: String,
    /// Where the target came from: a file, or the embedded mock.
    pub target_origin: String,
    #[serde(serialize_with = "serialize_time")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "serialize_ms")]
    pub duration: Duration,
    pub strict: bool,
    /// Stopped by Ctrl-C: the cases that had not finished are skipped as "not run".
    pub interrupted: bool,
    pub suites: Vec<SuiteResult>,
    pub summary: Summary,
    /// Set when the run was given `--known-deviations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_deviations: Option<KnownReport>,
}

/// What a known-deviations list did to the run.
#[derive(Debug, Clone, Serialize)]
pub struct KnownReport {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Listed deviations that no longer fail in a case that ran: the list can shrink.
    pub stale: Vec<StaleDeviation>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StaleDeviation {
    pub check: String,
    /// `suite/case`.
    pub case: String,
    pub reason: String,
}

/// The run's verdict, as every report's headline and the exit code read it (one decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunVerdict {
    Passed,
    Failed,
    /// Every selected case was skipped: nothing was checked (a failure under `--strict`).
    NothingChecked,
    /// Stopped by Ctrl-C: what ran is reported, the rest was not run.
    Interrupted,
    /// Cases met runtime errors: the run did not complete.
    Incomplete,
}

impl RunVerdict {
    /// The headline word.
    pub fn word(self) -> &'static str {
        match self {
            RunVerdict::Passed => "PASSED",
            RunVerdict::Failed => "FAILED",
            RunVerdict::NothingChecked => "NOTHING CHECKED",
            RunVerdict::Interrupted => "INTERRUPTED",
            RunVerdict::Incomplete => "INCOMPLETE",
        }
    }

    /// Whether a gate may go green on it.
    pub fn is_success(self) -> bool {
        matches!(self, RunVerdict::Passed)
    }
}

impl RunReport {
    /// Interruptions and errors (an incomplete run) outrank failures; both outrank success; a
    /// run that skipped every case checked nothing and does not say PASSED.
    pub fn verdict(&self) -> RunVerdict {
        let s = &self.summary;
        if self.interrupted {
            RunVerdict::Interrupted
        } else if s.errors > 0 {
            RunVerdict::Incomplete
        } else if s.failed > 0
            // The list promised failures that are gone: under --strict the gate wants it updated.
            || (self.strict && self.known_deviations.as_ref().is_some_and(|k| !k.stale.is_empty()))
        {
            RunVerdict::Failed
        } else if s.cases > 0 && s.skipped == s.cases {
            RunVerdict::NothingChecked
        } else {
            RunVerdict::Passed
        }
    }

    /// One report from the runs of several targets (the embedded mocks of several systems).
    pub fn merge(parts: Vec<RunReport>) -> Option<RunReport> {
        let mut parts = parts.into_iter();
        let mut merged = parts.next()?;
        for part in parts {
            merged.target = format!("{} + {}", merged.target, part.target);
            if merged.target_origin != part.target_origin {
                merged.target_origin = format!("{} + {}", merged.target_origin, part.target_origin);
            }
            merged.started_at = merged.started_at.min(part.started_at);
            merged.interrupted |= part.interrupted;
            merged.suites.extend(part.suites);
        }
        merged.summary = Summary::of(&merged.suites);
        Some(merged)
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub cases: usize,
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
    /// Cases whose every finding is a known deviation.
    pub known: usize,
}

impl Summary {
    pub fn of(suites: &[SuiteResult]) -> Self {
        let mut s = Summary::default();
        for case in suites.iter().flat_map(|s| &s.cases) {
            s.cases += 1;
            match case.outcome {
                CaseOutcome::Passed => s.passed += 1,
                CaseOutcome::Warned => s.warned += 1,
                CaseOutcome::Failed => s.failed += 1,
                CaseOutcome::Skipped => s.skipped += 1,
                CaseOutcome::Error => s.errors += 1,
                CaseOutcome::Known => s.known += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    pub name: String,
    pub title: Option<String>,
    pub file: String,
    pub spec: Option<String>,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseOutcome {
    Passed,
    /// Passed, with SHOULD-level findings.
    Warned,
    Failed,
    Skipped,
    /// The case could not be completed (transport failure).
    Error,
    /// Failed or warned only in checks a known-deviations list accepts.
    Known,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    pub outcome: CaseOutcome,
    #[serde(serialize_with = "serialize_ms")]
    pub duration: Duration,
    /// Why the case was skipped or errored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: Vec<StepResult>,
    /// `certify`: the client's requests over time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::protocol::observation::Timeline>,
}

impl CaseResult {
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.steps.iter().flat_map(|s| &s.checks).filter(|c| c.verdict == VerdictKind::Fail)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// `token`, `resource`, `discovery`.
    pub action: &'static str,
    /// Requests made to prepare the step (e.g. getting a token for a resource call).
    pub setup: Vec<ExchangeView>,
    /// The exchange the checks judged; absent when the request could not be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeView>,
    pub checks: Vec<CheckOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a step without an exchange did (e.g. how long it waited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An exchange as reports show it: credentials and tokens already replaced by fingerprints.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeView {
    pub request: RecordedRequest,
    pub response: ResponseView,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseView {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub truncated: bool,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Pass,
    /// A MUST check failed (or a SHOULD one under `--strict` or a suite's `require`).
    Fail,
    /// A SHOULD check failed.
    Warn,
    NotApplicable,
    /// What the check needs was not there: the step's prerequisite failure says why.
    Blocked,
    /// Failed or warned, and a known-deviations list accepts it (`known_reason` says why).
    Known,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub id: String,
    pub severity: Severity,
    /// Set when the suite promoted a SHOULD check to MUST: the reason it gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_because: Option<String>,
    pub rule: String,
    pub url: String,
    pub summary: String,
    pub verdict: VerdictKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// Why the check did not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A known deviation: the reason the list gives for accepting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_reason: Option<String>,
}

fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
}
