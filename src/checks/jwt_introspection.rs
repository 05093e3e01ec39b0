//! RFC 9701: an introspection answer as a signed JWT, for a caller that asks for one with
//! `Accept: application/token-introspection+jwt`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{CheckDef, Severity, Verdict};
use crate::model::INTROSPECTION_JWT;
use crate::protocol::exchange::Exchange;

const RFC9701_5: &str = "https://www.rfc-editor.org/rfc/rfc9701#section-5";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc9701.5.content-type",
        severity: Severity::Must,
        rule: "RFC 9701 §5",
        url: RFC9701_5,
        summary: "a caller asking for a JWT gets Content-Type application/token-introspection+jwt",
        evaluate: |x| {
            if let Some(na) = not_asked(x) {
                return na;
            }
            let media = x.response.media_type();
            Verdict::from_bool(media.as_deref() == Some(INTROSPECTION_JWT), INTROSPECTION_JWT, || {
                format!("{} ({})", media.unwrap_or_else(|| "no Content-Type".into()), x.response.summary())
            })
        },
    },
    CheckDef {
        id: "rfc9701.5.typ",
        severity: Severity::Must,
        rule: "RFC 9701 §5",
        url: RFC9701_5,
        summary: "the JWT's header says typ token-introspection+jwt",
        evaluate: |x| match answer(x) {
            Err(na) => na,
            Ok((header, _)) => {
                let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
                Verdict::from_bool(
                    typ.eq_ignore_ascii_case("token-introspection+jwt") || typ.eq_ignore_ascii_case(INTROSPECTION_JWT),
                    "typ token-introspection+jwt",
                    || if typ.is_empty() { "no typ".into() } else { format!("typ {typ}") },
                )
            }
        },
    },
    CheckDef {
        id: "rfc9701.5.claims",
        severity: Severity::Must,
        rule: "RFC 9701 §5",
        url: RFC9701_5,
        summary: "the JWT carries iss (the server's issuer), iat, aud naming the caller, and the token_introspection object with active",
        evaluate: |x| match answer(x) {
            Err(na) => na,
            Ok((_, claims)) => {
                let mut wrong = Vec::new();
                if !claims.contains_key("iat") {
                    wrong.push("no iat".to_string());
                }
                // §5: iss "MUST be set to the issuer identifier of the authorization server".
                match (claims.get("iss").and_then(Value::as_str), x.context.expected_issuer.as_deref()) {
                    (None, _) => wrong.push("no iss".into()),
                    (Some(iss), Some(issuer)) if !super::discovery::same_issuer(issuer, iss) => {
                        wrong.push(format!("iss `{iss}`, not the issuer `{issuer}`"));
                    }
                    _ => {}
                }
                let caller = x.context.client_id.as_deref().unwrap_or_default();
                let names_caller = match claims.get("aud") {
                    Some(Value::String(a)) => a == caller,
                    Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(caller)),
                    _ => false,
                };
                if !names_caller {
                    wrong.push(format!("aud not the caller `{caller}`"));
                }
                let active = claims.get("token_introspection").and_then(|t| t.get("active")).and_then(Value::as_bool);
                if active.is_none() {
                    wrong.push("no token_introspection with a boolean active".into());
                }
                Verdict::from_bool(wrong.is_empty(), "every member RFC 9701 §5 requires", || wrong.join(", "))
            }
        },
    },
    CheckDef {
        id: super::INTROSPECTION_SIGNATURE,
        severity: Severity::Must,
        rule: "RFC 9701 §5, §6",
        url: RFC9701_5,
        summary: "the JWT answer is signed with an asymmetric algorithm by a key in the server's JWKS",
        evaluate: |x| match answer(x) {
            Err(na) => na,
            Ok((header, _)) => {
                // §6: the answer is signed (and may be encrypted on top); a MAC or none is no
                // signature a resource server can verify with the server's published keys.
                let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
                if alg.is_empty() || alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
                    return Verdict::fail("an asymmetric alg", format!("alg {alg:?}"));
                }
                match &x.context.answer_signature {
                    Some(Ok(())) => Verdict::Pass,
                    Some(Err(why)) => Verdict::fail("a signature that verifies with a key at jwks_uri", why.clone()),
                    None => Verdict::na("the signature was not checked"),
                }
            }
        },
    },
];

fn not_asked(x: &Exchange) -> Option<Verdict> {
    let asked =
        x.request.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("accept") && v.contains(INTROSPECTION_JWT));
    if !asked {
        return Some(Verdict::na("the caller did not ask for a JWT answer"));
    }
    (x.response.status != 200).then(|| Verdict::na(format!("not a 200 answer (status {})", x.response.status)))
}

type Object = serde_json::Map<String, Value>;

/// The header and claims of a JWT answer.
fn answer(x: &Exchange) -> Result<(Object, Object), Verdict> {
    if let Some(na) = not_asked(x) {
        return Err(na);
    }
    let text = std::str::from_utf8(&x.response.body).unwrap_or("").trim();
    let part = |i: usize| -> Option<Object> {
        let bytes = URL_SAFE_NO_PAD.decode(text.split('.').nth(i)?).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()?.as_object().cloned()
    };
    match (text.split('.').count(), part(0), part(1)) {
        (3, Some(header), Some(claims)) => Ok((header, claims)),
        _ => Err(Verdict::na("the answer is not a JWT (rfc9701.5.content-type judges it)")),
    }
}
