//! Serving: binds nothing itself (tests pass a listener bound to `127.0.0.1:0`), runs its own
//! accept loop over hyper-util's `auto` builder (HTTP/1.1 and h2c), and on shutdown stops
//! accepting and lets in-flight requests finish (up to 30 s).
//!
//! Why not `axum::serve`: it fixes hyper's builder, so there would be no header read timeout
//! (a client that never finishes its headers would hold a connection forever), at most 100
//! headers, and bare 431s. Here the parser's own limits sit at four times
//! `limits.request_headers`, so below that cap the pipeline's JSON 431 answers (see `front`);
//! only past it does hyper's bare 431 and a close stand in.
//!
//! Why one single-threaded runtime per worker thread, as nginx has one process per core: a
//! proxied request is two tasks (the client's connection and the backend's) handing it to each
//! other four times. On tokio's work-stealing runtime the two sat on different threads, so every
//! hand-over woke a thread on the other core: 0.8 context switches per passthrough request,
//! against nginx's 0.36, and a third of its CPU in the scheduler. Here a client connection is
//! handed to one worker when it is accepted (round robin) and stays there, with every backend
//! connection it takes from that worker's own share of the pool (`upstream::pool`).

use crate::state::AppState;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The most header fields a request may have (more: hyper's own 431, and the connection closes).
pub const MAX_REQUEST_HEADERS: usize = 100;

/// How long a request body may pause between two reads: nginx's `client_body_timeout`.
pub const CLIENT_BODY_IDLE: Duration = Duration::from_secs(60);

/// How long a write to a client may wait for the client to read: nginx's `send_timeout`.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an HTTP/2 connection may stay open with no request: nginx's `keepalive_timeout`.
pub const H2_IDLE: Duration = Duration::from_secs(75);

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// How the connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A client must send its whole request head within this time.
    pub header_read_timeout: Duration,
    /// A request body may pause at most this long between two reads (`crate::idle`).
    pub body_idle_timeout: Duration,
    /// A write to a client may wait at most this long for the client to read.
    pub send_timeout: Duration,
    /// An HTTP/2 connection with no request in flight for this long is closed (gracefully).
    pub h2_idle_timeout: Duration,
    /// `limits.request_headers`: the parser's hard caps are set from it.
    pub request_headers: u64,
    /// Threads serving connections, the calling one included. With more than one, the others
    /// each run a single-threaded runtime of their own; with one, everything runs on the caller's
    /// runtime (what the tests do).
    pub workers: usize,
}

impl ServeOptions {
    /// The options for a plan's limits, with a 10 s header read timeout, on the caller's runtime
    /// alone.
    pub fn for_state(state: &AppState) -> ServeOptions {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: CLIENT_BODY_IDLE,
            send_timeout: SEND_TIMEOUT,
            h2_idle_timeout: H2_IDLE,
            request_headers: state.plan().limits.request_headers,
            workers: 1,
        }
    }
}

/// How many worker threads `facade serve` runs: `TOKIO_WORKER_THREADS` when it is a positive
/// number (the variable tokio's own runtimes read), else two per CPU.
///
/// Why two: with one per CPU, a machine whose CPUs Facade shares with other busy processes (its
/// backends, a sidecar, the load generator of a benchmark) saw every worker sleep and wake about
/// once per proxied request, the workers filling the CPUs in turns with the processes they wait
/// for: 2 workers on 2 CPUs spent 45 µs of CPU per passthrough request and 1.0 context switches,
/// 4 workers 34 µs and 0.4 (+35 % req/s in alternating runs; composed endpoints and GraphQL the
/// same within noise). Where Facade has the CPUs to itself, the second worker per CPU costs a
/// time slice switch every few milliseconds under full load, nothing per request.
pub fn worker_count() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Serves until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = ServeOptions::for_state(&state);
    serve_with(listener, state, shutdown, options).await
}

/// Serves with explicit options until `shutdown` completes, then drains.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let conns = Arc::new(Connections {
        builder: builder(&options),
        state,
        options,
    });
    let workers = Workers::start(options.workers.saturating_sub(1))?;
    let (stop, drain) = Drain::new();
    let mut next = 0usize;
    let mut outage = AcceptOutage::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    outage.end();
                    a
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    outage.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Responses are written whole; Nagle's algorithm would only add delay.
        let _ = stream.set_nodelay(true);
        let connection_drain = drain.clone();
        // Round robin: this thread is turn 0, each worker thread one more.
        let turn = next % (workers.handles.len() + 1);
        next = next.wrapping_add(1);
        match turn.checked_sub(1).and_then(|i| workers.handles.get(i)) {
            None => conns.clone().spawn(stream, peer, connection_drain),
            Some(worker) => match stream.into_std() {
                Ok(std) => {
                    let conns = conns.clone();
                    worker.spawn(async move {
                        // Registered with the worker's own reactor, so its readiness wakes
                        // the worker's thread only.
                        match TcpStream::from_std(std) {
                            Ok(stream) => conns.spawn(stream, peer, connection_drain),
                            Err(e) => tracing::debug!("cannot hand a connection to a worker: {e}"),
                        }
                    });
                }
                Err(e) => tracing::debug!("cannot hand a connection to a worker: {e}"),
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN, drain.finished()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN:?}; exiting");
    }
    workers.stop().await;
    Ok(())
}

/// Accepts that fail (out of file descriptors, say), logged when an outage starts and when it
/// ends, at most once every `ACCEPT_LOG_EVERY`: retried every 50 ms, and under pressure accepts
/// fail and succeed in turns, so a line per failure (or per short outage) would flood the log.
#[derive(Default)]
struct AcceptOutage {
    failed: u64,
    logged: bool,
    last_log: Option<std::time::Instant>,
}

const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

impl AcceptOutage {
    fn failed(&mut self, e: &std::io::Error) {
        self.failed += 1;
        if !self.logged && self.last_log.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
            tracing::warn!(error = %e, "cannot accept connections: retrying every 50 ms until it works");
            self.logged = true;
            self.last_log = Some(std::time::Instant::now());
        }
    }

    fn end(&mut self) {
        if self.failed > 0 && self.logged {
            tracing::info!(failed_accepts = self.failed, "accepting connections again");
        }
        self.failed = 0;
        self.logged = false;
    }
}

fn builder(options: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let cap = options.request_headers.saturating_mul(4).clamp(16 << 10, 16 << 20);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(cap as usize)
        // hyper parses into two tables of this many entries, on the stack up to 100 and on the
        // heap above (two 8 KiB allocations a request at 256: 3.5% of a passthrough request's
        // instructions). 100 is Envoy's and Apollo Router's default too.
        .max_headers(MAX_REQUEST_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(cap as u32);
    builder
}

/// What every connection is served with, shared by the worker threads.
struct Connections {
    builder: auto::Builder<TokioExecutor>,
    state: Arc<AppState>,
    options: ServeOptions,
}

impl Connections {
    /// Serves one connection in a task of the current runtime, until it ends or, once `drain`
    /// says so, finishes what it has in flight.
    fn spawn(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, drain: Drain) {
        // On a dual-stack listener (`[::]:8080`) an IPv4 client is `::ffff:10.1.2.3`: in its
        // IPv4 form it matches `trusted_proxies: [10.0.0.0/8]`, keys the same rate-limit bucket
        // as on an IPv4 listener, and reads as nginx writes it in `X-Forwarded-For`.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        tokio::spawn(async move {
            let _live = drain.enter();
            let Some(protocol) = protocol_shown(&stream, self.options.header_read_timeout).await else {
                return;
            };
            // HTTP/1.1 connections idle between requests are closed by the header read timeout;
            // HTTP/2 ones are watched here.
            let activity = (protocol == Protocol::Http2).then(|| Arc::new(Activity::new()));
            let state = self.state.clone();
            let body_idle = self.options.body_idle_timeout;
            let requests = activity.clone();
            let http1 = protocol == Protocol::Http1;
            let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let state = state.clone();
                let (parts, body) = req.into_parts();
                let (hold, body) = client_body(body, body_idle, http1);
                let expects_continue = hold.is_some() && expects_continue(&parts.headers);
                let req = http::Request::from_parts(parts, body);
                let in_flight = requests.as_ref().map(|a| a.start());
                // Boxed: hyper moves the request's future into its connection state, and the
                // whole pipeline's future is several KiB (moving it was a tenth of a passthrough
                // request's instructions); a box moves as one pointer.
                Box::pin(async move {
                    let mut resp = crate::http::handle(state, req).await;
                    if let Some(hold) = hold {
                        if !hold.settle(expects_continue).await {
                            resp.headers_mut()
                                .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                        }
                    }
                    let resp = match in_flight {
                        // On HTTP/2 a request is in flight until its answer's body has ended (an
                        // event stream keeps its connection from being idle).
                        Some(flight) => {
                            let activity = flight.0.clone();
                            resp.map(|body| activity.streams.watch(body, flight))
                        }
                        None => resp,
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                })
            });
            let conn = self.builder.serve_connection_with_upgrades(
                TokioIo::new(crate::idle::SendTimeout::new(stream, self.options.send_timeout)),
                service,
            );
            tokio::pin!(conn);
            let mut stop = drain.stop.clone();
            let mut finishing = *stop.borrow();
            if finishing {
                conn.as_mut().graceful_shutdown();
            }
            let idle = tokio::time::sleep(self.options.h2_idle_timeout);
            tokio::pin!(idle);
            // How often an HTTP/2 connection looks for streams its client stopped taking.
            let stall_every = (self.options.send_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
            let mut stalls = tokio::time::interval_at(tokio::time::Instant::now() + stall_every, stall_every);
            stalls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // GOAWAY was sent to an idle HTTP/2 connection; what streams are left (only ones whose
            // answers were cut) get the send timeout, then the connection is closed.
            let mut closing_idle = false;
            let ended = loop {
                tokio::select! {
                    // In this order, without drawing a random one every time the connection wakes.
                    biased;
                    ended = conn.as_mut() => break ended,
                    _ = stop.changed(), if !finishing => {
                        finishing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = idle.as_mut(), if activity.is_some() && (!finishing || closing_idle) => {
                        if closing_idle {
                            tracing::debug!(peer = %peer, "an idle HTTP/2 connection did not finish after GOAWAY: closed");
                            break Ok(());
                        }
                        match activity.as_ref().and_then(|a| a.idle_until(self.options.h2_idle_timeout)) {
                            // Nothing in flight for the whole time: GOAWAY, then close.
                            None => {
                                finishing = true;
                                closing_idle = true;
                                conn.as_mut().graceful_shutdown();
                                idle.as_mut().reset(tokio::time::Instant::now() + self.options.send_timeout);
                            }
                            Some(next) => idle.as_mut().reset(next),
                        }
                    }
                    _ = stalls.tick(), if activity.is_some() => {
                        let cut = activity.as_ref().map_or(0, |a| a.streams.cut_stalled(self.options.send_timeout));
                        if cut > 0 {
                            tracing::info!(
                                peer = %peer,
                                streams = cut,
                                "an HTTP/2 client took nothing of a stream for the send timeout: its answer was dropped"
                            );
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection closed with an error: {e}");
            }
        });
    }
}

/// The connections being served and the signal to finish them (graceful shutdown). Facade's own
/// rather than hyper-util's `GracefulShutdown`, whose connection watcher takes only hyper's
/// connection types: an HTTP/2 connection left idle must be finished too.
#[derive(Clone)]
struct Drain {
    stop: tokio::sync::watch::Receiver<bool>,
    live: Arc<Live>,
}

#[derive(Default)]
struct Live {
    count: std::sync::atomic::AtomicUsize,
    none: tokio::sync::Notify,
}

/// One live connection; it counts until dropped.
struct LiveConnection(Arc<Live>);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

impl Drain {
    fn new() -> (tokio::sync::watch::Sender<bool>, Drain) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (
            tx,
            Drain {
                stop: rx,
                live: Arc::default(),
            },
        )
    }

    fn enter(&self) -> LiveConnection {
        self.live.count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        LiveConnection(self.live.clone())
    }

    /// Once every connection has ended.
    async fn finished(&self) {
        loop {
            let none = self.live.none.notified();
            if self.live.count.load(std::sync::atomic::Ordering::Acquire) == 0 {
                return;
            }
            none.await;
        }
    }
}

/// An HTTP/2 connection's requests in flight, and when the last one ended.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// The answers' bodies, watched for streams the client stopped taking.
    streams: crate::stall::StreamWatch,
    /// Milliseconds since `base` (when the connection began): when the last request ended.
    last_ms: std::sync::atomic::AtomicU64,
    base: tokio::time::Instant,
}

/// One request in flight on an HTTP/2 connection, until dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.0.last_ms.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: Default::default(),
            streams: Default::default(),
            last_ms: Default::default(),
            base: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// `None` when the connection has had nothing in flight for `limit`; else when to look
    /// again.
    fn idle_until(&self, limit: Duration) -> Option<tokio::time::Instant> {
        use std::sync::atomic::Ordering;
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + limit);
        }
        let last = self.base + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        let until = last + limit;
        (until > now).then_some(until)
    }
}

/// The worker threads beside the calling one, each running a single-threaded runtime until
/// stopped.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    threads: Vec<(tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Workers {
    fn start(count: usize) -> std::io::Result<Workers> {
        let mut workers = Workers {
            handles: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
        };
        for i in 1..=count {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            workers.handles.push(rt.handle().clone());
            let thread = std::thread::Builder::new()
                .name(format!("facade-worker-{i}"))
                .spawn(move || {
                    crate::upstream::pool::set_worker(i);
                    let _ = rt.block_on(stopped);
                    // Dropping the runtime ends what is left on it: idle backend connections.
                })?;
            workers.threads.push((stop, thread));
        }
        Ok(workers)
    }

    /// Stops the threads once the connections have drained, and waits for them to end.
    async fn stop(self) {
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for (stop, thread) in threads {
                let _ = stop.send(());
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}

/// A request's body for the pipeline: one that has bytes to come may not pause longer than
/// `idle` (a client that declared a body and stopped sending it would hold its connection for
/// ever), and on HTTP/1.1 the connection keeps a hold of it, in case the answer leaves it unread
/// (`crate::unread`); an empty one needs neither.
fn client_body(
    body: hyper::body::Incoming,
    idle: Duration,
    http1: bool,
) -> (Option<crate::unread::Hold>, axum::body::Body) {
    use http_body::Body as _;
    if body.is_end_stream() {
        return (None, axum::body::Body::new(body));
    }
    let watched = crate::idle::IdleTimeout::new(body, idle, crate::idle::Sender::Client);
    if !http1 {
        return (None, axum::body::Body::new(watched));
    }
    let (hold, held) = crate::unread::hold(watched);
    (Some(hold), axum::body::Body::new(held))
}

/// Whether the client waits for `100 Continue` before it sends its body.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Waits until a new connection's first bytes show which protocol it speaks (an HTTP/2 preface,
/// or anything else: HTTP/1), at most `within`; `None` when they do not come, and the connection
/// is to be dropped.
///
/// Why: the builder reads those bytes to choose the protocol before HTTP/1's header read timeout
/// starts, and with no time limit: a client that connected and sent nothing (or part of a
/// preface) held its connection for ever, and enough of them would take every file descriptor.
/// The bytes are peeked, not read: the builder reads them again.
async fn protocol_shown(stream: &TcpStream, within: Duration) -> Option<Protocol> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0u8; PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => n,
            // Nothing in time, closed, or broken.
            _ => return None,
        };
        if first[..n] != PREFACE[..n] {
            return Some(Protocol::Http1);
        }
        if n == PREFACE.len() {
            return Some(Protocol::Http2);
        }
        // Part of an HTTP/2 preface: the rest is on its way (peeking again at once would find
        // the same bytes).
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5)))
            .await
            .is_err()
        {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{protocol_shown, Protocol};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    async fn shown(first: &[&[u8]]) -> Option<Protocol> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let parts: Vec<Vec<u8>> = first.iter().map(|p| p.to_vec()).collect();
        tokio::spawn(async move {
            for part in parts {
                let _ = client.write_all(&part).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        protocol_shown(&server, Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn the_first_bytes_say_which_protocol_whatever_their_number() {
        // A whole HTTP/1.1 request arrives at once: as many bytes as a preface, or more, and
        // still HTTP/1 (it was taken for HTTP/2 when 24 bytes were there to peek).
        assert_eq!(
            shown(&[b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]).await,
            Some(Protocol::Http1)
        );
        assert_eq!(shown(&[b"GET / HTTP/1.1\r\n"]).await, Some(Protocol::Http1));
        assert_eq!(
            shown(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]).await,
            Some(Protocol::Http2)
        );
        // A preface in pieces is waited for; one that goes wrong is HTTP/1.
        assert_eq!(
            shown(&[b"PRI * HTTP/2", b".0\r\n\r\nSM\r\n\r\n"]).await,
            Some(Protocol::Http2)
        );
        assert_eq!(shown(&[b"PRI * HTTP/2", b".1\r\n"]).await, Some(Protocol::Http1));
        // Nothing at all: no protocol, and the connection is dropped.
        assert_eq!(shown(&[]).await, None);
    }
}
