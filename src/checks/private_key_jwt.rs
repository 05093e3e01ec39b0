//! private_key_jwt client authentication: RFC 7523 §3, RFC 7521 §4.2, RFC 8725, and SMART
//! Backend Services STU2.2 (requirement numbers as `@NNN`). Every refusal is `invalid_client`
//! (SMART @340).

use super::token_errors::refused_with;
use super::token_success::token_issued;
use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::Exchange;

const RFC7523_3: &str = "https://www.rfc-editor.org/rfc/rfc7523#section-3";
const SMART: &str = "https://hl7.org/fhir/smart-app-launch/STU2.2/client-confidential-asymmetric.html";
const RFC8725: &str = "https://www.rfc-editor.org/rfc/rfc8725#section-3.1";

fn invalid_client(x: &Exchange) -> Verdict {
    refused_with(x, "invalid_client")
}

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc7523.2.2.private-key-jwt",
        severity: Severity::Must,
        rule: "RFC 7523 §2.2, SMART @339",
        url: "https://www.rfc-editor.org/rfc/rfc7523#section-2.2",
        summary: "a valid signed client assertion gets an access token",
        evaluate: token_issued,
    },
    CheckDef {
        id: "smart.system-scopes",
        severity: Severity::Must,
        rule: "SMART 2.2 Backend Services, scopes",
        url: "https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html",
        summary: "system scopes are granted in SMART v1 (system/*.read) and v2 (system/Patient.rs) syntax",
        evaluate: token_issued,
    },
    CheckDef {
        id: "rfc7523.3.1.iss",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (1), SMART @337",
        url: RFC7523_3,
        summary: "an assertion whose iss is not the client_id is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc7523.3.2.sub",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (2), SMART @337",
        url: RFC7523_3,
        summary: "an assertion whose sub is missing or not the client_id is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc7523.3.3.aud",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (3)",
        url: RFC7523_3,
        summary: "an assertion whose aud is not (or does not contain) the token endpoint URL is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc7523.3.4.exp",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (4)",
        url: RFC7523_3,
        summary: "an expired assertion, or one without exp, is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc7523.3.5.nbf",
        severity: Severity::Should,
        rule: "RFC 7523 §3 (5)",
        url: RFC7523_3,
        summary: "an assertion not valid before a time more than a minute ahead (nbf) is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc7523.3.9.signature",
        severity: Severity::Must,
        rule: "RFC 7523 §3 (9), SMART @338",
        url: RFC7523_3,
        summary: "an assertion with an invalid signature is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.331.exp-max-5-min",
        severity: Severity::Must,
        rule: "SMART @331",
        url: SMART,
        summary: "an assertion expiring more than five minutes ahead is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.330.jti-required",
        severity: Severity::Must,
        rule: "SMART @330",
        url: SMART,
        summary: "an assertion without jti is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.336.jti-replay",
        severity: Severity::Must,
        rule: "SMART @336",
        url: SMART,
        summary: "the same assertion (jti) sent twice is refused the second time",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.337.unknown-client",
        severity: Severity::Must,
        rule: "SMART @337, RFC 7523 §3 (1)",
        url: SMART,
        summary: "an assertion for an unknown client is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.338.key-lookup",
        severity: Severity::Must,
        rule: "SMART @338",
        url: SMART,
        summary: "an assertion whose kid matches no registered key (unknown kid, unregistered key) is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "smart.324.signing-alg",
        severity: Severity::Must,
        rule: "SMART @324, RFC 8725 §3.1",
        url: SMART,
        summary: "an assertion signed with an algorithm the server does not advertise (RS256) is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc8725.3.1.alg-none",
        severity: Severity::Must,
        rule: "RFC 8725 §3.1, RFC 7523 §3 (9)",
        url: RFC8725,
        summary: "an unsigned assertion (alg none) is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc8725.3.1.hs256-confusion",
        severity: Severity::Must,
        rule: "RFC 8725 §3.1",
        url: RFC8725,
        summary: "an HS256 assertion keyed with the client's public key is refused",
        evaluate: invalid_client,
    },
    CheckDef {
        id: "rfc8725.3.10.jku-refused",
        severity: Severity::Must,
        rule: "RFC 8725 §3.10, SMART @324",
        url: "https://www.rfc-editor.org/rfc/rfc8725#section-3.10",
        summary: "an assertion whose jku points at an unregistered JWKS is refused",
        evaluate: invalid_client,
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
        evaluate: refused_as_client_or_request,
    },
    CheckDef {
        id: "rfc7521.4.2.assertion-required",
        severity: Severity::Must,
        rule: "RFC 7521 §4.2",
        url: "https://www.rfc-editor.org/rfc/rfc7521#section-4.2",
        summary: "a client_assertion_type without client_assertion is refused (invalid_client or invalid_request)",
        evaluate: refused_as_client_or_request,
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
        None => Verdict::na("refused, but the error code is unreadable (see rfc6749.5.2.error-json)"),
    }
}

fn jku_not_fetched(x: &Exchange) -> Verdict {
    match x.context.jku_fetches {
        None => Verdict::na("the assertion carried no harness-served jku"),
        Some(n) => Verdict::from_bool(n == 0, "no request to the jku URL", || format!("{n} request(s) to the jku URL")),
    }
}
