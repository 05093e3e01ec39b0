//! RFC 9449 DPoP for client_credentials: a good proof gets a DPoP token bound to its key; a proof
//! broken in any of the ways §4.3 lists is refused with invalid_dpop_proof.

use serde_json::Value;

use super::token_errors::refused_with;
use super::wire::jwt_claims;
use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::{DpopFacts, Exchange};

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc9449.5.token-type",
        severity: Severity::Must,
        rule: "RFC 9449 §5",
        url: "https://www.rfc-editor.org/rfc/rfc9449#section-5",
        summary: "a token request with a valid DPoP proof gets token_type DPoP",
        evaluate: |x| {
            if let Err(na) = good_proof(x) {
                return na;
            }
            if !x.response.is_success() {
                return Verdict::fail("a DPoP-bound token", x.response.summary());
            }
            let token_type = x.response.json_str("token_type").unwrap_or("");
            Verdict::from_bool(token_type.eq_ignore_ascii_case("DPoP"), "token_type DPoP", || {
                format!("token_type {token_type}")
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
        summary: "a broken DPoP proof (typ, alg, private jwk, signature, htm, htu, iat) is refused with invalid_dpop_proof",
        evaluate: |x| match x.context.dpop.as_ref().and_then(|d| d.broken) {
            None => Verdict::na("the request carried no broken DPoP proof"),
            Some(_) => refused_with(x, "invalid_dpop_proof"),
        },
    },
];

fn good_proof(x: &Exchange) -> Result<&DpopFacts, Verdict> {
    match &x.context.dpop {
        None => Err(Verdict::na("the request carried no DPoP proof")),
        Some(d) if d.broken.is_some() => Err(Verdict::na("the proof was broken on purpose")),
        Some(d) => Ok(d),
    }
}
