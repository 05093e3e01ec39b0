//! A compact Markdown summary for a CI job page (e.g. `$GITHUB_STEP_SUMMARY`): the verdict, then
//! a table with failures first, then warnings, errors, skips; passes are folded away.

use std::fmt::Write;

use crate::results::{CaseOutcome, RunReport, RunVerdict, VerdictKind};

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &RunReport) -> String {
    let s = &report.summary;
    let verdict = report.verdict();
    let mark = match verdict {
        RunVerdict::Passed => "✅",
        RunVerdict::Failed => "❌",
        RunVerdict::NothingChecked => "⚠️",
        RunVerdict::Interrupted => "⏹️",
        RunVerdict::Incomplete => "💥",
    };
    let verdict = format!("{mark} {}", verdict.word());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## oauth-harness: {verdict}\n\n{} case{}: **{} failed**, {} errors, {} warned, {} passed, {} skipped{} — {:.2} s against `{}` ({})\n",
        s.cases,
        if s.cases == 1 { "" } else { "s" },
        s.failed,
        s.errors,
        s.warned,
        s.passed,
        s.skipped,
        if report.known_deviations.is_some() { format!(", {} known", s.known) } else { String::new() },
        report.duration.as_secs_f64(),
        report.target,
        report.target_origin
    );
    let order = [
        (CaseOutcome::Failed, "❌"),
        (CaseOutcome::Error, "💥"),
        (CaseOutcome::Warned, "⚠️"),
        (CaseOutcome::Known, "🔁"),
        (CaseOutcome::Skipped, "⏭️"),
    ];
    let mut rows = Vec::new();
    for (outcome, mark) in order {
        for suite in &report.suites {
            for case in suite.cases.iter().filter(|c| c.outcome == outcome) {
                let findings: Vec<String> = case
                    .steps
                    .iter()
                    .flat_map(|st| &st.checks)
                    .filter(|c| matches!(c.verdict, VerdictKind::Fail | VerdictKind::Warn | VerdictKind::Known))
                    .map(|c| {
                        let mut f = format!("`{}` ({})", c.id, c.rule);
                        if let Some(reason) = &c.known_reason {
                            f.push_str(&format!(": known deviation — {reason}"));
                            return f;
                        }
                        if let (Some(e), Some(seen)) = (&c.expected, &c.seen) {
                            f.push_str(&format!(": expected {e}; seen {seen}"));
                        }
                        f
                    })
                    .collect();
                let detail =
                    if findings.is_empty() { case.reason.clone().unwrap_or_default() } else { findings.join("<br>") };
                rows.push(format!("| {mark} | {} | `{}` | {} |", cell(&suite.name), cell(&case.id), cell(&detail)));
            }
        }
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "| | suite | case | finding |\n|---|---|---|---|");
        for row in rows {
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }
    let passed: Vec<String> = report
        .suites
        .iter()
        .flat_map(|su| {
            su.cases.iter().filter(|c| c.outcome == CaseOutcome::Passed).map(move |c| format!("`{}/{}`", su.name, c.id))
        })
        .collect();
    if let Some(known) = report.known_deviations.as_ref().filter(|k| !k.stale.is_empty()) {
        let _ = writeln!(
            out,
            "**{}** in `{}` (no longer failing):\n",
            crate::support::text::count(known.stale.len(), "stale known deviation"),
            known.file
        );
        for s in &known.stale {
            let _ = writeln!(out, "- `{}` in `{}`", s.check, s.case);
        }
        out.push('\n');
    }
    if !passed.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} passed</summary>\n\n{}\n\n</details>",
            passed.len(),
            passed.join(" · ")
        );
    }
    out
}
