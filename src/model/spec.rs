//! The parameters of each step action, validated: what the request builders and the runner read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Named;
use super::auth::AuthChoice;

/// A scope a step asks for: as written, or by role — the target maps each role to the server's
/// own scope names (today's names are the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeSpec {
    Literal(String),
    Roles(Vec<ScopeRole>),
}

/// The scopes suites ask for, by what they are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeRole {
    /// The client's own scope (its `scope`), else the target's default.
    Default,
    /// Another scope the client may have (for "scope order does not matter").
    Second,
    /// A scope the client may not have.
    NotAllowed,
    /// A SMART v1 system scope (`system/*.read`).
    SmartV1,
    /// A SMART v2 system scope (`system/Observation.rs`).
    SmartV2,
    /// What a CIBA request asks for (`openid scope_all`).
    Ciba,
    /// A CIBA request's scope with one the client may not have.
    CibaNotAllowed,
}

impl ScopeRole {
    pub const ALL: &'static [ScopeRole] = &[
        ScopeRole::Default,
        ScopeRole::Second,
        ScopeRole::NotAllowed,
        ScopeRole::SmartV1,
        ScopeRole::SmartV2,
        ScopeRole::Ciba,
        ScopeRole::CibaNotAllowed,
    ];

    /// The role's name in a scenario (`scope: { roles: [not-allowed] }`).
    pub fn name(self) -> &'static str {
        match self {
            ScopeRole::Default => "default",
            ScopeRole::Second => "second",
            ScopeRole::NotAllowed => "not-allowed",
            ScopeRole::SmartV1 => "smart-v1",
            ScopeRole::SmartV2 => "smart-v2",
            ScopeRole::Ciba => "ciba",
            ScopeRole::CibaNotAllowed => "ciba-not-allowed",
        }
    }

    /// The key in a target's `scopes:` mapping (target keys are snake_case, like its other keys).
    pub fn key(self) -> &'static str {
        match self {
            ScopeRole::Default => "default",
            ScopeRole::Second => "second",
            ScopeRole::NotAllowed => "not_allowed",
            ScopeRole::SmartV1 => "smart_v1",
            ScopeRole::SmartV2 => "smart_v2",
            ScopeRole::Ciba => "ciba",
            ScopeRole::CibaNotAllowed => "ciba_not_allowed",
        }
    }

    /// Today's names, used when a target does not map the role.
    pub fn default_scope(self) -> &'static str {
        match self {
            ScopeRole::Default => "implant",
            ScopeRole::Second => "profile",
            ScopeRole::NotAllowed => "oauth-harness.not-a-granted-scope",
            ScopeRole::SmartV1 => "system/*.read",
            ScopeRole::SmartV2 => "system/Observation.rs",
            ScopeRole::Ciba => "openid scope_all",
            ScopeRole::CibaNotAllowed => "openid scope_all oauth-harness.not-a-granted-scope",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct TokenSpec {
    pub client: Option<Named>,
    pub grant: Option<String>,
    pub auth: Option<AuthChoice>,
    pub scope: Option<ScopeSpec>,
    pub omit: Vec<FormParam>,
    pub wrong_secret: bool,
    pub client_id: Option<String>,
    pub method: Option<HttpMethod>,
    pub params: Vec<(String, String)>,
    /// RFC 8707: the `resource` the token is asked for.
    pub resource: Option<ResourceIndicator>,
    /// RFC 9449: the DPoP proof the request carries.
    pub dpop: Option<DpopProof>,
    pub assertion: AssertionSpec,
}

/// How the client assertion deviates from the good one (RFC 7523 §3 negative cases). Every field
/// at its default is the good assertion.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mutation {
    /// Header members to set; `null` removes one.
    pub header: BTreeMap<String, serde_json::Value>,
    /// Claims to set; `null` removes one.
    pub claims: BTreeMap<String, serde_json::Value>,
    /// `exp` this many seconds from now (negative: already expired).
    pub exp_in: Option<i64>,
    /// Adds `nbf` this many seconds from now.
    pub nbf_in: Option<i64>,
    /// `aud` as an array; `$token_endpoint` stands for the token URL.
    pub aud_array: Option<Vec<String>>,
    /// Header `alg` (e.g. `none`, or one the server does not advertise).
    pub alg: Option<String>,
    /// HS256 keyed with the public key PEM.
    pub hs256_with_public_key: bool,
    /// Flip bits of the signature.
    pub bad_signature: bool,
}

impl Mutation {
    pub fn is_none(&self) -> bool {
        *self == Mutation::default()
    }
}

/// An algorithm the runner picks from the server's metadata, so a case tests what its name says
/// whatever the server advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgPick {
    /// One the server does not advertise in `token_endpoint_auth_signing_alg_values_supported`.
    Unadvertised,
    /// One it advertises, other than the algorithm the client's key is registered for.
    OtherAdvertised,
}

/// The client assertion a private_key_jwt step sends.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AssertionSpec {
    pub mutation: Mutation,
    /// Pick `mutation.alg` from the server's metadata at run time.
    pub pick_alg: Option<AlgPick>,
    /// Send the case's previous assertion again.
    pub replay: bool,
    /// Sign with a key the server does not know.
    pub unregistered_key: bool,
    /// Put a harness-served JWKS URL (with the unregistered key) in `jku`.
    pub serve_jku: bool,
    /// Sign with the key an earlier `rotate_key` step took out of the client's JWKS.
    pub retired_key: bool,
}

#[derive(Debug, Default)]
pub struct ResourceSpec {
    pub path: Option<String>,
    pub bearer: Option<BearerChoice>,
    /// The TLS client certificate the call carries: the token's client's by default.
    pub certificate: Option<ResourceCertificate>,
    /// RFC 9449 §7: how a DPoP-bound token is presented (as a Bearer token when absent).
    pub dpop: Option<ResourceDpop>,
}

/// How a resource call presents a DPoP-bound token (RFC 9449 §7): the good way, or one the
/// resource must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceDpop {
    /// `Authorization: DPoP` and a proof by the bound key with `ath`.
    Good,
    /// A proof without `ath` (§4.3 (12), §7.1).
    NoAth,
    /// A proof signed by a key the token is not bound to (§4.3 (12)).
    OtherKey,
    /// The bound token as `Authorization: Bearer`, no proof (§7.2).
    AsBearer,
}

impl ResourceDpop {
    pub fn label(self) -> &'static str {
        match self {
            ResourceDpop::Good => "good",
            ResourceDpop::NoAth => "a proof without ath",
            ResourceDpop::OtherKey => "a proof by another key",
            ResourceDpop::AsBearer => "the DPoP-bound token as a Bearer token",
        }
    }
}

/// Which certificate a resource call presents instead of the token's client's (RFC 8705 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceCertificate {
    /// No certificate at all.
    None,
    /// Another client's certificate.
    Other,
}

#[derive(Debug)]
pub struct DiscoverySpec {
    pub document: DiscoveryDocument,
    pub accept: Option<String>,
}

#[derive(Debug)]
pub struct IntrospectSpec {
    pub client: Option<Named>,
    pub auth: Option<AuthChoice>,
    pub wrong_secret: bool,
    pub token: TokenRef,
    pub token_type_hint: Option<String>,
    /// RFC 9701: ask for the answer as a signed JWT.
    pub jwt: bool,
    /// SMART 2.2: the caller authenticates with a bearer token of its own (its default scope, as
    /// the target says) instead of its credentials.
    pub bearer_token: bool,
}

/// RFC 9701 §4: the media type of a JWT introspection answer, and what a caller asks for.
pub const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";

#[derive(Debug)]
pub struct RevokeSpec {
    pub token: TokenRef,
    pub token_type_hint: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct WaitSpec {
    pub skew: Duration,
    pub max: Duration,
}

#[derive(Debug)]
pub struct CibaSpec {
    pub client: Option<Named>,
    pub user: Option<Named>,
    pub channel: String,
    pub binding_message: String,
    pub acr_values: String,
    pub scope: ScopeSpec,
    pub requested_expiry: Option<u32>,
    pub two_hints: bool,
    pub without_certificate: bool,
    pub approve_with_hook: bool,
    /// private_key_jwt: the client assertion's `aud` (CIBA §7.1 lets it be the issuer, the token
    /// endpoint or the backchannel endpoint; the issuer by default).
    pub assertion_aud: CibaAudience,
}

/// What a CIBA client assertion names as its audience (CIBA Core §7.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CibaAudience {
    #[default]
    Issuer,
    TokenEndpoint,
    BackchannelEndpoint,
}

/// A change to the JWKS the harness serves for the case's client (key rotation by JWKS URL, as
/// SMART asymmetric client authentication has it), then a wait of `max_age` (plus a second) so
/// the server's cached copy is stale.
#[derive(Debug)]
pub struct RotateKeySpec {
    pub publish: KeySet,
    /// The `Cache-Control: max-age` the JWKS is served with from now on.
    pub max_age: Duration,
}

/// What the served JWKS holds after a `rotate_key` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySet {
    /// The client's key alone (served again with the step's max-age).
    Current,
    /// A new key beside the old one; assertions are signed with the new key from now on.
    Both,
    /// The new key alone: the old one is retired.
    NewOnly,
}

/// A `rotate_key` step's max-age is at most this (each step waits it out).
pub const MAX_ROTATION_MAX_AGE: Duration = Duration::from_secs(30);

/// A probe of the TLS versions the token endpoint accepts (RFC 9325 §3.1.1).
#[derive(Debug, Default)]
pub struct TlsSpec {}

/// A token exchange (RFC 8693 §2.1) of the case's access token, over the exchanging client's TLS
/// certificate (the ANS profile for APIs protected by Pro Santé Connect).
#[derive(Debug, Default)]
pub struct TokenExchangeSpec {
    /// Who exchanges: the client the token was issued to by default.
    pub client: Option<Named>,
    pub subject_token_type: SubjectTokenType,
}

/// The `subject_token_type` a token exchange names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectTokenType {
    /// `urn:ietf:params:oauth:token-type:access_token`: what the subject token is.
    #[default]
    AccessToken,
    /// A registered type the token is not (SAML 2.0): a server must refuse it (RFC 8693 §2.2.2).
    Wrong,
}

#[derive(Debug)]
pub struct PollSpec {
    pub client: Option<Named>,
    pub too_fast: bool,
    pub once: bool,
}

#[derive(Debug, Default)]
pub struct ApproveSpec {}

/// Many more tokens for one client, none of them judged: the case's own token must outlive them.
#[derive(Debug)]
pub struct MintSpec {
    pub client: Option<Named>,
    pub count: u32,
}

/// A `mint` step issues at most this many tokens.
pub const MAX_MINT: u32 = 20_000;

/// Parameters a token step may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormParam {
    GrantType,
    Scope,
    ClientAssertion,
    ClientAssertionType,
}

/// The DPoP proof (RFC 9449 §4) a token request carries: the good one, or one a server must
/// refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DpopProof {
    Good,
    /// No `typ: dpop+jwt` (§4.3 (4)).
    NoTyp,
    /// `typ: JWT`, the generic type, where `dpop+jwt` is required (§4.3 (4)).
    WrongTyp,
    /// `alg: none`, no signature (§4.3 (5)).
    AlgNone,
    /// A private key member in `jwk` (§4.3 (7)).
    PrivateJwk,
    /// A signature that does not verify with `jwk` (§4.3 (6)).
    BadSignature,
    /// `htm` of another method (§4.3 (8)).
    WrongHtm,
    /// `htu` of another URL (§4.3 (9)).
    WrongHtu,
    /// `iat` ten minutes ago (§4.3 (11)).
    StaleIat,
    /// Signed with a symmetric algorithm (HS256) instead of the key in `jwk` (§4.3 (5)).
    SymmetricAlg,
    /// The proof of the case's previous DPoP step again, same `jti` (§4.3 (12), §11.1).
    Replayed,
}

impl DpopProof {
    pub fn label(self) -> &'static str {
        match self {
            DpopProof::Good => "good",
            DpopProof::NoTyp => "no typ",
            DpopProof::WrongTyp => "typ JWT",
            DpopProof::AlgNone => "alg none",
            DpopProof::PrivateJwk => "a private key in jwk",
            DpopProof::BadSignature => "a bad signature",
            DpopProof::WrongHtm => "a wrong htm",
            DpopProof::WrongHtu => "a wrong htu",
            DpopProof::StaleIat => "a stale iat",
            DpopProof::SymmetricAlg => "a symmetric alg",
            DpopProof::Replayed => "a replayed jti",
        }
    }
}

/// Which `resource` (RFC 8707) a token request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceIndicator {
    /// The target's protected resource.
    Target,
    /// Another resource the server knows (the target's `resource.other_audience`).
    Other,
    /// A resource no server knows.
    Unknown,
}

/// The resource indicator `resource: unknown` sends: a reserved name (RFC 2606), never a server.
pub const UNKNOWN_RESOURCE: &str = "https://unknown-resource.oauth-harness.invalid/api";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
}

/// Which bearer token a resource call presents.
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
    /// The id_token a poll of the case got, presented as if it were an access token.
    IdToken,
}

/// Which token an introspection or revocation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRef {
    Last,
    Garbage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscoveryDocument {
    OpenidConfiguration,
    SmartConfiguration,
    /// Pro Santé Connect's CIBA metadata (the target's `ciba.discovery` path).
    WalletOpenidConfiguration,
    /// RFC 8414 authorization server metadata, at its §3 location (the well-known string
    /// inserted between the host and the issuer's path).
    OauthAuthorizationServer,
    /// Whichever standard metadata the server publishes: OpenID Provider metadata, else RFC 8414.
    ServerMetadata,
}

impl DiscoveryDocument {
    pub fn well_known_path(self) -> &'static str {
        match self {
            DiscoveryDocument::OpenidConfiguration => "/.well-known/openid-configuration",
            DiscoveryDocument::SmartConfiguration => "/.well-known/smart-configuration",
            DiscoveryDocument::WalletOpenidConfiguration => "/.well-known/wallet-openid-configuration",
            DiscoveryDocument::OauthAuthorizationServer => "/.well-known/oauth-authorization-server",
            DiscoveryDocument::ServerMetadata => "/.well-known/openid-configuration",
        }
    }
}
