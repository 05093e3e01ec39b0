//! How the mock authenticates a private_key_jwt client (RFC 7523 §3, SMART Backend Services
//! @324–340). Signatures are verified with jsonwebtoken — a different implementation from the
//! harness's signer — and every rule can be broken by one named defect.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::Defect;
use crate::mock::defects::DefectSet;
use crate::mock::expiring::{self, ExpiringSet, Insert};
use crate::model::AuthMethod;
use crate::model::mock_clients::ClientConfig;
use crate::protocol::auth::assertion::ASSERTION_TYPE;
use crate::support::clock::unix_now;
use crate::support::http_body::{Capped, read_capped};

/// Algorithms the mock advertises in `token_endpoint_auth_signing_alg_values_supported`.
/// RS512 is advertised too: an RS384-registered key signing with it must still be refused.
pub const SIGNING_ALGS: &[&str] = &["RS384", "ES384", "RS512"];
/// Allowed clock difference for `exp` and `nbf`.
const SKEW_SECS: i64 = 30;
/// SMART @331: at most five minutes ahead, plus skew.
const MAX_LIFETIME_SECS: i64 = 300;

/// Why an assertion was refused: the error_description the mock sends.
pub type Refusal = &'static str;

/// `jti`s seen, per issuer, until their `exp` (SMART @336), in a bounded set.
pub struct ReplayCache(Mutex<ExpiringSet>);

/// Why a jti was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFirst {
    /// It was used before and has not expired.
    Replay,
    /// The cache holds as many live jtis as it may: a mock that forgot one would accept its
    /// replay, so it takes no new one until some expire.
    Full,
}

/// The `jti` and `exp` a verified assertion leaves for the replay cache to take (none when a
/// defect lets a missing jti through).
type ToTake = Option<(String, i64)>;

/// Why a proof (a client assertion, a DPoP proof) was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// It breaks a rule: the client is refused, told why.
    Refused(Refusal),
    /// The replay cache is full, so the mock cannot tell a replay now: it answers 503 (no
    /// refusal of the client, who may retry).
    Unavailable,
}

impl From<Refusal> for Rejection {
    fn from(why: Refusal) -> Self {
        Self::Refused(why)
    }
}

impl ReplayCache {
    /// Records `jti` for `iss` until `exp` (at least an assertion's longest lifetime).
    pub(super) fn first_use(&self, iss: &str, jti: &str, exp: i64, now: i64) -> Result<(), NotFirst> {
        let until = exp.max(now.saturating_add(MAX_LIFETIME_SECS));
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match set.insert(expiring::key(&[iss, jti]), until, (), now) {
            Insert::Added => Ok(()),
            Insert::Present => Err(NotFirst::Replay),
            Insert::Full => Err(NotFirst::Full),
        }
    }

    /// A cache that holds at most `limit` live jtis.
    pub fn new(limit: usize) -> Self {
        Self(Mutex::new(ExpiringSet::new(limit)))
    }
}

/// JWKS fetched by URL, each kept as long as its `Cache-Control: max-age` says (a minute when it
/// says nothing, at most five), and fetched again early for a `kid` it does not hold — at most
/// once per cooldown, so unknown kids cannot make the mock hammer the client's server.
#[derive(Default)]
pub struct JwksCache(Mutex<HashMap<String, CachedJwks>>);

struct CachedJwks {
    fetched: Instant,
    max_age: Duration,
    jwks: Value,
}

/// Without a `max-age`, how long a fetched JWKS is kept; and the longest it is kept whatever it says.
const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(60);
const LONGEST_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// A client's key set larger than this is no key set (a few keys are a few KiB).
const MAX_JWKS_BODY: usize = 64 * 1024;
/// After a fetch, an unknown kid does not cause another for this long.
const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(5);

impl JwksCache {
    /// The JWKS at `url`, for an assertion naming `kid` (if it names one).
    fn get(&self, url: &str, kid: Option<&str>, defects: &DefectSet<Defect>) -> Option<Value> {
        let forever = defects.on(Defect::JwksCachedForever);
        let cached = {
            let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(url).map(|c| (c.fetched.elapsed(), c.max_age, c.jwks.clone()))
        };
        if let Some((age, max_age, jwks)) = cached {
            let max_age = if forever { DEFAULT_JWKS_MAX_AGE } else { max_age };
            let holds =
                kid.is_none_or(|k| jwk_list(&jwks).iter().any(|j| j.get("kid").and_then(Value::as_str) == Some(k)));
            let refetch_for_kid =
                !holds && !forever && (age >= UNKNOWN_KID_COOLDOWN || defects.on(Defect::JwksRefetchStorm));
            if age < max_age && !refetch_for_kid {
                return Some(jwks);
            }
        }
        let (mut fetched, max_age) = fetch_jwks(url)?;
        if defects.on(Defect::JwksRetiredKeyKept) {
            // Keys once seen are never forgotten.
            if let Some(old) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(url) {
                let mut keys = jwk_list(&fetched);
                let forgotten: Vec<Value> = jwk_list(&old.jwks).into_iter().filter(|k| !keys.contains(k)).collect();
                keys.extend(forgotten);
                fetched = serde_json::json!({ "keys": keys });
            }
        }
        let entry = CachedJwks { fetched: Instant::now(), max_age, jwks: fetched.clone() };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(url.to_string(), entry);
        Some(fetched)
    }
}

/// `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A blocking GET from inside a request handler (which is synchronous): on its own thread with
/// its own runtime, so it works whatever runtime the mock runs on. Bounded by a 3 s timeout.
/// The JWKS and how long it may be kept.
fn fetch_jwks(url: &str) -> Option<(Value, Duration)> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(async {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().ok()?;
            let mut response = client.get(&url).send().await.ok()?;
            let kept = response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .and_then(max_age)
                .unwrap_or(DEFAULT_JWKS_MAX_AGE)
                .min(LONGEST_JWKS_MAX_AGE);
            let Capped { body, truncated: false } = read_capped(&mut response, MAX_JWKS_BODY).await.ok()? else {
                return None;
            };
            Some((serde_json::from_slice(&body).ok()?, kept))
        })
    })
    .join()
    .ok()
    .flatten()
}

pub struct Verifier<'a> {
    pub token_endpoint: &'a str,
    pub defects: &'a DefectSet<Defect>,
    pub replay: &'a ReplayCache,
    pub jwks: &'a JwksCache,
}

fn decode_part(part: &str) -> Option<Map<String, Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

impl Verifier<'_> {
    fn on(&self, d: Defect) -> bool {
        self.defects.on(d)
    }

    /// Authenticates the client of a private_key_jwt request.
    pub fn authenticate<'c>(
        &self,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
        clients: &'c [ClientConfig],
    ) -> Result<&'c ClientConfig, Rejection> {
        let now = unix_now();
        let (client, jti) = self.verified(assertion_type, assertion, clients, now)?;
        match jti {
            None => Ok(client),
            Some((jti, exp)) => match self.replay.first_use(&client.client_id, &jti, exp, now) {
                Ok(()) => Ok(client),
                Err(NotFirst::Replay) if self.on(Defect::AcceptReplayedJti) => Ok(client),
                Err(NotFirst::Replay) => Err(Rejection::Refused("this jti was already used")),
                Err(NotFirst::Full) => Err(Rejection::Unavailable),
            },
        }
    }

    /// The client an assertion authenticates, with its `jti` and `exp` for the replay cache
    /// (none when a defect lets a missing jti through), if every rule but one use holds.
    fn verified<'c>(
        &self,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
        clients: &'c [ClientConfig],
        now: i64,
    ) -> Result<(&'c ClientConfig, ToTake), Refusal> {
        if assertion_type != Some(ASSERTION_TYPE) && !self.on(Defect::AcceptWrongAssertionType) {
            return Err("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        }
        let jwt = assertion.ok_or("client_assertion is missing")?;
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("client_assertion is not a compact JWS");
        };
        let header = decode_part(h).ok_or("malformed JOSE header")?;
        let claims = decode_part(p).ok_or("malformed claims")?;
        let str_claim = |k: &str| claims.get(k).and_then(Value::as_str);

        // Who claims to be calling: iss names the client (RFC 7523 §3 (1)), sub must agree (2).
        let iss = str_claim("iss").ok_or("iss is missing")?;
        let client = clients
            .iter()
            .find(|c| c.client_id == iss && c.allows(AuthMethod::PrivateKeyJwt))
            .ok_or("unknown client")?;
        if str_claim("sub") != Some(iss) && !self.on(Defect::AcceptSubMismatch) {
            return Err("sub must equal iss and the client_id");
        }

        self.verify_signature(&header, h, p, s, client)?;
        let jti = self.check_claims(&claims, now)?;
        Ok((client, jti))
    }

    fn verify_signature(
        &self,
        header: &Map<String, Value>,
        h: &str,
        p: &str,
        s: &str,
        client: &ClientConfig,
    ) -> Result<(), Refusal> {
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let registered = self.registered_keys(client, kid);
        let jws = format!("{h}.{p}.{s}");
        match alg {
            "none" if self.on(Defect::AcceptAlgNone) => return Ok(()),
            "none" => return Err("alg none is not accepted"),
            "HS256" if self.on(Defect::AcceptHs256Confusion) => {
                // The classic confusion: the public key's PEM text used as the HMAC secret.
                let ok = registered
                    .iter()
                    .filter_map(crate::support::keys::public_pem_from_jwk)
                    .any(|pem| verify(&jws, &DecodingKey::from_secret(pem.as_bytes()), Algorithm::HS256));
                return if ok { Ok(()) } else { Err("signature invalid") };
            }
            a if !SIGNING_ALGS.contains(&a) && !self.on(Defect::AcceptUnadvertisedAlg) => {
                return Err("alg is not one of the advertised signing algorithms");
            }
            _ => {}
        }
        let algorithm: Algorithm = alg.parse().map_err(|_| "unknown alg")?;
        if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err("symmetric algorithms are not accepted for private_key_jwt");
        }

        // RFC 8725 §3.10, SMART @324: never fetch a jku that is not registered for the client.
        let mut keys = registered;
        if let Some(jku) = header.get("jku").and_then(Value::as_str) {
            let allowed = client.jwks_uri.as_deref() == Some(jku);
            if !allowed && !self.on(Defect::FollowAnyJku) {
                return Err("jku is not a registered JWKS URL for this client");
            }
            if !allowed {
                keys = self.jwks.get(jku, kid, self.defects).map(|v| jwk_list(&v)).unwrap_or_default();
            }
        }

        let kid = header.get("kid").and_then(Value::as_str);
        let candidates: Vec<&Value> = match kid {
            Some(kid) => keys.iter().filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).collect(),
            None => keys.iter().collect(),
        };
        if candidates.is_empty() {
            return if self.on(Defect::AcceptUnregisteredKey) {
                Ok(())
            } else {
                Err("no registered key matches the kid")
            };
        }
        // RFC 8725 §3.1: a key registered with an `alg` is used with that algorithm only. (A
        // server that ignores its algorithm list ignores the key's too: the unadvertised-alg
        // defect lets the unadvertised algorithm through both.)
        let any_alg = self.on(Defect::AcceptKeyWithOtherAlg)
            || (self.on(Defect::AcceptUnadvertisedAlg) && !SIGNING_ALGS.contains(&alg));
        let candidates: Vec<&Value> = candidates
            .into_iter()
            .filter(|jwk| any_alg || jwk.get("alg").and_then(Value::as_str).is_none_or(|a| a == alg))
            .collect();
        if candidates.is_empty() {
            return Err("the key is registered for another algorithm");
        }
        let verified = candidates.iter().any(|jwk| {
            serde_json::from_value::<Jwk>((*jwk).clone())
                .ok()
                .and_then(|j| DecodingKey::from_jwk(&j).ok())
                .is_some_and(|key| verify(&jws, &key, algorithm))
        });
        if verified || (self.on(Defect::AcceptBadSignature) && !s.is_empty()) {
            Ok(())
        } else {
            Err("signature invalid")
        }
    }

    /// The claims' rules; the `jti` and `exp` to take in the replay cache.
    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<ToTake, Refusal> {
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == self.token_endpoint,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(self.token_endpoint)),
            _ => false,
        };
        if !aud_ok && !self.on(Defect::AcceptWrongAud) {
            return Err("aud must be the token endpoint URL");
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or("exp is missing")?;
        // The client's numbers: compared without arithmetic on them (i64::MAX must not overflow).
        if exp < now - SKEW_SECS && !self.on(Defect::AcceptExpiredAssertion) {
            return Err("the assertion has expired");
        }
        if exp > now + MAX_LIFETIME_SECS + SKEW_SECS && !self.on(Defect::AcceptLongExp) {
            return Err("exp is more than five minutes ahead");
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + SKEW_SECS) {
            return Err("the assertion is not valid yet (nbf)");
        }
        match claims.get("jti").and_then(Value::as_str) {
            None if self.on(Defect::AcceptMissingJti) => Ok(None),
            None => Err("jti is missing"),
            Some(jti) => Ok(Some((jti.to_owned(), exp))),
        }
    }

    /// The client's registered public keys: by value, or fetched from its JWKS URL.
    fn registered_keys(&self, client: &ClientConfig, kid: Option<&str>) -> Vec<Value> {
        match (&client.jwks, &client.jwks_uri) {
            (Some(jwks), _) => jwk_list(jwks),
            (None, Some(url)) => self.jwks.get(url, kid, self.defects).map(|v| jwk_list(&v)).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

fn jwk_list(jwks: &Value) -> Vec<Value> {
    jwks.get("keys").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Verifies the compact JWS `h.p.s` with jsonwebtoken.
fn verify(jws: &str, key: &DecodingKey, alg: Algorithm) -> bool {
    let mut validation = Validation::new(alg);
    // Claims are checked by `check_claims`, rule by rule; here only the signature counts.
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.validate_nbf = false;
    jsonwebtoken::decode::<Value>(jws, key, &validation).is_ok()
}
