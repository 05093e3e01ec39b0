//! Load report formats: terminal table, Markdown (CI job summary), JSON, and a self-contained HTML
//! page with inline SVG charts. Each is a pure function of a [`LoadReport`].

use std::fmt::Write;

use minijinja::{Environment, Value, context};
use owo_colors::OwoColorize;

use crate::load::report::{BaselineComparison, Change, LoadReport, LoadVerdict, PathSummary, RegressionOutcome};
use crate::load::thresholds::ThresholdOutcome;
use crate::model::profile::RegressionMetric;
use crate::support::text::count;

const TEMPLATE: &str = include_str!("templates/load.html");

pub fn json(report: &LoadReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| unreachable!("a load report serializes: {e}")) + "\n"
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "–".into(),
    }
}

fn observed(v: &ThresholdOutcome) -> String {
    match (v.observed, v.metric) {
        (None, _) => "no samples".into(),
        (Some(o), crate::model::profile::Metric::MaxErrorRate) => format!("{:.2}%", o * 100.0),
        (Some(o), crate::model::profile::Metric::MinRps) => format!("{o:.1}/s"),
        (Some(o), _) => format!("{} ms", ms(Some(o))),
    }
}

fn margin(v: &ThresholdOutcome) -> String {
    match (v.passed, v.exceeded_by, v.observed) {
        (true, _, _) => String::new(),
        (false, _, None) => "no samples: nothing was measured".into(),
        (false, Some(by), _) if v.metric.is_floor() => format!("{:.1}% under", by * 100.0),
        (false, Some(by), _) => format!("{:.1}% over", by * 100.0),
        (false, None, _) => "failed".into(),
    }
}

fn path_row(p: &PathSummary) -> [String; 9] {
    [
        p.name.clone(),
        p.requests.to_string(),
        p.errors.to_string(),
        format!("{:.2}%", p.error_rate * 100.0),
        format!("{:.1}", p.rps),
        ms(p.latency_ms.p50),
        ms(p.latency_ms.p95),
        ms(p.latency_ms.p99),
        ms(p.latency_ms.max),
    ]
}

const HEADERS: [&str; 9] = ["path", "requests", "errors", "error %", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"];

/// The final table and verdict for the terminal.
pub fn terminal(report: &LoadReport, color: bool) -> String {
    let mut out = String::new();
    let mode = match (report.settings.iterations, report.settings.rate) {
        (Some(n), _) => format!("{n} iterations per user"),
        (None, Some(rate)) => format!("target rate {rate}/s"),
        (None, None) => "closed loop".into(),
    };
    let _ = writeln!(
        out,
        "load {} → {}  ({:.1} s, {} users, {mode})",
        report.profile, report.target, report.duration_secs, report.settings.users
    );
    let mut rows: Vec<[String; 9]> = vec![HEADERS.map(String::from)];
    rows.extend(report.paths.iter().map(path_row));
    if report.paths.len() > 1 {
        rows.push(path_row(&report.total));
    }
    let widths: Vec<usize> = (0..9).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 {
                let _ = write!(line, " {cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for p in report.paths.iter().filter(|p| !p.failures.is_empty()) {
        let causes: Vec<String> = p.failures.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        let _ = writeln!(out, "  errors on {}: {}", p.name, causes.join(", "));
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "thresholds");
        for v in &report.thresholds {
            let word = if v.passed { "PASS" } else { "FAIL" };
            let word = match (color, v.passed) {
                (false, _) => word.to_string(),
                (true, true) => word.green().to_string(),
                (true, false) => word.red().bold().to_string(),
            };
            let line = format!("  {word}  {:<34} observed {:<12} {}", v.rule, observed(v), margin(v));
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if let Some(b) = &report.baseline {
        let _ = writeln!(out, "vs baseline {} ({})", b.file, b.started_at);
        for (path, row) in baseline_table(b) {
            let _ = writeln!(out, "  {path:<14} {row}");
        }
        for l in &b.limits {
            let word = if l.passed { "PASS" } else { "FAIL" };
            let word = match (color, l.passed) {
                (false, _) => word.to_string(),
                (true, true) => word.green().to_string(),
                (true, false) => word.red().bold().to_string(),
            };
            let _ = writeln!(out, "  {word}  {:<34} {}: {}", l.rule, l.path, regression_change(l));
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let failed = report.thresholds.iter().filter(|v| !v.passed).count();
    let regressed = report.baseline.as_ref().map(|b| b.limits.iter().filter(|l| !l.passed).count()).unwrap_or(0);
    let verdict = if report.interrupted {
        // Whatever the figures say, they are a part of the profile: never PASS (exit 3).
        let crossed = if failed + regressed > 0 {
            format!("; {} crossed", count(failed + regressed, "limit"))
        } else {
            String::new()
        };
        format!(
            "result: INTERRUPTED ({} before Ctrl-C{crossed}; the profile did not run to its end)",
            count(report.total.requests as usize, "request")
        )
    } else if failed > 0 {
        format!("result: FAIL ({failed} of {} thresholds failed)", report.thresholds.len())
    } else if regressed > 0 {
        format!("result: FAIL ({} crossed against the baseline)", count(regressed, "regression limit"))
    } else if report.nothing_succeeded() {
        format!("result: FAIL (not one of {} requests succeeded)", report.total.requests)
    } else {
        format!("result: PASS ({} requests, {} errors)", report.total.requests, report.total.errors)
    };
    let _ = writeln!(out, "{verdict}");
    out
}

/// A change as a percentage (or points, for the error rate).
fn change_text(metric: RegressionMetric, change: Option<f64>) -> String {
    match (change, metric) {
        (None, _) => "n/a".into(),
        (Some(c), RegressionMetric::ErrorRate) => format!("{:+.2} pts", c * 100.0),
        (Some(c), _) => format!("{:+.1}%", c * 100.0),
    }
}

fn regression_change(l: &RegressionOutcome) -> String {
    change_text(l.metric, l.change)
}

fn figure_text(metric: RegressionMetric, v: Option<f64>) -> String {
    match (v, metric) {
        (None, _) => "–".into(),
        (Some(v), RegressionMetric::Rps) => format!("{v:.1}/s"),
        (Some(v), RegressionMetric::ErrorRate) => format!("{:.2}%", v * 100.0),
        (Some(v), _) => format!("{} ms", ms(Some(v))),
    }
}

/// One line per path: each figure as `baseline → current (change)`.
fn baseline_table(b: &BaselineComparison) -> Vec<(String, String)> {
    let mut paths: Vec<&str> = Vec::new();
    for r in &b.rows {
        if !paths.contains(&r.path.as_str()) {
            paths.push(&r.path);
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let cells: Vec<String> = b
                .rows
                .iter()
                .filter(|r| r.path == path)
                .map(|r: &Change| {
                    format!(
                        "{} {} → {} ({})",
                        r.metric.key(),
                        figure_text(r.metric, r.baseline),
                        figure_text(r.metric, r.current),
                        change_text(r.metric, r.change)
                    )
                })
                .collect();
            (path.to_string(), cells.join(" · "))
        })
        .collect()
}

/// JUnit XML for a CI gate: one testcase per threshold and per regression limit (and one when
/// not a request succeeded), so the gate names what failed.
pub fn junit(report: &LoadReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut junit = Report::new("oauth-harness load");
    let mut suite = TestSuite::new(format!("load {}", report.profile));
    suite.add_property(("target", report.target.as_str()));
    let failure = |message: String| {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(message);
        s
    };
    for v in &report.thresholds {
        let status = if v.passed {
            TestCaseStatus::success()
        } else {
            failure(format!("observed {} — {}", observed(v), margin(v)))
        };
        let mut tc = TestCase::new(format!("threshold {}", v.rule), status);
        tc.set_classname("thresholds");
        suite.add_test_case(tc);
    }
    if let Some(b) = &report.baseline {
        for l in &b.limits {
            let status = if l.passed {
                TestCaseStatus::success()
            } else {
                failure(format!("{}: {} against {}", l.path, regression_change(l), b.file))
            };
            let mut tc = TestCase::new(format!("regression {} ({})", l.rule, l.path), status);
            tc.set_classname("regression");
            suite.add_test_case(tc);
        }
    }
    let status = if report.nothing_succeeded() {
        failure(format!("not one of {} requests succeeded", report.total.requests))
    } else {
        TestCaseStatus::success()
    };
    let mut tc = TestCase::new("some request succeeded", status);
    tc.set_classname("run");
    suite.add_test_case(tc);
    // A gate reading only the JUnit file must see that the figures are partial.
    if report.interrupted {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message("interrupted (Ctrl-C): the figures cover the part that ran");
        let mut tc = TestCase::new("the profile ran to its end", status);
        tc.set_classname("run");
        suite.add_test_case(tc);
    }
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_else(|e| unreachable!("JUnit serialization to a String: {e}"))
}

/// A compact summary for a CI job page: failed thresholds first, then the path table.
pub fn markdown(report: &LoadReport) -> String {
    let mut out = String::new();
    let failed: Vec<&ThresholdOutcome> = report.thresholds.iter().filter(|v| !v.passed).collect();
    let verdict = match report.verdict() {
        LoadVerdict::Passed => "✅ PASS",
        LoadVerdict::Failed => "❌ FAIL",
        LoadVerdict::Interrupted => "⚠️ INTERRUPTED",
    };
    let _ = writeln!(out, "## Load `{}` — {verdict}\n", report.profile);
    let _ = writeln!(
        out,
        "Target `{}` · {:.1} s · {} users · {} requests · {} errors\n",
        report.target, report.duration_secs, report.settings.users, report.total.requests, report.total.errors
    );
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "| threshold | observed | verdict |\n|---|---|---|");
        let mut ordered: Vec<&ThresholdOutcome> = failed.clone();
        ordered.extend(report.thresholds.iter().filter(|v| v.passed));
        for v in ordered {
            let word = if v.passed { "pass".to_string() } else { format!("**FAIL** {}", margin(v)) };
            let _ = writeln!(out, "| `{}` | {} | {word} |", v.rule, observed(v));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "| {} |\n|{}", HEADERS.join(" | "), "---|".repeat(HEADERS.len()));
    let mut rows: Vec<&PathSummary> = report.paths.iter().collect();
    if report.paths.len() > 1 {
        rows.push(&report.total);
    }
    for p in rows {
        let _ = writeln!(out, "| {} |", path_row(p).join(" | "));
    }
    if let Some(b) = &report.baseline {
        let _ = writeln!(out, "\n**vs baseline** `{}` ({})\n", b.file, b.started_at);
        let _ = writeln!(out, "| path | figures (baseline → this run) |\n|---|---|");
        for (path, row) in baseline_table(b) {
            let _ = writeln!(out, "| {path} | {row} |");
        }
        if !b.limits.is_empty() {
            let _ = writeln!(out, "\n| regression limit | path | change | verdict |\n|---|---|---|---|");
            for l in &b.limits {
                let word = if l.passed { "pass" } else { "**FAIL**" };
                let _ = writeln!(out, "| `{}` | {} | {} | {word} |", l.rule, l.path, regression_change(l));
            }
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n> {note}");
    }
    out
}

/// One self-contained page: tables, thresholds, and SVG charts of rate, errors and latency.
pub fn html(report: &LoadReport) -> String {
    let mut env = Environment::new();
    env.add_template("load.html", TEMPLATE).unwrap_or_else(|e| unreachable!("the built-in template parses: {e}"));
    let rows: Vec<[String; 9]> = report.paths.iter().chain(std::iter::once(&report.total)).map(path_row).collect();
    let thresholds: Vec<[String; 4]> = report
        .thresholds
        .iter()
        .map(|v| [if v.passed { "PASS" } else { "FAIL" }.to_string(), v.rule.clone(), observed(v), margin(v)])
        .collect();
    let verdict = report.verdict().word();
    let baseline_rows: Vec<(String, String)> = report.baseline.as_ref().map(baseline_table).unwrap_or_default();
    let regressions: Vec<[String; 4]> = report
        .baseline
        .iter()
        .flat_map(|b| &b.limits)
        .map(|l| {
            [if l.passed { "PASS" } else { "FAIL" }.to_string(), l.rule.clone(), l.path.clone(), regression_change(l)]
        })
        .collect();
    env.get_template("load.html")
        .and_then(|t| {
            t.render(context! {
                report => Value::from(minijinja::value::Serde(report)),
                headers => HEADERS,
                rows => rows,
                thresholds => thresholds,
                baseline_rows => baseline_rows,
                regressions => regressions,
                verdict => verdict,
                rate_chart => Value::from_safe_string(rate_chart(&report.total)),
                latency_chart => Value::from_safe_string(latency_chart(&report.total)),
                percentile_chart => Value::from_safe_string(percentile_chart(report)),
            })
        })
        .unwrap_or_else(|e| unreachable!("the built-in template renders every report: {e}"))
}

const W: f64 = 720.0;
const H: f64 = 200.0;
const PAD: f64 = 40.0;

/// A line chart: one polyline per series, x = seconds, shared y scale from zero.
fn line_chart(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let n = series.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0);
    let max = series.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(0.0_f64, f64::max).max(1e-9);
    let x = |i: usize| PAD + (W - 2.0 * PAD) * if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
    let y = |v: f64| H - PAD + -(H - 2.0 * PAD) * (v / max);
    let mut svg = format!(
        "<svg role='img' aria-label='{title}' viewBox='0 0 {W} {H}' width='100%' xmlns='http://www.w3.org/2000/svg'>\
         <text x='{PAD}' y='16' class='t'>{title}</text>\
         <line x1='{PAD}' y1='{b}' x2='{r}' y2='{b}' class='axis'/><line x1='{PAD}' y1='{PAD}' x2='{PAD}' y2='{b}' class='axis'/>\
         <text x='4' y='{top}' class='l'>{max_label}</text><text x='4' y='{b}' class='l'>0</text>\
         <text x='{r}' y='{lx}' class='l' text-anchor='end'>{n} s</text><text x='4' y='{mid}' class='l'>{unit}</text>",
        b = H - PAD,
        r = W - PAD,
        top = PAD + 4.0,
        lx = H - PAD + 16.0,
        mid = H / 2.0,
        max_label = if max >= 100.0 { format!("{max:.0}") } else { format!("{max:.2}") },
    );
    for (i, (name, color, values)) in series.iter().enumerate() {
        let points: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{color}' stroke-width='2' points='{}'/>\
             <text x='{}' y='16' class='l' style='fill:{color}'>{name}</text>",
            points.join(" "),
            W - PAD - 160.0 + 80.0 * i as f64
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Whole seconds only: the run stops part-way through its last second, whose counts would read
/// as a collapse at the end of every chart.
fn whole_seconds(total: &PathSummary) -> &[crate::load::stats::Second] {
    let t = &total.timeline;
    if t.len() > 1 { &t[..t.len() - 1] } else { t }
}

fn rate_chart(total: &PathSummary) -> String {
    let ok: Vec<f64> = whole_seconds(total).iter().map(|s| (s.requests - s.errors) as f64).collect();
    let errors: Vec<f64> = whole_seconds(total).iter().map(|s| s.errors as f64).collect();
    line_chart("Requests per second", "req/s", &[("ok", "#1a7f37", ok), ("errors", "#cf222e", errors)])
}

fn latency_chart(total: &PathSummary) -> String {
    let mean: Vec<f64> = whole_seconds(total)
        .iter()
        .map(|s| if s.requests > 0 { s.latency_sum_us as f64 / s.requests as f64 / 1000.0 } else { 0.0 })
        .collect();
    let max: Vec<f64> = whole_seconds(total).iter().map(|s| s.latency_max_us as f64 / 1000.0).collect();
    line_chart("Latency per second", "ms", &[("mean", "#0969da", mean), ("max", "#9a6700", max)])
}

/// Bars of p50…p99.9 per path, on one scale (the max, often an outlier, is in the table).
fn percentile_chart(report: &LoadReport) -> String {
    let labels = ["p50", "p90", "p95", "p99", "p99.9"];
    let values: Vec<(String, [f64; 5])> = report
        .paths
        .iter()
        .map(|p| {
            let l = &p.latency_ms;
            (escape(&p.name), [l.p50, l.p90, l.p95, l.p99, l.p999].map(|v| v.unwrap_or(0.0)))
        })
        .collect();
    let max = values.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0_f64, f64::max).max(1e-9);
    let group = (W - 2.0 * PAD) / labels.len() as f64;
    let bar = (group - 10.0) / values.len().max(1) as f64;
    let colors = ["#0969da", "#8250df", "#1a7f37", "#9a6700", "#cf222e"];
    let mut svg = format!(
        "<svg role='img' aria-label='Latency percentiles' viewBox='0 0 {W} {H}' width='100%' xmlns='http://www.w3.org/2000/svg'>\
         <text x='{PAD}' y='16' class='t'>Latency percentiles (ms, HDR histogram)</text><text x='4' y='{top}' class='l'>{max:.2}</text>\
         <line x1='{PAD}' y1='{b}' x2='{r}' y2='{b}' class='axis'/>",
        b = H - PAD,
        r = W - PAD,
        top = PAD + 4.0
    );
    for (pi, (name, _)) in values.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' class='l' style='fill:{}'>■ {name}</text>",
            W - PAD - 200.0,
            16.0 + 13.0 * pi as f64,
            colors[pi % colors.len()]
        );
    }
    for (gi, label) in labels.iter().enumerate() {
        let gx = PAD + group * gi as f64;
        let _ = write!(svg, "<text x='{:.1}' y='{:.1}' class='l'>{label}</text>", gx + 4.0, H - PAD + 16.0);
        for (pi, (name, v)) in values.iter().enumerate() {
            let h = (H - 2.0 * PAD) * v[gi] / max;
            let _ = write!(
                svg,
                "<rect x='{:.1}' y='{:.1}' width='{:.1}' height='{h:.1}' fill='{}'><title>{name} {label}: {:.3} ms</title></rect>",
                gx + 4.0 + bar * pi as f64,
                H - PAD - h,
                (bar - 2.0).max(1.0),
                colors[pi % colors.len()],
                v[gi]
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Path names come from the profile: escape them where they go into SVG text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#39;")
}
