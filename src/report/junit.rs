//! JUnit XML: one testsuite per scenario suite, one testcase per case (not per file, as some
//! tools do), the failure message naming the rule. Readable by GitLab, GitHub and Jenkins.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::finding_lines;
use crate::results::{CaseOutcome, RunReport, VerdictKind};

pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new("oauth-harness");
    junit.set_time(report.duration);
    for suite in &report.suites {
        let mut ts = TestSuite::new(suite.name.as_str());
        ts.add_property(("file", suite.file.as_str()));
        ts.add_property(("target", report.target.as_str()));
        for case in &suite.cases {
            let findings: Vec<String> = case
                .steps
                .iter()
                .flat_map(|s| &s.checks)
                .filter(|c| matches!(c.verdict, VerdictKind::Fail | VerdictKind::Warn))
                .map(|c| finding_lines(c).join("\n  "))
                .collect();
            let status = match case.outcome {
                CaseOutcome::Passed | CaseOutcome::Warned => TestCaseStatus::success(),
                CaseOutcome::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(case.reason.clone().unwrap_or_default());
                    s
                }
                // Accepted for now by the gate's list: visible as skipped, never green.
                CaseOutcome::Known => {
                    let mut s = TestCaseStatus::skipped();
                    let known: Vec<String> = case
                        .steps
                        .iter()
                        .flat_map(|s| &s.checks)
                        .filter(|c| c.verdict == VerdictKind::Known)
                        .map(|c| format!("{}: {}", c.id, c.known_reason.as_deref().unwrap_or("")))
                        .collect();
                    s.set_message(format!("known deviation: {}", known.join("; ")));
                    s
                }
                CaseOutcome::Failed => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let first = case.failed_checks().next();
                    let message = first.map(|c| format!("{} ({}): {}", c.id, c.rule, c.summary)).unwrap_or_default();
                    s.set_message(message);
                    s.set_type("check failed");
                    s.set_description(findings.join("\n"));
                    s
                }
                CaseOutcome::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(case.reason.clone().unwrap_or_default());
                    s.set_type("runtime error");
                    s
                }
            };
            let mut tc = TestCase::new(case.id.as_str(), status);
            tc.set_classname(suite.name.as_str());
            tc.set_time(case.duration);
            if case.outcome == CaseOutcome::Warned {
                tc.set_system_out(format!("warnings:\n{}", findings.join("\n")));
            }
            ts.add_test_case(tc);
        }
        junit.add_test_suite(ts);
    }
    junit.to_string().unwrap_or_else(|e| unreachable!("JUnit serialization to a String: {e}"))
}
