//! The HTML report: one self-contained file (inline CSS and JS, no fetches), readable without
//! JavaScript (cases are `<details>`). Rendered with a minijinja template, auto-escaped.

use minijinja::{Environment, Value, context};

use crate::results::RunReport;

const TEMPLATE: &str = include_str!("templates/run.html");

pub fn render(report: &RunReport) -> String {
    let mut env = Environment::new();
    // The `.html` name turns on HTML auto-escaping: server answers are data, never markup.
    env.add_template("run.html", TEMPLATE).unwrap_or_else(|e| unreachable!("the built-in template parses: {e}"));
    let verdict = report.verdict();
    // The banner's colour: green only where a gate may go green.
    let verdict_class = if verdict.is_success() { "PASSED" } else { "FAILED" };
    // certify: each case's timeline, drawn here (the SVG escapes everything it writes).
    let timelines: std::collections::BTreeMap<String, Value> = report
        .suites
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| (s, c)))
        .filter_map(|(s, c)| {
            let svg = super::timeline::svg(c.timeline.as_ref()?)?;
            Some((format!("{}/{}", s.name, c.id), Value::from_safe_string(svg)))
        })
        .collect();
    env.get_template("run.html")
        .and_then(|t| {
            t.render(context! {
                report => Value::from(minijinja::value::Serde(report)),
                verdict => verdict.word(),
                verdict_class => verdict_class,
                timelines => timelines,
            })
        })
        .unwrap_or_else(|e| unreachable!("the built-in template renders every report: {e}"))
}
