//! The protected resource: RFC 6750 §2.1, §3, §3.1, and certificate-bound tokens (RFC 8705 §3).

use super::wire::{auth_scheme, parse_challenge};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::exchange::{AuthUsed, Exchange};

const SECTION_3: &str = "https://www.rfc-editor.org/rfc/rfc6750#section-3";
const SECTION_3_1: &str = "https://www.rfc-editor.org/rfc/rfc6750#section-3.1";
const RFC8705_3: &str = "https://www.rfc-editor.org/rfc/rfc8705#section-3";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc6750.2.1.valid-token-accepted",
        severity: Severity::Must,
        rule: "RFC 6750 §2.1",
        url: "https://www.rfc-editor.org/rfc/rfc6750#section-2.1",
        summary: "a valid bearer token with the needed scope is accepted (2xx)",
        evaluate: accepted,
    },
    CheckDef {
        id: "rfc6750.3.no-token",
        severity: Severity::Must,
        rule: "RFC 6750 §3",
        url: SECTION_3,
        summary: "a request without a token gets 401 and `WWW-Authenticate: Bearer`",
        evaluate: no_token,
    },
    CheckDef {
        id: "rfc6750.3.1.no-error-without-token",
        severity: Severity::Should,
        rule: "RFC 6750 §3.1",
        url: SECTION_3_1,
        summary: "the challenge to a request without a token carries no error code",
        evaluate: no_error_code_without_token,
    },
    CheckDef {
        id: "rfc6750.3.1.invalid-token",
        severity: Severity::Must,
        rule: "RFC 6750 §3.1",
        url: SECTION_3_1,
        summary: "an invalid, expired or revoked token gets 401 with `error=\"invalid_token\"`",
        evaluate: |x| challenge_with(x, 401, "invalid_token"),
    },
    CheckDef {
        id: "rfc8705.3.resource-without-certificate",
        severity: Severity::Must,
        rule: "RFC 8705 §3",
        url: RFC8705_3,
        summary: "the resource refuses a certificate-bound token presented without a client certificate (401 invalid_token)",
        evaluate: |x| {
            let Some(_) = x.context.subject.as_ref().and_then(|s| s.cnf.clone()) else { return unbound() };
            let presented = x.context.certificate.as_ref().is_some_and(|c| c.presented);
            judges(!presented, "presents a certificate-bound token without a certificate", || {
                "presented a certificate".into()
            })
            .unwrap_or_else(|| challenge_with(x, 401, "invalid_token"))
        },
    },
    CheckDef {
        id: "rfc8705.3.resource-other-certificate",
        severity: Severity::Must,
        rule: "RFC 8705 §3",
        url: RFC8705_3,
        summary: "the resource refuses a certificate-bound token presented with another certificate (401 invalid_token)",
        evaluate: |x| {
            let Some(bound) = x.context.subject.as_ref().and_then(|s| s.cnf.clone()) else { return unbound() };
            let presented = x.context.certificate.as_ref().and_then(|c| c.thumbprint.clone());
            let other = presented.as_ref().is_some_and(|p| *p != bound);
            judges(other, "presents a certificate-bound token with another certificate", || match &presented {
                None => "presented no certificate".into(),
                Some(_) => "presented the certificate the token is bound to".into(),
            })
            .unwrap_or_else(|| challenge_with(x, 401, "invalid_token"))
        },
    },
    CheckDef {
        id: "rfc9068.4.id-token-refused",
        severity: Severity::Must,
        rule: "RFC 9068 §4, RFC 8725 §2.8",
        url: "https://www.rfc-editor.org/rfc/rfc9068#section-4",
        summary: "the resource refuses an id_token presented as an access token (401 invalid_token)",
        evaluate: |x| {
            judges(x.context.deviations.id_token_as_access_token, "presents an id_token as the access token", || {
                "presented an access token".into()
            })
            .unwrap_or_else(|| challenge_with(x, 401, "invalid_token"))
        },
    },
    CheckDef {
        id: "rfc6750.3.1.insufficient-scope",
        severity: Severity::Must,
        rule: "RFC 6750 §3.1",
        url: SECTION_3_1,
        summary: "a token lacking the needed scope gets 403 with `error=\"insufficient_scope\"`",
        evaluate: |x| challenge_with(x, 403, "insufficient_scope"),
    },
];

/// The binding checks need a token known to be bound: its `cnf` (from the JWT, or from an
/// introspection before the call). Without one they are blocked by `rfc8705.3.cnf`'s finding.
fn unbound() -> Verdict {
    Verdict::blocked(
        "the token is not known to be certificate-bound (no cnf in the token, nor in an introspection of it)",
    )
}

/// The request presents a bearer token.
fn bearer(x: &Exchange) -> Option<Verdict> {
    let scheme = auth_scheme(x);
    judges(scheme.as_deref() == Some("Bearer"), "presents a bearer token", || match scheme {
        Some(s) => format!("sent `Authorization: {s} …`"),
        None => "sent no token".into(),
    })
}

fn accepted(x: &Exchange) -> Verdict {
    if let Some(v) = bearer(x) {
        return v;
    }
    if !x.response.is_success() {
        if let Some(v) = super::introspection::lapsed(x) {
            return v;
        }
    }
    Verdict::from_bool(x.response.is_success(), "a 2xx answer", || x.response.summary())
}

fn bearer_challenge(x: &Exchange) -> Option<super::wire::Challenge> {
    x.response.header("www-authenticate").and_then(parse_challenge).filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
}

fn seen_challenge(x: &Exchange) -> String {
    format!(
        "{}, WWW-Authenticate: {}",
        x.response.summary(),
        x.response.header("www-authenticate").unwrap_or("(absent)")
    )
}

fn no_token(x: &Exchange) -> Verdict {
    if x.context.auth != Some(AuthUsed::None) {
        return Verdict::na("the request carried a token");
    }
    let ok = x.response.status == 401 && bearer_challenge(x).is_some();
    Verdict::from_bool(ok, "status 401 with WWW-Authenticate: Bearer", || seen_challenge(x))
}

fn no_error_code_without_token(x: &Exchange) -> Verdict {
    if x.context.auth != Some(AuthUsed::None) {
        return Verdict::na("the request carried a token");
    }
    let Some(challenge) = bearer_challenge(x) else {
        return Verdict::na("no Bearer challenge (see rfc6750.3.no-token)");
    };
    let code = challenge.param("error").map(str::to_owned);
    Verdict::from_bool(code.is_none(), "a Bearer challenge without error", || {
        format!("error=\"{}\"", code.unwrap_or_default())
    })
}

fn challenge_with(x: &Exchange, status: u16, code: &str) -> Verdict {
    if let Some(v) = bearer(x) {
        return v;
    }
    let error = bearer_challenge(x).and_then(|c| c.param("error").map(str::to_owned));
    let ok = x.response.status == status && error.as_deref() == Some(code);
    Verdict::from_bool(ok, format!("status {status} with WWW-Authenticate: Bearer error=\"{code}\""), || {
        seen_challenge(x)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::exchange::{RecordedRequest, RecordedResponse, RequestContext, TokenFacts};
    use std::time::Duration;

    /// A bearer call answered `status`, with a token received now that lives `expires_in`.
    fn call(status: u16, expires_in: i64) -> Exchange {
        let received_at = crate::support::clock::unix_now();
        let subject = TokenFacts { expires_in: Some(expires_in), received_at, ..TokenFacts::default() };
        let headers = vec![("authorization".into(), "Bearer t".into())];
        Exchange {
            request: RecordedRequest { method: "GET".into(), url: "x".into(), headers, body: None },
            response: RecordedResponse::new(status, vec![], vec![], false, Duration::ZERO),
            context: RequestContext { subject: Some(subject), ..RequestContext::default() },
        }
    }

    #[test]
    fn a_refused_live_token_fails_and_one_at_its_expiry_is_not_judged() {
        assert_eq!(accepted(&call(200, 3600)), Verdict::Pass);
        assert!(matches!(accepted(&call(401, 3600)), Verdict::Fail { .. }));
        // Refused as the token ran out: the server may have counted it expired.
        assert!(matches!(accepted(&call(401, 1)), Verdict::NotApplicable(_)));
        assert!(matches!(accepted(&call(401, -5)), Verdict::NotApplicable(_)));
        // Accepted at its last second is still a pass.
        assert_eq!(accepted(&call(200, 0)), Verdict::Pass);
    }

    #[test]
    fn a_token_whose_answer_came_late_is_judged_from_when_it_was_asked_for() {
        // Asked for 4 s before its answer came, living 5 s: the server may have issued it then,
        // so it may rightly be dead already although the answer is only a second old.
        let mut late = call(401, 5);
        let subject = late.context.subject.as_mut().unwrap();
        subject.sent_at = Some(subject.received_at - 4);
        assert!(matches!(accepted(&late), Verdict::NotApplicable(_)), "{:?}", accepted(&late));
        // Asked for and answered in the same second: a refusal with 5 s left is the server's.
        let mut prompt = call(401, 5);
        let subject = prompt.context.subject.as_mut().unwrap();
        subject.sent_at = Some(subject.received_at);
        assert!(matches!(accepted(&prompt), Verdict::Fail { .. }));
    }
}
