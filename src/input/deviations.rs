//! Known-deviations files (`run --known-deviations FILE`), validated into
//! [`crate::model::deviations::KnownDeviations`]. Check ids are resolved against the catalogue
//! above this layer, where the catalogue lives.

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::Named;
use crate::model::deviations::{KnownDeviation, KnownDeviations};
use crate::support::diagnostics::SourceFile;

/// Entries a file may hold: a reviewed list, not a dump of every finding.
const MAX_ENTRIES: usize = 1000;

const SHAPES: Shapes = &[
    ("deviations", "a list of `{ check, cases, reason }` entries"),
    ("cases", "a list of case ids or `suite/case` globs, e.g. `[reject-invalid-scope]`"),
];

pub fn read_known_deviations(path: &Path) -> Result<KnownDeviations, InputErrors> {
    let source = read_source(path)?;
    parse_known_deviations(&source)
}

pub fn parse_known_deviations(source: &SourceFile) -> Result<KnownDeviations, InputErrors> {
    let file: DeviationsFile = yaml::parse(source, SHAPES).map_err(InputError::from)?;
    let mut v = Validator::new(source);
    if file.deviations.len() > MAX_ENTRIES {
        v.error_help(
            at(&file.deviations[MAX_ENTRIES].check),
            format!("more than {MAX_ENTRIES} known deviations"),
            "a gate's list is reviewed by people: keep it short, or fix the server",
        );
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut entries = Vec::new();
    for d in file.deviations.into_iter().take(MAX_ENTRIES) {
        let reason = d.reason.value.trim().to_string();
        if reason.is_empty() {
            v.error_help(
                at(&d.reason),
                "a known deviation needs its reason",
                "say what the server does and why it is accepted",
            );
        }
        if d.cases.value.is_empty() {
            v.error_help(at(&d.cases), "`cases` is empty", "name the cases this check may fail in (globs allowed)");
        }
        for case in &d.cases.value {
            let pair = (d.check.value.clone(), case.clone());
            if seen.contains(&pair) {
                v.error_help(
                    at(&d.cases),
                    format!("`{}` in `{case}` is listed twice", d.check.value),
                    "keep one entry per check and case",
                );
            }
            seen.push(pair);
        }
        entries.push(KnownDeviation {
            check: Named { name: d.check.value.clone(), span: at(&d.check) },
            cases: d.cases.value,
            reason,
            span: at(&d.check),
        });
    }
    v.finish(KnownDeviations { source: source.clone(), title: file.title, entries })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviationsFile {
    /// The server (and version) the list is about.
    title: Option<String>,
    deviations: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: Spanned<String>,
    cases: Spanned<Vec<String>>,
    reason: Spanned<String>,
}
