//! `certify`: the mocks judge the client that calls them. Each case of a client suite starts the
//! suite's mock as the case says, wrapped by a [`recorder::Recorder`]; the client command runs
//! with its configuration in the environment (or a client elsewhere is pointed at the mock);
//! when the observation ends, the client checks judge the recording. Cases run side by side.
//! The result is a [`RunReport`], so every report format and the evidence bundle work as for
//! `run`.

pub mod child;
pub mod recorder;
pub mod setup;

use std::time::{Duration, Instant, SystemTime};

use crate::checks::client::{self as client_checks, ClientCheckDef};
use crate::checks::{Severity, Verdict};
use crate::model::client_suite::{ClientCase, ClientSuite, Observe};
use crate::protocol::observation::{ClientEnd, Observation, Registration, Timeline};
use crate::results::{CaseResult, CheckOutcome, RunReport, StepResult, SuiteResult, Summary, VerdictKind};
use crate::run::outcome::{outcome_from, outcome_of};
use crate::support::diagnostics::{LocatedError, did_you_mean};
use crate::support::http_body::{Capped, read_capped};
use crate::support::secret::Redactor;

pub use child::SpawnError;
pub use setup::SetupError;

/// Told the client's configuration in `--listen` mode, to print it.
pub type OnListen<'a> = dyn Fn(&[(String, String)]) + Sync + 'a;

/// How the client is attached.
#[derive(Debug, Clone)]
pub enum Attach {
    /// Run this command for each case.
    Command(Vec<String>),
    /// A client elsewhere: the first case's mock on `port`, observed this long.
    Listen { port: Option<u16>, duration: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// Every check id and client name a suite names that does not exist, located.
pub fn preflight(suite: &ClientSuite) -> Vec<LocatedError> {
    let known: Vec<&str> = client_checks::CHECKS.iter().map(|c| c.id).collect();
    let mut errors = Vec::new();
    let named = suite.cases.iter().flat_map(|c| &c.checks).chain(suite.required.iter().map(|(n, _)| n));
    for check in named.filter(|n| client_checks::find(&n.name).is_none()) {
        let mut e = suite.source.error_at(check.span, format!("unknown client check `{}`", check.name));
        e = match did_you_mean(&check.name, known.iter().copied()) {
            Some(hint) => e.with_help(format!("did you mean `{hint}`? (`oauth-harness checks` lists them)")),
            None => e.with_help("`oauth-harness checks` lists the client checks"),
        };
        errors.push(e);
    }
    let clients = setup::client_names(suite.system);
    let named = std::iter::once(&suite.client).chain(suite.cases.iter().filter_map(|c| c.client.as_ref()));
    for client in named.filter(|n| !clients.contains(&n.name)) {
        let e = suite.source.error_at(
            client.span,
            format!("the mock of this {} suite has no client `{}`", suite.system.name(), client.name),
        );
        errors.push(match did_you_mean(&client.name, clients.iter().map(String::as_str)) {
            Some(hint) => e.with_help(format!("did you mean `{hint}`? it registers {}", clients.join(", "))),
            None => e.with_help(format!("it registers {}", clients.join(", "))),
        });
    }
    for (required, _) in &suite.required {
        if client_checks::find(&required.name).is_some_and(|c| c.severity == Severity::Must) {
            errors.push(suite.source.error_at(required.span, format!("`{}` is already a MUST", required.name)));
        }
    }
    errors
}

/// Certifies the client against every case of `suite`, side by side.
pub async fn certify(
    suite: &ClientSuite,
    attach: &Attach,
    redactor: &Redactor,
    on_listen: &OnListen<'_>,
) -> Result<RunReport, CertifyError> {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let cases: Vec<&ClientCase> = match attach {
        Attach::Command(_) => suite.cases.iter().collect(),
        Attach::Listen { .. } => suite.cases.iter().take(1).collect(),
    };
    let runs = cases.iter().map(|case| run_case(suite, case, attach, redactor, on_listen));
    let results = futures_util::future::join_all(runs).await.into_iter().collect::<Result<Vec<_>, _>>()?;
    let suites = vec![SuiteResult {
        name: suite.name.clone(),
        title: suite.title.clone(),
        file: suite.source.path.display().to_string(),
        spec: suite.spec.clone(),
        cases: results,
    }];
    Ok(RunReport {
        schema: crate::results::REPORT_SCHEMA,
        harness_version: env!("CARGO_PKG_VERSION"),
        target: format!("client under certification ({} mock)", suite.system.name()),
        target_origin: format!("embedded {} mock", suite.system.name()),
        started_at,
        duration: started.elapsed(),
        strict: false,
        interrupted: false,
        summary: Summary::of(&suites),
        suites,
        known_deviations: None,
    })
}

async fn run_case(
    suite: &ClientSuite,
    case: &ClientCase,
    attach: &Attach,
    redactor: &Redactor,
    on_listen: &OnListen<'_>,
) -> Result<CaseResult, CertifyError> {
    let started = Instant::now();
    let port = match attach {
        Attach::Listen { port, .. } => *port,
        Attach::Command(_) => None,
    };
    let prepared = setup::prepare(suite, case, redactor, port).await?;
    // The client's JWKS is read while it runs: early enough that a short-lived job still serves
    // it, and again while nothing listens yet — a client on a loaded machine may take seconds
    // to start serving — until half the observation (at most 5 s) has passed.
    let observe = match attach {
        Attach::Command(_) => case.observe,
        Attach::Listen { duration, .. } => Observe::For(*duration),
    };
    let jwks = async {
        let url = prepared.jwks_url.as_deref()?;
        let deadline = Instant::now() + (observe.limit() / 2).min(Duration::from_secs(5));
        loop {
            tokio::time::sleep(JWKS_RETRY).await;
            match fetch_jwks(url).await {
                Err(JwksError::NotListening(_)) if Instant::now() + JWKS_RETRY < deadline => {}
                result => return Some(result.map_err(|e| e.to_string())),
            }
        }
    };
    let ((end, tail), jwks) = match attach {
        Attach::Command(command) => {
            let client = child::Client::spawn(command, &prepared.env)?;
            tokio::join!(client.watch(observe), jwks)
        }
        Attach::Listen { duration, .. } => {
            on_listen(&prepared.env);
            tokio::join!(
                async {
                    tokio::time::sleep(*duration).await;
                    (ClientEnd::External, Vec::new())
                },
                jwks
            )
        }
    };
    let observation = prepared.recorder.observation(end.clone(), jwks);
    drop(prepared.mock);
    let mut checks = judge(suite, case, &observation, &prepared.registration, redactor);
    if observation.requests.is_empty() {
        checks.push(silent_client(&end, observe));
    }
    let note = describe(&observation, &end, observe, &tail, redactor);
    let steps = vec![StepResult {
        action: "observe",
        setup: Vec::new(),
        exchange: None,
        checks,
        error: None,
        note: Some(note),
    }];
    Ok(CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        outcome: outcome_of(&steps),
        duration: started.elapsed(),
        reason: None,
        steps,
        timeline: Some(Timeline::of(&observation)),
    })
}

/// The client checks the case names, judged on the observation.
fn judge(
    suite: &ClientSuite,
    case: &ClientCase,
    observation: &Observation,
    registration: &Registration,
    redactor: &Redactor,
) -> Vec<CheckOutcome> {
    let defs: Vec<&ClientCheckDef> = case.checks.iter().filter_map(|n| client_checks::find(&n.name)).collect();
    let mut outcomes: Vec<CheckOutcome> = defs
        .iter()
        .map(|check| {
            let required = suite.required.iter().find(|(n, _)| n.name == check.id).map(|(_, why)| why.clone());
            let promoted = required.is_some();
            let verdict = (check.evaluate)(observation, registration);
            let mut outcome =
                outcome_from(check.id, check.severity, required, check.rule, check.url, check.summary, verdict);
            if outcome.verdict == VerdictKind::Warn && promoted {
                outcome.verdict = VerdictKind::Fail;
            }
            outcome.expected = outcome.expected.map(|s| redactor.scrub(&s));
            outcome.seen = outcome.seen.map(|s| redactor.scrub(&s));
            outcome
        })
        .collect();
    if !outcomes.is_empty() && outcomes.iter().all(|o| o.verdict == VerdictKind::NotApplicable) {
        let reasons: Vec<String> =
            outcomes.iter().map(|o| format!("{}: {}", o.id, o.note.as_deref().unwrap_or("not applicable"))).collect();
        outcomes.push(outcome_from(
            "harness.nothing-checked",
            Severity::Must,
            None,
            "harness",
            "",
            "at least one expected check applies to what the client did",
            Verdict::fail(
                "requests at least one expected check can judge",
                format!("nothing was checked — {}", reasons.join("; ")),
            ),
        ));
    }
    outcomes
}

/// A client that never called the mock fails the case, saying how it ended.
fn silent_client(end: &ClientEnd, observe: Observe) -> CheckOutcome {
    let seen = match end {
        ClientEnd::Exited { code: Some(code) } => format!("it exited with status {code} without a request"),
        ClientEnd::Exited { code: None } => "it was killed by a signal before any request".into(),
        ClientEnd::Ended => format!("no request in {:.0} s; it was ended", observe.limit().as_secs_f64()),
        ClientEnd::External => format!("no request reached the mock in {:.0} s", observe.limit().as_secs_f64()),
    };
    outcome_from(
        "harness.client-called",
        Severity::Must,
        None,
        "harness",
        "",
        "the client makes requests to the mock it is configured with",
        Verdict::fail("requests from the client", seen),
    )
}

/// What the step's note says: how long, how many requests, how the client ended, its last words.
fn describe(o: &Observation, end: &ClientEnd, observe: Observe, tail: &[String], redactor: &Redactor) -> String {
    let mut counts: Vec<String> = Vec::new();
    for endpoint in ["token", "poll", "backchannel", "resource", "other"] {
        let n = o.requests.iter().filter(|r| r.endpoint.label() == endpoint).count();
        if n > 0 {
            counts.push(format!("{n} {endpoint}"));
        }
    }
    let how = match (end, observe) {
        (ClientEnd::Exited { code }, _) => {
            format!("the client exited ({})", code.map(|c| c.to_string()).unwrap_or("signal".into()))
        }
        (ClientEnd::Ended, Observe::UntilExit(_)) => "the client had not exited; it was ended".into(),
        (ClientEnd::Ended, Observe::For(_)) => "the client was ended".into(),
        (ClientEnd::External, _) => "the observation ended".into(),
    };
    let mut note = format!(
        "observed {:.1} s: {}{}; {how}",
        o.duration.as_secs_f64(),
        crate::support::text::count(o.requests.len(), "request"),
        if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
    );
    if o.unrecorded > 0 {
        note.push_str(&format!("; {} more answered but not recorded", o.unrecorded));
    }
    let failed_exit = matches!(end, ClientEnd::Exited { code: Some(c) } if *c != 0);
    // Tokens issued after the record filled were never registered with the redactor: the
    // client's own words could quote one, so they are withheld then.
    if (failed_exit || o.requests.is_empty()) && !tail.is_empty() && o.unrecorded > 0 {
        note.push_str("; its last output is withheld (it could quote a token issued after the record filled)");
    } else if (failed_exit || o.requests.is_empty()) && !tail.is_empty() {
        note.push_str("; its last output: ");
        note.push_str(&redactor.scrub(&tail.iter().rev().take(3).rev().cloned().collect::<Vec<_>>().join(" ⏎ ")));
    }
    note
}

/// How long between two reads of a JWKS URL nothing listens on yet.
const JWKS_RETRY: Duration = Duration::from_millis(250);

/// Why the client's JWKS could not be read.
#[derive(Debug, thiserror::Error)]
enum JwksError {
    /// Nothing listens at the URL (yet: the client may still be starting).
    #[error("could not be fetched: {0}")]
    NotListening(String),
    #[error("{0}")]
    Unreadable(String),
}

/// Reads the client's published JWKS (bounded: 64 KiB, 2 s).
async fn fetch_jwks(url: &str) -> Result<String, JwksError> {
    const MAX: usize = 64 * 1024;
    let unreadable = |e: String| JwksError::Unreadable(e);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|e| unreadable(e.to_string()))?;
    let mut response = client.get(url).send().await.map_err(|e| {
        if e.is_connect() {
            JwksError::NotListening(e.to_string())
        } else {
            unreadable(format!("could not be fetched: {e}"))
        }
    })?;
    if !response.status().is_success() {
        return Err(unreadable(format!("answered {}", response.status().as_u16())));
    }
    let Capped { body, truncated } = read_capped(&mut response, MAX).await.map_err(|e| unreadable(e.to_string()))?;
    if truncated {
        return Err(unreadable(format!("larger than {MAX} bytes")));
    }
    String::from_utf8(body).map_err(|_| unreadable("not UTF-8".into()))
}
