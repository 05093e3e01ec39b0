//! A bounded map whose entries are each remembered until their expiry: the mocks' memory of used
//! assertion and DPoP `jti`s, of revoked tokens, and of pending CIBA requests. Keys are SHA-256
//! digests, so a key's size does not depend on what a client sent; expired entries are swept in
//! amortised O(1) per insert; and the map never holds more than its limit — when every entry is
//! still live, it refuses the insert (fail closed: forgetting a live entry would let a replay or
//! a revoked token through, which a conformance mock must never do on its own).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::support::http_server::Reply;

/// What the set holds at most by default: about 80 MiB, and at an assertion's five-minute
/// lifetime some 7,000 uses a second — past what one machine's load run sends.
pub const DEFAULT_LIMIT: usize = 1 << 21;
/// The first sweep happens at this many entries (or at the limit, if lower).
const FIRST_SWEEP: usize = 100_000;

/// The digest of `parts`, each length-prefixed so that ("ab", "c") and ("a", "bc") differ.
pub fn key(parts: &[&str]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// The key was not live: it is held now.
    Added,
    /// The key is held and still live.
    Present,
    /// Every held key is live and the set is at its limit: nothing was added.
    Full,
}

/// Keys alone: a jti was used, a token was revoked.
pub type ExpiringSet = ExpiringMap<()>;

pub struct ExpiringMap<V> {
    /// Digest → the Unix second after which the entry no longer matters, and its value.
    entries: HashMap<[u8; 32], (i64, V)>,
    limit: usize,
    /// Below the limit, expired entries are swept when the set grows past this, which then
    /// doubles what survived: amortised O(1) per insert however many are live (a sweep on every
    /// insert past a fixed size made a long load run quadratic).
    sweep_at: usize,
    /// At the limit, no entry expires before this (as of the last sweep): until then a sweep
    /// would free nothing, so none is made and a full set answers in O(1).
    next_expiry: i64,
}

impl<V> ExpiringMap<V> {
    pub fn new(limit: usize) -> Self {
        Self { entries: HashMap::new(), limit, sweep_at: FIRST_SWEEP.min(limit), next_expiry: i64::MIN }
    }

    /// Whether `key` is held and live at `now`.
    pub fn contains(&self, key: &[u8; 32], now: i64) -> bool {
        self.entries.get(key).is_some_and(|(until, _)| *until > now)
    }

    /// Whether `key` is held, live or not (a revoked token's entry outlives it until a sweep).
    pub fn holds(&self, key: &[u8; 32]) -> bool {
        self.entries.contains_key(key)
    }

    /// The value of `key`, if it is held and live at `now`.
    pub fn get_mut(&mut self, key: &[u8; 32], now: i64) -> Option<&mut V> {
        self.entries.get_mut(key).filter(|(until, _)| *until > now).map(|(_, value)| value)
    }

    /// Holds `key` with `value` until `until`, unless it is held and live already (then the
    /// value held stays).
    pub fn insert(&mut self, key: [u8; 32], until: i64, value: V, now: i64) -> Insert {
        if self.contains(&key, now) {
            return Insert::Present;
        }
        let full = self.entries.len() >= self.limit;
        if (full && now >= self.next_expiry) || (!full && self.entries.len() >= self.sweep_at) {
            self.sweep(now);
        }
        if self.entries.len() >= self.limit && !self.entries.contains_key(&key) {
            return Insert::Full;
        }
        self.entries.insert(key, (until, value));
        Insert::Added
    }

    /// Keeps only the entries whose value `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.entries.retain(|_, (_, value)| keep(value));
    }

    fn sweep(&mut self, now: i64) {
        self.entries.retain(|_, (until, _)| *until > now);
        self.sweep_at = (self.entries.len() * 2).max(FIRST_SWEEP).min(self.limit);
        self.next_expiry = self.entries.values().map(|(until, _)| *until).min().unwrap_or(i64::MIN);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What a mock answers when a store it needs is full: 503 with `Retry-After`, as a server that
/// cannot take a request now does (RFC 9110 §15.6.4), so a client retries later instead of
/// reading a refusal of its request into it.
pub fn unavailable() -> Reply {
    Reply::new(503).insert_header("Retry-After", "1").insert_header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_present_while_live_and_may_come_again_once_expired() {
        let mut set: ExpiringSet = ExpiringMap::new(DEFAULT_LIMIT);
        let k = key(&["c", "j"]);
        assert_eq!(set.insert(k, 1_000, (), 0), Insert::Added);
        assert_eq!(set.insert(k, 1_000, (), 10), Insert::Present, "while live");
        assert_eq!(set.insert(k, 2_000, (), 1_000), Insert::Added, "expired, it may come again");
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]), "parts are delimited");
    }

    #[test]
    fn expired_entries_are_swept_so_the_set_holds_the_live_window() {
        let mut set: ExpiringSet = ExpiringMap::new(DEFAULT_LIMIT);
        // Many inserts, each live for 300 s, over a long run: the set holds the live window
        // (about 300 inserts per second of this run's clock), not everything ever seen.
        for i in 0..(FIRST_SWEEP as i64 * 3) {
            let now = 1_000 + i / 100;
            assert_eq!(set.insert(key(&[&i.to_string()]), now + 300, (), now), Insert::Added);
        }
        assert!(set.len() <= FIRST_SWEEP * 2 + 1, "{}", set.len());
        let now = 1_000 + (FIRST_SWEEP as i64 * 3) / 100;
        assert_eq!(set.insert(key(&[&(FIRST_SWEEP * 3 - 1).to_string()]), now + 300, (), now), Insert::Present);
    }

    #[test]
    fn at_its_limit_the_set_refuses_new_keys_until_old_ones_expire_and_forgets_no_live_one() {
        let mut set = ExpiringSet::new(100);
        for i in 0..100 {
            assert_eq!(set.insert(key(&[&i.to_string()]), 500 + i, (), 0), Insert::Added);
        }
        assert_eq!(set.insert(key(&["new"]), 600, (), 10), Insert::Full);
        for i in 0..100 {
            assert!(set.contains(&key(&[&i.to_string()]), 10), "a live key is kept when full");
            assert_eq!(set.insert(key(&[&i.to_string()]), 600, (), 10), Insert::Present, "a replay is still a replay");
        }
        // The first key expires at 500: from then there is room again, one key at a time.
        assert_eq!(set.insert(key(&["new"]), 600, (), 499), Insert::Full);
        assert_eq!(set.insert(key(&["new"]), 600, (), 500), Insert::Added);
        assert_eq!(set.insert(key(&["newer"]), 600, (), 500), Insert::Full);
        assert_eq!(set.len(), 100);
    }
}
