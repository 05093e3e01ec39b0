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

/// Expired entries are dropped once the map outgrows this, and then each time it doubles: memory
/// follows the live tokens under load, live tokens are never evicted, and the purge's cost is
/// amortised (purging on every insert past a fixed size made the mock quadratic under load).
const PURGE_ABOVE: usize = 100_000;

#[derive(Debug)]
pub struct IssuedTokens(Mutex<Tokens>);

#[derive(Debug)]
struct Tokens {
    map: HashMap<String, IssuedToken>,
    purge_at: usize,
}

impl Default for IssuedTokens {
    fn default() -> Self {
        Self(Mutex::new(Tokens { map: HashMap::new(), purge_at: PURGE_ABOVE }))
    }
}

impl IssuedTokens {
    pub fn insert(&self, token: String, issued: IssuedToken, now: i64) {
        let mut tokens = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.map.len() >= tokens.purge_at {
            tokens.map.retain(|_, t| t.exp > now);
            tokens.purge_at = (tokens.map.len() * 2).max(PURGE_ABOVE);
        }
        tokens.map.insert(token, issued);
    }

    pub fn get(&self, token: &str) -> Option<IssuedToken> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).map.get(token).cloned()
    }

    /// Marks a token revoked; unknown tokens are ignored (RFC 7009 §2.2).
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.0.lock().unwrap_or_else(|e| e.into_inner()).map.get_mut(token) {
            t.revoked = true;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(exp: i64) -> IssuedToken {
        IssuedToken { client_id: "c".into(), scope: "s".into(), iat: 0, exp, revoked: false }
    }

    #[test]
    fn expired_tokens_are_purged_and_live_ones_kept() {
        let tokens = IssuedTokens::default();
        for i in 0..PURGE_ABOVE {
            // Half expired at now = 100, half live.
            tokens.insert(format!("t{i}"), token(if i % 2 == 0 { 50 } else { 500 }), 100);
        }
        tokens.insert("last".into(), token(500), 100);
        assert_eq!(tokens.len(), PURGE_ABOVE / 2 + 1);
        assert!(tokens.get("t1").is_some() && tokens.get("t0").is_none());
    }
}
