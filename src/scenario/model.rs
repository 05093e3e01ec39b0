//! The scenario YAML, as written. Validation and interpolation happen in `load`; the runner only
//! ever sees a validated [`super::Suite`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A conformance suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Stable suite name, used as the JUnit testsuite name.
    pub suite: String,
    pub title: Option<String>,
    /// The specification the suite certifies against (a URL), shown in reports.
    pub spec: Option<String>,
    /// Default client (a name from the target file) for every case.
    pub client: Option<Spanned<String>>,
    /// Which system the suite is for (`identity-server` unless said otherwise; `psc`): picks the
    /// embedded mock it runs against when no `--target` is given.
    pub system: Option<Spanned<String>>,
    /// SHOULD-level checks this suite treats as MUST, each with the reason why.
    #[serde(default)]
    pub require: Vec<Requirement>,
    pub cases: Vec<CaseDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub check: Spanned<String>,
    pub because: String,
}

/// A case: one action with its expectations (short form), or a list of steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    pub id: Spanned<String>,
    pub title: Option<String>,
    /// Skip the case (with the reason shown) unless the server's metadata advertises something.
    pub when: Option<When>,
    pub client: Option<Spanned<String>>,
    pub token: Option<TokenAction>,
    pub resource: Option<ResourceAction>,
    pub discovery: Option<DiscoveryAction>,
    pub introspect: Option<IntrospectAction>,
    pub revoke: Option<RevokeAction>,
    pub wait: Option<WaitAction>,
    pub ciba: Option<CibaAction>,
    pub poll: Option<PollAction>,
    /// Plays the user of the case's CIBA request through the target's approval hook.
    pub approve: Option<ApproveAction>,
    pub expect: Option<Expect>,
    pub steps: Option<Vec<StepDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub token: Option<TokenAction>,
    pub resource: Option<ResourceAction>,
    pub discovery: Option<DiscoveryAction>,
    pub introspect: Option<IntrospectAction>,
    pub revoke: Option<RevokeAction>,
    pub wait: Option<WaitAction>,
    pub ciba: Option<CibaAction>,
    pub poll: Option<PollAction>,
    /// Plays the user of the case's CIBA request through the target's approval hook.
    pub approve: Option<ApproveAction>,
    pub expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// `metadata_field: value` — the discovery document's field (a string or an array) must
    /// contain the value.
    #[serde(default)]
    pub advertised: BTreeMap<String, String>,
}

/// A token request, written as the good request plus deliberate deviations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenAction {
    pub client: Option<Spanned<String>>,
    /// `grant_type`; `client_credentials` unless said otherwise.
    pub grant: Option<Spanned<String>>,
    /// How the client authenticates; the client's configured method unless said otherwise.
    pub auth: Option<AuthChoice>,
    /// Requested scope; the client's default scope unless said otherwise.
    pub scope: Option<Spanned<String>>,
    /// Parameters to leave out of the request (e.g. `grant_type`, `scope`).
    #[serde(default)]
    pub omit: Vec<FormParam>,
    /// Send a wrong secret instead of the registered one.
    pub secret: Option<SecretMutation>,
    /// Send this client_id instead of the registered one (an unknown client).
    pub client_id: Option<Spanned<String>>,
    /// `POST` unless said otherwise (RFC 6749 §3.2 checks use `GET`).
    pub method: Option<HttpMethod>,
    /// Extra form parameters; one named like a parameter the request has replaces it.
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<String>>,
    /// Deviations of the private_key_jwt client assertion.
    pub assertion: Option<AssertionAction>,
}

/// How the client assertion deviates from the good one (RFC 7523 §3 negative cases).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionAction {
    /// Claims to set (`null` removes one).
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// Header members to set (`null` removes one).
    #[serde(default)]
    pub header: BTreeMap<String, serde_json::Value>,
    /// Claims to leave out.
    #[serde(default)]
    pub drop: Vec<String>,
    /// `exp` this many seconds from now (negative: already expired).
    pub exp_in: Option<i64>,
    /// Adds `nbf` this many seconds from now.
    pub nbf_in: Option<i64>,
    /// `aud` as an array; `$token_endpoint` stands for the token URL.
    pub aud_array: Option<Vec<String>>,
    /// Header `alg`: `none`, or another JWS algorithm (e.g. one the server does not advertise).
    pub alg: Option<String>,
    /// HS256 keyed with the client's public key PEM (algorithm confusion).
    #[serde(default)]
    pub hs256_with_public_key: bool,
    /// Corrupt the signature.
    #[serde(default)]
    pub bad_signature: bool,
    /// `previous`: send the case's previous assertion again (jti replay).
    pub replay: Option<Replay>,
    /// `unregistered`: sign with a key the server does not know, under that key's own kid.
    pub sign_with: Option<SignWith>,
    /// `serve`: a `jku` header pointing at a JWKS the harness serves (with the unregistered key),
    /// so the harness can tell whether the server fetched it.
    pub jku: Option<JkuChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    Previous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignWith {
    Unregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JkuChoice {
    Serve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthChoice {
    ClientSecretBasic,
    ClientSecretPost,
    /// Basic and post in the same request: a client MUST NOT do this (RFC 6749 §2.3).
    Both,
    /// A signed client assertion (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// The TLS client certificate (RFC 8705 §2); `client_id` goes in the form.
    TlsClientAuth,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormParam {
    GrantType,
    Scope,
    ClientAssertion,
    ClientAssertionType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretMutation {
    Wrong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
}

/// A call to the protected resource.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceAction {
    /// A path on the target's resource URL origin; the target's resource URL unless said otherwise.
    pub path: Option<Spanned<String>>,
    /// Which bearer token to present; `last` when an earlier step got one, else `fresh`.
    pub bearer: Option<BearerChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BearerChoice {
    /// The token from the case's last successful token step.
    Last,
    /// A token obtained now with the client's defaults.
    Fresh,
    /// A token obtained now for the target's `resource.insufficient_scope`.
    InsufficientScope,
    /// The harness's own token cache: reused while valid, renewed before it expires.
    Cached,
    /// No Authorization header at all.
    None,
    /// A well-formed but never-issued token.
    Garbage,
}

/// A token introspection call (RFC 7662 §2.1), made by a resource-server client.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectAction {
    /// The caller: a client of the target (a resource server).
    pub client: Option<Spanned<String>>,
    /// How the caller authenticates; its configured method unless said otherwise.
    pub auth: Option<AuthChoice>,
    /// Send a wrong secret instead of the caller's.
    pub secret: Option<SecretMutation>,
    /// Which token to ask about: `last` (the case's last token) unless said otherwise.
    pub token: Option<TokenRef>,
    pub token_type_hint: Option<String>,
}

/// A revocation (RFC 7009 §2.1) of the case's last token, by the client it was issued to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAction {
    pub token: Option<TokenRef>,
    pub token_type_hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRef {
    Last,
    Garbage,
}

/// Waits for something to happen to the case's last token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitAction {
    /// `expiry`: until the token's `exp` (or receipt + `expires_in`) plus `skew`.
    pub until: WaitUntil,
    /// Extra time after expiry, for clock differences (`1s` unless said otherwise).
    pub skew: Option<Spanned<String>>,
    /// Longest acceptable wait (`60s` unless said otherwise): a longer-lived token skips the case,
    /// with the reason, rather than holding CI for an hour.
    pub max: Option<Spanned<String>>,
}

/// A CIBA backchannel authentication request (CIBA §7.1, as Pro Santé Connect takes it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaAction {
    pub client: Option<Spanned<String>>,
    /// The test user by behaviour, from the target's `ciba.users` (`approves` by default).
    pub user: Option<Spanned<String>>,
    /// `CARD` (CPx card, default) or `MOBILE` (e-CPS).
    pub channel: Option<String>,
    /// Two digits shown to the professional (`42` by default).
    pub binding_message: Option<String>,
    /// `eidas1` unless said otherwise.
    pub acr_values: Option<String>,
    /// `openid scope_all` unless said otherwise.
    pub scope: Option<String>,
    /// CIBA §7.1.1 `requested_expiry`, seconds (sent as a string, which servers must accept).
    pub requested_expiry: Option<u32>,
    /// Send an `id_token_hint` as well as the `login_hint` (CIBA §7.1 forbids two hints).
    #[serde(default)]
    pub two_hints: bool,
    /// `none`: send the request without the client certificate.
    pub certificate: Option<CertificateChoice>,
    /// `hook`: play the user through the target's approval hook once the request is accepted.
    pub approve: Option<ApproveChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateChoice {
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproveChoice {
    Hook,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveAction {}

/// Polls the token endpoint for the case's CIBA request (CIBA §10.1, §11).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollAction {
    /// Poll as another client (its `auth_req_id` is not this client's).
    pub client: Option<Spanned<String>>,
    /// `honour` (default) or `too-fast` (a quarter of the interval until `slow_down`).
    pub pace: Option<PollPace>,
    /// A single poll, after one interval (e.g. to see authorization_pending, or to present an
    /// auth_req_id already exchanged).
    #[serde(default)]
    pub once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PollPace {
    Honour,
    TooFast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitUntil {
    Expiry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryAction {
    pub document: DiscoveryDocument,
    /// The `Accept` header to send (`application/json` unless said otherwise).
    pub accept: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscoveryDocument {
    OpenidConfiguration,
    SmartConfiguration,
    /// Pro Santé Connect's CIBA metadata (the target's `ciba.discovery` path).
    WalletOpenidConfiguration,
}

impl DiscoveryDocument {
    pub fn well_known_path(self) -> &'static str {
        match self {
            DiscoveryDocument::OpenidConfiguration => "/.well-known/openid-configuration",
            DiscoveryDocument::SmartConfiguration => "/.well-known/smart-configuration",
            DiscoveryDocument::WalletOpenidConfiguration => "/.well-known/wallet-openid-configuration",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<Spanned<StatusSet>>,
    /// The OAuth `error` code expected in the answer.
    pub error: Option<Spanned<String>>,
    /// Check ids or bundle names from the catalogue (`oauth-harness checks`).
    #[serde(default)]
    pub checks: Vec<Spanned<String>>,
}

/// `status: 200` or `status: [400, 401]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StatusSet {
    One(u16),
    Any(Vec<u16>),
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::One(s) => *s == status,
            StatusSet::Any(list) => list.contains(&status),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StatusSet::One(s) => s.to_string(),
            StatusSet::Any(list) => {
                let parts: Vec<String> = list.iter().map(u16::to_string).collect();
                format!("one of {}", parts.join(", "))
            }
        }
    }
}

/// Files in a scenario folder that describe load runs rather than conformance cases.
#[derive(Debug, Deserialize)]
pub struct FileKindProbe {
    pub load: Option<serde::de::IgnoredAny>,
}
