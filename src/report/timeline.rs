//! The client's timeline as an SVG picture for the HTML report: one lane per endpoint, each
//! request a mark from its arrival to its answer (coloured by status, outlined when the case's
//! script answered), the tokens' lifetimes as bars, and the gap between polls written above them
//! — a polling discipline reads faster as a picture than as numbers. Pure: a timeline in, text out.

use crate::protocol::observation::{Endpoint, Timeline};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 90.0;
const LANE: f64 = 26.0;
const LANES: &[(Endpoint, &str)] = &[
    (Endpoint::Backchannel, "backchannel"),
    (Endpoint::Poll, "poll"),
    (Endpoint::Token, "token"),
    (Endpoint::Resource, "resource"),
    (Endpoint::Other, "other"),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#39;").replace('"', "&quot;")
}

fn colour(status: u16) -> &'static str {
    match status {
        200..=299 => "#1a7f37",
        400..=499 => "#9a6700",
        _ => "#cf222e",
    }
}

/// The SVG, or `None` for an empty timeline.
pub fn svg(timeline: &Timeline) -> Option<String> {
    if timeline.entries.is_empty() {
        return None;
    }
    let lanes: Vec<(Endpoint, &str)> =
        LANES.iter().copied().filter(|(e, _)| timeline.entries.iter().any(|x| x.endpoint == *e)).collect();
    let has_tokens = timeline.entries.iter().any(|e| e.lifetime_ms.is_some());
    let rows = lanes.len() + usize::from(has_tokens);
    let height = 30.0 + rows as f64 * LANE + 20.0;
    let span =
        timeline.duration_ms.max(timeline.entries.iter().map(|e| e.answered_ms).max().unwrap_or(0)).max(1) as f64;
    let x = |ms: u64| LEFT + (ms as f64 / span) * (WIDTH - LEFT - 10.0);
    let y = |row: usize| 30.0 + row as f64 * LANE;
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' class='timeline' viewBox='0 0 {WIDTH} {height}' width='100%' role='img' aria-label='requests of the client over time'>"
    );
    // Seconds along the top.
    let step = if span > 60_000.0 {
        10_000
    } else if span > 20_000.0 {
        5_000
    } else {
        1_000
    };
    let mut t = 0;
    while (t as f64) <= span {
        out.push_str(&format!(
            "<line x1='{0:.1}' x2='{0:.1}' y1='18' y2='{1:.1}' stroke='#d0d7de'/><text x='{0:.1}' y='12' font-size='10' text-anchor='middle' fill='#59636e'>{2} s</text>",
            x(t),
            height - 18.0,
            t / 1000
        ));
        t += step;
    }
    let mut row = 0;
    if has_tokens {
        out.push_str(&format!("<text x='4' y='{:.1}' font-size='11' fill='#59636e'>token life</text>", y(row) + 14.0));
        for e in timeline.entries.iter().filter(|e| e.lifetime_ms.is_some()) {
            let (start, end) = (e.answered_ms, e.answered_ms + e.lifetime_ms.unwrap_or(0));
            let label = escape(e.token.as_deref().unwrap_or(""));
            out.push_str(&format!(
                "<rect x='{:.1}' y='{:.1}' width='{:.1}' height='10' fill='#0969da' fill-opacity='.25' stroke='#0969da'><title>token {label}: {} s</title></rect><text x='{:.1}' y='{:.1}' font-size='9' fill='#0969da'>{label}</text>",
                x(start),
                y(row) + 5.0,
                (x(end.min(span as u64)) - x(start)).max(2.0),
                e.lifetime_ms.unwrap_or(0) / 1000,
                x(start) + 2.0,
                y(row) + 13.0
            ));
        }
        row += 1;
    }
    for (endpoint, name) in &lanes {
        out.push_str(&format!("<text x='4' y='{:.1}' font-size='11' fill='#1f2328'>{name}</text>", y(row) + 14.0));
        let mut previous: Option<u64> = None;
        for e in timeline.entries.iter().filter(|e| e.endpoint == *endpoint) {
            let what = format!(
                "{} at {:.2} s → {}{}{}",
                escape(&e.method),
                e.at_ms as f64 / 1000.0,
                e.status,
                e.error.as_deref().map(|err| format!(" {}", escape(err))).unwrap_or_default(),
                if e.injected { " (scripted)" } else { "" }
            );
            out.push_str(&format!(
                "<rect x='{:.1}' y='{:.1}' width='{:.1}' height='14' fill='{}'{}><title>{what}</title></rect>",
                x(e.at_ms),
                y(row) + 3.0,
                (x(e.answered_ms) - x(e.at_ms)).max(2.0),
                colour(e.status),
                if e.injected { " stroke='#000' stroke-width='1.5'" } else { "" }
            ));
            // The wait since the previous poll, where the interval rule is judged.
            if let (Endpoint::Poll, Some(prev)) = (endpoint, previous) {
                out.push_str(&format!(
                    "<text x='{:.1}' y='{:.1}' font-size='9' text-anchor='middle' fill='#59636e'>{:.1}s</text>",
                    (x(prev) + x(e.at_ms)) / 2.0,
                    y(row) + 1.0,
                    (e.at_ms.saturating_sub(prev)) as f64 / 1000.0
                ));
            }
            previous = Some(e.at_ms);
        }
        row += 1;
    }
    out.push_str("</svg>");
    Some(out)
}
