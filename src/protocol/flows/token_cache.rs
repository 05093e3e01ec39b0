//! The harness's own token client practice, the one integration guides ask of clients: reuse a
//! token while it is valid, renew it *before* `expires_in` runs out, never send an expired one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::support::secret::Secret;

/// Seconds since the Unix epoch; injectable so tests control time.
pub type UnixNow = Arc<dyn Fn() -> i64 + Send + Sync>;

struct Cached {
    token: Secret,
    /// After this instant the token is renewed, not reused.
    renew_at: i64,
}

pub struct TokenCache {
    entries: Mutex<HashMap<String, Cached>>,
    clock: UnixNow,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_clock(Arc::new(crate::support::clock::unix_now))
    }
}

/// When to stop reusing a token of `lifetime` seconds: a tenth of its life early, at least 1 s and
/// at most 30 s, so a request in flight never carries a token that expires on the way.
pub fn renewal_margin(lifetime: i64) -> i64 {
    (lifetime / 10).clamp(1, 30)
}

impl TokenCache {
    pub fn with_clock(clock: UnixNow) -> Self {
        Self { entries: Mutex::new(HashMap::new()), clock }
    }

    /// The cached token for `key` if it is still well within its life.
    pub fn get(&self, key: &str) -> Option<Secret> {
        let now = (self.clock)();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|c| now < c.renew_at).map(|c| c.token.clone())
    }

    /// Remembers a token received now with `expires_in`; without a lifetime it is not cached.
    pub fn put(&self, key: &str, token: Secret, expires_in: Option<i64>) {
        let Some(lifetime) = expires_in.filter(|l| *l > 0) else { return };
        let renew_at = (self.clock)() + lifetime - renewal_margin(lifetime);
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), Cached { token, renew_at });
    }

    /// The cached token, or a fresh one from `fetch` (token, expires_in), which is then cached.
    pub async fn get_or_fetch<F, Fut, E>(&self, key: &str, fetch: F) -> Result<Secret, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Option<i64>), E>>,
    {
        if let Some(token) = self.get(key) {
            return Ok(token);
        }
        let (token, expires_in) = fetch().await?;
        self.put(key, token.clone(), expires_in);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn fake_clock() -> (Arc<AtomicI64>, UnixNow) {
        let now = Arc::new(AtomicI64::new(1_000));
        let n = now.clone();
        (now, Arc::new(move || n.load(Ordering::SeqCst)))
    }

    /// Walks time second by second through several lifetimes: whatever `get` returns is always
    /// a token that is still valid for at least the margin, and renewal happens each lifetime.
    #[tokio::test]
    async fn never_returns_an_expired_token_and_renews_before_expiry() {
        let (now, clock) = fake_clock();
        let cache = TokenCache::with_clock(clock);
        let lifetime = 10;
        let mut issued: Vec<(String, i64)> = Vec::new(); // token, expires_at
        for _ in 0..60 {
            let t = now.load(Ordering::SeqCst);
            let token = cache
                .get_or_fetch("client", || async {
                    let name = format!("token-{t}");
                    issued.push((name.clone(), t + lifetime));
                    Ok::<_, ()>((Secret::new(name), Some(lifetime)))
                })
                .await
                .unwrap();
            let expires_at = issued.iter().find(|(n, _)| n == token.expose()).unwrap().1;
            assert!(
                expires_at - t >= renewal_margin(lifetime),
                "token {} used at {t} expires at {expires_at}",
                token.expose()
            );
            now.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(issued.len(), 7, "one token per 9 s of a 10 s lifetime: {issued:?}");
    }

    #[test]
    fn a_token_without_lifetime_is_not_cached() {
        let (_, clock) = fake_clock();
        let cache = TokenCache::with_clock(clock);
        cache.put("c", Secret::new("t"), None);
        assert!(cache.get("c").is_none());
    }
}
