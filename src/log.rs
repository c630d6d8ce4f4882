//! Logging: one line per event on stderr, `ts level msg key=value...`.
//!
//! Workers never write to stderr themselves (a write to a pipe or terminal can block, and a
//! worker must not): they append lines to a per-worker buffer, which goes to the logger
//! thread through a bounded channel when it passes [`FLUSH_BYTES`], on a warning or error, and
//! within [`FLUSH_INTERVAL`] of its first line by the worker's housekeeping task (woken by
//! that line, [`crate::chores`]; a worker with nothing logged has no flush timer). A full
//! channel drops the batch (counted, and reported by the logger) rather than block. Buffers travel back to be reused, so logging
//! allocates per batch at most, never per line. Other threads (main, admin, DNS) write
//! directly, in one `write` call per line so lines never interleave.
//!
//! Nothing on the hot path logs per chunk; warnings and errors are rate-limited per thread
//! ([`MAX_LINES_PER_SEC`]) so a flood of bad clients cannot turn logging into the bottleneck.
//! Callers never pass keys or tokens: provider keys live only in `route::Provider`, whose
//! `Debug` redacts them.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A worker's batch goes to the logger once it holds this much.
pub const FLUSH_BYTES: usize = 8 * 1024;
/// And at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Batches in flight to the logger before new ones are dropped.
pub const SINK_DEPTH: usize = 256;

struct Sink {
    to_logger: SyncSender<Vec<u8>>,
    /// Emptied buffers coming back for reuse (taken by any worker; the lock is only
    /// try-locked, so a worker never waits on it).
    recycled: Mutex<Receiver<Vec<u8>>>,
    dropped: AtomicU64,
    /// The logger acknowledges an empty batch here once everything before it is written.
    flushed: Mutex<Receiver<()>>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Per-thread ceiling of warn/error lines per second; the rest are counted and summarised.
pub const MAX_LINES_PER_SEC: u32 = 50;

/// Severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Per-request detail, off unless `SWITCHYARD_LOG=debug`.
    Debug = 0,
    /// Start, stop, reload.
    Info = 1,
    /// Something a client or provider did wrong.
    Warn = 2,
    /// Something we did wrong.
    Error = 3,
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the lowest level written, from `SWITCHYARD_LOG` (`debug`, `info`, `warn`, `error`).
pub fn init_from_env() {
    let lvl = match std::env::var("SWITCHYARD_LOG").as_deref() {
        Ok("debug") => Level::Debug,
        Ok("warn") => Level::Warn,
        Ok("error") => Level::Error,
        _ => Level::Info,
    };
    MIN_LEVEL.store(lvl as u8, Ordering::Relaxed);
}

/// Whether `level` is written.
pub fn enabled(level: Level) -> bool {
    level as u8 >= MIN_LEVEL.load(Ordering::Relaxed)
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    static WINDOW: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
    /// Some on worker threads: their batch.
    static BATCH: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Starts the logger thread (once). Until it runs, every thread writes directly.
pub fn start_sink() {
    SINK.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(SINK_DEPTH);
        let (back_tx, back_rx) = mpsc::sync_channel::<Vec<u8>>(SINK_DEPTH);
        let (ack_tx, ack_rx) = mpsc::sync_channel::<()>(1);
        let _ = std::thread::Builder::new()
            .name("switchyard-log".into())
            .spawn(move || {
                let mut err = std::io::stderr();
                for mut batch in rx {
                    if batch.is_empty() {
                        let _ = err.flush();
                        let _ = ack_tx.try_send(());
                        continue;
                    }
                    let _ = err.write_all(&batch);
                    batch.clear();
                    let _ = back_tx.try_send(batch);
                    if let Some(s) = SINK.get() {
                        let n = s.dropped.swap(0, Ordering::Relaxed);
                        if n > 0 {
                            let _ = writeln!(
                                err,
                                "warn logger: {n} log batches dropped (stderr too slow)"
                            );
                        }
                    }
                }
            });
        Sink {
            to_logger: tx,
            recycled: Mutex::new(back_rx),
            dropped: AtomicU64::new(0),
            flushed: Mutex::new(ack_rx),
        }
    });
}

/// Waits (up to `timeout`) until the logger thread has written every batch sent before this
/// call. For the end of the process, after the workers flushed and stopped.
pub fn finish(timeout: Duration) {
    let Some(sink) = SINK.get() else { return };
    if sink.to_logger.send(Vec::new()).is_ok() {
        if let Ok(rx) = sink.flushed.lock() {
            let _ = rx.recv_timeout(timeout);
        }
    }
}

/// Makes this thread a worker: its lines are batched (see the module doc).
pub fn init_worker() {
    if SINK.get().is_some() {
        BATCH.with(|b| *b.borrow_mut() = Some(Vec::with_capacity(FLUSH_BYTES * 2)));
    }
}

/// A warning said at most once every so many seconds, whichever thread asks: the "lines
/// dropped" warnings of the queues workers feed without waiting (the usage ledger's, the span
/// exporter's), which would otherwise repeat once per dropped item.
#[derive(Default)]
pub struct Throttle {
    /// Unix second of the last warning allowed.
    last_s: AtomicU64,
}

impl Throttle {
    /// A throttle that has allowed nothing yet.
    pub const fn new() -> Throttle {
        Throttle {
            last_s: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be said at `now_s` (Unix seconds): true at most once every
    /// `every_s` seconds, and to one caller only when several ask at once.
    pub fn allow(&self, now_s: u64, every_s: u64) -> bool {
        let last = self.last_s.load(Ordering::Relaxed);
        now_s >= last + every_s
            && self
                .last_s
                .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Whether this worker holds lines not yet handed to the logger (its housekeeping then
/// flushes within [`FLUSH_INTERVAL`]).
pub fn pending() -> bool {
    BATCH.with(|b| b.borrow().as_ref().is_some_and(|b| !b.is_empty()))
}

/// Hands this worker's batch to the logger thread, without blocking.
pub fn flush_worker() {
    let Some(sink) = SINK.get() else { return };
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let Some(batch) = b.as_mut() else { return };
        if batch.is_empty() {
            return;
        }
        let fresh = sink
            .recycled
            .try_lock()
            .ok()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(FLUSH_BYTES * 2));
        let full = std::mem::replace(batch, fresh);
        match sink.to_logger.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(mut v)) | Err(TrySendError::Disconnected(mut v)) => {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
                v.clear();
                *batch = v;
            }
        }
    });
}

/// Writes one line if `level` is enabled and, for warn/error, within this thread's rate.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if level >= Level::Warn {
        let sec = now.as_secs();
        let (w, n) = WINDOW.with(|c| c.get());
        let (w, n) = if w == sec { (w, n + 1) } else { (sec, 1) };
        WINDOW.with(|c| c.set((w, n)));
        if n > MAX_LINES_PER_SEC {
            return;
        }
    }
    LINE.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        let name = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let _ = write!(l, "{}.{:03} {name} ", now.as_secs(), now.subsec_millis());
        let _ = l.write_fmt(args);
        l.push(b'\n');
        let batched = BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(batch) => {
                if batch.is_empty() {
                    // The worker's housekeeping now has a flush to schedule.
                    crate::chores::ring();
                }
                batch.extend_from_slice(&l);
                Some(batch.len())
            }
            None => None,
        });
        match batched {
            Some(len) if len >= FLUSH_BYTES || level >= Level::Warn => flush_worker(),
            Some(_) => {}
            None => {
                let _ = std::io::stderr().write_all(&l);
            }
        }
    });
}

/// `info!("fmt", args...)`
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
/// `warn!("fmt", args...)`, rate-limited.
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}
/// `error!("fmt", args...)`, rate-limited.
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}
/// `debug!("fmt", args...)`
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { if $crate::log::enabled($crate::log::Level::Debug) { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } };
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    /// Once per window, the first asker in it only.
    #[test]
    fn a_throttle_allows_one_warning_per_window() {
        let t = Throttle::new();
        assert!(t.allow(100, 10));
        assert!(!t.allow(100, 10), "twice in the same second");
        assert!(!t.allow(109, 10), "within the window");
        assert!(t.allow(110, 10), "the window passed");
        assert!(!t.allow(115, 10));
    }
}
