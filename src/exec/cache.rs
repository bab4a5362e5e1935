//! The response cache of `cache: <ttl>` calls (SPEC §4.3) and the clock it reads.
//!
//! moka holds the entries, bounded in bytes, and coalesces concurrent misses for one key into a
//! single backend request; failures are never stored. Freshness is judged against an injected
//! `Clock`, so tests move time instead of sleeping.

use crate::upstream::{CallError, CallResponse};
use moka::future::Cache;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since an arbitrary, fixed start.
    fn now(&self) -> Duration;
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[derive(Clone)]
struct Entry {
    response: CallResponse,
    stored_at: Duration,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Cached backend responses, shared by every request.
#[derive(Clone)]
pub struct ResponseCache {
    inner: Cache<String, Entry>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

impl ResponseCache {
    /// A cache holding at most `max_bytes` of response bodies.
    pub fn new(max_bytes: u64, clock: Arc<dyn Clock>) -> ResponseCache {
        let inner = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Entry| (k.len() + v.response.size).min(u32::MAX as usize) as u32)
            .expire_after(PerEntryTtl)
            .build();
        ResponseCache { inner, clock }
    }

    /// The cached response for `key`, or the result of `fetch` (stored only when it succeeded).
    /// Concurrent callers with the same key share one `fetch`.
    pub async fn get_or_fetch<F>(&self, key: String, ttl: Duration, fetch: F) -> Result<CallResponse, CallError>
    where
        F: Future<Output = Result<CallResponse, CallError>>,
    {
        if let Some(entry) = self.inner.get(&key).await {
            if self.clock.now().saturating_sub(entry.stored_at) < entry.ttl {
                return Ok(entry.response);
            }
            self.inner.invalidate(&key).await;
        }
        let clock = self.clock.clone();
        let result = self
            .inner
            .try_get_with(key, async {
                fetch.await.map(|response| Entry {
                    response,
                    stored_at: clock.now(),
                    ttl,
                })
            })
            .await;
        match result {
            Ok(entry) => Ok(entry.response),
            Err(e) => Err((*e).clone()),
        }
    }
}
