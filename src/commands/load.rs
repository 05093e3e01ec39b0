//! `oauth-harness load`: validate the profile and target, run the attack, print the table, write
//! the reports, and turn the thresholds into the exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use super::run::{read_target, start_embedded_slowed, write_file, write_markdown};
use crate::cli::{LoadArgs, LoadCommand, MergeArgs};
use crate::exit::{Failure, Outcome, Usage, WriteError};
use crate::input::{self, InputError, InputErrors};
use crate::load::report::{LoadReport, LoadVerdict};
use crate::load::shard::Shard;
use crate::load::{self, Hooks, Live};
use crate::model::profile::{Profile, RunSettings};
use crate::report;

/// goose logs through `log`, and would install a logger writing warnings to stdout, among our
/// table; this one, installed first, sends them to stderr.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{}: {}", record.level().as_str().to_lowercase(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

pub async fn load(args: LoadArgs, out: &Output) -> Result<Outcome, Failure> {
    if let Some(LoadCommand::Merge(merge)) = &args.command {
        return merge_reports(merge, out);
    }
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let profile_path = args.profile.clone().ok_or_else(|| {
        Usage::new("give a load profile").help("e.g. `oauth-harness load scenarios/load/token-secret.yaml`")
    })?;
    let mut profile = input::read_profile(&profile_path)?;
    let mut settings = settings(&profile, &args)?;
    let baseline = args.baseline.as_deref().map(load::merge::read_report).transpose()?;
    if let Some(shard) = shard_of(&args)? {
        apply_shard(&mut profile, &mut settings, shard)?;
    }
    settings.start_at = args.start_at.as_deref().map(start_at).transpose()?;
    // The embedded mock lives until the end of the run.
    let (target, _embedded) = match &args.target {
        Some(path) => (read_target(path, &args.mock_defects)?, None),
        None => {
            // Load drives the Identity Server mock only: a PSC defect would change nothing there.
            if let Some(name) = args.mock_defects.iter().find(|n| {
                crate::mock::identity_server::Defect::from_name(n).is_none()
                    && crate::mock::psc::Defect::from_name(n).is_some()
            }) {
                return Err(Usage::new(format!(
                    "`{name}` is a defect of the PSC mock, which no load path calls: it would change nothing"
                ))
                .help("`oauth-harness mock identity-server --list-defects` lists the defects a load run can use")
                .into());
            }
            let embedded = start_embedded_slowed(&args.mock_defects, args.mock_latency).await?;
            (embedded.target.clone(), Some(embedded))
        }
    };
    let problems = input::check_profile_against(&profile, &target);
    if !problems.is_empty() {
        return Err(InputErrors(problems.into_iter().map(InputError::from).collect()).into());
    }

    let progress = progress(&args, &profile, &settings, out);
    let result = load::run(&profile, &target, &settings, &out.redactor, progress.hooks).await;
    if let Some(bar) = progress.bar {
        bar.finish_and_clear();
    }
    let mut report = result?;
    if let (Some(b), Some(path)) = (&baseline, &args.baseline) {
        report.baseline = Some(
            load::baseline::compare(&report, b, &path.display().to_string(), &profile.regression)
                .map_err(load::merge::ReportFileError::from)?,
        );
    }
    out.print(&report::load::terminal(&report, out.color));
    let files = ReportFiles {
        json: &args.report_json,
        html: &args.report_html,
        md: &args.report_md,
        junit: &args.report_junit,
    };
    write_reports(&files, &report, out)?;
    Ok(outcome(&report))
}

/// `load merge`: the shards' reports as one, judged again (and against a baseline).
fn merge_reports(args: &MergeArgs, out: &Output) -> Result<Outcome, Failure> {
    let mut reports = Vec::new();
    for path in args.reports.iter().take(load::merge::MAX_REPORTS + 1) {
        reports.push((path.display().to_string(), load::merge::read_report(path)?));
    }
    let mut merged = load::merge::merge(reports).map_err(load::merge::ReportFileError::from)?;
    if let Some(path) = &args.baseline {
        let baseline = load::merge::read_report(path)?;
        let limits = merged.regression_limits.clone();
        merged.baseline = Some(
            load::baseline::compare(&merged, &baseline, &path.display().to_string(), &limits)
                .map_err(load::merge::ReportFileError::from)?,
        );
    }
    out.print(&report::load::terminal(&merged, out.color));
    let files = ReportFiles {
        json: &args.report_json,
        html: &args.report_html,
        md: &args.report_md,
        junit: &args.report_junit,
    };
    write_reports(&files, &merged, out)?;
    Ok(outcome(&merged))
}

/// `--shard K/N`, or `--shards N` with the index from `JOB_COMPLETION_INDEX`.
fn shard_of(args: &LoadArgs) -> Result<Option<Shard>, Usage> {
    let shard = match (&args.shard, args.shards) {
        (Some(text), _) => Shard::parse(text),
        (None, Some(n)) => Shard::from_job_index(n as usize, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref()),
        (None, None) => return Ok(None),
    };
    shard.map(Some).map_err(|e| Usage::new(e.to_string()).help("docs/distributed.md explains shards"))
}

/// The shard's part of the profile: users, rate, assertion pool and introspection tokens split
/// (see `load::shard`); a shard left with no user is a usage error, not an idle process.
fn apply_shard(profile: &mut Profile, settings: &mut RunSettings, shard: Shard) -> Result<(), Usage> {
    let users = shard.split(settings.users);
    if users == 0 {
        return Err(Usage::new(format!(
            "shard {shard} would have no user: {} over {} shards",
            crate::support::text::count(settings.users, "user"),
            shard.count
        ))
        .help("use fewer shards than users, or more users (--users)"));
    }
    settings.users = users;
    if let Some(rate) = settings.rate {
        let part = shard.split(rate);
        if part == 0 {
            return Err(Usage::new(format!(
                "shard {shard} would have a rate of 0: {rate}/s over {} shards",
                shard.count
            ))
            .help("use a rate of at least one request a second per shard"));
        }
        settings.rate = Some(part);
    }
    settings.assertion_pool = settings.assertion_pool.map(|n| shard.split(n).max(1));
    for path in &mut profile.paths {
        path.tokens = shard.split(path.tokens).max(1);
    }
    settings.shard = Some((shard.index, shard.count));
    Ok(())
}

/// The largest wait `--start-at` may ask for.
const MAX_START_WAIT: Duration = Duration::from_secs(3600);

/// `--start-at`: RFC 3339, in the future, at most an hour ahead.
fn start_at(text: &str) -> Result<std::time::SystemTime, Usage> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| {
        Usage::new(format!("--start-at `{text}` is not an RFC 3339 time: {e}")).help("e.g. 2026-12-01T12:00:00Z")
    })?;
    let now = std::time::SystemTime::now();
    match at.duration_since(now) {
        Err(_) => Err(Usage::new(format!("--start-at {text} is in the past"))
            .help("give every shard the same time a few minutes ahead, e.g. `date -u -d '+2 min' +%FT%TZ`")),
        Ok(wait) if wait > MAX_START_WAIT => Err(Usage::new(format!(
            "--start-at {text} is {} ahead, more than an hour",
            humantime::format_duration(Duration::from_secs(wait.as_secs()))
        ))
        .help("a shard waits at most an hour for its start")),
        Ok(_) => Ok(at),
    }
}

/// A threshold that failed, or a run in which not one request succeeded, fails the run.
pub fn outcome(report: &LoadReport) -> Outcome {
    match report.verdict() {
        LoadVerdict::Passed => Outcome::Passed,
        LoadVerdict::Failed => Outcome::Failed,
        LoadVerdict::Interrupted => Outcome::Incomplete,
    }
}

fn settings(profile: &Profile, args: &LoadArgs) -> Result<RunSettings, Usage> {
    let mut s = profile.settings.clone();
    if let Some(users) = args.users {
        s.users = users as usize;
    }
    if let Some(ramp) = args.ramp {
        s.ramp = ramp;
    }
    if let Some(duration) = args.duration {
        if duration.is_zero() {
            return Err(Usage::new("--duration must be longer than zero"));
        }
        s.duration = duration;
        s.iterations = None;
    }
    if let Some(n) = args.iterations {
        s.iterations = Some(n as usize);
    }
    if let Some(rate) = &args.rate {
        s.rate = Some(input::parse_rate(rate).map_err(|e| Usage::new(format!("--rate: {e}")).help("e.g. 500/s"))?);
    }
    if s.iterations.is_none() && s.duration + s.ramp > s.max_duration {
        return Err(Usage::new(format!(
            "ramp + duration exceeds the profile's max_duration ({})",
            humantime::format_duration(s.max_duration)
        ))
        .help("raise `max_duration` in the profile"));
    }
    s.goose_report = args.report_goose_html.clone();
    Ok(s)
}

struct Progress {
    hooks: Hooks,
    bar: Option<ProgressBar>,
}

/// A live line on a terminal; a plain line every five seconds otherwise; nothing with `--quiet`.
fn progress(args: &LoadArgs, profile: &Profile, settings: &RunSettings, out: &Output) -> Progress {
    if args.quiet {
        return Progress { hooks: Hooks::silent(), bar: None };
    }
    let planned = match settings.iterations {
        Some(n) => format!("{n} iterations"),
        None => humantime::format_duration(settings.ramp + settings.duration).to_string(),
    };
    out.note(&format!("load {}: {} users, {planned}", profile.name, settings.users));
    if std::io::stderr().is_terminal() {
        let style = ProgressStyle::with_template("{spinner} {elapsed}  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner().with_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        let (b, s) = (bar.clone(), bar.clone());
        let hooks = Hooks {
            on_tick: Arc::new(move |live: &Live| b.set_message(line(live))),
            on_status: Arc::new(move |what: &str| s.set_message(what.to_string())),
        };
        return Progress { hooks, bar: Some(bar) };
    }
    let hooks = Hooks {
        on_tick: Arc::new(|live: &Live| {
            // The first tick comes before any answer: a line of zeros would say nothing.
            let secs = live.elapsed.as_secs();
            if secs > 0 && secs % 5 == 0 {
                eprintln!("[{secs:>4}s] {}", line(live));
            }
        }),
        on_status: Arc::new(|what: &str| eprintln!("{what}")),
    };
    Progress { hooks, bar: None }
}

fn line(live: &Live) -> String {
    let p95 = live.p95_ms.map(|v| format!("{v:.2} ms")).unwrap_or_else(|| "–".into());
    format!("{} requests  {:.0}/s  {} errors  p95 {p95}", live.requests, live.rate, live.errors)
}

/// Where the reports of a run (or a merge) go.
struct ReportFiles<'a> {
    json: &'a Option<std::path::PathBuf>,
    html: &'a Option<std::path::PathBuf>,
    md: &'a Option<std::path::PathBuf>,
    junit: &'a Option<std::path::PathBuf>,
}

fn write_reports(files: &ReportFiles<'_>, report: &LoadReport, out: &Output) -> Result<(), WriteError> {
    let outputs = [
        (files.json, report::load::json as fn(&LoadReport) -> String),
        (files.html, report::load::html),
        (files.junit, report::load::junit),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            write_file(path, &out.redactor.scrub(&render(report)))?;
        }
    }
    if let Some(path) = files.md {
        write_markdown(path, &out.redactor.scrub(&report::load::markdown(report)), out)?;
    }
    Ok(())
}
