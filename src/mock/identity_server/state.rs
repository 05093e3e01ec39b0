//! Tokens the mock issued, so the resource can tell issued from forged and live from expired.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub revoked: bool,
}

/// Above this many entries, expired ones are dropped before inserting: memory stays bounded
/// under load while live tokens are never evicted.
const PURGE_ABOVE: usize = 100_000;

#[derive(Debug, Default)]
pub struct IssuedTokens(Mutex<HashMap<String, IssuedToken>>);

impl IssuedTokens {
    pub fn insert(&self, token: String, issued: IssuedToken, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PURGE_ABOVE {
            map.retain(|_, t| t.exp > now);
        }
        map.insert(token, issued);
    }

    pub fn get(&self, token: &str) -> Option<IssuedToken> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }

    /// Marks a token revoked; unknown tokens are ignored (RFC 7009 §2.2).
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(token) {
            t.revoked = true;
        }
    }
}
