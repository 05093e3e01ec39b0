//! Report formats: each a pure function of a [`crate::results::RunReport`]; none sends a request.
//! Writers return text; the caller scrubs it with the run's `Redactor` and writes it.

pub mod html;
pub mod json;
pub mod junit;
pub mod load;
pub mod markdown;
pub mod terminal;
pub mod timeline;

use crate::results::{CheckOutcome, VerdictKind};

/// One failed or warned check, as text blocks for any format.
pub fn finding_lines(check: &CheckOutcome) -> Vec<String> {
    let mut lines = vec![format!("{} [{} · {}] {}", check.id, severity_label(check), check.rule, check.summary)];
    if let Some(expected) = &check.expected {
        lines.push(format!("expected: {expected}"));
    }
    if let Some(seen) = &check.seen {
        lines.push(format!("seen:     {seen}"));
    }
    if let Some(why) = &check.required_because {
        lines.push(format!("required by this suite: {why}"));
    }
    lines
}

pub fn severity_label(check: &CheckOutcome) -> String {
    match (&check.required_because, check.verdict) {
        (Some(_), _) => format!("{}→MUST", check.severity.label()),
        (None, VerdictKind::Fail) if check.severity == crate::checks::Severity::Should => {
            "SHOULD→MUST (--strict)".into()
        }
        _ => check.severity.label().to_string(),
    }
}
