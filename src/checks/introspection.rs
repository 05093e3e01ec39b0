//! Introspection (RFC 7662, SMART @271–283), revocation (RFC 7009) and what every server must
//! agree on over a token's life: issued with `expires_in`, active until then, dead after.

use serde_json::{Map, Value};

use super::wire::{parse_challenge, scope_set};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::exchange::{AuthUsed, Exchange};

const RFC7662_2_1: &str = "https://www.rfc-editor.org/rfc/rfc7662#section-2.1";
const RFC7662_2_2: &str = "https://www.rfc-editor.org/rfc/rfc7662#section-2.2";
const SMART_INTROSPECTION: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/token-introspection.html";
/// Allowed disagreement between `exp` values, for rounding and clocks.
const EXP_TOLERANCE_SECS: i64 = 5;

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc7662.2.1.no-credentials-401",
        severity: Severity::Must,
        rule: "RFC 7662 §2.1, §2.3",
        url: RFC7662_2_1,
        summary: "an introspection call without client credentials gets 401",
        evaluate: |x| {
            judges(x.context.auth == Some(AuthUsed::None), "carries no client credentials", || {
                "carried the caller's credentials".into()
            })
            .unwrap_or_else(|| unauthorized(x))
        },
    },
    CheckDef {
        id: "rfc7662.2.1.wrong-credentials-401",
        severity: Severity::Must,
        rule: "RFC 7662 §2.1, §2.3",
        url: RFC7662_2_1,
        summary: "an introspection call with wrong client credentials gets 401",
        evaluate: |x| {
            judges(x.context.deviations.wrong_secret, "carries a wrong secret", || {
                "carried the caller's own secret".into()
            })
            .unwrap_or_else(|| unauthorized(x))
        },
    },
    CheckDef {
        id: "rfc7662.2.2.active",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2",
        url: RFC7662_2_2,
        summary: "a live token is introspected `active: true` (200, application/json)",
        evaluate: active,
    },
    CheckDef {
        id: "rfc7662.2.2.scope",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2, SMART @277",
        url: RFC7662_2_2,
        summary: "the introspected `scope` is the scope granted with the token",
        evaluate: scope_matches,
    },
    CheckDef {
        id: "rfc7662.2.2.client-id",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2, SMART @277",
        url: RFC7662_2_2,
        summary: "the introspected `client_id` is the client the token was issued to",
        evaluate: client_id_matches,
    },
    CheckDef {
        id: "smart.introspection.exp",
        severity: Severity::Must,
        rule: "SMART @278",
        url: SMART_INTROSPECTION,
        summary: "an active introspection answer carries `exp`",
        evaluate: exp_present,
    },
    CheckDef {
        id: "smart.introspection.bearer-auth",
        severity: Severity::Must,
        rule: "SMART 2.2 Token Introspection (Authorization to perform Token Introspection)",
        url: SMART_INTROSPECTION,
        summary: "a client allowed to introspect may authenticate with its own appropriately-scoped bearer token",
        evaluate: |x| {
            if !x.context.by_bearer_token {
                return Verdict::na("the caller authenticated with its credentials, not a bearer token");
            }
            match answer(x) {
                Err(v) => v,
                Ok(body) => {
                    Verdict::from_bool(body.get("active") == Some(&Value::Bool(true)), "200 with active: true", || {
                        x.response.summary()
                    })
                }
            }
        },
    },
    CheckDef {
        id: "rfc7662.2.2.exp-matches-jwt",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2, RFC 7519 §4.1.4",
        url: RFC7662_2_2,
        summary: "the introspected `exp` equals the JWT access token's own `exp` (± 5 s)",
        evaluate: exp_matches_jwt,
    },
    CheckDef {
        id: "rfc7662.2.2.exp-matches-expires-in",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2, RFC 6749 §5.1",
        url: RFC7662_2_2,
        summary: "the introspected `exp` equals issue time + `expires_in` (± 5 s)",
        evaluate: exp_matches_expires_in,
    },
    CheckDef {
        id: "rfc8705.3.2.introspection-cnf",
        severity: Severity::Must,
        rule: "RFC 8705 §3.2",
        url: "https://www.rfc-editor.org/rfc/rfc8705#section-3.2",
        summary: "introspecting a token issued over mTLS to a client registered for bound tokens gives cnf.x5t#S256 of its certificate",
        evaluate: |x| {
            let subject = x.context.subject.as_ref();
            let issued_with = subject.and_then(|s| s.issued_with_cert.clone());
            if issued_with.is_some() && !subject.is_some_and(|s| s.bound_tokens) {
                return Verdict::na(super::NOT_REGISTERED_FOR_BINDING);
            }
            judges(issued_with.is_some(), "introspects a token issued over mTLS", || {
                "introspected a token issued without a certificate".into()
            })
            .unwrap_or_else(|| {
                let expected = issued_with.unwrap_or_default();
                let seen = x
                    .response
                    .json_object()
                    .filter(|_| x.response.status == 200)
                    .and_then(|b| b.get("cnf"))
                    .and_then(|c| c.get("x5t#S256"))
                    .and_then(|t| t.as_str())
                    .map(str::to_owned);
                Verdict::from_bool(
                    seen.as_deref() == Some(expected.as_str()),
                    format!("cnf.x5t#S256 {expected}"),
                    || format!("cnf.x5t#S256 {} ({})", seen.unwrap_or_else(|| "(absent)".into()), x.response.summary()),
                )
            })
        },
    },
    CheckDef {
        id: "rfc7662.2.2.inactive",
        severity: Severity::Must,
        rule: "RFC 7662 §2.2",
        url: RFC7662_2_2,
        summary: "an unknown or garbage token is introspected `active: false` (200)",
        evaluate: inactive,
    },
    CheckDef {
        id: "rfc7662.2.2.inactive-only-active",
        severity: Severity::Should,
        rule: "RFC 7662 §2.2",
        url: RFC7662_2_2,
        summary: "an inactive answer carries no member besides `active`",
        evaluate: inactive_only_active,
    },
    CheckDef {
        id: "rfc7662.4.expired-inactive",
        severity: Severity::Must,
        rule: "RFC 7662 §4, RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc7662#section-4",
        summary: "a token past its `expires_in` is introspected `active: false`",
        evaluate: |x| expired_subject(x).unwrap_or_else(|| inactive(x)),
    },
    CheckDef {
        id: "rfc7009.2.2.revocation-200",
        severity: Severity::Must,
        rule: "RFC 7009 §2.2",
        url: "https://www.rfc-editor.org/rfc/rfc7009#section-2.2",
        summary: "a revocation request is answered 200, or 400 unsupported_token_type where the server does not revoke that type of token (§2.2.1)",
        evaluate: |x| {
            let declined = crate::protocol::flows::introspection::revocation_declined(&x.response);
            Verdict::from_bool(
                x.response.status == 200 || declined,
                "status 200 (or 400 unsupported_token_type)",
                || x.response.summary(),
            )
        },
    },
    CheckDef {
        id: "rfc7009.2.revoked-inactive",
        severity: Severity::Must,
        rule: "RFC 7009 §2, RFC 7662 §4",
        url: "https://www.rfc-editor.org/rfc/rfc7009#section-2",
        summary: "a revoked token is introspected `active: false`",
        evaluate: |x| revoked_subject(x).unwrap_or_else(|| inactive(x)),
    },
    CheckDef {
        id: "rfc7009.2.revoked-refused",
        severity: Severity::Must,
        rule: "RFC 7009 §2, RFC 6750 §3.1",
        url: "https://www.rfc-editor.org/rfc/rfc7009#section-2",
        summary: "the resource refuses a revoked token with 401 `invalid_token`",
        evaluate: |x| revoked_subject(x).unwrap_or_else(|| invalid_token(x)),
    },
    CheckDef {
        id: "rfc6750.3.1.expired-token",
        severity: Severity::Must,
        rule: "RFC 6750 §3.1, RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6750#section-3.1",
        summary: "the resource refuses a token past its `expires_in` with 401 `invalid_token`",
        evaluate: |x| expired_subject(x).unwrap_or_else(|| invalid_token(x)),
    },
    CheckDef {
        id: "smart.257.expires-in-max-300",
        severity: Severity::Should,
        rule: "SMART @257",
        url: "https://hl7.org/fhir/smart-app-launch/STU2.2/backend-services.html",
        summary: "backend services access tokens live no more than five minutes (expires_in ≤ 300)",
        evaluate: expires_in_at_most_300,
    },
];

/// The token the request is about is past its expiry.
fn expired_subject(x: &Exchange) -> Option<Verdict> {
    let expires_at = x.context.subject.as_ref().and_then(|s| s.expires_at());
    let now = crate::support::clock::unix_now();
    judges(expires_at.is_some_and(|e| e <= now), "is about a token past its expires_in", || match expires_at {
        Some(e) => format!("was about a token with {} s to live", e - now),
        None => "was about a token of unknown lifetime".into(),
    })
}

/// For a rule about live tokens, when the token was refused: not applicable if it had expired,
/// or was within a second of it, by the time the answer came — the server may rightly have
/// counted it expired (its clock and ours agree to the second at best), so the refusal says
/// nothing of the rule. A slow machine, not the server, made the request late. Counted from
/// when the token request left
/// ([`crate::protocol::exchange::TokenFacts::alive_until`]): the server may have issued it
/// that early, however late its answer came.
pub(super) fn lapsed(x: &Exchange) -> Option<Verdict> {
    let expires_at = x.context.subject.as_ref()?.alive_until()?;
    let left = expires_at - crate::support::clock::unix_now();
    (left <= 1).then(|| {
        Verdict::na(format!("the token had {left} s to live when the answer came: too near its expiry to judge"))
    })
}

/// The token the request is about was revoked by an earlier step.
fn revoked_subject(x: &Exchange) -> Option<Verdict> {
    judges(x.context.subject.as_ref().is_some_and(|s| s.revoked), "is about a token the case revoked", || {
        "was about a token no step revoked".into()
    })
}

fn answer(x: &Exchange) -> Result<&Map<String, Value>, Verdict> {
    let r = &x.response;
    if r.status != 200 {
        return Err(Verdict::fail("status 200 with a JSON object", r.summary()));
    }
    r.json_object().ok_or_else(|| Verdict::fail("a JSON object", r.summary()))
}

/// The answer when it says `active: true`; otherwise the verdict to return.
fn active_answer(x: &Exchange) -> Result<&Map<String, Value>, Verdict> {
    let body = answer(x).map_err(|_| Verdict::na("no valid introspection answer (see rfc7662.2.2.active)"))?;
    if body.get("active") == Some(&Value::Bool(true)) {
        Ok(body)
    } else {
        Err(Verdict::na("the token is not introspected active"))
    }
}

fn unauthorized(x: &Exchange) -> Verdict {
    Verdict::from_bool(x.response.status == 401, "status 401", || x.response.summary())
}

fn active(x: &Exchange) -> Verdict {
    let body = match answer(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    let json = x.response.media_type().as_deref() == Some("application/json");
    if body.get("active") != Some(&Value::Bool(true)) {
        if let Some(v) = lapsed(x) {
            return v;
        }
    }
    Verdict::from_bool(
        json && body.get("active") == Some(&Value::Bool(true)),
        "application/json with active: true",
        || x.response.summary(),
    )
}

fn inactive(x: &Exchange) -> Verdict {
    // About a token nobody issued, or one known to be dead: of a live token, active: false
    // would be wrong, not right.
    let now = crate::support::clock::unix_now();
    let dead = |s: &crate::protocol::exchange::TokenFacts| s.revoked || s.expires_at().is_some_and(|e| e <= now);
    if let Some(v) = judges(
        x.context.subject.as_ref().is_none_or(dead),
        "is about a token nobody issued, or one revoked or expired",
        || "was about a live token the server issued".into(),
    ) {
        return v;
    }
    if let Some(v) = judges(!x.context.deviations.wrong_secret, "authenticates the introspecting client", || {
        "sent a wrong secret".into()
    }) {
        return v;
    }
    let body = match answer(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    Verdict::from_bool(body.get("active") == Some(&Value::Bool(false)), "active: false", || x.response.summary())
}

fn inactive_only_active(x: &Exchange) -> Verdict {
    let Ok(body) = answer(x) else { return Verdict::na("no valid introspection answer") };
    if body.get("active") != Some(&Value::Bool(false)) {
        return Verdict::na("the answer is not inactive");
    }
    let extra: Vec<&String> = body.keys().filter(|k| *k != "active").collect();
    Verdict::from_bool(extra.is_empty(), "only the active member", || format!("also: {extra:?}"))
}

fn scope_matches(x: &Exchange) -> Verdict {
    let body = match active_answer(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    let Some(granted) = x.context.subject.as_ref().and_then(|s| s.scope.clone()) else {
        return Verdict::na("the granted scope is not known");
    };
    match body.get("scope").and_then(Value::as_str) {
        Some(seen) => {
            Verdict::from_bool(scope_set(seen) == scope_set(&granted), format!("scope \"{granted}\""), || {
                format!("scope \"{seen}\"")
            })
        }
        None => Verdict::fail(format!("scope \"{granted}\""), "no scope member"),
    }
}

fn client_id_matches(x: &Exchange) -> Verdict {
    let body = match active_answer(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    let Some(expected) = x.context.subject.as_ref().map(|s| s.client_id.clone()) else {
        return Verdict::na("the token's client is not known");
    };
    let seen = body.get("client_id").and_then(Value::as_str);
    Verdict::from_bool(seen == Some(expected.as_str()), format!("client_id {expected}"), || {
        format!("client_id {}", seen.unwrap_or("(absent)"))
    })
}

fn exp_present(x: &Exchange) -> Verdict {
    let body = match active_answer(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    Verdict::from_bool(body.get("exp").and_then(Value::as_i64).is_some(), "a numeric exp", || {
        format!("exp: {}", body.get("exp").map(Value::to_string).unwrap_or_else(|| "(absent)".into()))
    })
}

fn introspected_exp(x: &Exchange) -> Result<i64, Verdict> {
    let body = active_answer(x)?;
    body.get("exp").and_then(Value::as_i64).ok_or_else(|| Verdict::na("no numeric exp (see smart.introspection.exp)"))
}

fn exp_matches_jwt(x: &Exchange) -> Verdict {
    let exp = match introspected_exp(x) {
        Ok(e) => e,
        Err(v) => return v,
    };
    let Some(jwt_exp) = x.context.subject.as_ref().and_then(|s| s.jwt_exp) else {
        return Verdict::na("the access token is not a JWT with exp");
    };
    Verdict::from_bool(
        exp.saturating_sub(jwt_exp).saturating_abs() <= EXP_TOLERANCE_SECS,
        format!("exp {jwt_exp} (the JWT's)"),
        || format!("exp {exp}"),
    )
}

fn exp_matches_expires_in(x: &Exchange) -> Verdict {
    let exp = match introspected_exp(x) {
        Ok(e) => e,
        Err(v) => return v,
    };
    let Some(facts) = &x.context.subject else { return Verdict::na("the token's issue is not known") };
    let Some(expires_in) = facts.expires_in else { return Verdict::na("the token answer had no expires_in") };
    // The JWT's iat is the server's own issue time; without it, the time the answer arrived.
    let issued = facts.jwt_iat.unwrap_or(facts.received_at);
    // The server's numbers: saturating, so extreme ones are a wrong exp, not an overflow.
    let expected = issued.saturating_add(expires_in);
    Verdict::from_bool(
        exp.saturating_sub(expected).saturating_abs() <= EXP_TOLERANCE_SECS,
        format!("exp {expected} (issue + expires_in)"),
        || format!("exp {exp}"),
    )
}

fn invalid_token(x: &Exchange) -> Verdict {
    if x.context.auth != Some(AuthUsed::Bearer) {
        return Verdict::na("the request carried no bearer token");
    }
    let error = x
        .response
        .header("www-authenticate")
        .and_then(parse_challenge)
        .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|c| c.param("error").map(str::to_owned));
    let ok = x.response.status == 401 && error.as_deref() == Some("invalid_token");
    Verdict::from_bool(ok, "status 401 with WWW-Authenticate: Bearer error=\"invalid_token\"", || {
        format!(
            "{}, WWW-Authenticate: {}",
            x.response.summary(),
            x.response.header("www-authenticate").unwrap_or("(absent)")
        )
    })
}

fn expires_in_at_most_300(x: &Exchange) -> Verdict {
    if !x.response.is_success() {
        return Verdict::na("not a success response");
    }
    match x.response.json_object().and_then(|o| o.get("expires_in")).and_then(Value::as_i64) {
        None => Verdict::na("no numeric expires_in"),
        Some(n) => Verdict::from_bool(n <= 300, "expires_in ≤ 300", || format!("expires_in {n}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::exchange::{RecordedRequest, RecordedResponse, RequestContext, TokenFacts};
    use std::time::Duration;

    /// An introspection answered `{"active": <active>}` about `subject`.
    fn introspected(active: bool, subject: Option<TokenFacts>) -> Exchange {
        let body = format!(r#"{{"active":{active}}}"#).into_bytes();
        let headers = vec![("content-type".into(), "application/json".into())];
        Exchange {
            request: RecordedRequest { method: "POST".into(), url: "x".into(), headers: vec![], body: None },
            response: RecordedResponse::new(200, headers, body, false, Duration::ZERO),
            context: RequestContext { subject, ..RequestContext::default() },
        }
    }

    fn token(expires_in: i64, revoked: bool) -> Option<TokenFacts> {
        let received_at = crate::support::clock::unix_now();
        Some(TokenFacts { expires_in: Some(expires_in), received_at, revoked, ..TokenFacts::default() })
    }

    #[test]
    fn inactive_judges_only_tokens_nobody_issued_or_dead_ones() {
        assert_eq!(inactive(&introspected(false, None)), Verdict::Pass, "a token nobody issued");
        assert!(matches!(inactive(&introspected(true, None)), Verdict::Fail { .. }));
        assert_eq!(inactive(&introspected(false, token(3600, true))), Verdict::Pass, "revoked");
        assert_eq!(inactive(&introspected(false, token(-1, false))), Verdict::Pass, "expired");
        // Of a live token, active: false is no pass of this rule: the request is not its kind.
        let Verdict::Fail { expected, .. } = inactive(&introspected(false, token(3600, false))) else {
            panic!("judged a live token")
        };
        assert!(expected.contains("what this check judges"), "{expected}");
    }

    #[test]
    fn an_inactive_answer_for_a_token_at_its_expiry_is_not_judged_active() {
        assert_eq!(active(&introspected(true, token(1, false))), Verdict::Pass);
        assert!(matches!(active(&introspected(false, token(3600, false))), Verdict::Fail { .. }));
        assert!(matches!(active(&introspected(false, token(1, false))), Verdict::NotApplicable(_)));
    }
}
