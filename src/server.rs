//! Serving: binds nothing itself (tests pass a listener bound to `127.0.0.1:0`), runs its own
//! accept loop over hyper-util's `auto` builder (HTTP/1.1 and h2c), and on shutdown stops
//! accepting and lets in-flight requests finish (up to 30 s).
//!
//! Why not `axum::serve`: it fixes hyper's builder, so there would be no header read timeout
//! (a client that never finishes its headers would hold a connection forever), at most 100
//! headers, and bare 431s. Here the parser's own limits sit at four times
//! `limits.request_headers`, so below that cap the pipeline's JSON 431 answers (see `front`);
//! only past it does hyper's bare 431 and a close stand in.

use crate::state::AppState;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// How the connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A client must send its whole request head within this time.
    pub header_read_timeout: Duration,
    /// `limits.request_headers`: the parser's hard caps are set from it.
    pub request_headers: u64,
}

impl ServeOptions {
    /// The options for a plan's limits, with a 10 s header read timeout.
    pub fn for_state(state: &AppState) -> ServeOptions {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            request_headers: state.plan().limits.request_headers,
        }
    }
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
    let cap = options.request_headers.saturating_mul(4).clamp(16 << 10, 16 << 20);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(cap as usize)
        // The parser zeroes a table of this many entries for every request (a 2048-entry table was
        // 3% of a passthrough request in profiles); 256 headers is far above what clients send.
        .max_headers(256);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(cap as u32);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Responses are written whole; Nagle's algorithm would only add delay.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let state = state.clone();
            // Boxed: hyper moves the request's future into its connection state, and the whole
            // pipeline's future is several KiB (moving it was a tenth of a passthrough request's
            // instructions); a box moves as one pointer.
            Box::pin(async move {
                Ok::<_, std::convert::Infallible>(crate::http::handle(state, req.map(axum::body::Body::new)).await)
            })
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!("connection closed with an error: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN:?}; exiting");
    }
    Ok(())
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
