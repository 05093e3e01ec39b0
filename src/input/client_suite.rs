//! Client suites (top-level `client_suite:`), read for `certify`: validated whole, every problem
//! located at file:line:column (exit 2). Check ids are resolved against the client catalogue by
//! `certify`, like server suites' checks by the runner's preflight.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::Named;
use crate::model::client_suite::*;
use crate::support::diagnostics::{SourceFile, Span};

/// A case watches its client for at most this long.
pub const MAX_OBSERVATION: Duration = Duration::from_secs(600);
/// Lifetimes, intervals and delays a case may set.
const MAX_SETTING: Duration = Duration::from_secs(3600);

const SHAPES: Shapes = &[
    ("cases", "a list of cases, each with an `id`"),
    ("inject", "a list of answers, e.g. `[{ at: poll, nth: 2, answer: slow_down }]`"),
    ("checks", "a list of client check ids, e.g. `[client.token.reused]`"),
    ("require", "a list of `{ check: …, because: … }`"),
    ("observe", "`{ for: 5s }` or `{ until: exit, within: 15s }`"),
    ("nth", "a whole number from 1 to 1000"),
    ("times", "a whole number from 1 to 1000"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSuiteFile {
    /// The suite's name; its presence marks a client suite.
    client_suite: String,
    title: Option<String>,
    spec: Option<String>,
    system: Spanned<String>,
    /// The mock's registered client the vendor's client is configured as.
    client: Spanned<String>,
    #[serde(default)]
    require: Vec<Requirement>,
    cases: Vec<CaseDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    check: Spanned<String>,
    because: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDef {
    id: Spanned<String>,
    title: String,
    client: Option<Spanned<String>>,
    #[serde(default)]
    mock: MockDef,
    observe: ObserveDef,
    expect: ExpectDef,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MockDef {
    token_lifetime: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    expires_in: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    answer_after: Option<Spanned<String>>,
    poll_latency: Option<Spanned<String>>,
    #[serde(default)]
    inject: Vec<InjectDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectDef {
    at: Spanned<String>,
    nth: Spanned<i64>,
    times: Option<Spanned<i64>>,
    answer: Spanned<String>,
    retry_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObserveDef {
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    within: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectDef {
    checks: Spanned<Vec<Spanned<String>>>,
}

const ENDPOINTS: &[&str] = &["token", "poll", "backchannel", "resource"];
const USERS: &[&str] = &["approves", "denies", "never-answers"];

/// Reads and validates a client suite file.
pub fn read_client_suite(path: &Path) -> Result<ClientSuite, InputErrors> {
    parse_client_suite(&read_source(path)?)
}

pub fn parse_client_suite(source: &SourceFile) -> Result<ClientSuite, InputErrors> {
    let file: ClientSuiteFile = yaml::parse(source, SHAPES).map_err(InputError::from)?;
    let mut v = Validator::new(source);
    let suite = suite(&mut v, file);
    v.finish(suite)
}

fn suite(v: &mut Validator<'_>, file: ClientSuiteFile) -> ClientSuite {
    let system = v
        .one_of(&file.system, "system", ClientSystem::NAMES)
        .and_then(ClientSystem::from_name)
        .unwrap_or(ClientSystem::IdentityServer);
    let required =
        file.require.iter().filter_map(|r| v.named(&Some(r.check.clone())).map(|n| (n, r.because.clone()))).collect();
    let mut ids = HashSet::new();
    let cases: Vec<ClientCase> = file
        .cases
        .into_iter()
        .map(|def| {
            if !ids.insert(def.id.value.clone()) {
                v.error(at(&def.id), format!("case id `{}` is used twice in this suite", def.id.value));
            }
            case(v, def)
        })
        .collect();
    if cases.is_empty() {
        v.error(Span { line: 1, column: 1, offset: 0, len: 1 }, "the suite has no cases");
    }
    ClientSuite {
        name: file.client_suite,
        title: file.title,
        spec: file.spec,
        source: v.source.clone(),
        system,
        client: Named { name: file.client.value.clone(), span: at(&file.client) },
        required,
        cases,
    }
}

fn case(v: &mut Validator<'_>, def: CaseDef) -> ClientCase {
    let setting = |v: &mut Validator<'_>, value: &Option<Spanned<String>>, key: &str| {
        value.as_ref().and_then(|d| v.duration(d, key, false, MAX_SETTING))
    };
    let mock = MockBehaviour {
        token_lifetime: setting(v, &def.mock.token_lifetime, "token_lifetime"),
        interval: setting(v, &def.mock.interval, "interval"),
        request_expires_in: setting(v, &def.mock.expires_in, "expires_in"),
        answer_after: setting(v, &def.mock.answer_after, "answer_after"),
        poll_latency: setting(v, &def.mock.poll_latency, "poll_latency"),
        user: def.mock.user.as_ref().and_then(|u| v.one_of(u, "user", USERS)).map(|u| match u {
            "approves" => CibaUser::Approves,
            "denies" => CibaUser::Denies,
            _ => CibaUser::NeverAnswers,
        }),
        inject: def.mock.inject.iter().filter_map(|i| injection(v, i)).collect(),
    };
    for (value, key) in [
        (&def.mock.token_lifetime, "token_lifetime"),
        (&def.mock.interval, "interval"),
        (&def.mock.expires_in, "expires_in"),
    ] {
        if let Some(d) = value.as_ref().and_then(|d| humantime::parse_duration(d.value.trim()).ok())
            && d.subsec_millis() != 0
        {
            v.error_help(
                at(value.as_ref().unwrap_or_else(|| unreachable!())),
                format!("`{key}` is sent in whole seconds"),
                "write e.g. `2s`",
            );
        }
    }
    let observe = match (&def.observe.for_, &def.observe.until, &def.observe.within) {
        (Some(d), None, None) => v.duration(d, "for", false, MAX_OBSERVATION).map(Observe::For),
        (None, Some(until), Some(within)) => {
            if until.value != "exit" {
                v.error_help(at(until), format!("`until: {}` is not a way to end", until.value), "write `until: exit`");
            }
            v.duration(within, "within", false, MAX_OBSERVATION).map(Observe::UntilExit)
        }
        (None, Some(until), None) => {
            v.error_help(
                at(until),
                "`until: exit` needs a bound",
                "add `within: 15s`: a client that never exits is ended then",
            );
            None
        }
        _ => {
            v.error_help(
                at(&def.id),
                format!("case `{}` must say how long to observe", def.id.value),
                "write `observe: { for: 5s }` for a service, or `observe: { until: exit, within: 15s }` for a job",
            );
            None
        }
    }
    .unwrap_or(Observe::For(Duration::from_secs(1)));
    if def.expect.checks.value.is_empty() {
        v.error_help(
            at(&def.expect.checks),
            format!("case `{}` expects no check", def.id.value),
            "a client case passes only on checks it names: list at least one",
        );
    }
    ClientCase {
        id: def.id.value.clone(),
        title: def.title,
        client: v.named(&def.client),
        mock,
        observe,
        checks: def.expect.checks.value.iter().map(|c| Named { name: c.value.clone(), span: at(c) }).collect(),
    }
}

fn injection(v: &mut Validator<'_>, def: &InjectDef) -> Option<Injection> {
    let endpoint = v.one_of(&def.at, "at", ENDPOINTS).map(|e| match e {
        "token" => Endpoint::Token,
        "poll" => Endpoint::Poll,
        "backchannel" => Endpoint::Backchannel,
        _ => Endpoint::Resource,
    });
    let answer = v.one_of(&def.answer, "answer", Injected::NAMES).and_then(Injected::from_name);
    let nth = v.number(&def.nth, "nth", 1, 1000);
    let times = def.times.as_ref().map(|t| v.number(t, "times", 1, 1000)).unwrap_or(Some(1));
    let retry_after = def.retry_after.as_ref().and_then(|r| v.duration(r, "retry_after", false, MAX_SETTING));
    let (endpoint, answer, nth, times) = (endpoint?, answer?, nth?, times?);
    if !answer.fits(endpoint) {
        v.error(
            at(&def.answer),
            format!("`{}` is not an answer of the {} endpoint", def.answer.value, endpoint.label()),
        );
    }
    let wants_retry_after = matches!(answer, Injected::Unavailable | Injected::TooManyRequests);
    if wants_retry_after != def.retry_after.is_some() {
        let message = if wants_retry_after {
            format!("`{}` needs `retry_after` (e.g. `2s`)", def.answer.value)
        } else {
            format!("`retry_after` goes with `unavailable` or `too_many_requests`, not `{}`", def.answer.value)
        };
        v.error(at(&def.answer), message);
    }
    Some(Injection {
        at: endpoint,
        nth: nth as u32,
        times: times as u32,
        answer,
        retry_after: retry_after.map(|d| d.as_secs().max(1)),
    })
}
