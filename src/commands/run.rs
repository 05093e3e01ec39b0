//! `oauth-harness run`: load, connect, run, report, exit code.

use std::path::Path;

use super::{Output, Plain};
use crate::cli::RunArgs;
use crate::diagnostics::did_you_mean;
use crate::exit;
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::evidence::{self, Bundle};
use crate::jwks_server::{JwksServer, publish_served_clients};
use crate::keys::{KeyPair, KidStyle};
use crate::mock::embedded::Embedded;
use crate::mock::{self, identity_server};
use crate::report;
use crate::report::terminal::Detail;
use crate::results::RunReport;
use crate::run::{Progress, RunError, RunOptions, Runner};
use crate::scenario::{self, Loaded, Suite};
use crate::secret::Redactor;
use crate::target::Target;

pub async fn run(args: RunArgs, out: Output) -> u8 {
    let loaded = match scenario::load_paths(&args.paths) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                out.error(e);
            }
            return exit::INVALID_INPUT;
        }
    };
    let mut suites: Vec<Suite> = Vec::new();
    for item in loaded {
        match item {
            Loaded::Suite(s) => suites.push(*s),
            Loaded::LoadProfile(path) => {
                eprintln!("note: {} is a load profile; run it with `oauth-harness load`", path.display())
            }
        }
    }
    if suites.is_empty() {
        out.error(
            &Plain::new("no conformance suite to run").help("only load profiles were found; use `oauth-harness load`"),
        );
        return exit::INVALID_INPUT;
    }

    // The embedded mocks (and the JWKS server) live for the whole run. Each suite runs against
    // its system's target: one target file for all, or the embedded mock of its system.
    let (groups, jwks, _embedded) = match args.target.as_deref() {
        Some(path) => {
            let target = match load_target(path, &args, out) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let jwks = match JwksServer::start(target.jwks_server_port).await {
                Ok(j) => Arc::new(j),
                Err(e) => {
                    out.error(&Plain::new(format!("cannot start the JWKS server on 127.0.0.1: {e}")));
                    return exit::RUNTIME_ERROR;
                }
            };
            for (client, url) in publish_served_clients(&target, &jwks) {
                eprintln!("note: serving the JWKS of client `{client}` at {url} (register this URL)");
            }
            (vec![(target, suites)], jwks, None)
        }
        None => match start_embedded(&args.mock_defects, out).await {
            Ok(embedded) => (embedded.group(suites), embedded.jwks.clone(), Some(embedded)),
            Err(code) => return code,
        },
    };

    // An unusable signing key is our input's fault: say so before any traffic.
    let evidence_key = match args.evidence_key.as_deref().map(|p| KeyPair::load(p, KidStyle::Rfc7638)).transpose() {
        Ok(k) => k,
        Err(e) => {
            out.error(&Plain::new(format!("--evidence-key: {e}")));
            return exit::INVALID_INPUT;
        }
    };
    let redactor = Redactor::new();
    let bar = progress_bar(&args, out);
    let progress = bar.clone().map(|bar| {
        let waiting = bar.clone();
        Progress {
            case_done: Arc::new(move |case: &crate::results::CaseResult| {
                bar.set_message(format!("done: {}", case.id));
                bar.inc(1);
            }),
            waiting: Arc::new(move |what: &str| waiting.set_message(what.to_string())),
        }
    });
    let options = RunOptions { filter: args.filter.clone(), strict: args.strict, jobs: args.jobs as usize, progress };
    let mut runners = Vec::new();
    let mut selected = 0;
    for (mut target, suites) in groups {
        if let Some(timeout) = args.timeout {
            target.timeout = timeout;
        }
        let runner = match Runner::prepare(target, jwks.clone(), redactor.clone(), options.clone()).await {
            Ok(r) => r,
            Err(e) => {
                out.error(&e);
                return exit::RUNTIME_ERROR;
            }
        };
        if let Err(e) = runner.preflight(&suites) {
            out.error(&e);
            return exit::INVALID_INPUT;
        }
        let count = runner.selected_count(&suites);
        selected += count;
        if count > 0 {
            runners.push((runner, suites));
        }
    }
    if selected == 0 {
        out.error(&RunError::EmptyFilter(args.filter.clone().unwrap_or_default()));
        return exit::INVALID_INPUT;
    }
    if let Some(bar) = &bar {
        bar.set_length(selected as u64);
    }
    // Systems run side by side: the PSC suite's waits need not hold the others back.
    let started = std::time::Instant::now();
    let results = futures_util::future::join_all(runners.iter().map(|(runner, suites)| runner.run(suites))).await;
    let mut parts = Vec::new();
    for result in results {
        match result {
            Ok(r) => parts.push(r),
            Err(e @ RunError::EmptyFilter(_)) => {
                out.error(&e);
                return exit::INVALID_INPUT;
            }
            Err(e) => {
                out.error(&e);
                return exit::RUNTIME_ERROR;
            }
        }
    }
    let Some(mut report) = RunReport::merge(parts) else {
        out.error(&RunError::EmptyFilter(args.filter.clone().unwrap_or_default()));
        return exit::INVALID_INPUT;
    };
    report.duration = started.elapsed();
    let all_suites: Vec<&Suite> = runners.iter().flat_map(|(_, s)| s.iter()).collect();
    let target_source = runners.first().and_then(|(r, _)| r.target_source());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let detail = match (args.quiet, args.verbose) {
        (true, _) => Detail::Quiet,
        (_, true) => Detail::Verbose,
        _ => Detail::Normal,
    };
    print!("{}", redactor.scrub(&report::terminal::render(&report, out.color, detail)));
    if let Err(code) = write_reports(&args, &report, &redactor, out) {
        return code;
    }
    if let Some(dir) = &args.evidence {
        let bundle = evidence_bundle(&report, &all_suites, &args, &redactor, target_source);
        match evidence::write(dir, &bundle, evidence_key.as_ref()) {
            Ok(files) => eprintln!("note: evidence written to {} ({} files)", dir.display(), files.len()),
            Err(e) => {
                out.error(&Plain::new(e.to_string()));
                return exit::RUNTIME_ERROR;
            }
        }
    }
    exit_code(&report)
}

pub(super) fn load_target(path: &Path, args: &RunArgs, out: Output) -> Result<Target, u8> {
    if !args.mock_defects.is_empty() {
        out.error(&Plain::new("--mock-defect switches defects on in the embedded mocks; it cannot apply to --target"));
        return Err(exit::INVALID_INPUT);
    }
    Target::load(path).map_err(|errors| {
        for e in &errors {
            out.error(e);
        }
        exit::INVALID_INPUT
    })
}

pub(super) async fn start_embedded(defect_names: &[String], out: Output) -> Result<Embedded, u8> {
    let mut defects = Vec::new();
    let mut psc_defects = Vec::new();
    for name in defect_names {
        match (identity_server::Defect::from_name(name), mock::psc::Defect::from_name(name)) {
            (Some(d), _) => defects.push(d),
            (None, Some(d)) => psc_defects.push(d),
            (None, None) => {
                let names = mock::all_defect_names();
                let e = Plain::new(format!("no mock has a defect named `{name}`"));
                let e = match did_you_mean(name, names.iter().copied()) {
                    Some(best) => {
                        e.help(format!("did you mean `{best}`? (`oauth-harness mock identity-server --list-defects`)"))
                    }
                    None => e.help("`oauth-harness mock identity-server --list-defects` lists them"),
                };
                out.error(&e);
                return Err(exit::INVALID_INPUT);
            }
        }
    }
    Embedded::start_with(mock::DefectSet::new(defects), mock::DefectSet::new(psc_defects)).await.map_err(|e| {
        out.error(&Plain::new(format!("cannot start the embedded mocks: {e}")));
        exit::RUNTIME_ERROR
    })
}

/// A progress bar on stderr, for a terminal only and not with `--quiet`.
fn progress_bar(args: &RunArgs, out: Output) -> Option<ProgressBar> {
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

fn write_reports(args: &RunArgs, report: &RunReport, redactor: &Redactor, out: Output) -> Result<(), u8> {
    let outputs = [
        (&args.report_junit, report::junit::render as fn(&RunReport) -> String),
        (&args.report_json, report::json::render),
        (&args.report_html, report::html::render),
    ];
    let fail = |e: Plain| {
        out.error(&e);
        exit::RUNTIME_ERROR
    };
    for (path, render) in outputs {
        if let Some(path) = path {
            write_file(path, &redactor.scrub(&render(report))).map_err(fail)?;
        }
    }
    if let Some(path) = &args.report_md {
        write_markdown(path, &redactor.scrub(&report::markdown::render(report))).map_err(fail)?;
    }
    Ok(())
}

/// A Markdown summary to `path`; `-` appends it to `$GITHUB_STEP_SUMMARY`, or prints it when
/// that is unset.
pub(super) fn write_markdown(path: &Path, text: &str) -> Result<(), Plain> {
    if path.as_os_str() == "-" {
        match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(summary) => append_file(Path::new(&summary), text),
            None => {
                print!("{text}");
                Ok(())
            }
        }
    } else {
        write_file(path, text)
    }
}

/// Everything a third party needs to see what was run against what, redacted.
fn evidence_bundle(
    report: &RunReport,
    suites: &[&Suite],
    args: &RunArgs,
    redactor: &Redactor,
    target_source: Option<&crate::diagnostics::SourceFile>,
) -> Bundle {
    let mut files = vec![("report.json".to_string(), redactor.scrub(&report::json::render(report)).into_bytes())];
    for suite in suites {
        files.push((
            evidence::bundle_path("scenarios", &suite.source.path),
            redactor.scrub(&suite.source.text).into_bytes(),
        ));
    }
    if let Some(source) = target_source {
        files.push((evidence::bundle_path("target", &source.path), redactor.scrub(&source.text).into_bytes()));
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
        "strict": args.strict,
        "filter": args.filter,
    });
    files.push(("meta.json".to_string(), serde_json::to_vec_pretty(&meta).unwrap_or_default()));
    Bundle { files }
}

fn append_file(path: &Path, text: &str) -> Result<(), Plain> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Plain::new(format!("cannot append to `{}`: {e}", path.display())))
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<(), Plain> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Plain::new(format!("cannot create `{}`: {e}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(|e| Plain::new(format!("cannot write `{}`: {e}", path.display())))
}

/// Errors (an incomplete run) outrank failures; both outrank success.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.summary.errors > 0 {
        exit::RUNTIME_ERROR
    } else if report.summary.failed > 0 {
        exit::CHECK_FAILED
    } else {
        exit::SUCCESS
    }
}
