//! Rate limiting (SPEC §7): one GCRA (`gcra`), applied to a bucket per (policy, key) (`key`) kept
//! in a store — in this process (`memory`). The limiter turns a decision into the headers every
//! limited response carries, or into a refusal. It is consulted by the one access stage
//! (`middleware::access`), after auth and roles, for REST endpoints, passthrough routes, GraphQL
//! requests and each GraphQL endpoint field.

pub mod gcra;
pub mod key;
pub mod memory;

use crate::clock::Clock;
use crate::plan::{Policy, RateLimitPlan, StoreConfig};
use gcra::{ceil_secs, Decision, Rate};
use http::{HeaderName, HeaderValue};
use memory::MemoryStore;
use std::sync::Arc;
use std::time::Duration;

/// The rate-limit headers of one decision, for the response (replacing a backend's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHeaders(pub Vec<(HeaderName, HeaderValue)>);

impl RateHeaders {
    /// Sets the headers on a response, replacing any of the same names.
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for (k, v) in &self.0 {
            headers.insert(k.clone(), v.clone());
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
}

/// The limiter: long-lived (buckets survive a reload of the configuration).
#[derive(Debug, Clone)]
pub struct Limiter {
    store: Store,
}

impl Limiter {
    /// The limiter for a configuration's `rate_limits` (a memory store when there is none, which
    /// is then never consulted).
    pub fn new(plan: Option<&RateLimitPlan>, clock: Arc<dyn Clock>) -> Limiter {
        let longest = plan
            .map(|p| p.policies.iter().map(|p| p.per).max().unwrap_or_default())
            .unwrap_or(Duration::from_secs(60));
        let store = match plan.map(|p| &p.store) {
            None | Some(StoreConfig::Memory) => Store::Memory(MemoryStore::new(longest, memory::MAX_BUCKETS, clock)),
            // The Redis stores come with the next step of the work; until then the memory store
            // keeps every instance exact on its own.
            Some(StoreConfig::Redis(_)) | Some(StoreConfig::Cluster(_)) => {
                Store::Memory(MemoryStore::new(longest, memory::MAX_BUCKETS, clock))
            }
        };
        Limiter { store }
    }

    /// One decision for `bucket` under `policy`.
    pub async fn check(&self, _plan: &RateLimitPlan, policy: &Policy, bucket: &str) -> Verdict {
        let rate = rate_of(policy);
        let decision = match &self.store {
            Store::Memory(m) => m.decide(bucket, rate),
        };
        verdict(policy, &decision)
    }

    /// The memory store, when that is the store (for tests and operations).
    pub fn memory(&self) -> Option<&MemoryStore> {
        match &self.store {
            Store::Memory(m) => Some(m),
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

/// `X-RateLimit-*` and the IETF draft's `RateLimit-Policy` and `RateLimit`, whole seconds
/// rounded up.
fn headers(policy: &Policy, d: &Decision) -> RateHeaders {
    let reset = ceil_secs(d.reset);
    let window = ceil_secs(u64::try_from(policy.per.as_nanos()).unwrap_or(u64::MAX));
    let name = sf_string(&policy.name);
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    RateHeaders(vec![
        (
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(policy.requests),
        ),
        (
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(d.remaining),
        ),
        (HeaderName::from_static("x-ratelimit-reset"), HeaderValue::from(reset)),
        (
            HeaderName::from_static("ratelimit-policy"),
            value(format!("{name};q={};w={window}", policy.requests)),
        ),
        (
            HeaderName::from_static("ratelimit"),
            value(format!("{name};r={};t={reset}", d.remaining)),
        ),
    ])
}

/// A structured-field string (RFC 8941): quoted, `\` and `"` escaped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
