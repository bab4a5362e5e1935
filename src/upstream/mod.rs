//! The HTTP client to backends: one pooled `reqwest` client, per-attempt timeouts, retries for
//! idempotent methods, and a cap on response bodies (SPEC §4.2).
//!
//! Errors keep the backend URL for the log; they are never shown to clients as they are.

use crate::config::model::Method;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

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
    /// The body was not JSON.
    #[error("the backend's answer is not JSON")]
    NotJson,
    /// The body was larger than `limits.upstream_body`.
    #[error("the backend's answer is larger than {0} bytes")]
    TooLarge(u64),
    /// The call was not made because a value it needs is unusable.
    #[error("not made: {0}")]
    NotMade(String),
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
    body_limit: u64,
}

impl Upstream {
    /// Builds the pooled client. Redirects are not followed and proxies from the environment are
    /// ignored: backends are addressed directly.
    pub fn new(body_limit: u64) -> Result<Upstream, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Upstream { client, body_limit })
    }

    /// Sends a request, retrying idempotent methods on connect errors and 502/503/504 (never after a
    /// timeout).
    pub async fn send(&self, req: &CallRequest) -> Result<CallResponse, CallError> {
        let mut attempt = 0;
        loop {
            let result = self.attempt(req).await;
            let retryable = match &result {
                Err(CallError::Connect(_)) => true,
                Err(CallError::Status { status, .. }) => matches!(status, 502..=504),
                _ => false,
            };
            if retryable && req.method.idempotent() && attempt < req.retries {
                attempt += 1;
                continue;
            }
            return result;
        }
    }

    async fn attempt(&self, req: &CallRequest) -> Result<CallResponse, CallError> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .client
            .request(method, req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            builder = builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let work = async {
            let resp = builder.send().await.map_err(|e| CallError::Connect(error_chain(&e)))?;
            let status = resp.status();
            if let Some(len) = resp.content_length() {
                if len > self.body_limit {
                    return Err(CallError::TooLarge(self.body_limit));
                }
            }
            let bytes = read_limited(resp, self.body_limit).await?;
            if !status.is_success() {
                let body = serde_json::from_slice::<Value>(&bytes).ok().map(Arc::new);
                return Err(CallError::Status {
                    status: status.as_u16(),
                    body,
                });
            }
            let size = bytes.len();
            if bytes.iter().all(u8::is_ascii_whitespace) && (status == StatusCode::NO_CONTENT || bytes.is_empty()) {
                return Ok(CallResponse {
                    body: Arc::new(Value::Null),
                    size,
                });
            }
            let body = crate::plan::shape::parse(&bytes, &req.shape).map_err(|_| CallError::NotJson)?;
            Ok(CallResponse {
                body: Arc::new(body),
                size,
            })
        };
        match tokio::time::timeout(req.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(req.timeout)),
        }
    }
}

async fn read_limited(resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, CallError> {
    let mut out = Vec::with_capacity(resp.content_length().unwrap_or(1024).min(limit) as usize);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CallError::Connect(error_chain(&e)))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(CallError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
