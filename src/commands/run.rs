//! `oauth-harness run`: load, connect, run, report, exit code.

use std::path::Path;

use super::{Output, Plain};
use crate::cli::RunArgs;
use crate::diagnostics::did_you_mean;
use crate::exit;
use std::sync::Arc;

use crate::jwks_server::{JwksServer, publish_served_clients};
use crate::mock::embedded::Embedded;
use crate::mock::{self, identity_server};
use crate::report;
use crate::results::RunReport;
use crate::run::{RunError, RunOptions, Runner};
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

    // The embedded mocks (and the JWKS server) live for the whole run.
    let (mut target, jwks, _embedded) = match args.target.as_deref() {
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
            (target, jwks, None)
        }
        None => match start_embedded(&args.mock_defects, out).await {
            Ok(embedded) => (embedded.target.clone(), embedded.jwks.clone(), Some(embedded)),
            Err(code) => return code,
        },
    };
    if let Some(timeout) = args.timeout {
        target.timeout = timeout;
    }

    let redactor = Redactor::new();
    let options = RunOptions { filter: args.filter.clone(), strict: args.strict, jobs: args.jobs as usize };
    let runner = match Runner::prepare(target, jwks, redactor.clone(), options).await {
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
    let report = match runner.run(&suites).await {
        Ok(r) => r,
        Err(e @ RunError::EmptyFilter(_)) => {
            out.error(&e);
            return exit::INVALID_INPUT;
        }
        Err(e) => {
            out.error(&e);
            return exit::RUNTIME_ERROR;
        }
    };
    print!("{}", redactor.scrub(&report::terminal::render(&report, out.color)));
    if let Err(code) = write_reports(&args, &report, &redactor, out) {
        return code;
    }
    exit_code(&report)
}

fn load_target(path: &Path, args: &RunArgs, out: Output) -> Result<Target, u8> {
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

async fn start_embedded(defect_names: &[String], out: Output) -> Result<Embedded, u8> {
    let mut defects = Vec::new();
    for name in defect_names {
        match identity_server::Defect::from_name(name) {
            Some(d) => defects.push(d),
            None => {
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
    Embedded::start(mock::DefectSet::new(defects)).await.map_err(|e| {
        out.error(&Plain::new(format!("cannot start the embedded mocks: {e}")));
        exit::RUNTIME_ERROR
    })
}

fn write_reports(args: &RunArgs, report: &RunReport, redactor: &Redactor, out: Output) -> Result<(), u8> {
    let outputs = [
        (&args.report_junit, report::junit::render as fn(&RunReport) -> String),
        (&args.report_json, report::json::render),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            write_file(path, &redactor.scrub(&render(report))).map_err(|e| {
                out.error(&e);
                exit::RUNTIME_ERROR
            })?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), Plain> {
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
