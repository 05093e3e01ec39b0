//! The `rotate_key` step: the JWKS the harness serves for the case's client changes — a new key
//! beside the old, then the new alone — with a short `Cache-Control: max-age`, and the step waits
//! that out so the server's cached copy is stale. Later assertions of the case are signed with
//! the new key (`sign_with: retired` uses the old one).

use std::sync::Arc;
use std::time::Duration;

use super::{CaseState, Runner, precondition};
use crate::model::target::Client;
use crate::model::{KeySet, RotateKeySpec};
use crate::protocol::jwks_server::JwksServer;
use crate::results::StepResult;
use crate::support::keys::{KeyPair, KidStyle};

/// A case's rotated client key.
pub struct Rotation {
    pub client_id: String,
    /// The JWKS path the harness serves the client's keys at.
    pub path: String,
    pub old: Arc<KeyPair>,
    pub new: Arc<KeyPair>,
    /// Whether the case's assertions are signed with `new` (once the set holds it).
    pub signs_with_new: bool,
    /// Requests signed with a key the JWKS never held, and the fetches they caused.
    pub unknown_kid_requests: usize,
    pub unknown_kid_fetches: usize,
}

impl Runner {
    pub(super) async fn run_rotate_key(
        &self,
        name: &str,
        client: &Client,
        spec: &RotateKeySpec,
        state: &mut CaseState,
        mut result: StepResult,
    ) -> StepResult {
        // A client registered by value cannot rotate through us: the case cannot run here.
        let Some(key) = client.key.clone().filter(|_| client.serve_jwks) else {
            state.skip = Some(format!(
                "client `{name}` has no JWKS the harness serves (`private_key` and `jwks_url: serve` in the target, registered at the server by that URL)"
            ));
            return result;
        };
        if state.rotation.is_none() {
            let new = match KeyPair::generate(key.alg, 2048, KidStyle::Rfc7638) {
                Ok(k) => Arc::new(k),
                Err(e) => {
                    result.checks.push(*precondition(format!("no new key: {e}")));
                    return result;
                }
            };
            state.rotation = Some(Rotation {
                client_id: client.client_id.clone(),
                path: JwksServer::client_path(name),
                old: key.clone(),
                new,
                signs_with_new: false,
                unknown_kid_requests: 0,
                unknown_kid_fetches: 0,
            });
        }
        let Some(rotation) = state.rotation.as_mut() else { unreachable!("set above") };
        rotation.signs_with_new = spec.publish != KeySet::Current;
        let keys = |pairs: &[&KeyPair]| {
            let all: Vec<serde_json::Value> =
                pairs.iter().flat_map(|k| k.jwks()["keys"].as_array().cloned().unwrap_or_default()).collect();
            serde_json::json!({ "keys": all })
        };
        let (jwks, what) = match spec.publish {
            KeySet::Current => (keys(&[&rotation.old]), "the current key"),
            KeySet::Both => (keys(&[&rotation.old, &rotation.new]), "the current key and a new one"),
            KeySet::NewOnly => (keys(&[&rotation.new]), "the new key alone (the old one retired)"),
        };
        self.jwks.publish_with_max_age(&rotation.path, jwks, spec.max_age.as_secs());
        // A second more than max-age: whatever the server cached before is stale by then.
        let wait = spec.max_age + Duration::from_secs(1);
        self.announce_wait("waiting out the JWKS max-age", wait);
        tokio::time::sleep(wait).await;
        result.note = Some(format!(
            "the JWKS of `{name}` now holds {what}, max-age {} s; waited {} s",
            spec.max_age.as_secs(),
            wait.as_secs()
        ));
        result
    }
}
