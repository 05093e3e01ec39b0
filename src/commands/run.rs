//! `oauth-harness run`: read, connect, run, report; Ctrl-C writes what ran, marked interrupted.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use crate::cli::RunArgs;
use crate::embedded::{Embedded, parse_defects};
use crate::evidence::{self, Bundle};
use crate::exit::{Failure, Outcome, Usage, WriteError};
use crate::input::{self, Input};
use crate::model::{Suite, Target};
use crate::protocol::jwks_server::{JwksServer, publish_served_clients};
use crate::report;
use crate::report::terminal::Detail;
use crate::results::{RunReport, RunVerdict};
use crate::run::{Progress, RunError, RunOptions, Runner, Stop};
use crate::support::diagnostics::SourceFile;
use crate::support::keys::KeyPair;
use crate::support::secret::Shown;

pub async fn run(args: RunArgs, out: &Output) -> Result<Outcome, Failure> {
    let suites = suites_of(input::read_inputs(&args.paths)?, out)?;
    let known = match &args.known_deviations {
        None => None,
        Some(path) => {
            let known = input::read_known_deviations(path)?;
            let errors = crate::known::validate(&known);
            if !errors.is_empty() {
                return Err(RunError::Preflight(errors).into());
            }
            for warning in crate::known::unmatched(&known, &suites) {
                out.note(&warning);
            }
            Some((known, path.display().to_string()))
        }
    };
    // An unusable signing key is our input's fault: say so before any traffic.
    let evidence_key = args.evidence_key.as_deref().map(|p| KeyPair::load(p, None)).transpose()?;
    if let Some(dir) = &args.evidence {
        evidence::check_writable(dir, args.evidence_force)?;
    }

    // The embedded mocks (and the JWKS server) live for the whole run. Each suite runs against
    // its system's target: one target file for all, or the embedded mock of its system.
    let (groups, jwks, _embedded) = match args.target.as_deref() {
        Some(path) => {
            let target = read_target(path, &args.mock_defects)?;
            let jwks = Arc::new(
                JwksServer::start(target.jwks_server_port)
                    .await
                    .map_err(|e| Failure::Start { what: "the JWKS server on 127.0.0.1", reason: e.to_string() })?,
            );
            for (client, url) in publish_served_clients(&target, &jwks) {
                out.note(&format!("note: serving the JWKS of client `{client}` at {url} (register this URL)"));
            }
            (vec![(target, suites)], jwks, None)
        }
        None => {
            let embedded = start_embedded(&args.mock_defects).await?;
            (embedded.group(suites), embedded.jwks.clone(), Some(embedded))
        }
    };

    let bar = progress_bar(&args, out);
    let stop = Stop::default();
    let options = RunOptions {
        filter: args.filter.clone(),
        skip: args.skip.clone(),
        strict: args.strict,
        jobs: args.jobs as usize,
        progress: bar.clone().map(progress_of),
        stop: Some(stop.clone()),
    };
    let mut runners = Vec::new();
    let mut selected = 0;
    for (mut target, suites) in groups {
        if let Some(timeout) = args.timeout {
            target.timeout = timeout;
        }
        let runner = Runner::prepare(target, jwks.clone(), out.redactor.clone(), options.clone()).await?;
        runner.preflight(&suites)?;
        let count = runner.selected_count(&suites);
        selected += count;
        if count > 0 {
            runners.push((runner, suites));
        }
    }
    if selected == 0 {
        return Err(RunError::EmptyFilter(args.filter.clone().unwrap_or_default()).into());
    }
    if let Some(bar) = &bar {
        bar.set_length(selected as u64);
    }
    // Ctrl-C stops the run: what finished is reported, the rest is marked not run.
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.trigger();
            }
        })
    };
    // Systems run side by side: the PSC suite's waits need not hold the others back.
    let started = std::time::Instant::now();
    let results = futures_util::future::join_all(runners.iter().map(|(runner, suites)| runner.run(suites))).await;
    interrupt.abort();
    let mut parts = Vec::new();
    for result in results {
        parts.push(result?);
    }
    let mut report =
        RunReport::merge(parts).ok_or_else(|| RunError::EmptyFilter(args.filter.clone().unwrap_or_default()))?;
    report.duration = started.elapsed();
    if let Some((known, file)) = &known {
        crate::known::apply(&mut report, known, file);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let detail = match (args.quiet, args.verbose) {
        (true, _) => Detail::Quiet,
        (_, true) => Detail::Verbose,
        _ => Detail::Normal,
    };
    out.print(&report::terminal::render(&report, out.color, detail));
    write_reports(&args, &report, out)?;
    if let Some(dir) = &args.evidence {
        let all_suites: Vec<&Suite> = runners.iter().flat_map(|(_, s)| s.iter()).collect();
        let target_source = runners.first().and_then(|(r, _)| r.target_source());
        let known_source = known.as_ref().map(|(k, _)| &k.source);
        let bundle = evidence_bundle(&report, &all_suites, &args, out, target_source, known_source);
        let files = evidence::write(dir, &bundle, evidence_key.as_ref(), args.evidence_force)?;
        out.note(&format!("note: evidence written to {} ({} files)", dir.display(), files.len()));
    }
    Ok(outcome(&report))
}

/// The suites among the inputs; load profiles are pointed at `load`.
fn suites_of(inputs: Vec<Input>, out: &Output) -> Result<Vec<Suite>, Failure> {
    let mut suites = Vec::new();
    for item in inputs {
        match item {
            Input::Suite(s) => suites.push(*s),
            Input::LoadProfile(path) => {
                out.note(&format!("note: {} is a load profile; run it with `oauth-harness load`", path.display()))
            }
            Input::ClientSuite(path) => out.note(&format!(
                "note: {} is a client suite; certify a client with `oauth-harness certify {} -- CMD`",
                path.display(),
                path.display()
            )),
        }
    }
    if suites.is_empty() {
        return Err(Usage::new("no conformance suite to run")
            .help("only load profiles or client suites were found: `oauth-harness load` runs a profile, `oauth-harness certify` a client suite")
            .into());
    }
    Ok(suites)
}

pub(super) fn read_target(path: &Path, mock_defects: &[String]) -> Result<Target, Failure> {
    if !mock_defects.is_empty() {
        return Err(
            Usage::new("--mock-defect switches defects on in the embedded mocks; it cannot apply to --target").into()
        );
    }
    Ok(input::read_target(path)?)
}

pub(super) async fn start_embedded(defect_names: &[String]) -> Result<Embedded, Failure> {
    start_embedded_slowed(defect_names, None).await
}

pub(super) async fn start_embedded_slowed(
    defect_names: &[String],
    token_delay: Option<std::time::Duration>,
) -> Result<Embedded, Failure> {
    let (defects, psc_defects) = parse_defects(defect_names)?;
    Embedded::start_slowed(defects, psc_defects, token_delay)
        .await
        .map_err(|e| Failure::Start { what: "the embedded mocks", reason: e.to_string() })
}

fn progress_of(bar: ProgressBar) -> Progress {
    let waiting = bar.clone();
    Progress {
        case_done: Arc::new(move |case: &crate::results::CaseResult| {
            bar.set_message(format!("done: {}", case.id));
            bar.inc(1);
        }),
        waiting: Arc::new(move |what: &str| waiting.set_message(what.to_string())),
    }
}

/// A progress bar on stderr, for a terminal only and not with `--quiet`.
fn progress_bar(args: &RunArgs, out: &Output) -> Option<ProgressBar> {
    if args.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template("{spinner} {pos}/{len} cases  {elapsed}  {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(0).with_style(style);
    if !out.color {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn write_reports(args: &RunArgs, report: &RunReport, out: &Output) -> Result<(), Failure> {
    let paths = ReportPaths {
        junit: args.report_junit.as_deref(),
        json: args.report_json.as_deref(),
        html: args.report_html.as_deref(),
        markdown: args.report_md.as_deref(),
    };
    write_report_files(&paths, report, out)
}

/// Where `run` and `certify` write their report files.
pub(super) struct ReportPaths<'a> {
    pub junit: Option<&'a Path>,
    pub json: Option<&'a Path>,
    pub html: Option<&'a Path>,
    pub markdown: Option<&'a Path>,
}

/// Each report format asked for, scrubbed of every secret the run has seen.
pub(super) fn write_report_files(paths: &ReportPaths<'_>, report: &RunReport, out: &Output) -> Result<(), Failure> {
    let outputs = [
        (paths.junit, report::junit::render as fn(&RunReport) -> String),
        (paths.json, report::json::render),
        (paths.html, report::html::render),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            write_file(path, &out.redactor.scrub(&render(report)))?;
        }
    }
    if let Some(path) = paths.markdown {
        write_markdown(path, &out.redactor.scrub(&report::markdown::render(report)), out)?;
    }
    Ok(())
}

/// A Markdown summary to `path`; `-` appends it to `$GITHUB_STEP_SUMMARY`, or prints it when
/// that is unset.
pub(super) fn write_markdown(path: &Path, text: &str, out: &Output) -> Result<(), WriteError> {
    if path.as_os_str() == "-" {
        match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(summary) => append_file(Path::new(&summary), text),
            None => {
                out.print(text);
                Ok(())
            }
        }
    } else {
        write_file(path, text)
    }
}

/// Everything a third party needs to see what was run against what, redacted. Input files are
/// redacted into YAML that still parses (a secret becomes a plain scalar).
fn evidence_bundle(
    report: &RunReport,
    suites: &[&Suite],
    args: &RunArgs,
    out: &Output,
    target_source: Option<&SourceFile>,
    known: Option<&SourceFile>,
) -> Bundle {
    let redactor = &out.redactor;
    let yaml = |source: &SourceFile| {
        let masked = crate::support::diagnostics::mask_values(&source.text, crate::input::SECRET_KEYS, |v| {
            let bare = v.trim_matches(['"', '\'']);
            // `${env:…}` names where the secret is, and is no secret itself.
            if bare.starts_with("${") && bare.ends_with('}') {
                v.to_string()
            } else {
                format!("\"{}\"", crate::support::secret::fingerprint(bare))
            }
        });
        redactor.scrub_as(&masked, Shown::YamlScalar).into_bytes()
    };
    let mut files = vec![("report.json".to_string(), redactor.scrub(&report::json::render(report)).into_bytes())];
    for suite in suites {
        files.push((evidence::bundle_path("scenarios", &suite.source.path), yaml(&suite.source)));
    }
    if let Some(source) = target_source {
        files.push((evidence::bundle_path("target", &source.path), yaml(source)));
    }
    // The deviations the gate accepted are part of what was certified.
    if let Some(source) = known {
        files.push((evidence::bundle_path("known-deviations", &source.path), yaml(source)));
    }
    let finished_at = std::time::SystemTime::now();
    let meta = serde_json::json!({
        "harness": "oauth-harness",
        "harness_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("OAUTH_HARNESS_GIT_COMMIT"),
        "target_issuer": report.target,
        "target_origin": report.target_origin,
        "started_at": humantime::format_rfc3339_seconds(report.started_at).to_string(),
        "finished_at": humantime::format_rfc3339_seconds(finished_at).to_string(),
        "command": redactor.scrub(&std::env::args().collect::<Vec<_>>().join(" ")),
        "summary": report.summary,
        "interrupted": report.interrupted,
        "strict": args.strict,
        "filter": args.filter,
    });
    files.push(("meta.json".to_string(), serde_json::to_vec_pretty(&meta).unwrap_or_default()));
    Bundle { files }
}

fn append_file(path: &Path, text: &str) -> Result<(), WriteError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| WriteError { path: path.display().to_string(), reason: e.to_string() })
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<(), WriteError> {
    let fail = |p: &Path, e: std::io::Error| WriteError { path: p.display().to_string(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| fail(path, e))
}

/// The exit outcome of a run's verdict (decided once, in [`RunReport::verdict`]).
pub fn outcome(report: &RunReport) -> Outcome {
    match report.verdict() {
        RunVerdict::Interrupted | RunVerdict::Incomplete => Outcome::Incomplete,
        RunVerdict::Failed => Outcome::Failed,
        RunVerdict::NothingChecked if report.strict => Outcome::Failed,
        RunVerdict::NothingChecked | RunVerdict::Passed => Outcome::Passed,
    }
}
