//! Keep-alive HTTP/1.1 connections to plain-HTTP backends: one small pool per origin, shared by
//! composition calls and passthrough routes.
//!
//! Why not hyper-util's legacy client: for every request it hashed the pool key with SipHash
//! three times, built a lazy connect future, re-derived the `Host` header from the URI and, because
//! the response body was still streaming when the response headers arrived, spawned one more task
//! per request that waited for the connection to become idle again. Here the connection goes back
//! to its pool when the response body has been read to its end (`PooledBody`), in the task that
//! read it, and a checkout is a lock and a pop.
//!
//! Each worker thread of the server (`server`) has its own share of every origin's idle
//! connections, as each nginx worker has its own keep-alive cache: a connection's task runs on the
//! thread that opened it, so a request that took a connection opened by another thread would wake
//! that thread twice per exchange.
//!
//! What stays as the legacy client did it: connections are made by hyper-util's `HttpConnector`
//! (DNS, `TCP_NODELAY`), a request that a reused connection could not even start (the backend
//! closed it while idle) is sent again on another one, idle connections expire after a while,
//! and a response abandoned before its end closes its connection instead of returning it.

use axum::body::Body;
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why a request got no response from the backend.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The origin is not `http://host[:port]`.
    #[error("invalid backend origin `{0}`")]
    Origin(String),
    /// No connection could be made.
    #[error("tcp connect error: {0}")]
    Connect(String),
    /// The connection failed before a complete response head arrived.
    #[error("request failed: {0}")]
    Request(String),
    /// The request's body (a client's upload) paused too long while it was being sent.
    #[error("{0}")]
    ClientBody(crate::idle::BodyIdle),
}

/// Shares of an origin's idle connections; worker threads beyond this many share a share.
const SHARES: usize = 16;

thread_local! {
    /// The server worker this thread is (0: the thread that accepts, and any other thread).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as server worker `index`: it takes and returns idle connections in
/// its own share of each pool.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

fn share() -> usize {
    WORKER.with(|w| w.get()) % SHARES
}

/// The pools, one per origin (`http://host:port`), made on first use.
#[derive(Debug)]
pub struct Pools {
    origins: RwLock<FxHashMap<Box<str>, Arc<Origin>>>,
    connector: HttpConnector,
    idle_timeout: Duration,
    max_idle: usize,
}

/// One origin's idle connections.
#[derive(Debug)]
struct Origin {
    /// What the connector is given: `http://host:port`.
    connect: Uri,
    /// The `Host` header of requests that carry none (the port only when it is not 80).
    host: HeaderValue,
    /// Indexed by `share()`.
    idle: [Mutex<VecDeque<Idle>>; SHARES],
    idle_timeout: Duration,
    max_idle: usize,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Pools {
    /// Pools keeping at most `max_idle` idle connections per origin and worker thread, each for at most
    /// `idle_timeout`.
    pub fn new(idle_timeout: Duration, max_idle: usize) -> Pools {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Pools {
            origins: RwLock::new(FxHashMap::default()),
            connector,
            idle_timeout,
            max_idle,
        }
    }

    /// Sends `req` (its URI in origin-form: path and query) to `origin` and returns the response
    /// with its body still streaming. A `Host` header is added when the request has none.
    pub async fn send(&self, origin: &str, mut req: Request<Body>) -> Result<Response<PooledBody>, PoolError> {
        let pool = self.origin(origin)?;
        if !req.headers().contains_key(HOST) {
            req.headers_mut().insert(HOST, pool.host.clone());
        }
        loop {
            let (mut sender, reused) = match pool.checkout() {
                Some(mut sender) => {
                    // Put back as soon as its response body ended; the connection may still be
                    // finishing that response for a moment.
                    if !sender.is_ready() && sender.ready().await.is_err() {
                        continue;
                    }
                    (sender, true)
                }
                None => (self.connect(&pool).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    return Ok(resp.map(|body| PooledBody {
                        inner: body,
                        slot: Some((sender, pool)),
                    }))
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the backend had closed the idle connection. Another one.
                    Some(unsent) if reused => req = unsent,
                    _ => {
                        let e = e.into_error();
                        return Err(match crate::idle::idle_cause(&e) {
                            Some(idle) => PoolError::ClientBody(idle.clone()),
                            None => PoolError::Request(super::error_chain(&e)),
                        });
                    }
                },
            }
        }
    }

    fn origin(&self, origin: &str) -> Result<Arc<Origin>, PoolError> {
        if let Some(found) = self.origins.read().unwrap_or_else(|p| p.into_inner()).get(origin) {
            return Ok(found.clone());
        }
        let made = Arc::new(Origin::new(origin, self.idle_timeout, self.max_idle)?);
        let mut origins = self.origins.write().unwrap_or_else(|p| p.into_inner());
        Ok(origins.entry(origin.into()).or_insert(made).clone())
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Body>, PoolError> {
        let io = tower::ServiceExt::oneshot(self.connector.clone(), origin.connect.clone())
            .await
            .map_err(|e| PoolError::Connect(super::error_chain(&e)))?;
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|e| PoolError::Connect(super::error_chain(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("backend connection closed with an error: {e}");
            }
        });
        Ok(sender)
    }
}

impl Origin {
    fn new(origin: &str, idle_timeout: Duration, max_idle: usize) -> Result<Origin, PoolError> {
        let invalid = || PoolError::Origin(origin.to_string());
        let connect: Uri = origin.parse().map_err(|_| invalid())?;
        if connect.scheme_str() != Some("http") {
            return Err(invalid());
        }
        let host = connect.host().ok_or_else(invalid)?;
        let host = match connect.port_u16() {
            Some(port) if port != 80 => HeaderValue::from_str(&format!("{host}:{port}")),
            _ => HeaderValue::from_str(host),
        }
        .map_err(|_| invalid())?;
        Ok(Origin {
            connect,
            host,
            idle: std::array::from_fn(|_| Mutex::new(VecDeque::new())),
            idle_timeout,
            max_idle,
        })
    }

    /// The most recently used connection that is still open and not expired.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle[share()].lock().unwrap_or_else(|p| p.into_inner());
        while let Some(entry) = idle.pop_back() {
            if !entry.sender.is_closed() && entry.since.elapsed() < self.idle_timeout {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Returns a connection whose response was read to its end.
    fn put(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle[share()].lock().unwrap_or_else(|p| p.into_inner());
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= self.idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle { sender, since: now });
    }
}

/// A backend's response body that returns its connection to the pool once read to its end. A
/// body dropped before its end takes the connection with it (hyper then closes it: the rest of
/// that response would be in the way of the next one).
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    slot: Option<(SendRequest<Body>, Arc<Origin>)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((sender, origin)) = self.slot.take() {
            origin.put(sender);
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left (no body at all, or one whose reader stopped at its
        // `is_end_stream`) still returns its connection.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
