//! private_key_jwt client authentication: RFC 7523 §3, RFC 7521 §4.2, RFC 8725, and SMART
//! Backend Services STU2.2 (requirement numbers as `@NNN`). Every refusal is `invalid_client`
//! (SMART @340).

use serde_json::Value;

use super::token_errors::refused_with;
use super::token_success::token_issued;
use super::wire::{auth_scheme, param};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::auth::assertion::ASSERTION_TYPE;
use crate::protocol::exchange::{AssertionFacts, Exchange};

const RFC7523_3: &str = "https://www.rfc-editor.org/rfc/rfc7523#section-3";
const SMART: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/client-confidential-asymmetric.html";
const RFC8725: &str = "https://www.rfc-editor.org/rfc/rfc8725#section-3.1";

/// The request sends a client assertion of which `ok` holds (the deviation the check is about),
/// and is refused with invalid_client.
fn refused_assertion(x: &Exchange, about: &str, ok: impl Fn(&AssertionFacts, &Exchange) -> bool) -> Verdict {
    let Some(a) = &x.context.assertion else {
        return judges(false, about, || "sent no client assertion".into()).unwrap_or(Verdict::Pass);
    };
    judges(ok(a, x), about, || {
        format!(
            "sent an assertion with header {} and claims {}",
            Value::Object(a.header.clone()),
            Value::Object(a.claims.clone())
        )
    })
    .unwrap_or_else(|| refused_with(x, "invalid_client"))
}

fn claim<'a>(a: &'a AssertionFacts, name: &str) -> Option<&'a Value> {
    a.claims.get(name).filter(|v| !v.is_null())
}

fn client_id(x: &Exchange) -> &str {
    x.context.client_id.as_deref().unwrap_or("")
}

fn now() -> i64 {
    crate::support::clock::unix_now()
}

fn header_alg(a: &AssertionFacts) -> &str {
    a.header.get("alg").and_then(Value::as_str).unwrap_or("")
}

/// The assertion is the good one: iss = sub = client_id, aud = the token endpoint, exp, jti,
/// a registered key, an advertised alg, sent with the right type and no other credential.
fn good_assertion(x: &Exchange) -> Option<Verdict> {
    let d = &x.context.deviations;
    let Some(a) = &x.context.assertion else {
        return judges(false, "authenticates with a client assertion", || "sent none".into());
    };
    let id = client_id(x);
    let good = claim(a, "iss").and_then(Value::as_str) == Some(id)
        && claim(a, "sub").and_then(Value::as_str) == Some(id)
        && claim(a, "aud").and_then(Value::as_str) == Some(a.token_endpoint.as_str())
        && claim(a, "exp").is_some()
        && claim(a, "jti").is_some()
        && matches!(header_alg(a), "RS384" | "ES384")
        && !(d.bad_signature || d.unregistered_key || d.replayed_assertion || d.unknown_client)
        && param(x, "client_assertion_type").as_deref() == Some(ASSERTION_TYPE)
        && auth_scheme(x).is_none();
    judges(
        good,
        "sends a good client assertion (iss = sub = client_id, aud = the token endpoint, RS384 or ES384) and nothing else",
        || "deviated from the good assertion".into(),
    )
}

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc7523.2.2.private-key-jwt",
        severity: Severity::Must,
        rule: "RFC 7523 §2.2, SMART @339",
        url: "https://www.rfc-editor.org/rfc/rfc7523#section-2.2",
        summary: "a valid signed client assertion gets an access token",
        evaluate: |x| good_assertion(x).unwrap_or_else(|| token_issued(x)),
    },
    CheckDef {
        id: "smart.system-scopes",
        severity: Severity::Must,
        rule: "SMART 2.2 Backend Services, scopes",
        url: "https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html",
        summary: "system scopes are granted in SMART v1 (system/*.read) and v2 (system/Patient.rs) syntax",
        evaluate: |x| {
            let scope = param(x, "scope").unwrap_or_default();
            judges(scope.split(' ').any(|s| s.starts_with("system/")), "asks for a `system/` scope", || {
                format!("asked for `{scope}`")
            })
            .or_else(|| good_assertion(x))
            .unwrap_or_else(|| token_issued(x))
        },
    },
    CheckDef {
        id: "rfc7523.3.1.iss",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (1), SMART @337",
        url: RFC7523_3,
        summary: "an assertion whose iss is not the client_id is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion whose iss is not the client_id", |a, x| {
                claim(a, "iss").and_then(Value::as_str) != Some(client_id(x))
            })
        },
    },
    CheckDef {
        id: "rfc7523.3.2.sub",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (2), SMART @337",
        url: RFC7523_3,
        summary: "an assertion whose sub is missing or not the client_id is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion without sub, or whose sub is not the client_id", |a, x| {
                claim(a, "sub").and_then(Value::as_str) != Some(client_id(x))
            })
        },
    },
    CheckDef {
        id: "rfc7523.3.3.aud",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (3)",
        url: RFC7523_3,
        summary: "an assertion whose aud is not (or does not contain) the token endpoint URL is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion whose aud is not (or does not hold) the token endpoint", |a, _| {
                match claim(a, "aud") {
                    Some(Value::String(s)) => *s != a.token_endpoint,
                    Some(Value::Array(list)) => !list.iter().any(|v| v.as_str() == Some(a.token_endpoint.as_str())),
                    _ => true,
                }
            })
        },
    },
    CheckDef {
        id: "rfc7523.3.4.exp",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (4)",
        url: RFC7523_3,
        summary: "an expired assertion, or one without exp, is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an expired assertion, or one without exp", |a, _| {
                claim(a, "exp").and_then(Value::as_i64).is_none_or(|e| e < now())
            })
        },
    },
    CheckDef {
        id: "rfc7523.3.5.nbf",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (5)",
        url: RFC7523_3,
        summary: "an assertion not valid before a time more than a minute ahead (nbf) is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion whose nbf is more than a minute ahead", |a, _| {
                claim(a, "nbf").and_then(Value::as_i64).is_some_and(|n| n > now() + 60)
            })
        },
    },
    CheckDef {
        id: "rfc7523.3.9.signature",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (9), SMART @338",
        url: RFC7523_3,
        summary: "an assertion with an invalid signature is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion with a corrupted signature", |_, x| {
                x.context.deviations.bad_signature
            })
        },
    },
    CheckDef {
        id: "smart.331.exp-max-5-min",
        severity: Severity::Must,
        rule: "SMART @331",
        url: SMART,
        summary: "an assertion expiring more than five minutes ahead is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion expiring more than five minutes ahead", |a, _| {
                claim(a, "exp").and_then(Value::as_i64).is_some_and(|e| e > now() + 300)
            })
        },
    },
    CheckDef {
        id: "smart.330.jti-required",
        severity: Severity::Must,
        rule: "SMART @330",
        url: SMART,
        summary: "an assertion without jti is refused",
        evaluate: |x| refused_assertion(x, "sends an assertion without jti", |a, _| claim(a, "jti").is_none()),
    },
    CheckDef {
        id: "smart.336.jti-replay",
        severity: Severity::Must,
        rule: "SMART @336",
        url: SMART,
        summary: "the same assertion (jti) sent twice is refused the second time",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion the case already sent", |_, x| {
                x.context.deviations.replayed_assertion
            })
        },
    },
    CheckDef {
        id: "smart.337.unknown-client",
        severity: Severity::Must,
        rule: "SMART @337, RFC 7523 §3 (1)",
        url: SMART,
        summary: "an assertion for an unknown client is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion for a client the server does not know", |_, x| {
                x.context.deviations.unknown_client
            })
        },
    },
    CheckDef {
        id: "smart.338.key-lookup",
        severity: Severity::Must,
        rule: "SMART @338",
        url: SMART,
        summary: "an assertion whose kid matches no registered key (unknown kid, unregistered key) is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion whose kid matches no registered key", |a, x| {
                x.context.deviations.unregistered_key
                    || a.header.get("kid").and_then(Value::as_str) != a.registered_kid.as_deref()
            })
        },
    },
    CheckDef {
        id: "smart.324.signing-alg",
        severity: Severity::Must,
        rule: "SMART @324, RFC 8725 §3.1",
        url: SMART,
        summary: "an assertion signed with an algorithm the server does not advertise is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an assertion signed with an algorithm the server does not advertise", |a, _| {
                let alg = header_alg(a);
                match &a.advertised_algs {
                    Some(list) => !list.iter().any(|v| v == alg) && alg != "none" && !alg.starts_with("HS"),
                    None => !matches!(alg, "RS384" | "ES384" | "none") && !alg.starts_with("HS"),
                }
            })
        },
    },
    CheckDef {
        id: "rfc8725.3.1.key-alg",
        severity: Severity::Must,
        rule: "RFC 8725 §3.1",
        url: RFC8725,
        summary: "a key is used only with its registered algorithm: an assertion signed with another one (even one the server advertises) is refused",
        evaluate: |x| {
            refused_assertion(
                x,
                "sends an assertion signed with an advertised algorithm other than its key's registered one",
                |a, _| {
                    let alg = header_alg(a);
                    let advertised = a.advertised_algs.as_ref().is_some_and(|l| l.iter().any(|v| v == alg));
                    advertised && a.registered_alg.as_deref().is_some_and(|r| r != alg)
                },
            )
        },
    },
    CheckDef {
        id: "rfc8725.3.1.alg-none",
        severity: Severity::Must,
        rule: "RFC 8725 §3.1, RFC 7523 §3 (9)",
        url: RFC8725,
        summary: "an unsigned assertion (alg none) is refused",
        evaluate: |x| {
            refused_assertion(x, "sends an unsigned assertion (alg none)", |a, _| {
                header_alg(a).eq_ignore_ascii_case("none")
            })
        },
    },
    CheckDef {
        id: "rfc8725.3.1.hs256-confusion",
        severity: Severity::Must,
        rule: "RFC 8725 §3.1",
        url: RFC8725,
        summary: "an HS256 assertion keyed with the client's public key is refused",
        evaluate: |x| refused_assertion(x, "sends an HS256 assertion", |a, _| header_alg(a) == "HS256"),
    },
    CheckDef {
        id: "rfc8725.3.10.jku-refused",
        severity: Severity::Must,
        rule: "RFC 8725 §3.10, SMART @324",
        url: "https://www.rfc-editor.org/rfc/rfc8725#section-3.10",
        summary: "an assertion whose jku points at an unregistered JWKS is refused",
        evaluate: |x| refused_assertion(x, "sends an assertion with a jku header", |a, _| a.header.contains_key("jku")),
    },
    CheckDef {
        id: "rfc8725.3.10.jku-not-fetched",
        severity: Severity::Must,
        rule: "RFC 8725 §3.10, SMART @338",
        url: "https://www.rfc-editor.org/rfc/rfc8725#section-3.10",
        summary: "the server does not fetch a jku URL that is not registered for the client",
        evaluate: jku_not_fetched,
    },
    CheckDef {
        id: "rfc7521.4.2.assertion-type",
        severity: Severity::Must,
        rule: "RFC 7521 §4.2",
        url: "https://www.rfc-editor.org/rfc/rfc7521#section-4.2",
        summary: "a wrong client_assertion_type is refused (invalid_client or invalid_request)",
        evaluate: |x| {
            let t = param(x, "client_assertion_type");
            judges(t.as_deref().is_some_and(|t| t != ASSERTION_TYPE), "sends a wrong client_assertion_type", || {
                format!("sent client_assertion_type {}", t.as_deref().unwrap_or("(none)"))
            })
            .unwrap_or_else(|| refused_as_client_or_request(x))
        },
    },
    CheckDef {
        id: "rfc7521.4.2.assertion-required",
        severity: Severity::Must,
        rule: "RFC 7521 §4.2",
        url: "https://www.rfc-editor.org/rfc/rfc7521#section-4.2",
        summary: "a client_assertion_type without client_assertion is refused (invalid_client or invalid_request)",
        evaluate: |x| {
            let sent = param(x, "client_assertion").is_some();
            judges(
                !sent && param(x, "client_assertion_type").is_some(),
                "sends a client_assertion_type without client_assertion",
                || {
                    if sent { "sent a client_assertion".into() } else { "sent no client_assertion_type".into() }
                },
            )
            .unwrap_or_else(|| refused_as_client_or_request(x))
        },
    },
];

fn refused_as_client_or_request(x: &Exchange) -> Verdict {
    let r = &x.response;
    let expected = "a 4xx refusal with error=invalid_client or invalid_request";
    if !(400..500).contains(&r.status) {
        return Verdict::fail(expected, r.summary());
    }
    match r.json_str("error") {
        Some("invalid_client" | "invalid_request") => Verdict::Pass,
        Some(other) => Verdict::fail(expected, format!("error={other}")),
        None => Verdict::fail("a JSON error body with error=invalid_client or invalid_request", r.summary()),
    }
}

fn jku_not_fetched(x: &Exchange) -> Verdict {
    match x.context.jku_fetches {
        None => Verdict::na("the assertion carried no harness-served jku"),
        Some(n) => Verdict::from_bool(n == 0, "no request to the jku URL", || {
            format!("{} to the jku URL", crate::support::text::count(n, "request"))
        }),
    }
}
