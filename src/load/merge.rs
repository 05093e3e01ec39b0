//! `load merge`: the shards of a distributed run added up into one report. Histograms are added
//! (exact percentiles of all samples, not an average of percentiles), counts, errors by cause
//! and status codes summed, timelines aligned by wall clock, and the profile's thresholds judged
//! again on the merged figures.

use std::collections::BTreeMap;

use super::report::{FORMAT, LoadReport, PathSummary, READABLE_FORMATS, Settings};
use super::stats::{PathStats, Second};
use super::thresholds;

/// At most this many reports: a merge is of shards, not an archive.
pub const MAX_REPORTS: usize = super::shard::MAX_SHARDS;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error("no report to merge")]
    Empty,
    #[error("more than {MAX_REPORTS} reports")]
    TooMany,
    #[error("{file} is a `{found}` report, not `{FORMAT}` (written by another version of the harness?)")]
    Format { file: String, found: String },
    #[error("{file} is a run of profile `{theirs}`, the others of `{ours}`")]
    OtherProfile { file: String, theirs: String, ours: String },
    #[error("{file} was run with another version of profile `{profile}` (its SHA-256 differs)")]
    OtherProfileText { file: String, profile: String },
    #[error("{file} is not a shard's report (run with --shard or --shards)")]
    NotAShard { file: String },
    #[error("{file} is shard {index} of {count}; the first report was of {expected} shards")]
    ShardCount { file: String, index: usize, count: usize, expected: usize },
    #[error("shard {index} appears twice ({first} and {second})")]
    Duplicate { index: usize, first: String, second: String },
    /// `missing`: "shard 2", "shards 2, 3".
    #[error("{missing} of {count} missing: the merged figures would not be the profile's")]
    Missing { missing: String, count: usize },
    #[error("{file}: {reason}")]
    Corrupt { file: String, reason: String },
}

/// Merges shard reports (each with the file it came from).
pub fn merge(reports: Vec<(String, LoadReport)>) -> Result<LoadReport, MergeError> {
    if reports.is_empty() {
        return Err(MergeError::Empty);
    }
    if reports.len() > MAX_REPORTS {
        return Err(MergeError::TooMany);
    }
    let (first_file, first) = &reports[0];
    let count = first.shard.map(|s| s.count).ok_or_else(|| MergeError::NotAShard { file: first_file.clone() })?;
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    for (file, r) in &reports {
        if !READABLE_FORMATS.contains(&r.format.as_str()) {
            return Err(MergeError::Format { file: file.clone(), found: r.format.clone() });
        }
        if r.profile != first.profile {
            return Err(MergeError::OtherProfile {
                file: file.clone(),
                theirs: r.profile.clone(),
                ours: first.profile.clone(),
            });
        }
        if r.profile_digest != first.profile_digest {
            return Err(MergeError::OtherProfileText { file: file.clone(), profile: r.profile.clone() });
        }
        let shard = r.shard.ok_or_else(|| MergeError::NotAShard { file: file.clone() })?;
        if shard.count != count {
            return Err(MergeError::ShardCount {
                file: file.clone(),
                index: shard.index,
                count: shard.count,
                expected: count,
            });
        }
        if let Some(previous) = seen.insert(shard.index, file) {
            return Err(MergeError::Duplicate {
                index: shard.index,
                first: previous.to_string(),
                second: file.clone(),
            });
        }
    }
    let missing: Vec<String> = (1..=count).filter(|k| !seen.contains_key(k)).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 { "shard" } else { "shards" };
        return Err(MergeError::Missing { missing: format!("{noun} {}", missing.join(", ")), count });
    }

    // The run spans from the first shard's start to the last one's end.
    let start_ms = reports.iter().map(|(_, r)| r.traffic_started_unix_ms).min().unwrap_or_default();
    let end_ms = reports
        .iter()
        .map(|(_, r)| r.traffic_started_unix_ms + (r.duration_secs * 1000.0) as u64)
        .max()
        .unwrap_or(start_ms);
    let seconds = (end_ms - start_ms) as f64 / 1000.0;
    let corrupt = |file: &str| {
        let file = file.to_string();
        move |reason: String| MergeError::Corrupt { file: file.clone(), reason }
    };
    let mut total = PathStats::default();
    let mut paths: Vec<(PathSummary, PathStats)> = Vec::new();
    for (file, r) in &reports {
        let offset = ((r.traffic_started_unix_ms - start_ms) as f64 / 1000.0).round() as usize;
        for p in &r.paths {
            let stats = shifted(p.stats().map_err(corrupt(file))?, offset);
            total.merge(&stats);
            match paths.iter_mut().find(|(s, _)| s.name == p.name) {
                Some((_, merged)) => merged.merge(&stats),
                None => paths.push((p.clone(), stats)),
            }
        }
    }
    let verdicts = thresholds::evaluate(
        &first.profile_thresholds,
        |scope| match scope {
            None => Some(&total),
            Some(name) => paths.iter().find(|(p, _)| p.name == name).map(|(_, s)| s),
        },
        seconds,
    );
    let sum = |f: fn(&Settings) -> usize| reports.iter().map(|(_, r)| f(&r.settings)).sum::<usize>();
    let mut notes = vec![format!(
        "merged from {} shard reports; the run spans {:.1} s from the first shard's start to the last one's end",
        reports.len(),
        seconds
    )];
    let late = reports.iter().map(|(_, r)| r.traffic_started_unix_ms - start_ms).max().unwrap_or_default();
    if late > 1000 {
        notes.push(format!("the shards started up to {:.1} s apart (see each one's notes)", late as f64 / 1000.0));
    }
    let interrupted: Vec<&str> = reports.iter().filter(|(_, r)| r.interrupted).map(|(f, _)| f.as_str()).collect();
    if !interrupted.is_empty() {
        notes.push(format!("interrupted shard reports, so the merged figures are partial: {}", interrupted.join(", ")));
    }
    let mut pools = BTreeMap::new();
    for (_, r) in &reports {
        for (name, pool) in &r.signing_pools {
            let entry: &mut super::pool::PoolReport = pools.entry(name.clone()).or_default();
            entry.capacity += pool.capacity;
            entry.prefilled += pool.prefilled;
            entry.signed += pool.signed;
            entry.starved += pool.starved;
            entry.discarded_stale += pool.discarded_stale;
        }
    }
    Ok(LoadReport {
        format: FORMAT.to_string(),
        profile: first.profile.clone(),
        profile_digest: first.profile_digest.clone(),
        description: first.description.clone(),
        target: first.target.clone(),
        target_origin: first.target_origin.clone(),
        started_at: reports.iter().map(|(_, r)| r.started_at.clone()).min().unwrap_or_default(),
        traffic_started_unix_ms: start_ms,
        duration_secs: seconds,
        shard: None,
        merged_from: Some(reports.len()),
        interrupted: !interrupted.is_empty(),
        stopped_by_cap: reports.iter().any(|(_, r)| r.stopped_by_cap),
        settings: Settings {
            users: sum(|s| s.users),
            rate: reports.iter().map(|(_, r)| r.settings.rate).sum(),
            ..first.settings.clone()
        },
        total: PathSummary::new("all", "all", "", 0, &total, seconds),
        paths: paths
            .iter()
            .map(|(p, s)| PathSummary::new(&p.name, &p.kind, &p.transport, p.weight, s, seconds))
            .collect(),
        profile_thresholds: first.profile_thresholds.clone(),
        regression_limits: first.regression_limits.clone(),
        thresholds_passed: verdicts.iter().all(|v| v.passed),
        thresholds: verdicts,
        baseline: None,
        signing_pools: pools,
        notes,
    })
}

/// A shard's figures with its timeline moved `offset` seconds later (its start, on the run's
/// clock).
fn shifted(mut stats: PathStats, offset: usize) -> PathStats {
    if offset > 0 {
        let mut timeline = vec![Second::default(); offset];
        timeline.append(&mut stats.timeline);
        stats.timeline = timeline;
    }
    stats
}

/// A report file could not be used: unreadable, not a report, or not mergeable.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportFileError {
    #[error(transparent)]
    Read(#[from] crate::support::files::FileError),
    #[error("{file}:{line}:{column}: not a load report: {reason}")]
    #[diagnostic(help("give the JSON a `load --report-json` run wrote"))]
    Parse { file: String, line: usize, column: usize, reason: String },
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(transparent)]
    Baseline(#[from] super::baseline::BaselineError),
}

/// A report is at most this large (a long run's timeline and histograms are far smaller).
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a JSON load report.
pub fn read_report(path: &std::path::Path) -> Result<LoadReport, ReportFileError> {
    let file = path.display().to_string();
    let text = crate::support::files::read_text(path, MAX_REPORT_BYTES)?;
    // The format first: a report of another version says so, not "missing field".
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(found) = v.get("format").and_then(|f| f.as_str()).filter(|f| !READABLE_FORMATS.contains(f)) {
            return Err(MergeError::Format { file, found: found.to_string() }.into());
        }
    }
    serde_json::from_str(&text).map_err(|e| ReportFileError::Parse {
        file,
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })
}
