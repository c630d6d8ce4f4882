//! Per-worker pool of idle keep-alive upstream connections.
//!
//! Owned by one worker (a `RefCell`, never borrowed across an await), keyed by the provider's
//! `pool_key` (scheme, host, port). LIFO, so the warmest connection is reused first and the coldest ages out. A
//! connection enters the pool only after a response was read to its exact end on a keep-alive
//! exchange; one that saw a framing error, an early close, a close-delimited body or a
//! timeout is dropped instead (the caller decides, see `upstream::Exchange::finish`).

use super::UpstreamStream;
use crate::netio::Peek;
use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// An idle connection older than this is closed rather than reused: providers close idle
/// keep-alive connections after 60-90 s, and a write on a half-closed one costs a retry.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(30);

/// Idle connections to one address, oldest first, with the time each went idle.
type IdleList = Vec<(UpstreamStream, Instant)>;

/// Idle connections younger than this are reused without a liveness peek.
pub const PEEK_AFTER: Duration = Duration::from_millis(500);

/// The idle connections of one worker.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<Vec<(u64, IdleList)>>,
    /// Whether the worker's housekeeping has been told there is something to sweep: set by the
    /// first [`Pool::put`] after a sweep that left the pool empty (which rings it once, not per
    /// request), cleared by that sweep.
    armed: Cell<bool>,
}

impl Pool {
    /// Takes a live idle connection to `addr`, if any. Connections too old are dropped, and
    /// one idle longer than [`PEEK_AFTER`] is first checked with a non-blocking peek (dropped
    /// when it reads end-of-stream or an error). Under load connections come back within
    /// milliseconds and skip the peek: it is a syscall that takes the socket lock, and the
    /// profile showed it as the largest single cost per request. The rare connection that dies
    /// in that window is caught by `upstream::send`'s one retry on a fresh connection.
    pub fn take(&self, key: u64) -> Option<UpstreamStream> {
        let mut idle = self.idle.borrow_mut();
        let list = &mut idle.iter_mut().find(|(a, _)| *a == key)?.1;
        while let Some((s, since)) = list.pop() {
            let age = since.elapsed();
            if age < MAX_IDLE_AGE && (age < PEEK_AFTER || still_open(&s)) {
                return Some(s);
            }
        }
        None
    }

    /// Returns a connection after a clean keep-alive exchange; drops it when `max_idle`
    /// connections to `addr` already wait.
    pub fn put(&self, key: u64, s: UpstreamStream, max_idle: usize) {
        let mut idle = self.idle.borrow_mut();
        let pos = match idle.iter().position(|(a, _)| *a == key) {
            Some(p) => p,
            None => {
                idle.push((key, Vec::new()));
                idle.len() - 1
            }
        };
        let list = &mut idle[pos].1;
        if list.len() < max_idle {
            list.push((s, Instant::now()));
            if !self.armed.replace(true) {
                crate::chores::ring();
            }
        }
    }

    /// Whether [`Pool::evict_idle`] has anything to do: connections went in since the last
    /// sweep that found the pool empty. An empty pool needs no periodic sweep.
    pub fn wants_sweep(&self) -> bool {
        self.armed.get()
    }

    /// Closes idle connections past [`MAX_IDLE_AGE`] or closed by the peer, so a quiet worker
    /// does not hold sockets the provider has long given up on. Called periodically while
    /// [`Pool::wants_sweep`]; a sweep that leaves the pool empty stops that until the next put.
    pub fn evict_idle(&self) {
        let mut idle = self.idle.borrow_mut();
        for (_, list) in idle.iter_mut() {
            list.retain(|(s, since)| since.elapsed() < MAX_IDLE_AGE && still_open(s));
        }
        if idle.iter().all(|(_, l)| l.is_empty()) {
            self.armed.set(false);
        }
    }

    /// Idle connections to `addr` (tests, metrics).
    pub fn idle_count(&self, key: u64) -> usize {
        self.idle
            .borrow()
            .iter()
            .find(|(a, _)| *a == key)
            .map_or(0, |(_, l)| l.len())
    }
}

/// Whether an idle connection is still open. A pending EOF or error means it is dead. Pending
/// data on a plain connection is a protocol violation (nothing was asked); on TLS it is
/// normal (TLS 1.3 session tickets arrive after the handshake), so only EOF counts there.
fn still_open(s: &UpstreamStream) -> bool {
    let Some(tcp) = s.tcp() else { return false };
    match crate::netio::peek(tcp.as_raw_fd()) {
        Peek::Empty => true,
        Peek::Data => s.is_tls(),
        Peek::Closed => false,
    }
}
