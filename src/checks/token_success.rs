//! Successful token responses: RFC 6749 §4.4, §5.1, §2.3.1, §3.3 and RFC 7519 consistency.

use super::wire::{auth_scheme, jwt_claims, param, scope_set};
use super::{CheckDef, Severity, Verdict, judges};
use crate::protocol::exchange::Exchange;

/// Checks of the `token-response` bundle: the format of any successful token answer.
pub const TOKEN_RESPONSE: &[&str] = &[
    "rfc6749.5.1.content-type",
    "rfc6749.5.1.access-token",
    "rfc6749.5.1.token-type",
    "rfc6749.5.1.expires-in",
    "rfc6749.5.1.expires-in-type",
    "rfc6749.5.1.scope-when-different",
    "rfc6749.5.1.cache-control",
    "rfc6749.5.1.pragma",
    "rfc6749.4.4.3.no-refresh-token",
    "rfc7519.exp-matches-expires-in",
];

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc6749.4.4.token-issued",
        severity: Severity::Must,
        rule: "RFC 6749 §4.4.3",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-4.4.3",
        summary: "a valid client_credentials request gets 200 and an access token",
        evaluate: token_issued,
    },
    CheckDef {
        id: "rfc6749.2.3.1.client-secret-basic",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1",
        summary: "client_secret_basic (HTTP Basic) authentication is supported",
        evaluate: |x| basic_only(x).unwrap_or_else(|| token_issued(x)),
    },
    CheckDef {
        id: "rfc6749.2.3.1.form-encoded-credentials",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1",
        summary: "Basic credentials are form-urlencoded before Base64; a secret with `:%+/` works",
        evaluate: form_encoded_credentials,
    },
    CheckDef {
        id: "rfc6749.2.3.1.client-secret-post",
        severity: Severity::Must,
        rule: "RFC 6749 §2.3.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1",
        summary: "client_secret_post works where the server advertises it",
        evaluate: client_secret_post,
    },
    CheckDef {
        id: "rfc6749.3.3.scope-order",
        severity: Severity::Must,
        rule: "RFC 6749 §3.3",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-3.3",
        summary: "the order of scope values does not matter",
        evaluate: scope_order,
    },
    CheckDef {
        id: "rfc6749.3.3.default-scope",
        severity: Severity::Must,
        rule: "RFC 6749 §3.3",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-3.3",
        summary: "without a scope parameter the server grants a default scope (and says it in `scope`) or refuses with invalid_scope",
        evaluate: default_scope,
    },
    CheckDef {
        id: "smart.token-response.expires-in",
        severity: Severity::Must,
        rule: "SMART 2.2 Backend Services, token response",
        url: "https://hl7.org/fhir/smart-app-launch/STU2.2/backend-services.html#issue-access-token",
        summary: "a Backend Services token response carries `expires_in` (REQUIRED there)",
        evaluate: |x| {
            success_only(x).unwrap_or_else(|| {
                let n = x.response.json_object().and_then(|o| o.get("expires_in")).and_then(|v| v.as_u64());
                Verdict::from_bool(n.is_some_and(|n| n > 0), "a positive expires_in", || x.response.summary())
            })
        },
    },
    CheckDef {
        id: "rfc6749.5.1.content-type",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "the token response is application/json",
        evaluate: content_type,
    },
    CheckDef {
        id: "rfc6749.5.1.access-token",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "the token response is a JSON object with a non-empty `access_token` string",
        evaluate: access_token,
    },
    CheckDef {
        id: "rfc6749.5.1.token-type",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1, RFC 6750 §4",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "`token_type` is `Bearer` (compared case-insensitively)",
        evaluate: token_type,
    },
    CheckDef {
        id: "rfc6749.5.1.expires-in",
        severity: Severity::Should,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "`expires_in` is present (RECOMMENDED)",
        evaluate: expires_in_present,
    },
    CheckDef {
        id: "rfc6749.5.1.expires-in-type",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "`expires_in`, when present, is a positive number of seconds (a JSON number)",
        evaluate: expires_in_type,
    },
    CheckDef {
        id: "rfc6749.5.1.scope-when-different",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "`scope` is returned when the granted scope differs from the requested one (or none was requested)",
        evaluate: scope_when_different,
    },
    CheckDef {
        id: "rfc6749.5.1.cache-control",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "a response carrying tokens has `Cache-Control: no-store`",
        evaluate: cache_control,
    },
    CheckDef {
        id: "rfc6749.5.1.pragma",
        severity: Severity::Must,
        rule: "RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-5.1",
        summary: "a response carrying tokens has `Pragma: no-cache`",
        evaluate: pragma,
    },
    CheckDef {
        id: "rfc6749.4.4.3.no-refresh-token",
        severity: Severity::Should,
        rule: "RFC 6749 §4.4.3",
        url: "https://www.rfc-editor.org/rfc/rfc6749#section-4.4.3",
        summary: "no `refresh_token` is issued for client_credentials",
        evaluate: no_refresh_token,
    },
    CheckDef {
        id: "rfc7519.exp-matches-expires-in",
        severity: Severity::Must,
        rule: "RFC 7519 §4.1.4, RFC 6749 §5.1",
        url: "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4",
        summary: "a JWT access token's `exp - iat` agrees with `expires_in` (± 5 s)",
        evaluate: exp_matches_expires_in,
    },
];

/// Allowed disagreement between a JWT's lifetime and `expires_in`, for rounding and clocks.
const LIFETIME_TOLERANCE_SECS: i64 = 5;

fn success_only(x: &Exchange) -> Option<Verdict> {
    (!x.response.is_success()).then(|| Verdict::na(format!("not a success response (status {})", x.response.status)))
}

/// The request is a client_credentials token request.
pub(super) fn client_credentials(x: &Exchange) -> Option<Verdict> {
    let grant = param(x, "grant_type");
    judges(
        x.request.method == "POST" && grant.as_deref() == Some("client_credentials"),
        "is a POST with grant_type=client_credentials",
        || format!("was a {} with grant_type {}", x.request.method, grant.as_deref().unwrap_or("(none)")),
    )
}

/// The request authenticates with Basic alone.
fn basic_only(x: &Exchange) -> Option<Verdict> {
    let scheme = auth_scheme(x);
    let post = param(x, "client_secret").is_some();
    judges(scheme.as_deref() == Some("Basic") && !post, "authenticates with HTTP Basic alone", || {
        describe_auth(scheme, post)
    })
}

fn describe_auth(scheme: Option<String>, post: bool) -> String {
    match (scheme, post) {
        (Some(s), true) => format!("sent `Authorization: {s}` and a client_secret in the form"),
        (Some(s), false) => format!("sent `Authorization: {s}`"),
        (None, true) => "sent the client_secret in the form".into(),
        (None, false) => "sent neither an Authorization header nor a client_secret".into(),
    }
}

fn form_encoded_credentials(x: &Exchange) -> Verdict {
    if let Some(v) = basic_only(x) {
        return v;
    }
    if let Some(v) = judges(
        x.context.credentials_need_encoding,
        "sends an id or secret that form-encoding changes (`:%+/`…)",
        || "sent credentials that form-encoding leaves as they are".into(),
    ) {
        return v;
    }
    token_issued(x)
}

fn client_secret_post(x: &Exchange) -> Verdict {
    let scheme = auth_scheme(x);
    let post = param(x, "client_secret").is_some();
    if let Some(v) = judges(
        post && scheme.is_none(),
        "sends client_id and client_secret in the form, and no Authorization header",
        || describe_auth(scheme, post),
    ) {
        return v;
    }
    token_issued(x)
}

fn scope_order(x: &Exchange) -> Verdict {
    let scope = param(x, "scope").unwrap_or_default();
    if let Some(v) =
        judges(scope_set(&scope).len() >= 2, "asks for two or more scopes", || format!("asked for `{scope}`"))
    {
        return v;
    }
    token_issued(x)
}

pub(super) fn token_issued(x: &Exchange) -> Verdict {
    if let Some(v) = client_credentials(x) {
        return v;
    }
    let r = &x.response;
    let has_token = r.json_str("access_token").is_some_and(|t| !t.is_empty());
    Verdict::from_bool(r.status == 200 && has_token, "status 200 with an access_token", || r.summary())
}

/// RFC 6749 §3.3: "If the client omits the scope parameter … the authorization server MUST
/// either process the request using a pre-defined default value or fail the request indicating
/// an invalid scope." A default it applies silently, without saying which, keeps neither.
fn default_scope(x: &Exchange) -> Verdict {
    let scope = param(x, "scope");
    if let Some(v) =
        judges(scope.is_none(), "has no scope parameter", || format!("asked for `{}`", scope.unwrap_or_default()))
    {
        return v;
    }
    let r = &x.response;
    let said =
        r.json_object().and_then(|o| o.get("scope")).and_then(|s| s.as_str()).is_some_and(|s| !s.trim().is_empty());
    if r.status == 200 && r.json_str("access_token").is_some() {
        return Verdict::from_bool(said, "a token whose answer says the default scope granted (`scope`)", || {
            "a token, and no `scope` member saying what was granted".into()
        });
    }
    Verdict::from_bool(
        (400..500).contains(&r.status) && r.json_str("error") == Some("invalid_scope"),
        "a token with its `scope`, or a refusal with invalid_scope",
        || r.summary(),
    )
}

fn content_type(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let media = x.response.media_type();
    Verdict::from_bool(media.as_deref() == Some("application/json"), "Content-Type: application/json", || {
        format!("Content-Type: {}", x.response.header("content-type").unwrap_or("(absent)"))
    })
}

fn access_token(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let ok = x.response.json_str("access_token").is_some_and(|t| !t.is_empty());
    Verdict::from_bool(ok, "a JSON object with a non-empty access_token string", || x.response.summary())
}

fn token_type(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    match x.response.json_object().and_then(|o| o.get("token_type")) {
        Some(serde_json::Value::String(t)) if t.eq_ignore_ascii_case("bearer") => Verdict::Pass,
        Some(other) => Verdict::fail("token_type \"Bearer\"", format!("token_type {other}")),
        None => Verdict::fail("token_type \"Bearer\"", "no token_type member"),
    }
}

fn expires_in_present(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let present = x.response.json_object().is_some_and(|o| o.contains_key("expires_in"));
    Verdict::from_bool(present, "an expires_in member", || "no expires_in member".into())
}

fn expires_in_type(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    match x.response.json_object().and_then(|o| o.get("expires_in")) {
        None => Verdict::na("no expires_in member"),
        Some(v) => {
            Verdict::from_bool(v.as_u64().is_some_and(|n| n > 0), "a positive integer", || format!("expires_in {v}"))
        }
    }
}

fn scope_when_different(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let Some(body) = x.response.json_object() else {
        return Verdict::na("body is not a JSON object");
    };
    if body.contains_key("scope") {
        return Verdict::Pass;
    }
    let requested = x.context.requested_scope.as_deref().filter(|s| !s.trim().is_empty());
    let Some(requested) = requested else {
        return Verdict::fail(
            "a scope member (no scope was requested, so the granted scope differs)",
            "no scope member",
        );
    };
    // The answer omits `scope`; if the token itself says what was granted, compare.
    let granted = body
        .get("access_token")
        .and_then(|t| t.as_str())
        .and_then(jwt_claims)
        .and_then(|c| c.get("scope").and_then(|s| s.as_str()).map(str::to_owned));
    match granted {
        Some(g) if scope_set(&g) != scope_set(requested) => Verdict::fail(
            format!("a scope member, since the token grants \"{g}\" and \"{requested}\" was requested"),
            "no scope member",
        ),
        _ => Verdict::Pass,
    }
}

fn has_directive(header: Option<&str>, directive: &str) -> bool {
    header.is_some_and(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case(directive)))
}

fn cache_control(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let h = x.response.header("cache-control");
    Verdict::from_bool(has_directive(h, "no-store"), "Cache-Control: no-store", || {
        format!("Cache-Control: {}", h.unwrap_or("(absent)"))
    })
}

fn pragma(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let h = x.response.header("pragma");
    Verdict::from_bool(has_directive(h, "no-cache"), "Pragma: no-cache", || {
        format!("Pragma: {}", h.unwrap_or("(absent)"))
    })
}

fn no_refresh_token(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    if x.context.grant_type.as_deref() != Some("client_credentials") {
        return Verdict::na("not a client_credentials grant");
    }
    let issued = x.response.json_object().is_some_and(|o| o.contains_key("refresh_token"));
    Verdict::from_bool(!issued, "no refresh_token", || "a refresh_token was issued".into())
}

fn exp_matches_expires_in(x: &Exchange) -> Verdict {
    if let Some(na) = success_only(x) {
        return na;
    }
    let Some(expires_in) = x.response.json_object().and_then(|o| o.get("expires_in")).and_then(|v| v.as_i64()) else {
        return Verdict::na("no numeric expires_in");
    };
    let Some(claims) = x.response.json_str("access_token").and_then(jwt_claims) else {
        return Verdict::na("the access token is not a JWT");
    };
    let Some(exp) = claims.get("exp").and_then(|v| v.as_i64()) else {
        return Verdict::na("the JWT has no numeric exp");
    };
    // With `iat` the lifetime is exact; without it, compare with the time of the answer. The
    // numbers are the server's: saturating, so i64::MAX and i64::MIN are a wrong lifetime, not
    // an overflow.
    let (lifetime, basis) = match claims.get("iat").and_then(|v| v.as_i64()) {
        Some(iat) => (exp.saturating_sub(iat), "exp - iat"),
        None => (exp.saturating_sub(crate::support::clock::unix_now()), "exp - now"),
    };
    Verdict::from_bool(
        lifetime.saturating_sub(expires_in).saturating_abs() <= LIFETIME_TOLERANCE_SECS,
        format!("{basis} within {LIFETIME_TOLERANCE_SECS} s of expires_in ({expires_in})"),
        || format!("{basis} = {lifetime}"),
    )
}
