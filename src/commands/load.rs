//! `oauth-harness load`: validate the profile and target, run the attack, print the table, write
//! the reports, and turn the thresholds into the exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use super::run::{read_target, start_embedded, write_file, write_markdown};
use crate::cli::LoadArgs;
use crate::exit::{Failure, Outcome, Usage, WriteError};
use crate::input::{self, InputError, InputErrors};
use crate::load::report::LoadReport;
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
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let profile = input::read_profile(&args.profile)?;
    let settings = settings(&profile, &args)?;
    // The embedded mock lives until the end of the run.
    let (target, _embedded) = match &args.target {
        Some(path) => (read_target(path, &args.mock_defects)?, None),
        None => {
            let embedded = start_embedded(&args.mock_defects).await?;
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
    let report = result?;
    out.print(&report::load::terminal(&report, out.color));
    write_reports(&args, &report, out)?;
    Ok(outcome(&report))
}

/// A threshold that failed, or a run in which not one request succeeded, fails the run.
pub fn outcome(report: &LoadReport) -> Outcome {
    if report.passed() { Outcome::Passed } else { Outcome::Failed }
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

fn write_reports(args: &LoadArgs, report: &LoadReport, out: &Output) -> Result<(), WriteError> {
    let outputs =
        [(&args.report_json, report::load::json as fn(&LoadReport) -> String), (&args.report_html, report::load::html)];
    for (path, render) in outputs {
        if let Some(path) = path {
            write_file(path, &out.redactor.scrub(&render(report)))?;
        }
    }
    if let Some(path) = &args.report_md {
        write_markdown(path, &out.redactor.scrub(&report::load::markdown(report)), out)?;
    }
    Ok(())
}
