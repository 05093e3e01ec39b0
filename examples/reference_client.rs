//! The reference OAuth client that `oauth-harness certify` judges in its tests.
//!
//! It reads its configuration from the `OAUTH_HARNESS_*` environment variables (docs/certify.md)
//! and is a conformant client of the system they name:
//!
//! - `identity-server`, `smart-backend`: a service that gets a client-credentials token, calls the
//!   resource with it every 200 ms and renews it before it expires; it never exits by itself
//!   (certify ends it), except on a configuration error (exit 2);
//! - `psc-ciba`: one CIBA poll-mode flow; exit 0 with a token, 1 on a final error or expiry.
//!
//! `--misbehave NAME` (repeatable) switches on one deviation each, `--list-misbehaviours` prints
//! `NAME  rule it breaks` a line. The certify tests rely on this file's name (`--example
//! reference_client`), on `--list-misbehaviours` and on `--misbehave`: keep them stable. It shares
//! no code with the harness that judges it, and it never prints a token, a secret or an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test tooling

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p384::elliptic_curve::sec1::ToEncodedPoint;
use p384::pkcs8::DecodePrivateKey;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Certificate, Client, Identity, Url};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two rounds of the service loop.
const ROUND_PAUSE: Duration = Duration::from_millis(200);
/// No round of the service loop is shorter, whatever a misbehaviour does.
const MIN_PAUSE: Duration = Duration::from_millis(50);
/// `retry-503-at-once`: the retry delay that ignores Retry-After and backoff.
const AT_ONCE: Duration = Duration::from_millis(50);
/// After a 4xx, or a resource that refuses a fresh token.
const AFTER_REFUSAL: Duration = Duration::from_secs(1);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
const DEFAULT_EXPIRES_IN: u64 = 3600;
/// A token is renewed min(RENEW_MARGIN_MAX, lifetime / RENEW_MARGIN_DIVISOR) before it expires.
const RENEW_MARGIN_MAX: Duration = Duration::from_secs(30);
const RENEW_MARGIN_DIVISOR: u32 = 4;
const ASSERTION_LIFETIME: u64 = 300;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
const DEFAULT_INTERVAL: u64 = 5;
/// CIBA Core §11: slow_down adds at least 5 s to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// `ignore-interval`: the poll period whatever the server says.
const IGNORED_INTERVAL: Duration = Duration::from_millis(200);
/// Backchannel answer without expires_in (it is REQUIRED): still bounded.
const DEFAULT_CIBA_EXPIRES_IN: u64 = 60;
/// No poll is sent this close to the request's expiry (the mock's clock starts a little earlier).
const EXPIRY_MARGIN: Duration = Duration::from_millis(100);
/// Without a token, the flow ends this long after the request expired.
const PAST_EXPIRY: Duration = Duration::from_millis(50);
const MAX_POLLS: u32 = 200;
const MAX_POLLS_AFTER_DENIAL: u32 = 20;
const MAX_BACKCHANNEL_RETRIES: u32 = 3;
/// `unregistered-scope`: a scope no mock registration holds.
const UNREGISTERED_SCOPE: &str = "admin";
/// `iss-not-client-id`: the service's own name where the client_id belongs.
const NOT_THE_CLIENT_ID: &str = "backend-service";
/// `iat-in-future`: how far ahead of the clock the assertion claims to have been issued.
const IAT_AHEAD: u64 = 60;
/// `wrong-assertion-type`: the SAML bearer URN (RFC 7522) on a JWT.
const SAML_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
const FINAL_POLL_ERRORS: &[&str] = &["access_denied", "expired_token", "invalid_grant"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehaviour {
    NoJti,
    ReuseJti,
    ExpOneHour,
    AudIssuer,
    KidUnknown,
    PrivateJwks,
    SecretInQuery,
    BasicNotFormEncoded,
    TwoAuthMethods,
    TokenGet,
    TokenPerCall,
    SendExpiredToken,
    BearerInQuery,
    RetryLoopOnInvalidToken,
    ReuseRefusedToken,
    Retry503AtOnce,
    IgnoreInterval,
    IgnoreSlowDown,
    TwoPollsAtOnce,
    PollAfterDenied,
    NoOpenidScope,
    NoBindingMessage,
    NoClientCertificate,
    NoGrantType,
    OtherAuthMethod,
    UnregisteredScope,
    WrongAssertionType,
    AlgHs256,
    IssNotClientId,
    IatInFuture,
    TwoHints,
}

/// Every misbehaviour: its name on the command line and the rule it breaks.
const ALL: &[(Misbehaviour, &str, &str)] = &[
    (Misbehaviour::NoJti, "no-jti", "SMART Backend Services: the client assertion's jti is REQUIRED"),
    (Misbehaviour::ReuseJti, "reuse-jti", "RFC 7523 §3, SMART Backend Services: a jti is never reused"),
    (
        Misbehaviour::ExpOneHour,
        "exp-one-hour",
        "SMART Backend Services: the assertion's exp is no more than 5 minutes in the future",
    ),
    (Misbehaviour::AudIssuer, "aud-issuer", "RFC 7523 §3, SMART Backend Services: aud is the token endpoint URL"),
    (Misbehaviour::KidUnknown, "kid-unknown", "SMART Backend Services: the JWT header kid names a registered key"),
    (
        Misbehaviour::PrivateJwks,
        "private-jwks",
        "RFC 7517 §9.2, SMART Backend Services: a published JWKS holds public keys only",
    ),
    (
        Misbehaviour::SecretInQuery,
        "secret-in-query",
        "RFC 6749 §2.3.1: client credentials MUST NOT be included in the request URI",
    ),
    (
        Misbehaviour::BasicNotFormEncoded,
        "basic-not-form-encoded",
        "RFC 6749 §2.3.1: client_id and secret are form-encoded before HTTP Basic",
    ),
    (
        Misbehaviour::TwoAuthMethods,
        "two-auth-methods",
        "RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request",
    ),
    (Misbehaviour::TokenGet, "token-get", "RFC 6749 §3.2: the token request MUST use POST"),
    (
        Misbehaviour::TokenPerCall,
        "token-per-call",
        "token reuse (RFC 6749 §5.1 expires_in): a token is reused until it nears expiry, not requested per call",
    ),
    (
        Misbehaviour::SendExpiredToken,
        "send-expired-token",
        "RFC 6749 §5.1 (expires_in): a token is renewed before it expires, never sent expired",
    ),
    (
        Misbehaviour::BearerInQuery,
        "bearer-in-query",
        "RFC 6750 §2.3, §5.3: the bearer token goes in the Authorization header, not in the URI",
    ),
    (
        Misbehaviour::RetryLoopOnInvalidToken,
        "retry-loop-on-invalid-token",
        "RFC 6750 §3.1: after invalid_token, one new token and one retry, not a loop",
    ),
    (
        Misbehaviour::ReuseRefusedToken,
        "reuse-refused-token",
        "RFC 6750 §3.1: a token the resource refused with invalid_token is not sent again",
    ),
    (
        Misbehaviour::Retry503AtOnce,
        "retry-503-at-once",
        "RFC 9110 §10.2.3, RFC 6585 §4: wait as Retry-After says after 503/429, back off after a 5xx",
    ),
    (
        Misbehaviour::IgnoreInterval,
        "ignore-interval",
        "CIBA Core §7.3: the client waits at least interval seconds before each poll",
    ),
    (
        Misbehaviour::IgnoreSlowDown,
        "ignore-slow-down",
        "CIBA Core §11, RFC 8628 §3.5: after slow_down the interval grows by 5 s for every later poll",
    ),
    (
        Misbehaviour::TwoPollsAtOnce,
        "two-polls-at-once",
        "CIBA Core §7.3: one poll at a time, each interval seconds after the last answer",
    ),
    (
        Misbehaviour::PollAfterDenied,
        "poll-after-denied",
        "CIBA Core §11: access_denied, expired_token and invalid_grant end polling",
    ),
    (
        Misbehaviour::NoOpenidScope,
        "no-openid-scope",
        "CIBA Core §7.1: the authentication request's scope MUST contain openid",
    ),
    (
        Misbehaviour::NoBindingMessage,
        "no-binding-message",
        "Pro Santé Connect CIBA profile: the authentication request carries a binding_message",
    ),
    (
        Misbehaviour::NoClientCertificate,
        "no-client-certificate",
        "RFC 8705 §2: a mutual-TLS client presents its client certificate",
    ),
    (Misbehaviour::NoGrantType, "no-grant-type", "RFC 6749 §4.4.2: grant_type=client_credentials is REQUIRED"),
    (
        Misbehaviour::OtherAuthMethod,
        "other-auth-method",
        "RFC 7591 §2: the client authenticates with its registered token_endpoint_auth_method",
    ),
    (
        Misbehaviour::UnregisteredScope,
        "unregistered-scope",
        "RFC 6749 §3.3: the client asks only for scopes it is registered for",
    ),
    (
        Misbehaviour::WrongAssertionType,
        "wrong-assertion-type",
        "RFC 7521 §4.2, RFC 7523 §2.2: client_assertion_type is the jwt-bearer URN",
    ),
    (
        Misbehaviour::AlgHs256,
        "alg-hs256",
        "SMART Backend Services: assertions are signed with RS384 or ES384, not a shared-key HS256",
    ),
    (Misbehaviour::IssNotClientId, "iss-not-client-id", "RFC 7523 §3: iss and sub are both the client_id"),
    (Misbehaviour::IatInFuture, "iat-in-future", "RFC 7519 §4.1.6: iat is the time the assertion was issued"),
    (Misbehaviour::TwoHints, "two-hints", "CIBA Core §7.1: exactly one of login_hint_token, id_token_hint, login_hint"),
];

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    mode: Mode,
    /// Exactly as given: the assertion's aud.
    token_endpoint: String,
    token_url: Url,
    issuer: Option<String>,
    client_id: String,
    auth: Auth,
    scope: Option<String>,
    jwks_listen: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    misbehaviours: Vec<Misbehaviour>,
}

enum Mode {
    Service { resource: Url },
    Ciba(Box<Ciba>),
}

struct Ciba {
    backchannel: Url,
    login_hint: String,
    acr_values: String,
    channel: String,
    resource: Option<Url>,
}

enum Auth {
    SecretBasic(String),
    SecretPost(String),
    PrivateKeyJwt(Box<Signer>),
    Tls,
}

struct Signer {
    alg: Algorithm,
    alg_name: &'static str,
    key: EncodingKey,
    kid: String,
    /// The public JWK members (kty, crv/x/y or n/e).
    public: Map<String, Value>,
    /// The private member `d`, base64url: served only by `private-jwks`.
    private_d: String,
    /// `reuse-jti`: the one jti of every assertion.
    fixed_jti: String,
}

impl Config {
    fn from_env(misbehaviours: Vec<Misbehaviour>) -> Result<Self, String> {
        let system = required("OAUTH_HARNESS_SYSTEM")?;
        let token_endpoint = required("OAUTH_HARNESS_TOKEN_ENDPOINT")?;
        let token_url = parse_url("OAUTH_HARNESS_TOKEN_ENDPOINT", &token_endpoint)?;
        let client_id = required("OAUTH_HARNESS_CLIENT_ID")?;
        let method = required("OAUTH_HARNESS_AUTH_METHOD")?;
        let auth = match method.as_str() {
            "client_secret_basic" => Auth::SecretBasic(required("OAUTH_HARNESS_CLIENT_SECRET")?),
            "client_secret_post" => Auth::SecretPost(required("OAUTH_HARNESS_CLIENT_SECRET")?),
            "private_key_jwt" => {
                let path = required("OAUTH_HARNESS_PRIVATE_KEY")?;
                let kid = required("OAUTH_HARNESS_KEY_ID")?;
                Auth::PrivateKeyJwt(Box::new(load_signer(&path, optional("OAUTH_HARNESS_ALG").as_deref(), kid)?))
            }
            // RFC 8705 §2.1, §2.2: the same request either way; the certificate is the credential.
            "tls_client_auth" | "self_signed_tls_client_auth" => Auth::Tls,
            other => {
                return Err(format!(
                    "OAUTH_HARNESS_AUTH_METHOD {other} is not client_secret_basic, client_secret_post, \
                     private_key_jwt, tls_client_auth or self_signed_tls_client_auth"
                ));
            }
        };
        let resource =
            optional("OAUTH_HARNESS_RESOURCE_URL").map(|u| parse_url("OAUTH_HARNESS_RESOURCE_URL", &u)).transpose()?;
        let mode = match system.as_str() {
            "identity-server" | "smart-backend" => {
                Mode::Service { resource: resource.ok_or_else(|| not_set("OAUTH_HARNESS_RESOURCE_URL"))? }
            }
            "psc-ciba" => {
                let backchannel = required("OAUTH_HARNESS_BACKCHANNEL_ENDPOINT")?;
                Mode::Ciba(Box::new(Ciba {
                    backchannel: parse_url("OAUTH_HARNESS_BACKCHANNEL_ENDPOINT", &backchannel)?,
                    login_hint: required("OAUTH_HARNESS_LOGIN_HINT")?,
                    acr_values: optional("OAUTH_HARNESS_ACR_VALUES").unwrap_or_else(|| "eidas1".to_owned()),
                    channel: optional("OAUTH_HARNESS_CHANNEL").unwrap_or_else(|| "CARD".to_owned()),
                    resource,
                }))
            }
            other => {
                return Err(format!("OAUTH_HARNESS_SYSTEM {other} is not identity-server, smart-backend or psc-ciba"));
            }
        };
        // The issuer is only ever an aud under `aud-issuer`.
        let issuer = if misbehaviours.contains(&Misbehaviour::AudIssuer) {
            Some(required("OAUTH_HARNESS_ISSUER")?)
        } else {
            optional("OAUTH_HARNESS_ISSUER")
        };
        Ok(Config {
            mode,
            token_endpoint,
            token_url,
            issuer,
            client_id,
            auth,
            scope: optional("OAUTH_HARNESS_SCOPE"),
            jwks_listen: optional("OAUTH_HARNESS_JWKS_LISTEN"),
            ca_file: optional("OAUTH_HARNESS_CA_FILE"),
            client_cert: optional("OAUTH_HARNESS_CLIENT_CERT"),
            client_key: optional("OAUTH_HARNESS_CLIENT_KEY"),
            misbehaviours,
        })
    }

    fn on(&self, misbehaviour: Misbehaviour) -> bool {
        self.misbehaviours.contains(&misbehaviour)
    }
}

impl Auth {
    fn secret(&self) -> Option<&str> {
        match self {
            Auth::SecretBasic(secret) | Auth::SecretPost(secret) => Some(secret.as_str()),
            Auth::PrivateKeyJwt(_) | Auth::Tls => None,
        }
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn not_set(name: &str) -> String {
    format!("{name} is not set")
}

fn required(name: &str) -> Result<String, String> {
    optional(name).ok_or_else(|| not_set(name))
}

fn parse_url(name: &str, value: &str) -> Result<Url, String> {
    Url::parse(value).map_err(|e| format!("{name} is not a URL: {e}"))
}

fn read_file(path: &str, name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {name} ({path}): {e}"))
}

/// The private key for private_key_jwt; without OAUTH_HARNESS_ALG, its type decides.
fn load_signer(path: &str, alg: Option<&str>, kid: String) -> Result<Signer, String> {
    let pem = String::from_utf8(read_file(path, "OAUTH_HARNESS_PRIVATE_KEY")?)
        .map_err(|_| format!("OAUTH_HARNESS_PRIVATE_KEY ({path}) is not a PEM file"))?;
    let signer = match alg {
        Some("ES384") => ec_signer(&pem, kid),
        Some("RS384") => rsa_signer(&pem, kid),
        None => ec_signer(&pem, kid.clone()).or_else(|_| rsa_signer(&pem, kid)),
        Some(other) => return Err(format!("OAUTH_HARNESS_ALG {other} is not RS384 or ES384")),
    };
    signer.map_err(|e| format!("OAUTH_HARNESS_PRIVATE_KEY ({path}): {e}"))
}

fn ec_signer(pem: &str, kid: String) -> Result<Signer, String> {
    let secret = p384::SecretKey::from_pkcs8_pem(pem).map_err(|e| format!("not a PKCS#8 P-384 key: {e}"))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err("the P-384 public key has no coordinates".to_owned());
    };
    let mut public = Map::new();
    public.insert("kty".into(), json!("EC"));
    public.insert("crv".into(), json!("P-384"));
    public.insert("x".into(), json!(b64(x)));
    public.insert("y".into(), json!(b64(y)));
    Ok(Signer {
        alg: Algorithm::ES384,
        alg_name: "ES384",
        key: EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| format!("unusable EC key: {e}"))?,
        kid,
        public,
        private_d: b64(&secret.to_bytes()),
        fixed_jti: fresh_id(),
    })
}

fn rsa_signer(pem: &str, kid: String) -> Result<Signer, String> {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| format!("not an RSA key: {e}"))?;
    let mut public = Map::new();
    public.insert("kty".into(), json!("RSA"));
    public.insert("n".into(), json!(b64(&private.n().to_bytes_be())));
    public.insert("e".into(), json!(b64(&private.e().to_bytes_be())));
    Ok(Signer {
        alg: Algorithm::RS384,
        alg_name: "RS384",
        key: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("unusable RSA key: {e}"))?,
        kid,
        public,
        private_d: b64(&private.d().to_bytes_be()),
        fixed_jti: fresh_id(),
    })
}

/// One HTTP client for every request: the mock's CA, and the client certificate if configured.
fn http_client(cfg: &Config) -> Result<Client, String> {
    let mut builder = Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(path) = &cfg.ca_file {
        let certs = Certificate::from_pem_bundle(&read_file(path, "OAUTH_HARNESS_CA_FILE")?)
            .map_err(|e| format!("OAUTH_HARNESS_CA_FILE ({path}): {e}"))?;
        builder = builder.tls_certs_only(certs);
    }
    // RFC 8705 §2: the certificate is presented, unless `no-client-certificate`.
    if let Some(cert) = cfg.client_cert.as_ref().filter(|_| !cfg.on(Misbehaviour::NoClientCertificate)) {
        let mut pem = read_file(cert, "OAUTH_HARNESS_CLIENT_CERT")?;
        if let Some(key) = &cfg.client_key {
            pem.push(b'\n');
            pem.extend(read_file(key, "OAUTH_HARNESS_CLIENT_KEY")?);
        }
        let identity = Identity::from_pem(&pem).map_err(|e| format!("unusable client certificate or key: {e}"))?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))
}

// ---------------------------------------------------------------------------------------------
// Command line and main

enum Command {
    List,
    Run(Vec<Misbehaviour>),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut list = false;
    let mut chosen = Vec::new();
    while let Some(arg) = args.next() {
        let name = if arg == "--list-misbehaviours" {
            list = true;
            continue;
        } else if arg == "--misbehave" {
            args.next().ok_or("--misbehave needs a name")?
        } else if let Some(name) = arg.strip_prefix("--misbehave=") {
            name.to_owned()
        } else {
            return Err(format!(
                "unknown argument {arg}; usage: reference_client [--misbehave NAME]… [--list-misbehaviours]"
            ));
        };
        let Some((misbehaviour, _, _)) = ALL.iter().find(|(_, known, _)| *known == name) else {
            let known: Vec<&str> = ALL.iter().map(|(_, known, _)| *known).collect();
            return Err(format!("unknown misbehaviour {name}; known: {}", known.join(", ")));
        };
        chosen.push(*misbehaviour);
    }
    Ok(if list { Command::List } else { Command::Run(chosen) })
}

fn log(message: &str) {
    eprintln!("reference_client: {message}");
}

/// Test hook of the redaction test (tests/certify.rs): every token the client gets is appended to
/// this file, so the test knows which values must appear in no output of a certify run.
const TOKEN_LOG: &str = "REFERENCE_CLIENT_TOKEN_LOG";

fn record_token(token: &str) {
    use std::io::Write;
    if let Some(path) = std::env::var_os(TOKEN_LOG) {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        let _ = file.and_then(|mut f| writeln!(f, "{token}"));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let misbehaviours = match parse_args(std::env::args().skip(1)) {
        Ok(Command::List) => {
            for (_, name, rule) in ALL {
                println!("{name}  {rule}");
            }
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(chosen)) => chosen,
        Err(message) => {
            log(&message);
            return ExitCode::from(2);
        }
    };
    let started = Config::from_env(misbehaviours).and_then(|cfg| http_client(&cfg).map(|http| (cfg, http)));
    let (cfg, http) = match started {
        Ok(started) => started,
        Err(message) => {
            log(&message);
            return ExitCode::from(2);
        }
    };
    // The JWKS is served before any token request, so the mock can fetch it for the first one.
    if let Err(message) = start_jwks(&cfg).await {
        log(&message);
        return ExitCode::from(2);
    }
    match &cfg.mode {
        Mode::Service { resource } => service_loop(&cfg, &http, resource).await,
        Mode::Ciba(ciba) => ciba_flow(&cfg, &http, ciba).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// What an answer means to the client.
enum Answer {
    Success {
        body: Vec<u8>,
        arrived: Instant,
    },
    /// 401 whose WWW-Authenticate says invalid_token.
    InvalidToken,
    /// 503 or 429 with a Retry-After in seconds.
    RetryAfter(Duration),
    /// Any other 5xx.
    ServerError(u16),
    /// Any other status, with the `error` code of the body if any.
    Refused {
        status: u16,
        error: String,
    },
    /// No answer (transport), or the request could not be made.
    Failed(String),
}

enum Endpoint<'a> {
    Token,
    Backchannel(&'a Url),
}

struct ClientAuth {
    basic: Option<String>,
    params: Vec<(&'static str, String)>,
}

/// A request to the token or backchannel endpoint: the form plus client authentication.
async fn token_request(
    cfg: &Config,
    http: &Client,
    endpoint: Endpoint<'_>,
    mut params: Vec<(&'static str, String)>,
) -> Answer {
    let auth = match client_auth(cfg) {
        Ok(auth) => auth,
        Err(reason) => return Answer::Failed(reason),
    };
    params.extend(auth.params);
    let (mut url, is_token) = match endpoint {
        Endpoint::Token => (cfg.token_url.clone(), true),
        Endpoint::Backchannel(url) => (url.clone(), false),
    };
    // `secret-in-query`: credentials in the URI as well (RFC 6749 §2.3.1 forbids it).
    if let Some(secret) = cfg.auth.secret().filter(|_| cfg.on(Misbehaviour::SecretInQuery)) {
        url.query_pairs_mut().append_pair("client_id", &cfg.client_id).append_pair("client_secret", secret);
    }
    let mut request = if is_token && cfg.on(Misbehaviour::TokenGet) {
        url.query_pairs_mut().extend_pairs(params.iter());
        http.get(url)
    } else {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        http.post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
    };
    if let Some(basic) = auth.basic {
        request = request.header(AUTHORIZATION, basic);
    }
    send(request).await
}

/// Client authentication by the registered method (RFC 6749 §2.3, RFC 7523, RFC 8705).
fn client_auth(cfg: &Config) -> Result<ClientAuth, String> {
    let two = cfg.on(Misbehaviour::TwoAuthMethods);
    let client_id = || ("client_id", cfg.client_id.clone());
    // `other-auth-method`: the other secret method than the registered one.
    let swapped;
    let auth = match &cfg.auth {
        Auth::SecretBasic(secret) if cfg.on(Misbehaviour::OtherAuthMethod) => {
            swapped = Auth::SecretPost(secret.clone());
            &swapped
        }
        Auth::SecretPost(secret) if cfg.on(Misbehaviour::OtherAuthMethod) => {
            swapped = Auth::SecretBasic(secret.clone());
            &swapped
        }
        auth => auth,
    };
    Ok(match auth {
        Auth::SecretBasic(secret) => ClientAuth {
            basic: Some(basic_credentials(cfg, secret)),
            params: if two { vec![client_id(), ("client_secret", secret.clone())] } else { Vec::new() },
        },
        Auth::SecretPost(secret) => ClientAuth {
            basic: two.then(|| basic_credentials(cfg, secret)),
            params: vec![client_id(), ("client_secret", secret.clone())],
        },
        Auth::PrivateKeyJwt(signer) => ClientAuth {
            basic: None,
            params: vec![
                (
                    "client_assertion_type",
                    if cfg.on(Misbehaviour::WrongAssertionType) { SAML_BEARER } else { JWT_BEARER }.to_owned(),
                ),
                ("client_assertion", assertion(cfg, signer)?),
            ],
        },
        Auth::Tls => ClientAuth { basic: None, params: vec![client_id()] },
    })
}

/// RFC 6749 §2.3.1: Basic over the form-encoded client_id and secret.
fn basic_credentials(cfg: &Config, secret: &str) -> String {
    let pair = if cfg.on(Misbehaviour::BasicNotFormEncoded) {
        format!("{}:{secret}", cfg.client_id)
    } else {
        format!("{}:{}", form_encode(&cfg.client_id), form_encode(secret))
    };
    format!("Basic {}", STANDARD.encode(pair))
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The client assertion (RFC 7523 §3, SMART Backend Services).
fn assertion(cfg: &Config, signer: &Signer) -> Result<String, String> {
    let now = unix_now();
    let aud = match (&cfg.issuer, cfg.on(Misbehaviour::AudIssuer)) {
        (Some(issuer), true) => issuer.as_str(),
        _ => cfg.token_endpoint.as_str(),
    };
    let lifetime = if cfg.on(Misbehaviour::ExpOneHour) { 3600 } else { ASSERTION_LIFETIME };
    let iss = if cfg.on(Misbehaviour::IssNotClientId) { NOT_THE_CLIENT_ID } else { cfg.client_id.as_str() };
    let iat = if cfg.on(Misbehaviour::IatInFuture) { now + IAT_AHEAD } else { now };
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(iss));
    claims.insert("sub".into(), json!(cfg.client_id));
    claims.insert("aud".into(), json!(aud));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("iat".into(), json!(iat));
    if !cfg.on(Misbehaviour::NoJti) {
        let jti = if cfg.on(Misbehaviour::ReuseJti) { signer.fixed_jti.clone() } else { fresh_id() };
        claims.insert("jti".into(), json!(jti));
    }
    // `alg-hs256`: a MAC keyed with the client_id, as a client that never read the profile might.
    let hs256 = EncodingKey::from_secret(cfg.client_id.as_bytes());
    let (alg, key) =
        if cfg.on(Misbehaviour::AlgHs256) { (Algorithm::HS256, &hs256) } else { (signer.alg, &signer.key) };
    let mut header = Header::new(alg);
    header.kid =
        Some(if cfg.on(Misbehaviour::KidUnknown) { "not-a-registered-kid".to_owned() } else { signer.kid.clone() });
    jsonwebtoken::encode(&header, &Value::Object(claims), key)
        .map_err(|e| format!("cannot sign the client assertion: {e}"))
}

/// GET the resource with the token: in the Authorization header (RFC 6750 §2.1).
async fn call_resource(cfg: &Config, http: &Client, resource: &Url, token: &str) -> Answer {
    let request = if cfg.on(Misbehaviour::BearerInQuery) {
        let mut url = resource.clone();
        url.query_pairs_mut().append_pair("access_token", token);
        http.get(url)
    } else {
        http.get(resource.clone()).header(AUTHORIZATION, format!("Bearer {token}"))
    };
    send(request).await
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Answer::Failed(describe(e)),
    };
    let arrived = Instant::now();
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let invalid_token = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("invalid_token"));
    let body = response.bytes().await.map(|bytes| bytes.to_vec()).unwrap_or_default();
    match (status, retry_after) {
        (200..=299, _) => Answer::Success { body, arrived },
        (401, _) if invalid_token => Answer::InvalidToken,
        (429 | 503, Some(wait)) => Answer::RetryAfter(wait),
        (500..=599, _) => Answer::ServerError(status),
        _ => Answer::Refused { status, error: error_code(&body) },
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The `error` code of an error answer; only a plain code, never free text.
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| body.get("error")?.as_str().map(str::to_owned))
        .filter(|code| code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or_default()
}

/// A transport error without its URL (which may carry credentials under `secret-in-query`).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = std::error::Error::source(cause);
    }
    text
}

fn log_failure(what: &str, answer: &Answer) {
    match answer {
        Answer::Success { .. } => {}
        Answer::InvalidToken => log(&format!("{what}: 401 invalid_token")),
        Answer::RetryAfter(wait) => log(&format!("{what}: asked to retry after {} s", wait.as_secs())),
        Answer::ServerError(status) => log(&format!("{what}: server error {status}")),
        Answer::Refused { status, error } => log(&format!("{what}: refused with {status} {error}")),
        Answer::Failed(reason) => log(&format!("{what}: {reason}")),
    }
}

fn seconds(body: &Value, name: &str) -> Option<u64> {
    match body.get(name)? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A fresh 128-bit identifier: SHA-256 of the time, the process and a counter.
fn fresh_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut hash = Sha256::new();
    hash.update(nanos.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    b64(&hash.finalize()[..16])
}

// ---------------------------------------------------------------------------------------------
// Service mode (identity-server, smart-backend)

struct Token {
    value: String,
    expires_at: Instant,
    lifetime: Duration,
}

impl Token {
    /// Due for renewal: within min(30 s, lifetime / 4) of its expiry.
    fn due(&self) -> bool {
        let margin = (self.lifetime / RENEW_MARGIN_DIVISOR).min(RENEW_MARGIN_MAX);
        Instant::now() + margin >= self.expires_at
    }
}

fn parse_token(body: &[u8], arrived: Instant) -> Option<Token> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let value = body.get("access_token")?.as_str()?.to_owned();
    record_token(&value);
    let lifetime = Duration::from_secs(seconds(&body, "expires_in").unwrap_or(DEFAULT_EXPIRES_IN));
    Some(Token { value, expires_at: arrived + lifetime, lifetime })
}

/// Exponential backoff after a 5xx: 500 ms, 1 s, 2 s … 8 s; reset on success.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn step(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// How long to wait after an answer before the next round.
fn pause_after(cfg: &Config, answer: &Answer, backoff: &mut Backoff) -> Duration {
    let at_once = cfg.on(Misbehaviour::Retry503AtOnce);
    match answer {
        Answer::Success { .. } => {
            backoff.reset();
            ROUND_PAUSE
        }
        Answer::RetryAfter(_) | Answer::ServerError(_) if at_once => AT_ONCE,
        Answer::RetryAfter(wait) => *wait,
        Answer::ServerError(_) | Answer::Failed(_) => backoff.step(),
        Answer::InvalidToken | Answer::Refused { .. } => AFTER_REFUSAL,
    }
}

/// Runs until certify ends the process.
async fn service_loop(cfg: &Config, http: &Client, resource: &Url) -> ExitCode {
    let mut cached: Option<Token> = None;
    let mut backoff = Backoff { next: BACKOFF_START };
    loop {
        let pause = round(cfg, http, resource, &mut cached, &mut backoff).await;
        sleep(pause.max(MIN_PAUSE)).await;
    }
}

/// One client-credentials token request (a single attempt); Err is the pause before the next.
async fn fetch_token(cfg: &Config, http: &Client, backoff: &mut Backoff) -> Result<Token, Duration> {
    let mut params = Vec::new();
    if !cfg.on(Misbehaviour::NoGrantType) {
        params.push(("grant_type", "client_credentials".to_owned()));
    }
    // `unregistered-scope`: one scope more than the registration holds.
    let scope = match (&cfg.scope, cfg.on(Misbehaviour::UnregisteredScope)) {
        (Some(scope), true) => Some(format!("{scope} {UNREGISTERED_SCOPE}")),
        (None, true) => Some(UNREGISTERED_SCOPE.to_owned()),
        (scope, false) => scope.clone(),
    };
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let answer = token_request(cfg, http, Endpoint::Token, params).await;
    if let Answer::Success { body, arrived } = &answer {
        let Some(token) = parse_token(body, *arrived) else {
            log("token request: 200 without an access_token");
            return Err(AFTER_REFUSAL);
        };
        backoff.reset();
        log(&format!("token obtained, expires_in {}", token.lifetime.as_secs()));
        return Ok(token);
    }
    log_failure("token request", &answer);
    Err(pause_after(cfg, &answer, backoff))
}

/// A token if needed, then one resource call; returns the pause before the next round.
async fn round(
    cfg: &Config,
    http: &Client,
    resource: &Url,
    cached: &mut Option<Token>,
    backoff: &mut Backoff,
) -> Duration {
    let renew = match cached.as_ref() {
        None => true,
        Some(_) if cfg.on(Misbehaviour::TokenPerCall) => true,
        // `send-expired-token` renews only after a 401.
        Some(token) => !cfg.on(Misbehaviour::SendExpiredToken) && token.due(),
    };
    if renew {
        match fetch_token(cfg, http, backoff).await {
            Ok(token) => *cached = Some(token),
            Err(pause) => return pause,
        }
    }
    let Some(token) = cached.as_ref() else { return ROUND_PAUSE };
    let answer = call_resource(cfg, http, resource, &token.value).await;
    if !matches!(answer, Answer::InvalidToken) {
        log_failure("resource call", &answer);
        return pause_after(cfg, &answer, backoff);
    }
    if cfg.on(Misbehaviour::ReuseRefusedToken) {
        return ROUND_PAUSE;
    }
    // RFC 6750 §3.1: the token is refused; one new token, one retry (`retry-loop…`: up to 10).
    log("resource call: 401 invalid_token, renewing the token");
    *cached = None;
    let tries = if cfg.on(Misbehaviour::RetryLoopOnInvalidToken) { 10 } else { 1 };
    for _ in 0..tries {
        let token = match fetch_token(cfg, http, backoff).await {
            Ok(token) => token,
            Err(pause) => return pause,
        };
        let answer = call_resource(cfg, http, resource, &token.value).await;
        if !matches!(answer, Answer::InvalidToken) {
            *cached = Some(token);
            log_failure("resource call", &answer);
            return pause_after(cfg, &answer, backoff);
        }
    }
    // A refused token stays refused: the next round, after the pause, gets another.
    log("resource call: a fresh token was refused too; waiting");
    AFTER_REFUSAL
}

// ---------------------------------------------------------------------------------------------
// JWKS (private_key_jwt registered by URL)

/// The key as a JWK: public members only, unless `private-jwks`.
fn public_jwk(signer: &Signer, with_private: bool) -> Value {
    let mut jwk = signer.public.clone();
    jwk.insert("kid".into(), json!(signer.kid));
    jwk.insert("alg".into(), json!(signer.alg_name));
    jwk.insert("use".into(), json!("sig"));
    if with_private {
        jwk.insert("d".into(), json!(signer.private_d));
    }
    Value::Object(jwk)
}

/// Binds OAUTH_HARNESS_JWKS_LISTEN (if set) and serves the JWKS there in the background.
async fn start_jwks(cfg: &Config) -> Result<(), String> {
    let Some(addr) = &cfg.jwks_listen else { return Ok(()) };
    let Auth::PrivateKeyJwt(signer) = &cfg.auth else {
        log("OAUTH_HARNESS_JWKS_LISTEN ignored: the client has no private key");
        return Ok(());
    };
    let listener = TcpListener::bind(addr.as_str())
        .await
        .map_err(|e| format!("cannot listen on OAUTH_HARNESS_JWKS_LISTEN ({addr}): {e}"))?;
    let body = json!({ "keys": [public_jwk(signer, cfg.on(Misbehaviour::PrivateJwks))] }).to_string();
    tokio::spawn(serve_jwks(listener, body));
    Ok(())
}

/// The same JWKS on every path, one answer per connection.
async fn serve_jwks(listener: TcpListener, body: String) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer_jwks(stream, body.clone()));
            }
            Err(_) => sleep(MIN_PAUSE).await,
        }
    }
}

async fn answer_jwks(mut stream: TcpStream, body: String) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(TIMEOUT, read_head).await;
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// CIBA mode (psc-ciba): one poll-mode flow

/// The backchannel scope: CIBA Core §7.1 requires openid (`no-openid-scope` strips it).
fn ciba_scope(cfg: &Config) -> Option<String> {
    let requested = cfg.scope.as_deref().unwrap_or("openid");
    if cfg.on(Misbehaviour::NoOpenidScope) {
        let rest: Vec<&str> = requested.split_whitespace().filter(|s| *s != "openid").collect();
        return (!rest.is_empty()).then(|| rest.join(" "));
    }
    if requested.split_whitespace().any(|s| s == "openid") {
        Some(requested.to_owned())
    } else {
        Some(format!("openid {requested}"))
    }
}

/// Two digits, different from run to run.
fn binding_message() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (10 + nanos % 90).to_string()
}

async fn poll(cfg: &Config, http: &Client, auth_req_id: &str) -> Answer {
    let params = vec![("grant_type", CIBA_GRANT.to_owned()), ("auth_req_id", auth_req_id.to_owned())];
    token_request(cfg, http, Endpoint::Token, params).await
}

async fn ciba_flow(cfg: &Config, http: &Client, ciba: &Ciba) -> ExitCode {
    let mut params = Vec::new();
    if let Some(scope) = ciba_scope(cfg) {
        params.push(("scope", scope));
    }
    params.push(("login_hint", ciba.login_hint.clone()));
    // `two-hints`: the same user named twice, as a login_hint_token too.
    if cfg.on(Misbehaviour::TwoHints) {
        params.push(("login_hint_token", ciba.login_hint.clone()));
    }
    if !cfg.on(Misbehaviour::NoBindingMessage) {
        params.push(("binding_message", binding_message()));
    }
    params.push(("acr_values", ciba.acr_values.clone()));
    params.push(("channel", ciba.channel.clone()));

    // 1. The authentication request (retried at most 3 times when told to wait).
    let mut retries = 0;
    let (body, started) = loop {
        match token_request(cfg, http, Endpoint::Backchannel(&ciba.backchannel), params.clone()).await {
            Answer::Success { body, arrived } => break (body, arrived),
            Answer::RetryAfter(wait) if retries < MAX_BACKCHANNEL_RETRIES => {
                retries += 1;
                log(&format!("backchannel request: asked to retry after {} s", wait.as_secs()));
                sleep(if cfg.on(Misbehaviour::Retry503AtOnce) { AT_ONCE } else { wait }).await;
            }
            other => {
                log_failure("backchannel request", &other);
                return ExitCode::FAILURE;
            }
        }
    };
    let ack: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(auth_req_id) = ack.get("auth_req_id").and_then(Value::as_str).map(str::to_owned) else {
        log("backchannel request: 200 without an auth_req_id");
        return ExitCode::FAILURE;
    };
    let expires_in = seconds(&ack, "expires_in").unwrap_or(DEFAULT_CIBA_EXPIRES_IN);
    let deadline = started + Duration::from_secs(expires_in);
    let mut interval = Duration::from_secs(seconds(&ack, "interval").unwrap_or(DEFAULT_INTERVAL));
    log(&format!("authentication request accepted, expires_in {expires_in}, interval {}", interval.as_secs()));

    // 2. Polls: one at a time, `interval` after the previous answer (and before the first poll).
    let pace = |interval: Duration| if cfg.on(Misbehaviour::IgnoreInterval) { IGNORED_INTERVAL } else { interval };
    let mut wait = pace(interval);
    let mut polls_after_denial: Option<u32> = None;
    for _ in 0..MAX_POLLS {
        if Instant::now() + wait + EXPIRY_MARGIN >= deadline {
            // No poll after expiry; the flow ends once the request has expired, not before.
            sleep(deadline.saturating_duration_since(Instant::now()) + PAST_EXPIRY).await;
            log(&format!("the authentication request expired (expires_in {expires_in}) without a token"));
            return ExitCode::FAILURE;
        }
        sleep(wait).await;
        let answer = if cfg.on(Misbehaviour::TwoPollsAtOnce) {
            let (first, second) = tokio::join!(poll(cfg, http, &auth_req_id), poll(cfg, http, &auth_req_id));
            // Whichever of the pair the server answered as final counts (which one reaches it
            // first is up to the network): the misbehaviour is the pair, not what follows it.
            let decisive = |a: &Answer| {
                matches!(a, Answer::Success { .. })
                    || matches!(a, Answer::Refused { error, .. } if FINAL_POLL_ERRORS.contains(&error.as_str()))
            };
            if decisive(&second) && !decisive(&first) { second } else { first }
        } else {
            poll(cfg, http, &auth_req_id).await
        };
        if let Answer::Success { body, .. } = &answer {
            return finish(cfg, http, ciba, body).await;
        }
        wait = pace(interval);
        // `poll-after-denied`: whatever comes after a final error, poll again (20 more at most).
        if let Some(count) = polls_after_denial.as_mut() {
            *count += 1;
            if *count >= MAX_POLLS_AFTER_DENIAL {
                log("stopping after 20 polls past a final error");
                return ExitCode::FAILURE;
            }
            continue;
        }
        match answer {
            Answer::Refused { error, .. } if error == "authorization_pending" => {}
            Answer::Refused { error, .. } if error == "slow_down" => {
                if !cfg.on(Misbehaviour::IgnoreSlowDown) {
                    interval += SLOW_DOWN_STEP;
                }
                log(&format!("slow_down: interval now {} s", interval.as_secs()));
                wait = pace(interval);
            }
            Answer::RetryAfter(retry) => {
                wait = if cfg.on(Misbehaviour::Retry503AtOnce) { AT_ONCE } else { retry.max(pace(interval)) };
            }
            Answer::Refused { error, .. }
                if cfg.on(Misbehaviour::PollAfterDenied) && FINAL_POLL_ERRORS.contains(&error.as_str()) =>
            {
                log(&format!("token poll: {error}, polling on anyway"));
                polls_after_denial = Some(0);
            }
            other => {
                log_failure("token poll", &other);
                return ExitCode::FAILURE;
            }
        }
    }
    log("stopping after 200 polls");
    ExitCode::FAILURE
}

/// The CIBA token arrived: call the resource once with it (its answer does not matter), exit 0.
async fn finish(cfg: &Config, http: &Client, ciba: &Ciba, body: &[u8]) -> ExitCode {
    let Some(token) = parse_token(body, Instant::now()) else {
        log("token poll: 200 without an access_token");
        return ExitCode::FAILURE;
    };
    log(&format!("token obtained, expires_in {}", token.lifetime.as_secs()));
    if let Some(resource) = &ciba.resource {
        let answer = call_resource(cfg, http, resource, &token.value).await;
        log_failure("resource call", &answer);
    }
    ExitCode::SUCCESS
}
