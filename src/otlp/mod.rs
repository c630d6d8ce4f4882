//! OpenTelemetry traces: one span per answered request (the requests that get a ledger line,
//! refusals too), exported to a collector over OTLP/HTTP with JSON bodies (`[telemetry]`,
//! `docs/operations.md`).
//!
//! The worker's part is the ledger's: it encodes its span ([`span::Span::write`]) into a buffer
//! taken from a pool of recycled ones and hands it to the exporter thread through a bounded
//! queue with `try_send`. A full queue drops the span and counts it ([`dropped`], in
//! `/metrics`), with a warning at most once every [`DROP_WARN_EVERY_S`] seconds; a worker never
//! waits on the collector. The exporter thread (`export`) gathers up to `batch_max` spans, or
//! what came within `flush_ms` of the first, and POSTs them as one `ExportTraceServiceRequest`
//! to `{otlp_endpoint}/v1/traces` over a kept-alive blocking socket with `timeout_ms` deadlines.
//! A batch the collector refuses or never answers is dropped and counted, not retried: spans
//! are telemetry, and a retry queue would hold memory exactly when the collector is down.
//!
//! Trace context: a valid W3C `traceparent` on the request makes the span a child of the
//! caller's (its trace id, its span as parent); otherwise the trace id is our own trace id's
//! 16 bytes, so `x-routerly-trace-id` finds the trace in the backend.

mod export;
pub mod span;

pub use span::{parse_traceparent, Span};

use crate::config::TelemetryConfig;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// At most one "spans dropped" warning per this many seconds (as the ledger's).
pub const DROP_WARN_EVERY_S: u64 = 10;
/// Most spans in one export request (`batch_max`'s bound): a batch is ~1-2 KB a span, and a
/// collector refuses bodies past a few MiB (the OpenTelemetry Collector's default
/// `max_request_body_size` is 20 MiB; many gateways in front of one allow less).
pub const MAX_BATCH: usize = 8192;
/// A span buffer starts this big (a span is ~1.3 KB), so encoding rarely grows it.
const SPAN_CAPACITY: usize = 2048;

/// Counters shared by the workers (drops) and the exporter thread (exports, failed batches).
#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    /// The "dropped" warning's rate.
    warned: crate::log::Throttle,
}

impl Counters {
    /// Counts `n` dropped spans and warns, at most once every [`DROP_WARN_EVERY_S`] seconds.
    fn drop_spans(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let now_s = unix_ns() / 1_000_000_000;
        if self.warned.allow(now_s, DROP_WARN_EVERY_S) {
            crate::warn!("otlp: {why}; {total} spans dropped so far");
        }
    }
}

/// What goes to the exporter thread.
enum Msg {
    /// One encoded span object.
    Span(Vec<u8>),
    /// Export what is waiting now, then say so (shutdown).
    Flush(SyncSender<()>),
}

/// The workers' end of the queue to the exporter thread.
struct Queue {
    tx: SyncSender<Msg>,
    /// Exported buffers coming back for reuse (try-locked only: a worker never waits on it).
    recycled: Mutex<Receiver<Vec<u8>>>,
    counters: Arc<Counters>,
}

/// What [`Queue::push`] did with a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pushed {
    Queued,
    Dropped,
}

impl Queue {
    fn push(&self, s: &Span<'_>) -> Pushed {
        let mut buf = self
            .recycled
            .try_lock()
            .ok()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(SPAN_CAPACITY));
        let ids = s.ids(crate::trace::rand_u64());
        s.write(&ids, unix_ns(), &mut buf);
        match self.tx.try_send(Msg::Span(buf)) {
            Ok(()) => Pushed::Queued,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters
                    .drop_spans(1, "queue full (the collector is slower than the traffic)");
                Pushed::Dropped
            }
        }
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Starts the exporter thread when `cfg` names an endpoint (once per process; a reload does
/// not move it). The collector need not be up: exports fail, and are counted, until it is.
pub fn start(cfg: &TelemetryConfig) -> io::Result<()> {
    if cfg.otlp_endpoint.is_empty() || QUEUE.get().is_some() {
        return Ok(());
    }
    let q = start_queue(cfg)?;
    let _ = QUEUE.set(q);
    Ok(())
}

fn start_queue(cfg: &TelemetryConfig) -> io::Result<Queue> {
    let collector = export::Collector::new(cfg).map_err(io::Error::other)?;
    let (tx, rx) = mpsc::sync_channel(cfg.queue_depth);
    let (back_tx, back_rx) = mpsc::sync_channel(cfg.queue_depth);
    let counters = Arc::new(Counters::default());
    let exporter = export::Exporter::new(cfg, collector, back_tx, counters.clone());
    std::thread::Builder::new()
        .name("switchyard-otlp".into())
        .spawn(move || exporter.run(rx))?;
    Ok(Queue {
        tx,
        recycled: Mutex::new(back_rx),
        counters,
    })
}

/// Whether spans are exported at all (skip building one when not).
pub fn enabled() -> bool {
    QUEUE.get().is_some()
}

/// Records one request's span (a worker's call: never blocks).
pub fn record(s: &Span<'_>) {
    if let Some(q) = QUEUE.get() {
        q.push(s);
    }
}

/// Spans the collector accepted.
pub fn exported() -> u64 {
    QUEUE
        .get()
        .map_or(0, |q| q.counters.exported.load(Ordering::Relaxed))
}

/// Spans dropped: the queue was full, or the collector refused, rejected or never answered
/// their export.
pub fn dropped() -> u64 {
    QUEUE
        .get()
        .map_or(0, |q| q.counters.dropped.load(Ordering::Relaxed))
}

/// At shutdown, after the workers stopped: exports the spans still waiting, for at most
/// `timeout` (the main thread's call).
pub fn finish(timeout: Duration) {
    if let Some(q) = QUEUE.get() {
        flush(q, timeout);
    }
}

fn flush(q: &Queue, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let (done_tx, done) = mpsc::sync_channel(1);
    let mut msg = Msg::Flush(done_tx);
    loop {
        match q.tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                msg = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
    done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::trace::TraceId;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn cfg(endpoint: String, depth: usize) -> TelemetryConfig {
        TelemetryConfig {
            otlp_endpoint: endpoint,
            queue_depth: depth,
            batch_max: 2,
            flush_ms: 60_000,
            timeout_ms: 2_000,
            ..TelemetryConfig::default()
        }
    }

    fn span(id: &TraceId) -> Span<'_> {
        Span {
            trace_id: id,
            parent: None,
            started: Instant::now(),
            method: "POST",
            route: "/v1/messages",
            endpoint: Some(Endpoint::Messages),
            status: 200,
            project: None,
            requested_model: None,
            model: None,
            provider: None,
            provider_kind: None,
            attempts: 0,
            usage: None,
            finish: None,
            cost_usd: 0.0,
        }
    }

    /// Reads one request (head and Content-Length body) from `s`.
    fn read_request(s: &mut std::net::TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, buf[end + 4..end + 4 + len].to_vec());
        }
    }

    #[test]
    fn a_full_batch_is_posted_and_counted_and_a_refused_one_dropped() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = cfg(format!("http://{}/base/", l.local_addr().unwrap()), 16);
        c.headers.insert("authorization".into(), "Bearer t".into());
        let q = start_queue(&c).unwrap();
        let id = TraceId::new();
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        let (mut s, _) = l.accept().unwrap();
        let (head, body) = read_request(&mut s);
        assert!(
            head.starts_with("POST /base/v1/traces HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\ncontent-type: application/json"),
            "{head}"
        );
        assert!(head.contains("\r\nauthorization: Bearer t"), "{head}");
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut body.clone()).unwrap();
        use simd_json::prelude::*;
        let spans = &v["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans.as_array().map(Vec::len), Some(2));
        // A partial success: one of the two rejected.
        let answer = r#"{"partialSuccess":{"rejectedSpans":"1"}}"#;
        write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        // The next batch comes on the same, kept-alive connection; a 503 drops it.
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        let _ = read_request(&mut s);
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        // One more, flushed by `finish`'s message rather than a full batch.
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        let flusher = std::thread::spawn({
            let q = Arc::new(q);
            move || (flush(&q, Duration::from_secs(5)), q)
        });
        let (head, body) = read_request(&mut s);
        assert!(head.starts_with("POST /base/v1/traces"), "{head}");
        assert!(!body.is_empty());
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .unwrap();
        let (flushed, q) = flusher.join().unwrap();
        assert!(flushed, "the flush was acknowledged");
        assert_eq!(q.counters.exported.load(Ordering::Relaxed), 2);
        assert_eq!(q.counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // A collector that accepts the connection and never answers: the exporter is stuck
        // in its first export (until its timeout), so the queue fills.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = cfg(format!("http://{}", l.local_addr().unwrap()), 2);
        c.batch_max = 1;
        c.timeout_ms = 60_000;
        let q = start_queue(&c).unwrap();
        let id = TraceId::new();
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        let (mut s, _) = l.accept().unwrap();
        let _ = read_request(&mut s);
        // The exporter holds the first span; the queue has 2 slots.
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        assert_eq!(q.push(&span(&id)), Pushed::Queued);
        let t = Instant::now();
        assert_eq!(q.push(&span(&id)), Pushed::Dropped);
        assert!(t.elapsed() < Duration::from_secs(1), "push never waits");
        assert_eq!(q.counters.dropped.load(Ordering::Relaxed), 1);
    }
}
