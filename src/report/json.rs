//! The JSON report: the [`RunReport`] as is. Its shape is versioned by `schema` and documented in
//! README ("JSON report").

use crate::results::RunReport;

pub fn render(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| unreachable!("RunReport serializes: {e}"))
}
