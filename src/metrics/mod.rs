//! Counters, sharded per worker, and their Prometheus text rendering.
//!
//! Two kinds: the unlabelled process counters here ([`CoreStats`]: connections, every HTTP
//! response by status class, upstream connections), and the labelled request metrics of
//! [`series`] (by route, project, model, provider and status class, with histograms).
//!
//! Each worker owns one cache-line-padded [`CoreStats`] slot and is its only writer: it bumps a
//! counter with a relaxed load and store (no read-modify-write, so no cache line bounces
//! between cores). The admin endpoint sums the slots when scraped.

pub mod hist;
pub mod series;

use std::sync::atomic::{AtomicU64, Ordering};

/// What a worker counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Connections accepted.
    ConnectionsAccepted,
    /// Connections open now (incremented on accept, decremented on close).
    ConnectionsOpen,
    /// HTTP responses sent (any status, refusals of malformed requests included).
    Requests,
    /// Requests in flight now.
    InFlight,
    /// 2xx answers.
    Status2xx,
    /// 4xx answers.
    Status4xx,
    /// 5xx answers.
    Status5xx,
    /// Streams relayed.
    Streams,
    /// Streams being relayed now.
    StreamsOpen,
    /// Upstream connections opened.
    UpstreamConnects,
    /// Upstream requests sent on a pooled connection.
    UpstreamReused,
    /// Upstream failures (connect, timeout, 5xx, 429, broken response).
    UpstreamErrors,
    /// Connection tasks that panicked (bugs; the worker survives).
    Panics,
    /// Bytes of request bodies held now (read buffers grown for a body, until its request is
    /// answered); bounded per worker by `max_body_memory_per_worker`.
    BodyBytes,
    /// Requests shed with 503 because their body would have passed that bound.
    BodyShed,
    /// `mock-upstream`: answers given (any status).
    MockReplies,
    /// `mock-upstream`: injected failures (`--fail-rate`: error statuses and cut streams).
    MockInjectedFailures,
    /// `mock-upstream`: streams cut (injected, or asked by a `cut-` model).
    MockCutStreams,
    /// `mock-upstream`: streams that stall once (`--stall-rate`).
    MockStalls,
    /// `mock-upstream`: output tokens of its 200 answers.
    MockOutputTokens,
}

const COUNTERS: usize = Counter::MockOutputTokens as usize + 1;

const NAMES: [(&str, &str, &str); COUNTERS] = [
    (
        "switchyard_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    ),
    (
        "switchyard_connections_open",
        "gauge",
        "Client connections open.",
    ),
    // Only summed for the drain; rendered by class below.
    ("", "", ""),
    (
        "switchyard_requests_in_flight",
        "gauge",
        "Requests being served.",
    ),
    (
        "switchyard_http_responses_total{code=\"2xx\"}",
        "counter",
        "HTTP responses sent by status class, refusals of malformed requests included.",
    ),
    ("switchyard_http_responses_total{code=\"4xx\"}", "", ""),
    ("switchyard_http_responses_total{code=\"5xx\"}", "", ""),
    (
        "switchyard_streams_total",
        "counter",
        "Streaming responses relayed.",
    ),
    (
        "switchyard_streams_open",
        "gauge",
        "Streams being relayed now.",
    ),
    (
        "switchyard_upstream_connects_total",
        "counter",
        "Upstream connections opened.",
    ),
    (
        "switchyard_upstream_reused_total",
        "counter",
        "Upstream requests on a pooled connection.",
    ),
    (
        "switchyard_upstream_errors_total",
        "counter",
        "Upstream failures.",
    ),
    (
        "switchyard_panics_total",
        "counter",
        "Connection tasks that panicked.",
    ),
    (
        "switchyard_request_body_bytes",
        "gauge",
        "Bytes of request bodies held in memory.",
    ),
    (
        "switchyard_body_memory_shed_total",
        "counter",
        "Requests shed with 503: their body would pass max_body_memory_per_worker.",
    ),
    (
        "switchyard_mock_replies_total",
        "counter",
        "Mock provider answers (mock-upstream).",
    ),
    (
        "switchyard_mock_injected_failures_total",
        "counter",
        "Mock provider injected failures: error statuses and cut streams.",
    ),
    (
        "switchyard_mock_cut_streams_total",
        "counter",
        "Mock provider streams cut mid-answer.",
    ),
    (
        "switchyard_mock_stalls_total",
        "counter",
        "Mock provider streams that stall once midway.",
    ),
    (
        "switchyard_mock_output_tokens_total",
        "counter",
        "Mock provider output tokens answered.",
    ),
];

/// One worker's counters, padded to their own cache lines.
#[repr(align(128))]
pub struct CoreStats {
    slots: [AtomicU64; COUNTERS],
}

impl Default for CoreStats {
    fn default() -> Self {
        CoreStats {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl CoreStats {
    /// Adds one. Only the owning worker calls this.
    #[inline]
    pub fn inc(&self, c: Counter) {
        let s = &self.slots[c as usize];
        s.store(s.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// Subtracts one (gauges). Only the owning worker calls this.
    #[inline]
    pub fn dec(&self, c: Counter) {
        let s = &self.slots[c as usize];
        s.store(s.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
    }

    /// Adds `n` (a gauge of bytes, or a counter of tokens). Only the owning worker calls this.
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        let s = &self.slots[c as usize];
        s.store(s.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n`. Only the owning worker calls this.
    #[inline]
    pub fn sub(&self, c: Counter, n: u64) {
        let s = &self.slots[c as usize];
        s.store(s.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }

    /// Counts a response by status class.
    pub fn status(&self, status: u16) {
        self.inc(Counter::Requests);
        match status {
            200..=299 => self.inc(Counter::Status2xx),
            400..=499 => self.inc(Counter::Status4xx),
            500..=599 => self.inc(Counter::Status5xx),
            _ => {}
        }
    }

    /// Reads a counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.slots[c as usize].load(Ordering::Relaxed)
    }
}

/// Sums a counter over all workers.
pub fn total(stats: &[CoreStats], c: Counter) -> u64 {
    stats.iter().fold(0u64, |a, s| a.wrapping_add(s.get(c)))
}

/// Renders every counter, summed over workers, in Prometheus text format 0.0.4.
pub fn render(stats: &[CoreStats], out: &mut String) {
    use std::fmt::Write;
    for (i, (name, kind, help)) in NAMES.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let sum = stats.iter().fold(0u64, |a, s| {
            a.wrapping_add(s.slots[i].load(Ordering::Relaxed))
        });
        if !kind.is_empty() {
            let family = &name[..name.find('{').unwrap_or(name.len())];
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        }
        let _ = writeln!(out, "{name} {}", sum as i64);
    }
    #[cfg(feature = "count-allocs")]
    let _ = writeln!(
        out,
        "# HELP switchyard_allocations_total Heap allocations, all threads (count-allocs builds).\n# TYPE switchyard_allocations_total counter\nswitchyard_allocations_total {}",
        crate::alloc_count::total()
    );
    let _ = writeln!(
        out,
        "# HELP switchyard_workers Worker threads.\n# TYPE switchyard_workers gauge\nswitchyard_workers {}",
        stats.len()
    );
}

/// Holds a gauge up for as long as it lives (a stream open, say), however its holder ends.
pub struct Held<'a>(&'a CoreStats, Counter);

impl<'a> Held<'a> {
    /// Raises `c` on `stats` until dropped.
    pub fn new(stats: &'a CoreStats, c: Counter) -> Held<'a> {
        stats.inc(c);
        Held(stats, c)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.dec(self.1);
    }
}
