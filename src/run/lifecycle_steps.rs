//! Steps over a token's life: introspection, revocation, waiting for expiry.

use super::{CaseState, DEFAULT_INTROSPECTION_CLIENT, PreparedToken, Runner, StepFailure, precondition};
use crate::model::{AssertionSpec, AuthChoice, Client, IntrospectSpec, RevokeSpec, TokenRef, TokenSpec, WaitSpec};
use crate::protocol::exchange::{AuthUsed, TokenFacts};
use crate::protocol::flows;
use crate::results::StepResult;
use crate::support::secret::Secret;

impl Runner {
    pub(super) fn subject_token(
        &self,
        which: TokenRef,
        state: &CaseState,
    ) -> Result<(Secret, Option<TokenFacts>), StepFailure> {
        match which {
            TokenRef::Garbage => Ok((Secret::new(flows::resource::GARBAGE_TOKEN), None)),
            TokenRef::Last => state.last_token.clone().map(|t| (t, state.last_facts.clone())).ok_or_else(|| {
                StepFailure::Precondition(precondition("no earlier step of this case obtained a token".into()))
            }),
        }
    }

    pub(super) async fn prepare_introspection(
        &self,
        spec: &IntrospectSpec,
        state: &mut CaseState,
        result: &mut StepResult,
    ) -> Result<PreparedToken, StepFailure> {
        let name = spec.client.as_ref().map(|n| n.name.as_str()).unwrap_or(DEFAULT_INTROSPECTION_CLIENT);
        let caller = self.target.clients.get(name).ok_or_else(|| {
            StepFailure::Precondition(precondition(format!("the target has no client `{name}` to introspect with")))
        })?;
        // Sent through the caller's own connection (`via`): with its certificate, if it has one.
        let endpoint = self.endpoints.introspection_for(caller.identity.is_some()).cloned().ok_or_else(|| {
            StepFailure::Precondition(precondition("the target has no introspection endpoint".into()))
        })?;
        let (token, facts) = self.subject_token(spec.token, state)?;
        let auth = spec.auth.unwrap_or(AuthChoice::from(caller.auth));
        // Random, unrelated to the real secret (which must not reach a failed-login log).
        let wrong = Some(Secret::new(crate::protocol::auth::random_secret()));
        let (assertion, bearer) = if spec.bearer_token {
            (None, Some(self.caller_token(name, caller, result).await?))
        } else {
            (self.client_assertion(caller, auth, &AssertionSpec::default(), None, state)?.map(|(a, _)| a), None)
        };
        let flows_caller = flows::introspection::Caller {
            client: caller,
            auth,
            secret: if spec.wrong_secret { wrong.as_ref() } else { None },
            assertion: assertion.as_ref(),
            bearer: bearer.as_ref(),
        };
        let (request, mut context) = flows::introspection::build(
            &endpoint,
            &flows_caller,
            &token,
            spec.token_type_hint.as_deref(),
            facts,
            spec.jwt,
        );
        context.deviations.wrong_secret = spec.wrong_secret && context.auth.is_some_and(AuthUsed::sends_secret);
        context.by_bearer_token = spec.bearer_token;
        // RFC 9701 §5: a JWT answer names the server's issuer.
        context.expected_issuer = Some(self.target.issuer.to_string());
        context.certificate = Some(super::ciba_steps::certificate_facts(caller, true));
        Ok(PreparedToken { request, context, jku_path: None, via: Some(name.to_string()), dpop: None })
    }

    /// A token for the introspecting client itself, with its default scope (SMART 2.2: "an
    /// appropriately-scoped … bearer token"; which scope is the deployment's, in the target).
    async fn caller_token(&self, name: &str, caller: &Client, result: &mut StepResult) -> Result<Secret, StepFailure> {
        let mut scratch = CaseState::default();
        let exchange = self.setup_token(name, caller, &TokenSpec::default(), &mut scratch, result).await?;
        self.remember_tokens(&exchange).ok_or_else(|| {
            StepFailure::Precondition(precondition(format!(
                "the introspecting client `{name}` could not get a token of its own: {}",
                self.redactor.scrub(&exchange.response.summary())
            )))
        })
    }

    /// Revokes the case's last token as the client it was issued to (RFC 7009 §2.1).
    pub(super) fn prepare_revocation(
        &self,
        spec: &RevokeSpec,
        state: &mut CaseState,
    ) -> Result<PreparedToken, StepFailure> {
        let (token, facts) = self.subject_token(spec.token, state)?;
        let owner_name = state.last_client.clone();
        let owner = owner_name
            .as_ref()
            .and_then(|n| self.target.clients.get(n))
            .ok_or_else(|| StepFailure::Precondition(precondition("the token's client is not known".into())))?;
        // The owner authenticates as it did at the token endpoint (RFC 7009 §2.1): through its
        // own connection, with its certificate if it has one, at the mTLS alias then.
        let endpoint =
            self.endpoints.revocation_for(owner.identity.is_some()).cloned().ok_or_else(|| {
                StepFailure::Precondition(precondition("the target has no revocation endpoint".into()))
            })?;
        let auth = AuthChoice::from(owner.auth);
        let assertion = self.client_assertion(owner, auth, &AssertionSpec::default(), None, state)?.map(|(a, _)| a);
        let caller = flows::introspection::Caller {
            client: owner,
            auth,
            secret: None,
            assertion: assertion.as_ref(),
            bearer: None,
        };
        let (request, context) =
            flows::introspection::build(&endpoint, &caller, &token, spec.token_type_hint.as_deref(), facts, false);
        Ok(PreparedToken { request, context, jku_path: None, via: owner_name, dpop: None })
    }

    /// Sleeps until the case's last token has expired (plus skew), unless that is longer than the
    /// step allows: then the case is skipped with the reason.
    pub(super) async fn wait_for_expiry(&self, spec: &WaitSpec, state: &mut CaseState) -> Result<String, StepFailure> {
        // Every token of the case (a poll's, and what replaced it), so an exchange after the wait
        // trades an expired one.
        let ciba = state.ciba_token.as_ref().and_then(|(_, facts, _)| facts.as_ref()).and_then(TokenFacts::expires_at);
        let last = state.last_facts.as_ref().and_then(TokenFacts::expires_at);
        let expires_at = last.max(ciba).ok_or_else(|| {
            StepFailure::Precondition(precondition(
                "the case's token has neither exp nor expires_in to wait for".into(),
            ))
        })?;
        let now = crate::support::clock::unix_now_f64();
        let wait = (expires_at as f64 - now).max(0.0) + spec.skew.as_secs_f64();
        if wait > spec.max.as_secs_f64() {
            return Err(StepFailure::Skip(format!(
                "the token expires in {:.0} s, longer than this step waits ({}); configure a short-lived client for this suite",
                wait,
                humantime::format_duration(spec.max)
            )));
        }
        self.announce_wait("waiting for a token to expire", std::time::Duration::from_secs_f64(wait));
        tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
        Ok(format!("waited {wait:.1} s for the token to expire"))
    }
}
