//! The signing pools of the load paths — client assertions (private_key_jwt) and DPoP proofs
//! (RFC 9449): signing happens off the hot path, on worker threads that keep a bounded queue
//! full; users take a fresh one (unique `jti`) per request. Entries close to the end of their
//! life are thrown away, and every wait on an empty pool is counted as starvation so the report
//! can say when signing, not the server, set the pace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::DpopProof;
use crate::protocol::auth::assertion::{self, Claims, LIFETIME_SECS, Mutation};
use crate::protocol::auth::dpop;
use crate::support::keys::KeyPair;
use bytes::Bytes;

/// An assertion is handed out only while it has this much life left, so the server never sees
/// one about to expire (clock skew and queueing included).
const MIN_REMAINING: Duration = Duration::from_secs(60);
/// How long a user waits on an empty pool before the request counts as failed.
const TAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A DPoP proof is handed out for this long after it was signed: servers take a proof whose
/// `iat` is recent (RFC 9449 §11.1 leaves the window to them; a minute is common).
pub const DPOP_FRESH: Duration = Duration::from_secs(30);

struct Signed {
    /// The request body, ready to send: the path's parameters and the assertion.
    body: Bytes,
    /// When this assertion must no longer be sent.
    use_before: Instant,
}

pub struct SigningPool {
    rx: flume::Receiver<Signed>,
    stop: Arc<AtomicBool>,
    /// Set once the pre-signing is done: from then on the workers only top the pool up when it
    /// runs low, so signing does not take the CPU the users need while the pool is well stocked.
    topping_up: Arc<AtomicBool>,
    capacity: usize,
    starved: AtomicU64,
    discarded: AtomicU64,
    produced: Arc<AtomicU64>,
}

/// What the report says about the pool.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PoolReport {
    pub capacity: usize,
    pub prefilled: usize,
    pub signed: u64,
    /// Requests that found the pool empty and waited for a signature.
    pub starved: u64,
    /// Assertions thrown away because too little of their lifetime was left.
    pub discarded_stale: u64,
}

impl SigningPool {
    /// Starts `workers` signing threads for `client_id` at `audience` (the token endpoint). Each
    /// entry is a whole body, `{body_prefix}client_assertion_type=…&client_assertion=…`, so the
    /// hot path does not even format.
    pub fn start(
        key: Arc<KeyPair>,
        client_id: &str,
        audience: &str,
        body_prefix: &str,
        capacity: usize,
        workers: usize,
    ) -> Self {
        let signs =
            Signs::Assertion { client_id: client_id.into(), audience: audience.into(), prefix: body_prefix.into() };
        Self::start_signing(key, signs, capacity, workers)
    }

    /// Starts `workers` threads signing DPoP proofs for `POST htu` with `key`; each entry is a
    /// proof, the value of the `DPoP` header.
    pub fn start_dpop(key: Arc<KeyPair>, htu: &str, capacity: usize, workers: usize) -> Self {
        Self::start_signing(key, Signs::DpopProof { htu: htu.into() }, capacity, workers)
    }

    fn start_signing(key: Arc<KeyPair>, signs: Signs, capacity: usize, workers: usize) -> Self {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let topping_up = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicU64::new(0));
        // Refill only near the bottom: a pool sized for the run then never competes with the users.
        let low_water = (capacity / 20).max(64);
        for _ in 0..workers.max(1) {
            let flags = Flags { stop: stop.clone(), topping_up: topping_up.clone(), low_water };
            let (tx, produced, key, signs) = (tx.clone(), produced.clone(), key.clone(), signs.clone());
            std::thread::spawn(move || sign_until_stopped(&key, &signs, &tx, &flags, &produced));
        }
        Self { rx, stop, topping_up, capacity, starved: AtomicU64::new(0), discarded: AtomicU64::new(0), produced }
    }

    /// Waits until the pool holds `n` assertions or `budget` has passed; returns how many it holds.
    pub async fn prefill(&self, n: usize, budget: Duration) -> usize {
        let deadline = Instant::now() + budget;
        while self.rx.len() < n.min(self.capacity) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.topping_up.store(true, Ordering::Relaxed);
        self.rx.len()
    }

    /// A body with a fresh assertion, or `None` when none came within the timeout.
    pub async fn take(&self) -> Option<Bytes> {
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
                return Some(signed.body);
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

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Flags {
    stop: Arc<AtomicBool>,
    topping_up: Arc<AtomicBool>,
    low_water: usize,
}

/// What a pool signs.
#[derive(Clone)]
enum Signs {
    /// Token request bodies with a client assertion of `client_id` for `audience`.
    Assertion { client_id: String, audience: String, prefix: String },
    /// DPoP proofs for `POST htu`.
    DpopProof { htu: String },
}

fn sign_until_stopped(key: &KeyPair, signs: &Signs, tx: &flume::Sender<Signed>, flags: &Flags, produced: &AtomicU64) {
    let usable = match signs {
        Signs::Assertion { .. } => Duration::from_secs(LIFETIME_SECS as u64) - MIN_REMAINING,
        Signs::DpopProof { .. } => DPOP_FRESH,
    };
    let stop = &flags.stop;
    while !stop.load(Ordering::Relaxed) {
        if flags.topping_up.load(Ordering::Relaxed) && tx.len() > flags.low_water {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let made = Instant::now();
        let use_before = made + usable;
        let batch = sign_batch(key, signs);
        // Counted as signed before it is handed over, so a report never counts fewer than taken.
        produced.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for body in batch {
            let mut signed = Signed { body, use_before };
            // A full pool blocks this thread; wake up now and then to notice the stop flag.
            loop {
                match tx.send_timeout(signed, Duration::from_millis(100)) {
                    Ok(()) => break,
                    Err(flume::SendTimeoutError::Timeout(back)) if !stop.load(Ordering::Relaxed) => signed = back,
                    Err(_) => return,
                }
            }
        }
    }
}

/// Bodies signed together share one allocation: the hot path then frees memory once per batch,
/// not once per request (per-request frees of memory another thread allocated cost the users
/// a fifth of their rate, measured).
const BATCH: usize = 64;

fn sign_batch(key: &KeyPair, signs: &Signs) -> Vec<Bytes> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    let mut buffer = String::with_capacity(BATCH * 1024);
    let mut ends = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        match signs {
            Signs::Assertion { client_id, audience, prefix } => {
                let claims = Claims { client_id, audience, now, jti: assertion::new_jti() };
                let jwt = assertion::build(key, &claims, &Mutation::default());
                // The assertion is base64url and dots: nothing to escape.
                buffer.push_str(prefix);
                buffer.push_str("client_assertion_type=");
                buffer.push_str(encoded_assertion_type());
                buffer.push_str("&client_assertion=");
                buffer.push_str(&jwt);
            }
            Signs::DpopProof { htu } => {
                let (proof, _) = dpop::proof(key, "POST", htu, DpopProof::Good, dpop::Bind::default());
                buffer.push_str(&proof);
            }
        }
        ends.push(buffer.len());
    }
    let shared = Bytes::from(buffer);
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let body = shared.slice(start..end);
            start = end;
            body
        })
        .collect()
}

fn encoded_assertion_type() -> &'static str {
    static ENCODED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENCODED.get_or_init(|| form_urlencoded::byte_serialize(assertion::ASSERTION_TYPE.as_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::keys::{KeyAlg, KidStyle};
    use std::collections::HashSet;

    #[tokio::test]
    async fn hands_out_unique_fresh_assertions_and_counts_starvation() {
        let key = Arc::new(KeyPair::generate(KeyAlg::Es384, 2048, KidStyle::Rfc7638).unwrap());
        let pool =
            SigningPool::start(key, "client", "https://as.example/token", "grant_type=client_credentials&", 8, 1);
        let held = pool.prefill(8, Duration::from_secs(10)).await;
        assert_eq!(held, 8);
        // Taken in a tight loop first (a signature takes far longer than a take), checked after:
        // the pool of 8 must run dry on the way.
        let mut bodies = Vec::new();
        for _ in 0..40 {
            bodies.push(pool.take().await.expect("an assertion"));
        }
        let mut jtis = HashSet::new();
        for body in &bodies {
            let body = std::str::from_utf8(body).unwrap();
            let jwt = body.strip_prefix("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=").expect(body);
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
