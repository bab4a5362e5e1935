//! Bodies that may not pause for ever. A body is a stream of frames; a sender that stops in the
//! middle of one (a client that declared 1 MB and sent ten bytes, a backend that sent half an
//! answer) would otherwise hold a connection, its task and its buffers for as long as the other
//! side keeps its socket open. As nginx does with `client_body_timeout` and `proxy_read_timeout`,
//! a body fails when no frame arrives for a set time after the last one.
//!
//! The timer is made only when a poll finds no frame, so a body that arrives in the same reads
//! as its head (almost every one) costs no timer at all.

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who was sending the body that paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The client, sending a request body.
    Client,
    /// A backend, sending a passthrough answer.
    Backend,
}

/// A body whose sender sent nothing for too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} sent no body bytes for {} s", match .sender { Sender::Client => "the client", Sender::Backend => "the backend" }, .after.as_secs_f64())]
pub struct BodyIdle {
    /// Who paused.
    pub sender: Sender,
    /// For how long.
    pub after: Duration,
}

/// The pause of a body or a connection that made no progress when last polled: its timer is
/// made on the first pause and set again at the start of every later one.
struct Pause {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    // The timer runs for the current pause.
    running: bool,
}

impl Pause {
    fn new(limit: Duration) -> Pause {
        Pause {
            limit,
            timer: None,
            running: false,
        }
    }

    /// Progress was made: the pause, if there was one, is over.
    fn end(&mut self) {
        self.running = false;
    }

    /// No progress: starts the pause if it is a new one, and says whether it has lasted `limit`
    /// (else `cx` is woken when it has).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.running {
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.running = true;
        }
        self.timer.as_mut().is_some_and(|t| t.as_mut().poll(cx).is_ready())
    }
}

pin_project! {
    /// `inner`, failing with `BodyIdle` when no frame comes for `idle` after the last one.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        sender: Sender,
        pause: Pause,
    }
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`, sent by `sender`.
    pub fn new(inner: B, idle: Duration, sender: Sender) -> IdleTimeout<B> {
        IdleTimeout {
            inner,
            sender,
            pause: Pause::new(idle),
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            this.pause.end();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.pause.expired(cx) {
            let idle = BodyIdle {
                sender: *this.sender,
                after: this.pause.limit,
            };
            // A backend's answer is cut off after its head went out: nothing else reports it.
            if idle.sender == Sender::Backend {
                tracing::warn!("{idle} in the middle of a passthrough answer: the answer is cut off");
            }
            return Poll::Ready(Some(Err(Box::new(idle))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A client connection whose writes may wait at most `idle` for the client to read (nginx's
    /// `send_timeout`): a client that stops reading a large answer (a passthrough download)
    /// would otherwise hold its connection, and the backend connection feeding it, for ever.
    /// Reads pass through; the timer is made only when a write has to wait.
    pub struct SendTimeout<T> {
        #[pin]
        io: T,
        pause: Pause,
    }
}

impl<T> SendTimeout<T> {
    /// Wraps a client connection.
    pub fn new(io: T, idle: Duration) -> SendTimeout<T> {
        SendTimeout {
            io,
            pause: Pause::new(idle),
        }
    }
}

impl<T: tokio::io::AsyncRead> tokio::io::AsyncRead for SendTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite> SendTimeout<T> {
    /// A write's outcome: anything but waiting ends the wait; a wait runs the timer.
    fn watch<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        let this = self.project();
        if let Poll::Ready(done) = write(this.io, cx) {
            this.pause.end();
            return Poll::Ready(done);
        }
        if this.pause.expired(cx) {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", this.pause.limit.as_secs_f64()),
            )));
        }
        Poll::Pending
    }
}

impl<T: tokio::io::AsyncWrite> tokio::io::AsyncWrite for SendTimeout<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.watch(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.watch(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.watch(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

/// The pause behind an error of reading a body, if that is what it was: the error itself or any
/// error in its chain of sources.
pub fn idle_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyIdle> {
    cause::<BodyIdle>(e)
}

/// The first error of type `T` in `e`'s chain of sources, `e` included.
pub fn cause<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    type Frames = futures::channel::mpsc::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>;

    fn channel_body(idle: Duration) -> (Frames, IdleTimeout<impl Body<Data = Bytes, Error = std::io::Error>>) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (tx, IdleTimeout::new(StreamBody::new(rx), idle, Sender::Client))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_coming_never_times_out_however_long_it_takes() {
        let (tx, mut body) = channel_body(Duration::from_secs(10));
        let sending = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"x")))).unwrap();
            }
        });
        let mut got = 0;
        while let Some(frame) = body.frame().await {
            got += frame.unwrap().into_data().unwrap().len();
        }
        assert_eq!(got, 5, "45 s in all, never 10 s without a frame");
        sending.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_limit_fails_the_body_with_its_cause() {
        let (tx, mut body) = channel_body(Duration::from_secs(10));
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"half")))).unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let started = Instant::now();
        let e = body.frame().await.unwrap().unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let idle = idle_cause(e.as_ref()).unwrap();
        assert_eq!(
            (idle.sender, idle.to_string()),
            (Sender::Client, "the client sent no body bytes for 10 s".to_string())
        );
        drop(tx);
    }

    #[test]
    fn the_cause_is_found_down_a_chain_of_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] BodyIdle);
        let idle = BodyIdle {
            sender: Sender::Backend,
            after: Duration::from_millis(1500),
        };
        let outer = Outer(idle.clone());
        assert_eq!(idle_cause(&outer), Some(&idle));
        assert_eq!(idle.to_string(), "the backend sent no body bytes for 1.5 s");
        assert_eq!(idle_cause(&std::io::Error::other("x")), None);
    }
}
