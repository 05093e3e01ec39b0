//! Executes suites against a target and returns plain results. Cases run concurrently, except
//! those whose CIBA requests share a client and user (`lanes`); the steps of one case run in
//! order and share what earlier steps obtained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use miette::Diagnostic;
use wildmatch::WildMatch;

mod ciba_steps;
mod key_rotation_steps;
mod lanes;
mod lifecycle_steps;
pub mod outcome;
mod preflight;
mod signatures;
mod tls_steps;
mod token_exchange_steps;
mod token_steps;

use outcome::{StepFailure, no_token, outcome_from, outcome_of, precondition, token_facts};
pub use preflight::preflight;

use crate::checks::{CheckDef, Severity, Verdict};
use crate::model::target::{Client, Target};
use crate::model::{Action, Case, Expectation, Named, Step, Suite};
use crate::protocol::exchange::{Exchange, RequestContext, RotatedKey, TokenFacts, redact_body};
use crate::protocol::flows;
use crate::protocol::flows::discovery::{DiscoveryError, Endpoints, discover_endpoints};
use crate::protocol::flows::token_cache::TokenCache;
use crate::protocol::http::{HttpClient, Request, TransportError};
use crate::protocol::jwks_server::JwksServer;
use crate::results::{
    CaseOutcome, CaseResult, CheckOutcome, ExchangeView, ResponseView, RunReport, StepResult, SuiteResult, Summary,
    VerdictKind,
};
use crate::support::diagnostics::LocatedError;
use crate::support::keys::{KeyAlg, KeyPair};
use crate::support::secret::{Redactor, Secret};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Glob over case ids (`suite/id` also matches).
    pub filter: Option<String>,
    /// Glob of cases to leave out (the opposite of `filter`).
    pub skip: Option<String>,
    /// SHOULD failures fail the run.
    pub strict: bool,
    /// Cases in flight at once.
    pub jobs: usize,
    /// Told about every finished case (a progress bar).
    pub progress: Option<Progress>,
    /// When triggered (Ctrl-C), no case starts and the ones in flight are abandoned; the report
    /// says which cases did not run.
    pub stop: Option<Stop>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { filter: None, skip: None, strict: false, jobs: 8, progress: None, stop: None }
    }
}

/// A stop signal shared by the runners of one run.
#[derive(Clone, Default)]
pub struct Stop(Arc<tokio::sync::Notify>, Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    pub fn trigger(&self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once the stop is triggered.
    pub async fn wait(&self) {
        let notified = self.0.notified();
        if self.is_triggered() {
            return;
        }
        notified.await;
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stop({})", self.is_triggered())
    }
}

/// Callbacks for a progress display: a case finished, or a step is waiting (CIBA polling, a
/// token's expiry) with how long it may take.
#[derive(Clone)]
pub struct Progress {
    pub case_done: Arc<dyn Fn(&CaseResult) + Send + Sync>,
    pub waiting: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot build the HTTP client: {0}")]
    Client(TransportError),
    #[error("--filter `{0}` selects no case")]
    EmptyFilter(String),
    #[error("{} between the scenarios and the target", crate::support::text::count(.0.len(), "problem"))]
    Preflight(#[related] Vec<LocatedError>),
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
    /// `token_endpoint_auth_signing_alg_values_supported`, from the OpenID metadata or the SMART
    /// configuration, when the server publishes it.
    signing_algs: Option<Vec<String>>,
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
    /// The access token a poll of the case got, what is known of it, and who got it: what a
    /// token exchange trades (later steps may replace `last_token`).
    ciba_token: Option<(Secret, Option<TokenFacts>, String)>,
    /// The id_token a poll of the case got.
    id_token: Option<Secret>,
    /// The client key a `rotate_key` step changed, and what the unknown-kid requests cost.
    rotation: Option<key_rotation_steps::Rotation>,
    /// The key of the case's last good DPoP token request, and its proof (what `replayed`
    /// resends and what a resource call proves possession of).
    dpop: Option<(Arc<KeyPair>, Secret)>,
    /// Set when a step decides the case cannot run here (e.g. a token too long-lived to wait for).
    skip: Option<String>,
}

/// A token request ready to send, and what to observe around it.
struct PreparedToken {
    request: Request,
    context: RequestContext,
    /// The harness-served `jku` path whose fetches the server must not make.
    jku_path: Option<String>,
    /// The client whose TLS identity the request goes with (RFC 8705), if any.
    via: Option<String>,
    /// How to sign the proof again when the server asks for a nonce (RFC 9449 §8, §9).
    dpop: Option<DpopRetry>,
}

/// A DPoP proof's making, kept to redo it with the nonce a server hands out.
struct DpopRetry {
    key: Arc<KeyPair>,
    kind: crate::model::DpopProof,
    method: String,
    /// The proof's `htu`.
    url: String,
    /// At a resource: the access token the proof's `ath` hashes.
    token: Option<Secret>,
    /// For private_key_jwt: a second assertion, made like the first, for the request sent again.
    assertion: Option<Secret>,
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
        let tls = crate::protocol::http::TlsSettings { ca: target.ca.certs.clone(), ..Default::default() };
        let http = HttpClient::with_tls(target.timeout, &tls).map_err(RunError::Client)?;
        let mut http_by_client = HashMap::new();
        for (name, client) in &target.clients {
            if let Some(id) = &client.identity {
                let tls = crate::protocol::http::TlsSettings {
                    ca: target.ca.certs.clone(),
                    identity: Some(id.identity.clone()),
                    ..Default::default()
                };
                http_by_client
                    .insert(name.clone(), HttpClient::with_tls(target.timeout, &tls).map_err(RunError::Client)?);
            }
        }
        let endpoints = discover_endpoints(&http, &target).await?;
        let ciba = ciba_steps::discover(&http, &target).await;
        let signing_algs = signing_algs(&http, &target, &endpoints).await;
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
            signing_algs,
        })
    }

    /// The target file the run used, if it came from one.
    pub fn target_source(&self) -> Option<&crate::support::diagnostics::SourceFile> {
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

    /// The cases `--filter` selects and `--skip` does not, with the index of their suite.
    fn select<'a>(&self, suites: &'a [Suite]) -> Vec<(usize, &'a Suite, &'a Case)> {
        let filter = self.options.filter.as_deref().map(WildMatch::new);
        let skip = self.options.skip.as_deref().map(WildMatch::new);
        let matches =
            |f: &WildMatch, s: &Suite, c: &Case| f.matches(&c.id) || f.matches(&format!("{}/{}", s.name, c.id));
        suites
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.cases.iter().map(move |c| (i, s, c)))
            .filter(|(_, s, c)| filter.as_ref().is_none_or(|f| matches(f, s, c)))
            .filter(|(_, s, c)| skip.as_ref().is_none_or(|f| !matches(f, s, c)))
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
        let planned: Vec<lanes::Planned<'_>> =
            selected.iter().enumerate().map(|(order, (i, s, c))| (*i, *s, *c, order)).collect();
        // Finished cases are kept as they finish, so an interrupted run still reports them.
        let finished: Mutex<Vec<(usize, usize, CaseResult)>> = Mutex::new(Vec::new());
        let finished_ref = &finished;
        let side_by_side = futures_util::stream::iter(lanes::lanes(planned.clone(), &self.target))
            .map(|lane| self.run_lane(lane, finished_ref))
            .buffer_unordered(self.options.jobs.max(1));
        let alone = futures_util::stream::iter(lanes::alone(&planned)).then(|p| self.run_lane(vec![p], finished_ref));
        let work = side_by_side.chain(alone);
        let stop = self.options.stop.clone().unwrap_or_default();
        work.take_until(Box::pin(stop.wait())).for_each(|()| async {}).await;
        let interrupted = stop.is_triggered();
        let mut finished = finished.into_inner().unwrap_or_else(|p| p.into_inner());
        if interrupted {
            // Cases that did not finish are reported as not run, so the report says what it covers.
            for (i, _, case, order) in &planned {
                if !finished.iter().any(|(o, _, _)| o == order) {
                    finished.push((*order, *i, not_run(case)));
                }
            }
        }
        finished.sort_by_key(|(order, _, _)| *order);
        let results: Vec<(usize, CaseResult)> = finished.into_iter().map(|(_, i, r)| (i, r)).collect();
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
            interrupted,
            suites: suite_results,
            summary,
            known_deviations: None,
        })
    }

    /// Looks for OpenID Provider metadata (OIDC Discovery §4): `None` when it is there, else what
    /// its place answered (the exchange is kept as the step's setup).
    async fn openid_metadata(&self, result: &mut StepResult) -> Result<Option<String>, TransportError> {
        let (request, context) = flows::discovery::build(&self.target.issuer, "/.well-known/openid-configuration");
        let exchange = self.exchange(request, context).await?;
        let found = exchange.response.status == 200 && exchange.response.json_object().is_some();
        let tried = format!("{} {}", exchange.request.url, flows::discovery::describe_non_document(&exchange.response));
        result.setup.push(self.view(&exchange));
        Ok((!found).then_some(tried))
    }

    /// The RFC 8414 document, if the server publishes one (a 200 JSON object at its place).
    async fn rfc8414_document(&self, result: &mut StepResult) -> Option<crate::protocol::exchange::AlsoPublished> {
        let (request, context) = flows::discovery::get(flows::discovery::rfc8414_url(&self.target.issuer));
        let exchange = self.exchange(request, context).await.ok()?;
        result.setup.push(self.view(&exchange));
        let doc = exchange.response.json_object().filter(|_| exchange.response.status == 200)?;
        Some(crate::protocol::exchange::AlsoPublished {
            url: exchange.request.url.clone(),
            issuer: doc.get("issuer").and_then(serde_json::Value::as_str).map(str::to_owned),
        })
    }

    /// Runs a lane's cases in order, each one's CIBA requests after the previous one's are over:
    /// a case starts once the one before it has polled its last (what follows — an exchange, a
    /// wait — overlaps the next case). Keeps each result as it finishes.
    async fn run_lane(&self, lane: Vec<lanes::Planned<'_>>, finished: &Mutex<Vec<(usize, usize, CaseResult)>>) {
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut previous: Option<tokio::sync::oneshot::Receiver<()>> = None;
        for (i, suite, case, order) in lane {
            let (release, released) = tokio::sync::oneshot::channel();
            let after = previous.replace(released);
            running.push(async move {
                if let Some(after) = after {
                    // A dropped sender (the case ended) releases as well.
                    let _ = after.await;
                }
                let result = self.run_case(suite, case, release).await;
                if let Some(progress) = &self.options.progress {
                    (progress.case_done)(&result);
                }
                finished.lock().unwrap_or_else(|p| p.into_inner()).push((order, i, result));
            });
        }
        while running.next().await.is_some() {}
    }

    /// Runs one case; `release` fires once its last CIBA step (ciba, poll, approve) is done.
    async fn run_case(&self, suite: &Suite, case: &Case, release: tokio::sync::oneshot::Sender<()>) -> CaseResult {
        let started = Instant::now();
        let mut result = CaseResult {
            id: case.id.clone(),
            title: case.title.clone(),
            outcome: CaseOutcome::Passed,
            duration: Default::default(),
            reason: None,
            steps: Vec::new(),
            timeline: None,
        };
        if let Some(reason) = self.skip_reason(suite, case) {
            result.outcome = CaseOutcome::Skipped;
            result.reason = Some(reason);
            return result;
        }
        let mut state = CaseState::default();
        let ciba_phase = case.steps.iter().rposition(|s| lanes::uses_ciba_request(&s.action)).map_or(0, |i| i + 1);
        let mut release = Some(release);
        for (n, step) in case.steps.iter().enumerate() {
            if n >= ciba_phase {
                release.take().map(|r| r.send(()));
            }
            let step_result = self.run_step(suite, case, step, &mut state).await;
            let stop = step_result.error.is_some() || state.skip.is_some();
            result.steps.push(step_result);
            if stop {
                break;
            }
        }
        result.duration = started.elapsed();
        // A step blocked after an earlier step failed is blocked by that failure: one finding.
        let mut failed_before = false;
        for step in &mut result.steps {
            if failed_before {
                step.checks.retain(|c| c.id != "harness.prerequisite");
            }
            failed_before |= step.checks.iter().any(|c| c.verdict == VerdictKind::Fail);
        }
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

    fn skip_reason(&self, suite: &Suite, case: &Case) -> Option<String> {
        // Registration is the target's to say (RFC 7591 §2): a case about a method the client
        // is not registered for (or about one it is not) does not apply to it.
        // A method is asked of the clients of the steps that send it, else of the case's client.
        let case_client = case.client.as_ref().or(suite.client.as_ref()).map(|n| n.name.as_str());
        let sent: Vec<(&str, Option<crate::model::AuthMethod>)> = case
            .steps
            .iter()
            .filter_map(|step| {
                let (named, explicit) = match &step.action {
                    Action::Token(t) => (t.client.as_ref().map(|n| n.name.as_str()).or(case_client), t.auth),
                    Action::Introspect(i) => (
                        Some(
                            i.client
                                .as_ref()
                                .map(|n| n.name.as_str())
                                .unwrap_or(crate::model::target::DEFAULT_INTROSPECTION_CLIENT),
                        ),
                        i.auth,
                    ),
                    Action::Ciba(c) => (c.client.as_ref().map(|n| n.name.as_str()).or(case_client), None),
                    Action::Poll(p) => (p.client.as_ref().map(|n| n.name.as_str()).or(case_client), None),
                    Action::TokenExchange(t) => (t.client.as_ref().map(|n| n.name.as_str()).or(case_client), None),
                    _ => return None,
                };
                let name = named?;
                let method = match explicit {
                    Some(choice) => choice.method(),
                    None => self.target.clients.get(name).map(|c| c.auth),
                };
                Some((name, method))
            })
            .collect();
        for m in &case.registered {
            let mut senders: Vec<&str> = sent.iter().filter(|(_, used)| *used == Some(*m)).map(|(n, _)| *n).collect();
            // A client the target lacks sends nothing: the case still names it.
            senders.extend(sent.iter().filter(|(n, _)| !self.target.clients.contains_key(*n)).map(|(n, _)| *n));
            if senders.is_empty() {
                senders.extend(case_client);
            }
            for name in senders {
                match self.target.clients.get(name) {
                    None => {
                        return Some(format!(
                            "the target has no client `{name}` (the case needs one registered for {m})"
                        ));
                    }
                    Some(c) if !c.methods.contains(m) => {
                        return Some(format!(
                            "client `{name}` is not registered for {m} (its `methods` in the target)"
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let (name, client) = self.client_for(suite, case, None);
        if let Some(m) = case.not_registered.iter().find(|m| client.methods.contains(m)) {
            return Some(format!("client `{name}` is registered for {m}, and the case needs one that is not"));
        }
        if case.certificate_bound && !client.bound_tokens {
            return Some(format!(
                "client `{name}` did not register for certificate-bound tokens (RFC 8705 §3.4: `tls_client_certificate_bound_access_tokens: true` on it in the target)"
            ));
        }
        if case.steps.iter().any(|s| matches!(s.action, Action::Resource(_))) && self.target.resource.is_none() {
            return Some("the target has no `resource` to call".into());
        }
        // A call with another client's certificate needs a client holding a different one.
        let other_certificate = case.steps.iter().any(|s| {
            matches!(&s.action, Action::Resource(r) if r.certificate == Some(crate::model::ResourceCertificate::Other))
        });
        if other_certificate && self.target.client_with_other_certificate(client.identity.as_ref()).is_none() {
            return Some(format!(
                "the case presents another client's certificate, and the target has no client with a certificate other than `{name}`'s"
            ));
        }
        // A case that plays the user through the hook cannot run without one: skipped at once, not
        // polled until expires_in runs out.
        let needs_hook = case.steps.iter().any(|s| match &s.action {
            Action::Approve(_) => true,
            Action::Ciba(c) => c.approve_with_hook,
            _ => false,
        });
        if needs_hook && self.target.ciba.approval_hook.is_none() {
            return Some(
                "the case plays the user through an approval hook, and the target has no `ciba.approval_hook`".into(),
            );
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
            action: step.action.kind().name(),
            setup: Vec::new(),
            exchange: None,
            checks: Vec::new(),
            error: None,
            note: None,
        };
        let prepared = match &step.action {
            Action::Token(spec) => {
                let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                // tls_client_auth sends its certificate: the request goes over the client's TLS.
                self.prepare_token(client, spec, state).map(|p| PreparedToken { via: Some(name.to_string()), ..p })
            }
            Action::Discovery(spec) => {
                use crate::model::DiscoveryDocument as Doc;
                let issuer = &self.target.issuer;
                let (mut request, mut context) = match spec.document {
                    Doc::WalletOpenidConfiguration => flows::discovery::build(issuer, &self.target.ciba.discovery_path),
                    Doc::OauthAuthorizationServer => flows::discovery::get(flows::discovery::rfc8414_url(issuer)),
                    Doc::ServerMetadata => match self.openid_metadata(&mut result).await {
                        // OpenID Provider metadata is there: the step judges it.
                        // …and so is RFC 8414's, where the server publishes it too.
                        Ok(None) => {
                            let (r, mut c) = flows::discovery::build(issuer, spec.document.well_known_path());
                            c.also_published = self.rfc8414_document(&mut result).await;
                            (r, c)
                        }
                        // None: RFC 8414's location next, saying what the first place answered.
                        Ok(Some(tried)) => {
                            let (r, mut c) = flows::discovery::get(flows::discovery::rfc8414_url(issuer));
                            c.tried.push(tried);
                            c.document = Some("oauth-authorization-server");
                            (r, c)
                        }
                        Err(e) => {
                            result.error = Some(self.redactor.scrub(&e.to_string()));
                            return result;
                        }
                    },
                    other => flows::discovery::build(issuer, other.well_known_path()),
                };
                if context.document.is_none() {
                    context.document = Some(match spec.document {
                        Doc::OauthAuthorizationServer => "oauth-authorization-server",
                        Doc::SmartConfiguration => "smart-configuration",
                        _ => "openid-configuration",
                    });
                }
                if let Some(accept) = &spec.accept {
                    request.headers.retain(|(k, _)| k != "Accept");
                    request.headers.push(("Accept".into(), crate::protocol::http::Value::Plain(accept.clone())));
                }
                context.expected_issuer = Some(self.target.issuer.to_string());
                Ok(PreparedToken { request, context, jku_path: None, via: None, dpop: None })
            }
            Action::Resource(spec) => self.prepare_resource_call(suite, case, spec, state, &mut result).await,
            Action::Ciba(spec) => {
                let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                return self.run_ciba(suite, &step.expect, name, client, spec, state, result).await;
            }
            Action::Poll(spec) => return self.run_poll(suite, &step.expect, spec, state, result).await,
            Action::Approve(_) => return self.run_approve(state, result).await,
            Action::TokenExchange(spec) => {
                return self.run_token_exchange(suite, &step.expect, spec, state, result).await;
            }
            Action::Tls(_) => return self.run_tls_probe(suite, &step.expect, state, result).await,
            Action::RotateKey(spec) => {
                let (name, client) = self.client_for(suite, case, None);
                return self.run_rotate_key(name, client, spec, state, result).await;
            }
            Action::Mint(spec) => {
                let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                return self.run_mint(name, client, spec, result).await;
            }
            Action::Introspect(spec) => self.prepare_introspection(spec, state, &mut result).await,
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
        let http = prepared.via.as_deref().map(|n| self.http_for(n)).unwrap_or(&self.http);
        // The client's JWKS fetches an unknown-kid request costs (after a rotation).
        let unknown_kid = prepared.context.key_rotation.as_ref().is_some_and(|k| k.signed_with == RotatedKey::Unknown);
        let fetched_before = state.rotation.as_ref().map(|r| self.jwks.fetches(&r.path));
        let sent = match prepared.dpop {
            None => self.exchange_with(http, prepared.request, prepared.context).await,
            Some(retry) => {
                self.exchange_following_nonce(http, prepared.request, prepared.context, retry, &mut result, state).await
            }
        };
        match sent {
            Err(e) => result.error = Some(self.redactor.scrub(&e.to_string())),
            Ok(mut exchange) => {
                if let Action::Token(spec) = &step.action {
                    let (name, client) = self.client_for(suite, case, spec.client.as_ref());
                    self.remember(state, name, client, &exchange);
                    // The JWKS is fetched only for a step whose checks read the signature.
                    if resolve_expected(&step.expect).iter().any(|c| c.id == crate::checks::ACCESS_TOKEN_SIGNATURE) {
                        exchange.context.access_token_signature = self.access_token_signature(&exchange).await;
                    }
                }
                if let Some(path) = &prepared.jku_path {
                    exchange.context.jku_fetches = Some(self.jwks.fetches(path));
                }
                if let (true, Some(r), Some(before)) = (unknown_kid, state.rotation.as_mut(), fetched_before) {
                    r.unknown_kid_requests += 1;
                    r.unknown_kid_fetches += self.jwks.fetches(&r.path).saturating_sub(before);
                    if let Some(facts) = exchange.context.key_rotation.as_mut() {
                        facts.unknown_kid_requests = r.unknown_kid_requests;
                        facts.unknown_kid_fetches = r.unknown_kid_fetches;
                    }
                }
                if matches!(step.action, Action::Introspect(_))
                    && resolve_expected(&step.expect).iter().any(|c| c.id == crate::checks::INTROSPECTION_SIGNATURE)
                {
                    exchange.context.answer_signature = self.answer_signature(&exchange).await;
                }
                // An introspection that names the token's binding tells later steps (RFC 8705 §3.2).
                if matches!(step.action, Action::Introspect(_)) {
                    let cnf =
                        exchange.response.json_object().and_then(|b| b.get("cnf")).and_then(|c| c.get("x5t#S256"));
                    if let (Some(t), Some(facts)) = (cnf.and_then(|t| t.as_str()), state.last_facts.as_mut()) {
                        facts.cnf = Some(t.to_string());
                    }
                }
                if matches!(step.action, Action::Revoke(_)) {
                    // Later steps judge the token as revoked only once the server said it revoked it.
                    if exchange.response.status == 200 {
                        if let Some(facts) = state.last_facts.as_mut() {
                            facts.revoked = true;
                        }
                    }
                    // A server that does not revoke this type of token (RFC 7009 §2.2.1) answered
                    // as it may: what the case goes on to judge of a revoked token cannot apply.
                    if flows::introspection::revocation_declined(&exchange.response) {
                        state.skip = Some(
                            "the server does not revoke this type of token (400 unsupported_token_type, which RFC \
                             7009 §2.2.1 allows): the steps after the revocation have no revoked token to judge"
                                .into(),
                        );
                    }
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

    /// Sends a request with a DPoP proof; when the server asks for a nonce (RFC 9449 §8, §9), signs
    /// the proof again with it and sends once more. The first answer goes in the step's setup.
    async fn exchange_following_nonce(
        &self,
        http: &HttpClient,
        request: Request,
        context: RequestContext,
        retry: DpopRetry,
        result: &mut StepResult,
        state: &mut CaseState,
    ) -> Result<Exchange, TransportError> {
        let mut again = request.clone();
        let mut first = self.exchange_with(http, request, context).await?;
        if !crate::checks::dpop::asks_nonce(&first.response) {
            return Ok(first);
        }
        let nonce = first.response.header("dpop-nonce").map(str::to_owned);
        let asked = |header| Some(crate::protocol::exchange::NonceAsked { header });
        let Some(nonce) = nonce else {
            if let Some(d) = first.context.dpop.as_mut() {
                d.nonce_asked = asked(false);
            }
            return Ok(first);
        };
        // A client assertion is single-use: the request goes again with the other one made for it.
        let remade = match (&first.context.assertion, retry.assertion) {
            (None, _) => None,
            (Some(_), Some(remade)) => Some(remade),
            (Some(_), None) => {
                state.skip = Some(
                    "the server asks for a DPoP nonce, and a `jku` assertion is not remade for the request sent again"
                        .into(),
                );
                return Ok(first);
            }
        };
        result.setup.push(self.view(&first));
        let bind = crate::protocol::auth::dpop::Bind {
            access_token: retry.token.as_ref().map(Secret::expose),
            nonce: Some(&nonce),
        };
        let (proof, _) = crate::protocol::auth::dpop::proof(&retry.key, &retry.method, &retry.url, retry.kind, bind);
        again.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("DPoP"));
        again.headers.push(("DPoP".into(), crate::protocol::http::Value::Secret(Secret::new(proof))));
        let mut context = first.context;
        if let Some(d) = context.dpop.as_mut() {
            d.nonce_asked = asked(true);
        }
        if let Some(remade) = remade {
            for (name, value) in again.form.iter_mut().flatten() {
                if name == "client_assertion" {
                    *value = crate::protocol::http::Value::Secret(remade.clone());
                }
            }
            if let Some(facts) = context.assertion.as_mut() {
                facts.header = token_steps::jwt_part(remade.expose(), 0).unwrap_or_default();
                facts.claims = token_steps::jwt_part(remade.expose(), 1).unwrap_or_default();
            }
            state.last_assertion = Some(remade);
        }
        self.exchange_with(http, again, context).await
    }

    /// Registers every credential in a success answer with the redactor; returns the access token.
    fn remember_tokens(&self, exchange: &Exchange) -> Option<Secret> {
        if !exchange.response.is_success() {
            return None;
        }
        for member in crate::protocol::exchange::SENSITIVE_MEMBERS {
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
        for check in resolve_expected(expect) {
            outcomes.push(self.outcome(suite, check, (check.evaluate)(exchange)));
        }
        if let Some(missing) = prerequisite_missing(&outcomes) {
            outcomes.push(self.scrub_outcome(missing));
        }
        if let Some(nothing) = nothing_checked(&outcomes) {
            outcomes.push(self.scrub_outcome(nothing));
        }
        outcomes
    }

    fn expectation(&self, id: &str, summary: &str, verdict: Verdict, suite: &Suite) -> CheckOutcome {
        let mut outcome = outcome_from(id, Severity::Must, None, "scenario expectation", "", summary, verdict);
        outcome.rule = format!("scenario {}", suite.display_path());
        self.scrub_outcome(outcome)
    }

    fn outcome(&self, suite: &Suite, check: &CheckDef, verdict: Verdict) -> CheckOutcome {
        let required_because = suite.required.iter().find(|(id, _)| id.name == check.id).map(|(_, why)| why.clone());
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

impl Runner {
    /// Tells the progress display that a step waits, and for how long at most.
    fn announce_wait(&self, what: &str, up_to: std::time::Duration) {
        if let Some(progress) = &self.options.progress {
            (progress.waiting)(&format!("{what}: up to {:.0} s left", up_to.as_secs_f64()));
        }
    }
}

/// The checks a step expects, in the order written, each once (bundles expanded). Unknown names
/// were refused by [`preflight`] before any traffic.
fn resolve_expected(expect: &Expectation) -> Vec<&'static CheckDef> {
    let mut out: Vec<&'static CheckDef> = Vec::new();
    for name in &expect.checks {
        for check in crate::checks::resolve(&name.name).unwrap_or_default() {
            if !out.iter().any(|c| c.id == check.id) {
                out.push(check);
            }
        }
    }
    out
}

/// A case the run was stopped before (Ctrl-C).
fn not_run(case: &Case) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        outcome: CaseOutcome::Skipped,
        duration: Default::default(),
        reason: Some("not run: the run was interrupted (Ctrl-C)".into()),
        steps: Vec::new(),
        timeline: None,
    }
}

/// Checks blocked by a missing document, with no failure of the step naming why: the missing
/// prerequisite is the step's one failure (not one failure per check that needed it).
fn prerequisite_missing(outcomes: &[CheckOutcome]) -> Option<CheckOutcome> {
    let blocked = outcomes.iter().find(|o| o.verdict == VerdictKind::Blocked)?;
    if outcomes.iter().any(|o| o.verdict == VerdictKind::Fail) {
        return None;
    }
    let count = outcomes.iter().filter(|o| o.verdict == VerdictKind::Blocked).count();
    Some(outcome_from(
        "harness.prerequisite",
        Severity::Must,
        None,
        "harness",
        "",
        "what the step's checks judge (a metadata document, a bound token) is there",
        Verdict::fail(
            "what the expected checks judge",
            format!(
                "{} ({} blocked by it)",
                blocked.note.clone().unwrap_or_default(),
                crate::support::text::count(count, "check")
            ),
        ),
    ))
}

/// A step whose expected checks all found they did not apply checked nothing: it fails, and says
/// why each did not apply — a verdict is earned, never the default.
fn nothing_checked(outcomes: &[CheckOutcome]) -> Option<CheckOutcome> {
    if outcomes.is_empty() || outcomes.iter().any(|o| o.verdict != VerdictKind::NotApplicable) {
        return None;
    }
    let reasons: Vec<String> =
        outcomes.iter().map(|o| format!("{}: {}", o.id, o.note.as_deref().unwrap_or("not applicable"))).collect();
    Some(outcome_from(
        "harness.nothing-checked",
        Severity::Must,
        None,
        "harness",
        "",
        "at least one expected check applies to the answer",
        Verdict::fail(
            "an answer at least one expected check can judge",
            format!("nothing was checked — {}", reasons.join("; ")),
        ),
    ))
}

/// The signing algorithms a server advertises for client assertions: from its OpenID metadata,
/// else from its SMART configuration; `None` when it publishes neither list.
async fn signing_algs(http: &HttpClient, target: &Target, endpoints: &Endpoints) -> Option<Vec<String>> {
    const MEMBER: &str = "token_endpoint_auth_signing_alg_values_supported";
    let list = |doc: &serde_json::Map<String, serde_json::Value>| {
        doc.get(MEMBER)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    };
    if let Some(found) = endpoints.metadata.as_ref().and_then(list) {
        return Some(found);
    }
    let (request, _) = flows::discovery::build(&target.issuer, "/.well-known/smart-configuration");
    let response = http.send(&request).await.ok().filter(|r| r.status == 200)?;
    response.json_object().and_then(list)
}
