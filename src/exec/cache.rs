//! The response cache of `cache: <ttl>` calls (SPEC §4.3) and the clock it reads.
//!
//! moka holds the entries, bounded in bytes, and coalesces concurrent misses for one key into a
//! single backend request; failures are never stored. Freshness is judged against an injected
//! `Clock`, so tests move time instead of sleeping.

use crate::upstream::{CallError, CallResponse};
use moka::future::Cache;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::clock::{Clock, ManualClock, SystemClock};

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
                crate::metrics::cache("hit");
                return Ok(entry.response);
            }
            self.inner.invalidate(&key).await;
        }
        crate::metrics::cache("miss");
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
