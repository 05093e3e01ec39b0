//! Refusals at the token endpoint: RFC 6749 §5.2, §2.3, §3.2.

use super::wire::{auth_scheme, is_error_charset, param, parse_challenge};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::exchange::{AuthUsed, Exchange};

/// Checks of the `error-response` bundle: the format of any error answer.
pub const ERROR_RESPONSE: &[&str] = &[
    "rfc6749.5.2.error-status",
    "rfc6749.5.2.error-json",
    "rfc6749.5.2.error-code-registered",
    "rfc6749.5.2.error-charset",
];

/// RFC 6749 §5.2's error codes for the token endpoint.
const REGISTERED_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

/// Extension error codes (RFC 6749 §8.5, the OAuth Extensions Error Registry), each legitimate
/// when the request used the parameter of its extension.
const EXTENSION_ERRORS: &[(&str, &str)] = &[("invalid_target", "resource")];

const SECTION_5_2: &str = "https://www.rfc-editor.org/rfc/rfc6749#section-5.2";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc6749.5.2.refused",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "a request the server must refuse gets a 4xx answer and no token",
        evaluate: refused,
    },
    CheckDef {
        id: "rfc6749.3.2.post-only",
        severity: Severity::Must,
        rule: "RFC 6749 §3.2",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-3.2",
        summary: "the token endpoint answers only POST: a GET gets no token",
        evaluate: post_only,
    },
    CheckDef {
        id: "rfc6749.2.3.single-auth-method",
        // §2.3's MUST NOT binds the client; §5.2 names invalid_request for the server's refusal
        // without making the refusal a MUST (django-oauth-toolkit, for one, takes the request).
        severity: Severity::Should,
        rule: "RFC 6749 §2.3 (the client MUST NOT), §5.2 (invalid_request)",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3",
        summary: "a request using two client authentication methods is refused with invalid_request",
        evaluate: two_auth_methods,
    },
    CheckDef {
        id: "rfc7591.2.unregistered-method",
        severity: Severity::Should,
        rule: "RFC 7591 §2 (token_endpoint_auth_method), RFC 6749 §5.2",
        url: "https://www.rfc-editor.org/rfc/rfc7591#section-2",
        summary: "a client authenticating with a method it is not registered for is refused (invalid_client)",
        evaluate: |x| {
            judges(
                x.context.deviations.unregistered_method,
                "authenticates with a method the client is not registered for",
                || "used a method the target registers for the client".into(),
            )
            .unwrap_or_else(|| refused_with(x, "invalid_client"))
        },
    },
    CheckDef {
        id: "rfc6749.5.2.unsupported-grant-type",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "an unknown grant_type is refused with unsupported_grant_type",
        evaluate: unsupported_grant,
    },
    CheckDef {
        id: "rfc6749.5.2.invalid-request",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "a request without grant_type is refused with invalid_request",
        evaluate: missing_grant,
    },
    CheckDef {
        id: "rfc6749.5.2.invalid-scope",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "a scope the client may not have is refused with invalid_scope",
        evaluate: |x| {
            judges(param(x, "scope").is_some(), "asks for a scope", || "asked for none".into())
                .unwrap_or_else(|| refused_with(x, "invalid_scope"))
        },
    },
    CheckDef {
        id: "rfc6749.5.2.invalid-client",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "a wrong secret or an unknown client is refused with invalid_client",
        evaluate: bad_credentials,
    },
    CheckDef {
        id: "rfc6749.5.2.invalid-client-401",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "invalid_client after authenticating with the Authorization header is answered 401",
        evaluate: invalid_client_401,
    },
    CheckDef {
        id: "rfc6749.5.2.www-authenticate",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "invalid_client after Basic authentication carries `WWW-Authenticate: Basic`",
        evaluate: www_authenticate_basic,
    },
    CheckDef {
        id: "rfc6749.5.2.error-status",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "errors are answered 400 (401 allowed for invalid_client)",
        evaluate: error_status,
    },
    CheckDef {
        id: "rfc6749.5.2.error-json",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "an error answer is application/json with a string `error` member",
        evaluate: error_json,
    },
    CheckDef {
        id: "rfc6749.5.2.error-code-registered",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2",
        url: SECTION_5_2,
        summary: "`error` is one of RFC 6749 §5.2's codes, or a registered extension's for a parameter the request used (§8.5)",
        evaluate: error_code_registered,
    },
    CheckDef {
        id: "rfc6749.5.2.error-charset",
        severity: Severity::Must,
        rule: "RFC 6749 §5.2, Appendix A.7–A.8",
        url: SECTION_5_2,
        summary: "`error` and `error_description` use only %x20-21 / %x23-5B / %x5D-7E",
        evaluate: error_charset,
    },
];

fn error_only(x: &Exchange) -> Option<Verdict> {
    (x.response.status < 400).then(|| Verdict::na(format!("not an error response (status {})", x.response.status)))
}

/// Refused at all: a 4xx answer that carries no token, whatever its body says.
pub(super) fn refused(x: &Exchange) -> Verdict {
    let r = &x.response;
    let issued = r.json_str("access_token").is_some();
    Verdict::from_bool((400..500).contains(&r.status) && !issued, "a 4xx answer without an access token", || {
        r.summary()
    })
}

fn post_only(x: &Exchange) -> Verdict {
    if let Some(v) = judges(x.request.method == "GET", "is a GET", || format!("was a {}", x.request.method)) {
        return v;
    }
    // A GET without the client's credentials is refused for those alone: it would prove
    // nothing about GET. Only Basic and a TLS certificate can carry them outside the URL.
    let authenticated = matches!(x.context.auth, Some(AuthUsed::ClientSecretBasic | AuthUsed::TlsClientAuth));
    if let Some(v) = judges(authenticated, "carries the client's credentials (Basic, or its TLS certificate)", || {
        String::from("carried none, so a refusal would not be about GET")
    }) {
        return v;
    }
    // A token handed out counts whether or not its body parses (form-encoded, cut short).
    let r = &x.response;
    let issued = r.is_success()
        && (r.json_str("access_token").is_some() || String::from_utf8_lossy(&r.body).contains("access_token"));
    Verdict::from_bool(!issued, "no access token", || x.response.summary())
}

fn two_auth_methods(x: &Exchange) -> Verdict {
    let header = auth_scheme(x).is_some();
    let in_form = param(x, "client_secret").is_some() || param(x, "client_assertion").is_some();
    judges(header && in_form, "authenticates twice: an Authorization header and credentials in the form", || {
        format!("sent {}", if header { "only an Authorization header" } else { "no Authorization header" })
    })
    .unwrap_or_else(|| refused_with(x, "invalid_request"))
}

fn unsupported_grant(x: &Exchange) -> Verdict {
    let grant = param(x, "grant_type");
    judges(
        grant.as_deref().is_some_and(|g| g != "client_credentials"),
        "names a grant_type the server does not support",
        || format!("sent grant_type {}", grant.as_deref().unwrap_or("(none)")),
    )
    .unwrap_or_else(|| refused_with(x, "unsupported_grant_type"))
}

fn missing_grant(x: &Exchange) -> Verdict {
    let grant = param(x, "grant_type");
    judges(grant.is_none(), "has no grant_type", || format!("sent grant_type {}", grant.unwrap_or_default()))
        .unwrap_or_else(|| refused_with(x, "invalid_request"))
}

fn bad_credentials(x: &Exchange) -> Verdict {
    let d = &x.context.deviations;
    judges(d.wrong_secret || d.unknown_client, "carries a wrong secret or an unknown client id", || {
        "carried the registered client's own credentials".into()
    })
    .unwrap_or_else(|| refused_with(x, "invalid_client"))
}

/// Refused the way the rule says: a 4xx answer whose JSON body has `error` = `code`. A refusal
/// without a readable code (an empty 403, an HTML page) is not this rule kept.
pub(super) fn refused_with(x: &Exchange, code: &str) -> Verdict {
    let r = &x.response;
    if !(400..500).contains(&r.status) {
        return Verdict::fail(format!("a 4xx refusal with error={code}"), r.summary());
    }
    match r.json_str("error") {
        Some(seen) if seen == code => Verdict::Pass,
        Some(seen) => Verdict::fail(format!("error={code}"), format!("error={seen} ({})", r.summary())),
        None => Verdict::fail(format!("a JSON error body with error={code}"), r.summary()),
    }
}

fn invalid_client_after_basic(x: &Exchange) -> Option<Verdict> {
    if !x.context.auth.is_some_and(|a| a.used_authorization_header()) {
        return Some(Verdict::na("the client did not authenticate with the Authorization header"));
    }
    if x.response.json_str("error") != Some("invalid_client") {
        return Some(Verdict::na("the answer is not an invalid_client error"));
    }
    None
}

fn invalid_client_401(x: &Exchange) -> Verdict {
    if let Some(na) = invalid_client_after_basic(x) {
        return na;
    }
    Verdict::from_bool(x.response.status == 401, "status 401", || x.response.summary())
}

fn www_authenticate_basic(x: &Exchange) -> Verdict {
    if let Some(na) = invalid_client_after_basic(x) {
        return na;
    }
    let header = x.response.header("www-authenticate");
    let basic = header.and_then(parse_challenge).is_some_and(|c| c.scheme.eq_ignore_ascii_case("basic"));
    Verdict::from_bool(basic, "WWW-Authenticate: Basic …", || {
        format!("WWW-Authenticate: {}", header.unwrap_or("(absent)"))
    })
}

fn error_status(x: &Exchange) -> Verdict {
    if let Some(na) = error_only(x) {
        return na;
    }
    let status = x.response.status;
    match x.response.json_str("error") {
        Some("invalid_client") | None => {
            Verdict::from_bool(status == 400 || status == 401, "status 400 or 401", || x.response.summary())
        }
        Some(code) => {
            Verdict::from_bool(status == 400, format!("status 400 for error={code}"), || x.response.summary())
        }
    }
}

fn error_json(x: &Exchange) -> Verdict {
    if let Some(na) = error_only(x) {
        return na;
    }
    let r = &x.response;
    let json_type = r.media_type().as_deref() == Some("application/json");
    let has_error = r.json_str("error").is_some();
    Verdict::from_bool(json_type && has_error, "Content-Type: application/json and a string error member", || {
        r.summary()
    })
}

fn error_code_registered(x: &Exchange) -> Verdict {
    if let Some(na) = error_only(x) {
        return na;
    }
    match x.response.json_str("error") {
        None => Verdict::na("no readable error member"),
        Some(code) => {
            let extension = EXTENSION_ERRORS.iter().any(|(c, p)| *c == code && super::wire::param(x, p).is_some())
                || (code == "invalid_dpop_proof" && x.context.dpop.is_some());
            Verdict::from_bool(
                REGISTERED_ERRORS.contains(&code) || extension,
                format!("one of {}", REGISTERED_ERRORS.join(", ")),
                || format!("error={code}"),
            )
        }
    }
}

fn error_charset(x: &Exchange) -> Verdict {
    if let Some(na) = error_only(x) {
        return na;
    }
    let Some(body) = x.response.json_object() else {
        return Verdict::na("body is not a JSON object");
    };
    for member in ["error", "error_description"] {
        if let Some(text) = body.get(member).and_then(|v| v.as_str()) {
            if !is_error_charset(text) {
                return Verdict::fail(
                    format!("{member} in %x20-21 / %x23-5B / %x5D-7E"),
                    format!("{member}: {text:?}"),
                );
            }
        }
    }
    Verdict::Pass
}
