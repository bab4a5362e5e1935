//! Rate limiting (SPEC §7): one GCRA (`gcra`), applied to a bucket per (policy, key) (`key`) kept
//! in a store — in this process (`memory`) or in Redis, shared by every instance (`redis`). When
//! the store fails, `on_store_error` decides; the outage is logged when it starts and when it
//! ends, never per request. The limiter turns a decision into the headers every
//! limited response carries, or into a refusal. It is consulted by the one access stage
//! (`middleware::access`), after auth and roles, for REST endpoints, passthrough routes, GraphQL
//! requests and each GraphQL endpoint field.

pub mod gcra;
pub mod key;
pub mod memory;
pub mod redis;

use crate::clock::Clock;
use crate::plan::{Policy, RateLimitPlan, StoreConfig};
use gcra::{ceil_secs, Decision, Rate};
use http::{HeaderName, HeaderValue};
use memory::MemoryStore;
use std::sync::Arc;

/// The rate-limit headers of one decision, for the response (replacing a backend's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHeaders(pub Vec<(HeaderName, HeaderValue)>);

impl RateHeaders {
    /// Sets the headers on a response, replacing any of the same names. Takes the values: a
    /// number's header value is not shareable, and cloning it would copy it into a new
    /// allocation.
    pub fn apply(self, headers: &mut http::HeaderMap) {
        for (k, v) in self.0 {
            headers.insert(k, v);
        }
    }
}

/// What the limiter says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Within the policy: go on, with these headers.
    Allowed(RateHeaders),
    /// Over it: 429 with these headers and `Retry-After` in seconds.
    Limited {
        /// The headers (remaining 0).
        headers: RateHeaders,
        /// Seconds until the next request is allowed.
        retry_after: u64,
    },
    /// The store failed and `on_store_error: allow` lets the request through, with no headers.
    Unchecked,
    /// The store failed and `on_store_error: deny` refuses it (503).
    Unavailable,
}

/// Where buckets are kept.
#[derive(Debug, Clone)]
enum Store {
    Memory(MemoryStore),
    Redis(redis::RedisStore),
    // Boxed: the cluster client is large, and the limiter is cloned into every GraphQL operation.
    Cluster(Box<redis::ClusterStore>),
}

/// Whether the store answers, as the last decision (or readiness probe) found it.
#[derive(Debug, Default)]
struct Health {
    down: std::sync::atomic::AtomicBool,
    reason: std::sync::Mutex<String>,
}

/// The limiter: long-lived (buckets survive a reload of the configuration).
#[derive(Debug, Clone)]
pub struct Limiter {
    store: Store,
    /// What `store` was built from (a reload cannot change it).
    config: StoreConfig,
    health: Arc<Health>,
}

/// The store's state for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// It answers (or lives in this process).
    Ok,
    /// It does not: why.
    Down(String),
}

impl Limiter {
    /// The limiter for a configuration's `rate_limits` (a memory store when there is none, which
    /// is then never consulted).
    pub fn new(plan: Option<&RateLimitPlan>, clock: Arc<dyn Clock>) -> Result<Limiter, String> {
        let store = match plan.map(|p| &p.store) {
            None | Some(StoreConfig::Memory) => Store::Memory(MemoryStore::new(memory::MAX_BUCKETS, clock)),
            Some(StoreConfig::Redis(url)) => Store::Redis(redis::RedisStore::new(url)?),
            Some(StoreConfig::Cluster(nodes)) => Store::Cluster(Box::new(redis::ClusterStore::new(nodes)?)),
        };
        Ok(Limiter {
            store,
            config: plan.map(|p| p.store.clone()).unwrap_or(StoreConfig::Memory),
            health: Arc::default(),
        })
    }

    /// Whether this limiter's store is the one `config` asks for.
    pub fn serves(&self, config: &StoreConfig) -> bool {
        self.config == *config
    }

    /// One decision for `bucket` under `policy`; a store failure is decided by
    /// `on_store_error` within 250 ms.
    pub async fn check(&self, plan: &RateLimitPlan, policy: &Policy, bucket: &str) -> Verdict {
        let rate = rate_of(policy);
        let decision = match self.decide(bucket, rate).await {
            Ok(d) => {
                self.mark_up();
                d
            }
            Err(e) => {
                crate::metrics::rate_limit(&policy.name, "store_error");
                self.mark_down(&e.to_string(), plan.deny_on_store_error);
                return if plan.deny_on_store_error {
                    Verdict::Unavailable
                } else {
                    Verdict::Unchecked
                };
            }
        };
        crate::metrics::rate_limit(&policy.name, if decision.allowed { "allowed" } else { "limited" });
        verdict(policy, &decision)
    }

    /// The store's state now: a Redis store is asked (`PING`, bounded like a decision).
    pub async fn probe(&self, deny: bool) -> StoreState {
        match self.ping().await {
            Ok(()) => {
                self.mark_up();
                StoreState::Ok
            }
            Err(e) => {
                self.mark_down(&e.to_string(), deny);
                StoreState::Down(e.to_string())
            }
        }
    }

    /// One decision in whichever store there is (the memory store never fails).
    async fn decide(&self, bucket: &str, rate: Rate) -> Result<Decision, redis::StoreError> {
        match &self.store {
            Store::Memory(m) => Ok(m.decide(bucket, rate)),
            // Boxed: the Redis clients' futures are large, and inline they would make every
            // request's future (memory-limited ones too) as large, copied whole when it starts.
            Store::Redis(r) => Box::pin(r.decide(bucket, rate, None)).await,
            Store::Cluster(c) => Box::pin(c.decide(bucket, rate, None)).await,
        }
    }

    async fn ping(&self) -> Result<(), redis::StoreError> {
        match &self.store {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ping().await,
            Store::Cluster(c) => c.ping().await,
        }
    }

    fn mark_down(&self, reason: &str, deny: bool) {
        use std::sync::atomic::Ordering;
        if let Ok(mut r) = self.health.reason.lock() {
            *r = reason.to_string();
        }
        if !self.health.down.swap(true, Ordering::SeqCst) {
            let action = if deny { "refused (503)" } else { "let through unlimited" };
            tracing::warn!(error = %reason, "the rate-limit store is down: requests are {action} until it is back");
        }
    }

    fn mark_up(&self) {
        use std::sync::atomic::Ordering;
        if self.health.down.load(Ordering::Relaxed) && self.health.down.swap(false, Ordering::SeqCst) {
            tracing::info!("the rate-limit store is back: requests are limited again");
        }
    }

    /// The memory store, when that is the store (for tests and operations).
    pub fn memory(&self) -> Option<&MemoryStore> {
        match &self.store {
            Store::Memory(m) => Some(m),
            Store::Redis(_) | Store::Cluster(_) => None,
        }
    }
}

/// A policy's rate in the GCRA's units.
pub fn rate_of(policy: &Policy) -> Rate {
    Rate {
        limit: policy.requests,
        period: u64::try_from(policy.per.as_nanos()).unwrap_or(u64::MAX),
    }
}

/// A decision as a verdict with its headers.
pub fn verdict(policy: &Policy, d: &Decision) -> Verdict {
    let headers = headers(policy, d);
    if d.allowed {
        Verdict::Allowed(headers)
    } else {
        Verdict::Limited {
            headers,
            retry_after: ceil_secs(d.reset),
        }
    }
}

// Evaluated at compile time: `from_static` called at run time validates the name every time.
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `X-RateLimit-*` and the IETF draft's `RateLimit-Policy` and `RateLimit`, whole seconds
/// rounded up (the two that never change, the limit and the policy, are written once, in the plan).
fn headers(policy: &Policy, d: &Decision) -> RateHeaders {
    let reset = ceil_secs(d.reset);
    // `"standard";r=42;t=18`, put together without the formatting machinery (every request).
    let mut ratelimit = String::with_capacity(policy.quoted.len() + 24);
    ratelimit.push_str(&policy.quoted);
    ratelimit.push_str(";r=");
    ratelimit.push_str(itoa::Buffer::new().format(d.remaining));
    ratelimit.push_str(";t=");
    ratelimit.push_str(itoa::Buffer::new().format(reset));
    RateHeaders(vec![
        (X_RATELIMIT_LIMIT, policy.limit_header.clone()),
        (X_RATELIMIT_REMAINING, HeaderValue::from(d.remaining)),
        (X_RATELIMIT_RESET, HeaderValue::from(reset)),
        (RATELIMIT_POLICY, policy.policy_header.clone()),
        (
            RATELIMIT,
            HeaderValue::from_str(&ratelimit).unwrap_or(HeaderValue::from_static("")),
        ),
    ])
}
