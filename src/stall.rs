//! HTTP/2 streams whose client stopped taking them.
//!
//! On HTTP/1.1 a client that stops reading stops the connection's writes, and `idle::SendTimeout`
//! ends it after `send_timeout`. On HTTP/2 a client can keep reading its connection and still
//! give one stream no more flow-control window (a browser does that with a response body nobody
//! reads): hyper then never asks that stream's body for more, the connection is never idle, and
//! the body's backend connection was held for as long as the client's connection lived.
//!
//! Each response body of an HTTP/2 connection is watched: when it hands a frame over, the time is
//! noted, and when hyper asks for the next one, the note is cleared. The connection's task looks
//! now and then (`StreamWatch::cut_stalled`); a body whose frame has waited for the client for
//! `send_timeout` (nginx's `send_timeout`, between two writes) is dropped, which closes its
//! backend connection. The stream itself ends with an error (a reset) if the client ever asks
//! for it again. A body waiting for its backend is not the client's stall and is left alone (the
//! backend's own idle timeout covers it).

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// No frame is waiting for the client.
const NOT_WAITING: u64 = u64::MAX;

/// A stream's body that was dropped because its client took nothing for too long.
#[derive(Debug, thiserror::Error)]
#[error("the client took nothing of this HTTP/2 stream for the send timeout")]
pub struct StreamStalled;

/// The response bodies of one HTTP/2 connection.
#[derive(Debug)]
pub struct StreamWatch {
    streams: Mutex<Vec<Arc<Watched>>>,
    base: Instant,
}

#[derive(Debug)]
struct Watched {
    /// `None` once the body ended, was cut or was dropped.
    body: Mutex<Option<Held>>,
    /// When the last frame was handed over, in milliseconds since the watch's `base`, while hyper
    /// has not asked for the next: `NOT_WAITING` otherwise.
    handed_ms: AtomicU64,
    cut: AtomicBool,
    base: Instant,
}

/// A watched body, and what is held for as long as it lives (the connection's count of requests
/// in flight).
struct Held {
    body: Body,
    _token: Box<dyn Send>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").finish_non_exhaustive()
    }
}

impl Default for StreamWatch {
    fn default() -> StreamWatch {
        StreamWatch {
            streams: Mutex::new(Vec::new()),
            base: Instant::now(),
        }
    }
}

impl StreamWatch {
    /// `body`, watched; `token` is dropped when the body ends, is cut or is dropped.
    pub fn watch(&self, body: Body, token: impl Send + 'static) -> Body {
        if body.is_end_stream() {
            return body;
        }
        let watched = Arc::new(Watched {
            body: Mutex::new(Some(Held {
                body,
                _token: Box::new(token),
            })),
            handed_ms: AtomicU64::new(NOT_WAITING),
            cut: AtomicBool::new(false),
            base: self.base,
        });
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(watched.clone());
        Body::new(WatchedBody(watched))
    }

    /// Drops the body of every stream whose handed-over frame has waited for the client for
    /// `limit`, and forgets the streams that ended. Returns how many were dropped.
    pub fn cut_stalled(&self, limit: Duration) -> usize {
        let now = ms_since(self.base);
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let mut cut = 0;
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).retain(|w| {
            // Only this list holds it: hyper dropped the stream.
            if Arc::strong_count(w) == 1 {
                return false;
            }
            let handed = w.handed_ms.load(Ordering::Acquire);
            if handed == NOT_WAITING || now.saturating_sub(handed) < limit_ms {
                return true;
            }
            let mut body = w.body.lock().unwrap_or_else(|p| p.into_inner());
            // Asked for again since the load above: not stalled after all.
            if w.handed_ms.load(Ordering::Acquire) != handed {
                return true;
            }
            if body.take().is_some() {
                w.cut.store(true, Ordering::Release);
                cut += 1;
            }
            false
        });
        cut
    }
}

fn ms_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_millis()).unwrap_or(NOT_WAITING - 1)
}

/// The body hyper sends on the stream.
struct WatchedBody(Arc<Watched>);

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let w = &self.0;
        let mut slot = w.body.lock().unwrap_or_else(|p| p.into_inner());
        w.handed_ms.store(NOT_WAITING, Ordering::Release);
        let Some(Held { body, .. }) = slot.as_mut() else {
            if w.cut.load(Ordering::Acquire) {
                return Poll::Ready(Some(Err(axum::Error::new(StreamStalled))));
            }
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *body).poll_frame(cx);
        match &polled {
            // The last frame: nothing more will be asked for.
            Poll::Ready(Some(Ok(_))) if body.is_end_stream() => *slot = None,
            Poll::Ready(Some(Ok(_))) => w.handed_ms.store(ms_since(w.base), Ordering::Release),
            Poll::Ready(None) => *slot = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.body.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(held) => held.body.is_end_stream(),
            // A cut body still has its error to give.
            None => !self.0.cut.load(Ordering::Acquire),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.body.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .map_or_else(SizeHint::default, |held| held.body.size_hint())
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        // The stream is over (ended, or reset by the client): let go of what it held now, not at
        // the next look.
        self.0.body.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_frame_left_waiting_past_the_limit_drops_its_body_and_a_body_asked_again_is_kept() {
        let watch = StreamWatch::default();
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let (held, holding) = (Arc::new(()), Arc::new(()));
        let mut stalled = watch.watch(Body::new(http_body_util::StreamBody::new(rx)), held.clone());
        let mut taken = watch.watch(Body::from("whole"), holding.clone());
        tx.try_send(Ok(Frame::data(Bytes::from_static(b"a")))).unwrap();
        assert!(stalled.frame().await.is_some());
        assert_eq!(taken.frame().await.unwrap().unwrap().into_data().unwrap(), "whole");
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(watch.cut_stalled(Duration::from_millis(500)), 0, "not yet");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(watch.cut_stalled(Duration::from_millis(500)), 1);
        assert_eq!(Arc::strong_count(&held), 1, "a cut body lets go of its token");
        assert_eq!(Arc::strong_count(&holding), 1, "an ended body lets go of its token");
        assert!(
            tx.try_send(Ok(Frame::data(Bytes::from_static(b"b")))).is_err(),
            "the body was dropped"
        );
        assert!(stalled.frame().await.unwrap().is_err(), "the stream ends with an error");
        assert!(taken.frame().await.is_none());
        drop((stalled, taken));
        assert_eq!(watch.cut_stalled(Duration::from_millis(500)), 0);
        assert!(watch.streams.lock().unwrap().is_empty(), "ended streams are forgotten");
    }
}
