//! The terminal report: one line a case, a failure's detail below it, a summary at the end.

use std::fmt::Write;

use owo_colors::{OwoColorize, Style};

use super::finding_lines;
use crate::results::{CaseOutcome, RunReport, RunVerdict, VerdictKind};

fn paint(text: &str, style: Style, color: bool) -> String {
    if color { text.style(style).to_string() } else { text.to_string() }
}

fn outcome_label(outcome: CaseOutcome) -> (&'static str, Style) {
    match outcome {
        CaseOutcome::Passed => ("PASS ", Style::new().green()),
        CaseOutcome::Warned => ("WARN ", Style::new().yellow()),
        CaseOutcome::Failed => ("FAIL ", Style::new().red().bold()),
        CaseOutcome::Skipped => ("SKIP ", Style::new().dimmed()),
        CaseOutcome::Error => ("ERROR", Style::new().magenta().bold()),
        CaseOutcome::Known => ("KNOWN", Style::new().cyan()),
    }
}

/// How much the terminal report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Failures, errors and the summary.
    Quiet,
    /// Every case on one line, findings below.
    Normal,
    /// Also every exchange, redacted.
    Verbose,
}

pub fn render(report: &RunReport, color: bool, detail: Detail) -> String {
    let mut out = String::new();
    let id_width = report.suites.iter().flat_map(|s| &s.cases).map(|c| c.id.len()).max().unwrap_or(0);
    for suite in &report.suites {
        let heading = match &suite.title {
            Some(t) => format!("{} — {}", suite.name, t),
            None => suite.name.clone(),
        };
        let shown = detail != Detail::Quiet
            || suite.cases.iter().any(|c| matches!(c.outcome, CaseOutcome::Failed | CaseOutcome::Error));
        if shown {
            let _ = writeln!(out, "{} ({})", paint(&heading, Style::new().bold(), color), suite.file);
        }
        for case in &suite.cases {
            let quiet_skip =
                detail == Detail::Quiet && !matches!(case.outcome, CaseOutcome::Failed | CaseOutcome::Error);
            if quiet_skip {
                continue;
            }
            let (label, style) = outcome_label(case.outcome);
            let _ = writeln!(
                out,
                "  {} {:id_width$}  {}  {} ms",
                paint(label, style, color),
                case.id,
                case.title,
                case.duration.as_millis()
            );
            if let Some(reason) = &case.reason {
                let _ = writeln!(out, "        {}", paint(reason, Style::new().dimmed(), color));
            }
            for check in case.steps.iter().flat_map(|s| &s.checks) {
                let mark = match check.verdict {
                    VerdictKind::Fail => paint("✗", Style::new().red(), color),
                    VerdictKind::Warn => paint("!", Style::new().yellow(), color),
                    VerdictKind::Known => {
                        let line =
                            format!("≈ {} known deviation: {}", check.id, check.known_reason.as_deref().unwrap_or(""));
                        let _ = writeln!(out, "        {}", paint(&line, Style::new().cyan(), color));
                        continue;
                    }
                    VerdictKind::Blocked => {
                        let line = format!("⊘ {} blocked: {}", check.id, check.note.as_deref().unwrap_or(""));
                        let _ = writeln!(out, "        {}", paint(&line, Style::new().dimmed(), color));
                        continue;
                    }
                    _ => continue,
                };
                let mut lines = finding_lines(check).into_iter();
                if let Some(first) = lines.next() {
                    let _ = writeln!(out, "        {mark} {first}");
                }
                for line in lines {
                    let _ = writeln!(out, "            {line}");
                }
                if !check.url.is_empty() {
                    let _ = writeln!(out, "            {}", paint(&check.url, Style::new().dimmed(), color));
                }
            }
            if detail == Detail::Verbose {
                // What a step noted (a wait, the polls, what a probe could not try).
                for note in case.steps.iter().filter_map(|s| s.note.as_deref()) {
                    let _ = writeln!(out, "        {}", paint(&format!("· {note}"), Style::new().dimmed(), color));
                }
                for x in case.steps.iter().flat_map(|s| s.setup.iter().chain(s.exchange.iter())) {
                    let _ = writeln!(out, "        > {} {}", x.request.method, x.request.url);
                    for (k, v) in &x.request.headers {
                        let _ = writeln!(out, "        > {k}: {v}");
                    }
                    if let Some(body) = &x.request.body {
                        let _ = writeln!(out, "        > {body}");
                    }
                    let _ = writeln!(out, "        < {} ({} ms)", x.response.status, x.response.elapsed_ms);
                    for (k, v) in &x.response.headers {
                        let _ = writeln!(out, "        < {k}: {v}");
                    }
                    let _ = writeln!(out, "        < {}", x.response.body);
                }
            }
        }
    }
    if let Some(known) = &report.known_deviations {
        if !known.stale.is_empty() {
            let _ = writeln!(
                out,
                "\n{} of {} no longer {} (remove {} from the list):",
                crate::support::text::count(known.stale.len(), "known deviation"),
                known.file,
                if known.stale.len() == 1 { "fails" } else { "fail" },
                if known.stale.len() == 1 { "it" } else { "them" },
            );
            for s in &known.stale {
                let _ = writeln!(out, "  {} {} in {}", paint("stale", Style::new().yellow(), color), s.check, s.case);
            }
        }
    }
    let s = &report.summary;
    let verdict = report.verdict();
    let style = match verdict {
        RunVerdict::Passed => Style::new().green().bold(),
        RunVerdict::NothingChecked => Style::new().yellow().bold(),
        _ => Style::new().red().bold(),
    };
    let verdict = paint(verdict.word(), style, color);
    let _ = writeln!(
        out,
        "\n{verdict} {} case{}: {} passed, {} warned, {} failed, {} skipped, {} errors{} in {:.2} s against {} ({})",
        s.cases,
        if s.cases == 1 { "" } else { "s" },
        s.passed,
        s.warned,
        s.failed,
        s.skipped,
        s.errors,
        if report.known_deviations.is_some() { format!(", {} known", s.known) } else { String::new() },
        report.duration.as_secs_f64(),
        report.target,
        report.target_origin
    );
    out
}
