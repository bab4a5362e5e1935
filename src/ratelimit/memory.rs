//! The memory store: exact for one instance. Buckets live in a sharded map (a lock per shard,
//! so the two workers rarely meet), bounded: a bucket whose TAT is past is full again and can go
//! at no cost, so a full shard first drops those; if a flood of distinct keys still fills it, it
//! drops an eighth of its buckets (which then start full again) rather than grow. Idle buckets
//! also expire on their own: every 1024th decision sweeps one shard of its full buckets.

use super::gcra::{decide, Decision, Rate};
use crate::clock::Clock;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Most buckets kept at once (about 100 bytes each).
pub const MAX_BUCKETS: u64 = 200_000;

const SHARDS: usize = 64;

/// One shard: bucket key → TAT (nanoseconds on the store's clock).
type Shard = Mutex<HashMap<Box<str>, u64>>;

/// Buckets in this process.
#[derive(Clone)]
pub struct MemoryStore {
    shards: Arc<[Shard]>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    decisions: Arc<std::sync::atomic::AtomicU64>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl MemoryStore {
    /// A store of at most `capacity` buckets.
    pub fn new(capacity: u64, clock: Arc<dyn Clock>) -> MemoryStore {
        let per_shard = usize::try_from(capacity).unwrap_or(usize::MAX).div_ceil(SHARDS).max(1);
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: Default::default(),
            decisions: Arc::default(),
            clock,
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos()).unwrap_or(u64::MAX)
    }

    /// One decision for the bucket `key`, atomically.
    pub fn decide(&self, key: &str, rate: Rate) -> Decision {
        let now = self.now();
        let n = self.decisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 1024 == 1023 {
            let i = (n / 1024) as usize % SHARDS;
            if let Ok(mut m) = self.shards[i].lock() {
                m.retain(|_, tat| *tat > now);
            }
        }
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tat) = map.get_mut(key) {
            let d = decide(now, Some(*tat), rate);
            *tat = d.tat;
            return d;
        }
        let d = decide(now, None, rate);
        if d.allowed {
            if map.len() >= self.per_shard {
                make_room(&mut map, now, self.per_shard);
            }
            map.insert(key.into(), d.tat);
        }
        d
    }

    /// How many buckets are held (full ones included until a shard needs their room).
    pub fn len(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len() as u64).unwrap_or(0))
            .sum()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every bucket that is full again (its TAT is past); the memory of idle clients.
    pub fn sweep(&self) {
        let now = self.now();
        for s in self.shards.iter() {
            if let Ok(mut m) = s.lock() {
                m.retain(|_, tat| *tat > now);
            }
        }
    }
}

/// Makes room in a full shard: full buckets go first (nothing is lost), then, if that was not
/// enough, an eighth of the rest.
fn make_room(map: &mut HashMap<Box<str>, u64>, now: u64, cap: usize) {
    map.retain(|_, tat| *tat > now);
    if map.len() >= cap {
        let drop: Vec<Box<str>> = map.keys().take((cap / 8).max(1)).cloned().collect();
        for k in drop {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let store = MemoryStore::new(1_000, Arc::new(ManualClock::default()));
        let rate = Rate {
            limit: 10,
            period: 60_000_000_000,
        };
        for i in 0..100_000 {
            store.decide(&format!("api:h:{i:016x}"), rate);
        }
        assert!(store.len() <= 1_024, "{} buckets", store.len());
    }

    #[test]
    fn a_bucket_full_again_is_dropped_first_and_loses_nothing() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(64, clock.clone());
        let rate = Rate {
            limit: 1,
            period: 1_000_000_000,
        };
        assert!(store.decide("a", rate).allowed);
        assert!(
            !store.decide("a", rate).allowed,
            "the bucket is kept while it is not full"
        );
        clock.advance(Duration::from_secs(2));
        store.sweep();
        assert!(store.is_empty(), "idle and full again: dropped");
        assert!(store.decide("a", rate).allowed);
    }

    #[test]
    fn idle_buckets_expire_under_traffic_without_a_sweep_call() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(100_000, clock.clone());
        let rate = Rate {
            limit: 5,
            period: 1_000_000_000,
        };
        for i in 0..1_000 {
            store.decide(&format!("idle-{i}"), rate);
        }
        clock.advance(Duration::from_secs(2));
        // Other clients' traffic sweeps every shard in turn.
        for i in 0..(1024 * 64) {
            store.decide(&format!("busy-{}", i % 10), rate);
        }
        assert!(store.len() <= 10, "{} buckets left", store.len());
    }
}
