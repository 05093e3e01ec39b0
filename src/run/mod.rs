//! Executes suites against a target and returns plain results. Cases are independent and run
//! concurrently; the steps of one case run in order and share what earlier steps obtained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use miette::Diagnostic;
use url::Url;
use wildmatch::WildMatch;

mod ciba_steps;

use crate::auth::assertion;
use crate::checks::{CheckDef, Severity, Verdict};
use crate::diagnostics::{LocatedError, did_you_mean};
use crate::exchange::{Exchange, RequestContext, TokenFacts, redact_body};
use crate::flows;
use crate::flows::token_cache::TokenCache;
use crate::http::{HttpClient, Request, TransportError};
use crate::jwks_server::JwksServer;
use crate::keys::{KeyAlg, KeyPair, KidStyle};
use crate::results::{
    CaseOutcome, CaseResult, CheckOutcome, ExchangeView, ResponseView, RunReport, StepResult, SuiteResult, Summary,
    VerdictKind,
};
use crate::scenario::{
    Action, AssertionSpec, AuthChoice, BearerChoice, Case, Expectation, IntrospectSpec, Named, ResourceSpec,
    RevokeSpec, Step, Suite, TokenRef, TokenSpec, WaitSpec,
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
    /// Told about every finished case (a progress bar).
    pub progress: Option<Progress>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { filter: None, strict: false, jobs: 8, progress: None }
    }
}

/// A callback for finished cases.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&CaseResult) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
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
    pub introspection: Option<Url>,
    pub revocation: Option<Url>,
    /// The discovery document, when the server publishes one.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

pub struct Runner {
    http: HttpClient,
    /// Clients with an mTLS identity get their own HTTP client.
    http_by_client: HashMap<String, HttpClient>,
    /// CIBA endpoints, from the target's CIBA metadata document, when the server publishes one.
    ciba: Option<ciba_steps::CibaEndpoints>,
    target: Target,
    endpoints: Endpoints,
    redactor: Redactor,
    options: RunOptions,
    jwks: Arc<JwksServer>,
    token_cache: TokenCache,
}

/// The client that introspects when a step names none.
pub const DEFAULT_INTROSPECTION_CLIENT: &str = "resource-server";

/// Keys no server knows, for "signed by an unregistered key": made once per process and
/// algorithm (an RSA key takes a noticeable moment to generate, and staying unregistered is all
/// they need to do).
static UNREGISTERED_KEYS: OnceLock<Mutex<HashMap<KeyAlg, Arc<KeyPair>>>> = OnceLock::new();

/// What the steps of one case share.
#[derive(Default)]
struct CaseState {
    last_token: Option<Secret>,
    /// What is known of `last_token`, and the name of the client it was issued to.
    last_facts: Option<TokenFacts>,
    last_client: Option<String>,
    last_assertion: Option<Secret>,
    /// The case's CIBA request, once the backchannel accepted it.
    ciba: Option<ciba_steps::CibaRequest>,
    /// Set when a step decides the case cannot run here (e.g. a token too long-lived to wait for).
    skip: Option<String>,
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
        let tls = crate::http::TlsSettings { ca: target.ca.clone(), identity: None };
        let http = HttpClient::with_tls(target.timeout, &tls).map_err(RunError::Unreachable)?;
        let mut http_by_client = HashMap::new();
        for (name, client) in &target.clients {
            if let Some(id) = &client.identity {
                let tls = crate::http::TlsSettings { ca: target.ca.clone(), identity: Some(id.identity.clone()) };
                http_by_client
                    .insert(name.clone(), HttpClient::with_tls(target.timeout, &tls).map_err(RunError::Unreachable)?);
            }
        }
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
        let from_metadata = |member: &str| {
            metadata.as_ref().and_then(|m| m.get(member)).and_then(|v| v.as_str()).and_then(|s| Url::parse(s).ok())
        };
        let introspection = target.introspection_endpoint.clone().or_else(|| from_metadata("introspection_endpoint"));
        let revocation = target.revocation_endpoint.clone().or_else(|| from_metadata("revocation_endpoint"));
        let endpoints = Endpoints { token, introspection, revocation, metadata };
        let ciba = ciba_steps::discover(&http, &target).await;
        Ok(Self {
            http,
            http_by_client,
            ciba,
            target,
            endpoints,
            redactor,
            options,
            jwks,
            token_cache: TokenCache::default(),
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The target file the run used, if it came from one.
    pub fn target_source(&self) -> Option<&crate::diagnostics::SourceFile> {
        self.target.source.as_ref()
    }

    /// Every client a selected case names must exist in the target, and every endpoint a case
    /// needs must be known; checked before any traffic.
    pub fn preflight(&self, suites: &[Suite]) -> Result<(), RunError> {
        let selected = self.select(suites);
        let mut errors = preflight(selected.iter().map(|(_, s, c)| (*s, *c)), &self.target).err().unwrap_or_default();
        let discovery = flows::discovery::document_url(&self.target.issuer, "/.well-known/openid-configuration");
        for (_, suite, case) in &selected {
            let needs = |f: fn(&Action) -> bool| case.steps.iter().any(|s| f(&s.action));
            let missing = [
                (
                    "introspection_endpoint",
                    needs(|a| matches!(a, Action::Introspect(_))),
                    &self.endpoints.introspection,
                ),
                ("revocation_endpoint", needs(|a| matches!(a, Action::Revoke(_))), &self.endpoints.revocation),
            ];
            for (member, needed, known) in missing {
                if needed && known.is_none() {
                    errors.push(
                        suite
                            .source
                            .error_at(case.span, format!("case `{}` needs the {member}, which the target does not give", case.id))
                            .with_help(format!(
                                "set `{member}` in the target file ({}); the discovery document at {discovery} names none",
                                self.target.origin
                            )),
                    );
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(RunError::Preflight(errors)) }
    }

    /// How many cases `--filter` selects.
    pub fn selected_count(&self, suites: &[Suite]) -> usize {
        self.select(suites).len()
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
            .map(|(i, suite, case)| async move {
                let result = self.run_case(suite, case).await;
                if let Some(Progress(report)) = &self.options.progress {
                    report(&result);
                }
                (i, result)
            })
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
            let stop = step_result.error.is_some() || state.skip.is_some();
            result.steps.push(step_result);
            if stop {
                break;
            }
        }
        result.duration = started.elapsed();
        result.outcome = outcome_of(&result.steps);
        if let Some(reason) = state.skip {
            // A skip never hides what earlier steps found.
            if result.outcome != CaseOutcome::Failed {
                result.outcome = CaseOutcome::Skipped;
            }
            result.reason = Some(reason);
            return result;
        }
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

    /// The client a step acts as, with its name in the target.
    fn client_for(&self, suite: &Suite, case: &Case, step_client: Option<&Named>) -> (&str, &Client) {
        let name = step_client.or(case.client.as_ref()).or(suite.client.as_ref());
        // `preflight` guarantees the name exists; fall back to any client rather than panic.
        name.and_then(|n| self.target.clients.get_key_value(&n.name))
            .or_else(|| self.target.clients.iter().next())
            .map(|(k, v)| (k.as_str(), v))
            .unwrap_or_else(|| unreachable!("preflight admits no case without a client"))
    }

    async fn run_step(&self, suite: &Suite, case: &Case, step: &Step, state: &mut CaseState) -> StepResult {
        let mut result = StepResult {
            action: step.action.kind(),
            setup: Vec::new(),
            exchange: None,
            checks: Vec::new(),
            error: None,
            note: None,
        };
        let prepared = match &step.action {
            Action::Token(spec) => {
                let (_, client) = self.client_for(suite, case, spec.client.as_ref());
                self.prepare_token(client, spec, state)
            }
            Action::Discovery(spec) => {
                let path = match spec.document {
                    crate::scenario::DiscoveryDocument::WalletOpenidConfiguration => {
                        self.target.ciba.discovery_path.as_str()
                    }
                    other => other.well_known_path(),
                };
                let (mut request, mut context) = flows::discovery::build(&self.target.issuer, path);
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
            Action::Ciba(spec) => {
                let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                return self.run_ciba(suite, &step.expect, name, client, spec, state, result).await;
            }
            Action::Poll(spec) => return self.run_poll(suite, &step.expect, spec, state, result).await,
            Action::Approve => return self.run_approve(state, result).await,
            Action::Introspect(spec) => self.prepare_introspection(spec, state),
            Action::Revoke(spec) => self.prepare_revocation(spec, state),
            Action::Wait(spec) => match self.wait_for_expiry(spec, state).await {
                Ok(note) => {
                    result.note = Some(note);
                    return result;
                }
                Err(failure) => Err(failure),
            },
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(failure) => {
                match failure {
                    StepFailure::Transport(e) => result.error = Some(self.redactor.scrub(&e.to_string())),
                    StepFailure::Precondition(o) => result.checks.push(*o),
                    StepFailure::Skip(reason) => state.skip = Some(reason),
                }
                return result;
            }
        };
        match self.exchange(prepared.request, prepared.context).await {
            Err(e) => result.error = Some(self.redactor.scrub(&e.to_string())),
            Ok(mut exchange) => {
                if let Action::Token(spec) = &step.action {
                    let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                    self.remember(state, name, client, &exchange);
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

    /// Keeps a token the server issued (and what is known of it) for the case's later steps.
    fn remember(&self, state: &mut CaseState, name: &str, client: &Client, exchange: &Exchange) -> Option<Secret> {
        let token = self.remember_tokens(exchange)?;
        state.last_token = Some(token.clone());
        state.last_facts = token_facts(client, exchange);
        state.last_client = Some(name.to_string());
        Some(token)
    }

    fn subject_token(&self, which: TokenRef, state: &CaseState) -> Result<(Secret, Option<TokenFacts>), StepFailure> {
        match which {
            TokenRef::Garbage => Ok((Secret::new(flows::resource::GARBAGE_TOKEN), None)),
            TokenRef::Last => state.last_token.clone().map(|t| (t, state.last_facts.clone())).ok_or_else(|| {
                StepFailure::Precondition(precondition("no earlier step of this case obtained a token".into()))
            }),
        }
    }

    fn prepare_introspection(
        &self,
        spec: &IntrospectSpec,
        state: &mut CaseState,
    ) -> Result<PreparedToken, StepFailure> {
        let endpoint = self.endpoints.introspection.clone().ok_or_else(|| {
            StepFailure::Precondition(precondition("the target has no introspection endpoint".into()))
        })?;
        let name = spec.client.as_ref().map(|n| n.name.as_str()).unwrap_or(DEFAULT_INTROSPECTION_CLIENT);
        let caller = self.target.clients.get(name).ok_or_else(|| {
            StepFailure::Precondition(precondition(format!("the target has no client `{name}` to introspect with")))
        })?;
        let (token, facts) = self.subject_token(spec.token, state)?;
        let auth = spec.auth.unwrap_or(AuthChoice::from(caller.auth));
        let wrong = caller.secret.as_ref().map(|s| Secret::new(format!("{}-wrong", s.expose())));
        let assertion = self.client_assertion(caller, auth, &AssertionSpec::default(), None, state)?.map(|(a, _)| a);
        let flows_caller = flows::introspection::Caller {
            client: caller,
            auth,
            secret: if spec.wrong_secret { wrong.as_ref() } else { None },
            assertion: assertion.as_ref(),
        };
        let (request, context) =
            flows::introspection::build(&endpoint, &flows_caller, &token, spec.token_type_hint.as_deref(), facts);
        Ok(PreparedToken { request, context, jku_path: None })
    }

    /// Revokes the case's last token as the client it was issued to (RFC 7009 §2.1).
    fn prepare_revocation(&self, spec: &RevokeSpec, state: &mut CaseState) -> Result<PreparedToken, StepFailure> {
        let endpoint =
            self.endpoints.revocation.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition("the target has no revocation endpoint".into()))
            })?;
        let (token, facts) = self.subject_token(spec.token, state)?;
        let owner = state
            .last_client
            .clone()
            .and_then(|n| self.target.clients.get(&n))
            .ok_or_else(|| StepFailure::Precondition(precondition("the token's client is not known".into())))?;
        let auth = AuthChoice::from(owner.auth);
        let assertion = self.client_assertion(owner, auth, &AssertionSpec::default(), None, state)?.map(|(a, _)| a);
        let caller = flows::introspection::Caller { client: owner, auth, secret: None, assertion: assertion.as_ref() };
        let (request, context) =
            flows::introspection::build(&endpoint, &caller, &token, spec.token_type_hint.as_deref(), facts);
        Ok(PreparedToken { request, context, jku_path: None })
    }

    /// Sleeps until the case's last token has expired (plus skew), unless that is longer than the
    /// step allows: then the case is skipped with the reason.
    async fn wait_for_expiry(&self, spec: &WaitSpec, state: &mut CaseState) -> Result<String, StepFailure> {
        let expires_at = state.last_facts.as_ref().and_then(TokenFacts::expires_at).ok_or_else(|| {
            StepFailure::Precondition(precondition(
                "the case's token has neither exp nor expires_in to wait for".into(),
            ))
        })?;
        let now = crate::clock::unix_now_f64();
        let wait = (expires_at as f64 - now).max(0.0) + spec.skew.as_secs_f64();
        if wait > spec.max.as_secs_f64() {
            return Err(StepFailure::Skip(format!(
                "the token expires in {:.0} s, longer than this step waits ({}); configure a short-lived client for this suite",
                wait,
                humantime::format_duration(spec.max)
            )));
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
        Ok(format!("waited {wait:.1} s for the token to expire"))
    }

    /// Builds a token request; for private_key_jwt, signs (or replays) the client assertion.
    fn prepare_token(
        &self,
        client: &Client,
        spec: &TokenSpec,
        state: &mut CaseState,
    ) -> Result<PreparedToken, StepFailure> {
        let auth = spec.auth.unwrap_or(AuthChoice::from(client.auth));
        let signed = self.client_assertion(client, auth, &spec.assertion, spec.client_id.as_deref(), state)?;
        let (assertion, jku_path) = signed.unzip();
        let (request, context) = flows::token::build(&self.endpoints.token, client, spec, assertion.as_ref());
        Ok(PreparedToken { request, context, jku_path: jku_path.flatten() })
    }

    /// The client assertion for a private_key_jwt request (none for other methods), and the
    /// harness-served `jku` path it points at, if any. The assertion becomes the case's "previous".
    fn client_assertion(
        &self,
        client: &Client,
        auth: AuthChoice,
        spec: &AssertionSpec,
        client_id: Option<&str>,
        state: &mut CaseState,
    ) -> Result<Option<(Secret, Option<String>)>, StepFailure> {
        if auth != AuthChoice::PrivateKeyJwt {
            return Ok(None);
        }
        if spec.replay {
            let previous = state.last_assertion.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition(
                    "no earlier step of this case sent an assertion to replay".into(),
                ))
            })?;
            return Ok(Some((previous, None)));
        }
        let key = client.key.clone().ok_or_else(|| {
            StepFailure::Precondition(precondition("the client has no private key for private_key_jwt".into()))
        })?;
        let signer = if spec.unregistered_key { self.unregistered_key(key.alg) } else { key };
        let mut mutation = spec.mutation.clone();
        let mut jku_path = None;
        if spec.serve_jku {
            // A fresh path per step, so concurrent cases cannot blur the fetch count.
            let path = format!("/untrusted/{}/jwks.json", assertion::new_jti());
            let url = self.jwks.publish(&path, signer.jwks());
            mutation.header.insert("jku".into(), serde_json::Value::String(url.to_string()));
            jku_path = Some(path);
        }
        let claims = assertion::Claims {
            client_id: client_id.unwrap_or(&client.client_id),
            audience: self.endpoints.token.as_str(),
            now: crate::clock::unix_now(),
            jti: assertion::new_jti(),
        };
        let jws = Secret::new(assertion::build(&signer, &claims, &mutation));
        self.redactor.register_secret(&jws);
        state.last_assertion = Some(jws.clone());
        Ok(Some((jws, jku_path)))
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
                let (name, client) = self.client_for(suite, case, None);
                let spec = TokenSpec { scope, ..TokenSpec::default() };
                let prepared = self.prepare_token(client, &spec, state)?;
                let exchange =
                    self.exchange(prepared.request, prepared.context).await.map_err(StepFailure::Transport)?;
                result.setup.push(self.view(&exchange));
                Some(self.remember(state, name, client, &exchange).ok_or_else(|| no_token(&self.redactor, &exchange))?)
            }
            BearerChoice::Cached => {
                let (name, client) = self.client_for(suite, case, None);
                let token = self
                    .token_cache
                    .get_or_fetch(name, || async {
                        let mut scratch = CaseState::default();
                        let prepared = self.prepare_token(client, &TokenSpec::default(), &mut scratch)?;
                        let exchange =
                            self.exchange(prepared.request, prepared.context).await.map_err(StepFailure::Transport)?;
                        result.setup.push(self.view(&exchange));
                        let token =
                            self.remember_tokens(&exchange).ok_or_else(|| no_token(&self.redactor, &exchange))?;
                        let expires_in =
                            exchange.response.json_object().and_then(|o| o.get("expires_in")).and_then(|v| v.as_i64());
                        Ok::<_, StepFailure>((token, expires_in))
                    })
                    .await?;
                state.last_token = Some(token.clone());
                Some(token)
            }
        };
        Ok(flows::resource::build(&url, bearer.as_ref()))
    }

    /// The HTTP client a named client talks through (its own when it has an mTLS identity).
    fn http_for(&self, client_name: &str) -> &HttpClient {
        self.http_by_client.get(client_name).unwrap_or(&self.http)
    }

    async fn exchange(&self, request: Request, context: RequestContext) -> Result<Exchange, TransportError> {
        self.exchange_with(&self.http, request, context).await
    }

    async fn exchange_with(
        &self,
        http: &HttpClient,
        request: Request,
        context: RequestContext,
    ) -> Result<Exchange, TransportError> {
        let response = http.send(&request).await?;
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
    /// The case cannot run against this target; the reason is shown.
    Skip(String),
}

fn no_token(redactor: &Redactor, exchange: &Exchange) -> StepFailure {
    StepFailure::Precondition(precondition(format!(
        "could not obtain a token for the resource call: {}",
        redactor.scrub(&exchange.response.summary())
    )))
}

/// What the harness knows of the token in a successful token answer.
fn token_facts(client: &Client, exchange: &Exchange) -> Option<TokenFacts> {
    let body = exchange.response.json_object()?;
    let claims = body.get("access_token").and_then(|t| t.as_str()).and_then(crate::checks::wire::jwt_claims);
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).and_then(|v| v.as_i64());
    Some(TokenFacts {
        client_id: client.client_id.clone(),
        scope: body
            .get("scope")
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .or_else(|| exchange.context.requested_scope.clone()),
        expires_in: body.get("expires_in").and_then(|v| v.as_i64()),
        received_at: crate::clock::unix_now(),
        jwt_exp: claim("exp"),
        jwt_iat: claim("iat"),
    })
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
            let suite_client = case.client.as_ref().or(suite.client.as_ref());
            // Which client the step acts as, and whether it must have one.
            let (named, needs_client) = match &step.action {
                Action::Token(t) => (t.client.as_ref().or(suite_client), true),
                Action::Resource(r) => {
                    let fetches = matches!(
                        r.bearer,
                        None | Some(BearerChoice::Fresh | BearerChoice::InsufficientScope | BearerChoice::Cached)
                    );
                    (suite_client, fetches)
                }
                // The caller of an introspection is never the suite's token client by default.
                Action::Introspect(i) => {
                    if i.client.is_none() && !target.clients.contains_key(DEFAULT_INTROSPECTION_CLIENT) {
                        errors.push(
                            suite
                                .source
                                .error_at(case.span, format!("case `{}` introspects without naming a client", case.id))
                                .with_help(format!(
                                    "name the caller (`introspect: {{ client: … }}`) or define a `{DEFAULT_INTROSPECTION_CLIENT}` client in the target"
                                )),
                        );
                    }
                    (i.client.as_ref(), false)
                }
                Action::Discovery(_) | Action::Revoke(_) | Action::Wait(_) => (suite_client, false),
                Action::Ciba(c) => (c.client.as_ref().or(suite_client), true),
                Action::Poll(p) => (p.client.as_ref().or(suite_client), false),
                Action::Approve => (None, false),
            };
            let wants_assertion = matches!(&step.action, Action::Token(t) if t.auth == Some(AuthChoice::PrivateKeyJwt));
            match named {
                Some(named) if !target.clients.contains_key(&named.name) => {
                    errors.push(unknown_client(suite, target, named));
                }
                Some(named) if wants_assertion && target.clients.get(&named.name).is_some_and(|c| c.key.is_none()) => {
                    errors.push(
                        suite
                            .source
                            .error_at(
                                named.span,
                                format!("client `{}` has no private key for private_key_jwt", named.name),
                            )
                            .with_help("give the client a `private_key:` in the target file"),
                    );
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
