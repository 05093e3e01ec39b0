//! OpenID CIBA Core 1.0 poll mode, as Pro Santé Connect runs it, and RFC 8705 mTLS client
//! authentication and certificate-bound tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::token_errors::refused_with;
use super::wire::{jwt_claims, param};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::exchange::{Exchange, PollRecord};

const CIBA: &str = "https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html";
const RFC8705: &str = "https://www.rfc-editor.org/rfc/rfc8705";
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "ciba.4.backchannel-endpoint",
        severity: Severity::Must,
        rule: "CIBA §4",
        url: CIBA,
        summary: "the metadata names backchannel_authentication_endpoint",
        evaluate: |x| {
            metadata(
                x,
                |d| d.get("backchannel_authentication_endpoint").and_then(Value::as_str).is_some(),
                "backchannel_authentication_endpoint",
            )
        },
    },
    CheckDef {
        id: "ciba.4.poll-mode",
        severity: Severity::Must,
        rule: "CIBA §4",
        url: CIBA,
        summary: "backchannel_token_delivery_modes_supported contains poll",
        evaluate: |x| {
            metadata(x, |d| contains(d, "backchannel_token_delivery_modes_supported", "poll"), "poll delivery mode")
        },
    },
    CheckDef {
        id: "ciba.4.grant-type",
        severity: Severity::Must,
        rule: "CIBA §4",
        url: CIBA,
        summary: "grant_types_supported contains urn:openid:params:grant-type:ciba",
        evaluate: |x| metadata(x, |d| contains(d, "grant_types_supported", CIBA_GRANT), "the CIBA grant type"),
    },
    CheckDef {
        id: "ciba.7.3.auth-req-id",
        severity: Severity::Must,
        rule: "CIBA §7.3",
        url: CIBA,
        summary: "auth_req_id is opaque, ≥ 128 bits (≥ 22 base64url characters) of A-Za-z0-9._-",
        evaluate: auth_req_id,
    },
    CheckDef {
        id: "ciba.7.3.expires-in",
        severity: Severity::Must,
        rule: "CIBA §7.3",
        url: CIBA,
        summary: "expires_in is a positive number of seconds",
        evaluate: |x| positive(x, "expires_in"),
    },
    CheckDef {
        id: "ciba.7.3.interval",
        severity: Severity::Should,
        rule: "CIBA §7.3",
        url: CIBA,
        summary: "interval is given (a positive number of seconds)",
        evaluate: |x| positive(x, "interval"),
    },
    CheckDef {
        id: "ciba.7.1.two-hints",
        severity: Severity::Must,
        rule: "CIBA §7.1, §13",
        url: CIBA,
        summary: "a request with two hints (login_hint and id_token_hint) is refused with invalid_request",
        evaluate: |x| {
            let hints =
                ["login_hint", "id_token_hint", "login_hint_token"].iter().filter(|h| param(x, h).is_some()).count();
            judges(hints >= 2, "carries two hints", || format!("carried {hints}"))
                .unwrap_or_else(|| refused_with(x, "invalid_request"))
        },
    },
    CheckDef {
        id: "ciba.7.1.openid-scope",
        severity: Severity::Must,
        rule: "CIBA §7.1, §13",
        url: CIBA,
        summary: "a request whose scope lacks openid is refused (invalid_scope or invalid_request)",
        evaluate: |x| {
            let scope = param(x, "scope").unwrap_or_default();
            judges(!scope.split(' ').any(|s| s == "openid"), "asks for a scope without openid", || {
                format!("asked for `{scope}`")
            })
            .unwrap_or_else(|| refused_with_one_of(x, &["invalid_scope", "invalid_request"]))
        },
    },
    CheckDef {
        id: "ciba.7.1.assertion-audience",
        severity: Severity::Must,
        rule: "CIBA §7.1",
        url: CIBA,
        summary: "a client assertion whose aud is the issuer, the token or the backchannel endpoint is accepted",
        evaluate: |x| {
            let aud = x.context.assertion_audience.clone();
            judges(aud.is_some(), "authenticates with a client assertion", || "sent no assertion".into())
                .unwrap_or_else(|| {
                    let accepted = x.response.is_success() && x.response.json_str("auth_req_id").is_some();
                    Verdict::from_bool(
                        accepted,
                        format!("an auth_req_id for an assertion with aud {}", aud.unwrap_or_default()),
                        || x.response.summary(),
                    )
                })
        },
    },
    CheckDef {
        id: "ciba.13.unknown-user",
        severity: Severity::Must,
        rule: "CIBA §13",
        url: CIBA,
        summary: "a request for a user the server does not know is refused with unknown_user_id",
        evaluate: |x| {
            judges(x.context.deviations.unknown_user, "names the target's unknown user", || "named a known user".into())
                .unwrap_or_else(|| refused_with(x, "unknown_user_id"))
        },
    },
    CheckDef {
        id: "rfc8705.2.no-certificate",
        severity: Severity::Must,
        rule: "RFC 8705 §2, CIBA §13",
        url: RFC8705,
        summary: "a tls_client_auth client without a certificate is refused with invalid_client",
        evaluate: |x| {
            let presented = x.context.certificate.as_ref().is_some_and(|c| c.presented);
            judges(!presented, "is sent without a client certificate", || "presented one".into())
                .unwrap_or_else(|| refused_with(x, "invalid_client"))
        },
    },
    CheckDef {
        id: "rfc8705.2.subject-mismatch",
        severity: Severity::Must,
        rule: "RFC 8705 §2.1.2",
        url: RFC8705,
        summary: "a certificate whose subject is not the registered one is refused with invalid_client",
        evaluate: |x| {
            let cn = x.context.certificate.as_ref().and_then(|c| c.subject_cn.clone());
            let id = x.context.client_id.clone().unwrap_or_default();
            judges(
                cn.as_deref().is_some_and(|cn| cn != id),
                "presents a certificate whose subject is not the client's",
                || match &cn {
                    Some(cn) => format!("presented the certificate of `{cn}`, the client's own"),
                    None => "presented no certificate".into(),
                },
            )
            .unwrap_or_else(|| refused_with(x, "invalid_client"))
        },
    },
    CheckDef {
        id: "ciba.11.authorization-pending",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "a poll before the user answered gets authorization_pending",
        evaluate: first_poll_pending,
    },
    CheckDef {
        id: "ciba.11.slow-down",
        // CIBA §11 (and RFC 8628 §3.5) define slow_down and what a client must do on it; no
        // sentence makes a server send it. The way to tell a fast poller, so a SHOULD.
        severity: Severity::Should,
        rule: "CIBA §11",
        url: CIBA,
        summary: "polling faster than the interval gets slow_down",
        evaluate: saw_slow_down,
    },
    CheckDef {
        id: "ciba.11.expired-token",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "a request the user never answered ends with expired_token after expires_in",
        evaluate: expired_after_expires_in,
    },
    CheckDef {
        id: "ciba.11.access-denied",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "a request the user refused ends with access_denied",
        evaluate: |x| final_error(x, &["access_denied"]),
    },
    CheckDef {
        id: "ciba.11.reused-auth-req-id",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "an auth_req_id already exchanged for tokens gets invalid_grant",
        evaluate: |x| {
            let reused = x.context.ciba.as_ref().is_some_and(|c| c.already_exchanged);
            judges(reused, "presents an auth_req_id already exchanged for tokens", || "presented a fresh one".into())
                .unwrap_or_else(|| refused_with(x, "invalid_grant"))
        },
    },
    CheckDef {
        id: "ciba.11.other-client",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "another client's auth_req_id gets invalid_grant",
        evaluate: |x| {
            let other = x.context.ciba.as_ref().is_some_and(|c| c.requested_by != c.polled_by);
            judges(other, "polls as another client than the one that made the request", || {
                "polled as the requesting client".into()
            })
            .unwrap_or_else(|| refused_with(x, "invalid_grant"))
        },
    },
    CheckDef {
        id: "ciba.10.1.id-token",
        severity: Severity::Must,
        rule: "CIBA §10.1",
        url: CIBA,
        summary: "the token answer carries an id_token",
        evaluate: |x| success_with(x, |b| b.get("id_token").and_then(Value::as_str).is_some(), "an id_token"),
    },
    CheckDef {
        id: "ciba.id-token.signature",
        severity: Severity::Must,
        rule: "OIDC Core §3.1.3.7 (6), CIBA §10.1",
        url: CIBA,
        summary: "the id_token's signature verifies with a key of the server's jwks_uri",
        evaluate: id_token_signature,
    },
    CheckDef {
        id: "ciba.id-token.claims",
        severity: Severity::Must,
        rule: "OIDC Core §2, §3.1.3.7",
        url: "https://openid.net/specs/openid-connect-core-1_0.html#IDToken",
        summary: "the id_token's iss is the issuer, exp is in the future, iat is present",
        evaluate: id_token_claims,
    },
    CheckDef {
        id: "ciba.id-token.aud",
        severity: Severity::Must,
        rule: "OIDC Core §2, CIBA §10.1",
        url: "https://openid.net/specs/openid-connect-core-1_0.html#IDToken",
        summary: "the id_token's aud is (or contains) the client_id",
        evaluate: id_token_aud,
    },
    CheckDef {
        id: "ciba.id-token.auth-req-id",
        severity: Severity::Must,
        rule: "CIBA §10.1.1",
        url: CIBA,
        summary: "urn:openid:params:jwt:claim:auth_req_id, when present, is the request's auth_req_id",
        evaluate: id_token_auth_req_id,
    },
    CheckDef {
        id: "rfc8705.3.cnf",
        severity: Severity::Must,
        rule: "RFC 8705 §3.1",
        url: RFC8705,
        summary: "a certificate-bound access token's cnf.x5t#S256 is the SHA-256 of the client certificate",
        evaluate: cnf_thumbprint,
    },
];

fn contains(doc: &serde_json::Map<String, Value>, member: &str, value: &str) -> bool {
    doc.get(member).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v.as_str() == Some(value)))
}

fn metadata(x: &Exchange, ok: impl Fn(&serde_json::Map<String, Value>) -> bool, what: &str) -> Verdict {
    match x.response.json_object() {
        Some(doc) if x.response.status == 200 => Verdict::from_bool(ok(doc), what.to_string(), || x.response.summary()),
        _ => Verdict::blocked(format!(
            "no CIBA metadata document: {}",
            crate::protocol::flows::discovery::describe_non_document(&x.response)
        )),
    }
}

pub(super) fn success_body(x: &Exchange) -> Result<&serde_json::Map<String, Value>, Verdict> {
    match x.response.json_object() {
        Some(b) if x.response.is_success() => Ok(b),
        _ => Err(Verdict::fail("a successful JSON answer", x.response.summary())),
    }
}

fn success_with(x: &Exchange, ok: impl Fn(&serde_json::Map<String, Value>) -> bool, what: &str) -> Verdict {
    match success_body(x) {
        Ok(b) => Verdict::from_bool(ok(b), what.to_string(), || x.response.summary()),
        Err(v) => v,
    }
}

fn auth_req_id(x: &Exchange) -> Verdict {
    let body = match success_body(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    match body.get("auth_req_id").and_then(Value::as_str) {
        None => Verdict::fail("an auth_req_id", "no auth_req_id member"),
        Some(id) => {
            let charset = id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            Verdict::from_bool(charset && id.len() >= 22, "≥ 22 characters of A-Za-z0-9._-", || {
                format!("{} characters{}", id.len(), if charset { "" } else { ", outside the allowed set" })
            })
        }
    }
}

fn positive(x: &Exchange, member: &str) -> Verdict {
    let body = match success_body(x) {
        Ok(b) => b,
        Err(v) => return v,
    };
    // CIBA §7.3 numbers; `requested_expiry` may be a string, these may not.
    let value = body.get(member);
    Verdict::from_bool(value.and_then(Value::as_u64).is_some_and(|n| n > 0), format!("a positive {member}"), || {
        format!("{member}: {}", value.map(Value::to_string).unwrap_or_else(|| "(absent)".into()))
    })
}

fn refused_with_one_of(x: &Exchange, codes: &[&str]) -> Verdict {
    let r = &x.response;
    let expected = format!("a 4xx refusal with error={}", codes.join(" or "));
    if !(400..500).contains(&r.status) {
        return Verdict::fail(expected, r.summary());
    }
    match r.json_str("error") {
        Some(code) if codes.contains(&code) => Verdict::Pass,
        Some(code) => Verdict::fail(expected, format!("error={code}")),
        None => Verdict::fail(expected, r.summary()),
    }
}

fn polls(x: &Exchange) -> Result<&[PollRecord], Verdict> {
    match &x.context.ciba {
        Some(c) if !c.polls.is_empty() => Ok(&c.polls),
        _ => Err(Verdict::na("no polls were made")),
    }
}

fn describe(polls: &[PollRecord]) -> String {
    let parts: Vec<String> = polls
        .iter()
        .map(|p| format!("{} ms: {}", p.at_ms, p.error.clone().unwrap_or_else(|| format!("status {}", p.status))))
        .collect();
    parts.join(", ")
}

fn first_poll_pending(x: &Exchange) -> Verdict {
    let polls = match polls(x) {
        Ok(p) => p,
        Err(v) => return v,
    };
    Verdict::from_bool(
        polls[0].error.as_deref() == Some("authorization_pending"),
        "authorization_pending on the first poll",
        || describe(polls),
    )
}

/// A slow_down counts only as the answer to a poll that came faster than the interval: one sent
/// to a client keeping the interval says nothing of whether the server notices fast polling.
fn saw_slow_down(x: &Exchange) -> Verdict {
    let polls = match polls(x) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let fast: Vec<&PollRecord> = polls.iter().filter(|p| p.waited_ms < p.interval_ms).collect();
    if fast.is_empty() {
        return Verdict::na("no poll came faster than the interval: nothing asked for slow_down");
    }
    Verdict::from_bool(
        fast.iter().any(|p| p.error.as_deref() == Some("slow_down")),
        "slow_down to a poll sent faster than the interval",
        || describe(polls),
    )
}

/// How much earlier than `expires_in` (counted from the backchannel answer) a server may say
/// `expired_token`: it counts from before its answer left, and may count in whole seconds.
const EXPIRY_EARLY_TOLERANCE_MS: u64 = 1500;

/// The final answer is expired_token, and it came once the request's `expires_in` had passed.
fn expired_after_expires_in(x: &Exchange) -> Verdict {
    let verdict = final_error(x, &["expired_token"]);
    let Some(c) = x.context.ciba.as_ref().filter(|_| verdict == Verdict::Pass) else { return verdict };
    let Some(last) = c.polls.last() else { return verdict };
    Verdict::from_bool(
        last.at_ms + EXPIRY_EARLY_TOLERANCE_MS >= c.expires_in_ms,
        format!("expired_token once expires_in ({} ms) had passed", c.expires_in_ms),
        || format!("expired_token {} ms after the backchannel answer (polls: {})", last.at_ms, describe(&c.polls)),
    )
}

fn final_error(x: &Exchange, codes: &[&str]) -> Verdict {
    let seen = x.response.json_str("error");
    let ok = (400..500).contains(&x.response.status) && seen.is_some_and(|c| codes.contains(&c));
    let history = x.context.ciba.as_ref().map(|c| describe(&c.polls)).unwrap_or_default();
    Verdict::from_bool(ok, format!("a final error={}", codes.join(" or ")), || {
        format!("{} (polls: {history})", x.response.summary())
    })
}

fn id_token(x: &Exchange) -> Result<serde_json::Map<String, Value>, Verdict> {
    let body = success_body(x).map_err(|_| Verdict::na("no token answer"))?;
    body.get("id_token")
        .and_then(Value::as_str)
        .and_then(jwt_claims)
        .ok_or_else(|| Verdict::na("no readable id_token (see ciba.10.1.id-token)"))
}

fn id_token_signature(x: &Exchange) -> Verdict {
    if let Err(v) = id_token(x) {
        return v;
    }
    match x.context.ciba.as_ref().and_then(|c| c.id_token_signature.clone()) {
        Some(Ok(())) => Verdict::Pass,
        Some(Err(why)) => Verdict::fail("a signature that verifies with the jwks_uri keys", why),
        None => Verdict::blocked(
            "no jwks_uri to verify the id_token with: the CIBA metadata names none (or was not read); \
             set `ciba.jwks_uri` in the target",
        ),
    }
}

fn id_token_claims(x: &Exchange) -> Verdict {
    let claims = match id_token(x) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let issuer = x.context.ciba.as_ref().map(|c| c.issuer.clone()).unwrap_or_default();
    // §3.1.3.7 (9): exp is after the moment the request left — the server issued the token no
    // earlier — so a short-lived token is not failed for an answer a busy machine read late.
    let sent_at = (crate::support::clock::unix_now_f64() - x.response.elapsed.as_secs_f64()).floor() as i64;
    let iss_ok = claims.get("iss").and_then(Value::as_str) == Some(issuer.trim_end_matches('/'));
    let exp_ok = claims.get("exp").and_then(Value::as_i64).is_some_and(|e| e > sent_at);
    let iat_ok = claims.get("iat").and_then(Value::as_i64).is_some();
    Verdict::from_bool(
        iss_ok && exp_ok && iat_ok,
        format!("iss {issuer}, exp in the future as the request was sent, iat"),
        || format!("iss {:?}, exp {:?}, iat {:?}", claims.get("iss"), claims.get("exp"), claims.get("iat")),
    )
}

fn id_token_aud(x: &Exchange) -> Verdict {
    let claims = match id_token(x) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let client_id = x.context.ciba.as_ref().map(|c| c.client_id.clone()).unwrap_or_default();
    let ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&client_id)),
        _ => false,
    };
    Verdict::from_bool(ok, format!("aud {client_id}"), || {
        format!("aud {}", claims.get("aud").map(Value::to_string).unwrap_or_default())
    })
}

fn id_token_auth_req_id(x: &Exchange) -> Verdict {
    let claims = match id_token(x) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let Some(seen) = claims.get("urn:openid:params:jwt:claim:auth_req_id").and_then(Value::as_str) else {
        return Verdict::na("the id_token has no auth_req_id claim");
    };
    let expected = x.context.ciba.as_ref().map(|c| c.auth_req_id.as_str()).unwrap_or_default();
    Verdict::from_bool(seen == expected, "the request's auth_req_id", || "another auth_req_id".into())
}

fn cnf_thumbprint(x: &Exchange) -> Verdict {
    let body = match success_body(x) {
        Ok(b) => b,
        Err(_) => return Verdict::na("no token answer"),
    };
    let Some(cert) = x.context.certificate.as_ref().filter(|c| c.presented) else {
        return Verdict::na("no client certificate was used");
    };
    // RFC 8705 §3.4: binding is what the client registered for; a server may bind anyway.
    if !cert.bound_tokens {
        return Verdict::na(super::NOT_REGISTERED_FOR_BINDING);
    }
    let expected = cert.thumbprint.clone().unwrap_or_default();
    let Some(claims) = body.get("access_token").and_then(Value::as_str).and_then(jwt_claims) else {
        return Verdict::na("the access token is not a JWT (introspect it to see cnf)");
    };
    let seen = claims.get("cnf").and_then(|c| c.get("x5t#S256")).and_then(Value::as_str).map(str::to_owned);
    Verdict::from_bool(seen.as_deref() == Some(expected.as_str()), format!("cnf.x5t#S256 {expected}"), || {
        format!("cnf.x5t#S256 {}", seen.unwrap_or_else(|| "(absent)".into()))
    })
}

/// base64url(SHA-256) as `x5t#S256` spells it.
pub fn thumbprint(sha256: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::exchange::{CibaFacts, RecordedRequest, RecordedResponse, RequestContext};
    use std::time::Duration;

    /// The final answer `error` after `polls` of (ms since the answer, waited, interval, error).
    fn polled(error: &str, polls: &[(u64, u64, u64, &str)], expires_in_ms: u64) -> Exchange {
        let body = format!(r#"{{"error":"{error}"}}"#).into_bytes();
        let polls = polls
            .iter()
            .map(|(at_ms, waited_ms, interval_ms, e)| PollRecord {
                at_ms: *at_ms,
                status: 400,
                error: Some(e.to_string()),
                waited_ms: *waited_ms,
                interval_ms: *interval_ms,
            })
            .collect();
        let context = RequestContext {
            ciba: Some(CibaFacts { polls, expires_in_ms, ..CibaFacts::default() }),
            ..RequestContext::default()
        };
        Exchange {
            request: RecordedRequest { method: "POST".into(), url: "x".into(), headers: vec![], body: None },
            response: RecordedResponse::new(400, vec![], body, false, Duration::ZERO),
            context,
        }
    }

    #[test]
    fn slow_down_counts_only_as_the_answer_to_a_fast_poll() {
        let fast_then_slowed =
            polled("expired_token", &[(5, 0, 1000, "slow_down"), (6005, 6000, 6000, "expired_token")], 3000);
        assert_eq!(saw_slow_down(&fast_then_slowed), Verdict::Pass);
        let fast_unnoticed = polled(
            "expired_token",
            &[(5, 0, 1000, "authorization_pending"), (1005, 1000, 1000, "expired_token")],
            3000,
        );
        assert!(matches!(saw_slow_down(&fast_unnoticed), Verdict::Fail { .. }));
        // A slow_down to a client that kept the interval says nothing of fast polling.
        let honoured =
            polled("expired_token", &[(1000, 1000, 1000, "slow_down"), (7000, 6000, 6000, "expired_token")], 3000);
        assert!(matches!(saw_slow_down(&honoured), Verdict::NotApplicable(_)));
    }

    #[test]
    fn expired_token_counts_once_expires_in_has_passed() {
        let on_time = polled(
            "expired_token",
            &[(1000, 1000, 1000, "authorization_pending"), (3010, 1000, 1000, "expired_token")],
            3000,
        );
        assert_eq!(expired_after_expires_in(&on_time), Verdict::Pass);
        // A server counting in whole seconds from before its answer left is a little early.
        let rounded = polled("expired_token", &[(2100, 1000, 1000, "expired_token")], 3000);
        assert_eq!(expired_after_expires_in(&rounded), Verdict::Pass);
        let early = polled("expired_token", &[(1005, 1000, 1000, "expired_token")], 3000);
        assert!(matches!(expired_after_expires_in(&early), Verdict::Fail { .. }));
        let pending = polled("authorization_pending", &[(9000, 1000, 1000, "authorization_pending")], 3000);
        assert!(matches!(expired_after_expires_in(&pending), Verdict::Fail { .. }));
    }
}
