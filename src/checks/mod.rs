//! The check catalogue: every rule the harness verifies, with a stable id, a severity, the spec
//! section it comes from, and a pure function of the exchange.
//!
//! A check whose precondition does not hold (e.g. "401 after Basic" on a response that is not an
//! `invalid_client` error) answers [`Verdict::NotApplicable`] with the reason: each server defect
//! then fails exactly the rule it breaks, and the report says why the others did not apply.

mod audience;
pub mod ciba;
pub mod client;
mod discovery;
pub mod dpop;
mod introspection;
mod jwt_introspection;
mod key_rotation;
mod private_key_jwt;
mod resource;
mod tls;
mod token_errors;
mod token_exchange;
mod token_success;
pub mod wire;

use serde::Serialize;

use crate::protocol::exchange::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    /// MUST / SHALL / REQUIRED: a failure fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// SHOULD / RECOMMENDED: a failure is a warning, unless `--strict` or the suite requires it.
    #[serde(rename = "SHOULD")]
    Should,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Must => "MUST",
            Severity::Should => "SHOULD",
        }
    }
}

/// What a check concluded about one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail {
        expected: String,
        seen: String,
    },
    NotApplicable(String),
    /// What the check judges could not be had (no metadata document): the one failure of the
    /// step names that, and the checks that depend on it are reported as blocked by it.
    Blocked(String),
}

impl Verdict {
    pub fn fail(expected: impl Into<String>, seen: impl Into<String>) -> Self {
        Verdict::Fail { expected: expected.into(), seen: seen.into() }
    }

    pub fn na(reason: impl Into<String>) -> Self {
        Verdict::NotApplicable(reason.into())
    }

    pub fn blocked(reason: impl Into<String>) -> Self {
        Verdict::Blocked(reason.into())
    }

    /// Pass when `ok`, else fail with the given expectation and observation.
    pub fn from_bool(ok: bool, expected: impl Into<String>, seen: impl FnOnce() -> String) -> Self {
        if ok { Verdict::Pass } else { Verdict::fail(expected, seen()) }
    }
}

/// A check is about one kind of request: on any other its verdict would say something untrue (a
/// "client_secret_post works" that passed on a Basic request). `None` when the request is the
/// kind the check is about; else the failed verdict, which names what was sent instead.
pub(crate) fn judges(ok: bool, about: &str, instead: impl FnOnce() -> String) -> Option<Verdict> {
    (!ok).then(|| {
        Verdict::fail(format!("a request that {about} (what this check judges)"), format!("the request {}", instead()))
    })
}

/// One rule of the catalogue.
pub struct CheckDef {
    pub id: &'static str,
    pub severity: Severity,
    /// Human reference, e.g. `RFC 6749 §5.1`.
    pub rule: &'static str,
    /// Link to the section.
    pub url: &'static str,
    /// One line: what must hold.
    pub summary: &'static str,
    pub evaluate: fn(&Exchange) -> Verdict,
}

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// Named groups of checks, so a scenario says `checks: [token-response]`.
pub struct Bundle {
    pub name: &'static str,
    pub summary: &'static str,
    pub checks: &'static [&'static str],
}

pub const BUNDLES: &[Bundle] = &[
    Bundle {
        name: "token-response",
        summary: "format of a successful token response (RFC 6749 §5.1)",
        checks: token_success::TOKEN_RESPONSE,
    },
    Bundle {
        name: "introspection-active",
        summary: "an introspection answer for a live token (RFC 7662 §2.2, SMART @271–283)",
        checks: &[
            "rfc7662.2.2.active",
            "rfc7662.2.2.scope",
            "rfc7662.2.2.client-id",
            "smart.introspection.exp",
            "rfc7662.2.2.exp-matches-jwt",
            "rfc7662.2.2.exp-matches-expires-in",
        ],
    },
    Bundle {
        name: "ciba-discovery",
        summary: "CIBA metadata (CIBA §4)",
        checks: &["ciba.4.backchannel-endpoint", "ciba.4.poll-mode", "ciba.4.grant-type"],
    },
    Bundle {
        name: "ciba-auth-response",
        summary: "a backchannel authentication answer (CIBA §7.3)",
        checks: &["ciba.7.3.auth-req-id", "ciba.7.3.expires-in", "ciba.7.3.interval"],
    },
    Bundle {
        name: "ciba-token-response",
        summary: "a CIBA token answer: RFC 6749 §5.1 format, the id_token, certificate binding (CIBA §10.1)",
        checks: &[
            "rfc6749.5.1.content-type",
            "rfc6749.5.1.access-token",
            "rfc6749.5.1.token-type",
            "rfc6749.5.1.expires-in",
            "rfc6749.5.1.cache-control",
            "rfc6749.5.1.pragma",
            "ciba.10.1.id-token",
            "ciba.id-token.signature",
            "ciba.id-token.claims",
            "ciba.id-token.aud",
            "ciba.id-token.auth-req-id",
            "rfc8705.3.cnf",
            "rfc7519.exp-matches-expires-in",
        ],
    },
    Bundle {
        name: "openid-configuration",
        summary: "the OpenID Provider metadata document (OIDC Discovery §3, §4.3)",
        checks: &["oidc.discovery.issuer", "oidc.discovery.required-members", "oidc.discovery.https-urls"],
    },
    Bundle {
        name: "server-metadata",
        summary: "the server's metadata: OpenID Provider metadata, else RFC 8414's (OIDC Discovery §3, §4; RFC 8414 §2, §3)",
        checks: &[
            "rfc8414.3.served",
            "oidc.discovery.issuer",
            "rfc8414.2.required-members",
            "oidc.discovery.required-members",
            "oidc.discovery.https-urls",
        ],
    },
    Bundle {
        name: "smart-configuration",
        summary: "the SMART well-known document for backend services (SMART 2.2 @285–289, @372–394)",
        checks: &[
            "smart.discovery.json",
            "smart.discovery.token-endpoint",
            "smart.discovery.client-credentials",
            "smart.discovery.asymmetric-capability",
            "smart.discovery.private-key-jwt",
            "smart.discovery.signing-algs",
            "smart.discovery.scopes-supported",
            "smart.discovery.introspection-endpoint",
            "oidc.discovery.https-urls",
        ],
    },
    Bundle {
        name: "jwt-access-token",
        summary: "a JWT access token as RFC 9068 profiles it (not applicable to opaque tokens)",
        checks: &["rfc9068.2.1.typ", "rfc9068.2.2.claims", "rfc9068.2.2.sub-client", ACCESS_TOKEN_SIGNATURE],
    },
    Bundle {
        name: "jwt-introspection",
        summary: "an introspection answer as a signed JWT (RFC 9701 §5)",
        checks: &["rfc9701.5.content-type", "rfc9701.5.typ", "rfc9701.5.claims", INTROSPECTION_SIGNATURE],
    },
    Bundle {
        name: "token-exchange-response",
        summary: "a token exchange answer: its members, its format, the certificate binding (RFC 8693 §2.2.1, RFC 8705 §3.1)",
        checks: &[
            "rfc8693.2.2.1.response",
            "rfc6749.5.1.content-type",
            "rfc6749.5.1.cache-control",
            "rfc8693.2.2.1.certificate-bound",
            "rfc7519.exp-matches-expires-in",
        ],
    },
    Bundle {
        name: "tls-floor",
        summary: "the TLS versions the token endpoint accepts (RFC 9325 §3.1.1)",
        checks: &["rfc9325.3.1.1.tls12", "rfc9325.3.1.1.tls13", "rfc9325.3.1.1.tls13-floor"],
    },
    Bundle {
        name: "error-response",
        summary: "format of an error response from the token endpoint (RFC 6749 §5.2)",
        checks: token_errors::ERROR_RESPONSE,
    },
];

/// The check that reads a JWT access token's signature: the runner fetches the server's JWKS for
/// the steps that expect it.
pub const ACCESS_TOKEN_SIGNATURE: &str = "rfc9068.4.signature";
/// The check that reads a JWT introspection answer's signature: the runner fetches the JWKS for it.
pub const INTROSPECTION_SIGNATURE: &str = "rfc9701.5.signature";

/// Why the binding checks do not apply to a client that did not ask for bound tokens (RFC 8705
/// §3.4): a server may bind them anyway, but need not.
pub(crate) const NOT_REGISTERED_FOR_BINDING: &str = "the client did not register for certificate-bound tokens (`tls_client_certificate_bound_access_tokens` in the target)";

/// Every check, in catalogue order.
pub fn catalogue() -> impl Iterator<Item = &'static CheckDef> {
    token_success::CHECKS
        .iter()
        .chain(token_errors::CHECKS)
        .chain(resource::CHECKS)
        .chain(private_key_jwt::CHECKS)
        .chain(discovery::CHECKS)
        .chain(introspection::CHECKS)
        .chain(ciba::CHECKS)
        .chain(audience::CHECKS)
        .chain(jwt_introspection::CHECKS)
        .chain(dpop::CHECKS)
        .chain(token_exchange::CHECKS)
        .chain(tls::CHECKS)
        .chain(key_rotation::CHECKS)
}

pub fn find(id: &str) -> Option<&'static CheckDef> {
    catalogue().find(|c| c.id == id)
}

/// A check id or a bundle name, expanded to checks; `None` if it names nothing.
pub fn resolve(name: &str) -> Option<Vec<&'static CheckDef>> {
    if let Some(check) = find(name) {
        return Some(vec![check]);
    }
    BUNDLES.iter().find(|b| b.name == name).map(|b| {
        b.checks
            .iter()
            .map(|id| find(id).unwrap_or_else(|| unreachable!("bundle {} names unknown check {id}", b.name)))
            .collect()
    })
}

/// Every name a scenario may use in `checks:`, for "did you mean".
pub fn known_names() -> Vec<&'static str> {
    BUNDLES.iter().map(|b| b.name).chain(catalogue().map(|c| c.id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in catalogue() {
            assert!(seen.insert(c.id), "duplicate check id {}", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ".-".contains(ch)),
                "{}",
                c.id
            );
            assert!(c.url.starts_with("https://"), "{} has no spec link", c.id);
            assert!(!c.rule.is_empty() && !c.summary.is_empty());
        }
    }

    #[test]
    fn every_bundle_resolves() {
        for b in BUNDLES {
            assert_eq!(resolve(b.name).unwrap().len(), b.checks.len());
            assert!(find(b.name).is_none(), "bundle {} shadows a check id", b.name);
        }
    }
}
