//! `oauth-harness certify`: read the client suite, run the client against each case's mock,
//! report as `run` does (the same formats, exit codes and evidence bundle).

use super::Output;
use super::run::{ReportPaths, outcome, write_report_files};
use crate::certify::{self, Attach};
use crate::cli::CertifyArgs;
use crate::evidence::{self, Bundle};
use crate::exit::{Failure, Outcome, Usage};
use crate::input::{self, MAX_OBSERVATION};
use crate::model::client_suite::ClientSuite;
use crate::report;
use crate::report::terminal::Detail;
use crate::results::RunReport;
use crate::run::RunError;
use crate::support::keys::KeyPair;
use crate::support::secret::Shown;

pub async fn certify(args: CertifyArgs, out: &Output) -> Result<Outcome, Failure> {
    let attach = match (&args.command[..], args.listen, args.for_) {
        ([], false, _) => {
            return Err(Usage::new("no client to certify")
                .help("give its command after `--` (e.g. `-- ./my-client`), or use `--listen --for 2m`")
                .into());
        }
        (_, true, Some(d)) if d.is_zero() || d > MAX_OBSERVATION => {
            return Err(Usage::new("--for must be between 1s and 10m").into());
        }
        (_, true, Some(duration)) => Attach::Listen { port: args.port, duration },
        (_, true, None) => return Err(Usage::new("--listen needs --for, e.g. `--for 2m`").into()),
        (command, false, _) => Attach::Command(command.to_vec()),
    };
    let suite = input::read_client_suite(&args.suite)?;
    let problems = certify::preflight(&suite);
    if !problems.is_empty() {
        return Err(RunError::Preflight(problems).into());
    }
    // An unusable signing key is our input's fault: say so before the client runs.
    let evidence_key = args.evidence_key.as_deref().map(|p| KeyPair::load(p, None)).transpose()?;
    if let Some(dir) = &args.evidence {
        evidence::check_writable(dir, args.evidence_force)?;
    }
    let on_listen = |env: &[(String, String)]| {
        let mut text = String::from("Configure the client with (the mock runs until the observation ends):\n");
        for (k, v) in env {
            let shown = if k.ends_with("CLIENT_SECRET") { "(the mock's test secret of this client)" } else { v };
            text.push_str(&format!("  {k}={shown}\n"));
        }
        out.note(&text);
    };
    // Ctrl-C stops the observation: every mock and client is dropped, and so ended.
    let report = tokio::select! {
        report = certify::certify(&suite, &attach, &out.redactor, &on_listen) => report?,
        _ = tokio::signal::ctrl_c() => {
            out.note("interrupted (Ctrl-C): the clients were ended; no verdict");
            return Ok(Outcome::Incomplete);
        }
    };
    let detail = if args.verbose { Detail::Verbose } else { Detail::Normal };
    out.print(&report::terminal::render(&report, out.color, detail));
    write_reports(&args, &report, out)?;
    if let Some(dir) = &args.evidence {
        let bundle = evidence_bundle(&report, &suite, &args, &attach, out);
        let files = evidence::write(dir, &bundle, evidence_key.as_ref(), args.evidence_force)?;
        out.note(&format!("note: evidence written to {} ({} files)", dir.display(), files.len()));
    }
    Ok(outcome(&report))
}

fn write_reports(args: &CertifyArgs, report: &RunReport, out: &Output) -> Result<(), Failure> {
    let paths = ReportPaths {
        junit: args.report_junit.as_deref(),
        json: args.report_json.as_deref(),
        html: args.report_html.as_deref(),
        markdown: args.report_md.as_deref(),
    };
    write_report_files(&paths, report, out)
}

/// What a third party needs: the report, the suite, which client (command, version) was certified.
fn evidence_bundle(
    report: &RunReport,
    suite: &ClientSuite,
    args: &CertifyArgs,
    attach: &Attach,
    out: &Output,
) -> Bundle {
    let redactor = &out.redactor;
    let client = match attach {
        Attach::Command(command) => {
            serde_json::json!({ "command": redactor.scrub(&command.join(" ")), "version": args.client_version })
        }
        Attach::Listen { port, duration } => serde_json::json!({
            "listened_on_port": port,
            "observed_secs": duration.as_secs(),
            "version": args.client_version,
        }),
    };
    let meta = serde_json::json!({
        "harness": "oauth-harness",
        "harness_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("OAUTH_HARNESS_GIT_COMMIT"),
        "certified": "client",
        "client": client,
        "system": suite.system.name(),
        "started_at": humantime::format_rfc3339_seconds(report.started_at).to_string(),
        "finished_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "command": redactor.scrub(&std::env::args().collect::<Vec<_>>().join(" ")),
        "summary": report.summary,
    });
    let files = vec![
        ("report.json".to_string(), redactor.scrub(&report::json::render(report)).into_bytes()),
        (
            evidence::bundle_path("scenarios", &suite.source.path),
            redactor.scrub_as(&suite.source.text, Shown::YamlScalar).into_bytes(),
        ),
        ("meta.json".to_string(), serde_json::to_vec_pretty(&meta).unwrap_or_default()),
    ];
    Bundle { files }
}
