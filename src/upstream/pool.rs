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
//! Two kinds of connection are kept: Facade's own HTTP/1.1 connections (`h1`), read and written by
//! the request's task, for requests without a body or with one already in memory (composition
//! calls, most passthrough requests); and hyper client connections for a client's streamed upload,
//! which hyper writes while it reads an early answer.
//!
//! What stays as the legacy client did it: connections are made by hyper-util's `HttpConnector`
//! (DNS, `TCP_NODELAY`), a request that a reused connection could not even start (the backend
//! closed it while idle) is sent again on another one, idle connections expire after a while,
//! and a response abandoned before its end closes its connection instead of returning it.

use super::h1::{self, BodyState, Conn, H1Error, Step};
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
    /// The backend answered with something that is not HTTP/1.1 as RFC 9112 writes it (a head
    /// above 400 KiB, more than 100 header fields, a malformed line).
    #[error("the backend's answer is not valid HTTP/1.1: {0}")]
    Invalid(&'static str),
}

/// What a request sends after its head.
#[derive(Debug)]
pub enum Outgoing {
    /// Nothing.
    Empty,
    /// A body already in memory (a composition call's JSON).
    Full(Bytes),
    /// A client's body, streamed as it comes.
    Stream(Body),
}

/// Whether the caller reads the answer's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// A proxy passes them on.
    Keep,
    /// A composition call reads the status and the body alone (and the body's length from its
    /// size hint): the fields are not put into a header map at all. Only Facade's own
    /// connections drop them.
    Drop,
}

/// Why a backend's answer body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    H1(#[from] H1Error),
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
    /// hyper connections (streamed uploads).
    idle: IdleSet<SendRequest<Body>>,
    /// Facade's own connections (everything else).
    idle_h1: IdleSet<Box<Conn>>,
    idle_timeout: Duration,
    max_idle: usize,
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
    pub async fn send(
        &self,
        origin: &str,
        req: Request<Outgoing>,
        fields: Fields,
    ) -> Result<Response<PooledBody>, PoolError> {
        let pool = self.origin(origin)?;
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, pool.host.clone());
        }
        match body {
            Outgoing::Empty => self.send_h1(&pool, &parts, None, fields).await,
            Outgoing::Full(bytes) if bytes.is_empty() => self.send_h1(&pool, &parts, None, fields).await,
            Outgoing::Full(bytes) => self.send_h1(&pool, &parts, Some(&bytes), fields).await,
            Outgoing::Stream(body) => self.send_hyper(&pool, Request::from_parts(parts, body)).await,
        }
    }

    /// One exchange on Facade's own connections: the head and the body in one write.
    async fn send_h1(
        &self,
        pool: &Arc<Origin>,
        parts: &http::request::Parts,
        body: Option<&Bytes>,
        fields: Fields,
    ) -> Result<Response<PooledBody>, PoolError> {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut wire = Vec::new();
        h1::encode_head(
            &parts.method,
            target,
            &parts.headers,
            body.map_or(0, Bytes::len),
            &mut wire,
        );
        if let Some(body) = body {
            wire.extend_from_slice(body);
        }
        loop {
            let (mut conn, reused) = match pool.checkout_h1() {
                Some(conn) => (conn, true),
                None => (self.connect_h1(pool).await?, false),
            };
            let written = conn.write_request(&wire).await;
            let answered = match written {
                Ok(()) => conn.read_head(&parts.method, fields == Fields::Keep).await,
                // The backend had closed the idle connection: nothing of the request was taken.
                Err(_) if reused => continue,
                Err(e) => Err(H1Error::Io(e)),
            };
            match answered {
                Ok((head, state)) => {
                    return Ok(Response::from_parts(head, PooledBody::h1(conn, state, pool.clone())));
                }
                // Closed as the request arrived (a backend's keep-alive timeout ran out): nothing
                // was answered, and a request that is safe to repeat goes on another connection.
                // Any other one may have been acted on, and fails (as nginx's
                // `proxy_next_upstream` does not repeat a non-idempotent request).
                Err(H1Error::Closed | H1Error::Io(_)) if reused && conn.nothing_read() && idempotent(&parts.method) => {
                    continue
                }
                Err(H1Error::Invalid(why)) => return Err(PoolError::Invalid(why)),
                Err(e) => return Err(PoolError::Request(e.to_string())),
            }
        }
    }

    /// One exchange on a hyper connection, which streams the request's body.
    async fn send_hyper(&self, pool: &Arc<Origin>, mut req: Request<Body>) -> Result<Response<PooledBody>, PoolError> {
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
                None => (self.connect(pool).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    return Ok(resp.map(|body| PooledBody {
                        inner: Inner::Hyper {
                            body,
                            slot: Some((sender, pool.clone())),
                        },
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

    async fn connect_h1(&self, origin: &Origin) -> Result<Box<Conn>, PoolError> {
        let io = tower::ServiceExt::oneshot(self.connector.clone(), origin.connect.clone())
            .await
            .map_err(|e| PoolError::Connect(super::error_chain(&e)))?;
        Ok(Box::new(Conn::new(io.into_inner())))
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
            idle: IdleSet::new(),
            idle_h1: IdleSet::new(),
            idle_timeout,
            max_idle,
        })
    }

    /// The most recently used hyper connection that is still open and not expired.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        self.idle.take(self.idle_timeout, |sender| !sender.is_closed())
    }

    /// The most recently used own connection that the backend has not closed and is not expired.
    fn checkout_h1(&self) -> Option<Box<Conn>> {
        self.idle_h1.take(self.idle_timeout, |conn| !conn.is_stale())
    }

    /// Returns an own connection whose response was read to its end.
    fn put_h1(&self, conn: Box<Conn>) {
        self.idle_h1.put(conn, self.idle_timeout, self.max_idle);
    }

    /// Returns a hyper connection whose response was read to its end.
    fn put(&self, sender: SendRequest<Body>) {
        if !sender.is_closed() {
            self.idle.put(sender, self.idle_timeout, self.max_idle);
        }
    }
}

/// One kind of an origin's idle connections, newest last, in one share per worker thread.
#[derive(Debug)]
struct IdleSet<T> {
    shares: [Mutex<VecDeque<(T, Instant)>>; SHARES],
}

impl<T> IdleSet<T> {
    fn new() -> IdleSet<T> {
        IdleSet {
            shares: std::array::from_fn(|_| Mutex::new(VecDeque::new())),
        }
    }

    /// The newest connection of this thread's share that is `usable` and younger than
    /// `idle_timeout`; the others met on the way are dropped (closed).
    fn take(&self, idle_timeout: Duration, usable: impl Fn(&T) -> bool) -> Option<T> {
        let mut idle = self.shares[share()].lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop_back() {
            if since.elapsed() < idle_timeout && usable(&conn) {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn`, dropping expired ones and, beyond `max_idle`, the oldest.
    fn put(&self, conn: T, idle_timeout: Duration, max_idle: usize) {
        let now = Instant::now();
        let mut idle = self.shares[share()].lock().unwrap_or_else(|p| p.into_inner());
        while idle
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) >= idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() >= max_idle {
            idle.pop_front();
        }
        idle.push_back((conn, now));
    }
}

/// Whether a method may be sent twice with the same effect (RFC 9110 §9.2.2).
fn idempotent(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    )
}

/// A backend's response body that returns its connection to the pool once read to its end. A
/// body dropped before its end takes the connection with it (it is closed: the rest of that
/// response would be in the way of the next one).
#[derive(Debug)]
pub struct PooledBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Hyper {
        body: Incoming,
        slot: Option<(SendRequest<Body>, Arc<Origin>)>,
    },
    H1 {
        /// `None` once the body ended or failed.
        conn: Option<Box<Conn>>,
        state: BodyState,
        origin: Arc<Origin>,
    },
}

impl PooledBody {
    fn h1(conn: Box<Conn>, state: BodyState, origin: Arc<Origin>) -> PooledBody {
        PooledBody {
            inner: Inner::H1 {
                conn: Some(conn),
                state,
                origin,
            },
        }
    }

    fn release(&mut self) {
        match &mut self.inner {
            Inner::Hyper { slot, .. } => {
                if let Some((sender, origin)) = slot.take() {
                    origin.put(sender);
                }
            }
            Inner::H1 { conn, state, origin } => {
                if let Some(conn) = conn.take() {
                    if state.reusable(&conn) {
                        origin.put_h1(conn);
                    }
                }
            }
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Hyper { body, .. } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                let ended = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    _ => false,
                };
                if ended {
                    this.release();
                }
                polled.map(|frame| frame.map(|f| f.map_err(BodyError::from)))
            }
            Inner::H1 { conn, state, .. } => {
                let Some(open) = conn.as_mut() else {
                    return Poll::Ready(None);
                };
                match state.poll_step(open, cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(Step::Data(data))) => {
                        if state.is_end() {
                            this.release();
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Poll::Ready(Ok(Step::End)) => {
                        this.release();
                        Poll::Ready(None)
                    }
                    Poll::Ready(Err(e)) => {
                        *conn = None;
                        Poll::Ready(Some(Err(BodyError::H1(e))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Hyper { body, .. } => body.is_end_stream(),
            Inner::H1 { conn, state, .. } => conn.is_none() || state.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Hyper { body, .. } => body.size_hint(),
            Inner::H1 { conn, state, .. } => match (conn, state.remaining()) {
                (None, _) => SizeHint::with_exact(0),
                (Some(_), Some(n)) => SizeHint::with_exact(n),
                (Some(_), None) => SizeHint::default(),
            },
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left (no body at all, or one whose reader stopped at its
        // `is_end_stream`) still returns its connection.
        if self.is_end_stream() {
            self.release();
        }
    }
}
