//! The HTTP client to backends, shared by composition calls and passthrough routes: one pooled
//! client per transport, the circuit breakers, and two ways to call.
//!
//! - `send`: a composition call, buffered (per-attempt timeouts, retries for idempotent methods,
//!   a cap on response bodies, the answer parsed into the shape the plan computed; SPEC §4.2).
//! - `forward`: a passthrough request, streamed both ways (the timeout bounds the wait for the
//!   response headers only; only connect errors of body-less idempotent requests are retried;
//!   SPEC §8).
//!
//! Both go through the service's circuit breaker (SPEC §9). Errors keep the backend URL for the
//! log; they are never shown to clients as they are.

pub mod breaker;
mod h1;
pub mod pool;

use crate::clock::Clock;
use crate::config::model::{CircuitBreakerConfig, Method};
use crate::idle::{BodyIdle, IdleTimeout, Sender};
use axum::body::Body;
use breaker::Breakers;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// `X-Request-Id`: sent to every backend (composition calls and passthrough alike) and answered
/// to every client. A const is built at compile time; `from_static` at run time validates the
/// name on every call.
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Why a backend call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The connection could not be made or broke.
    #[error("could not reach the backend: {0}")]
    Connect(String),
    /// No complete answer within the timeout.
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
    /// A non-2xx status.
    #[error("the backend answered {status}")]
    Status {
        /// The status.
        status: u16,
        /// Its JSON body, when it had one (only ever shown with `errors: pass`).
        body: Option<Arc<Value>>,
    },
    /// The answer was not HTTP/1.1 as RFC 9112 writes it (the reason is Facade's own words).
    #[error("the backend's answer is not valid HTTP/1.1: {0}")]
    InvalidAnswer(&'static str),
    /// The body was not JSON.
    #[error("the backend's answer is not JSON")]
    NotJson,
    /// The body was gzip-compressed, though composition calls ask for `Accept-Encoding:
    /// identity` (a backend may compress when a request names no encoding at all).
    #[error("the backend's answer is gzip-compressed, though Facade asked for `Accept-Encoding: identity`")]
    Compressed,
    /// The body was larger than `limits.upstream_body`.
    #[error("the backend's answer is larger than {0} bytes")]
    TooLarge(u64),
    /// The call was not made because a value it needs is unusable.
    #[error("not made: {0}")]
    NotMade(String),
    /// The service's circuit is open: the call failed at once, without reaching the backend.
    #[error("the circuit of the service is open")]
    CircuitOpen,
}

/// What a client is told of a backend answer that is not HTTP/1.1 (`why` is Facade's own words,
/// never the backend's), for composition calls and passthrough alike.
pub fn invalid_answer_message(why: &str) -> String {
    format!("the backend's answer is not valid HTTP/1.1 ({why})")
}

impl CallError {
    /// Whether the attempt counts against the circuit breaker: connect errors, timeouts and 5xx
    /// (SPEC §9), and an answer that is not HTTP at all (as a 502 from a proxy in front of the
    /// backend would); a 4xx, or an answer that is not JSON, shows the backend is up.
    fn breaks(&self) -> bool {
        matches!(
            self,
            CallError::Connect(_) | CallError::Timeout(_) | CallError::InvalidAnswer(_)
        ) || matches!(self, CallError::Status { status, .. } if *status >= 500)
    }
}

/// Why a forwarded (passthrough) request got no answer from the backend.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The connection could not be made (or broke before the response headers).
    #[error("could not reach the backend: {0}")]
    Connect(String),
    /// No response headers within the timeout.
    #[error("the backend sent no response headers within {0:?}")]
    Timeout(Duration),
    /// The service's circuit is open, for this long still (until a trial may go).
    #[error("the circuit of the service is open")]
    CircuitOpen(Duration),
    /// The answer's head came, but its body broke off before its first bytes.
    #[error("the backend's answer broke off before its body")]
    BrokenAnswer,
    /// The answer was not HTTP/1.1 as RFC 9112 writes it (the reason is Facade's own words).
    #[error("the backend's answer is not valid HTTP/1.1: {0}")]
    InvalidAnswer(&'static str),
    /// The client's request body paused too long while it was being sent: the backend is not
    /// at fault (its circuit breaker does not count it).
    #[error("{0}")]
    ClientBody(BodyIdle),
}

/// Where a passthrough request goes and how.
#[derive(Debug, Clone)]
pub struct ForwardTarget<'a> {
    /// The service's name (its breaker's key).
    pub service: &'a str,
    /// The service URL's `scheme://host[:port]`.
    pub origin: &'a str,
    /// What follows the origin: the service URL's path, the forwarded path and the query.
    pub path_and_query: &'a str,
    /// Bounds the wait for the response headers.
    pub timeout: Duration,
    /// Extra tries on connect errors (idempotent methods without a body only).
    pub retries: u32,
    /// The service's breaker settings.
    pub breaker: Option<&'a CircuitBreakerConfig>,
}

/// One request to a backend, fully built.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: reqwest::Url,
    /// Headers to send.
    pub headers: HeaderMap,
    /// JSON body.
    pub body: Option<Bytes>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Extra tries (idempotent methods only).
    pub retries: u32,
    /// The parts of a successful answer to keep.
    pub shape: Arc<crate::plan::shape::Shape>,
    /// The service's name (its breaker's key).
    pub service: Arc<str>,
    /// The service's breaker settings.
    pub breaker: Option<CircuitBreakerConfig>,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// The parsed body.
    pub body: Arc<Value>,
    /// Its size in bytes (for the cache's weigher).
    pub size: usize,
}

/// The client to backends, shared by every request.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: reqwest::Client,
    plain: Arc<pool::Pools>,
    /// `limits.upstream_body`, changed by a reload.
    body_limit: Arc<std::sync::atomic::AtomicU64>,
    /// Per-service circuit breakers; kept across reloads.
    pub breakers: Arc<Breakers>,
}

/// The metrics outcome of one composition-call attempt.
fn call_outcome(result: &Result<CallResponse, CallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CallError::Status { status, .. }) if *status < 500 => "4xx",
        Err(CallError::Status { .. }) => "5xx",
        Err(CallError::Timeout(_)) => "timeout",
        Err(CallError::Connect(_)) => "connect",
        Err(CallError::CircuitOpen) => "circuit_open",
        Err(
            CallError::NotJson
            | CallError::Compressed
            | CallError::TooLarge(_)
            | CallError::NotMade(_)
            | CallError::InvalidAnswer(_),
        ) => "invalid",
    }
}

impl Upstream {
    /// The largest backend body read for a composition call.
    pub fn body_limit(&self) -> u64 {
        self.body_limit.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Applies a reloaded `limits.upstream_body`.
    pub fn set_body_limit(&self, limit: u64) {
        self.body_limit.store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    /// Builds the pooled clients. Redirects are not followed and proxies from the environment are
    /// ignored: backends are addressed directly.
    ///
    /// Plain-HTTP backends (the usual case inside a cluster) go through Facade's own pools of
    /// hyper connections (`pool`): profiles showed reqwest's per-call layers (its redirect layer
    /// re-parses every URL) as a quarter of the gateway's work per composed request, and
    /// hyper-util's legacy client a seventh of a passthrough request's. HTTPS backends use
    /// reqwest and rustls.
    pub fn new(body_limit: u64, clock: Arc<dyn Clock>) -> Result<Upstream, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        let plain = Arc::new(pool::Pools::new(Duration::from_secs(60), 256));
        Ok(Upstream {
            client,
            plain,
            body_limit: Arc::new(std::sync::atomic::AtomicU64::new(body_limit)),
            breakers: Arc::new(Breakers::new(clock)),
        })
    }

    /// Sends a request, retrying idempotent methods on connect errors and 502/503/504 (never after a
    /// timeout).
    pub async fn send(&self, req: &CallRequest) -> Result<CallResponse, CallError> {
        let mut attempt = 0;
        let breaker = req.breaker.as_ref().map(|cfg| self.breakers.get(&req.service, cfg));
        loop {
            let Ok(permit) = breaker::admit(breaker.as_ref()) else {
                crate::metrics::upstream(&req.service, "circuit_open", None);
                return Err(CallError::CircuitOpen);
            };
            let started = std::time::Instant::now();
            let result = match tokio::time::timeout(req.timeout, self.attempt(req)).await {
                Ok(r) => r,
                Err(_) => Err(CallError::Timeout(req.timeout)),
            };
            let took = started.elapsed();
            crate::metrics::upstream(&req.service, call_outcome(&result), Some(took.as_secs_f64()));
            // One line per backend attempt at debug level, inside the request's span (so it
            // carries the request id): `FACADE_LOG=facade=debug` follows a request through its calls.
            tracing::debug!(
                service = %req.service,
                method = req.method.as_str(),
                path = req.url.path(),
                outcome = call_outcome(&result),
                attempt = attempt + 1,
                latency_ms = (took.as_secs_f64() * 100_000.0).round() / 100.0,
                "backend call"
            );
            if let Some(p) = permit {
                p.record(result.as_ref().err().is_some_and(CallError::breaks));
            }
            if let Some(b) = &breaker {
                crate::metrics::breaker_state(&req.service, b.state() as u8);
            }
            let retryable = match &result {
                Err(CallError::Connect(_)) => true,
                Err(CallError::Status { status, .. }) => matches!(status, 502..=504),
                _ => false,
            };
            if retryable && req.method.idempotent() && attempt < req.retries {
                attempt += 1;
                continue;
            }
            // Details for the operator: the URL and cause go to the log, never to the client.
            if let Err(e) = &result {
                tracing::warn!(url = %req.url, attempts = attempt + 1, error = %e, "backend call failed");
            }
            return result;
        }
    }

    /// One attempt: the status and the body, read up to the limit.
    async fn attempt(&self, req: &CallRequest) -> Result<CallResponse, CallError> {
        let (status, bytes) = if req.url.scheme() == "http" {
            self.exchange_plain(req).await?
        } else {
            // Boxed for the same reason as in `exchange_streaming`.
            Box::pin(self.exchange_reqwest(req)).await?
        };
        answer(status, bytes, req)
    }

    async fn exchange_plain(&self, req: &CallRequest) -> Result<(StatusCode, Vec<u8>), CallError> {
        let (origin, path_and_query) = split_origin(req.url.as_str());
        let uri: http::Uri = path_and_query
            .parse()
            .map_err(|e: http::uri::InvalidUri| CallError::Connect(e.to_string()))?;
        let body = match &req.body {
            Some(bytes) => pool::Outgoing::Full(bytes.clone()),
            None => pool::Outgoing::Empty,
        };
        let mut request = http::Request::new(body);
        *request.method_mut() = http_method(req.method);
        *request.uri_mut() = uri;
        *request.headers_mut() = req.headers.clone();
        if req.body.is_some() {
            request.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        let resp = self
            .plain
            .send(origin, request, pool::Fields::Drop)
            .await
            .map_err(|e| match e {
                pool::PoolError::Invalid(why) => CallError::InvalidAnswer(why),
                e => CallError::Connect(e.to_string()),
            })?;
        read_answer(resp, self.body_limit()).await
    }

    async fn exchange_reqwest(&self, req: &CallRequest) -> Result<(StatusCode, Vec<u8>), CallError> {
        let mut builder = self
            .client
            .request(http_method(req.method), req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            builder = builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = builder.send().await.map_err(|e| CallError::Connect(error_chain(&e)))?;
        read_answer(http::Response::from(resp), self.body_limit()).await
    }
}

impl Upstream {
    /// Forwards a passthrough request and returns the backend's answer with its body still
    /// streaming. `request` carries the method, the headers to send and the client's body; its
    /// URI is replaced by `target.url`.
    pub async fn forward(
        &self,
        target: &ForwardTarget<'_>,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let uri: http::Uri = target
            .path_and_query
            .parse()
            .map_err(|e: http::uri::InvalidUri| ForwardError::Connect(e.to_string()))?;
        parts.uri = uri;
        let has_body = parts.headers.contains_key(http::header::TRANSFER_ENCODING)
            || declared_length(&parts.headers).is_some_and(|n| n > 0);
        let retry_safe = !has_body
            && matches!(
                parts.method,
                http::Method::GET
                    | http::Method::HEAD
                    | http::Method::OPTIONS
                    | http::Method::PUT
                    | http::Method::DELETE
            );
        let breaker = target.breaker.map(|cfg| self.breakers.get(target.service, cfg));
        let mut body = Some(body);
        let mut attempt = 0;
        loop {
            let permit = match breaker::admit(breaker.as_ref()) {
                Ok(permit) => permit,
                Err(wait) => {
                    crate::metrics::upstream(target.service, "circuit_open", None);
                    return Err(ForwardError::CircuitOpen(wait));
                }
            };
            let started = std::time::Instant::now();
            // The head is kept for another attempt only when one can follow.
            let head = if retry_safe && attempt < target.retries {
                let mut copy = http::Request::new(());
                *copy.method_mut() = parts.method.clone();
                *copy.uri_mut() = parts.uri.clone();
                *copy.version_mut() = parts.version;
                *copy.headers_mut() = parts.headers.clone();
                copy.into_parts().0
            } else {
                std::mem::replace(&mut parts, http::Request::new(()).into_parts().0)
            };
            let mut req = http::Request::from_parts(head, body.take().unwrap_or_else(Body::empty));
            *req.extensions_mut() = http::Extensions::new();
            let sent = tokio::time::timeout(
                target.timeout,
                self.exchange_streaming(target.origin, req, target.timeout),
            )
            .await;
            let result = match sent {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ForwardError::Timeout(target.timeout)),
            };
            if let Err(e @ ForwardError::ClientBody(_)) = &result {
                // The client's fault: neither an outcome of the backend nor a breaker failure
                // (an unrecorded permit lets another trial through).
                tracing::info!(service = %target.service, error = %e, "passthrough request abandoned");
                return result;
            }
            let outcome = match &result {
                Ok(resp) if resp.status().is_server_error() => "5xx",
                Ok(resp) if resp.status().is_client_error() => "4xx",
                Ok(_) => "ok",
                Err(ForwardError::Timeout(_)) => "timeout",
                Err(ForwardError::InvalidAnswer(_)) => "invalid",
                Err(_) => "connect",
            };
            let took = started.elapsed();
            crate::metrics::upstream(target.service, outcome, Some(took.as_secs_f64()));
            tracing::debug!(
                service = %target.service,
                outcome,
                attempt = attempt + 1,
                latency_ms = (took.as_secs_f64() * 100_000.0).round() / 100.0,
                "passthrough call"
            );
            if let Some(p) = permit {
                let failed = match &result {
                    Ok(resp) => resp.status().is_server_error(),
                    Err(_) => true,
                };
                p.record(failed);
            }
            if let Some(b) = &breaker {
                crate::metrics::breaker_state(target.service, b.state() as u8);
            }
            if matches!(result, Err(ForwardError::Connect(_))) && retry_safe && attempt < target.retries {
                attempt += 1;
                continue;
            }
            if let Err(e) = &result {
                let url = format!("{}{}", target.origin, target.path_and_query);
                tracing::warn!(url = %url, attempts = attempt + 1, error = %e, "passthrough request failed");
            }
            return result;
        }
    }

    /// One exchange. The answer's body may pause only so long between two reads (as nginx's
    /// `proxy_read_timeout` does), so a backend that stops in the middle of an answer cannot hold
    /// the client's connection for ever: an answer of declared length (a document, a file) for
    /// the service `timeout`, a streamed one (chunked: an event stream, whose events may be
    /// minutes apart) for `STREAM_IDLE`, or the `timeout` when that is longer.
    async fn exchange_streaming(
        &self,
        origin: &str,
        req: http::Request<Body>,
        timeout: Duration,
    ) -> Result<http::Response<Body>, ForwardError> {
        let idle_for = |headers: &HeaderMap| match declared_length(headers) {
            Some(_) => timeout,
            None => timeout.max(STREAM_IDLE),
        };
        if origin.starts_with("http://") {
            let req = req.map(|body| match http_body::Body::is_end_stream(&body) {
                true => pool::Outgoing::Empty,
                false => pool::Outgoing::Stream(body),
            });
            let resp = self
                .plain
                .send(origin, req, pool::Fields::Keep)
                .await
                .map_err(|e| match e {
                    pool::PoolError::ClientBody(idle) => ForwardError::ClientBody(idle),
                    pool::PoolError::Invalid(why) => ForwardError::InvalidAnswer(why),
                    e => ForwardError::Connect(e.to_string()),
                })?;
            let idle = idle_for(resp.headers());
            return Ok(resp.map(|b| watched(b, idle)));
        }
        let (parts, body) = req.into_parts();
        let url =
            reqwest::Url::parse(&format!("{origin}{}", parts.uri)).map_err(|e| ForwardError::Connect(e.to_string()))?;
        // Boxed: reqwest's future is large, and plain-HTTP requests should not carry its room.
        let sent = Box::pin(
            self.client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(reqwest::Body::wrap_stream(body.into_data_stream()))
                .send(),
        );
        let resp = sent.await.map_err(|e| match crate::idle::idle_cause(&e) {
            Some(idle) => ForwardError::ClientBody(idle.clone()),
            None => ForwardError::Connect(error_chain(&e)),
        })?;
        let resp = http::Response::from(resp);
        let idle = idle_for(resp.headers());
        Ok(resp.map(|b| watched(b, idle)))
    }
}

/// How long a streamed passthrough answer (no declared length) may pause between two reads:
/// Envoy's default stream idle timeout.
pub const STREAM_IDLE: Duration = Duration::from_secs(300);

/// A backend's answer body that may pause at most `idle` between two reads.
fn watched<B>(body: B, idle: Duration) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Body::new(IdleTimeout::new(body, idle, Sender::Backend))
}

/// Splits an absolute URL into its origin (`scheme://authority`) and what follows it, without
/// the fragment (`http://h:1/a?b#c` → `http://h:1`, `/a?b`).
fn split_origin(url: &str) -> (&str, &str) {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?']) {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, "/"),
    }
}

fn http_method(m: Method) -> http::Method {
    match m {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Patch => http::Method::PATCH,
        Method::Delete => http::Method::DELETE,
    }
}

/// Turns a status and body into the call's result: non-2xx is a failure (keeping a JSON body for
/// `errors: pass`), an empty 2xx body is `null`, anything else must be JSON.
fn answer(status: StatusCode, bytes: Vec<u8>, req: &CallRequest) -> Result<CallResponse, CallError> {
    if !status.is_success() {
        let body = serde_json::from_slice::<Value>(&bytes).ok().map(Arc::new);
        return Err(CallError::Status {
            status: status.as_u16(),
            body,
        });
    }
    let size = bytes.len();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CallResponse {
            body: Arc::new(Value::Null),
            size,
        });
    }
    let body = crate::plan::shape::parse(&bytes, &req.shape).map_err(|_| {
        // No JSON text starts with gzip's magic bytes.
        if bytes.starts_with(&[0x1f, 0x8b]) {
            CallError::Compressed
        } else {
            CallError::NotJson
        }
    })?;
    Ok(CallResponse {
        body: Arc::new(body),
        size,
    })
}
/// The status and the body of an answer, refusing bodies above `limit` (declared or streamed).
/// Both transports' answers are read here.
async fn read_answer<B>(resp: http::Response<B>, limit: u64) -> Result<(StatusCode, Vec<u8>), CallError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + 'static,
{
    use http_body_util::BodyExt;
    let status = resp.status();
    // Facade's own connections give a composition call no header fields: the body's size hint
    // carries its declared length.
    let declared = declared_length(resp.headers()).or_else(|| resp.body().size_hint().exact());
    if declared.is_some_and(|len| len > limit) {
        return Err(CallError::TooLarge(limit));
    }
    let mut body = resp.into_body();
    let mut out = Vec::with_capacity(declared.unwrap_or(1024).min(limit) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(
                |e| match (&e as &(dyn std::error::Error + 'static)).downcast_ref::<pool::BodyError>() {
                    Some(pool::BodyError::H1(h1::H1Error::Invalid(why))) => CallError::InvalidAnswer(why),
                    _ => CallError::Connect(error_chain(&e)),
                },
            )?;
        if let Ok(chunk) = frame.into_data() {
            if out.len() as u64 + chunk.len() as u64 > limit {
                return Err(CallError::TooLarge(limit));
            }
            out.extend_from_slice(&chunk);
        }
    }
    Ok((status, out))
}

/// The body length a message declares in `Content-Length`, when it declares a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
