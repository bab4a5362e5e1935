//! Where log lines go: stderr, through a buffer that is written out when it holds 32 KiB, every
//! 100 ms, and at exit.
//!
//! Why: `serve` writes one line per request, and a `write(2)` per line was a quarter of the
//! gateway's CPU time per passthrough request in profiles (the kernel's work for the write and
//! the wake-ups it causes). Lines keep their order (one buffer, appended under a lock); at most
//! 100 ms of lines are lost if the process is killed outright.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Written out when it holds this much.
const FLUSH_AT: usize = 32 << 10;

/// The shared buffer of log lines.
#[derive(Debug, Default)]
pub struct LogBuffer {
    buf: Mutex<Vec<u8>>,
}

impl LogBuffer {
    /// A buffer with its periodic flusher thread.
    pub fn start() -> Arc<LogBuffer> {
        let buffer = Arc::new(LogBuffer::default());
        let flusher = Arc::downgrade(&buffer);
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                match flusher.upgrade() {
                    Some(b) => b.flush(),
                    None => return,
                }
            });
        if let Err(e) = spawned {
            eprintln!("facade: log lines will be written when 32 KiB have gathered ({e})");
        }
        buffer
    }

    /// Writes out what the buffer holds.
    pub fn flush(&self) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        if !buf.is_empty() {
            let _ = std::io::stderr().write_all(&buf);
            buf.clear();
        }
    }
}

/// One log line being written.
pub struct Line<'a>(&'a LogBuffer);

impl LogBuffer {
    /// Appends whole lines, writing the buffer out when it is full.
    pub fn append(&self, data: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(data);
        if buf.len() >= FLUSH_AT {
            let _ = std::io::stderr().write_all(&buf);
            buf.clear();
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
