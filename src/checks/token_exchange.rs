//! RFC 8693 token exchange, as the ANS profiles it for APIs protected by Pro Santé Connect: a
//! good exchange gets an access token bound to the exchanging client's certificate; an expired
//! subject token, a wrong `subject_token_type` and another client's token are refused with
//! invalid_request (§2.2.2).

use serde_json::Value;

use super::ciba::success_body;
use super::token_errors::refused_with;
use super::wire::jwt_claims;
use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::{Exchange, TokenExchangeFacts};

const SECTION_2_2_1: &str = "https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1";
const SECTION_2_2_2: &str = "https://www.rfc-editor.org/rfc/rfc8693#section-2.2.2";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc8693.2.2.1.response",
        severity: Severity::Must,
        rule: "RFC 8693 §2.2.1",
        url: SECTION_2_2_1,
        summary: "a valid exchange gets access_token, issued_token_type (a token type URI) and token_type",
        evaluate: |x| {
            let body = match good_exchange(x).and_then(|_| success_body(x)) {
                Ok(b) => b,
                Err(v) => return v,
            };
            let text = |m: &str| body.get(m).and_then(Value::as_str).filter(|s| !s.is_empty());
            let missing: Vec<&str> =
                ["access_token", "issued_token_type", "token_type"].into_iter().filter(|m| text(m).is_none()).collect();
            if !missing.is_empty() {
                return Verdict::fail(
                    "access_token, issued_token_type and token_type",
                    format!("no {}", missing.join(", ")),
                );
            }
            let issued = text("issued_token_type").unwrap_or_default();
            Verdict::from_bool(issued.starts_with("urn:"), "issued_token_type a token type URI (RFC 8693 §3)", || {
                format!("issued_token_type {issued}")
            })
        },
    },
    CheckDef {
        id: "rfc8693.2.2.1.certificate-bound",
        severity: Severity::Must,
        rule: "RFC 8693 §2.2.1, RFC 8705 §3.1 (ANS, API Pro Santé Connectée)",
        url: "https://www.rfc-editor.org/rfc/rfc8705#section-3.1",
        summary: "the exchanged access token is bound to the exchanging client's certificate (cnf.x5t#S256)",
        evaluate: |x| {
            let facts = match good_exchange(x) {
                Ok(f) => f,
                Err(v) => return v,
            };
            let body = match success_body(x) {
                Ok(b) => b,
                Err(_) => return Verdict::na(format!("no token (status {})", x.response.status)),
            };
            let Some(expected) = &facts.thumbprint else {
                return Verdict::na("the exchanging client presented no certificate");
            };
            let Some(claims) = body.get("access_token").and_then(Value::as_str).and_then(jwt_claims) else {
                return Verdict::na("the access token is opaque, not a JWT (introspect it to see cnf)");
            };
            let seen = claims.get("cnf").and_then(|c| c.get("x5t#S256")).and_then(Value::as_str);
            Verdict::from_bool(seen == Some(expected.as_str()), format!("cnf.x5t#S256 {expected}"), || {
                format!("cnf.x5t#S256 {}", seen.unwrap_or("(absent)"))
            })
        },
    },
    CheckDef {
        id: "rfc8693.2.2.2.expired-subject-token",
        severity: Severity::Must,
        rule: "RFC 8693 §2.2.2",
        url: SECTION_2_2_2,
        summary: "an expired subject token is refused with invalid_request",
        evaluate: |x| match facts(x) {
            Some(f) if f.subject_expired => refused_with(x, "invalid_request"),
            Some(_) => Verdict::na("the subject token was live"),
            None => Verdict::na("not a token exchange"),
        },
    },
    CheckDef {
        id: "rfc8693.2.2.2.subject-token-type",
        severity: Severity::Must,
        rule: "RFC 8693 §2.1, §2.2.2",
        url: SECTION_2_2_2,
        summary: "a subject_token_type the token is not is refused with invalid_request",
        evaluate: |x| match facts(x) {
            Some(f) if f.wrong_type => refused_with(x, "invalid_request"),
            Some(_) => Verdict::na("subject_token_type named the token's type"),
            None => Verdict::na("not a token exchange"),
        },
    },
    CheckDef {
        id: "rfc8693.2.2.2.other-client",
        severity: Severity::Must,
        rule: "RFC 8693 §2.2.2, RFC 8705 §3",
        url: SECTION_2_2_2,
        summary: "a subject token issued to another client (bound to its certificate) is refused with invalid_request",
        evaluate: |x| match facts(x) {
            Some(f) if f.issued_to != f.exchanged_by => refused_with(x, "invalid_request"),
            Some(_) => Verdict::na("the client the token was issued to exchanged it"),
            None => Verdict::na("not a token exchange"),
        },
    },
];

fn facts(x: &Exchange) -> Option<&TokenExchangeFacts> {
    x.context.token_exchange.as_ref()
}

/// The facts of an exchange that should succeed; not applicable to one meant to be refused.
fn good_exchange(x: &Exchange) -> Result<&TokenExchangeFacts, Verdict> {
    let f = facts(x).ok_or_else(|| Verdict::na("not a token exchange"))?;
    match f.deviation() {
        Some(why) => Err(Verdict::na(format!("the exchange was meant to be refused: {why}"))),
        None => Ok(f),
    }
}
