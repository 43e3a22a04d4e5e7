//! The log sink of the long-running commands (`serve`, `sweep`, `reconcile`): JSON lines on
//! stderr, as before, but written by a thread of their own. A request's log line is formatted on
//! the thread that answers it and appended to a shared buffer (one lock, one copy, no allocation
//! once the buffer has grown); the writer thread takes everything appended so far, writes it in
//! one go, then lets lines gather for [`LINGER`] before it takes the next batch, so a busy `serve`
//! makes one `write` per batch of lines instead of one per line, and the process reading stderr
//! (journald, a container runtime) wakes once per batch too. A logging thread wakes the writer
//! only when the writer waits for lines (it was idle): under load nobody wakes anybody.
//!
//! Nothing is dropped: past [`MAX_PENDING`] bytes not yet written, a logging thread waits for the
//! writer (as a blocking stderr write did when the reader fell behind). [`Flushed`], held by
//! `main` for the command's life, waits for what was logged to be written when the command ends.
//! Lines not yet written when the process is killed are lost, as lines in a stdio buffer would be.
//!
//! The formatter (`tracing_subscriber::fmt`) hands each event over in one `write_all` of the
//! whole line, and [`Line::write`] appends what it is given at once, under the lock: lines from
//! different threads never interleave.

pub mod json;

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes logged but not yet written past which a logging thread waits for the writer.
pub const MAX_PENDING: usize = 4 * 1024 * 1024;
/// How long the end of a command waits for what was logged to be written.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);
/// After a write, how long the writer lets lines gather before it takes the next batch (the most
/// a line waits behind a busy writer; a line logged while the writer is idle is written at once).
pub const LINGER: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// Bytes appended since the start, and bytes written: the guard waits for them to meet.
    appended: u64,
    written: u64,
    /// The writer thread is gone (it could not start): lines are dropped instead of waited on.
    gone: bool,
    /// The writer waits on `ready` for the first line (it is woken only then).
    writer_idle: bool,
    /// Threads waiting on `taken` (a full buffer, or the flush at exit).
    waiting_for_writer: usize,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// The buffer is no longer empty (the writer waits on it).
    ready: Condvar,
    /// The writer took the buffer (full logging threads and the flushing guard wait on it).
    taken: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the formatter writes.
#[derive(Clone)]
pub struct Sink(Arc<Shared>);

/// The formatter's writer for one event.
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.0.lock();
        while pending.buf.len() >= MAX_PENDING && !pending.gone {
            pending.waiting_for_writer += 1;
            pending = self.0.taken.wait(pending).unwrap_or_else(|p| p.into_inner());
            pending.waiting_for_writer -= 1;
        }
        if pending.gone {
            return Ok(bytes.len());
        }
        pending.buf.extend_from_slice(bytes);
        pending.appended += bytes.len() as u64;
        let wake = std::mem::take(&mut pending.writer_idle);
        drop(pending);
        if wake {
            self.0.ready.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

/// Waits, when dropped (at the end of the command), for what was logged to be written.
pub struct Flushed(Arc<Shared>);

impl Drop for Flushed {
    fn drop(&mut self) {
        let mut pending = self.0.lock();
        let target = pending.appended;
        let deadline = std::time::Instant::now() + FLUSH_WITHIN;
        while pending.written < target && !pending.gone {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            pending.waiting_for_writer += 1;
            pending = self.0.taken.wait_timeout(pending, left).unwrap_or_else(|p| p.into_inner()).0;
            pending.waiting_for_writer -= 1;
        }
    }
}

/// A sink writing to `out` on a thread of its own, and the guard that flushes it.
pub fn sink(out: impl Write + Send + 'static) -> (Sink, Flushed) {
    let shared = Arc::new(Shared::default());
    let writer = shared.clone();
    let spawned = std::thread::Builder::new().name("powerpole-logs".into()).spawn(move || write_lines(&writer, out));
    if let Err(e) = spawned {
        eprintln!("powerpole: cannot start the log writer thread, so nothing will be logged: {e}");
        shared.lock().gone = true;
    }
    (Sink(shared.clone()), Flushed(shared))
}

fn write_lines(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.buf.is_empty() {
            pending.writer_idle = true;
            pending = shared.ready.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        pending.writer_idle = false;
        // Swap buffers: the logging threads append to the (emptied) one just written.
        batch.clear();
        std::mem::swap(&mut batch, &mut pending.buf);
        let upto = pending.appended;
        let full = pending.waiting_for_writer > 0;
        drop(pending);
        if full {
            shared.taken.notify_all();
        }
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        let mut pending = shared.lock();
        pending.written = upto;
        let waiting = pending.waiting_for_writer > 0;
        drop(pending);
        if waiting {
            shared.taken.notify_all();
        }
        std::thread::sleep(LINGER);
    }
}

/// JSON lines on stderr through [`sink`], filtered by `RUST_LOG` (default `info`). Keep the
/// guard until the command ends.
///
/// Without `RUST_LOG` the filter is a plain level: `EnvFilter` (directives per target, span or
/// field) takes a lock on every span's creation, entry, exit and close to look for directives
/// that name it, and `serve` opens a span for every request.
pub fn init() -> Flushed {
    let (sink, flushed) = sink(std::io::stderr());
    let format = tracing_subscriber::fmt().fmt_fields(json::JsonFields).event_format(json::JsonLines).with_writer(sink);
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => format.with_env_filter(filter).init(),
        Err(_) => format.with_max_level(tracing::Level::INFO).init(),
    }
    flushed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_and_in_order_by_the_time_the_guard_is_dropped() {
        let out = Out::default();
        let (sink, flushed) = sink(out.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        sink.make_writer().write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(flushed);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 20_000, "no line is lost");
        for t in 0..4 {
            let mine: Vec<usize> = text.lines().filter_map(|l| l.strip_prefix(&format!("thread {t} line "))).map(|n| n.parse().unwrap()).collect();
            assert_eq!(mine, (0..5_000).collect::<Vec<_>>(), "thread {t}'s lines are whole and in order");
        }
    }

    /// A reader that stops reading (a full pipe) holds the logging threads back once the pending
    /// bytes reach the bound: nothing is dropped, and memory stays bounded.
    #[test]
    fn a_writer_that_blocks_holds_logging_back_at_the_bound_and_loses_nothing() {
        struct Gated(Arc<(Mutex<bool>, Condvar)>, Out);
        impl Write for Gated {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let (open, opened) = &*self.0;
                let mut o = open.lock().unwrap();
                while !*o {
                    o = opened.wait(o).unwrap();
                }
                self.1.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Out::default();
        let (sink, flushed) = sink(Gated(gate.clone(), out.clone()));
        let line = vec![b'x'; 1023].into_iter().chain([b'\n']).collect::<Vec<u8>>();
        let logger = {
            let (sink, line) = (sink.clone(), line.clone());
            std::thread::spawn(move || {
                for _ in 0..(3 * MAX_PENDING / 1024) {
                    sink.make_writer().write_all(&line).unwrap();
                }
            })
        };
        // The writer holds its first batch; the logger fills the buffer to the bound and waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().buf.len() < MAX_PENDING && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!logger.is_finished(), "the logger waits at the bound");
        assert!(sink.0.lock().buf.len() <= MAX_PENDING + line.len(), "pending bytes stay bounded");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        logger.join().unwrap();
        drop(flushed);
        assert_eq!(out.0.lock().unwrap().len(), 3 * MAX_PENDING, "every line was written");
    }
}
