//! The memory store: exact for one instance. Buckets live in a bounded moka cache: an idle
//! bucket is dropped once its policy's period has passed (it is full again by then, so nothing
//! is lost), and a flood of distinct keys evicts the least used buckets instead of growing
//! memory (the price: an evicted bucket that was not yet full starts full again).

use super::gcra::{decide, Decision, Rate};
use crate::clock::Clock;
use moka::ops::compute::Op;
use std::sync::Arc;
use std::time::Duration;

/// Most buckets kept at once (about 150 bytes each).
pub const MAX_BUCKETS: u64 = 200_000;

/// Buckets in this process.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    buckets: moka::sync::Cache<String, u64>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// A store whose buckets idle out after `longest` (the longest policy period).
    pub fn new(longest: Duration, capacity: u64, clock: Arc<dyn Clock>) -> MemoryStore {
        MemoryStore {
            buckets: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(longest.max(Duration::from_secs(1)))
                .build(),
            clock,
        }
    }

    /// One decision for the bucket `key`, atomically.
    pub fn decide(&self, key: &str, rate: Rate) -> Decision {
        let now = u64::try_from(self.clock.now().as_nanos()).unwrap_or(u64::MAX);
        let mut decision = decide(now, None, rate);
        self.buckets.entry_by_ref(key).and_compute_with(|entry| {
            decision = decide(now, entry.map(|e| e.into_value()), rate);
            if decision.allowed {
                Op::Put(decision.tat)
            } else {
                Op::Nop
            }
        });
        decision
    }

    /// How many buckets are held (after pending evictions ran).
    pub fn len(&self) -> u64 {
        self.buckets.run_pending_tasks();
        self.buckets.entry_count()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let store = MemoryStore::new(Duration::from_secs(60), 1_000, Arc::new(ManualClock::default()));
        let rate = Rate {
            limit: 10,
            period: 60_000_000_000,
        };
        for i in 0..100_000 {
            store.decide(&format!("api:h:{i:016x}"), rate);
        }
        assert!(store.len() <= 1_000, "{} buckets", store.len());
    }

    #[test]
    fn idle_buckets_expire_once_they_are_full_again() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(Duration::from_secs(1), 1_000, clock);
        let rate = Rate {
            limit: 1,
            period: 1_000_000_000,
        };
        store.decide("a", rate);
        assert_eq!(store.len(), 1);
        // moka measures idleness with its own clock: wait (bounded) for the bucket to go.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !store.is_empty() {
            assert!(std::time::Instant::now() < deadline, "the idle bucket never expired");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
