//! Prometheus metrics (SPEC §9), through the `metrics` crate and its Prometheus exporter (render
//! only: `/metrics` is one of Facade's own routes). Histograms have buckets. Every name and label
//! is part of the contract, listed in docs/operations.md. Labels are bounded: `route` is the
//! configured endpoint path, passthrough prefix, `graphql.path` or operations path — never the
//! raw URL — or `unmatched`.
//!
//! Until `install` runs (the server does, at start), recording is a no-op.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder, once (later calls, and a process that already has another
/// recorder, keep what is there).
pub fn install() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
        builder.install_recorder().ok()
    });
}

/// The Prometheus text of every metric so far (empty before `install`).
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}

/// One answered request.
pub fn request(route: &str, method: &str, status: u16, seconds: f64) {
    metrics::counter!(
        "facade_http_requests_total",
        "route" => route.to_string(),
        "method" => method.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "facade_http_request_duration_seconds",
        "route" => route.to_string(),
        "method" => method.to_string()
    )
    .record(seconds);
}

/// One attempt at a backend: `ok`, `4xx`, `5xx`, `timeout`, `connect`, `circuit_open`,
/// `invalid` (not JSON, or too large).
pub fn upstream(service: &str, outcome: &'static str, seconds: Option<f64>) {
    metrics::counter!("facade_upstream_requests_total", "service" => service.to_string(), "outcome" => outcome)
        .increment(1);
    if let Some(s) = seconds {
        metrics::histogram!("facade_upstream_request_duration_seconds", "service" => service.to_string()).record(s);
    }
}

/// One rate-limit decision: `allowed`, `limited` or `store_error`.
pub fn rate_limit(policy: &str, result: &'static str) {
    metrics::counter!("facade_rate_limit_decisions_total", "policy" => policy.to_string(), "result" => result)
        .increment(1);
}

/// One response-cache lookup: `hit` or `miss`.
pub fn cache(result: &'static str) {
    metrics::counter!("facade_cache_requests_total", "result" => result).increment(1);
}

/// A circuit breaker's state: 0 closed, 1 open, 2 half-open.
pub fn breaker_state(service: &str, state: u8) {
    metrics::gauge!("facade_circuit_breaker_state", "service" => service.to_string()).set(f64::from(state));
}

/// One reload: `success` or `failure`.
pub fn reload(result: &'static str) {
    metrics::counter!("facade_config_reloads_total", "result" => result).increment(1);
}

/// A configuration was loaded now (at start, and at each successful reload).
pub fn config_loaded() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("facade_config_loaded_timestamp_seconds").set(now);
}
