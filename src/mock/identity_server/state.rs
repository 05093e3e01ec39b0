//! What the mock knows of the tokens it issued — without keeping them. An access token is a JWT
//! the mock signed: its signature proves the mock issued it, its claims say to whom, for what and
//! until when. All the mock stores is what a token cannot say of itself: that it was revoked
//! (until it expires anyway), and a small cache of recent verifications (introspection under
//! load asks about the same few tokens). Memory stays flat however many tokens a run issues.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mock::expiring::{self, ExpiringSet, Insert};
use crate::mock::signing::SigningKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    /// When the token stops being valid: issue + the lifetime the mock promised in `expires_in`
    /// (the JWT's own `exp` may lie, under the `wrong-expires-in` defect).
    pub exp: i64,
    pub jti: String,
    pub revoked: bool,
    /// RFC 9449: the thumbprint of the key a DPoP-bound token is bound to (`cnf.jkt`).
    pub jkt: Option<String>,
    /// The token's `aud` (RFC 8707: the resource it was asked for).
    pub aud: Vec<String>,
}

/// Verifications kept at most; the cache is emptied when it is full.
const CACHE_SIZE: usize = 4096;
pub struct IssuedTokens {
    /// The jtis of revoked tokens, each until the token expires: still to be refused until then.
    revoked: Mutex<ExpiringSet>,
    /// SHA-256 of a token → what verifying it found.
    verified: Mutex<HashMap<[u8; 32], IssuedToken>>,
    /// Under the `evict-live-tokens` defect only: the jtis of the last tokens issued, as a server
    /// with a bounded token store keeps them (the older ones are forgotten while still live).
    bounded_store: Mutex<BoundedStore>,
}

/// Tokens a defective bounded store still holds.
pub const BOUNDED_STORE: usize = 1000;

#[derive(Default)]
struct BoundedStore {
    order: VecDeque<String>,
    held: HashSet<String>,
}

impl Default for IssuedTokens {
    fn default() -> Self {
        Self::new(expiring::DEFAULT_LIMIT)
    }
}

impl IssuedTokens {
    /// A store that holds at most `limit` live revocations.
    pub fn new(limit: usize) -> Self {
        Self {
            revoked: Mutex::new(ExpiringSet::new(limit)),
            verified: Mutex::default(),
            bounded_store: Mutex::default(),
        }
    }
}

impl IssuedTokens {
    /// The token, if the mock issued it: signed by `key`, with the claims it writes. `lifetime`
    /// gives the lifetime the mock promised a client (its `expires_in`).
    pub fn get(&self, token: &str, key: &SigningKey, lifetime: impl Fn(&str) -> i64) -> Option<IssuedToken> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).cloned();
        let mut issued = match cached {
            Some(t) => t,
            None => {
                let claims = key.verify(token)?;
                let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
                let client_id = text("client_id")?;
                let iat = claims.get("iat").and_then(Value::as_i64)?;
                let t = IssuedToken {
                    // As the token's `exp`: at least `expires_in` after the answer (`iat` is rounded down).
                    exp: iat + lifetime(&client_id) + 1,
                    client_id,
                    scope: text("scope").unwrap_or_default(),
                    iat,
                    jti: text("jti")?,
                    revoked: false,
                    jkt: claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str).map(str::to_owned),
                    aud: match claims.get("aud") {
                        Some(Value::String(a)) => vec![a.clone()],
                        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                        _ => Vec::new(),
                    },
                };
                let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= CACHE_SIZE {
                    verified.clear();
                }
                verified.insert(digest, t.clone());
                t
            }
        };
        issued.revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner()).holds(&expiring::key(&[&issued.jti]));
        Some(issued)
    }

    /// Records an issued token in the bounded store of the `evict-live-tokens` defect.
    pub fn store_bounded(&self, jti: &str) {
        let mut store = self.bounded_store.lock().unwrap_or_else(|e| e.into_inner());
        if store.order.len() >= BOUNDED_STORE {
            if let Some(old) = store.order.pop_front() {
                store.held.remove(&old);
            }
        }
        store.order.push_back(jti.to_string());
        store.held.insert(jti.to_string());
    }

    /// The bounded store of the `evict-live-tokens` defect still holds this token.
    pub fn bounded_holds(&self, jti: &str) -> bool {
        self.bounded_store.lock().unwrap_or_else(|e| e.into_inner()).held.contains(jti)
    }

    /// Marks a token revoked until it expires (RFC 7009 §2.2: unknown tokens are ignored).
    /// False when the store is full of live revocations: nothing was revoked, and the caller
    /// must say so (RFC 7009 §2.2.1: 503, the client retries) rather than pretend.
    pub fn revoke(&self, token: &IssuedToken, now: i64) -> bool {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.insert(expiring::key(&[&token.jti]), token.exp, (), now) != Insert::Full
    }

    #[cfg(test)]
    fn revoked_len(&self) -> usize {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(key: &SigningKey, jti: &str, iat: i64) -> String {
        key.sign(&json!({ "client_id": "c", "scope": "s", "iat": iat, "exp": iat + 999, "jti": jti }), "at+jwt")
    }

    #[test]
    fn a_token_is_known_by_its_signature_and_lives_its_promised_lifetime() {
        let key = SigningKey::generate();
        let tokens = IssuedTokens::default();
        let t = tokens.get(&token(&key, "j1", 100), &key, |_| 60).unwrap();
        // Issued within second 100 with a 60 s lifetime: live until 161, at least its 60 s.
        assert_eq!((t.client_id.as_str(), t.iat, t.exp, t.revoked), ("c", 100, 161, false));
        // Another key's token, or a forged one, is unknown.
        assert!(tokens.get(&token(&SigningKey::generate(), "j2", 100), &key, |_| 60).is_none());
        assert!(tokens.get("not.a.token", &key, |_| 60).is_none());
        tokens.revoke(&t, 100);
        assert!(tokens.get(&token(&key, "j1", 100), &key, |_| 60).unwrap().revoked);
    }

    fn issued(jti: &str, exp: i64) -> IssuedToken {
        IssuedToken {
            client_id: "c".into(),
            scope: String::new(),
            iat: 0,
            exp,
            jti: jti.into(),
            revoked: false,
            jkt: None,
            aud: Vec::new(),
        }
    }

    #[test]
    fn expired_revocations_make_room_and_live_ones_are_never_forgotten() {
        let key = SigningKey::generate();
        let tokens = IssuedTokens::new(10);
        for i in 0..10 {
            assert!(tokens.revoke(&issued(&format!("j{i}"), 50), 10));
        }
        let live = tokens.get(&token(&key, "live", 100), &key, |_| 60).unwrap();
        assert!(!tokens.revoke(&live, 20), "full of live revocations: refused, none forgotten");
        assert!(!tokens.get(&token(&key, "live", 100), &key, |_| 60).unwrap().revoked);
        assert!(tokens.revoke(&live, 100), "once the others expired");
        assert_eq!(tokens.revoked_len(), 1, "only the live token's revocation is kept");
        assert!(tokens.get(&token(&key, "live", 100), &key, |_| 60).unwrap().revoked);
    }
}
