//! A Duende/IdentityServer-style authorization server: `/connect/token` (client_credentials with
//! client_secret_basic / client_secret_post), discovery, JWKS, and a protected resource
//! `/api/implant`. Stateful: issued tokens are remembered and checked by the resource.

mod assertion;
mod clients;
mod dpop;
mod handlers;
mod state;

use std::sync::Arc;

pub use crate::model::mock_clients::{ClientConfig, MockClients};
pub use clients::{BUILTIN_KEYS, builtin, builtin_key, from_file};

use super::defects::{DefectSet, defects};
use super::signing::SigningKey;
use crate::model::target::Resource;
use crate::model::{AuthMethod, Client, Target};
use crate::support::http_server::{self, Server};

pub const NAME: &str = "identity-server";
pub const RESOURCE_PATH: &str = "/api/implant";
/// A FHIR resource for SMART Backend Services clients: any `system/Patient.*` scope reads it.
pub const FHIR_RESOURCE_PATH: &str = "/fhir/Patient";
/// The scope the resource demands.
pub const RESOURCE_SCOPE: &str = "implant";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;

defects! {
    /// Defects of the Identity Server mock.
    pub enum Defect {
        NoCacheHeaders => ("no-cache-headers", "RFC 6749 §5.1: token responses lack Cache-Control: no-store and Pragma: no-cache"),
        TokenTypeNotBearer => ("token-type-not-bearer", "RFC 6749 §5.1: token_type is \"Token\" instead of Bearer"),
        MissingExpiresIn => ("missing-expires-in", "RFC 6749 §5.1: expires_in is omitted (the suite requires it)"),
        TokenContentTypeText => ("token-content-type-text", "RFC 6749 §5.1: the token response is sent as text/plain"),
        RefreshTokenIssued => ("refresh-token-issued", "RFC 6749 §4.4.3: a refresh_token is issued for client_credentials"),
        OmitScopeWhenDifferent => ("omit-scope-when-different", "RFC 6749 §5.1: scope is omitted although it differs from the request"),
        WrongExpiresIn => ("wrong-expires-in", "RFC 7519 §4.1.4: the JWT's exp disagrees with expires_in by 10 minutes"),
        InvalidClient400 => ("invalid-client-400", "RFC 6749 §5.2: invalid_client after Basic authentication is answered 400, not 401"),
        BasicNoWwwAuthenticate => ("basic-no-www-authenticate", "RFC 6749 §5.2: the 401 after Basic authentication has no WWW-Authenticate"),
        AcceptWrongSecret => ("accept-wrong-secret", "RFC 6749 §5.2: any secret is accepted for a registered client"),
        BasicNotFormDecoded => ("basic-not-form-decoded", "RFC 6749 §2.3.1: Basic credentials are not form-urldecoded after Base64"),
        ClientSecretPostIgnored => ("client-secret-post-ignored", "RFC 6749 §2.3.1: client_secret_post is advertised but refused"),
        AcceptUnregisteredMethod => ("accept-unregistered-method", "RFC 7591 §2: a client registered for Basic alone is accepted over client_secret_post"),
        AcceptTwoAuthMethods => ("accept-two-auth-methods", "RFC 6749 §2.3: a request with Basic and client_secret together is accepted"),
        TokenEndpointAcceptsGet => ("token-endpoint-accepts-get", "RFC 6749 §3.2: the token endpoint issues tokens on GET"),
        IgnoreScopeRestriction => ("ignore-scope-restriction", "RFC 6749 §5.2: scopes the client may not have are granted (no invalid_scope)"),
        ScopeOrderSensitive => ("scope-order-sensitive", "RFC 6749 §3.3: scopes are refused unless requested in registration order"),
        UnsupportedGrantAsInvalidRequest => ("unsupported-grant-as-invalid-request", "RFC 6749 §5.2: an unknown grant_type gets invalid_request, not unsupported_grant_type"),
        MissingGrantTypeAccepted => ("missing-grant-type-accepted", "RFC 6749 §5.2: a request without grant_type is treated as client_credentials"),
        ErrorNotJson => ("error-not-json", "RFC 6749 §5.2: errors are answered as an HTML page"),
        ErrorDescriptionBadCharset => ("error-description-bad-charset", "RFC 6749 §5.2: error_description has quotes and non-ASCII characters"),
        ResourceAcceptsNoToken => ("resource-accepts-no-token", "RFC 6750 §3: the resource answers 200 to a request without a token"),
        ResourceInvalidTokenNoError => ("resource-invalid-token-no-error", "RFC 6750 §3.1: an invalid token's 401 lacks error=\"invalid_token\""),
        ResourceIgnoresScope => ("resource-ignores-scope", "RFC 6750 §3.1: a token without the resource's scope is accepted (no 403)"),
        AcceptWrongAud => ("accept-wrong-aud", "RFC 7523 §3 (3): an assertion whose aud is not the token endpoint is accepted"),
        AcceptExpiredAssertion => ("accept-expired-assertion", "RFC 7523 §3 (4): an expired assertion is accepted"),
        AcceptLongExp => ("accept-long-exp", "SMART @331: an assertion expiring more than 5 minutes ahead is accepted"),
        AcceptReplayedJti => ("accept-replayed-jti", "SMART @336: the same assertion (jti) is accepted twice"),
        AcceptMissingJti => ("accept-missing-jti", "SMART @330: an assertion without jti is accepted"),
        AcceptSubMismatch => ("accept-sub-mismatch", "RFC 7523 §3 (2): sub is not compared with the client_id"),
        AcceptAlgNone => ("accept-alg-none", "RFC 8725 §3.1: an unsigned assertion (alg none) is accepted"),
        AcceptHs256Confusion => ("accept-hs256-confusion", "RFC 8725 §3.1: HS256 keyed with the client's public key is accepted"),
        AcceptUnadvertisedAlg => ("accept-unadvertised-alg", "SMART @324: an assertion signed with an unadvertised alg (RS256) is accepted"),
        AcceptKeyWithOtherAlg => ("accept-key-with-other-alg", "RFC 8725 §3.1: a key registered for RS384 is accepted with RS512"),
        AcceptBadSignature => ("accept-bad-signature", "RFC 7523 §3 (9): the assertion's signature is not verified"),
        AcceptUnregisteredKey => ("accept-unregistered-key", "SMART @338: an assertion whose kid matches no registered key is accepted"),
        FollowAnyJku => ("follow-any-jku", "RFC 8725 §3.10: a jku header is fetched and its keys trusted"),
        AcceptWrongAssertionType => ("accept-wrong-assertion-type", "RFC 7521 §4.2: a wrong client_assertion_type is ignored"),
        DiscoveryMissingPrivateKeyJwt => ("discovery-missing-private-key-jwt", "SMART @285: smart-configuration omits private_key_jwt from token_endpoint_auth_methods_supported"),
        SmartConfigHtmlForBrowsers => ("smart-config-html-for-browsers", "SMART @372: smart-configuration answers HTML when Accept is text/html"),
        SmartConfigNoAsymmetricCapability => ("smart-config-no-asymmetric-capability", "SMART @287: capabilities lacks client-confidential-asymmetric"),
        MetadataTextPlain => ("metadata-text-plain", "RFC 8414 §3: the metadata is sent as text/plain, not application/json"),
        MetadataNoResponseTypes => ("metadata-no-response-types", "RFC 8414 §2, OIDC Discovery §3: the metadata lacks the REQUIRED response_types_supported"),
        DiscoveryIssuerMismatch => ("discovery-issuer-mismatch", "OIDC Discovery §4.3: issuer differs from the URL the document was fetched from"),
        Rfc8414IssuerMismatch => ("rfc8414-issuer-mismatch", "RFC 8414 §3.3: the oauth-authorization-server document names another issuer than the openid-configuration one"),
        IntrospectNoAuth => ("introspect-no-auth", "RFC 7662 §2.1: introspection answers callers without (valid) credentials"),
        IntrospectExpiredActive => ("introspect-expired-active", "RFC 7662 §4: an expired token is introspected active"),
        IntrospectUnknownActive => ("introspect-unknown-active", "RFC 7662 §2.2: a token nobody issued is introspected active"),
        IntrospectInactiveExtraFields => ("introspect-inactive-extra-fields", "RFC 7662 §2.2: inactive answers carry client_id, scope and exp (the suite requires their absence)"),
        IntrospectMissingExp => ("introspect-missing-exp", "SMART @278: active introspection answers lack exp"),
        IntrospectionBearerRefused => ("introspection-bearer-refused", "SMART 2.2: introspection takes the resource server's credentials only, not its bearer token with the introspect scope"),
        IntrospectWrongScope => ("introspect-wrong-scope", "RFC 7662 §2.2: introspection reports every scope the client may have, not the granted one"),
        EvictLiveTokens => ("evict-live-tokens", "RFC 7662 §2.2, RFC 6750 §3.1: a bounded token store forgets live tokens after 1000 more are issued"),
        RevocationIgnored => ("revocation-ignored", "RFC 7009 §2: revocation answers 200 but the token stays valid"),
        ResourceAcceptsExpired => ("resource-accepts-expired", "RFC 6750 §3.1: the resource accepts a token past its expires_in"),
        IgnoreResourceParameter => ("ignore-resource-parameter", "RFC 8707 §2: a token asked for a resource does not name it in aud"),
        AcceptUnknownResource => ("accept-unknown-resource", "RFC 8707 §2: a resource the server does not know is accepted (no invalid_target)"),
        AccessTokenTypJwt => ("access-token-typ-jwt", "RFC 9068 §2.1: JWT access tokens are typed `JWT`, not `at+jwt`"),
        AccessTokenNoAud => ("access-token-no-aud", "RFC 9068 §2.2: JWT access tokens carry no aud claim"),
        ResourceIgnoresAudience => ("resource-ignores-audience", "RFC 9068 §4: the resource accepts a token issued for another resource (aud)"),
        AccessTokenSubNotClient => ("access-token-sub-not-client", "RFC 9068 §2.2: a client_credentials JWT access token's sub is an opaque id, not the client's"),
        IntrospectionJwtIgnored => ("introspection-jwt-ignored", "RFC 9701 §4: a caller asking for a JWT introspection answer gets plain JSON"),
        IntrospectionJwtTypJwt => ("introspection-jwt-typ-jwt", "RFC 9701 §5: the JWT introspection answer is typed `JWT`, not token-introspection+jwt"),
        IntrospectionJwtUnpublishedKey => ("introspection-jwt-unpublished-key", "RFC 9701 §5: the JWT introspection answer is signed by a key the server's JWKS does not hold"),
        IntrospectionJwtNoAud => ("introspection-jwt-no-aud", "RFC 9701 §5: the JWT introspection answer does not name the caller in aud"),
        IntrospectionJwtWrongIss => ("introspection-jwt-wrong-iss", "RFC 9701 §5: the JWT introspection answer's iss is not the server's issuer"),
        DpopIgnored => ("dpop-ignored", "RFC 9449 §5: a token asked for with a DPoP proof is a plain Bearer token, bound to no key"),
        DpopTypUnchecked => ("dpop-typ-unchecked", "RFC 9449 §4.3 (4): a DPoP proof typed JWT, or not typed at all, is accepted"),
        DpopPrivateJwkAccepted => ("dpop-private-jwk-accepted", "RFC 9449 §4.3 (7): a DPoP proof whose jwk holds a private key is accepted"),
        DpopSignatureUnchecked => ("dpop-signature-unchecked", "RFC 9449 §4.3 (5), (6): a DPoP proof's alg and signature are not checked"),
        DpopHtuUnchecked => ("dpop-htu-unchecked", "RFC 9449 §4.3 (8), (9): a DPoP proof for another method or URL is accepted"),
        DpopIatUnchecked => ("dpop-iat-unchecked", "RFC 9449 §4.3 (11): a DPoP proof made ten minutes ago is accepted"),
        DpopReplayAccepted => ("dpop-replay-accepted", "RFC 9449 §11.1: the same DPoP proof (jti) is accepted twice"),
        DpopNonceWithoutHeader => ("dpop-nonce-without-header", "RFC 9449 §8: use_dpop_nonce is answered without the DPoP-Nonce header, so no client can follow it"),
        DpopNonceNeverTaken => ("dpop-nonce-never-taken", "RFC 9449 §8: a proof that carries the server's nonce is refused as invalid_dpop_proof"),
        IntrospectionDpopUnbound => ("introspection-dpop-unbound", "RFC 9449 §6.2: introspecting a DPoP-bound token gives no cnf.jkt and token_type Bearer"),
        ResourceDpopUnsupported => ("resource-dpop-unsupported", "RFC 9449 §7.1: the resource knows only the Bearer scheme: a DPoP-bound token with its proof is refused"),
        ResourceDpopAsBearer => ("resource-dpop-as-bearer", "RFC 9449 §7.2: the resource accepts a DPoP-bound token sent as a Bearer token"),
        ResourceDpopProofUnchecked => ("resource-dpop-proof-unchecked", "RFC 9449 §4.3 (12): the resource does not compare the proof's ath and key with the token"),
        JwksCachedForever => ("jwks-cached-forever", "SMART asymmetric client auth: a client's JWKS is kept a minute whatever its max-age, never refetched for an unknown kid"),
        JwksRetiredKeyKept => ("jwks-retired-key-kept", "SMART asymmetric client auth: a key taken out of a client's JWKS is still accepted"),
        JwksRefetchStorm => ("jwks-refetch-storm", "SMART asymmetric client auth: every assertion with an unknown kid fetches the client's JWKS again"),
        AccessTokenUnpublishedKey => ("access-token-unpublished-key", "RFC 9068 §4: JWT access tokens are signed by a key the server's JWKS does not hold"),
        TokenServerError10Pct => ("token-server-error-10pct", "RFC 6749 §5.1: one token request in ten is answered 500 (an overloaded server; for load runs)"),
    }
}

/// How to start the mock.
#[derive(Debug, Clone)]
pub struct Config {
    pub clients: MockClients,
    pub token_ttl_secs: u64,
    pub defects: DefectSet<Defect>,
    /// Token answers are held this long: a slower release, to try `load --baseline` on. Not a
    /// defect — it breaks no rule, so no conformance check could catch it.
    pub token_delay: Option<std::time::Duration>,
    /// Live entries each of the mock's stores (used jtis, revoked tokens) holds at most. Past it
    /// the mock answers 503 rather than forget a live one, which would let a replay or a revoked
    /// token through.
    pub store_limit: usize,
    /// Whether revocation revokes access tokens. Off, the mock answers 400
    /// `unsupported_token_type` as RFC 7009 §2.2.1 lets a server that revokes refresh tokens
    /// only. Not a defect: a conformant choice the suites must not blame.
    pub revokes_access_tokens: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clients: clients::builtin(),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            defects: DefectSet::default(),
            token_delay: None,
            store_limit: crate::mock::expiring::DEFAULT_LIMIT,
            revokes_access_tokens: true,
        }
    }
}

/// A running mock; stops when dropped.
pub struct IdentityServerMock {
    server: Server,
    config: Config,
}

impl IdentityServerMock {
    /// Starts on 127.0.0.1, on `port` or a free one.
    pub async fn start(config: Config, port: Option<u16>) -> std::io::Result<Self> {
        Self::start_with(config, port, |app| app).await
    }

    /// Starts with the request handling wrapped by `wrap` (certify records what a client sends).
    pub async fn start_with(
        config: Config,
        port: Option<u16>,
        wrap: impl FnOnce(Arc<dyn http_server::Handle>) -> Arc<dyn http_server::Handle>,
    ) -> std::io::Result<Self> {
        let listener = http_server::bind(port)?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let key = Arc::new(SigningKey::generate());
        let app = handlers::App {
            issuer,
            clients: config.clients.clone(),
            token_ttl_secs: config.token_ttl_secs,
            defects: config.defects.clone(),
            token_key: if config.defects.on(Defect::AccessTokenUnpublishedKey) {
                Arc::new(SigningKey::generate())
            } else {
                key.clone()
            },
            introspection_key: if config.defects.on(Defect::IntrospectionJwtUnpublishedKey) {
                Arc::new(SigningKey::generate())
            } else {
                key.clone()
            },
            key,
            tokens: Arc::new(state::IssuedTokens::new(config.store_limit)),
            replay: Arc::new(assertion::ReplayCache::new(config.store_limit)),
            jwks_cache: Arc::new(assertion::JwksCache::default()),
            dpop_nonce: crate::protocol::auth::random_secret(),
            token_requests: Arc::default(),
            token_delay: config.token_delay,
            revokes_access_tokens: config.revokes_access_tokens,
        };
        let server = http_server::serve_on(listener, wrap(Arc::new(app)), None)?;
        Ok(Self { server, config })
    }

    pub fn issuer(&self) -> String {
        self.server.origin(false)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A target describing this mock, with every registered client under its scenario name.
    pub fn target(&self) -> Target {
        let issuer = url::Url::parse(&self.issuer()).unwrap_or_else(|_| unreachable!("a 127.0.0.1 origin is a URL"));
        describe(&self.config, issuer)
    }
}

/// The target of a mock with `config` at `issuer`: what `run` uses without `--target`, and what
/// `validate` checks suites against.
pub fn describe(config: &Config, issuer: url::Url) -> Target {
    {
        let resource_url = issuer.join(RESOURCE_PATH).unwrap_or_else(|_| unreachable!("static path"));
        let other_audience = issuer.join(FHIR_RESOURCE_PATH).unwrap_or_else(|_| unreachable!("static path"));
        let clients = config
            .clients
            .clients
            .iter()
            .map(|c| {
                let auth = c.auth_methods.first().copied().unwrap_or(AuthMethod::ClientSecretBasic);
                let client = Client {
                    client_id: c.client_id.clone(),
                    secret: (!c.client_secret.is_empty())
                        .then(|| crate::support::secret::Secret::new(c.client_secret.clone())),
                    auth,
                    methods: if c.auth_methods.is_empty() { vec![auth] } else { c.auth_methods.clone() },
                    scope: c.default_scope.clone(),
                    key: c.key.as_deref().and_then(builtin_key).map(Arc::new),
                    serve_jwks: c.register_by_url && c.jwks_uri.is_some(),
                    identity: None,
                    bound_tokens: false,
                    unusable: None,
                };
                (c.name.clone(), client)
            })
            .collect();
        Target {
            origin: format!("embedded {NAME} mock"),
            source: None,
            issuer,
            token_endpoint: None,
            introspection_endpoint: None,
            revocation_endpoint: None,
            resource: Some(Resource {
                url: resource_url,
                insufficient_scope: config.clients.insufficient_scope.clone(),
                other_audience: Some(other_audience),
                aud: Vec::new(),
            }),
            timeout: crate::model::target::DEFAULT_TIMEOUT,
            clients,
            jwks_server_port: None,
            ca: Default::default(),
            ciba: crate::model::target::CibaSettings::default(),
            scopes: std::collections::BTreeMap::new(),
            metadata: None,
            token_exchange: Default::default(),
            tls_minimum: Default::default(),
        }
    }
}
