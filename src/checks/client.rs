//! Client checks: what `certify` holds a vendor's client to. Each is a pure function of what the
//! mock observed (every request, its time, its answer) and of the client's registration; the
//! tolerances are fixed and documented in docs/certify.md.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::{Severity, Verdict};
use crate::model::AuthMethod;
use crate::protocol::observation::{ClientEnd, Endpoint, Observation, Registration, Seen};

/// One client rule of the catalogue.
pub struct ClientCheckDef {
    pub id: &'static str,
    pub severity: Severity,
    pub rule: &'static str,
    pub url: &'static str,
    pub summary: &'static str,
    pub evaluate: fn(&Observation, &Registration) -> Verdict,
}

impl std::fmt::Debug for ClientCheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

const RFC6749: &str = "https://www.rfc-editor.org/rfc/rfc6749";
const RFC7523_3: &str = "https://www.rfc-editor.org/rfc/rfc7523#section-3";
const SMART: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/client-confidential-asymmetric.html";
const CIBA: &str = "https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html";
const PSC: &str = "https://industriels.esante.gouv.fr/produits-et-services/pro-sante-connect";
const RFC9110_RETRY: &str = "https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Timer rounding allowed on every "waits at least" rule.
pub const TIMER_SLACK: Duration = Duration::from_millis(20);
/// A poll arriving this soon after a final CIBA answer may have been sent together with the
/// answered one, before the client had the answer: `one-poll-in-flight` and `interval` judge it
/// (it is sooner than any interval), `stops-polling` judges the polls that react to the answer.
pub const SENT_WITH_THE_FINAL_POLL: Duration = Duration::from_millis(250);
/// After a 5xx, at most this many requests in the second that follows.
pub const BACKOFF_MAX_PER_SECOND: usize = 5;
/// After a 401 invalid_token, at most one token request in this window.
pub const RENEWAL_WINDOW: Duration = Duration::from_millis(500);
/// SMART Backend Services: an assertion expires at most five minutes ahead; 2 s for the clock.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 300 + 2;

pub const CHECKS: &[ClientCheckDef] = &[
    ClientCheckDef {
        id: "client.token.post-form",
        severity: Severity::Must,
        rule: "RFC 6749 §3.2",
        url: RFC6749,
        summary: "token requests are POSTs with an application/x-www-form-urlencoded body",
        evaluate: |o, _| {
            every(o.token_requests(), "the client asked for no token", |r| {
                (r.method == "POST"
                    && r.content_type.as_deref().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")))
                .then_some(())
                .ok_or_else(|| format!("{} with {}", r.method, r.content_type.as_deref().unwrap_or("no body type")))
            })
        },
    },
    ClientCheckDef {
        id: "client.token.grant-type",
        severity: Severity::Must,
        rule: "RFC 6749 §4.4.2",
        url: RFC6749,
        summary: "client_credentials token requests say grant_type=client_credentials",
        evaluate: |o, _| {
            every(o.of(Endpoint::Token), "the client asked for no client_credentials token", |r| {
                match param_anywhere(r, "grant_type") {
                    Some("client_credentials") => Ok(()),
                    Some(other) => Err(format!("grant_type={other}")),
                    None => Err("no grant_type".into()),
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.auth.one-method",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3",
        url: RFC6749,
        summary: "each authenticated request uses exactly one client authentication method",
        evaluate: |o, reg| {
            every(authenticated(o), "the client made no authenticated request", |r| match methods_used(r).len() {
                1 => Ok(()),
                0 if reg.method.uses_certificate() && r.certificate.is_some() => Ok(()),
                0 => Err("no client authentication".into()),
                _ => Err(format!("{} at once", names(&methods_used(r)))),
            })
        },
    },
    ClientCheckDef {
        id: "client.auth.registered-method",
        severity: Severity::Must,
        rule: "RFC 7591 §2",
        url: "https://www.rfc-editor.org/rfc/rfc7591#section-2",
        summary: "the client authenticates with the method it is registered for",
        evaluate: |o, reg| {
            every(authenticated(o), "the client made no authenticated request", |r| {
                let used = methods_used(r);
                match used.as_slice() {
                    [] if reg.method.uses_certificate() && r.certificate.is_some() => Ok(()),
                    [one] if *one == reg.method => Ok(()),
                    [one] => Err(format!("{one} (registered: {})", reg.method)),
                    [] => Err("no client authentication".into()),
                    _ if used.contains(&reg.method) => Ok(()),
                    _ => Err(names(&used)),
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.auth.basic-form-encoded",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1",
        summary: "Basic credentials are form-urlencoded before Base64",
        evaluate: |o, reg| {
            let basic: Vec<&Seen> = o.requests.iter().filter(|r| basic_credentials(r).is_some()).collect();
            every(basic.into_iter(), "the client sent no Basic credentials", |r| {
                let (user, pass) = basic_credentials(r).unwrap_or_default();
                let secret = reg.secret.as_deref().unwrap_or_default();
                let decoded = |s: &str| form_decode(s);
                if is_form_encoded(&user)
                    && is_form_encoded(&pass)
                    && decoded(&user) == reg.client_id
                    && decoded(&pass) == secret
                {
                    Ok(())
                } else {
                    Err("credentials that are not the form-urlencoded client_id and secret".into())
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.auth.no-credentials-in-url",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1",
        summary: "no client secret or assertion in a request URI",
        evaluate: |o, reg| {
            every(o.requests.iter(), "the client made no request", |r| {
                let named = r
                    .query
                    .iter()
                    .find(|(k, _)| ["client_secret", "client_assertion", "password"].contains(&k.as_str()));
                let secret = reg.secret.as_deref().filter(|s| !s.is_empty());
                match (named, secret.filter(|s| r.query.iter().any(|(_, v)| v.contains(s)))) {
                    (Some((k, _)), _) => Err(format!("`{k}` in the query of {} {}", r.method, r.path)),
                    (None, Some(_)) => Err(format!("the secret in the query of {} {}", r.method, r.path)),
                    (None, None) => Ok(()),
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.token.scope-registered",
        severity: Severity::Should,
        rule: "RFC 6749 §3.3",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-3.3",
        summary: "the client asks only for scopes it is registered for",
        evaluate: |o, reg| {
            let asking = o
                .requests
                .iter()
                .filter(|r| matches!(r.endpoint, Endpoint::Token | Endpoint::Backchannel))
                .filter(|r| param_anywhere(r, "scope").is_some());
            every(asking, "the client named no scope (it gets the default one)", |r| {
                let extra: Vec<&str> = param_anywhere(r, "scope")
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|s| !s.is_empty() && !reg.scopes.iter().any(|k| k == s))
                    .collect();
                extra.is_empty().then_some(()).ok_or_else(|| format!("scope {}", extra.join(" ")))
            })
        },
    },
    ClientCheckDef {
        id: "client.token.reused",
        severity: Severity::Should,
        rule: "RFC 6749 §5.1 (expires_in)",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "a token serves calls while it is valid: not a token request per API call",
        evaluate: |o, _| {
            let calls = o.of(Endpoint::Resource).count();
            let issued: Vec<&Seen> = o.of(Endpoint::Token).filter(|r| r.answer.access_token.is_some()).collect();
            if calls < 3 || issued.is_empty() {
                return Verdict::na(format!(
                    "{} with {}: too few to judge reuse",
                    crate::support::text::count(calls, "resource call"),
                    crate::support::text::count(issued.len(), "token")
                ));
            }
            let lifetime = issued.iter().filter_map(|r| r.answer.expires_in).min().unwrap_or(3600).max(1);
            let forced = o
                .requests
                .iter()
                .filter(|r| {
                    r.answer.error.as_deref() == Some("invalid_token")
                        || (r.endpoint == Endpoint::Token && r.answer.injected)
                })
                .count();
            // One token per half lifetime leaves room for any sane renewal margin.
            let half = Duration::from_millis(lifetime * 500);
            let bound = 1 + (o.duration.as_millis().div_ceil(half.as_millis())) as usize + forced;
            Verdict::from_bool(
                issued.len() <= bound,
                format!(
                    "at most {bound} tokens for {calls} calls over {:.1} s with {lifetime} s tokens",
                    o.duration.as_secs_f64()
                ),
                || format!("{} tokens", issued.len()),
            )
        },
    },
    ClientCheckDef {
        id: "client.token.not-expired",
        severity: Severity::Should,
        rule: "RFC 6749 §5.1 (expires_in)",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "the client renews before expires_in runs out: never an expired token at the resource",
        evaluate: |o, _| {
            let expiry: HashMap<&str, Duration> = o
                .token_requests()
                .filter_map(|r| {
                    let token = r.answer.access_token.as_deref()?;
                    Some((token, r.answered + Duration::from_secs(r.answer.expires_in?)))
                })
                .collect();
            let calls = o.of(Endpoint::Resource).filter(|r| r.bearer().is_some_and(|t| expiry.contains_key(t)));
            every(calls, "no resource call carried a token the mock issued", |r| {
                let expires = expiry[r.bearer().unwrap_or_default()];
                (r.at < expires).then_some(()).ok_or_else(|| {
                    format!(
                        "a call at {:.2} s with a token expired at {:.2} s",
                        r.at.as_secs_f64(),
                        expires.as_secs_f64()
                    )
                })
            })
        },
    },
    ClientCheckDef {
        id: "client.resource.bearer-header",
        severity: Severity::Should,
        rule: "RFC 6750 §2.1, §2.3, §5.3",
        url: "https://www.rfc-editor.org/rfc/rfc6750#section-2",
        summary: "the token goes in the Authorization header as Bearer, never in the query",
        evaluate: |o, _| {
            every(o.of(Endpoint::Resource), "the client called no resource", |r| {
                if r.query_param("access_token").is_some() {
                    Err("access_token in the query".into())
                } else if r.header("authorization").is_some_and(|h| h.starts_with("Bearer ")) {
                    Ok(())
                } else {
                    Err("no `Authorization: Bearer` header".into())
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.resource.issued-token",
        severity: Severity::Should,
        rule: "RFC 6750 §3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6750#section-3.1",
        summary: "every resource call carries a token the server issued, never one the resource refused with invalid_token",
        evaluate: |o, _| {
            let issued: HashSet<&str> = o.token_requests().filter_map(|r| r.answer.access_token.as_deref()).collect();
            // A token the resource called invalid stays refused: sending it again is a call
            // that cannot succeed (a revoked token, on a real server).
            let refused: Vec<(&str, Duration)> = o
                .of(Endpoint::Resource)
                .filter(|r| r.answer.error.as_deref() == Some("invalid_token"))
                .filter_map(|r| Some((r.bearer()?, r.answered)))
                .collect();
            every(o.of(Endpoint::Resource), "the client called no resource", |r| {
                let Some(token) = r.bearer() else { return Err("a call with no token".into()) };
                if !issued.contains(token) {
                    return Err("a call with a token the server never issued".into());
                }
                match refused.iter().find(|(t, when)| *t == token && r.at >= *when) {
                    Some((_, when)) => {
                        Err(format!("a call with the token the resource refused at {:.2} s", when.as_secs_f64()))
                    }
                    None => Ok(()),
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.resource.one-renewal-after-invalid-token",
        severity: Severity::Should,
        rule: "RFC 6750 §3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6750#section-3.1",
        summary: "after a 401 invalid_token, one new token, not a loop (at most one token request in 500 ms)",
        evaluate: |o, _| {
            let refusals = o.of(Endpoint::Resource).filter(|r| r.answer.error.as_deref() == Some("invalid_token"));
            every(refusals, "the resource never answered invalid_token", |refusal| {
                let soon = o
                    .of(Endpoint::Token)
                    .filter(|t| t.at >= refusal.answered && t.at < refusal.answered + RENEWAL_WINDOW)
                    .count();
                (soon <= 1).then_some(()).ok_or_else(|| {
                    format!("{soon} token requests within 500 ms of the 401 at {:.2} s", refusal.at.as_secs_f64())
                })
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.type",
        severity: Severity::Must,
        rule: "RFC 7521 §4.2",
        url: "https://www.rfc-editor.org/rfc/rfc7521#section-4.2",
        summary: "client_assertion_type is urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        evaluate: |o, _| {
            every(with_assertion(o), NO_ASSERTION, |r| match param_anywhere(r, "client_assertion_type") {
                Some(ASSERTION_TYPE) => Ok(()),
                Some(other) => Err(format!("client_assertion_type={other}")),
                None => Err("no client_assertion_type".into()),
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.alg",
        severity: Severity::Must,
        rule: "SMART Backend Services (RS384, ES384)",
        url: SMART,
        summary: "assertions are signed with RS384 or ES384",
        evaluate: |o, _| {
            assertions(o, |header, _, _| match header.get("alg").and_then(Value::as_str) {
                Some("RS384" | "ES384") => Ok(()),
                Some(alg) => Err(format!("alg {alg}")),
                None => Err("no alg".into()),
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.kid",
        severity: Severity::Must,
        rule: "SMART Backend Services (kid)",
        url: SMART,
        summary: "the assertion's kid names a key the client registered",
        evaluate: |o, reg| {
            assertions(o, |header, _, _| match header.get("kid").and_then(Value::as_str) {
                Some(kid) if reg.kids.iter().any(|k| k == kid) => Ok(()),
                Some(kid) => Err(format!("kid `{kid}`, registered: {}", reg.kids.join(", "))),
                None => Err("no kid".into()),
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.iss-sub",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (1), (2)",
        url: RFC7523_3,
        summary: "iss and sub are both the client_id",
        evaluate: |o, reg| {
            assertions(o, |_, claims, _| {
                let (iss, sub) = (str_claim(claims, "iss"), str_claim(claims, "sub"));
                (iss == Some(reg.client_id.as_str()) && sub == iss)
                    .then_some(())
                    .ok_or_else(|| format!("iss {iss:?}, sub {sub:?}"))
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.aud",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (3), SMART",
        url: SMART,
        summary: "aud is the token endpoint URL",
        evaluate: |o, reg| {
            assertions(o, |_, claims, _| {
                let ok = match claims.get("aud") {
                    Some(Value::String(a)) => *a == reg.token_endpoint,
                    Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(reg.token_endpoint.as_str())),
                    _ => false,
                };
                ok.then_some(()).ok_or_else(|| {
                    format!("aud {}", claims.get("aud").map(Value::to_string).unwrap_or("absent".into()))
                })
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.exp",
        severity: Severity::Must,
        rule: "SMART Backend Services (exp ≤ 5 min)",
        url: SMART,
        summary: "exp is present and at most five minutes after the request",
        evaluate: |o, _| {
            assertions(o, |_, claims, sent| match claims.get("exp").and_then(Value::as_i64) {
                // The client's numbers: saturating, so i64::MIN is an early exp, not an overflow.
                Some(exp) if exp.saturating_sub(sent) <= MAX_ASSERTION_LIFETIME_SECS => Ok(()),
                Some(exp) => Err(format!("exp {} s after the request", exp.saturating_sub(sent))),
                None => Err("no exp".into()),
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.jti-unique",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (7), SMART (jti)",
        url: SMART,
        summary: "every assertion has a jti, never used before in the observation",
        evaluate: |o, _| {
            let mut seen = HashSet::new();
            assertions(o, |_, claims, _| match str_claim(claims, "jti") {
                Some(jti) if seen.insert(jti.to_string()) => Ok(()),
                Some(_) => Err("a jti used before".into()),
                None => Err("no jti".into()),
            })
        },
    },
    ClientCheckDef {
        id: "client.assertion.iat-not-future",
        severity: Severity::Should,
        rule: "RFC 7519 §4.1.6",
        url: "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.6",
        summary: "iat is not in the future (5 s allowed for clocks)",
        evaluate: |o, _| {
            if !with_assertion(o)
                .filter_map(|r| decode_jwt(param_anywhere(r, "client_assertion")?))
                .any(|(_, c)| c.contains_key("iat"))
            {
                return Verdict::na("no assertion carries iat");
            }
            assertions(o, |_, claims, sent| match claims.get("iat").and_then(Value::as_i64) {
                Some(iat) if iat > sent.saturating_add(5) => {
                    Err(format!("iat {} s after the request", iat.saturating_sub(sent)))
                }
                _ => Ok(()),
            })
        },
    },
    ClientCheckDef {
        id: "client.jwks.public-only",
        severity: Severity::Must,
        rule: "RFC 7517 §5, SMART (JWKS URL)",
        url: SMART,
        summary: "the JWKS the client publishes is a JSON key set of public keys only",
        evaluate: |o, _| match &o.jwks {
            None => Verdict::na("the client's keys are registered by value"),
            Some(Err(e)) => Verdict::fail("the client's JWKS at its URL", e.clone()),
            Some(Ok(body)) => {
                let keys = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("keys").and_then(Value::as_array).cloned());
                match keys {
                    None => Verdict::fail("a JSON object with `keys`", "something else"),
                    Some(keys) => {
                        let private: Vec<String> = keys
                            .iter()
                            .flat_map(|k| {
                                ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
                                    .into_iter()
                                    .filter(|m| k.get(*m).is_some())
                            })
                            .map(String::from)
                            .collect();
                        Verdict::from_bool(private.is_empty(), "public members only", || {
                            format!(
                                "private member{} {}",
                                if private.len() == 1 { "" } else { "s" },
                                private.join(", ")
                            )
                        })
                    }
                }
            }
        },
    },
    ClientCheckDef {
        id: "client.ciba.certificate",
        severity: Severity::Must,
        rule: "RFC 8705 §2.1, PSC",
        url: "https://www.rfc-editor.org/rfc/rfc8705#section-2.1",
        summary: "every CIBA request presents the client certificate, of the registered subject",
        evaluate: |o, reg| {
            if !reg.method.uses_certificate() {
                return Verdict::na(format!("the client authenticates with {}", reg.method));
            }
            every(ciba(o), NO_CIBA, |r| match (&r.certificate, &reg.subject) {
                (None, _) => Err(format!("{} without a client certificate", r.endpoint.label())),
                (Some(c), Some(subject)) if c.subject.as_deref() != Some(subject.as_str()) => {
                    Err(format!("a certificate of subject {}", c.subject.as_deref().unwrap_or("?")))
                }
                _ => Ok(()),
            })
        },
    },
    ClientCheckDef {
        id: "client.ciba.openid-scope",
        severity: Severity::Must,
        rule: "CIBA §7.1",
        url: CIBA,
        summary: "the authentication request's scope contains openid",
        evaluate: |o, _| {
            every(o.of(Endpoint::Backchannel), NO_CIBA, |r| {
                let scope = r.param("scope").unwrap_or_default();
                scope.split(' ').any(|s| s == "openid").then_some(()).ok_or_else(|| format!("scope `{scope}`"))
            })
        },
    },
    ClientCheckDef {
        id: "client.ciba.one-hint",
        severity: Severity::Must,
        rule: "CIBA §7.1",
        url: CIBA,
        summary: "exactly one of login_hint_token, id_token_hint, login_hint",
        evaluate: |o, _| {
            every(o.of(Endpoint::Backchannel), NO_CIBA, |r| {
                let n =
                    ["login_hint_token", "id_token_hint", "login_hint"].iter().filter(|h| r.param(h).is_some()).count();
                (n == 1).then_some(()).ok_or_else(|| format!("{n} hints"))
            })
        },
    },
    ClientCheckDef {
        id: "client.ciba.psc-parameters",
        severity: Severity::Must,
        rule: "PSC CIBA guide",
        url: PSC,
        summary: "binding_message, acr_values and channel as Pro Santé Connect requires",
        evaluate: |o, reg| {
            every(o.of(Endpoint::Backchannel), NO_CIBA, |r| {
                let mut missing = Vec::new();
                if r.param("binding_message").is_none_or(str::is_empty) {
                    missing.push("binding_message".to_string());
                }
                if let Some(acr) = &reg.acr_values
                    && r.param("acr_values") != Some(acr.as_str())
                {
                    missing.push(format!("acr_values={acr}"));
                }
                if r.param("channel").is_none() {
                    missing.push("channel".into());
                }
                missing.is_empty().then_some(()).ok_or_else(|| format!("no {}", missing.join(", no ")))
            })
        },
    },
    ClientCheckDef {
        id: "client.ciba.interval",
        severity: Severity::Must,
        rule: "CIBA §7.3 (interval)",
        url: CIBA,
        summary: "no poll sooner than interval after the previous request (the first poll included)",
        evaluate: |o, _| {
            polls_judged(o, |flow| {
                let mut previous = flow.request.at;
                for poll in &flow.polls {
                    if poll.at + TIMER_SLACK < previous + flow.interval {
                        return Err(format!(
                            "a poll {:.2} s after the previous request (interval {} s)",
                            poll.at.saturating_sub(previous).as_secs_f64(),
                            flow.interval.as_secs()
                        ));
                    }
                    previous = poll.at;
                }
                Ok(())
            })
        },
    },
    ClientCheckDef {
        id: "client.ciba.slow-down",
        severity: Severity::Must,
        rule: "CIBA §7.3, RFC 8628 §3.5",
        url: "https://www.rfc-editor.org/rfc/rfc8628#section-3.5",
        summary: "after slow_down every later poll waits 5 s longer",
        evaluate: |o, _| {
            let slowed =
                flows(o).into_iter().filter(|f| f.polls.iter().any(|p| p.answer.error.as_deref() == Some("slow_down")));
            let mut judged = 0;
            for flow in slowed {
                let mut extra = Duration::ZERO;
                let mut previous: Option<&Seen> = None;
                for poll in &flow.polls {
                    if let Some(prev) = previous.filter(|_| !extra.is_zero()) {
                        judged += 1;
                        let wanted = flow.interval + extra;
                        if poll.at + TIMER_SLACK < prev.at + wanted {
                            return Verdict::fail(
                                format!("a poll at least {} s after the previous one", wanted.as_secs()),
                                format!("{:.2} s", poll.at.saturating_sub(prev.at).as_secs_f64()),
                            );
                        }
                    }
                    if poll.answer.error.as_deref() == Some("slow_down") {
                        extra += Duration::from_secs(5);
                    }
                    previous = Some(poll);
                }
            }
            if judged == 0 { Verdict::na("no poll followed a slow_down") } else { Verdict::Pass }
        },
    },
    ClientCheckDef {
        id: "client.ciba.one-poll-in-flight",
        severity: Severity::Must,
        rule: "CIBA §7.3 (interval)",
        url: CIBA,
        summary: "never two polls in flight at once",
        evaluate: |o, _| {
            let polls: Vec<&Seen> = o.of(Endpoint::Poll).collect();
            if polls.len() < 2 {
                return Verdict::na("fewer than two polls");
            }
            for (i, a) in polls.iter().enumerate() {
                if let Some(b) = polls[i + 1..].iter().find(|b| b.at < a.answered) {
                    return Verdict::fail(
                        "each poll after the previous one's answer",
                        format!(
                            "a poll at {:.2} s while the one of {:.2} s was unanswered",
                            b.at.as_secs_f64(),
                            a.at.as_secs_f64()
                        ),
                    );
                }
            }
            Verdict::Pass
        },
    },
    ClientCheckDef {
        id: "client.ciba.stops-polling",
        severity: Severity::Must,
        rule: "CIBA §11, RFC 8628 §3.5",
        url: CIBA,
        summary: "no poll after an error other than authorization_pending and slow_down (access_denied, expired_token, invalid_grant, invalid_request, …), or once expires_in has passed",
        evaluate: |o, _| {
            let mut judged = 0;
            for flow in flows(o) {
                // CIBA §11 and RFC 8628 §3.5: of the token endpoint's refusals (4xx) only
                // authorization_pending and slow_down say "poll again"; every other error code
                // ends the request. A 429 or 5xx is a busy server: a retry is right then.
                let final_at = flow.polls.iter().find(|p| {
                    let refusal = (400..500).contains(&p.answer.status) && p.answer.status != 429;
                    refusal
                        && p.answer
                            .error
                            .as_deref()
                            .is_some_and(|e| !matches!(e, "authorization_pending" | "slow_down"))
                });
                let expired_at = flow.answered + flow.expires_in;
                let limit = final_at
                    .map(|f| f.answered + SENT_WITH_THE_FINAL_POLL)
                    .unwrap_or(Duration::MAX)
                    .min(expired_at + TIMER_SLACK);
                // A client that exited polls no more: that too is stopping.
                if final_at.is_some() || o.duration > expired_at || matches!(o.end, ClientEnd::Exited { .. }) {
                    judged += 1;
                }
                if let Some(late) = flow.polls.iter().find(|p| p.at > limit) {
                    let why = match final_at {
                        Some(f) if f.answered <= expired_at => {
                            format!("after {}", f.answer.error.as_deref().unwrap_or("?"))
                        }
                        _ => "after expires_in".into(),
                    };
                    return Verdict::fail(
                        "no poll after a final answer",
                        format!("a poll at {:.2} s {why}", late.at.as_secs_f64()),
                    );
                }
            }
            if judged == 0 {
                Verdict::na("no request ended with an error or outlived expires_in")
            } else {
                Verdict::Pass
            }
        },
    },
    ClientCheckDef {
        id: "client.ciba.auth-req-id-once",
        severity: Severity::Must,
        rule: "CIBA §11",
        url: CIBA,
        summary: "an auth_req_id is exchanged for tokens only once",
        evaluate: |o, _| {
            let done: Vec<_> = flows(o)
                .into_iter()
                .filter_map(|f| f.polls.iter().position(|p| p.answer.access_token.is_some()).map(|i| (f, i)))
                .collect();
            if done.is_empty() {
                return Verdict::na("no auth_req_id was exchanged for tokens");
            }
            for (flow, i) in done {
                if let Some(again) = flow.polls.get(i + 1) {
                    return Verdict::fail(
                        "no poll after the tokens",
                        format!("a poll at {:.2} s", again.at.as_secs_f64()),
                    );
                }
            }
            Verdict::Pass
        },
    },
    ClientCheckDef {
        id: "client.resilience.retry-after",
        severity: Severity::Should,
        rule: "RFC 9110 §10.2.3, RFC 6585 §4",
        url: RFC9110_RETRY,
        summary: "after a 503 or 429 with Retry-After, the next request to that endpoint waits that long",
        evaluate: |o, _| {
            let told =
                o.requests.iter().filter(|r| matches!(r.answer.status, 429 | 503) && r.answer.retry_after.is_some());
            every(told, "no answer carried Retry-After", |r| {
                let wait = Duration::from_secs(r.answer.retry_after.unwrap_or(0));
                let same = |n: &&Seen| {
                    n.endpoint == r.endpoint || (n.endpoint, r.endpoint) == (Endpoint::Token, Endpoint::Poll)
                };
                match o.requests.iter().filter(|n| n.at > r.at).find(same) {
                    Some(next) if next.at + TIMER_SLACK < r.answered + wait => Err(format!(
                        "the next {} request {:.2} s after a Retry-After of {} s",
                        r.endpoint.label(),
                        next.at.saturating_sub(r.answered).as_secs_f64(),
                        wait.as_secs()
                    )),
                    _ => Ok(()),
                }
            })
        },
    },
    ClientCheckDef {
        id: "client.resilience.backoff",
        severity: Severity::Should,
        rule: "RFC 9110 §15.6, RFC 6749 §5.2 (temporarily_unavailable)",
        url: "https://www.rfc-editor.org/rfc/rfc9110#section-15.6",
        summary: "after a 5xx the client backs off: at most 5 requests in the second that follows",
        evaluate: |o, _| {
            let failures = o.requests.iter().filter(|r| r.answer.status >= 500);
            every(failures, "the mock answered no 5xx", |r| {
                let soon = o
                    .requests
                    .iter()
                    .filter(|n| n.at > r.answered && n.at <= r.answered + Duration::from_secs(1))
                    .count();
                (soon <= BACKOFF_MAX_PER_SECOND).then_some(()).ok_or_else(|| {
                    format!(
                        "{soon} requests in the second after the {} at {:.2} s",
                        r.answer.status,
                        r.at.as_secs_f64()
                    )
                })
            })
        },
    },
];

const NO_ASSERTION: &str = "the client sent no client assertion";
const NO_CIBA: &str = "the client made no CIBA request";

pub fn find(id: &str) -> Option<&'static ClientCheckDef> {
    CHECKS.iter().find(|c| c.id == id)
}

/// Passes when `judge` holds for every item (at least one), fails on the first that does not.
fn every<'a>(
    items: impl Iterator<Item = &'a Seen>,
    none: &str,
    mut judge: impl FnMut(&Seen) -> Result<(), String>,
) -> Verdict {
    let mut judged = 0;
    for item in items {
        judged += 1;
        if let Err(seen) = judge(item) {
            return Verdict::fail(
                format!("for request {judged} and every other"),
                format!("{seen} (at {:.2} s)", item.at.as_secs_f64()),
            );
        }
    }
    if judged == 0 { Verdict::na(none) } else { Verdict::Pass }
}

/// A parameter from the form body, else the query (a GET carries it there).
fn param_anywhere<'a>(r: &'a Seen, name: &str) -> Option<&'a str> {
    r.param(name).or_else(|| r.query_param(name))
}

fn authenticated(o: &Observation) -> impl Iterator<Item = &Seen> {
    o.requests.iter().filter(|r| matches!(r.endpoint, Endpoint::Token | Endpoint::Poll | Endpoint::Backchannel))
}

fn ciba(o: &Observation) -> impl Iterator<Item = &Seen> {
    o.requests.iter().filter(|r| matches!(r.endpoint, Endpoint::Poll | Endpoint::Backchannel))
}

fn methods_used(r: &Seen) -> Vec<AuthMethod> {
    let mut used = Vec::new();
    if r.header("authorization").is_some_and(|h| h.starts_with("Basic ")) {
        used.push(AuthMethod::ClientSecretBasic);
    }
    if r.param("client_secret").is_some() {
        used.push(AuthMethod::ClientSecretPost);
    }
    if r.param("client_assertion").is_some() {
        used.push(AuthMethod::PrivateKeyJwt);
    }
    used
}

fn names(methods: &[AuthMethod]) -> String {
    methods.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
}

/// The two halves of a Basic header, still form-encoded (split at the first colon).
fn basic_credentials(r: &Seen) -> Option<(String, String)> {
    let encoded = r.header("authorization")?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Whether `s` is what application/x-www-form-urlencoded encoding produces: only unreserved
/// characters, `+` and `%XX`.
fn is_form_encoded(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                i += 3
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b'+' => i += 1,
            _ => return false,
        }
    }
    true
}

fn with_assertion(o: &Observation) -> impl Iterator<Item = &Seen> {
    authenticated(o).filter(|r| param_anywhere(r, "client_assertion").is_some())
}

fn decode_jwt(jwt: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut parts = jwt.split('.');
    let (h, p) = (parts.next()?, parts.next()?);
    let object =
        |part: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()?.as_object().cloned();
    Some((object(h)?, object(p)?))
}

fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// Judges every assertion: `judge(header, claims, unix seconds of the request)`.
fn assertions(
    o: &Observation,
    mut judge: impl FnMut(&Map<String, Value>, &Map<String, Value>, i64) -> Result<(), String>,
) -> Verdict {
    every(with_assertion(o), NO_ASSERTION, |r| {
        let jwt = param_anywhere(r, "client_assertion").unwrap_or_default();
        match decode_jwt(jwt) {
            None => Err("a client_assertion that is not a JWT".into()),
            Some((header, claims)) => {
                judge(&header, &claims, (o.started_unix_ms / 1000) as i64 + r.at.as_secs() as i64)
            }
        }
    })
}

/// One CIBA authentication request and the polls for its auth_req_id.
struct Flow<'a> {
    request: &'a Seen,
    answered: Duration,
    interval: Duration,
    expires_in: Duration,
    polls: Vec<&'a Seen>,
}

/// CIBA Core §7.3: without `interval` the client waits 5 s.
const DEFAULT_INTERVAL_SECS: u64 = 5;

fn flows(o: &Observation) -> Vec<Flow<'_>> {
    o.of(Endpoint::Backchannel)
        .filter_map(|r| {
            let id = r.answer.auth_req_id.as_deref()?;
            Some(Flow {
                request: r,
                answered: r.answered,
                interval: Duration::from_secs(r.answer.interval.unwrap_or(DEFAULT_INTERVAL_SECS)),
                expires_in: Duration::from_secs(r.answer.expires_in.unwrap_or(u64::MAX / 4)),
                polls: o.of(Endpoint::Poll).filter(|p| param_anywhere(p, "auth_req_id") == Some(id)).collect(),
            })
        })
        .collect()
}

fn polls_judged(o: &Observation, mut judge: impl FnMut(&Flow) -> Result<(), String>) -> Verdict {
    let flows: Vec<Flow> = flows(o).into_iter().filter(|f| !f.polls.is_empty()).collect();
    if flows.is_empty() {
        return Verdict::na("the client made no poll");
    }
    for flow in &flows {
        if let Err(seen) = judge(flow) {
            return Verdict::fail("polls at least interval apart", seen);
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::observation::Answer;

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut seen = HashSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.id), "{}", c.id);
            assert!(c.id.starts_with("client."), "{}", c.id);
            assert!(c.url.starts_with("https://"));
        }
    }

    /// A CIBA request answered at 0 s (interval 1 s, 60 s to live) and its polls: (second sent,
    /// status, error).
    fn ciba_observation(polls: &[(u64, u16, Option<&str>)]) -> Observation {
        let seen = |at: u64, endpoint, answer| Seen {
            at: Duration::from_secs(at),
            answered: Duration::from_secs(at),
            endpoint,
            method: "POST".into(),
            path: "/x".into(),
            query: vec![],
            headers: vec![],
            form: vec![("auth_req_id".into(), "request-1".into())],
            content_type: Some("application/x-www-form-urlencoded".into()),
            certificate: None,
            answer,
        };
        let started = Answer {
            status: 200,
            auth_req_id: Some("request-1".into()),
            interval: Some(1),
            expires_in: Some(60),
            ..Answer::default()
        };
        let mut requests = vec![seen(0, Endpoint::Backchannel, started)];
        for (at, status, error) in polls {
            let answer = Answer { status: *status, error: error.map(str::to_owned), ..Answer::default() };
            requests.push(seen(*at, Endpoint::Poll, answer));
        }
        Observation {
            requests,
            unrecorded: 0,
            duration: Duration::from_secs(30),
            started_unix_ms: 0,
            jwks: None,
            end: ClientEnd::Ended,
        }
    }

    /// CIBA §11: only authorization_pending and slow_down ask for another poll; any other
    /// refusal ends the request, while a 503 or 429 is a busy server a client may retry.
    #[test]
    fn stops_polling_after_any_final_refusal_but_not_after_a_busy_answer() {
        let check = CHECKS.iter().find(|c| c.id == "client.ciba.stops-polling").expect("listed");
        let registration = Registration {
            client_id: "c".into(),
            method: AuthMethod::TlsClientAuth,
            secret: None,
            scopes: vec![],
            kids: vec![],
            subject: None,
            issuer: "https://as.example".into(),
            token_endpoint: "https://as.example/token".into(),
            acr_values: None,
        };
        let judge = |polls: &[(u64, u16, Option<&str>)]| (check.evaluate)(&ciba_observation(polls), &registration);
        for final_error in ["invalid_request", "unauthorized_client", "access_denied"] {
            let verdict =
                judge(&[(1, 400, Some("authorization_pending")), (2, 400, Some(final_error)), (4, 400, None)]);
            assert!(matches!(verdict, Verdict::Fail { .. }), "a poll after {final_error}: {verdict:?}");
            let verdict = judge(&[(1, 400, Some("authorization_pending")), (2, 400, Some(final_error))]);
            assert_eq!(verdict, Verdict::Pass, "stopped after {final_error}");
        }
        for busy in [(2, 503, Some("temporarily_unavailable")), (2, 429, Some("too_many_requests"))] {
            let verdict = judge(&[(1, 400, Some("slow_down")), busy, (4, 200, None)]);
            assert!(!matches!(verdict, Verdict::Fail { .. }), "a retry after {busy:?}: {verdict:?}");
        }
    }

    #[test]
    fn form_encoding_is_recognised() {
        assert!(is_form_encoded("reserved+client%3A1"));
        assert!(!is_form_encoded("s:e%c+r/et=1"));
        assert_eq!(form_decode("reserved+client%3A1"), "reserved client:1");
    }
}
