//! The client-assertion pool of the private_key_jwt path: signing happens off the hot path, on
//! worker threads that keep a bounded queue full; users take a fresh assertion (unique `jti`) per
//! request. Assertions close to their `exp` are thrown away, and every wait on an empty pool is
//! counted as starvation so the report can say when signing, not the server, set the pace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth::assertion::{self, Claims, LIFETIME_SECS, Mutation};
use crate::keys::KeyPair;

/// An assertion is handed out only while it has this much life left, so the server never sees
/// one about to expire (clock skew and queueing included).
const MIN_REMAINING: Duration = Duration::from_secs(60);
/// How long a user waits on an empty pool before the request counts as failed.
const TAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Signed {
    jwt: String,
    /// When this assertion must no longer be sent.
    use_before: Instant,
}

pub struct AssertionPool {
    rx: flume::Receiver<Signed>,
    stop: Arc<AtomicBool>,
    capacity: usize,
    starved: AtomicU64,
    discarded: AtomicU64,
    produced: Arc<AtomicU64>,
}

/// What the report says about the pool.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PoolReport {
    pub capacity: usize,
    pub prefilled: usize,
    pub signed: u64,
    /// Requests that found the pool empty and waited for a signature.
    pub starved: u64,
    /// Assertions thrown away because too little of their lifetime was left.
    pub discarded_stale: u64,
}

impl AssertionPool {
    /// Starts `workers` signing threads for `client_id` at `audience` (the token endpoint).
    pub fn start(key: Arc<KeyPair>, client_id: &str, audience: &str, capacity: usize, workers: usize) -> Self {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicU64::new(0));
        for _ in 0..workers.max(1) {
            let (tx, stop, produced, key) = (tx.clone(), stop.clone(), produced.clone(), key.clone());
            let (client_id, audience) = (client_id.to_string(), audience.to_string());
            std::thread::spawn(move || sign_until_stopped(&key, &client_id, &audience, &tx, &stop, &produced));
        }
        Self { rx, stop, capacity, starved: AtomicU64::new(0), discarded: AtomicU64::new(0), produced }
    }

    /// Waits until the pool holds `n` assertions or `budget` has passed; returns how many it holds.
    pub async fn prefill(&self, n: usize, budget: Duration) -> usize {
        let deadline = Instant::now() + budget;
        while self.rx.len() < n.min(self.capacity) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.rx.len()
    }

    /// A fresh assertion, or `None` when none came within the timeout.
    pub async fn take(&self) -> Option<String> {
        let mut waited = false;
        loop {
            let signed = match self.rx.try_recv() {
                Ok(s) => s,
                Err(_) => {
                    if !waited {
                        self.starved.fetch_add(1, Ordering::Relaxed);
                        waited = true;
                    }
                    match tokio::time::timeout(TAKE_TIMEOUT, self.rx.recv_async()).await {
                        Ok(Ok(s)) => s,
                        _ => return None,
                    }
                }
            };
            if Instant::now() < signed.use_before {
                return Some(signed.jwt);
            }
            self.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn report(&self, prefilled: usize) -> PoolReport {
        PoolReport {
            capacity: self.capacity,
            prefilled,
            signed: self.produced.load(Ordering::Relaxed),
            starved: self.starved.load(Ordering::Relaxed),
            discarded_stale: self.discarded.load(Ordering::Relaxed),
        }
    }
}

impl Drop for AssertionPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sign_until_stopped(
    key: &KeyPair,
    client_id: &str,
    audience: &str,
    tx: &flume::Sender<Signed>,
    stop: &AtomicBool,
    produced: &AtomicU64,
) {
    let lifetime = Duration::from_secs(LIFETIME_SECS as u64);
    while !stop.load(Ordering::Relaxed) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
        let made = Instant::now();
        let claims = Claims { client_id, audience, now, jti: assertion::new_jti() };
        let jwt = assertion::build(key, &claims, &Mutation::default());
        let mut signed = Signed { jwt, use_before: made + lifetime - MIN_REMAINING };
        // A full pool blocks this thread; wake up now and then to notice the stop flag.
        loop {
            match tx.send_timeout(signed, Duration::from_millis(100)) {
                Ok(()) => {
                    produced.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(flume::SendTimeoutError::Timeout(back)) if !stop.load(Ordering::Relaxed) => signed = back,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlg, KidStyle};
    use std::collections::HashSet;

    #[tokio::test]
    async fn hands_out_unique_fresh_assertions_and_counts_starvation() {
        let key = Arc::new(KeyPair::generate(KeyAlg::Es384, 2048, KidStyle::Rfc7638).unwrap());
        let pool = AssertionPool::start(key, "client", "https://as.example/token", 8, 1);
        let held = pool.prefill(8, Duration::from_secs(10)).await;
        assert_eq!(held, 8);
        let mut jtis = HashSet::new();
        for _ in 0..40 {
            let jwt = pool.take().await.expect("an assertion");
            let payload = jwt.split('.').nth(1).unwrap();
            use base64::Engine;
            let claims: serde_json::Value =
                serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
                    .unwrap();
            assert_eq!(claims["aud"], "https://as.example/token");
            assert!(jtis.insert(claims["jti"].as_str().unwrap().to_string()), "jti reused");
        }
        let report = pool.report(held);
        assert!(report.signed >= 40);
        // 40 takes from a pool of 8 must have waited on the signer at least once.
        assert!(report.starved >= 1, "{report:?}");
    }
}
