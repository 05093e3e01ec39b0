//! The `token_exchange` step (RFC 8693): the case's access token traded at the target's exchange
//! endpoint, by the client it was issued to or, on purpose, by another one.

use super::ciba_steps::certificate_facts;
use super::{CaseState, Runner, precondition};
use crate::checks::ciba::thumbprint;
use crate::model::{AuthChoice, Expectation, SubjectTokenType, Suite, TokenExchangeSpec};
use crate::protocol::auth::Credentials;
use crate::protocol::exchange::{TokenExchangeFacts, TokenFacts};
use crate::protocol::flows::token_exchange;
use crate::results::StepResult;

impl Runner {
    pub(super) async fn run_token_exchange(
        &self,
        suite: &Suite,
        expect: &Expectation,
        spec: &TokenExchangeSpec,
        state: &mut CaseState,
        mut result: StepResult,
    ) -> StepResult {
        // The token a poll got (PSC's access token), else the case's last one.
        let latest =
            state.last_token.clone().zip(state.last_client.clone()).map(|(t, c)| (t, state.last_facts.clone(), c));
        let Some((subject, subject_facts, issued_to)) = state.ciba_token.clone().or(latest) else {
            result.checks.push(*precondition("no earlier step of this case got an access token to exchange".into()));
            return result;
        };
        let exchanged_by = spec.client.as_ref().map(|n| n.name.clone()).unwrap_or_else(|| issued_to.clone());
        let Some(client) = self.target.clients.get(&exchanged_by) else {
            result.checks.push(*precondition(format!("the target has no client `{exchanged_by}`")));
            return result;
        };
        // The target names the API's authorization server; else the one that issued the token
        // (at its mTLS alias for a client with a certificate, RFC 8705 §5).
        let endpoint = match &self.target.token_exchange.endpoint {
            Some(url) => url.clone(),
            None => match self.ciba_endpoints() {
                Ok(e) => e.token_for(client.identity.is_some()).clone(),
                Err(p) => {
                    result.checks.push(*p);
                    return result;
                }
            },
        };
        let assertion = match self.ciba_assertion(client, endpoint.as_str(), state) {
            Ok(a) => a,
            Err(failure) => {
                result.checks.push(*failure);
                return result;
            }
        };
        let creds =
            Credentials { client_id: &client.client_id, secret: client.secret.as_ref(), assertion: assertion.as_ref() };
        let (request, mut context) = token_exchange::build(
            &endpoint,
            &subject,
            spec.subject_token_type,
            self.target.token_exchange.audience.as_deref(),
            AuthChoice::from(client.auth),
            &creds,
        );
        let expires_at = subject_facts.as_ref().and_then(TokenFacts::expires_at);
        context.client_id = Some(client.client_id.clone());
        context.certificate = Some(certificate_facts(client, true));
        context.token_exchange = Some(TokenExchangeFacts {
            issued_to,
            exchanged_by: exchanged_by.clone(),
            subject_expired: expires_at.is_some_and(|at| at <= crate::support::clock::unix_now()),
            wrong_type: spec.subject_token_type != SubjectTokenType::AccessToken,
            thumbprint: client.identity.as_ref().map(|i| thumbprint(&i.cert_sha256)),
            subject: crate::checks::wire::jwt_claims(subject.expose())
                .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(str::to_owned)),
        });
        let exchange = match self.exchange_with(self.http_for(&exchanged_by), request, context).await {
            Ok(x) => x,
            Err(e) => {
                result.error = Some(self.redactor.scrub(&e.to_string()));
                return result;
            }
        };
        // The new token serves the case's later steps (a resource call with the certificate); one
        // a server should have refused does not replace the case's token.
        let meant_to_work = exchange.context.token_exchange.as_ref().is_some_and(|f| f.deviation().is_none());
        if exchange.response.is_success() && meant_to_work {
            self.remember(state, &exchanged_by, client, &exchange);
        } else {
            self.remember_tokens(&exchange);
        }
        result.checks = self.evaluate(suite, expect, &exchange);
        result.exchange = Some(self.view(&exchange));
        result
    }
}
