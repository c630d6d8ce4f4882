//! The usage ledger and the JSON access log: one JSON line per answered request (refusals
//! too), the same line in both.
//!
//! Workers never touch a file: a worker formats its lines ([`Entry::write`]) one after the other
//! into one batch buffer taken from a pool of recycled ones (no allocation once the pool is
//! warm), and hands the whole batch to the writer thread as one message through a bounded
//! queue with `try_send` ([`flush_worker`]: from its housekeeping within `log::FLUSH_INTERVAL`
//! of the first line, or at [`HAND_OVER_LINES`]). So the writer thread wakes once per batch:
//! waking it per line (a futex wake, the writer's run, a flush and a preemption of the worker on
//! a shared core) cost a third of the gateway's throughput at full load. When the queue holds
//! `queue_depth` lines a batch is dropped and its lines counted ([`dropped`], in `/metrics`),
//! and a warning says so at most once every [`DROP_WARN_EVERY_S`] seconds: a slow disk costs
//! lines, never a worker's time. The writer
//! appends to the ledger through a buffer flushed whenever the queue runs dry, renames the
//! file to `<ledger>.1` (shifting older ones up to `ledger_keep`) before it would pass
//! `ledger_max_bytes`, and writes the access log on stderr in writes of whole lines of at
//! most `PIPE_BUF` bytes (atomic on a pipe, so never interleaved with the log thread's lines).
//!
//! Fields (documented for operators in `docs/operations.md`): `ts` (RFC 3339 UTC, millis),
//! `trace_id`, `project`, `token_id` (the first 6 bytes of the token's SHA-256 digest in hex,
//! never the token), `route`, `model`, `provider`, `status`, `attempts`, `input_tokens`,
//! `output_tokens`, `cached_tokens`, `cost_usd`, `latency_ms`, `ttfb_ms`.

use crate::config::UsageConfig;
use crate::digits::{push_hex, push_padded, push_u64};
use crate::relay::Usage;
use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

/// At most one "lines dropped" warning per this many seconds.
pub const DROP_WARN_EVERY_S: u64 = 10;
/// A line is ~350 bytes: a batch buffer starts big enough for a full batch of them.
const LINE_CAPACITY: usize = 512;
/// Bytes of the token digest shown as `token_id`: enough to tell tokens apart, too few to
/// stand for one.
pub const TOKEN_ID_BYTES: usize = 6;

/// One request's ledger line, borrowed from the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entry<'a> {
    /// When the answer was finished, ms since the Unix epoch.
    pub ts_ms: u64,
    /// The request's trace id.
    pub trace_id: &'a str,
    /// Project slug, when the token was accepted.
    pub project: Option<&'a str>,
    /// The token's SHA-256 digest, when the token was accepted.
    pub token_digest: Option<&'a [u8; 32]>,
    /// The route (endpoint path).
    pub route: &'a str,
    /// The model that answered (or the last tried).
    pub model: Option<&'a str>,
    /// Its provider.
    pub provider: Option<&'a str>,
    /// Status sent to the client.
    pub status: u16,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Tokens the upstream reported.
    pub usage: Option<Usage>,
    /// USD, from the reported tokens at the model's prices (0 without usage).
    pub cost_usd: f64,
    /// From the request being read to the answer written, ms.
    pub latency_ms: f64,
    /// Upstream time to first byte, ms.
    pub ttfb_ms: Option<f64>,
}

impl Entry<'_> {
    /// Appends the line, newline included.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":\"");
        push_rfc3339(out, self.ts_ms);
        out.extend_from_slice(b"\",\"trace_id\":");
        push_str(out, Some(self.trace_id));
        out.extend_from_slice(b",\"project\":");
        push_str(out, self.project);
        out.extend_from_slice(b",\"token_id\":");
        match self.token_digest {
            Some(d) => {
                out.push(b'"');
                for b in &d[..TOKEN_ID_BYTES] {
                    push_hex(out, *b);
                }
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"route\":");
        push_str(out, Some(self.route));
        out.extend_from_slice(b",\"model\":");
        push_str(out, self.model);
        out.extend_from_slice(b",\"provider\":");
        push_str(out, self.provider);
        // Digits by hand, not `core::fmt`: this runs on the worker for every request, and the
        // formatting machinery was most of the line's cost.
        let u = self.usage;
        let tok = |f: fn(&Usage) -> u64| u.as_ref().map(f);
        out.extend_from_slice(b",\"status\":");
        push_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"attempts\":");
        push_u64(out, u64::from(self.attempts));
        out.extend_from_slice(b",\"input_tokens\":");
        push_opt(out, tok(|u| u.input));
        out.extend_from_slice(b",\"output_tokens\":");
        push_opt(out, tok(|u| u.output));
        out.extend_from_slice(b",\"cached_tokens\":");
        push_opt(out, tok(|u| u.cache_read));
        out.extend_from_slice(b",\"cost_usd\":");
        if self.cost_usd == 0.0 {
            out.push(b'0');
        } else {
            // The shortest text that reads back as the same f64.
            let _ = write!(out, "{}", self.cost_usd);
        }
        out.extend_from_slice(b",\"latency_ms\":");
        push_ms(out, self.latency_ms);
        out.extend_from_slice(b",\"ttfb_ms\":");
        match self.ttfb_ms {
            Some(t) => push_ms(out, t),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}\n");
    }
}

/// A number or `null`.
fn push_opt(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Milliseconds with three decimals (microseconds), rounded: `12.345`.
fn push_ms(out: &mut Vec<u8>, ms: f64) {
    let us = (ms.max(0.0) * 1000.0).round() as u64;
    push_u64(out, us / 1000);
    out.push(b'.');
    push_padded(out, us % 1000, 3);
}

/// A JSON string (RFC 8259 §7 escapes) or `null`.
fn push_str(out: &mut Vec<u8>, s: Option<&str>) {
    let Some(s) = s else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    let mut rest = s.as_bytes();
    // Plain runs copied whole; only the bytes that need an escape are looked at one by one.
    while let Some(i) = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        out.extend_from_slice(&rest[..i]);
        match rest[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b => {
                out.extend_from_slice(b"\\u00");
                push_hex(out, b);
            }
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC).
pub fn push_rfc3339(out: &mut Vec<u8>, ms: u64) {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    push_padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, m as u64, 2);
    out.push(b'-');
    push_padded(out, d as u64, 2);
    out.push(b'T');
    push_padded(out, rem / 3600, 2);
    out.push(b':');
    push_padded(out, rem % 3600 / 60, 2);
    out.push(b':');
    push_padded(out, rem % 60, 2);
    out.push(b'.');
    push_padded(out, ms % 1000, 3);
    out.push(b'Z');
}

/// Where the writer thread puts lines.
pub trait Sink: Send + 'static {
    /// Writes one line (newline included).
    fn line(&mut self, line: &[u8]);
    /// Writes a batch of whole lines (each ending in a newline).
    fn batch(&mut self, lines: &[u8]) {
        for line in lines.split_inclusive(|b| *b == b'\n') {
            self.line(line);
        }
    }
    /// The queue ran dry: push buffered lines out.
    fn flush(&mut self) {}
}

/// The ledger file, rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max: u64,
    keep: u32,
}

impl RotatingFile {
    /// Opens (appends to) `path`.
    pub fn open(path: impl Into<PathBuf>, max: u64, keep: u32) -> io::Result<RotatingFile> {
        let path = path.into();
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = f.metadata()?.len();
        Ok(RotatingFile {
            path,
            out: BufWriter::with_capacity(64 * 1024, f),
            size,
            max,
            keep,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, f);
        self.size = 0;
        Ok(())
    }
}

impl Sink for RotatingFile {
    fn line(&mut self, line: &[u8]) {
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            if let Err(e) = self.rotate() {
                crate::warn!("usage ledger: rotating {}: {e}", self.path.display());
            }
        }
        if self.out.write_all(line).is_ok() {
            self.size += line.len() as u64;
        }
    }
    fn batch(&mut self, lines: &[u8]) {
        // Line by line only when this batch would pass the size: the rotation falls between
        // two lines.
        if self.size + lines.len() as u64 > self.max {
            for line in lines.split_inclusive(|b| *b == b'\n') {
                self.line(line);
            }
        } else if self.out.write_all(lines).is_ok() {
            self.size += lines.len() as u64;
        }
    }
    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// The access log on stderr: whole lines, in writes of at most [`PIPE_BUF`] bytes, which a
/// pipe never interleaves with another writer's (the log thread's lines).
pub struct Stderr;

/// POSIX's bound on an atomic write to a pipe (Linux: 4096).
const PIPE_BUF: usize = 4096;

impl Sink for Stderr {
    fn line(&mut self, line: &[u8]) {
        let _ = io::stderr().write_all(line);
    }
    fn batch(&mut self, lines: &[u8]) {
        let mut rest = lines;
        while !rest.is_empty() {
            let cut = pipe_write_len(rest);
            let _ = io::stderr().write_all(&rest[..cut]);
            rest = &rest[cut..];
        }
    }
}

/// How much of `lines` one write takes: the most whole lines within [`PIPE_BUF`] bytes, or
/// one longer line alone.
fn pipe_write_len(lines: &[u8]) -> usize {
    match memchr::memrchr(b'\n', &lines[..lines.len().min(PIPE_BUF)]) {
        Some(i) => i + 1,
        None => memchr::memchr(b'\n', lines).map_or(lines.len(), |i| i + 1),
    }
}

/// The access log in a file (appended, not rotated: that is logrotate's job, `copytruncate`).
pub struct Appended(BufWriter<File>);
impl Appended {
    /// Opens (appends to) `path`.
    pub fn open(path: &str) -> io::Result<Appended> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Appended(BufWriter::with_capacity(64 * 1024, f)))
    }
}
impl Sink for Appended {
    fn line(&mut self, line: &[u8]) {
        let _ = self.0.write_all(line);
    }
    fn batch(&mut self, lines: &[u8]) {
        let _ = self.0.write_all(lines);
    }
    fn flush(&mut self) {
        let _ = self.0.flush();
    }
}

/// Lines handed to the writer together: whole lines, one after the other. No lines: the
/// shutdown's flush marker.
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

/// The workers' end of the queue to the writer thread.
pub struct Queue {
    tx: SyncSender<Batch>,
    /// Written buffers coming back for reuse (try-locked only: a worker never waits on it).
    recycled: Mutex<Receiver<Vec<u8>>>,
    dropped: AtomicU64,
    /// Lines queued and not yet taken by the writer (shared with it: it counts them down).
    depth: Arc<AtomicU64>,
    /// Most lines queued at once (`queue_depth`).
    max_depth: u64,
    /// The writer's answer to a flush marker (an empty line), for the shutdown.
    flushed: Mutex<Receiver<()>>,
    /// The "dropped" warning's rate.
    warned: crate::log::Throttle,
}

/// What [`Queue::push`] did with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The queue was full (or the writer gone): dropped and counted.
    Dropped,
}

impl Queue {
    /// Starts a writer thread feeding `sinks`, behind a queue of `depth` lines.
    pub fn start(depth: usize, mut sinks: Vec<Box<dyn Sink>>) -> io::Result<Queue> {
        // A batch holds at least one line: `depth` messages never bind before `depth` lines.
        let (tx, rx) = mpsc::sync_channel::<Batch>(depth.max(1));
        let (back_tx, back_rx) = mpsc::sync_channel::<Vec<u8>>(depth.max(1));
        let queued = Arc::new(AtomicU64::new(0));
        let taken = queued.clone();
        let (flushed_tx, flushed_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("switchyard-ledger".into())
            .spawn(move || {
                let mut next = rx.recv().ok();
                while let Some(Batch { mut bytes, lines }) = next {
                    if lines == 0 {
                        // The shutdown's marker: everything before it is written; flush.
                        for s in sinks.iter_mut() {
                            s.flush();
                        }
                        let _ = flushed_tx.send(());
                        next = rx.recv().ok();
                        continue;
                    }
                    taken.fetch_sub(lines, Ordering::Relaxed);
                    for s in sinks.iter_mut() {
                        s.batch(&bytes);
                    }
                    bytes.clear();
                    let _ = back_tx.try_send(bytes);
                    next = match rx.try_recv() {
                        Ok(l) => Some(l),
                        Err(_) => {
                            for s in sinks.iter_mut() {
                                s.flush();
                            }
                            rx.recv().ok()
                        }
                    };
                }
                for s in sinks.iter_mut() {
                    s.flush();
                }
            })?;
        Ok(Queue {
            tx,
            recycled: Mutex::new(back_rx),
            dropped: AtomicU64::new(0),
            depth: queued,
            max_depth: depth.max(1) as u64,
            flushed: Mutex::new(flushed_rx),
            warned: crate::log::Throttle::new(),
        })
    }

    /// Formats `e` and queues it alone, never waiting.
    pub fn push(&self, e: &Entry<'_>) -> Pushed {
        let mut buf = self.buffer();
        e.write(&mut buf);
        self.send(buf, 1, e.ts_ms / 1000)
    }

    /// An empty batch buffer, recycled when one is free.
    fn buffer(&self) -> Vec<u8> {
        self.recycled
            .try_lock()
            .ok()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(LINE_CAPACITY * HAND_OVER_LINES))
    }

    /// Queues `lines` whole lines, never waiting; `now_s` rate-limits the warning.
    fn send(&self, bytes: Vec<u8>, lines: u64, now_s: u64) -> Pushed {
        // Counted up before the send so the writer's count-down never goes below zero.
        let queued = self.depth.fetch_add(lines, Ordering::Relaxed) + lines;
        let sent = queued <= self.max_depth && self.tx.try_send(Batch { bytes, lines }).is_ok();
        if sent {
            return Pushed::Queued;
        }
        self.depth.fetch_sub(lines, Ordering::Relaxed);
        let n = self.dropped.fetch_add(lines, Ordering::Relaxed) + lines;
        if self.warned.allow(now_s, DROP_WARN_EVERY_S) {
            crate::warn!("usage ledger: queue full, {n} lines dropped so far (disk too slow)");
        }
        Pushed::Dropped
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until every line queued so far is written and flushed. For the
    /// shutdown, after the workers stopped: what was answered is in the ledger when the process
    /// exits.
    pub fn finish(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut marker = Batch {
            bytes: Vec::new(),
            lines: 0,
        };
        loop {
            match self.tx.try_send(marker) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    marker = m;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        self.flushed
            .lock()
            .map(|r| r.recv_timeout(left).is_ok())
            .unwrap_or(false)
    }

    /// Lines handed over and not yet taken by the writer.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Opens the ledger and the access log `cfg` names and starts the writer thread (once per
/// process; a reload does not move the files). Nothing starts when both are off.
pub fn start(cfg: &UsageConfig) -> io::Result<()> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if !cfg.ledger.is_empty() {
        sinks.push(Box::new(RotatingFile::open(
            &cfg.ledger,
            cfg.ledger_max_bytes,
            cfg.ledger_keep,
        )?));
    }
    match cfg.access_log.as_str() {
        "" => {}
        "stderr" => sinks.push(Box::new(Stderr)),
        path => sinks.push(Box::new(Appended::open(path)?)),
    }
    if sinks.is_empty() || QUEUE.get().is_some() {
        return Ok(());
    }
    let q = Queue::start(cfg.queue_depth, sinks)?;
    let _ = QUEUE.set(q);
    Ok(())
}

/// Whether lines are recorded at all (skip building an entry when not).
pub fn enabled() -> bool {
    QUEUE.get().is_some()
}

/// Writes out every queued line before the process exits (see [`Queue::finish`]); true when
/// the ledger is off or all were written in time.
pub fn finish(timeout: std::time::Duration) -> bool {
    QUEUE.get().is_none_or(|q| q.finish(timeout))
}

/// Lines waiting for the writer now (0 when the ledger is off).
pub fn depth() -> u64 {
    QUEUE.get().map_or(0, Queue::depth)
}

/// A worker hands its held lines over on its own once it holds this many: under load the
/// writer wakes at most once per this many lines, and a batch stays far below the queue's depth.
pub const HAND_OVER_LINES: usize = 64;

thread_local! {
    /// Whether this thread is a worker, whose lines are held for [`flush_worker`].
    static HOLDS: Cell<bool> = const { Cell::new(false) };
    /// The lines this worker holds (formatted, one after the other) and how many.
    static HELD: RefCell<(Vec<u8>, u64)> = const { RefCell::new((Vec::new(), 0)) };
}

/// Makes this thread a worker whose lines are held and handed over in batches; its
/// housekeeping calls [`flush_worker`] within `log::FLUSH_INTERVAL` of [`pending`] turning true
/// (woken by [`crate::chores::ring`]), and once more when it stops.
pub fn init_worker() {
    HOLDS.set(true);
}

/// Records one request (a worker's call: never blocks).
pub fn record(e: &Entry<'_>) {
    let Some(q) = QUEUE.get() else { return };
    if !HOLDS.get() {
        q.push(e);
        return;
    }
    let full = HELD.with(|h| {
        let (buf, lines) = &mut *h.borrow_mut();
        if *lines == 0 {
            if buf.capacity() == 0 {
                *buf = q.buffer();
            }
            crate::chores::ring();
        }
        e.write(buf);
        *lines += 1;
        *lines >= HAND_OVER_LINES as u64
    });
    if full {
        flush_worker();
    }
}

/// Whether this worker holds lines not yet handed to the writer.
pub fn pending() -> bool {
    HELD.with(|h| h.borrow().1 > 0)
}

/// Hands this worker's held lines to the writer thread, never waiting (a full queue drops and
/// counts them, as [`Queue::push`] does).
pub fn flush_worker() {
    let Some(q) = QUEUE.get() else { return };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let batch = HELD.with(|h| {
        let (buf, lines) = &mut *h.borrow_mut();
        (*lines > 0).then(|| (std::mem::take(buf), std::mem::replace(lines, 0)))
    });
    if let Some((bytes, lines)) = batch {
        q.send(bytes, lines, now_s);
    }
}

/// Lines dropped because the writer fell behind.
pub fn dropped() -> u64 {
    QUEUE.get().map_or(0, Queue::dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Sender};

    #[test]
    fn stderr_writes_are_whole_lines_within_pipe_buf() {
        let mut batch = Vec::new();
        for (i, len) in [1000, 3000, 100, 5000, 10].into_iter().enumerate() {
            batch.extend(std::iter::repeat_n(b'a' + i as u8, len - 1));
            batch.push(b'\n');
        }
        let mut parts = Vec::new();
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let cut = pipe_write_len(rest);
            parts.push(cut);
            rest = &rest[cut..];
        }
        // 1000 + 3000 fit together; 100 alone (5000 would pass PIPE_BUF); 5000 alone; 10.
        assert_eq!(parts, [4000, 100, 5000, 10]);
        assert_eq!(pipe_write_len(b"no newline"), 10);
    }

    #[test]
    fn numbers_and_strings_are_written_by_hand_as_fmt_would() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            out.clear();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for (ms, want) in [
            (0.0, "0.000"),
            (1.2345, "1.235"),
            (0.0004, "0.000"),
            (12.0, "12.000"),
            (1234.5, "1234.500"),
        ] {
            out.clear();
            push_ms(&mut out, ms);
            assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{ms}");
        }
        out.clear();
        push_str(&mut out, Some("a\"b\\c\n\u{1}d é"));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "\"a\\\"b\\\\c\\u000a\\u0001d é\""
        );
    }

    #[test]
    fn rfc3339_dates() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_796_258_096_789, "2026-12-03T00:34:56.789Z"),
        ] {
            let mut out = Vec::new();
            push_rfc3339(&mut out, ms);
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        }
    }

    #[test]
    fn line_is_json_with_every_field() {
        let d = [0xabu8; 32];
        let e = Entry {
            ts_ms: 1_000,
            trace_id: "t\"1",
            project: Some("p"),
            token_digest: Some(&d),
            route: "/v1/chat/completions",
            model: None,
            status: 404,
            ..Entry::default()
        };
        let mut out = Vec::new();
        e.write(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out.clone()).unwrap();
        use simd_json::prelude::*;
        assert_eq!(v["trace_id"].as_str(), Some("t\"1"));
        assert_eq!(v["token_id"].as_str(), Some("abababababab"));
        assert!(v["model"].is_null() && v["input_tokens"].is_null());
        assert_eq!(v["status"].as_u64(), Some(404));
    }

    /// A sink that blocks in its first write until released.
    struct Blocked {
        entered: Sender<()>,
        release: Receiver<()>,
        lines: Sender<Vec<u8>>,
    }
    impl Sink for Blocked {
        fn line(&mut self, line: &[u8]) {
            let _ = self.entered.send(());
            let _ = self.release.recv();
            let _ = self.lines.send(line.to_vec());
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (entered_tx, entered) = channel();
        let (release, release_rx) = channel();
        let (lines_tx, lines) = channel();
        let sink = Blocked {
            entered: entered_tx,
            release: release_rx,
            lines: lines_tx,
        };
        let depth = 4;
        let q = Queue::start(depth, vec![Box::new(sink)]).unwrap();
        let e = Entry {
            trace_id: "x",
            route: "/v1/messages",
            status: 200,
            ..Entry::default()
        };
        assert_eq!(q.push(&e), Pushed::Queued);
        // The writer holds the first line, stuck in the sink: the queue has `depth` slots.
        entered.recv().unwrap();
        for _ in 0..depth {
            assert_eq!(q.push(&e), Pushed::Queued);
        }
        assert_eq!(q.push(&e), Pushed::Dropped);
        assert_eq!(q.push(&e), Pushed::Dropped);
        assert_eq!(q.dropped(), 2);
        for _ in 0..=depth {
            release.send(()).unwrap();
        }
        for _ in 0..=depth {
            lines.recv().unwrap();
        }
    }

    #[test]
    fn the_ledger_rotates_at_its_size_and_keeps_n_files() {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-ledger-rotate-{}-{}",
            std::process::id(),
            crate::route::stats::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("usage.ndjson");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        let line = [b'x'; 39];
        let mut l = line.to_vec();
        l.push(b'\n');
        for _ in 0..10 {
            f.line(&l);
        }
        f.flush();
        let len = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
        assert_eq!(len(path.clone()), Some(80), "two lines fit under 100 bytes");
        assert_eq!(len(f.rotated(1)), Some(80));
        assert_eq!(len(f.rotated(2)), Some(80));
        assert_eq!(len(f.rotated(3)), None, "only `keep` rotated files");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
