//! The `ciba` and `poll` steps: a backchannel authentication request (optionally played through
//! the target's approval hook), then the model poller, with the id_token checked against the
//! server's keys.

use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::{CaseState, Runner, StepFailure, precondition};
use crate::checks::ciba::thumbprint;
use crate::model::target::{Client, Target};
use crate::model::{AssertionSpec, AuthChoice, CibaAudience, CibaSpec, Expectation, PollSpec, Suite};
use crate::protocol::auth::Credentials;
use crate::protocol::exchange::PollRecord;
use crate::protocol::exchange::{CertificateFacts, CibaFacts};
use crate::protocol::flows::ciba::{self, BackchannelParams, Pace, SystemClock};
use crate::protocol::http::{HttpClient, Request};
use crate::results::StepResult;
use crate::support::secret::Secret;

/// Where CIBA happens, from the target's CIBA metadata document.
#[derive(Debug, Clone)]
pub struct CibaEndpoints {
    pub issuer: String,
    pub backchannel: Url,
    pub token: Url,
    pub jwks_uri: Option<Url>,
    /// RFC 8705 §5 aliases of the two, for requests that carry the client's certificate.
    pub mtls_backchannel: Option<Url>,
    pub mtls_token: Option<Url>,
}

impl CibaEndpoints {
    pub fn backchannel_for(&self, mtls: bool) -> &Url {
        self.mtls_backchannel.as_ref().filter(|_| mtls).unwrap_or(&self.backchannel)
    }

    pub fn token_for(&self, mtls: bool) -> &Url {
        self.mtls_token.as_ref().filter(|_| mtls).unwrap_or(&self.token)
    }
}

/// A backchannel request the server accepted, as later steps of the case need it.
#[derive(Debug, Clone)]
pub struct CibaRequest {
    pub auth_req_id: Secret,
    pub interval: Option<Duration>,
    pub expires_in: Duration,
    /// The target client name that made the request.
    pub client: String,
    pub accepted_at: Instant,
    /// A poll of this case already got tokens for it.
    pub exchanged: bool,
}

/// Reads the CIBA metadata (`{issuer}{ciba.discovery}`), with the endpoints the target names
/// over what it says; `None` when neither gives both endpoints.
pub async fn discover(http: &HttpClient, target: &Target) -> Option<CibaEndpoints> {
    let (request, _) = crate::protocol::flows::discovery::build(&target.issuer, &target.ciba.discovery_path);
    let response = http.send(&request).await.ok().filter(|r| r.status == 200);
    let doc = response.as_ref().and_then(|r| r.json_object());
    let url = |m: &str| doc.as_ref().and_then(|d| d.get(m)).and_then(Value::as_str).and_then(|s| Url::parse(s).ok());
    // An endpoint the target names by hand is used as named, certificate or not.
    let alias = |set_by_hand: &Option<Url>, member: &str| {
        set_by_hand.is_none().then(|| crate::protocol::flows::discovery::mtls_alias(doc, member)).flatten()
    };
    Some(CibaEndpoints {
        mtls_backchannel: alias(&target.ciba.backchannel_endpoint, "backchannel_authentication_endpoint"),
        mtls_token: alias(&target.ciba.token_endpoint, "token_endpoint"),
        issuer: doc
            .as_ref()
            .and_then(|d| d.get("issuer"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| target.issuer.to_string()),
        backchannel: target.ciba.backchannel_endpoint.clone().or_else(|| url("backchannel_authentication_endpoint"))?,
        token: target.ciba.token_endpoint.clone().or_else(|| url("token_endpoint"))?,
        jwks_uri: target.ciba.jwks_uri.clone().or_else(|| url("jwks_uri")),
    })
}

/// The certificate a request of `client` carries, if `sent`.
pub(super) fn certificate_facts(client: &Client, sent: bool) -> CertificateFacts {
    let identity = client.identity.as_ref().filter(|_| sent);
    CertificateFacts {
        presented: identity.is_some(),
        subject_cn: identity.and_then(|i| i.subject_cn.clone()),
        thumbprint: identity.map(|i| thumbprint(&i.cert_sha256)),
        bound_tokens: client.bound_tokens,
    }
}

fn seconds(body: &serde_json::Map<String, Value>, member: &str) -> Option<Duration> {
    body.get(member).and_then(Value::as_u64).map(Duration::from_secs)
}

impl Runner {
    /// A client assertion for a CIBA request (`None` unless the client uses private_key_jwt).
    pub(super) fn ciba_assertion(
        &self,
        client: &Client,
        aud: &str,
        state: &mut CaseState,
    ) -> Result<Option<Secret>, Box<crate::results::CheckOutcome>> {
        let mut spec = AssertionSpec::default();
        spec.mutation.claims.insert("aud".into(), Value::String(aud.to_string()));
        match self.client_assertion(client, AuthChoice::from(client.auth), &spec, None, state) {
            Ok(signed) => Ok(signed.map(|(a, _)| a)),
            Err(StepFailure::Precondition(p)) => Err(p),
            Err(StepFailure::Transport(e)) => Err(precondition(e.to_string())),
            Err(StepFailure::Skip(reason)) => Err(precondition(reason)),
        }
    }

    pub(super) fn ciba_endpoints(&self) -> Result<&CibaEndpoints, Box<crate::results::CheckOutcome>> {
        self.ciba.as_ref().ok_or_else(|| {
            precondition(format!(
                "the target publishes no CIBA metadata at {}{} (set `ciba.discovery` in the target)",
                self.target.issuer.as_str().trim_end_matches('/'),
                self.target.ciba.discovery_path
            ))
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_ciba(
        &self,
        suite: &Suite,
        expect: &Expectation,
        name: &str,
        client: &Client,
        spec: &CibaSpec,
        state: &mut CaseState,
        mut result: StepResult,
    ) -> StepResult {
        let endpoints = match self.ciba_endpoints() {
            Ok(e) => e.clone(),
            Err(p) => {
                result.checks.push(*p);
                return result;
            }
        };
        let role = spec.user.as_ref().map(|n| n.name.as_str()).unwrap_or("approves");
        let Some(login_hint) = self.target.ciba.users.get(role) else {
            result.checks.push(*precondition(format!("the target's `ciba.users` has no `{role}` user")));
            return result;
        };
        let params = BackchannelParams {
            scope: Some(self.target.resolve_scope(&spec.scope, Some(client))),
            acr_values: Some(spec.acr_values.clone()),
            binding_message: Some(spec.binding_message.clone()),
            login_hint: Some(login_hint.clone()),
            // Any second hint makes the request invalid (CIBA §7.1); its content does not matter.
            id_token_hint: spec.two_hints.then(|| "oauth-harness.second-hint.placeholder".to_string()),
            channel: Some(spec.channel.clone()),
            requested_expiry: spec.requested_expiry.map(|e| e.to_string()),
        };
        // The request carries the client's certificate, if it has one, unless the case withholds it.
        let mtls = client.identity.is_some() && !spec.without_certificate;
        let aud = match spec.assertion_aud {
            CibaAudience::Issuer => endpoints.issuer.clone(),
            CibaAudience::TokenEndpoint => endpoints.token_for(mtls).to_string(),
            CibaAudience::BackchannelEndpoint => endpoints.backchannel_for(mtls).to_string(),
        };
        let assertion = match self.ciba_assertion(client, &aud, state) {
            Ok(a) => a,
            Err(failure) => {
                result.checks.push(*failure);
                return result;
            }
        };
        let choice = AuthChoice::from(client.auth);
        let creds =
            Credentials { client_id: &client.client_id, secret: client.secret.as_ref(), assertion: assertion.as_ref() };
        let (request, mut context) =
            ciba::backchannel_request(endpoints.backchannel_for(mtls), &params, choice, &creds);
        context.client_id = Some(client.client_id.clone());
        context.assertion_audience = assertion.as_ref().map(|_| aud.clone());
        context.deviations.unknown_user = role == "unknown";
        context.certificate = Some(certificate_facts(client, !spec.without_certificate));
        let http = if spec.without_certificate { &self.http } else { self.http_for(name) };
        let exchange = match self.exchange_with(http, request, context).await {
            Ok(x) => x,
            Err(e) => {
                result.error = Some(self.redactor.scrub(&e.to_string()));
                return result;
            }
        };
        let body = exchange.response.json_object().filter(|_| exchange.response.is_success());
        if let Some(id) = body.and_then(|b| b.get("auth_req_id")).and_then(Value::as_str) {
            self.redactor.register(id);
            let body = body.unwrap_or_else(|| unreachable!("checked above"));
            state.ciba = Some(CibaRequest {
                auth_req_id: Secret::new(id),
                interval: seconds(body, "interval"),
                expires_in: seconds(body, "expires_in").unwrap_or(Duration::from_secs(120)),
                client: name.to_string(),
                accepted_at: Instant::now(),
                exchanged: false,
            });
            if spec.approve_with_hook {
                if let Err(failure) = self.approve_with_hook(id, &mut result).await {
                    result.checks.push(*failure);
                    return result;
                }
            }
        }
        result.checks = self.evaluate(suite, expect, &exchange);
        result.exchange = Some(self.view(&exchange));
        result
    }

    /// Plays the user: the target's test-only approval call for this auth_req_id.
    async fn approve_with_hook(
        &self,
        auth_req_id: &str,
        result: &mut StepResult,
    ) -> Result<(), Box<crate::results::CheckOutcome>> {
        let (method, template) = self
            .target
            .ciba
            .approval_hook
            .clone()
            .ok_or_else(|| precondition("the target has no `ciba.approval_hook` to play the user".into()))?;
        let url = Url::parse(&template.replace("{auth_req_id}", auth_req_id))
            .map_err(|e| precondition(format!("the approval hook is not a URL: {e}")))?;
        let exchange = self
            .exchange(Request::new(method, url), Default::default())
            .await
            .map_err(|e| precondition(format!("the approval hook failed: {e}")))?;
        result.setup.push(self.view(&exchange));
        if !exchange.response.is_success() {
            return Err(precondition(format!("the approval hook answered {}", exchange.response.status)));
        }
        Ok(())
    }

    /// The `approve` step: the case's user approves through the target's hook.
    pub(super) async fn run_approve(&self, state: &mut CaseState, mut result: StepResult) -> StepResult {
        let Some(request) = state.ciba.clone() else {
            result.checks.push(*precondition("no earlier ciba step of this case was accepted".into()));
            return result;
        };
        if let Err(failure) = self.approve_with_hook(request.auth_req_id.expose(), &mut result).await {
            result.checks.push(*failure);
        } else {
            result.note = Some("approved through the target's approval hook".into());
        }
        result
    }

    pub(super) async fn run_poll(
        &self,
        suite: &Suite,
        expect: &Expectation,
        spec: &PollSpec,
        state: &mut CaseState,
        mut result: StepResult,
    ) -> StepResult {
        let (endpoints, request) = match (self.ciba_endpoints(), state.ciba.clone()) {
            (Ok(e), Some(r)) => (e.clone(), r),
            (Err(p), _) => {
                result.checks.push(*p);
                return result;
            }
            (_, None) => {
                result.checks.push(*precondition("no earlier ciba step of this case was accepted".into()));
                return result;
            }
        };
        let poller = spec.client.as_ref().map(|n| n.name.clone()).unwrap_or(request.client.clone());
        let Some(client) = self.target.clients.get(&poller) else {
            result.checks.push(*precondition(format!("the target has no client `{poller}`")));
            return result;
        };
        let http = self.http_for(&poller);
        let choice = AuthChoice::from(client.auth);
        let mtls = client.identity.is_some();
        let token_endpoint = endpoints.token_for(mtls).to_string();
        let send = || {
            // A fresh assertion for every poll (each jti is used once), for the token endpoint.
            let mut scratch = CaseState::default();
            let assertion = self.ciba_assertion(client, &token_endpoint, &mut scratch).ok().flatten();
            let creds = Credentials {
                client_id: &client.client_id,
                secret: client.secret.as_ref(),
                assertion: assertion.as_ref(),
            };
            let (req, mut ctx) = ciba::token_request(endpoints.token_for(mtls), &request.auth_req_id, choice, &creds);
            ctx.client_id = Some(client.client_id.clone());
            ctx.certificate = Some(certificate_facts(client, true));
            Box::pin(self.exchange_with(http, req, ctx))
                as std::pin::Pin<
                    Box<
                        dyn std::future::Future<
                                Output = Result<
                                    crate::protocol::exchange::Exchange,
                                    crate::protocol::http::TransportError,
                                >,
                            > + Send
                            + '_,
                    >,
                >
        };
        // Poll times count from the backchannel answer, as the server counts the request's life;
        // the poller counts from its own start.
        let answer_to_start = request.accepted_at.elapsed().as_millis() as u64;
        let outcome = if spec.once {
            let started = Instant::now();
            let interval = request.interval.unwrap_or(ciba::DEFAULT_INTERVAL);
            tokio::time::sleep(interval).await;
            send().await.map(|x| {
                let record = PollRecord {
                    at_ms: started.elapsed().as_millis() as u64,
                    status: x.response.status,
                    error: x.response.json_str("error").map(str::to_owned),
                    waited_ms: interval.as_millis() as u64,
                    interval_ms: interval.as_millis() as u64,
                };
                ciba::PollOutcome { polls: vec![record], last: Some(x) }
            })
        } else {
            let remaining = request.expires_in.saturating_sub(request.accepted_at.elapsed());
            self.announce_wait("CIBA: waiting for the professional", remaining);
            let pace = if spec.too_fast { Pace::TooFast } else { Pace::Honour };
            ciba::poll(&SystemClock::default(), request.interval, remaining, pace, send).await
        };
        let mut outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                result.error = Some(self.redactor.scrub(&e.to_string()));
                return result;
            }
        };
        for p in outcome.polls.iter_mut() {
            p.at_ms += answer_to_start;
        }
        let Some(mut exchange) = outcome.last else {
            result.checks.push(*precondition("the request expired locally before any answer".into()));
            return result;
        };
        self.remember_tokens(&exchange);
        let id_token =
            exchange.response.json_str("id_token").filter(|_| exchange.response.is_success()).map(str::to_owned);
        // No keys to verify with is no verdict on the signature (the check is blocked), not a
        // broken signature.
        let id_token_signature = match (id_token, &endpoints.jwks_uri) {
            (Some(t), Some(jwks_uri)) => Some(self.verify_with_jwks(jwks_uri, &t).await),
            _ => None,
        };
        exchange.context.ciba = Some(CibaFacts {
            polls: outcome.polls,
            client_id: client.client_id.clone(),
            issuer: endpoints.issuer.clone(),
            auth_req_id: request.auth_req_id.expose().to_string(),
            id_token_signature,
            requested_by: request.client.clone(),
            polled_by: poller.clone(),
            already_exchanged: request.exchanged,
            expires_in_ms: request.expires_in.as_millis() as u64,
        });
        if exchange.response.is_success() {
            if let Some(r) = state.ciba.as_mut() {
                r.exchanged = true;
            }
            // The tokens serve the case's later steps (a resource call, an introspection, an
            // exchange).
            state.id_token = exchange.response.json_str("id_token").map(Secret::new);
            if let Some(token) = self.remember(state, &poller, client, &exchange) {
                state.ciba_token = Some((token, state.last_facts.clone(), poller.clone()));
            }
        }
        result.note = exchange.context.ciba.as_ref().map(|c| format!("{} poll(s)", c.polls.len()));
        result.checks = self.evaluate(suite, expect, &exchange);
        result.exchange = Some(self.view(&exchange));
        result
    }
}
