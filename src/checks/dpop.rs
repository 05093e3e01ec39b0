//! RFC 9449 DPoP for client_credentials: a good proof gets a DPoP token bound to its key; a proof
//! broken in any of the ways §4.3 lists is refused with invalid_dpop_proof; the binding shows in
//! introspection; the resource takes the token only with a proof by its key; a server's nonce is
//! handed out the way §8 says.

use serde_json::Value;

use super::token_errors::refused_with;
use super::wire::{jwt_claims, parse_challenge};
use super::{CheckDef, Severity, Verdict};
use crate::model::{DpopProof, ResourceDpop};
use crate::protocol::exchange::{DpopFacts, Exchange, RecordedResponse};

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc9449.5.token-type",
        // §5: a server "MAY elect to issue access tokens which are not DPoP bound" and answer
        // Bearer. Binding is what DPoP is for, so not binding is a SHOULD broken; a suite about
        // bound tokens requires it.
        severity: Severity::Should,
        rule: "RFC 9449 §5",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-5",
        summary: "a token request with a valid DPoP proof gets token_type DPoP (§5 lets a server answer Bearer instead, binding nothing)",
        evaluate: |x| {
            if let Err(na) = good_proof(x) {
                return na;
            }
            if !x.response.is_success() {
                return Verdict::fail("a DPoP-bound token", x.response.summary());
            }
            let token_type = x.response.json_str("token_type").unwrap_or("");
            Verdict::from_bool(token_type.eq_ignore_ascii_case("DPoP"), "token_type DPoP", || {
                format!("token_type {token_type}: a token bound to no key")
            })
        },
    },
    CheckDef {
        id: "rfc9449.6.cnf-jkt",
        severity: Severity::Must,
        rule: "RFC 9449 §6.1",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-6.1",
        summary: "a DPoP-bound JWT access token carries cnf.jkt, the proof key's thumbprint",
        evaluate: |x| {
            let facts = match good_proof(x) {
                Ok(f) => f,
                Err(na) => return na,
            };
            if !x.response.is_success() {
                return Verdict::na(format!("no token (status {})", x.response.status));
            }
            let Some(claims) = x.response.json_str("access_token").and_then(jwt_claims) else {
                return Verdict::na("the access token is opaque, not a JWT");
            };
            let jkt = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
            Verdict::from_bool(jkt == Some(facts.jkt.as_str()), format!("cnf.jkt {}", facts.jkt), || {
                jkt.map(|j| format!("cnf.jkt {j}")).unwrap_or_else(|| "no cnf.jkt".into())
            })
        },
    },
    CheckDef {
        id: "rfc9449.4.3.invalid-proof",
        severity: Severity::Must,
        rule: "RFC 9449 §4.3, §5",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-4.3",
        summary: "a broken DPoP proof (typ, alg none or symmetric, private jwk, signature, htm, htu, iat) is refused with invalid_dpop_proof (a stale one may get use_dpop_nonce)",
        evaluate: |x| match x.context.dpop.as_ref() {
            // §4.3 (11), §11.1: a server may judge freshness by its nonce rather than by iat, and
            // answer a stale proof with use_dpop_nonce: a refusal all the same.
            Some(d)
                if d.broken == Some(DpopProof::StaleIat.label())
                    && x.response.json_str("error") == Some("use_dpop_nonce") =>
            {
                refused_with(x, "use_dpop_nonce")
            }
            Some(d) if d.broken.is_some() && !d.replayed && d.presented.is_none() => {
                refused_with(x, "invalid_dpop_proof")
            }
            _ => Verdict::na("the token request carried no broken DPoP proof"),
        },
    },
    CheckDef {
        id: "rfc9449.11.1.replayed-proof",
        severity: Severity::Should,
        rule: "RFC 9449 §11.1",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-11.1",
        summary: "a DPoP proof sent a second time (same jti) is refused with invalid_dpop_proof",
        evaluate: |x| match x.context.dpop.as_ref() {
            Some(d) if d.replayed => refused_with(x, "invalid_dpop_proof"),
            _ => Verdict::na("the request did not resend an earlier DPoP proof"),
        },
    },
    CheckDef {
        id: "rfc9449.6.2.introspection",
        severity: Severity::Must,
        rule: "RFC 9449 §6, §6.2",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-6.2",
        summary: "introspecting a DPoP-bound token gives its binding: cnf.jkt of the proof key, and token_type DPoP if present",
        evaluate: introspection_binding,
    },
    CheckDef {
        id: "rfc9449.7.1.accepted",
        severity: Severity::Must,
        rule: "RFC 9449 §7.1",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-7.1",
        summary: "the resource accepts a DPoP-bound token sent with the DPoP scheme and a proof by its key (with ath)",
        evaluate: |x| match presented(x) {
            Some(ResourceDpop::Good) => unbound(x).unwrap_or_else(|| {
                Verdict::from_bool(x.response.is_success(), "a 2xx answer", || x.response.summary())
            }),
            _ => Verdict::na("the call did not present a DPoP-bound token with a good proof"),
        },
    },
    CheckDef {
        id: "rfc9449.7.1.proof-refused",
        severity: Severity::Must,
        rule: "RFC 9449 §4.3 (12), §7.1",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-7.1",
        summary: "the resource refuses a DPoP-bound token whose proof lacks ath or is signed by another key (401, a DPoP challenge)",
        evaluate: |x| match presented(x) {
            Some(ResourceDpop::NoAth | ResourceDpop::OtherKey) => {
                if let Some(blocked) = unbound(x) {
                    return blocked;
                }
                let header = x.response.header("www-authenticate").unwrap_or("");
                let ok = x.response.status == 401 && has_scheme(header, "DPoP");
                Verdict::from_bool(ok, "status 401 with a WWW-Authenticate: DPoP challenge", || {
                    format!(
                        "{}, WWW-Authenticate: {}",
                        x.response.summary(),
                        if header.is_empty() { "(absent)" } else { header }
                    )
                })
            }
            _ => Verdict::na("the call did not present a DPoP-bound token with a broken proof"),
        },
    },
    CheckDef {
        id: "rfc9449.7.2.bearer-refused",
        severity: Severity::Must,
        rule: "RFC 9449 §7.2",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-7.2",
        summary: "the resource refuses a DPoP-bound token sent as a Bearer token (401)",
        evaluate: |x| match presented(x) {
            Some(ResourceDpop::AsBearer) => unbound(x)
                .unwrap_or_else(|| Verdict::from_bool(x.response.status == 401, "status 401", || x.response.summary())),
            _ => Verdict::na("the call did not present a DPoP-bound token as a Bearer token"),
        },
    },
    CheckDef {
        id: "rfc9449.8.nonce",
        severity: Severity::Must,
        rule: "RFC 9449 §8",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-8",
        summary: "a server that answers use_dpop_nonce hands out the nonce in DPoP-Nonce and takes the proof that carries it",
        evaluate: |x| match x.context.dpop.as_ref().and_then(|d| d.nonce_asked) {
            None => Verdict::na("the server did not ask for a DPoP nonce (§8 lets it choose)"),
            Some(asked) if !asked.header => {
                Verdict::fail("a DPoP-Nonce header with the use_dpop_nonce error", x.response.summary())
            }
            // Taken means answered: a retry refused in any way (the nonce asked for again, the
            // proof called invalid, a 401) shows the server did not take the proof it asked for.
            Some(_) if asks_nonce(&x.response) => Verdict::fail(
                "the proof with the server's nonce taken",
                format!("use_dpop_nonce again ({})", x.response.summary()),
            ),
            Some(_) => {
                Verdict::from_bool(x.response.is_success(), "the proof with the server's nonce taken (a 2xx)", || {
                    x.response.summary()
                })
            }
        },
    },
];

/// How a resource call presented a DPoP-bound token, if it did.
fn presented(x: &Exchange) -> Option<ResourceDpop> {
    x.context.dpop.as_ref().and_then(|d| d.presented)
}

/// The resource checks judge a token known to be DPoP-bound (the server answered token_type
/// DPoP); without one, the resource's answer says nothing about DPoP.
fn unbound(x: &Exchange) -> Option<Verdict> {
    let bound = x.context.subject.as_ref().is_some_and(|s| s.dpop_jkt.is_some());
    (!bound).then(|| Verdict::blocked("the token is not DPoP-bound (the server did not answer token_type DPoP)"))
}

/// The answer is a `use_dpop_nonce` error: the token endpoint's JSON error (§8) or a
/// resource's `WWW-Authenticate: DPoP error="use_dpop_nonce"` (§9).
pub fn asks_nonce(r: &RecordedResponse) -> bool {
    r.json_str("error") == Some("use_dpop_nonce")
        || r.header("www-authenticate")
            .and_then(parse_challenge)
            .and_then(|c| c.param("error").map(str::to_owned))
            .as_deref()
            == Some("use_dpop_nonce")
}

/// `header` holds a challenge with `scheme` (a resource may offer DPoP beside Bearer).
fn has_scheme(header: &str, scheme: &str) -> bool {
    header.split(',').any(|part| {
        let first = part.trim_start().split(char::is_whitespace).next().unwrap_or("");
        first.eq_ignore_ascii_case(scheme)
    })
}

fn introspection_binding(x: &Exchange) -> Verdict {
    let Some(jkt) = x.context.subject.as_ref().and_then(|s| s.dpop_jkt.as_deref()) else {
        return Verdict::blocked(
            "the token introspected is not DPoP-bound (the server did not answer token_type DPoP)",
        );
    };
    let Some(body) = x.response.json_object().filter(|b| b.get("active") == Some(&Value::Bool(true))) else {
        return Verdict::na("the token is not introspected active");
    };
    let seen = body.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
    if seen != Some(jkt) {
        return Verdict::fail(
            format!("cnf.jkt {jkt}"),
            seen.map(|j| format!("cnf.jkt {j}")).unwrap_or_else(|| "no cnf.jkt".into()),
        );
    }
    match body.get("token_type").and_then(Value::as_str) {
        Some(t) if !t.eq_ignore_ascii_case("DPoP") => {
            Verdict::fail("token_type DPoP (§6.2)", format!("token_type {t}"))
        }
        _ => Verdict::Pass,
    }
}

fn good_proof(x: &Exchange) -> Result<&DpopFacts, Verdict> {
    match &x.context.dpop {
        None => Err(Verdict::na("the request carried no DPoP proof")),
        Some(d) if d.presented.is_some() => Err(Verdict::na("a resource call, not a token request")),
        Some(d) if d.broken.is_some() || d.replayed => Err(Verdict::na("the proof was broken on purpose")),
        Some(d) => Ok(d),
    }
}
