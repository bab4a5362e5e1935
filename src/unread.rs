//! Request bodies that an answer leaves unread, on HTTP/1.1.
//!
//! Many answers come before the request's body is read: a 401, 403, 404, 405, 415 or 429, a
//! 413 part of the way through. On HTTP/1.1 the rest of that body is still on its way in the
//! connection. hyper then takes what it already holds and, when the body has not all arrived,
//! closes the connection after the answer, without saying so: a client that sent its body in a
//! second segment (Python's `http.client` does, for one) sent its next request into a closed
//! connection and got a broken pipe, and for a POST that is an error no client repeats.
//!
//! So the connection keeps a hold of each request body. When the handler has let go of a body
//! it did not finish, the rest is read and dropped before the answer goes out, as Go's server
//! does (up to 256 KiB, and here within half a second), and the connection stays open. A larger
//! or slower rest, or a body the client is waiting to be asked for (`Expect: 100-continue`, never
//! asked), is not read: the answer says `Connection: close` and the connection closes after it,
//! which the client then knows.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Inner = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

/// The most of an unread body read and dropped to keep the connection (Go's
/// `maxPostHandlerReadBytes`).
pub const DRAIN_BYTES: usize = 256 * 1024;

/// How long the rest of an unread body may take to arrive before the answer goes out without it.
pub const DRAIN_TIME: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    /// The body while it has frames to come.
    body: Option<Inner>,
    /// The handler polled it (a client waiting for `100 Continue` was asked for it).
    polled: bool,
    /// The handler's side is still alive (it may be streaming the body somewhere).
    held: bool,
}

/// The connection's hold on one request body.
#[derive(Clone)]
pub struct Hold(Arc<Mutex<State>>);

/// The handler's side: the body as the pipeline reads it.
pub struct Held(Arc<Mutex<State>>);

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Splits `body` into the connection's hold and the handler's body.
pub fn hold<B>(body: B) -> (Hold, Held)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    let state = State {
        body: Some(Box::pin(body.map_err(Into::into))),
        polled: false,
        held: true,
    };
    let shared = Arc::new(Mutex::new(state));
    (Hold(shared.clone()), Held(shared))
}

impl Body for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut state = lock(&self.0);
        state.polled = true;
        let Some(body) = state.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = body.as_mut().poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            state.body = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0)
            .body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.0).held = false;
    }
}

impl Hold {
    /// Once the answer is ready: `true` when the connection may stay open after it (the body was
    /// read to its end, by the handler or here, or the handler is still streaming it), `false`
    /// when the answer must say `Connection: close`.
    pub async fn settle(&self, expects_continue: bool) -> bool {
        let body = {
            let mut state = lock(&self.0);
            if state.held || state.body.as_ref().is_none_or(|b| b.is_end_stream()) {
                return true;
            }
            if expects_continue && !state.polled {
                // The client waits to be asked for its body: asking now would only bring a body
                // nobody wants.
                return false;
            }
            state.body.take()
        };
        let Some(mut body) = body else { return true };
        let drained = tokio::time::timeout(DRAIN_TIME, async {
            use http_body_util::BodyExt;
            let mut left = DRAIN_BYTES;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return false };
                if let Some(data) = frame.data_ref() {
                    let Some(rest) = left.checked_sub(data.len()) else {
                        return false;
                    };
                    left = rest;
                }
            }
            true
        })
        .await;
        matches!(drained, Ok(true))
    }
}
