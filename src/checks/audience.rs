//! Audience-restricted and JWT access tokens: RFC 8707 resource indicators (RFC 9700 §2.3) and
//! the RFC 9068 profile of JWT access tokens. An opaque token cannot be read: the JWT checks
//! answer "not applicable" with that reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::token_errors::refused_with;
use super::wire::{jwt_claims, param};
use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::Exchange;

const RFC8707: &str = "https://www.rfc-editor.org/rfc/rfc8707#section-2";
const RFC9068_2_1: &str = "https://www.rfc-editor.org/rfc/rfc9068#section-2.1";
const RFC9068_2_2: &str = "https://www.rfc-editor.org/rfc/rfc9068#section-2.2";
const RFC9068_4: &str = "https://www.rfc-editor.org/rfc/rfc9068#section-4";

/// The claims RFC 9068 §2.2 makes REQUIRED.
const REQUIRED_CLAIMS: &[&str] = &["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc8707.2.audience",
        // §2: the server "SHOULD audience-restrict issued access tokens to the resource(s)
        // indicated"; the audience suite requires it (RFC 9700 §2.3).
        severity: Severity::Should,
        rule: "RFC 8707 §2, RFC 9700 §2.3",
        url: RFC8707,
        summary: "a token asked for a `resource` names that resource in its aud (or the identifier the target says the server maps it to, as §2 allows)",
        evaluate: |x| {
            let Some(resource) = param(x, "resource") else {
                return Verdict::na("the request named no resource");
            };
            let claims = match jwt_access_token(x) {
                Ok((_, claims)) => claims,
                Err(na) => return na,
            };
            // §2: "the exact resource value" or a value the server maps it to (`resource.aud`).
            let mapped = x.context.mapped_audience.as_deref();
            let names = |a: &str| a == resource || Some(a) == mapped;
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => names(a),
                Some(Value::Array(a)) => a.iter().any(|v| v.as_str().is_some_and(names)),
                _ => false,
            };
            let expected = match mapped {
                Some(m) => format!("aud containing {resource} or {m} (the target's resource.aud for it)"),
                None => format!("aud containing {resource}"),
            };
            Verdict::from_bool(ok, expected, || {
                format!("aud {}", claims.get("aud").map(Value::to_string).unwrap_or_else(|| "absent".into()))
            })
        },
    },
    CheckDef {
        id: "rfc8707.2.invalid-target",
        severity: Severity::Should,
        rule: "RFC 8707 §2 (invalid_target)",
        url: RFC8707,
        summary: "a `resource` the server does not know is refused with invalid_target",
        evaluate: |x| {
            if param(x, "resource").is_none() {
                return Verdict::na("the request named no resource");
            }
            refused_with(x, "invalid_target")
        },
    },
    CheckDef {
        id: "rfc9068.2.1.typ",
        severity: Severity::Must,
        rule: "RFC 9068 §2.1",
        url: RFC9068_2_1,
        summary: "a JWT access token's header says typ `at+jwt`",
        evaluate: |x| match jwt_access_token(x) {
            Err(na) => na,
            Ok((header, _)) => {
                let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
                Verdict::from_bool(
                    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"),
                    "typ at+jwt",
                    || if typ.is_empty() { "no typ".into() } else { format!("typ {typ}") },
                )
            }
        },
    },
    CheckDef {
        id: "rfc9068.2.2.claims",
        severity: Severity::Must,
        rule: "RFC 9068 §2.2",
        url: RFC9068_2_2,
        summary: "a JWT access token carries iss, exp, aud, sub, client_id, iat and jti",
        evaluate: |x| match jwt_access_token(x) {
            Err(na) => na,
            Ok((_, claims)) => {
                let missing: Vec<&str> = REQUIRED_CLAIMS.iter().copied().filter(|c| !claims.contains_key(*c)).collect();
                Verdict::from_bool(missing.is_empty(), "every REQUIRED claim", || format!("no {}", missing.join(", ")))
            }
        },
    },
    CheckDef {
        id: "rfc9068.4.other-audience-refused",
        severity: Severity::Must,
        rule: "RFC 9068 §4, RFC 9700 §2.3",
        url: RFC9068_4,
        summary: "the resource refuses a token issued for another resource (401)",
        evaluate: |x| {
            if !x.context.subject.as_ref().is_some_and(|s| s.for_other_resource) {
                return Verdict::na("the token presented was not asked for another resource");
            }
            Verdict::from_bool(x.response.status == 401, "status 401", || x.response.summary())
        },
    },
    CheckDef {
        id: "rfc9068.2.2.sub-client",
        severity: Severity::Should,
        rule: "RFC 9068 §2.2 (sub)",
        url: RFC9068_2_2,
        summary: "a client_credentials JWT access token's sub names the client (its client_id)",
        evaluate: |x| {
            if x.context.grant_type.as_deref() != Some("client_credentials") {
                return Verdict::na("not a client_credentials token (a resource owner may be the sub)");
            }
            match jwt_access_token(x) {
                Err(na) => na,
                Ok((_, claims)) => {
                    let text = |k: &str| claims.get(k).and_then(Value::as_str);
                    let client = x.context.client_id.as_deref().or(text("client_id"));
                    let Some(client) = client else { return Verdict::na("the client's id is not known") };
                    Verdict::from_bool(text("sub") == Some(client), format!("sub {client}"), || match text("sub") {
                        Some(sub) => format!("sub {sub}"),
                        None => "no sub".into(),
                    })
                }
            }
        },
    },
    CheckDef {
        id: super::ACCESS_TOKEN_SIGNATURE,
        severity: Severity::Must,
        rule: "RFC 9068 §2.1, §4",
        url: RFC9068_4,
        summary: "a JWT access token is signed with an asymmetric algorithm by a key in the server's JWKS",
        evaluate: |x| match jwt_access_token(x) {
            Err(na) => na,
            Ok((header, _)) => {
                let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
                if alg.is_empty() || alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
                    return Verdict::fail("an asymmetric alg (RFC 9068 §2.1)", format!("alg {alg:?}"));
                }
                match &x.context.access_token_signature {
                    Some(Ok(())) => Verdict::Pass,
                    Some(Err(why)) => Verdict::fail("a signature that verifies with a key at jwks_uri", why.clone()),
                    None => Verdict::na("the signature was not checked"),
                }
            }
        },
    },
];

/// The header and claims of a successful answer's access token, if it is a JWT.
type Object = serde_json::Map<String, Value>;

fn jwt_access_token(x: &Exchange) -> Result<(Object, Object), Verdict> {
    if !x.response.is_success() {
        return Err(Verdict::na(format!("not a success response (status {})", x.response.status)));
    }
    let token = x.response.json_str("access_token").ok_or_else(|| Verdict::na("no access_token"))?;
    let claims = jwt_claims(token).ok_or_else(|| Verdict::na("the access token is opaque, not a JWT"))?;
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.as_object().cloned())
        .unwrap_or_default();
    Ok((header, claims))
}
