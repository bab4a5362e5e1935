//! Prometheus metrics (SPEC §9), through the `metrics` crate and its Prometheus exporter (render
//! only: `/metrics` is one of Facade's own routes). Histograms have buckets. Every name and label
//! is part of the contract, listed in docs/operations.md. Labels are bounded: `route` is the
//! configured endpoint path, passthrough prefix, `graphql.path` or operations path — never the
//! raw URL — or `unmatched`.
//!
//! Until `install` runs (the server does, at start), recording is a no-op.

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;
use std::time::Duration;

/// Latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the histograms' recorded samples are folded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's recorder, once (later calls, and a process that already has another
/// recorder, keep what is there).
pub fn install() {
    install_with_upkeep(UPKEEP_EVERY);
}

/// `install`, folding the histograms' samples into their buckets every `every`.
///
/// Why the fold: the exporter keeps every recorded histogram sample in a list until something
/// drains it, and only `render` (a scrape of `/metrics`) or `run_upkeep` does. The builder's
/// `install_recorder` starts no upkeep of its own, so a gateway nobody scraped kept 16 bytes (the
/// value and when it was recorded) per request and per backend call for ever: measured, 23 MiB
/// in 20 s of `/mobile/api/home` at 12 k requests a second, about 4 GiB an hour. A plain thread
/// does it, so it runs whatever runtime (or none) the caller has.
pub fn install_with_upkeep(every: Duration) {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
        let handle = builder.install_recorder().ok()?;
        let upkept = handle.clone();
        let started = std::thread::Builder::new()
            .name("facade-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                upkept.run_upkeep();
            });
        if let Err(e) = started {
            tracing::warn!("cannot start the metrics upkeep thread ({e}): histogram samples are folded only when /metrics is scraped");
        }
        Some(handle)
    });
}

/// The Prometheus text of every metric so far (empty before `install`).
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}

/// Handles already registered, per thread, keyed by the metric's labels joined by NUL.
///
/// Why: building the labels' `String`s and looking the key up in the recorder's registry was a
/// few thousand instructions per metric, several times per request; a handle found here is one
/// small hash lookup. Only handles of the installed recorder are kept (before `install`, handles
/// are no-ops and must not be remembered). Labels are bounded (see the module's note), so each
/// map stays small.
struct Handles<V> {
    key: String,
    map: HashMap<Box<str>, V, BuildHasherDefault<rustc_hash::FxHasher>>,
}

impl<V> Default for Handles<V> {
    fn default() -> Self {
        Handles {
            key: String::new(),
            map: HashMap::default(),
        }
    }
}

thread_local! {
    static REQUESTS: RefCell<Handles<(Counter, Histogram)>> = RefCell::default();
    static UPSTREAM: RefCell<Handles<Counter>> = RefCell::default();
    static UPSTREAM_TIME: RefCell<Handles<Histogram>> = RefCell::default();
    static BREAKERS: RefCell<Handles<Gauge>> = RefCell::default();
    static DECISIONS: RefCell<Handles<Counter>> = RefCell::default();
}

fn installed() -> bool {
    matches!(HANDLE.get(), Some(Some(_)))
}

/// Runs `record` on the handle for `labels`, registering it with `make` the first time.
fn with_handle<V>(
    cache: &'static std::thread::LocalKey<RefCell<Handles<V>>>,
    labels: &[&str],
    make: impl FnOnce() -> V,
    record: impl FnOnce(&V),
) {
    if !installed() {
        return record(&make());
    }
    cache.with(|cell| {
        let Ok(mut handles) = cell.try_borrow_mut() else {
            return record(&make());
        };
        let handles = &mut *handles;
        handles.key.clear();
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                handles.key.push('\0');
            }
            handles.key.push_str(label);
        }
        if let Some(v) = handles.map.get(handles.key.as_str()) {
            return record(v);
        }
        let v = make();
        record(&v);
        handles.map.insert(handles.key.as_str().into(), v);
    });
}

/// The method as a label: the standard methods by name, anything else `other`, so a client
/// sending made-up methods cannot create series without bound.
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "CONNECT" | "TRACE" => method,
        _ => "other",
    }
}

/// One answered request.
pub fn request(route: &str, method: &str, status: u16, seconds: f64) {
    let method = method_label(method);
    let mut digits = itoa::Buffer::new();
    let status = digits.format(status);
    with_handle(
        &REQUESTS,
        &[route, method, status],
        || {
            let counter = metrics::counter!(
                "facade_http_requests_total",
                "route" => route.to_string(),
                "method" => method.to_string(),
                "status" => status.to_string()
            );
            let histogram = metrics::histogram!(
                "facade_http_request_duration_seconds",
                "route" => route.to_string(),
                "method" => method.to_string()
            );
            (counter, histogram)
        },
        |(counter, histogram)| {
            counter.increment(1);
            histogram.record(seconds);
        },
    );
}

/// One attempt at a backend: `ok`, `4xx`, `5xx`, `timeout`, `connect`, `circuit_open`,
/// `invalid` (not JSON, or too large).
pub fn upstream(service: &str, outcome: &'static str, seconds: Option<f64>) {
    with_handle(
        &UPSTREAM,
        &[service, outcome],
        || metrics::counter!("facade_upstream_requests_total", "service" => service.to_string(), "outcome" => outcome),
        |c| c.increment(1),
    );
    if let Some(s) = seconds {
        with_handle(
            &UPSTREAM_TIME,
            &[service],
            || metrics::histogram!("facade_upstream_request_duration_seconds", "service" => service.to_string()),
            |h| h.record(s),
        );
    }
}

/// One rate-limit decision: `allowed`, `limited` or `store_error`.
pub fn rate_limit(policy: &str, result: &'static str) {
    with_handle(
        &DECISIONS,
        &[policy, result],
        || metrics::counter!("facade_rate_limit_decisions_total", "policy" => policy.to_string(), "result" => result),
        |c| c.increment(1),
    );
}

/// One response-cache lookup: `hit` or `miss`.
pub fn cache(result: &'static str) {
    metrics::counter!("facade_cache_requests_total", "result" => result).increment(1);
}

/// A circuit breaker's state: 0 closed, 1 open, 2 half-open.
pub fn breaker_state(service: &str, state: u8) {
    with_handle(
        &BREAKERS,
        &[service],
        || metrics::gauge!("facade_circuit_breaker_state", "service" => service.to_string()),
        |g| g.set(f64::from(state)),
    );
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

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("FOO"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
