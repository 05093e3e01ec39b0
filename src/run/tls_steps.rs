//! The `tls` step: the token endpoint offered TLS 1.2 alone, then TLS 1.3 alone (a handshake that
//! ends in any HTTP answer is accepted). A plain-HTTP endpoint has no TLS to probe: the case is
//! skipped, saying so.

use super::{CaseState, Runner};
use crate::model::target::TlsMinimum;
use crate::model::{Expectation, Suite};
use crate::protocol::exchange::{Exchange, RequestContext, TlsFacts};
use crate::protocol::http::{HttpClient, Request, TlsSettings, TransportError};
use crate::results::StepResult;

/// What a report says the probe could not do.
const NOT_PROBED: &str = "TLS 1.0 and 1.1 not probed: rustls cannot offer them (RFC 8996 forbids both)";

impl Runner {
    pub(super) async fn run_tls_probe(
        &self,
        suite: &Suite,
        expect: &Expectation,
        state: &mut CaseState,
        mut result: StepResult,
    ) -> StepResult {
        let url = self.endpoints.token.clone();
        if url.scheme() != "https" {
            state.skip = Some(format!("the token endpoint {url} is plain HTTP: there is no TLS to probe"));
            return result;
        }
        let mut answers = Vec::new();
        let mut outcomes = Vec::new();
        for version in [reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_3] {
            let tls = TlsSettings { ca: self.target.ca.certs.clone(), identity: None, only: Some(version) };
            let request = Request::new(reqwest::Method::GET, url.clone());
            let sent = match HttpClient::with_tls(self.target.timeout, &tls) {
                Ok(client) => client.send(&request).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => {
                    outcomes.push(Ok(()));
                    answers.push(Exchange { request: request.record(), response, context: RequestContext::default() });
                }
                Err(TransportError::Tls { detail, .. }) => outcomes.push(Err(self.redactor.scrub(&detail))),
                Err(e) => {
                    result.error = Some(self.redactor.scrub(&e.to_string()));
                    return result;
                }
            }
        }
        let tls13 = outcomes.pop().unwrap_or(Ok(()));
        let tls12 = outcomes.pop().unwrap_or(Ok(()));
        let Some(mut exchange) = answers.pop() else {
            result.error = Some(format!(
                "no TLS handshake with {url} succeeded: TLS 1.2 {}, TLS 1.3 {}",
                tls12.err().unwrap_or_default(),
                tls13.err().unwrap_or_default()
            ));
            return result;
        };
        let said = |o: &Result<(), String>| if o.is_ok() { "accepted" } else { "refused" };
        result.note = Some(format!("TLS 1.2 {}, TLS 1.3 {}; {NOT_PROBED}", said(&tls12), said(&tls13)));
        exchange.context.tls =
            Some(TlsFacts { tls12, tls13, tls13_required: self.target.tls_minimum == TlsMinimum::Tls13 });
        result.checks = self.evaluate(suite, expect, &exchange);
        result.exchange = Some(self.view(&exchange));
        result
    }
}
