//! Token requests: the client assertion for private_key_jwt (signed, replayed, or signed by a key
//! no server knows), and the tokens a resource call presents.

use std::sync::Arc;

use super::{CaseState, DpopRetry, PreparedToken, Runner, StepFailure, UNREGISTERED_KEYS, no_token, precondition};
use crate::model::{
    AlgPick, AssertionSpec, AuthChoice, BearerChoice, Case, MintSpec, ResourceCertificate, ResourceDpop, ResourceSpec,
    ScopeSpec, Suite, TokenSpec,
};
use crate::model::{Client, ResourceIndicator};
use crate::protocol::auth::assertion;
use crate::protocol::auth::dpop as dpop_proof;
use crate::protocol::exchange::{AssertionFacts, Exchange};
use crate::protocol::flows;
use crate::results::StepResult;
use crate::support::keys::{KeyAlg, KeyPair, KidStyle};
use crate::support::secret::Secret;

impl Runner {
    /// Builds a token request; for private_key_jwt, signs (or replays) the client assertion.
    pub(super) fn prepare_token(
        &self,
        client: &Client,
        spec: &TokenSpec,
        state: &mut CaseState,
    ) -> Result<PreparedToken, StepFailure> {
        let auth = spec.auth.unwrap_or(AuthChoice::from(client.auth));
        let signed = self.client_assertion(client, auth, &spec.assertion, spec.client_id.as_deref(), state)?;
        let (assertion, jku_path) = signed.unzip();
        let scope = match &spec.scope {
            Some(asked) => Some(self.target.resolve_scope(asked, Some(client))),
            None => client.scope.clone(),
        };
        // RFC 8707: the resource asked for is a form parameter like any other.
        let with_resource;
        let mut mapped_audience = None;
        let spec = match spec.resource {
            None => spec,
            Some(which) => {
                let url = match which {
                    ResourceIndicator::Unknown => crate::model::UNKNOWN_RESOURCE.to_string(),
                    ResourceIndicator::Target => match &self.target.resource {
                        Some(r) => r.url.to_string(),
                        None => return Err(StepFailure::Skip("the target names no resource (`resource:`)".into())),
                    },
                    ResourceIndicator::Other => {
                        match self.target.resource.as_ref().and_then(|r| r.other_audience.as_ref()) {
                            Some(u) => u.to_string(),
                            None => {
                                return Err(StepFailure::Skip(
                                    "the target names no other resource (`resource.other_audience`)".into(),
                                ));
                            }
                        }
                    }
                };
                mapped_audience = self.target.resource.as_ref().and_then(|r| r.aud_for(&url)).map(str::to_owned);
                let mut s = spec.clone();
                s.params.push(("resource".into(), url));
                with_resource = s;
                &with_resource
            }
        };
        let (mut request, mut context) = flows::token::build(
            self.endpoints.token_for(client.identity.is_some()),
            client,
            spec,
            scope,
            assertion.as_ref(),
        );
        context.for_other_resource = spec.resource == Some(ResourceIndicator::Other);
        context.mapped_audience = mapped_audience;
        // RFC 9449: a fresh proof key per request is allowed, and keeps cases independent.
        let mut dpop = None;
        if let Some(kind) = spec.dpop {
            let url = self.endpoints.token_for(client.identity.is_some()).as_str();
            let (proof, jkt) = if kind == crate::model::DpopProof::Replayed {
                let (key, proof) = state.dpop.clone().ok_or_else(|| {
                    StepFailure::Precondition(precondition("no earlier step of this case sent a DPoP proof".into()))
                })?;
                (proof, crate::support::keys::thumbprint_of(&key))
            } else {
                let key = fresh_dpop_key()?;
                let (proof, jkt) =
                    dpop_proof::proof(&key, request.method.as_str(), url, kind, dpop_proof::Bind::default());
                let proof = Secret::new(proof);
                if kind == crate::model::DpopProof::Good {
                    state.dpop = Some((key.clone(), proof.clone()));
                }
                // A nonce would make a stale proof fresh (§4.3 (11)): that one is judged as answered.
                if kind != crate::model::DpopProof::StaleIat {
                    dpop = Some(DpopRetry {
                        key,
                        kind,
                        method: request.method.to_string(),
                        url: url.to_string(),
                        token: None,
                        assertion: None,
                    });
                }
                (proof, jkt)
            };
            // Recorded as a fingerprint, like every credential: a proof is replayable until it expires.
            request.headers.push(("DPoP".into(), crate::protocol::http::Value::Secret(proof)));
            let replayed = kind == crate::model::DpopProof::Replayed;
            let broken = (kind != crate::model::DpopProof::Good && !replayed).then_some(kind.label());
            context.dpop = Some(crate::protocol::exchange::DpopFacts { jkt, broken, replayed, ..Default::default() });
        }
        // A client assertion is single-use: should the server ask for a DPoP nonce, the request
        // goes again with another one, made the same way (a `jku` assertion's fetch count belongs
        // to its own request, so that one is not remade). The one sent stays the case's previous.
        if let (Some(retry), Some(_)) = (dpop.as_mut(), &assertion) {
            if !spec.assertion.serve_jku {
                let sent = state.last_assertion.clone();
                let remade = self.client_assertion(client, auth, &spec.assertion, spec.client_id.as_deref(), state)?;
                retry.assertion = remade.map(|(jws, _)| jws);
                state.last_assertion = sent;
            }
        }
        context.certificate = Some(super::ciba_steps::certificate_facts(client, true));
        if let Some(jws) = &assertion {
            context.assertion = Some(AssertionFacts {
                header: jwt_part(jws.expose(), 0).unwrap_or_default(),
                claims: jwt_part(jws.expose(), 1).unwrap_or_default(),
                registered_kid: client.key.as_ref().map(|k| k.kid.clone()),
                token_endpoint: self.endpoints.token_for(client.identity.is_some()).to_string(),
                registered_alg: client.key.as_ref().map(|k| k.alg.name().to_string()),
                advertised_algs: self.signing_algs.clone(),
            });
            context.deviations.replayed_assertion = spec.assertion.replay;
            context.deviations.unregistered_key = spec.assertion.unregistered_key;
            context.deviations.bad_signature = spec.assertion.mutation.bad_signature;
            if let Some(r) = state.rotation.as_ref().filter(|r| r.client_id == client.client_id) {
                use crate::protocol::exchange::{KeyRotationFacts, RotatedKey};
                let signed_with = match (spec.assertion.unregistered_key, spec.assertion.retired_key) {
                    (true, _) => RotatedKey::Unknown,
                    (false, true) => RotatedKey::Retired,
                    (false, false) if r.signs_with_new => RotatedKey::New,
                    (false, false) => RotatedKey::Current,
                };
                context.key_rotation = Some(KeyRotationFacts {
                    signed_with,
                    unknown_kid_requests: r.unknown_kid_requests,
                    unknown_kid_fetches: r.unknown_kid_fetches,
                });
            }
        }
        Ok(PreparedToken { request, context, jku_path: jku_path.flatten(), via: None, dpop })
    }

    /// Asks for a token for the named client through the client's own connection (its
    /// certificate, for tls_client_auth).
    async fn fetch_token(
        &self,
        name: &str,
        client: &Client,
        spec: &TokenSpec,
        state: &mut CaseState,
    ) -> Result<Exchange, StepFailure> {
        let prepared = self.prepare_token(client, spec, state)?;
        self.exchange_with(self.http_for(name), prepared.request, prepared.context)
            .await
            .map_err(StepFailure::Transport)
    }

    /// Gets a token for the named client as part of a step's setup: the exchange is shown with
    /// the step and judged by none of its checks.
    pub(super) async fn setup_token(
        &self,
        name: &str,
        client: &Client,
        spec: &TokenSpec,
        state: &mut CaseState,
        result: &mut StepResult,
    ) -> Result<Exchange, StepFailure> {
        let exchange = self.fetch_token(name, client, spec, state).await?;
        result.setup.push(self.view(&exchange));
        Ok(exchange)
    }

    /// The client assertion for a private_key_jwt request (none for other methods), and the
    /// harness-served `jku` path it points at, if any. The assertion becomes the case's "previous".
    pub(super) fn client_assertion(
        &self,
        client: &Client,
        auth: AuthChoice,
        spec: &AssertionSpec,
        client_id: Option<&str>,
        state: &mut CaseState,
    ) -> Result<Option<(Secret, Option<String>)>, StepFailure> {
        if auth != AuthChoice::PrivateKeyJwt {
            return Ok(None);
        }
        if spec.replay {
            let previous = state.last_assertion.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition(
                    "no earlier step of this case sent an assertion to replay".into(),
                ))
            })?;
            return Ok(Some((previous, None)));
        }
        let key = client.key.clone().ok_or_else(|| {
            StepFailure::Precondition(precondition("the client has no private key for private_key_jwt".into()))
        })?;
        // After a `rotate_key` step the case's key is the new one; `sign_with: retired` the old.
        let rotated = state.rotation.as_ref().filter(|r| r.client_id == client.client_id);
        let signer = match (spec.unregistered_key, spec.retired_key, rotated) {
            (true, _, _) => self.unregistered_key(key.alg),
            (false, true, Some(r)) => r.old.clone(),
            (false, true, None) => {
                return Err(StepFailure::Precondition(precondition(
                    "no earlier rotate_key step of this case retired a key to sign with".into(),
                )));
            }
            (false, false, Some(r)) if r.signs_with_new => r.new.clone(),
            (false, false, Some(r)) => r.old.clone(),
            (false, false, None) => key,
        };
        let mut mutation = spec.mutation.clone();
        if let Some(pick) = spec.pick_alg {
            mutation.alg = Some(self.pick_alg(pick, &signer)?);
        }
        let mut jku_path = None;
        if spec.serve_jku {
            // A fresh path per step, so concurrent cases cannot blur the fetch count.
            let path = format!("/untrusted/{}/jwks.json", assertion::new_jti());
            let url = self.jwks.publish(&path, signer.jwks());
            mutation.header.insert("jku".into(), serde_json::Value::String(url.to_string()));
            jku_path = Some(path);
        }
        let claims = assertion::Claims {
            client_id: client_id.unwrap_or(&client.client_id),
            audience: self.endpoints.token_for(client.identity.is_some()).as_str(),
            now: crate::support::clock::unix_now(),
            jti: assertion::new_jti(),
        };
        let jws = Secret::new(assertion::build(&signer, &claims, &mutation));
        self.redactor.register_secret(&jws);
        state.last_assertion = Some(jws.clone());
        Ok(Some((jws, jku_path)))
    }

    /// An algorithm for an assertion, chosen from what the server advertises, so the case tests
    /// its rule whatever the server's list; when none fits, the case cannot run here.
    fn pick_alg(&self, pick: AlgPick, key: &KeyPair) -> Result<String, StepFailure> {
        // What this key can sign with, in the order tried.
        const CANDIDATES: &[&str] = &["RS256", "RS512", "PS384", "RS384", "ES384"];
        let advertised = self.signing_algs.as_deref();
        let is_advertised = |alg: &str| advertised.is_some_and(|list| list.iter().any(|a| a == alg));
        let mut signable = CANDIDATES.iter().copied().filter(|alg| key.sign_as(alg, b"probe").is_some());
        let found = match pick {
            AlgPick::Unadvertised => signable.find(|a| !is_advertised(a)),
            AlgPick::OtherAdvertised => signable.find(|a| is_advertised(a) && *a != key.alg.name()),
        };
        found.map(|a| a.to_string()).ok_or_else(|| {
            StepFailure::Skip(match pick {
                AlgPick::Unadvertised => format!(
                    "the server advertises every algorithm this {} key can sign with ({})",
                    key.alg.name(),
                    advertised.map(|l| l.join(", ")).unwrap_or_default()
                ),
                AlgPick::OtherAdvertised => format!(
                    "the server advertises no algorithm this key can sign with besides its registered {} ({})",
                    key.alg.name(),
                    advertised.map(|l| l.join(", ")).unwrap_or_else(|| "no list published".into())
                ),
            })
        })
    }

    pub(super) fn unregistered_key(&self, alg: KeyAlg) -> Arc<KeyPair> {
        let mut keys = UNREGISTERED_KEYS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        keys.entry(alg)
            .or_insert_with(|| {
                Arc::new(
                    KeyPair::generate(alg, 2048, KidStyle::Rfc7638)
                        .unwrap_or_else(|e| unreachable!("generating a fresh key does not fail: {e}")),
                )
            })
            .clone()
    }

    pub(super) async fn prepare_resource_call(
        &self,
        suite: &Suite,
        case: &Case,
        spec: &ResourceSpec,
        state: &mut CaseState,
        result: &mut StepResult,
    ) -> Result<PreparedToken, StepFailure> {
        let resource =
            self.target.resource.as_ref().ok_or_else(|| {
                StepFailure::Precondition(precondition("the target has no `resource` to call".into()))
            })?;
        let mut url = resource.url.clone();
        if let Some(path) = &spec.path {
            url.set_path(path);
        }
        let default = if state.last_token.is_some() { BearerChoice::Last } else { BearerChoice::Fresh };
        let bearer = match spec.bearer.unwrap_or(default) {
            BearerChoice::None => None,
            BearerChoice::Garbage => Some(Secret::new(flows::resource::GARBAGE_TOKEN)),
            BearerChoice::IdToken => Some(state.id_token.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition("no earlier poll of this case got an id_token".into()))
            })?),
            BearerChoice::Last => Some(state.last_token.clone().ok_or_else(|| {
                StepFailure::Precondition(precondition("no earlier step of this case obtained a token".into()))
            })?),
            choice @ (BearerChoice::Fresh | BearerChoice::InsufficientScope) => {
                let scope = match choice {
                    BearerChoice::InsufficientScope => {
                        Some(resource.insufficient_scope.clone().map(ScopeSpec::Literal).ok_or_else(|| {
                            StepFailure::Precondition(precondition(
                                "the target's resource has no `insufficient_scope`".into(),
                            ))
                        })?)
                    }
                    _ => None,
                };
                let (name, client) = self.client_for(suite, case, None);
                let spec = TokenSpec { scope, ..TokenSpec::default() };
                let exchange = self.setup_token(name, client, &spec, state, result).await?;
                Some(self.remember(state, name, client, &exchange).ok_or_else(|| no_token(&self.redactor, &exchange))?)
            }
            BearerChoice::Cached => {
                let (name, client) = self.client_for(suite, case, None);
                let token = self
                    .token_cache
                    .get_or_fetch(name, || async {
                        let mut scratch = CaseState::default();
                        let exchange =
                            self.setup_token(name, client, &TokenSpec::default(), &mut scratch, result).await?;
                        let token =
                            self.remember_tokens(&exchange).ok_or_else(|| no_token(&self.redactor, &exchange))?;
                        let expires_in =
                            exchange.response.json_object().and_then(|o| o.get("expires_in")).and_then(|v| v.as_i64());
                        Ok::<_, StepFailure>((token, expires_in))
                    })
                    .await?;
                state.last_token = Some(token.clone());
                Some(token)
            }
        };
        // RFC 9449 §7: a DPoP-bound token goes with the DPoP scheme and a proof by its key.
        let mut dpop = None;
        let (request, mut context) = match (spec.dpop, bearer.as_ref()) {
            (Some(how), Some(token)) if how != ResourceDpop::AsBearer => {
                let (key, _) = state.dpop.clone().ok_or_else(|| {
                    StepFailure::Precondition(precondition(
                        "no earlier step of this case got a DPoP-bound token".into(),
                    ))
                })?;
                let signer = if how == ResourceDpop::OtherKey { fresh_dpop_key()? } else { key.clone() };
                let (mut request, context) = flows::resource::build_dpop(&url, token);
                let bind = dpop_proof::Bind {
                    access_token: (how != ResourceDpop::NoAth).then_some(token.expose()),
                    nonce: None,
                };
                let htu = htu_of(&url);
                let (proof, _) = dpop_proof::proof(&signer, "GET", &htu, crate::model::DpopProof::Good, bind);
                request.headers.push(("DPoP".into(), crate::protocol::http::Value::Secret(Secret::new(proof))));
                if how == ResourceDpop::Good {
                    dpop = Some(DpopRetry {
                        key: signer,
                        kind: crate::model::DpopProof::Good,
                        method: "GET".into(),
                        url: htu,
                        token: Some(token.clone()),
                        assertion: None,
                    });
                }
                (request, context)
            }
            _ => flows::resource::build(&url, bearer.as_ref()),
        };
        if let Some(how) = spec.dpop {
            let jkt = state.dpop.as_ref().map(|(k, _)| crate::support::keys::thumbprint_of(k)).unwrap_or_default();
            context.dpop =
                Some(crate::protocol::exchange::DpopFacts { jkt, presented: Some(how), ..Default::default() });
        }
        context.deviations.id_token_as_access_token = spec.bearer == Some(BearerChoice::IdToken);
        // What is known of the token presented, for checks about its life (expired, revoked).
        if matches!(
            spec.bearer.unwrap_or(default),
            BearerChoice::Last | BearerChoice::Fresh | BearerChoice::Cached | BearerChoice::InsufficientScope
        ) {
            context.subject = state.last_facts.clone();
        }
        // The call goes with the token's client's certificate (RFC 8705 §3), unless the step says.
        let owner = state.last_client.clone();
        let via = match spec.certificate {
            None => owner,
            Some(ResourceCertificate::None) => None,
            Some(ResourceCertificate::Other) => {
                let own = owner.as_ref().and_then(|n| self.target.clients.get(n)).and_then(|c| c.identity.as_ref());
                Some(self.target.client_with_other_certificate(own).map(str::to_owned).ok_or_else(|| {
                    StepFailure::Precondition(precondition("the target has no other client with a certificate".into()))
                })?)
            }
        };
        context.certificate = Some(match via.as_ref().and_then(|n| self.target.clients.get(n)) {
            Some(c) => super::ciba_steps::certificate_facts(c, true),
            None => crate::protocol::exchange::CertificateFacts::default(),
        });
        Ok(PreparedToken { request, context, jku_path: None, via, dpop })
    }
}

/// `htu` for a URL: without its query and fragment (RFC 9449 §4.2).
fn htu_of(url: &url::Url) -> String {
    let mut htu = url.clone();
    htu.set_query(None);
    htu.set_fragment(None);
    htu.to_string()
}

/// The JSON object of part `index` (0 header, 1 claims) of a compact JWS.
pub(super) fn jwt_part(jws: &str, index: usize) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let part = jws.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Token requests a `mint` step keeps in flight at once.
const MINT_IN_FLIGHT: usize = 8;

impl Runner {
    /// Issues `spec.count` tokens for `client`, judging none: a server that stops issuing (an
    /// error, a refusal) fails the step's precondition with its first such answer.
    pub(super) async fn run_mint(
        &self,
        name: &str,
        client: &Client,
        spec: &MintSpec,
        mut result: StepResult,
    ) -> StepResult {
        use futures_util::StreamExt;
        let started = std::time::Instant::now();
        let issued = std::sync::atomic::AtomicU32::new(0);
        let failure = futures_util::stream::iter(0..spec.count)
            .map(|_| async {
                let mut scratch = CaseState::default();
                let exchange = self.fetch_token(name, client, &TokenSpec::default(), &mut scratch).await?;
                let ok = exchange.response.is_success() && exchange.response.json_str("access_token").is_some();
                if ok {
                    issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(None)
                } else {
                    Ok(Some(exchange))
                }
            })
            .buffer_unordered(MINT_IN_FLIGHT)
            .filter_map(|r: Result<Option<Exchange>, StepFailure>| async move {
                match r {
                    Ok(None) => None,
                    Ok(Some(exchange)) => Some(Ok(exchange)),
                    Err(e) => Some(Err(e)),
                }
            })
            .boxed()
            .next()
            .await;
        let issued = issued.into_inner();
        match failure {
            None => {
                result.note = Some(format!("issued {issued} more tokens in {:.1} s", started.elapsed().as_secs_f64()));
            }
            Some(Ok(exchange)) => {
                // Whatever it holds, it is a server's answer about tokens: known before it is shown.
                self.remember_tokens(&exchange);
                let seen = exchange.response.summary();
                result.setup.push(self.view(&exchange));
                result.checks.push(*precondition(format!(
                    "the server stopped issuing tokens after {issued} of {}: {seen}",
                    spec.count
                )));
            }
            Some(Err(StepFailure::Transport(e))) => result.error = Some(self.redactor.scrub(&e.to_string())),
            Some(Err(StepFailure::Precondition(o))) => result.checks.push(*o),
            Some(Err(StepFailure::Skip(reason))) => result.note = Some(reason),
        }
        result
    }
}

/// A new proof key (ES384): RFC 9449 allows a fresh key per request, and it keeps cases independent.
fn fresh_dpop_key() -> Result<Arc<KeyPair>, StepFailure> {
    KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638)
        .map(Arc::new)
        .map_err(|e| StepFailure::Precondition(precondition(format!("no DPoP key: {e}"))))
}
