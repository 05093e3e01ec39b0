//! A Pro Santé Connect mock: Keycloak-style CIBA poll mode behind a TLS front that requests
//! client certificates (the client is the certificate's subject DN). The simulated professional
//! is chosen by `login_hint`, or played through a test-approval endpoint.

mod handlers;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::defects::{DefectSet, defects};
use super::signing::SigningKey;
use crate::model::target::CibaSettings;
use crate::model::{AuthMethod, Client, Target};
use crate::support::http_server::{self, Server, ServerPki, TlsVersions};

pub const NAME: &str = "psc";
/// Keycloak realm path of the issuer.
pub const REALM: &str = "/realms/esante-wallet";

defects! {
    /// Defects of the Pro Santé Connect mock.
    pub enum Defect {
        NoSlowDown => ("no-slow-down", "CIBA §11: polling faster than interval gets authorization_pending, never slow_down"),
        IntervalMissing => ("interval-missing", "CIBA §7.3: the answer has no interval (PSC documents 5; the suite requires it)"),
        TokenBeforeApproval => ("token-before-approval", "CIBA §11: tokens are issued while the user has not answered"),
        ReuseAuthReqId => ("reuse-auth-req-id", "CIBA §11: an auth_req_id already exchanged gets tokens again"),
        CrossClient => ("cross-client", "CIBA §11: another client's auth_req_id is answered as if it were its own"),
        NoExpiry => ("no-expiry", "CIBA §11: a request past expires_in stays pending instead of expired_token"),
        ExpiredTooEarly => ("expired-too-early", "CIBA §11: expired_token comes at a third of expires_in, while the request should still be pending"),
        AccessDeniedAsPending => ("access-denied-as-pending", "CIBA §11: a refusal by the user is reported as authorization_pending"),
        IdTokenWrongAud => ("id-token-wrong-aud", "OIDC Core §2: the id_token's aud is not the client_id"),
        CnfMissing => ("cnf-missing", "RFC 8705 §3.1: access tokens are not bound to the client certificate (no cnf.x5t#S256)"),
        MtlsNotEnforced => ("mtls-not-enforced", "RFC 8705 §2: a request without a client certificate is accepted on its client_id"),
        MtlsAnySubject => ("mtls-any-subject", "RFC 8705 §2.1: a certificate of an unregistered subject is accepted on its client_id"),
        TwoHintsAccepted => ("two-hints-accepted", "CIBA §7.1: a request with two hints is accepted"),
        OpenidScopeOptional => ("openid-scope-optional", "CIBA §7.1: a request without the openid scope is accepted"),
        WeakAuthReqId => ("weak-auth-req-id", "CIBA §7.3: auth_req_id is a short counter, not 128 random bits"),
        DiscoveryNoPollMode => ("discovery-no-poll-mode", "CIBA §4: the metadata does not list the poll delivery mode"),
        CrossClientOtherMethod => ("cross-client-other-method", "CIBA §11: a client authenticated by assertion redeems another client's auth_req_id (the client is compared only for certificate clients)"),
        AssertionAudTokenEndpointOnly => ("assertion-aud-token-endpoint-only", "CIBA §7.1: a client assertion whose aud is the issuer or the backchannel endpoint is refused"),
        UnknownUserAccepted => ("unknown-user-accepted", "CIBA §13: a login_hint nobody has is accepted (never unknown_user_id)"),
        CibaIgnoreScope => ("ciba-ignore-scope-restriction", "CIBA §13, RFC 6749 §5.2: a scope the client may not have is granted (no invalid_scope)"),
        CibaWrongExpiresIn => ("ciba-wrong-expires-in", "RFC 7519 §4.1.4: the access token's exp says an hour while expires_in says its lifetime"),
        ResourceIgnoresBinding => ("resource-ignores-binding", "RFC 8705 §3: the resource accepts a certificate-bound token without its certificate"),
        IntrospectionNoCnf => ("introspection-no-cnf", "RFC 8705 §3.2: introspection does not say which certificate a token is bound to"),
        ResourceAcceptsIdToken => ("resource-accepts-id-token", "RFC 9068 §4: the resource accepts an id_token presented as an access token"),
        Tls12Only => ("tls12-only", "RFC 9325 §3.1.1: the TLS front offers TLS 1.2 only (SHOULD support TLS 1.3)"),
        ExchangeNoIssuedTokenType => ("exchange-no-issued-token-type", "RFC 8693 §2.2.1: a token exchange answer lacks the REQUIRED issued_token_type"),
        ExchangeUnbound => ("exchange-unbound", "RFC 8705 §3.1: an exchanged token is not bound to the exchanging client's certificate"),
        ExchangeAcceptsExpired => ("exchange-accepts-expired", "RFC 8693 §2.2.2: an expired subject token is exchanged"),
        ExchangeAnyTokenType => ("exchange-any-token-type", "RFC 8693 §2.2.2: a subject_token_type the token is not is accepted"),
        ExchangeOtherClient => ("exchange-other-client", "RFC 8693 §2.2.2: a token bound to another client's certificate is exchanged"),
    }
}

/// How a registered client authenticates (CIBA Core §7.1 allows any method).
#[derive(Debug, Clone)]
pub enum PscAuth {
    /// tls_client_auth: the subject DN of a certificate from the CA (RFC 8705 §2.1).
    Certificate { subject: String },
    /// self_signed_tls_client_auth: the SHA-256 thumbprint of its registered certificate (§2.2).
    SelfSigned { thumbprint: String },
    /// client_secret_basic or client_secret_post (RFC 6749 §2.3.1).
    Secret { secret: &'static str, basic: bool },
    /// private_key_jwt with this public key (RFC 7523 §2.2).
    PrivateKeyJwt { public_pem: &'static str },
}

/// A registered client of the mock.
#[derive(Debug, Clone)]
pub struct PscClient {
    pub name: &'static str,
    pub client_id: &'static str,
    pub auth: PscAuth,
}

impl PscClient {
    pub fn method(&self) -> AuthMethod {
        match self.auth {
            PscAuth::Certificate { .. } => AuthMethod::TlsClientAuth,
            PscAuth::SelfSigned { .. } => AuthMethod::SelfSignedTlsClientAuth,
            PscAuth::Secret { basic: true, .. } => AuthMethod::ClientSecretBasic,
            PscAuth::Secret { basic: false, .. } => AuthMethod::ClientSecretPost,
            PscAuth::PrivateKeyJwt { .. } => AuthMethod::PrivateKeyJwt,
        }
    }

    /// What `mock psc` prints about how the client authenticates.
    pub fn credential(&self) -> String {
        match &self.auth {
            PscAuth::Certificate { subject } => format!("certificate subject: {subject}"),
            PscAuth::SelfSigned { thumbprint } => format!("self-signed certificate x5t#S256: {thumbprint}"),
            PscAuth::Secret { basic, .. } => {
                format!(
                    "client secret over {} (fixtures/targets/psc-local.yaml)",
                    if *basic { "Basic" } else { "post" }
                )
            }
            PscAuth::PrivateKeyJwt { .. } => "private_key_jwt, key fixtures/keys/backend-es384".into(),
        }
    }
}

/// Test credentials of the mock's secret clients, on 127.0.0.1 only.
pub const SECRET_BASIC: &str = "psc-mock-secret-basic-test-secret";
pub const SECRET_POST: &str = "psc-mock-secret-post-test-secret";
/// Scopes every client of the mock may have.
pub const CLIENT_SCOPES: &[&str] = &["openid", "scope_all"];

/// How the simulated professional answers, by login_hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserBehaviour {
    ApprovesAfterMs(u64),
    DeniesAfterMs(u64),
    NeverAnswers,
    /// Waits for the test-approval endpoint.
    Manual,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub defects: DefectSet<Defect>,
    /// `interval` of backchannel answers, seconds.
    pub interval_secs: u64,
    /// `expires_in` of backchannel answers, seconds.
    pub expires_in_secs: u64,
    /// Lifetime of the access tokens and id_tokens issued (and exchanged), seconds.
    pub token_lifetime_secs: u64,
    pub users: BTreeMap<String, UserBehaviour>,
    /// Keep one pending request per client and user: a new one supersedes the older, whose
    /// `auth_req_id` is then unknown. Legitimate (CIBA Core does not forbid it), not a defect.
    pub one_pending_per_user: bool,
    /// Offer TLS 1.3 only (a server held to a 1.3 floor; legitimate, not a defect).
    pub tls13_only: bool,
    /// Take mutual TLS at RFC 8705 §5 `mtls_endpoint_aliases` only (under [`MTLS_PREFIX`]), as a
    /// deployment with a separate mTLS host does: the conventional endpoints never see a client
    /// certificate. Legitimate, not a defect: a client doing mTLS must follow the aliases.
    pub mtls_endpoint_aliases: bool,
    /// Authentication requests held at most, each until ten minutes past its expiry (so a late
    /// poll still gets `expired_token`). Past it the backchannel endpoint answers 503 rather
    /// than forget a live request.
    pub store_limit: usize,
}

/// Where the aliases live, under the realm: `{issuer}/mtls/protocol/openid-connect/token`, …
pub const MTLS_PREFIX: &str = "/mtls";

pub const USER_APPROVES: &str = "500000001815646/CPAT00045";
pub const USER_DENIES: &str = "500000001815647/CPAT00046";
pub const USER_NEVER: &str = "500000001815648/CPAT00047";
pub const USER_MANUAL: &str = "500000001815649/CPAT00048";
pub const USER_UNKNOWN: &str = "899999999999999/UNKNOWN00";

impl Default for Config {
    fn default() -> Self {
        let users = BTreeMap::from([
            (USER_APPROVES.to_string(), UserBehaviour::ApprovesAfterMs(1500)),
            (USER_DENIES.to_string(), UserBehaviour::DeniesAfterMs(1500)),
            (USER_NEVER.to_string(), UserBehaviour::NeverAnswers),
            (USER_MANUAL.to_string(), UserBehaviour::Manual),
        ]);
        // Seconds, not PSC's 5 and 120, so the suite runs in seconds; the flow is the same.
        Self {
            defects: DefectSet::default(),
            interval_secs: 1,
            expires_in_secs: 20,
            token_lifetime_secs: 120,
            users,
            one_pending_per_user: false,
            tls13_only: false,
            mtls_endpoint_aliases: false,
            store_limit: crate::mock::expiring::DEFAULT_LIMIT,
        }
    }
}

const PKI_CA: &str = include_str!("../../../fixtures/pki/ca.pem");
const PKI_SERVER: &str = include_str!("../../../fixtures/pki/server.pem");
const PKI_SERVER_KEY: &str = include_str!("../../../fixtures/pki/server.key");
const PKI_CLIENT: &str = include_str!("../../../fixtures/pki/client.pem");
const PKI_CLIENT_KEY: &str = include_str!("../../../fixtures/pki/client.key");
const PKI_CLIENT_B: &str = include_str!("../../../fixtures/pki/client-b.pem");
const PKI_CLIENT_B_KEY: &str = include_str!("../../../fixtures/pki/client-b.key");
const PKI_UNREGISTERED: &str = include_str!("../../../fixtures/pki/unregistered-client.pem");
const PKI_UNREGISTERED_KEY: &str = include_str!("../../../fixtures/pki/unregistered-client.key");
const PKI_SELF_SIGNED: &str = include_str!("../../../fixtures/pki/self-signed-client.pem");
const PKI_SELF_SIGNED_KEY: &str = include_str!("../../../fixtures/pki/self-signed-client.key");
const PKJWT_PUBLIC: &str = include_str!("../../../fixtures/keys/backend-es384/public.pem");

/// The test CA of the mock's TLS front, PEM.
pub const CA_PEM: &str = PKI_CA;

/// The certificate and key (PEM) of a registered certificate client, by name.
pub fn client_identity_pem(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "psc-client" => Some((PKI_CLIENT, PKI_CLIENT_KEY)),
        "psc-client-b" => Some((PKI_CLIENT_B, PKI_CLIENT_B_KEY)),
        "psc-self-signed" => Some((PKI_SELF_SIGNED, PKI_SELF_SIGNED_KEY)),
        _ => None,
    }
}

fn thumbprint_of(pem: &str) -> String {
    use base64::Engine;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use sha2::Digest;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der.as_ref())))
        .unwrap_or_default()
}

fn subject_of(pem: &str) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .and_then(|der| http_server::subject_dn(der.as_ref()))
        .unwrap_or_default()
}

/// The clients the mock knows, by certificate subject.
pub fn registered_clients() -> Vec<PscClient> {
    let certificate = |pem| PscAuth::Certificate { subject: subject_of(pem) };
    vec![
        PscClient { name: "psc-client", client_id: "harness-psc-client", auth: certificate(PKI_CLIENT) },
        PscClient { name: "psc-client-b", client_id: "harness-psc-client-b", auth: certificate(PKI_CLIENT_B) },
        PscClient {
            name: "psc-secret-basic",
            client_id: "harness-psc-secret-basic",
            auth: PscAuth::Secret { secret: SECRET_BASIC, basic: true },
        },
        PscClient {
            name: "psc-secret-post",
            client_id: "harness-psc-secret-post",
            auth: PscAuth::Secret { secret: SECRET_POST, basic: false },
        },
        PscClient {
            name: "psc-private-key-jwt",
            client_id: "harness-psc-private-key-jwt",
            auth: PscAuth::PrivateKeyJwt { public_pem: PKJWT_PUBLIC },
        },
        PscClient {
            name: "psc-self-signed",
            client_id: "harness-psc-self-signed",
            auth: PscAuth::SelfSigned { thumbprint: thumbprint_of(PKI_SELF_SIGNED) },
        },
    ]
}

/// A running PSC mock (TLS asking for client certificates, as PSC's gateway does); stops when
/// dropped.
pub struct PscMock {
    server: Server,
}

impl PscMock {
    pub async fn start(config: Config, port: Option<u16>) -> std::io::Result<Self> {
        Self::start_with(config, port, |app| app).await
    }

    /// Starts with the request handling wrapped by `wrap` (certify records what a client sends).
    pub async fn start_with(
        config: Config,
        port: Option<u16>,
        wrap: impl FnOnce(Arc<dyn http_server::Handle>) -> Arc<dyn http_server::Handle>,
    ) -> std::io::Result<Self> {
        let versions = if config.defects.on(Defect::Tls12Only) {
            TlsVersions::Tls12Only
        } else if config.tls13_only {
            TlsVersions::Tls13Only
        } else {
            TlsVersions::Both
        };
        let pki =
            ServerPki { server_chain_pem: PKI_SERVER, server_key_pem: PKI_SERVER_KEY, client_ca_pem: PKI_CA, versions };
        let acceptor = http_server::tls_acceptor(&pki).map_err(std::io::Error::other)?;
        // The issuer names the port, known once the listener is bound.
        let listener = http_server::bind(port)?;
        let issuer = format!("https://127.0.0.1:{}{REALM}", listener.local_addr()?.port());
        let app = handlers::App::new(issuer, config, registered_clients(), Arc::new(SigningKey::generate()));
        let server = http_server::serve_on(listener, wrap(Arc::new(app)), Some(acceptor))?;
        Ok(Self { server })
    }

    pub fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}{REALM}", self.server.addr.port())
    }

    /// A target for this mock: the test CA, the three client identities, the test users and the
    /// test-approval hook.
    pub fn target(&self) -> Target {
        describe(&self.issuer())
    }
}

/// The target of a PSC mock at `issuer` (what `validate` checks PSC suites against, too).
pub fn describe(issuer: &str) -> Target {
    {
        let identity = |cert: &str, key: &str| {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let der = CertificateDer::from_pem_slice(cert.as_bytes()).map(|d| d.as_ref().to_vec()).unwrap_or_default();
            crate::support::pki::ClientIdentity::from_pem(format!("{cert}\n{key}"), &der).ok()
        };
        let client = |client_id: &str, cert: &str, key: &str| Client {
            client_id: client_id.to_string(),
            secret: None,
            auth: AuthMethod::TlsClientAuth,
            methods: vec![AuthMethod::TlsClientAuth],
            scope: Some("openid scope_all".into()),
            key: None,
            serve_jwks: false,
            identity: identity(cert, key),
            // The mock binds every token asked with a certificate (as PSC does); its clients
            // holding one are registered so.
            bound_tokens: true,
            unusable: None,
        };
        let secret = |client_id: &str, secret: &str, method: AuthMethod| Client {
            secret: Some(crate::support::secret::Secret::new(secret)),
            auth: method,
            methods: vec![method],
            identity: None,
            bound_tokens: false,
            ..client(client_id, "", "")
        };
        let pkjwt = Client {
            auth: AuthMethod::PrivateKeyJwt,
            methods: vec![AuthMethod::PrivateKeyJwt],
            key: crate::mock::identity_server::builtin_key("backend-es384").map(Arc::new),
            identity: None,
            bound_tokens: false,
            ..client("harness-psc-private-key-jwt", "", "")
        };
        let self_signed = Client {
            auth: AuthMethod::SelfSignedTlsClientAuth,
            methods: vec![AuthMethod::SelfSignedTlsClientAuth],
            ..client("harness-psc-self-signed", PKI_SELF_SIGNED, PKI_SELF_SIGNED_KEY)
        };
        let clients = BTreeMap::from([
            ("psc-client".to_string(), client("harness-psc-client", PKI_CLIENT, PKI_CLIENT_KEY)),
            ("psc-client-b".to_string(), client("harness-psc-client-b", PKI_CLIENT_B, PKI_CLIENT_B_KEY)),
            ("unregistered-client".to_string(), client("harness-psc-client", PKI_UNREGISTERED, PKI_UNREGISTERED_KEY)),
            (
                "psc-secret-basic".to_string(),
                secret("harness-psc-secret-basic", SECRET_BASIC, AuthMethod::ClientSecretBasic),
            ),
            (
                "psc-secret-post".to_string(),
                secret("harness-psc-secret-post", SECRET_POST, AuthMethod::ClientSecretPost),
            ),
            ("psc-private-key-jwt".to_string(), pkjwt),
            ("psc-self-signed".to_string(), self_signed),
        ]);
        let users = BTreeMap::from([
            ("approves".to_string(), USER_APPROVES.to_string()),
            ("denies".to_string(), USER_DENIES.to_string()),
            ("never-answers".to_string(), USER_NEVER.to_string()),
            ("manual".to_string(), USER_MANUAL.to_string()),
            ("unknown".to_string(), USER_UNKNOWN.to_string()),
        ]);
        let hook = format!("{issuer}/test/ciba/{{auth_req_id}}/approve");
        let issuer = url::Url::parse(issuer).unwrap_or_else(|_| unreachable!("a valid URL"));
        let resource_url =
            issuer.join(&format!("{REALM}/test/resource")).unwrap_or_else(|_| unreachable!("a static path"));
        Target {
            origin: format!("embedded {NAME} mock"),
            source: None,
            issuer,
            token_endpoint: None,
            introspection_endpoint: None,
            revocation_endpoint: None,
            resource: Some(crate::model::target::Resource {
                url: resource_url,
                insufficient_scope: None,
                other_audience: None,
                aud: Vec::new(),
            }),
            timeout: crate::model::target::DEFAULT_TIMEOUT,
            clients,
            jwks_server_port: None,
            ca: crate::support::pki::CaBundle::from_pem(PKI_CA.as_bytes()).unwrap_or_default(),
            ciba: CibaSettings {
                discovery_path: crate::model::target::DEFAULT_CIBA_DISCOVERY.into(),
                users,
                approval_hook: Some((reqwest::Method::POST, hook)),
                ..Default::default()
            },
            scopes: BTreeMap::new(),
            metadata: None,
            token_exchange: Default::default(),
            tls_minimum: Default::default(),
        }
    }
}
