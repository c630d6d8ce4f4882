//! Logging: one line per event on stderr, `ts level msg key=value...`, written with one `write`
//! call so lines from several workers never interleave.
//!
//! Nothing on the hot path logs per chunk; warnings and errors are rate-limited per thread
//! ([`MAX_LINES_PER_SEC`]) so a flood of bad clients cannot turn logging into the bottleneck.
//! Callers never pass keys or tokens: provider keys live only in `route::Provider`, whose
//! `Debug` redacts them.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
        let _ = std::io::stderr().write_all(&l);
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
