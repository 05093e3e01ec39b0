//! The embedded default: the built-in mocks started in-process on 127.0.0.1, with the harness's
//! JWKS server, and the target that describes them. `run` without `--target` uses this.

use std::sync::Arc;

use super::identity_server::{Config, Defect};
use super::{DefectSet, IdentityServerMock};
use crate::jwks_server::JwksServer;
use crate::target::Target;

pub struct Embedded {
    pub target: Target,
    pub jwks: Arc<JwksServer>,
    _identity_server: IdentityServerMock,
}

impl Embedded {
    pub async fn start(defects: DefectSet<Defect>) -> std::io::Result<Self> {
        let jwks = Arc::new(JwksServer::start(None).await?);
        let mut config = Config { defects, ..Config::default() };
        // Clients registered "by URL": the harness serves their JWKS and the mock fetches it.
        for client in config.clients.clients.iter_mut().filter(|c| c.register_by_url) {
            if let Some(key) = client.key.as_deref().and_then(super::identity_server::builtin_key) {
                let url = jwks.publish(&JwksServer::client_path(&client.name), key.jwks());
                client.jwks_uri = Some(url.to_string());
                client.jwks = None;
            }
        }
        let identity_server = IdentityServerMock::start(config, None).await?;
        Ok(Self { target: identity_server.target(), jwks, _identity_server: identity_server })
    }
}
