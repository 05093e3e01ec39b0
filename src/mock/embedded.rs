//! The embedded default: the built-in mocks started in-process on 127.0.0.1, with the harness's
//! JWKS server, and the target that describes them. `run` without `--target` uses this.

use std::sync::Arc;

use super::identity_server::{Config, Defect};
use super::psc::PscMock;
use super::{DefectSet, IdentityServerMock};
use crate::jwks_server::JwksServer;
use crate::target::Target;

pub struct Embedded {
    /// The Identity Server mock's target.
    pub target: Target,
    /// The Pro Santé Connect mock's target.
    pub psc: Target,
    pub jwks: Arc<JwksServer>,
    _identity_server: IdentityServerMock,
    _psc: PscMock,
}

impl Embedded {
    /// The target of a suite's system.
    pub fn target_for(&self, system: &str) -> &Target {
        if system == super::psc::NAME { &self.psc } else { &self.target }
    }

    /// Suites grouped by the mock they run against, in first-seen order.
    pub fn group(&self, suites: Vec<crate::scenario::Suite>) -> Vec<(Target, Vec<crate::scenario::Suite>)> {
        let mut groups: Vec<(Target, Vec<crate::scenario::Suite>)> = Vec::new();
        for suite in suites {
            let target = self.target_for(&suite.system);
            match groups.iter_mut().find(|(t, _)| t.issuer == target.issuer) {
                Some((_, list)) => list.push(suite),
                None => groups.push((target.clone(), vec![suite])),
            }
        }
        groups
    }

    pub async fn start(defects: DefectSet<Defect>) -> std::io::Result<Self> {
        Self::start_with(defects, DefectSet::default()).await
    }

    pub async fn start_with(
        defects: DefectSet<Defect>,
        psc_defects: DefectSet<super::psc::Defect>,
    ) -> std::io::Result<Self> {
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
        let psc = PscMock::start(super::psc::Config { defects: psc_defects, ..Default::default() }, None).await?;
        Ok(Self {
            target: identity_server.target(),
            psc: psc.target(),
            jwks,
            _identity_server: identity_server,
            _psc: psc,
        })
    }
}
