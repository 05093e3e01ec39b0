//! Executes suites against a target and returns plain results. Cases are independent and run
//! concurrently; the steps of one case run in order and share what earlier steps obtained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use miette::Diagnostic;
use url::Url;
use wildmatch::WildMatch;

use crate::auth::assertion;
use crate::checks::{CheckDef, Severity, Verdict};
use crate::diagnostics::{LocatedError, did_you_mean};
use crate::exchange::{Exchange, RequestContext, redact_body};
use crate::flows;
use crate::http::{HttpClient, Request, TransportError};
use crate::jwks_server::JwksServer;
use crate::keys::{KeyAlg, KeyPair, KidStyle};
use crate::results::{
    CaseOutcome, CaseResult, CheckOutcome, ExchangeView, ResponseView, RunReport, StepResult, SuiteResult, Summary,
    VerdictKind,
};
use crate::scenario::{
    Action, AuthChoice, BearerChoice, Case, Expectation, Named, ResourceSpec, Step, Suite, TokenSpec,
};
use crate::secret::{Redactor, Secret};
use crate::target::{Client, Target};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Glob over case ids (`suite/id` also matches).
    pub filter: Option<String>,
    /// SHOULD failures fail the run.
    pub strict: bool,
    /// Cases in flight at once.
    pub jobs: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { filter: None, strict: false, jobs: 8 }
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RunError {
    #[error("target unreachable: {0}")]
    #[diagnostic(help("check the target's `issuer` and that the server is running"))]
    Unreachable(TransportError),
    #[error("cannot find the token endpoint: {0}")]
    #[diagnostic(help("set `token_endpoint` in the target file, or fix the server's discovery document"))]
    NoTokenEndpoint(String),
    #[error("--filter `{0}` selects no case")]
    EmptyFilter(String),
    #[error("{} problem(s) between the scenarios and the target", .0.len())]
    Preflight(#[related] Vec<LocatedError>),
}

/// Endpoints found once per run.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub token: Url,
    /// The discovery document, when the server publishes one.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

pub struct Runner {
    http: HttpClient,
    target: Target,
    endpoints: Endpoints,
    redactor: Redactor,
    options: RunOptions,
    jwks: Arc<JwksServer>,
}

/// Keys no server knows, for "signed by an unregistered key": made once per process and
/// algorithm (an RSA key takes a noticeable moment to generate, and staying unregistered is all
/// they need to do).
static UNREGISTERED_KEYS: OnceLock<Mutex<HashMap<KeyAlg, Arc<KeyPair>>>> = OnceLock::new();

/// What the steps of one case share.
#[derive(Default)]
struct CaseState {
    last_token: Option<Secret>,
    last_assertion: Option<Secret>,
}

/// A token request ready to send, and what to observe around it.
struct PreparedToken {
    request: Request,
    context: RequestContext,
    /// The harness-served `jku` path whose fetches the server must not make.
    jku_path: Option<String>,
}

impl Runner {
    /// Connects to the target: reads discovery and finds the token endpoint.
    pub async fn prepare(
        target: Target,
        jwks: Arc<JwksServer>,
        redactor: Redactor,
        options: RunOptions,
    ) -> Result<Self, RunError> {
        target.register_secrets(&redactor);
        let http = HttpClient::new(target.timeout).map_err(RunError::Unreachable)?;
        let (request, _) = flows::discovery::build(&target.issuer, "/.well-known/openid-configuration");
        let metadata = match http.send(&request).await {
            Ok(r) if r.status == 200 => r.json_object().cloned(),
            Ok(_) => None,
            Err(e) if target.token_endpoint.is_none() => return Err(RunError::Unreachable(e)),
            Err(_) => None,
        };
        let token = match (&target.token_endpoint, &metadata) {
            (Some(t), _) => t.clone(),
            (None, Some(m)) => m
                .get("token_endpoint")
                .and_then(|v| v.as_str())
                .and_then(|s| Url::parse(s).ok())
                .ok_or_else(|| RunError::NoTokenEndpoint(format!("{} has no usable token_endpoint", request.url)))?,
            (None, None) => {
                return Err(RunError::NoTokenEndpoint(format!("no discovery document at {}", request.url)));
            }
        };
        Ok(Self { http, target, endpoints: Endpoints { token, metadata }, redactor, options, jwks })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Every client a selected case names must exist in the target; checked before any traffic.
    pub fn preflight(&self, suites: &[Suite]) -> Result<(), RunError> {
        let selected = self.select(suites);
        preflight(selected.iter().map(|(_, s, c)| (*s, *c)), &self.target).map_err(RunError::Preflight)
    }

    /// The cases `--filter` selects, with the index of their suite.
    fn select<'a>(&self, suites: &'a [Suite]) -> Vec<(usize, &'a Suite, &'a Case)> {
        let filter = self.options.filter.as_deref().map(WildMatch::new);
        suites
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.cases.iter().map(move |c| (i, s, c)))
            .filter(|(_, s, c)| {
                filter.as_ref().is_none_or(|f| f.matches(&c.id) || f.matches(&format!("{}/{}", s.name, c.id)))
            })
            .collect()
    }

    /// Runs every selected case. Fails only when the filter selects nothing.
    pub async fn run(&self, suites: &[Suite]) -> Result<RunReport, RunError> {
        let started_at = SystemTime::now();
        let started = Instant::now();
        let selected = self.select(suites);
        if selected.is_empty() {
            return Err(RunError::EmptyFilter(self.options.filter.clone().unwrap_or_default()));
        }
        let results: Vec<(usize, CaseResult)> = futures_util::stream::iter(selected)
            .map(|(i, suite, case)| async move { (i, self.run_case(suite, case).await) })
            .buffered(self.options.jobs.max(1))
            .collect()
            .await;
        let mut suite_results: Vec<SuiteResult> = suites
            .iter()
            .map(|s| SuiteResult {
                name: s.name.clone(),
                title: s.title.clone(),
                file: s.display_path(),
                spec: s.spec.clone(),
                cases: Vec::new(),
            })
            .collect();
        for (i, case) in results {
            suite_results[i].cases.push(case);
        }
        suite_results.retain(|s| !s.cases.is_empty());
        let summary = Summary::of(&suite_results);
        Ok(RunReport {
            schema: crate::results::REPORT_SCHEMA,
            harness_version: env!("CARGO_PKG_VERSION"),
            target: self.target.issuer.to_string(),
            target_origin: self.target.origin.clone(),
            started_at,
            duration: started.elapsed(),
            strict: self.options.strict,
            suites: suite_results,
            summary,
        })
    }

    async fn run_case(&self, suite: &Suite, case: &Case) -> CaseResult {
        let started = Instant::now();
        let mut result = CaseResult {
            id: case.id.clone(),
            title: case.title.clone(),
            outcome: CaseOutcome::Passed,
            duration: Default::default(),
            reason: None,
            steps: Vec::new(),
        };
        if let Some(reason) = self.skip_reason(case) {
            result.outcome = CaseOutcome::Skipped;
            result.reason = Some(reason);
            return result;
        }
        let mut state = CaseState::default();
        for step in &case.steps {
            let step_result = self.run_step(suite, case, step, &mut state).await;
            let stop = step_result.error.is_some();
            result.steps.push(step_result);
            if stop {
                break;
            }
        }
        result.duration = started.elapsed();
        result.outcome = outcome_of(&result.steps);
        if let Some(error) = result.steps.iter().find_map(|s| s.error.clone()) {
            result.reason = Some(error);
        }
        result
    }

    fn skip_reason(&self, case: &Case) -> Option<String> {
        if case.steps.iter().any(|s| matches!(s.action, Action::Resource(_))) && self.target.resource.is_none() {
            return Some("the target has no `resource` to call".into());
        }
        for (field, value) in &case.advertised {
            let Some(metadata) = &self.endpoints.metadata else {
                return Some(format!(
                    "needs `{field}` to advertise `{value}`, and the server publishes no discovery document"
                ));
            };
            let advertised = match metadata.get(field) {
                Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
                Some(serde_json::Value::String(s)) => s == value,
                _ => false,
            };
            if !advertised {
                return Some(format!("the server does not advertise `{value}` in `{field}`"));
            }
        }
        None
    }

    fn client_for(&self, suite: &Suite, case: &Case, step_client: Option<&Named>) -> &Client {
        let name = step_client.or(case.client.as_ref()).or(suite.client.as_ref());
        // `preflight` guarantees the name exists; fall back to any client rather than panic.
        name.and_then(|n| self.target.clients.get(&n.name))
            .or_else(|| self.target.clients.values().next())
            .unwrap_or_else(|| unreachable!("preflight admits no case without a client"))
    }

    async fn run_step(&self, suite: &Suite, case: &Case, step: &Step, state: &mut CaseState) -> StepResult {
        let mut result = StepResult {
            action: step.action.kind(),
            setup: Vec::new(),
            exchange: None,
            checks: Vec::new(),
            error: None,
        };
        let prepared = match &step.action {
            Action::Token(spec) => {
                let client = self.client_for(suite, case, spec.client.as_ref());
                self.prepare_token(client, spec, state)
            }
            Action::Discovery(spec) => {
                let (mut request, mut context) =
                    flows::discovery::build(&self.target.issuer, spec.document.well_known_path());
                if let Some(accept) = &spec.accept {
                    request.headers.retain(|(k, _)| k != "Accept");
                    request.headers.push(("Accept".into(), crate::http::Value::Plain(accept.clone())));
                }
                context.expected_issuer = Some(self.target.issuer.to_string());
                Ok(PreparedToken { request, context, jku_path: None })
            }
            Action::Resource(spec) => self
                .prepare_resource_call(suite, case, spec, state, &mut result)
                .await
                .map(|(request, context)| PreparedToken { request, context, jku_path: None }),
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(outcome) => {
                if let StepFailure::Transport(e) = &outcome {
                    result.error = Some(self.redactor.scrub(&e.to_string()));
                } else if let StepFailure::Precondition(o) = outcome {
                    result.checks.push(*o);
                }
                return result;
            }
        };
        match self.exchange(prepared.request, prepared.context).await {
            Err(e) => result.error = Some(self.redactor.scrub(&e.to_string())),
            Ok(mut exchange) => {
                if let Action::Token(_) = step.action {
                    if let Some(token) = self.remember_tokens(&exchange) {
                        state.last_token = Some(token);
                    }
                }
                if let Some(path) = &prepared.jku_path {
                    exchange.context.jku_fetches = Some(self.jwks.fetches(path));
                }
                result.checks = self.evaluate(suite, &step.expect, &exchange);
                result.exchange = Some(self.view(&exchange));
            }
        }
        result
    }

    /// Builds a token request; for private_key_jwt, signs (or replays) the client assertion.
    fn prepare_token(
        &self,
        client: &Client,
        spec: &TokenSpec,
        state: &mut CaseState,
    ) -> Result<PreparedToken, StepFailure> {
        let uses_assertion = spec.auth.unwrap_or(AuthChoice::from(client.auth)) == AuthChoice::PrivateKeyJwt;
        let mut jku_path = None;
        let assertion = if !uses_assertion {
            None
        } else if spec.assertion.replay {
            Some(state.last_assertion.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition(
                    "no earlier step of this case sent an assertion to replay".into(),
                ))
            })?)
        } else {
            let key = client.key.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition("the client has no private key for private_key_jwt".into()))
            })?;
            let signer = if spec.assertion.unregistered_key { self.unregistered_key(key.alg) } else { key };
            let mut mutation = spec.assertion.mutation.clone();
            if spec.assertion.serve_jku {
                // A fresh path per step, so concurrent cases cannot blur the fetch count.
                let path = format!("/untrusted/{}/jwks.json", assertion::new_jti());
                let url = self.jwks.publish(&path, signer.jwks());
                mutation.header.insert("jku".into(), serde_json::Value::String(url.to_string()));
                jku_path = Some(path);
            }
            let client_id = spec.client_id.as_deref().unwrap_or(&client.client_id);
            let claims = assertion::Claims {
                client_id,
                audience: self.endpoints.token.as_str(),
                now: crate::clock::unix_now(),
                jti: assertion::new_jti(),
            };
            let jws = Secret::new(assertion::build(&signer, &claims, &mutation));
            self.redactor.register_secret(&jws);
            Some(jws)
        };
        if let Some(a) = &assertion {
            state.last_assertion = Some(a.clone());
        }
        let (request, context) = flows::token::build(&self.endpoints.token, client, spec, assertion.as_ref());
        Ok(PreparedToken { request, context, jku_path })
    }

    fn unregistered_key(&self, alg: KeyAlg) -> Arc<KeyPair> {
        let mut keys = UNREGISTERED_KEYS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        keys.entry(alg)
            .or_insert_with(|| {
                Arc::new(
                    KeyPair::generate(alg, 2048, KidStyle::Rfc7638)
                        .unwrap_or_else(|e| unreachable!("generating a fresh key does not fail: {e}")),
                )
            })
            .clone()
    }

    async fn prepare_resource_call(
        &self,
        suite: &Suite,
        case: &Case,
        spec: &ResourceSpec,
        state: &mut CaseState,
        result: &mut StepResult,
    ) -> Result<(Request, RequestContext), StepFailure> {
        let resource =
            self.target.resource.as_ref().ok_or_else(|| {
                StepFailure::Precondition(precondition("the target has no `resource` to call".into()))
            })?;
        let mut url = resource.url.clone();
        if let Some(path) = &spec.path {
            url.set_path(path);
        }
        let default = if state.last_token.is_some() { BearerChoice::Last } else { BearerChoice::Fresh };
        let bearer = match spec.bearer.unwrap_or(default) {
            BearerChoice::None => None,
            BearerChoice::Garbage => Some(Secret::new(flows::resource::GARBAGE_TOKEN)),
            BearerChoice::Last => Some(state.last_token.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition("no earlier step of this case obtained a token".into()))
            })?),
            choice @ (BearerChoice::Fresh | BearerChoice::InsufficientScope) => {
                let scope = match choice {
                    BearerChoice::InsufficientScope => Some(resource.insufficient_scope.clone().ok_or_else(|| {
                        StepFailure::Precondition(precondition(
                            "the target's resource has no `insufficient_scope`".into(),
                        ))
                    })?),
                    _ => None,
                };
                let client = self.client_for(suite, case, None);
                let spec = TokenSpec { scope, ..TokenSpec::default() };
                let prepared = self.prepare_token(client, &spec, state)?;
                let exchange =
                    self.exchange(prepared.request, prepared.context).await.map_err(StepFailure::Transport)?;
                result.setup.push(self.view(&exchange));
                let token = self.remember_tokens(&exchange).ok_or_else(|| {
                    StepFailure::Precondition(precondition(format!(
                        "could not obtain a token for the resource call: {}",
                        self.redactor.scrub(&exchange.response.summary())
                    )))
                })?;
                state.last_token = Some(token.clone());
                Some(token)
            }
        };
        Ok(flows::resource::build(&url, bearer.as_ref()))
    }

    async fn exchange(&self, request: Request, context: RequestContext) -> Result<Exchange, TransportError> {
        let response = self.http.send(&request).await?;
        Ok(Exchange { request: request.record(), response, context })
    }

    /// Registers every credential in a success answer with the redactor; returns the access token.
    fn remember_tokens(&self, exchange: &Exchange) -> Option<Secret> {
        if !exchange.response.is_success() {
            return None;
        }
        for member in crate::exchange::SENSITIVE_MEMBERS {
            if let Some(value) = exchange.response.json_str(member) {
                self.redactor.register(value);
            }
        }
        exchange.response.json_str("access_token").filter(|t| !t.is_empty()).map(Secret::new)
    }

    fn evaluate(&self, suite: &Suite, expect: &Expectation, exchange: &Exchange) -> Vec<CheckOutcome> {
        let mut outcomes = Vec::new();
        let response = &exchange.response;
        if let Some(status) = &expect.status {
            let verdict =
                Verdict::from_bool(status.contains(response.status), format!("status {}", status.describe()), || {
                    response.summary()
                });
            outcomes.push(self.expectation(
                "expect.status",
                "the answer has the status the scenario expects",
                verdict,
                suite,
            ));
        }
        if let Some(code) = &expect.error {
            let seen = response.json_str("error");
            let verdict =
                Verdict::from_bool(seen == Some(code.as_str()), format!("error={code}"), || response.summary());
            outcomes.push(self.expectation(
                "expect.error",
                "the answer has the error code the scenario expects",
                verdict,
                suite,
            ));
        }
        for check in &expect.checks {
            outcomes.push(self.outcome(suite, check, (check.evaluate)(exchange)));
        }
        outcomes
    }

    fn expectation(&self, id: &str, summary: &str, verdict: Verdict, suite: &Suite) -> CheckOutcome {
        let mut outcome = outcome_from(id, Severity::Must, None, "scenario expectation", "", summary, verdict);
        outcome.rule = format!("scenario {}", suite.display_path());
        self.scrub_outcome(outcome)
    }

    fn outcome(&self, suite: &Suite, check: &CheckDef, verdict: Verdict) -> CheckOutcome {
        let required_because = suite.required.iter().find(|(id, _)| id == check.id).map(|(_, why)| why.clone());
        let promoted = self.options.strict || required_because.is_some();
        let mut outcome =
            outcome_from(check.id, check.severity, required_because, check.rule, check.url, check.summary, verdict);
        if outcome.verdict == VerdictKind::Warn && promoted {
            outcome.verdict = VerdictKind::Fail;
        }
        self.scrub_outcome(outcome)
    }

    fn scrub_outcome(&self, mut outcome: CheckOutcome) -> CheckOutcome {
        outcome.expected = outcome.expected.map(|s| self.redactor.scrub(&s));
        outcome.seen = outcome.seen.map(|s| self.redactor.scrub(&s));
        outcome
    }

    fn view(&self, exchange: &Exchange) -> ExchangeView {
        let r = &exchange.response;
        let mut request = exchange.request.clone();
        request.url = self.redactor.scrub(&request.url);
        request.body = request.body.map(|b| self.redactor.scrub(&b));
        ExchangeView {
            request,
            response: ResponseView {
                status: r.status,
                headers: r.headers.iter().map(|(k, v)| (k.clone(), self.redactor.scrub(v))).collect(),
                body: self.redactor.scrub(&redact_body(&r.body, r.json())),
                truncated: r.truncated,
                elapsed_ms: r.elapsed.as_millis() as u64,
            },
        }
    }
}

enum StepFailure {
    Transport(TransportError),
    Precondition(Box<CheckOutcome>),
}

/// A step that could not be set up (no token to present): a failure of the case, named as such.
fn precondition(reason: String) -> Box<CheckOutcome> {
    Box::new(outcome_from(
        "harness.precondition",
        Severity::Must,
        None,
        "harness",
        "",
        "what the step needs (a token, a configured resource) is available",
        Verdict::fail("the step's precondition", reason),
    ))
}

fn outcome_from(
    id: &str,
    severity: Severity,
    required_because: Option<String>,
    rule: &str,
    url: &str,
    summary: &str,
    verdict: Verdict,
) -> CheckOutcome {
    let (kind, expected, seen, note) = match verdict {
        Verdict::Pass => (VerdictKind::Pass, None, None, None),
        Verdict::NotApplicable(why) => (VerdictKind::NotApplicable, None, None, Some(why)),
        Verdict::Fail { expected, seen } => {
            let kind = if severity == Severity::Must { VerdictKind::Fail } else { VerdictKind::Warn };
            (kind, Some(expected), Some(seen), None)
        }
    };
    CheckOutcome {
        id: id.to_string(),
        severity,
        required_because,
        rule: rule.to_string(),
        url: url.to_string(),
        summary: summary.to_string(),
        verdict: kind,
        expected,
        seen,
        note,
    }
}

fn outcome_of(steps: &[StepResult]) -> CaseOutcome {
    let verdicts = || steps.iter().flat_map(|s| &s.checks).map(|c| c.verdict);
    if steps.iter().any(|s| s.error.is_some()) {
        CaseOutcome::Error
    } else if verdicts().any(|v| v == VerdictKind::Fail) {
        CaseOutcome::Failed
    } else if verdicts().any(|v| v == VerdictKind::Warn) {
        CaseOutcome::Warned
    } else {
        CaseOutcome::Passed
    }
}

/// Checks that every client the scenarios name exists in the target (no network).
pub fn preflight<'a>(
    cases: impl Iterator<Item = (&'a Suite, &'a Case)>,
    target: &Target,
) -> Result<(), Vec<LocatedError>> {
    let mut errors = Vec::new();
    for (suite, case) in cases {
        for step in &case.steps {
            let (needs_client, step_client) = match &step.action {
                Action::Token(t) => (true, t.client.as_ref()),
                Action::Resource(r) => {
                    (matches!(r.bearer, None | Some(BearerChoice::Fresh | BearerChoice::InsufficientScope)), None)
                }
                Action::Discovery(_) => (false, None),
            };
            match step_client.or(case.client.as_ref()).or(suite.client.as_ref()) {
                Some(named) if !target.clients.contains_key(&named.name) => {
                    errors.push(unknown_client(suite, target, named));
                }
                None if needs_client => errors.push(
                    suite
                        .source
                        .error_at(case.span, format!("case `{}` needs a client", case.id))
                        .with_help("set `client:` on the suite, the case or the step"),
                ),
                _ => {}
            }
        }
    }
    // One error per place, even when several steps share the suite's client.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.location.clone()));
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn unknown_client(suite: &Suite, target: &Target, named: &Named) -> LocatedError {
    let names = target.client_names().collect::<Vec<_>>().join(", ");
    let help = match did_you_mean(&named.name, target.client_names()) {
        Some(best) => format!("did you mean `{best}`? The target ({}) defines: {names}", target.origin),
        None => format!("the target ({}) defines: {names}", target.origin),
    };
    suite.source.error_at(named.span, format!("unknown client `{}`", named.name)).with_help(help)
}
