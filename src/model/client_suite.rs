//! A validated client suite: what `certify` runs against a vendor's client. Each case says how
//! the mock behaves, how long the client is observed, and which client checks it expects.

use std::time::Duration;

use serde::Serialize;

use super::Named;
use crate::support::diagnostics::SourceFile;

/// The integration a client suite certifies; each runs on one embedded mock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientSystem {
    /// A client_credentials client of an IdentityServer (client secret).
    IdentityServer,
    /// A SMART Backend Services client (private_key_jwt), on the Identity Server mock.
    SmartBackend,
    /// A Pro Santé Connect CIBA "intermediate server", on the PSC mock.
    PscCiba,
}

impl ClientSystem {
    pub const NAMES: &[&str] = &["identity-server", "smart-backend", "psc-ciba"];

    pub fn name(self) -> &'static str {
        match self {
            ClientSystem::IdentityServer => "identity-server",
            ClientSystem::SmartBackend => "smart-backend",
            ClientSystem::PscCiba => "psc-ciba",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "identity-server" => Some(ClientSystem::IdentityServer),
            "smart-backend" => Some(ClientSystem::SmartBackend),
            "psc-ciba" => Some(ClientSystem::PscCiba),
            _ => None,
        }
    }
}

/// Which endpoint of the mock a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// The token endpoint, for any grant but CIBA's.
    Token,
    /// The token endpoint with the CIBA grant: a poll.
    Poll,
    Backchannel,
    Resource,
    /// Metadata, JWKS and anything else the client may read.
    Other,
}

impl Endpoint {
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Poll => "poll",
            Endpoint::Backchannel => "backchannel",
            Endpoint::Resource => "resource",
            Endpoint::Other => "other",
        }
    }
}

/// An answer the case's script gives instead of the mock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Injected {
    /// 400 `slow_down` (a poll).
    SlowDown,
    /// 400 `authorization_pending` (a poll).
    AuthorizationPending,
    /// 400 `access_denied` (a poll).
    AccessDenied,
    /// 400 `expired_token` (a poll).
    ExpiredToken,
    /// 400 `invalid_grant` (a poll: the auth_req_id is no longer valid, CIBA §11).
    InvalidGrant,
    /// 503 with `Retry-After`.
    Unavailable,
    /// 429 with `Retry-After`.
    TooManyRequests,
    /// 500.
    ServerError,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"` (the resource).
    InvalidToken,
}

impl Injected {
    pub const NAMES: &[&str] = &[
        "slow_down",
        "authorization_pending",
        "access_denied",
        "expired_token",
        "invalid_grant",
        "unavailable",
        "too_many_requests",
        "server_error",
        "invalid_token",
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "slow_down" => Injected::SlowDown,
            "authorization_pending" => Injected::AuthorizationPending,
            "access_denied" => Injected::AccessDenied,
            "expired_token" => Injected::ExpiredToken,
            "invalid_grant" => Injected::InvalidGrant,
            "unavailable" => Injected::Unavailable,
            "too_many_requests" => Injected::TooManyRequests,
            "server_error" => Injected::ServerError,
            "invalid_token" => Injected::InvalidToken,
            _ => return None,
        })
    }

    /// The endpoints where this answer makes sense.
    pub fn fits(self, at: Endpoint) -> bool {
        match self {
            Injected::SlowDown
            | Injected::AuthorizationPending
            | Injected::AccessDenied
            | Injected::ExpiredToken
            | Injected::InvalidGrant => at == Endpoint::Poll,
            Injected::InvalidToken => at == Endpoint::Resource,
            Injected::Unavailable | Injected::TooManyRequests | Injected::ServerError => at != Endpoint::Other,
        }
    }
}

/// One scripted answer: the `nth` request to `at` (1-based) and the `times - 1` after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injection {
    pub at: Endpoint,
    pub nth: u32,
    pub times: u32,
    pub answer: Injected,
    /// Seconds, for `unavailable` and `too_many_requests`.
    pub retry_after: Option<u64>,
}

/// How the simulated professional answers a CIBA request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CibaUser {
    Approves,
    Denies,
    NeverAnswers,
}

/// How the mock behaves in a case.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MockBehaviour {
    /// Access token lifetime (`expires_in`).
    pub token_lifetime: Option<Duration>,
    /// CIBA: `interval` of the authentication answer.
    pub interval: Option<Duration>,
    /// CIBA: `expires_in` of the authentication answer.
    pub request_expires_in: Option<Duration>,
    pub user: Option<CibaUser>,
    /// CIBA: when the user answers, after the request.
    pub answer_after: Option<Duration>,
    /// Every poll is answered this late (so that a second poll in flight shows).
    pub poll_latency: Option<Duration>,
    pub inject: Vec<Injection>,
}

/// How long a case watches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observe {
    /// A service: observed this long, then ended.
    For(Duration),
    /// A job: until it exits, ended if it has not within this time.
    UntilExit(Duration),
}

impl Observe {
    pub fn limit(self) -> Duration {
        match self {
            Observe::For(d) | Observe::UntilExit(d) => d,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientCase {
    pub id: String,
    pub title: String,
    /// The mock's registered client the vendor's client is configured as (else the suite's).
    pub client: Option<Named>,
    pub mock: MockBehaviour,
    pub observe: Observe,
    /// Client check ids, as written.
    pub checks: Vec<Named>,
}

#[derive(Debug, Clone)]
pub struct ClientSuite {
    pub name: String,
    pub title: Option<String>,
    pub spec: Option<String>,
    pub source: SourceFile,
    pub system: ClientSystem,
    pub client: Named,
    /// SHOULD checks the integration profile requires (check id, the reason).
    pub required: Vec<(Named, String)>,
    pub cases: Vec<ClientCase>,
}
