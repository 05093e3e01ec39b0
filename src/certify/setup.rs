//! One case's world: the suite's mock started as the case says and wrapped by the recorder, the
//! client's configuration (environment variables, files in a folder of the run's own), and its
//! registration for the checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::recorder::{Paths, Recorder};
use crate::mock::identity_server::{self, FHIR_RESOURCE_PATH, IdentityServerMock, RESOURCE_PATH};
use crate::mock::psc::{self, PscAuth, PscMock, UserBehaviour};
use crate::model::AuthMethod;
use crate::model::client_suite::{CibaUser, ClientCase, ClientSuite, ClientSystem};
use crate::protocol::observation::Registration;
use crate::support::http_server::Handle;
use crate::support::secret::{Redactor, Secret};

/// The PSC profile's `acr_values`.
const PSC_ACR: &str = "eidas1";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the {system} mock has no client `{name}`")]
    UnknownClient { system: &'static str, name: String },
    #[error("cannot start the mock: {0}")]
    Mock(#[from] std::io::Error),
}

/// A running mock, kept alive for the case.
pub enum Mock {
    IdentityServer(IdentityServerMock),
    Psc(PscMock),
}

/// Files written for the client; removed when dropped.
pub struct Files(PathBuf);

impl Files {
    fn new() -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("oauth-harness-certify-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn write(&self, name: &str, text: &str) -> std::io::Result<String> {
        let path = self.0.join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Prepared {
    pub mock: Mock,
    pub recorder: Arc<Recorder>,
    pub env: Vec<(String, String)>,
    pub registration: Registration,
    /// Where the client publishes its JWKS, fetched at the end of the observation.
    pub jwks_url: Option<String>,
    pub files: Files,
}

/// The name of the mock client a case certifies as.
pub fn client_name<'a>(suite: &'a ClientSuite, case: &'a ClientCase) -> &'a str {
    case.client.as_ref().map(|c| c.name.as_str()).unwrap_or(&suite.client.name)
}

/// The clients the suite's mock registers (what `client:` may name).
pub fn client_names(system: ClientSystem) -> Vec<String> {
    match system {
        ClientSystem::IdentityServer | ClientSystem::SmartBackend => {
            identity_server::builtin().clients.into_iter().map(|c| c.name).collect()
        }
        ClientSystem::PscCiba => psc::registered_clients().into_iter().map(|c| c.name.to_string()).collect(),
    }
}

pub async fn prepare(
    suite: &ClientSuite,
    case: &ClientCase,
    redactor: &Redactor,
    port: Option<u16>,
) -> Result<Prepared, SetupError> {
    match suite.system {
        ClientSystem::IdentityServer | ClientSystem::SmartBackend => identity_server(suite, case, redactor, port).await,
        ClientSystem::PscCiba => psc(suite, case, redactor, port).await,
    }
}

fn wrapped(
    paths: Paths,
    case: &ClientCase,
    redactor: &Redactor,
    slot: &mut Option<Arc<Recorder>>,
) -> impl FnOnce(Arc<dyn Handle>) -> Arc<dyn Handle> {
    let (script, latency, redactor) = (case.mock.inject.clone(), case.mock.poll_latency, redactor.clone());
    move |inner| {
        let recorder = Arc::new(Recorder::new(inner, paths, script, latency, redactor));
        *slot = Some(recorder.clone());
        recorder
    }
}

fn var(name: &str, value: impl Into<String>) -> (String, String) {
    (format!("OAUTH_HARNESS_{name}"), value.into())
}

/// A private_key_jwt client's variables: the key written to the run's folder, its kid and alg.
fn key_vars(files: &Files, key: &crate::support::keys::KeyPair) -> std::io::Result<[(String, String); 3]> {
    Ok([
        var("PRIVATE_KEY", files.write("private.pem", key.private_pem())?),
        var("KEY_ID", key.kid.clone()),
        var("ALG", key.alg.name()),
    ])
}

async fn identity_server(
    suite: &ClientSuite,
    case: &ClientCase,
    redactor: &Redactor,
    port: Option<u16>,
) -> Result<Prepared, SetupError> {
    let name = client_name(suite, case);
    let mut clients = identity_server::builtin();
    let files = Files::new()?;
    let client = clients
        .clients
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| SetupError::UnknownClient { system: identity_server::NAME, name: name.to_string() })?;
    if let Some(lifetime) = case.mock.token_lifetime {
        client.token_ttl_secs = Some(lifetime.as_secs().max(1));
    }
    let key = client.key.as_deref().and_then(identity_server::builtin_key);
    // SMART clients publish their keys at a URL the mock fetches (and certify reads).
    let jwks_listen = match (&key, suite.system) {
        (Some(_), ClientSystem::SmartBackend) => {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            let addr = listener.local_addr()?;
            client.jwks = None;
            client.jwks_uri = Some(format!("http://{addr}/jwks.json"));
            client.register_by_url = true;
            Some(addr.to_string())
        }
        _ => None,
    };
    let client = client.clone();
    let config = identity_server::Config { clients, ..Default::default() };
    let resource = if suite.system == ClientSystem::SmartBackend { FHIR_RESOURCE_PATH } else { RESOURCE_PATH };
    let paths = Paths { token: "/connect/token".into(), backchannel: None, resource: resource.into() };
    let mut slot = None;
    let mock = IdentityServerMock::start_with(config, port, wrapped(paths, case, redactor, &mut slot)).await?;
    let recorder = slot.ok_or_else(|| std::io::Error::other("the mock did not start its handler"))?;
    let issuer = mock.issuer();
    let token_endpoint = format!("{issuer}/connect/token");
    let method = client.auth_methods.first().copied().unwrap_or(AuthMethod::ClientSecretBasic);
    let secret = (!client.client_secret.is_empty()).then(|| client.client_secret.clone());
    if let Some(s) = &secret {
        redactor.register_credentials(&client.client_id, &Secret::new(s.clone()));
    }
    let mut env = vec![
        var("SYSTEM", suite.system.name()),
        var("ISSUER", issuer.clone()),
        var("TOKEN_ENDPOINT", token_endpoint.clone()),
        var("RESOURCE_URL", format!("{issuer}{resource}")),
        var("CLIENT_ID", client.client_id.clone()),
        var("AUTH_METHOD", method.to_string()),
        var("SCOPE", client.default_scope.clone().unwrap_or_default()),
    ];
    env.extend(secret.clone().map(|s| var("CLIENT_SECRET", s)));
    if let Some(key) = &key {
        env.extend(key_vars(&files, key)?);
    }
    env.extend(jwks_listen.clone().map(|a| var("JWKS_LISTEN", a)));
    let registration = Registration {
        client_id: client.client_id.clone(),
        method,
        secret,
        scopes: client.scopes.clone(),
        kids: key.iter().map(|k| k.kid.clone()).collect(),
        subject: None,
        issuer,
        token_endpoint,
        acr_values: None,
    };
    Ok(Prepared {
        mock: Mock::IdentityServer(mock),
        recorder,
        env,
        registration,
        jwks_url: jwks_listen.map(|a| format!("http://{a}/jwks.json")),
        files,
    })
}

async fn psc(
    suite: &ClientSuite,
    case: &ClientCase,
    redactor: &Redactor,
    port: Option<u16>,
) -> Result<Prepared, SetupError> {
    let name = client_name(suite, case);
    let client = psc::registered_clients()
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| SetupError::UnknownClient { system: psc::NAME, name: name.to_string() })?;
    let files = Files::new()?;
    let after = case.mock.answer_after.unwrap_or(Duration::from_millis(1500)).as_millis() as u64;
    let behaviour = match case.mock.user.unwrap_or(CibaUser::Approves) {
        CibaUser::Approves => UserBehaviour::ApprovesAfterMs(after),
        CibaUser::Denies => UserBehaviour::DeniesAfterMs(after),
        CibaUser::NeverAnswers => UserBehaviour::NeverAnswers,
    };
    let defaults = psc::Config::default();
    let config = psc::Config {
        interval_secs: case.mock.interval.map(|d| d.as_secs().max(1)).unwrap_or(defaults.interval_secs),
        expires_in_secs: case.mock.request_expires_in.map(|d| d.as_secs().max(1)).unwrap_or(defaults.expires_in_secs),
        users: [(psc::USER_APPROVES.to_string(), behaviour)].into_iter().collect(),
        ..defaults
    };
    let realm = psc::REALM;
    let paths = Paths {
        token: format!("{realm}/protocol/openid-connect/token"),
        backchannel: Some(format!("{realm}/protocol/openid-connect/ext/ciba/auth")),
        resource: format!("{realm}/test/resource"),
    };
    let mut slot = None;
    let mock = PscMock::start_with(config, port, wrapped(paths, case, redactor, &mut slot)).await?;
    let recorder = slot.ok_or_else(|| std::io::Error::other("the mock did not start its handler"))?;
    let issuer = mock.issuer();
    let token_endpoint = format!("{issuer}/protocol/openid-connect/token");
    let method = client.method();
    let mut env = vec![
        var("SYSTEM", suite.system.name()),
        var("ISSUER", issuer.clone()),
        var("TOKEN_ENDPOINT", token_endpoint.clone()),
        var("BACKCHANNEL_ENDPOINT", format!("{issuer}/protocol/openid-connect/ext/ciba/auth")),
        var("RESOURCE_URL", format!("{issuer}/test/resource")),
        var("CLIENT_ID", client.client_id),
        var("AUTH_METHOD", method.to_string()),
        var("SCOPE", psc::CLIENT_SCOPES.join(" ")),
        var("LOGIN_HINT", psc::USER_APPROVES),
        var("ACR_VALUES", PSC_ACR),
        var("CHANNEL", "CARD"),
        var("CA_FILE", files.write("ca.pem", psc::CA_PEM)?),
    ];
    // PSC's gateway asks every client for a certificate: the certificate clients have theirs.
    if let Some((cert, key)) = psc::client_identity_pem(name) {
        env.push(var("CLIENT_CERT", files.write("client.pem", cert)?));
        env.push(var("CLIENT_KEY", files.write("client.key", key)?));
    }
    let mut secret = None;
    let mut kids = Vec::new();
    match &client.auth {
        PscAuth::Secret { secret: s, .. } => {
            redactor.register_credentials(client.client_id, &Secret::new(*s));
            env.push(var("CLIENT_SECRET", *s));
            secret = Some(s.to_string());
        }
        PscAuth::PrivateKeyJwt { .. } => {
            if let Some(key) = identity_server::builtin_key("backend-es384") {
                env.extend(key_vars(&files, &key)?);
                kids.push(key.kid.clone());
            }
        }
        PscAuth::Certificate { .. } | PscAuth::SelfSigned { .. } => {}
    }
    let subject = match &client.auth {
        PscAuth::Certificate { subject } => Some(subject.clone()),
        _ => None,
    };
    let registration = Registration {
        client_id: client.client_id.to_string(),
        method,
        secret,
        scopes: psc::CLIENT_SCOPES.iter().map(|s| s.to_string()).collect(),
        kids,
        subject,
        issuer,
        token_endpoint,
        acr_values: Some(PSC_ACR.into()),
    };
    Ok(Prepared { mock: Mock::Psc(mock), recorder, env, registration, jwks_url: None, files })
}
