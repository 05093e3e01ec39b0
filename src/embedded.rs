//! The embedded default: the built-in mocks started in-process on 127.0.0.1, with the harness's
//! JWKS server, and the targets that describe them. `run`, `load` and `certify` use this without
//! `--target`; `validate` checks suites against the same clients without starting anything.

use std::sync::Arc;

use crate::mock::defects::UnknownDefect;
use crate::mock::identity_server::{self, Config, Defect};
use crate::mock::psc::{self, PscMock};
use crate::mock::{DefectSet, IdentityServerMock};
use crate::model::{Suite, Target};
use crate::protocol::jwks_server::JwksServer;
use crate::support::diagnostics::did_you_mean;

pub struct Embedded {
    /// The Identity Server mock's target.
    pub target: Target,
    /// The Pro Santé Connect mock's target.
    pub psc: Target,
    pub jwks: Arc<JwksServer>,
    _identity_server: IdentityServerMock,
    _psc: PscMock,
}

/// Defects named on the command line, each found in the mock that has it.
pub fn parse_defects(names: &[String]) -> Result<(DefectSet<Defect>, DefectSet<psc::Defect>), UnknownDefect> {
    let mut identity = Vec::new();
    let mut psc_defects = Vec::new();
    for name in names {
        match (Defect::from_name(name), psc::Defect::from_name(name)) {
            (Some(d), _) => identity.push(d),
            (None, Some(d)) => psc_defects.push(d),
            (None, None) => {
                let all = crate::mock::all_defect_names();
                return Err(UnknownDefect {
                    name: name.clone(),
                    mock: None,
                    suggestion: did_you_mean(name, all.iter().copied()),
                });
            }
        }
    }
    Ok((DefectSet::new(identity), DefectSet::new(psc_defects)))
}

/// The target of each system as `validate` sees it: the embedded mocks' clients, at placeholder
/// addresses (nothing is started, nothing is sent).
pub fn targets_for_validation() -> Vec<(&'static str, Target)> {
    let placeholder = url::Url::parse("http://127.0.0.1:1/").unwrap_or_else(|_| unreachable!("a static URL"));
    vec![
        (identity_server::NAME, identity_server::describe(&Config::default(), placeholder)),
        (psc::NAME, psc::describe("https://127.0.0.1:1/realms/esante-wallet")),
    ]
}

/// Lifetime of the embedded PSC mock's tokens, seconds.
pub const EMBEDDED_PSC_TOKEN_SECS: u64 = 3;

impl Embedded {
    /// The target of a suite's system.
    pub fn target_for(&self, system: &str) -> &Target {
        if system == psc::NAME { &self.psc } else { &self.target }
    }

    /// Suites grouped by the mock they run against, in first-seen order.
    pub fn group(&self, suites: Vec<Suite>) -> Vec<(Target, Vec<Suite>)> {
        let mut groups: Vec<(Target, Vec<Suite>)> = Vec::new();
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

    pub async fn start_with(defects: DefectSet<Defect>, psc_defects: DefectSet<psc::Defect>) -> std::io::Result<Self> {
        Self::start_slowed(defects, psc_defects, None).await
    }

    /// With the Identity Server mock's token answers held `token_delay` longer.
    pub async fn start_slowed(
        defects: DefectSet<Defect>,
        psc_defects: DefectSet<psc::Defect>,
        token_delay: Option<std::time::Duration>,
    ) -> std::io::Result<Self> {
        let jwks = Arc::new(JwksServer::start(None).await?);
        let mut config = Config { defects, token_delay, ..Config::default() };
        // Clients registered "by URL": the harness serves their JWKS and the mock fetches it.
        for client in config.clients.clients.iter_mut().filter(|c| c.register_by_url) {
            if let Some(key) = client.key.as_deref().and_then(identity_server::builtin_key) {
                let url = jwks.publish(&JwksServer::client_path(&client.name), key.jwks());
                client.jwks_uri = Some(url.to_string());
                client.jwks = None;
            }
        }
        let identity_server = IdentityServerMock::start(config, None).await?;
        // Tokens of seconds, not PSC's 120: the expired-subject-token exchange waits for one. The
        // approving professional answers within the first interval, so approving cases take one
        // poll (a poll before the answer is the `manual` user's case). The refusing one answers
        // seconds after the first poll, so a server that hands out tokens before an answer is
        // caught on the denied case too, however late a busy machine sends that poll (at 1.5 s,
        // half a second after it, a loaded CI machine's poll came after the refusal).
        let mut psc_config =
            psc::Config { defects: psc_defects, token_lifetime_secs: EMBEDDED_PSC_TOKEN_SECS, ..Default::default() };
        psc_config.users.insert(psc::USER_APPROVES.into(), psc::UserBehaviour::ApprovesAfterMs(500));
        psc_config.users.insert(psc::USER_DENIES.into(), psc::UserBehaviour::DeniesAfterMs(3500));
        let psc = PscMock::start(psc_config, None).await?;
        Ok(Self {
            target: identity_server.target(),
            psc: psc.target(),
            jwks,
            _identity_server: identity_server,
            _psc: psc,
        })
    }
}
