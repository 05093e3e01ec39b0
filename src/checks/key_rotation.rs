//! Client key rotation with the JWKS by URL (SMART asymmetric client authentication): a server
//! caches the client's JWKS no longer than its `Cache-Control` says, so a key added to the set
//! works once that has run out and a key taken out stops working; and an assertion whose `kid`
//! it does not know makes it fetch the set at most once, however often it comes (no fetch storm).

use super::token_errors::refused_with;
use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::{Exchange, KeyRotationFacts, RotatedKey};

const SMART: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/client-confidential-asymmetric.html";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "smart.jwks.new-key",
        severity: Severity::Must,
        rule: "SMART 2.2 asymmetric client auth (JWKS caching)",
        url: SMART,
        summary: "an assertion signed with a key added to the client's JWKS is accepted once the cached set's max-age has run out",
        evaluate: |x| match signed_with(x) {
            Err(na) => na,
            Ok(f) if f.signed_with != RotatedKey::New => Verdict::na("not signed with the new key"),
            Ok(_) => {
                let issued =
                    x.response.is_success() && x.response.json_str("access_token").is_some_and(|t| !t.is_empty());
                Verdict::from_bool(issued, "a token for the assertion signed with the new key", || x.response.summary())
            }
        },
    },
    CheckDef {
        id: "smart.jwks.retired-key",
        severity: Severity::Must,
        rule: "SMART 2.2 asymmetric client auth (JWKS caching)",
        url: SMART,
        summary: "an assertion signed with a key taken out of the client's JWKS is refused (invalid_client) once the cached set's max-age has run out",
        evaluate: |x| match signed_with(x) {
            Err(na) => na,
            Ok(f) if f.signed_with != RotatedKey::Retired => Verdict::na("not signed with the retired key"),
            Ok(_) => refused_with(x, "invalid_client"),
        },
    },
    CheckDef {
        id: "smart.jwks.unknown-kid-fetches",
        severity: Severity::Should,
        rule: "SMART 2.2 asymmetric client auth (JWKS caching)",
        url: SMART,
        summary: "assertions with a kid the client's JWKS does not hold make the server fetch the set at most once (no fetch storm)",
        evaluate: |x| match signed_with(x) {
            Err(na) => na,
            Ok(f) if f.signed_with != RotatedKey::Unknown => Verdict::na("not signed with an unknown key"),
            Ok(f) if f.unknown_kid_requests < 2 => {
                Verdict::na("one request with an unknown kid says nothing about a storm (the case needs several)")
            }
            Ok(f) => Verdict::from_bool(
                f.unknown_kid_fetches <= 1,
                format!("at most one JWKS fetch for {} unknown-kid requests", f.unknown_kid_requests),
                || format!("{} fetches", f.unknown_kid_fetches),
            ),
        },
    },
];

fn signed_with(x: &Exchange) -> Result<&KeyRotationFacts, Verdict> {
    x.context.key_rotation.as_ref().ok_or_else(|| Verdict::na("no rotate_key step came before this assertion"))
}
