//! The state shared by every request: the current plan behind an atomically swappable handle, and
//! the long-lived parts (backend client, response cache, rate limiter).

use crate::exec::Exec;
use crate::plan::Plan;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// Shared state. Handlers load the plan once per request, so a swap never changes a request
/// half-way.
#[derive(Debug)]
pub struct AppState {
    plan: ArcSwap<Plan>,
    /// Backend client and response cache.
    pub exec: Exec,
    /// The rate limiter, whose buckets outlive a plan.
    pub limiter: crate::ratelimit::Limiter,
}

impl AppState {
    /// Wraps a compiled plan; fails only when the rate-limit store's URL cannot be used.
    pub fn new(plan: Plan, exec: Exec) -> Result<Arc<AppState>, String> {
        let limiter = crate::ratelimit::Limiter::new(plan.rate_limits.as_ref(), exec.clock.clone())?;
        crate::metrics::install();
        start_jwks(&plan);
        crate::metrics::config_loaded();
        Ok(Arc::new(AppState {
            plan: ArcSwap::from_pointee(plan),
            exec,
            limiter,
        }))
    }

    /// The plan in force now.
    pub fn plan(&self) -> Arc<Plan> {
        self.plan.load_full()
    }

    /// Replaces the plan for every request that starts from now on.
    pub fn swap(&self, plan: Plan) {
        start_jwks(&plan);
        self.plan.store(Arc::new(plan));
    }
}

/// Starts fetching a plan's JWKS keys in the background (once per URL for the process).
fn start_jwks(plan: &Plan) {
    if let Some(set) = plan.auth.as_ref().and_then(|a| a.verifier.jwks()) {
        set.start();
    }
}
