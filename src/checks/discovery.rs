//! Discovery documents: OpenID Connect Discovery 1.0, RFC 8414 authorization server metadata and
//! SMART App Launch 2.2
//! `/.well-known/smart-configuration` (@285–289, @372–394). A backend-only server need not
//! publish `authorization_endpoint` (it is conditional on app launch support).

use serde_json::{Map, Value};

use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::Exchange;

const OIDC: &str = "https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata";
const SMART: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/conformance.html";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "oidc.discovery.issuer",
        severity: Severity::Must,
        rule: "OIDC Discovery §4.3, RFC 8414 §3.3",
        url: "https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation",
        summary: "`issuer` is identical to the issuer the document was fetched for, in every metadata document the server publishes",
        evaluate: issuer_matches,
    },
    CheckDef {
        id: "oidc.discovery.required-members",
        severity: Severity::Must,
        rule: "OIDC Discovery §3",
        url: OIDC,
        summary: "the members OIDC Discovery §3 makes REQUIRED are present: issuer, token_endpoint, jwks_uri, response_types_supported, subject_types_supported, id_token_signing_alg_values_supported",
        evaluate: |x| {
            // In the `server-metadata` bundle the document may be RFC 8414's: OpenID rules do not apply.
            if x.context.document == Some("oauth-authorization-server") {
                return Verdict::na("RFC 8414 metadata, not OpenID Provider metadata");
            }
            // §3's REQUIRED members only: grant_types_supported and
            // token_endpoint_auth_methods_supported are OPTIONAL there (with defaults), so a
            // server leaving them out breaks no OpenID rule — SMART's own checks require what a
            // backend client needs. authorization_endpoint is left out as the module says.
            members_present(
                x,
                &[
                    "issuer",
                    "token_endpoint",
                    "jwks_uri",
                    "response_types_supported",
                    "subject_types_supported",
                    "id_token_signing_alg_values_supported",
                ],
            )
        },
    },
    CheckDef {
        id: "rfc8414.3.served",
        severity: Severity::Must,
        rule: "RFC 8414 §3, OIDC Discovery §4",
        url: "https://www.rfc-editor.org/rfc/rfc8414#section-3",
        summary: "the metadata is served at its well-known location as a JSON object (200, application/json)",
        evaluate: served,
    },
    CheckDef {
        id: "rfc8414.2.required-members",
        severity: Severity::Must,
        rule: "RFC 8414 §2",
        url: "https://www.rfc-editor.org/rfc/rfc8414#section-2",
        summary: "issuer, token_endpoint and response_types_supported are present",
        evaluate: |x| members_present(x, &["issuer", "token_endpoint", "response_types_supported"]),
    },
    CheckDef {
        id: "oidc.discovery.https-urls",
        severity: Severity::Must,
        rule: "OIDC Discovery §3",
        url: OIDC,
        summary: "endpoint URLs are absolute https URLs (http tolerated on loopback only)",
        evaluate: https_urls,
    },
    CheckDef {
        id: "smart.discovery.json",
        severity: Severity::Must,
        rule: "SMART @372",
        url: SMART,
        summary: "smart-configuration is JSON whatever the Accept header asks for",
        evaluate: json_document,
    },
    CheckDef {
        id: "smart.discovery.token-endpoint",
        severity: Severity::Must,
        rule: "SMART @376",
        url: SMART,
        summary: "smart-configuration has an absolute token_endpoint URL",
        evaluate: |x| members_present(x, &["token_endpoint"]),
    },
    CheckDef {
        id: "smart.discovery.client-credentials",
        severity: Severity::Must,
        rule: "SMART @285",
        url: SMART,
        summary: "grant_types_supported contains client_credentials",
        evaluate: |x| array_contains(x, "grant_types_supported", &["client_credentials"]),
    },
    CheckDef {
        id: "smart.discovery.asymmetric-capability",
        severity: Severity::Must,
        rule: "SMART @287",
        url: SMART,
        summary: "capabilities contains client-confidential-asymmetric",
        evaluate: |x| array_contains(x, "capabilities", &["client-confidential-asymmetric"]),
    },
    CheckDef {
        id: "smart.discovery.private-key-jwt",
        severity: Severity::Must,
        rule: "SMART @286",
        url: SMART,
        summary: "token_endpoint_auth_methods_supported contains private_key_jwt",
        evaluate: |x| array_contains(x, "token_endpoint_auth_methods_supported", &["private_key_jwt"]),
    },
    CheckDef {
        id: "smart.discovery.signing-algs",
        severity: Severity::Must,
        rule: "SMART @288",
        url: SMART,
        summary: "token_endpoint_auth_signing_alg_values_supported contains RS384 or ES384",
        evaluate: |x| array_contains(x, "token_endpoint_auth_signing_alg_values_supported", &["RS384", "ES384"]),
    },
    CheckDef {
        id: "smart.discovery.scopes-supported",
        severity: Severity::Should,
        rule: "SMART @289",
        url: SMART,
        summary: "scopes_supported is published",
        evaluate: |x| members_present(x, &["scopes_supported"]),
    },
    CheckDef {
        id: "smart.discovery.introspection-endpoint",
        severity: Severity::Should,
        rule: "SMART @393",
        url: SMART,
        summary: "introspection_endpoint is published (RECOMMENDED)",
        evaluate: |x| members_present(x, &["introspection_endpoint"]),
    },
];

fn served(x: &Exchange) -> Verdict {
    let r = &x.response;
    let json = r.media_type().is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    if r.status == 200 && r.json_object().is_some() && json {
        return Verdict::Pass;
    }
    let mut seen = crate::protocol::flows::discovery::describe_non_document(r);
    if r.status == 200 && r.json_object().is_some() {
        seen = format!("a JSON object sent as {}", r.header("content-type").unwrap_or("no Content-Type"));
    }
    if !x.context.tried.is_empty() {
        seen = format!("{seen}; before it, {}", x.context.tried.join("; "));
    }
    Verdict::fail(format!("a JSON metadata document at {}", x.request.url), seen)
}

/// The metadata document; without one, every check of it is blocked (the step's one failure is
/// the document itself: `smart.discovery.json`, the expected status, or the prerequisite).
fn document(x: &Exchange) -> Result<&Map<String, Value>, Verdict> {
    match x.response.json_object() {
        Some(doc) if x.response.status == 200 => Ok(doc),
        _ => Err(Verdict::blocked(format!(
            "no metadata document: {}",
            crate::protocol::flows::discovery::describe_non_document(&x.response)
        ))),
    }
}

fn issuer_matches(x: &Exchange) -> Verdict {
    let doc = match document(x) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let Some(expected) = x.context.expected_issuer.as_deref() else {
        return Verdict::na("no configured issuer to compare with");
    };
    let same = |seen: &str| same_issuer(expected, seen);
    // RFC 8414 §3.3: the issuer of every metadata document is the one the server is; a server
    // publishing both documents is judged on both.
    if let Some(other) = &x.context.also_published {
        match other.issuer.as_deref() {
            Some(seen) if same(seen) => {}
            seen => {
                return Verdict::fail(
                    format!("issuer {expected} in both metadata documents"),
                    format!("{} says {}", other.url, seen.map_or("no issuer".into(), |s| format!("issuer {s}"))),
                );
            }
        }
    }
    match doc.get("issuer").and_then(Value::as_str) {
        Some(seen) => Verdict::from_bool(same(seen), format!("issuer {expected}"), || format!("issuer {seen}")),
        None => Verdict::fail(format!("issuer {expected}"), "no issuer member"),
    }
}

/// `seen` is the configured issuer `expected`. That one is parsed as a URL, which adds `/` to an
/// empty path: only there may the two differ by that `/`. Anywhere else the issuer is compared
/// exactly (OIDC Discovery §4.3: identical), so `…/realms/a/` is not `…/realms/a`.
pub(super) fn same_issuer(expected: &str, seen: &str) -> bool {
    let empty_path = url::Url::parse(expected).is_ok_and(|u| u.path() == "/") && expected.ends_with('/');
    seen == expected || (empty_path && format!("{seen}/") == expected)
}

fn members_present(x: &Exchange, members: &[&str]) -> Verdict {
    let doc = match document(x) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let missing: Vec<&str> = members.iter().copied().filter(|m| doc.get(*m).is_none_or(Value::is_null)).collect();
    Verdict::from_bool(missing.is_empty(), members.join(", "), || format!("missing: {}", missing.join(", ")))
}

fn array_contains(x: &Exchange, member: &str, any_of: &[&str]) -> Verdict {
    let doc = match document(x) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let values: Vec<&str> = doc
        .get(member)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Verdict::from_bool(
        values.iter().any(|v| any_of.contains(v)),
        format!("{member} containing {}", any_of.join(" or ")),
        || format!("{member}: {values:?}"),
    )
}

fn https_urls(x: &Exchange) -> Verdict {
    let doc = match document(x) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let mut bad = Vec::new();
    for (name, value) in doc {
        let is_url_member = name == "issuer" || name.ends_with("_endpoint") || name.ends_with("_uri");
        let Some(text) = value.as_str().filter(|_| is_url_member) else { continue };
        let ok = match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" => true,
            Ok(u) if u.scheme() == "http" => {
                matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
            }
            _ => false,
        };
        if !ok {
            bad.push(format!("{name}={text}"));
        }
    }
    Verdict::from_bool(bad.is_empty(), "absolute https URLs", || bad.join(", "))
}

fn json_document(x: &Exchange) -> Verdict {
    // The rule holds for every Accept: the verdict says which one it was judged on (a pass on
    // `Accept: application/json` alone says nothing of a browser's `text/html`).
    let accept = x.request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("accept")).map(|(_, v)| v.trim());
    let r = &x.response;
    let ok = r.status == 200 && r.media_type().as_deref() == Some("application/json") && r.json_object().is_some();
    let expected =
        format!("200 application/json with a JSON object, asked with Accept: {}", accept.unwrap_or("(none)"));
    Verdict::from_bool(ok, expected, || r.summary())
}
