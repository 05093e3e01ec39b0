//! Outcomes: how a verdict becomes a reported check, how checks become a case's outcome, and the
//! failures a step can end in before any check.

use crate::checks::{Severity, Verdict};
use crate::model::Client;
use crate::protocol::exchange::{Exchange, TokenFacts};
use crate::protocol::http::TransportError;
use crate::results::{CaseOutcome, CheckOutcome, StepResult, VerdictKind};
use crate::support::secret::Redactor;

pub(super) enum StepFailure {
    Transport(TransportError),
    Precondition(Box<CheckOutcome>),
    /// The case cannot run against this target; the reason is shown.
    Skip(String),
}

pub(super) fn no_token(redactor: &Redactor, exchange: &Exchange) -> StepFailure {
    StepFailure::Precondition(precondition(format!(
        "could not obtain a token for the resource call: {}",
        redactor.scrub(&exchange.response.summary())
    )))
}

/// What the harness knows of the token in a successful token answer.
pub(super) fn token_facts(client: &Client, exchange: &Exchange) -> Option<TokenFacts> {
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
        received_at: crate::support::clock::unix_now(),
        sent_at: Some((crate::support::clock::unix_now_f64() - exchange.response.elapsed.as_secs_f64()).floor() as i64),
        jwt_exp: claim("exp"),
        jwt_iat: claim("iat"),
        revoked: false,
        issued_with_cert: exchange.context.certificate.as_ref().and_then(|c| c.thumbprint.clone()),
        bound_tokens: client.bound_tokens,
        cnf: claims
            .as_ref()
            .and_then(|c| c.get("cnf"))
            .and_then(|c| c.get("x5t#S256"))
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        dpop_jkt: exchange
            .context
            .dpop
            .as_ref()
            .filter(|d| d.broken.is_none())
            .filter(|_| body.get("token_type").and_then(|t| t.as_str()).is_some_and(|t| t.eq_ignore_ascii_case("DPoP")))
            .map(|d| d.jkt.clone()),
        for_other_resource: exchange.context.for_other_resource,
    })
}

/// A step that could not be set up (no token to present): a failure of the case, named as such.
pub(super) fn precondition(reason: String) -> Box<CheckOutcome> {
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

pub fn outcome_from(
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
        Verdict::Blocked(why) => (VerdictKind::Blocked, None, None, Some(why)),
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
        known_reason: None,
    }
}

pub fn outcome_of(steps: &[StepResult]) -> CaseOutcome {
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
