//! Where log lines go: stderr, through a buffer that a thread of its own writes out when it holds
//! 32 KiB, every 100 ms, and at exit.
//!
//! Why: `serve` writes one line per request, and a `write(2)` per line was a quarter of the
//! gateway's CPU time per passthrough request in profiles (the kernel's work for the write and
//! the wake-ups it causes). Lines keep their order (one buffer, appended under a lock); at most
//! 100 ms of lines are lost if the process is killed outright.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The writer thread is woken when the lines waiting reach this much.
const FLUSH_AT: usize = 32 << 10;

/// Lines waiting beyond this much are dropped (and counted) instead of stopping requests.
const MAX_WAITING: usize = 4 << 20;

/// What waits to be written.
#[derive(Debug, Default)]
struct Waiting {
    bytes: Vec<u8>,
    /// Lines dropped since the last write.
    dropped: u64,
}

/// The shared buffer of log lines.
#[derive(Debug, Default)]
pub struct LogBuffer {
    waiting: Mutex<Waiting>,
    full: Condvar,
}

impl LogBuffer {
    /// A buffer with its writer thread.
    ///
    /// Only that thread writes to stderr. Why: a write blocks while whatever reads stderr (a
    /// pipe to a log collector) does not read; when request threads wrote, a stalled collector
    /// stopped every request once the pipe was full. Now requests only append, and lines beyond
    /// `MAX_WAITING` are dropped and counted, as `tracing-appender`'s non-blocking writer does
    /// by default: a gateway keeps serving when its logs cannot keep up.
    pub fn start() -> Arc<LogBuffer> {
        let buffer = Arc::new(LogBuffer::default());
        let writer = Arc::downgrade(&buffer);
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            let mut spare = Vec::new();
            loop {
                let Some(b) = writer.upgrade() else { return };
                spare = b.write_out(spare, Some(Duration::from_millis(100)));
            }
        });
        if let Err(e) = spawned {
            eprintln!("facade: log lines will be written only at exit ({e})");
        }
        buffer
    }

    /// Writes out what waits, at once (at exit).
    pub fn flush(&self) {
        self.write_out(Vec::new(), None);
    }

    /// Waits up to `wait` for a buffer's worth (none: not at all), takes what waits (leaving
    /// `spare`'s room in its place), and writes it outside the lock. Returns the written buffer,
    /// emptied, as the next spare.
    fn write_out(&self, spare: Vec<u8>, wait: Option<Duration>) -> Vec<u8> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = wait {
            if waiting.bytes.len() < FLUSH_AT {
                waiting = self
                    .full
                    .wait_timeout(waiting, wait)
                    .map(|(w, _)| w)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        }
        let mut bytes = std::mem::replace(&mut waiting.bytes, spare);
        let dropped = std::mem::take(&mut waiting.dropped);
        // Taken before the lines are let go, so that two writers (this thread and the flush at
        // exit) write in the order they took.
        let mut err = std::io::stderr().lock();
        drop(waiting);
        if dropped > 0 {
            let _ = writeln!(
                err,
                "facade: {dropped} log line(s) dropped: stderr was not read fast enough"
            );
        }
        if !bytes.is_empty() {
            let _ = err.write_all(&bytes);
        }
        bytes.clear();
        bytes
    }
}

/// One log line being written.
pub struct Line<'a>(&'a LogBuffer);

impl LogBuffer {
    /// Appends whole lines (dropped, and counted, when too much waits already), waking the
    /// writer when a buffer's worth waits.
    pub fn append(&self, data: &[u8]) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.bytes.len() + data.len() > MAX_WAITING {
            waiting.dropped += 1;
            return;
        }
        let before = waiting.bytes.len();
        waiting.bytes.extend_from_slice(data);
        if before < FLUSH_AT && waiting.bytes.len() >= FLUSH_AT {
            self.full.notify_one();
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer `tracing-subscriber` asks for once per line.
#[derive(Debug, Clone)]
pub struct Lines(pub Arc<LogBuffer>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_beyond_what_may_wait_are_dropped_and_counted_not_held() {
        // No writer thread: nothing is written out, as when stderr is not read.
        let buffer = LogBuffer::default();
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..(MAX_WAITING / line.len() + 50) {
            buffer.append(&line);
        }
        let waiting = buffer.waiting.lock().unwrap();
        assert_eq!(waiting.bytes.len(), MAX_WAITING / line.len() * line.len());
        assert_eq!(waiting.dropped, 50);
        assert!(waiting.bytes.ends_with(b"x\n"), "whole lines only");
    }
}
