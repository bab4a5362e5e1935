//! A passthrough response head that waits for its first body bytes, so the two leave in one write.
//!
//! Why: backends (nginx serving a file, most frameworks) write the head and the body separately,
//! and they often arrive a moment apart. A response whose body is not ready when its head is
//! written goes out as two TCP segments, and the client is woken twice. Under load that was 0.85
//! more segments per passthrough request than nginx sends (nginx buffers the backend's answer),
//! and the client's and kernel's work grew with them.
//!
//! Only a body of declared, non-zero length waits: such a backend has its bytes at hand. A chunked
//! body (an event stream, a long poll) may send its head long before its first event, and keeps
//! its head going out at once. The wait is bounded: past `wait` the head goes without the bytes
//! and the body streams as before. Nothing more than the first frame is ever held, so a large
//! download still streams.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// `resp` with its first body frame already read when the body has a declared non-zero length
/// and the frame comes within `wait`. An answer that breaks off before its first body bytes is
/// an error: nothing has been sent yet, so the client can be told so instead of being given a
/// head and a cut connection.
pub async fn with_first_frame(resp: Response, wait: Duration) -> Result<Response, axum::Error> {
    let declared = crate::upstream::declared_length(resp.headers()).is_some_and(|n| n > 0);
    if resp.body().is_end_stream() || !declared {
        return Ok(resp);
    }
    let (parts, mut body) = resp.into_parts();
    let first = match tokio::time::timeout(wait, body.frame()).await {
        Ok(Some(Ok(first))) => first,
        Ok(Some(Err(e))) => return Err(e),
        // Ended without a frame: nothing to wait for.
        Ok(None) => return Ok(Response::from_parts(parts, Body::empty())),
        Err(_) => return Ok(Response::from_parts(parts, body)),
    };
    Ok(Response::from_parts(
        parts,
        Body::new(Prefixed {
            first: Some(first),
            rest: body,
        }),
    ))
}

/// A body whose first frame was read ahead.
struct Prefixed {
    first: Option<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let ahead = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |d| d.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(ahead));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(ahead));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Body, length: Option<&str>) -> Response {
        let mut resp = Response::new(body);
        if let Some(l) = length {
            resp.headers_mut()
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_str(l).unwrap());
        }
        resp
    }

    /// A body whose chunks come from a channel, so the test decides when each one is ready.
    fn channel_body() -> (
        futures::channel::mpsc::UnboundedSender<Result<Bytes, std::io::Error>>,
        Body,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (tx, Body::from_stream(rx))
    }

    #[tokio::test]
    async fn a_declared_body_is_read_ahead_and_given_whole() {
        let (tx, body) = channel_body();
        tx.unbounded_send(Ok(Bytes::from_static(b"hello "))).unwrap();
        tx.unbounded_send(Ok(Bytes::from_static(b"world"))).unwrap();
        drop(tx);
        let resp = with_first_frame(response(body, Some("11")), Duration::from_secs(5))
            .await
            .unwrap();
        let body = resp.into_body();
        assert_eq!(
            body.size_hint().lower(),
            6,
            "the frame read ahead counts in the size hint"
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello world");
    }

    #[tokio::test]
    async fn the_head_waits_for_the_first_bytes_of_a_declared_body() {
        let (tx, body) = channel_body();
        let waiting = tokio::spawn(with_first_frame(response(body, Some("2")), Duration::from_secs(5)));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the head went before the body's first bytes");
        tx.unbounded_send(Ok(Bytes::from_static(b"ok"))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Read ahead: the frame is there without waiting.
        let mut body = resp.into_body();
        let first = futures::FutureExt::now_or_never(body.frame())
            .flatten()
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "ok");
    }

    #[tokio::test]
    async fn a_chunked_body_and_a_slow_one_do_not_hold_the_head() {
        // No declared length: the head goes at once.
        let (_tx, body) = channel_body();
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            with_first_frame(response(body, None), Duration::from_secs(60)),
        )
        .await
        .expect("a chunked head waited for its body");
        drop(resp);
        // Declared, but the bytes do not come within the wait: the head goes without them.
        let (tx, body) = channel_body();
        let resp = with_first_frame(response(body, Some("2")), Duration::from_millis(20))
            .await
            .unwrap();
        tx.unbounded_send(Ok(Bytes::from_static(b"ok"))).unwrap();
        drop(tx);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
    }

    #[tokio::test]
    async fn an_answer_broken_before_its_first_bytes_is_an_error() {
        let (tx, body) = channel_body();
        tx.unbounded_send(Err(std::io::Error::other("reset"))).unwrap();
        let got = with_first_frame(response(body, Some("10")), Duration::from_secs(5)).await;
        assert!(got.is_err());
    }
}
