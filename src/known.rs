//! Known deviations applied to a finished run: a failure (or warning) a reviewed list accepts is
//! reported as known, with the list's reason, and no longer fails the run; a listed deviation
//! that no longer fails in a case that ran is stale (the list can shrink; `--strict` fails on it).

use wildmatch::WildMatch;

use crate::checks;
use crate::model::deviations::KnownDeviations;
use crate::results::{CaseOutcome, KnownReport, RunReport, StaleDeviation, Summary, VerdictKind};
use crate::support::diagnostics::{LocatedError, did_you_mean};

/// Every listed check must be in the catalogue (a typo would make an entry that never applies).
pub fn validate(known: &KnownDeviations) -> Vec<LocatedError> {
    let ids: Vec<&str> = checks::catalogue().map(|c| c.id).collect();
    known
        .entries
        .iter()
        .filter(|e| !ids.contains(&e.check.name.as_str()))
        .map(|e| {
            let help = match did_you_mean(&e.check.name, ids.iter().copied()) {
                Some(best) => format!("did you mean `{best}`? (`oauth-harness checks` lists them all)"),
                None => "`oauth-harness checks` lists every check id (bundles are not accepted here)".into(),
            };
            known.source.error_at(e.check.span, format!("unknown check `{}`", e.check.name)).with_help(help)
        })
        .collect()
}

/// The entries whose case globs match no case of `suites` (id or `suite/id`), with where each
/// is in the list: such an entry can never apply nor go stale — a typo, or a case renamed since
/// the list was reviewed. Not an error: a run of a few suites rightly leaves others unmatched.
pub fn unmatched(known: &KnownDeviations, suites: &[crate::model::suite::Suite]) -> Vec<String> {
    let cases: Vec<(String, &str)> = suites
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| (format!("{}/{}", s.name, c.id), c.id.as_str())))
        .collect();
    known
        .entries
        .iter()
        .filter(|e| {
            let globs: Vec<WildMatch> = e.cases.iter().map(|c| WildMatch::new(c)).collect();
            !cases.iter().any(|(qualified, id)| globs.iter().any(|g| g.matches(id) || g.matches(qualified)))
        })
        .map(|e| {
            format!(
                "warning: {}:{}:{}: the known deviation of `{}` lists cases ({}) that match no case of the scenarios given: it applies to nothing",
                known.source.path.display(),
                e.span.line,
                e.span.column,
                e.check.name,
                e.cases.join(", ")
            )
        })
        .collect()
}

/// Marks the findings `known` accepts, recomputes the outcomes and the summary, and records
/// what is stale.
pub fn apply(report: &mut RunReport, known: &KnownDeviations, file: &str) {
    let globs: Vec<Vec<WildMatch>> =
        known.entries.iter().map(|e| e.cases.iter().map(|c| WildMatch::new(c)).collect()).collect();
    let mut stale = Vec::new();
    for suite in &mut report.suites {
        for case in &mut suite.cases {
            let qualified = format!("{}/{}", suite.name, case.id);
            let listed = |i: usize| globs[i].iter().any(|g| g.matches(&case.id) || g.matches(&qualified));
            let applying: Vec<usize> = (0..known.entries.len()).filter(|i| listed(*i)).collect();
            if applying.is_empty() {
                continue;
            }
            let mut used = vec![false; known.entries.len()];
            for check in case.steps.iter_mut().flat_map(|s| &mut s.checks) {
                if !matches!(check.verdict, VerdictKind::Fail | VerdictKind::Warn) {
                    continue;
                }
                if let Some(&i) = applying.iter().find(|i| known.entries[**i].check.name == check.id) {
                    check.verdict = VerdictKind::Known;
                    check.known_reason = Some(known.entries[i].reason.clone());
                    used[i] = true;
                }
            }
            // A case that did not run (skipped, not run, errored) says nothing about staleness.
            let ran = !matches!(case.outcome, CaseOutcome::Skipped | CaseOutcome::Error);
            for &i in applying.iter().filter(|i| ran && !used[**i]) {
                stale.push(StaleDeviation {
                    check: known.entries[i].check.name.clone(),
                    case: qualified.clone(),
                    reason: known.entries[i].reason.clone(),
                });
            }
            if case.outcome != CaseOutcome::Error && case.outcome != CaseOutcome::Skipped {
                case.outcome = outcome_after(case.steps.iter().flat_map(|s| &s.checks).map(|c| c.verdict));
            }
        }
    }
    report.summary = Summary::of(&report.suites);
    report.known_deviations = Some(KnownReport { file: file.to_string(), title: known.title.clone(), stale });
}

fn outcome_after(verdicts: impl Iterator<Item = VerdictKind> + Clone) -> CaseOutcome {
    let any = |k: VerdictKind| verdicts.clone().any(|v| v == k);
    if any(VerdictKind::Fail) {
        CaseOutcome::Failed
    } else if any(VerdictKind::Warn) {
        CaseOutcome::Warned
    } else if any(VerdictKind::Known) {
        CaseOutcome::Known
    } else {
        CaseOutcome::Passed
    }
}
