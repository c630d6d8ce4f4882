//! The exporter thread: batches the workers' spans and POSTs them to the collector.
//!
//! Its own thread, so plain blocking sockets with deadlines (`timeout_ms` on the connect and
//! on every read and write), DNS through the system resolver at each new connection, and one
//! kept-alive connection reused across exports. A reused connection the collector closed while
//! idle fails at its first write or read: that export is tried once more on a new one. The
//! request head, the body and the response buffer are reused, so an export allocates nothing
//! once they have grown to fit.

use super::{span, Counters, Msg};
use crate::config::{TelemetryConfig, UpstreamUrl};
use crate::http1::{parse_response_head, ChunkedDecoder, ResponseFraming};
use crate::scan::members::{as_u64, get, str_content};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes of a collector's response read: an OTLP answer is an empty or tiny
/// `ExportTraceServiceResponse`; a larger body is not read and its connection not reused.
const MAX_RESPONSE: usize = 64 * 1024;
/// A response head must fit in this.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// At most one "export failed" warning per this many seconds.
const FAIL_WARN_EVERY: Duration = Duration::from_secs(super::DROP_WARN_EVERY_S);

/// What one export came to.
#[derive(Debug)]
enum Sent {
    /// 2xx: `rejected` spans of the batch the collector said it refused (partial success).
    Accepted { rejected: u64 },
    /// Any other status.
    Refused(u16),
    /// No answer: connect, write or read failed or timed out, or the answer was not HTTP.
    Failed(io::Error),
}

/// The collector's address and a connection to it.
pub(super) struct Collector {
    host: String,
    port: u16,
    /// The request head up to (not including) the `content-length` value.
    head: Vec<u8>,
    timeout: Duration,
    conn: Option<TcpStream>,
    resp: Vec<u8>,
}

impl Collector {
    /// A collector for `cfg` (whose endpoint `validate` checked).
    pub(super) fn new(cfg: &TelemetryConfig) -> Result<Collector, String> {
        let url = UpstreamUrl::parse(&cfg.otlp_endpoint)?;
        let mut head = Vec::with_capacity(256);
        let _ = write!(
            head,
            "POST {}/v1/traces HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\nuser-agent: switchyard/{}\r\n",
            url.prefix,
            url.host_header(),
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in &cfg.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.extend_from_slice(b"content-length: ");
        Ok(Collector {
            host: url.host,
            port: url.port,
            head,
            timeout: Duration::from_millis(cfg.timeout_ms),
            conn: None,
            resp: Vec::with_capacity(4096),
        })
    }

    /// POSTs `body`; a kept connection that fails is replaced once.
    fn post(&mut self, body: &[u8]) -> Sent {
        if self.conn.is_some() {
            match self.exchange(body) {
                Sent::Failed(_) => self.conn = None,
                done => return done,
            }
        }
        match self.connect() {
            Ok(c) => self.conn = Some(c),
            Err(e) => return Sent::Failed(e),
        }
        let r = self.exchange(body);
        if matches!(r, Sent::Failed(_)) {
            self.conn = None;
        }
        r
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to nothing");
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))?;
                    s.set_write_timeout(Some(self.timeout))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One request and its response on the current connection.
    fn exchange(&mut self, body: &[u8]) -> Sent {
        let Some(conn) = self.conn.as_mut() else {
            return Sent::Failed(io::Error::other("not connected"));
        };
        let n = self.head.len();
        crate::http1::write::push_u64(&mut self.head, body.len() as u64);
        self.head.extend_from_slice(b"\r\n\r\n");
        let wrote = conn
            .write_all(&self.head)
            .and_then(|()| conn.write_all(body));
        self.head.truncate(n);
        if let Err(e) = wrote {
            return Sent::Failed(e);
        }
        match read_response(conn, &mut self.resp) {
            Ok((status, keep_alive, body_at)) => {
                if !keep_alive {
                    self.conn = None;
                }
                if (200..300).contains(&status) {
                    Sent::Accepted {
                        rejected: rejected_spans(&self.resp[body_at..]),
                    }
                } else {
                    Sent::Refused(status)
                }
            }
            Err(e) => Sent::Failed(e),
        }
    }
}

/// `partialSuccess.rejectedSpans` of an `ExportTraceServiceResponse` (an int64: a string in
/// proto JSON, a number from some collectors); 0 when absent.
fn rejected_spans(body: &[u8]) -> u64 {
    get(body, b"partialSuccess")
        .and_then(|p| get(p, b"rejectedSpans"))
        .and_then(|v| as_u64(str_content(v).unwrap_or(v)))
        .unwrap_or(0)
}

/// Reads one response into `buf` (cleared first): its status, whether the connection may be
/// reused, and where its (de-chunked) body starts; the body ends at `buf.len()`.
fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u16, bool, usize)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    buf.clear();
    let head = loop {
        if read_some(conn, buf)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match parse_response_head(buf, MAX_RESPONSE_HEAD, false) {
            Ok(Some(h)) if h.is_informational() => {
                buf.drain(..h.head_len);
            }
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(_) => return Err(bad("the collector's answer is not HTTP/1.1")),
        }
    };
    let at = head.head_len;
    let mut keep_alive = head.keep_alive;
    match head.framing {
        ResponseFraming::None => buf.truncate(at),
        ResponseFraming::Length(n) => {
            let n = n as usize;
            if n > MAX_RESPONSE {
                return Err(bad("the collector's answer is too large"));
            }
            while buf.len() < at + n {
                if read_some(conn, buf)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            keep_alive &= buf.len() == at + n;
            buf.truncate(at + n);
        }
        ResponseFraming::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut end = at;
            loop {
                let d = dec
                    .decode_in_place(&mut buf[end..])
                    .map_err(|_| bad("the collector's answer has a malformed chunk"))?;
                end += d.payload;
                if d.done {
                    buf.truncate(end);
                    break;
                }
                buf.truncate(end);
                if buf.len() > at + MAX_RESPONSE {
                    return Err(bad("the collector's answer is too large"));
                }
                if read_some(conn, buf)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        ResponseFraming::CloseDelimited => {
            keep_alive = false;
            while buf.len() < at + MAX_RESPONSE && read_some(conn, buf)? > 0 {}
        }
    }
    Ok((head.status, keep_alive, at))
}

/// Appends one read's bytes to `buf`.
fn read_some(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let len = buf.len();
    buf.resize(len + 4096, 0);
    let r = conn.read(&mut buf[len..]);
    buf.truncate(len + *r.as_ref().unwrap_or(&0));
    r
}

/// The exporter thread's state.
pub(super) struct Exporter {
    collector: Collector,
    back: SyncSender<Vec<u8>>,
    counters: Arc<Counters>,
    batch_max: usize,
    flush: Duration,
    /// The export body: the envelope's prefix stays; spans are appended after it.
    body: Vec<u8>,
    prefix_len: usize,
    /// Spans in the body.
    spans: u64,
    last_warn: Option<Instant>,
}

impl Exporter {
    pub(super) fn new(
        cfg: &TelemetryConfig,
        collector: Collector,
        back: SyncSender<Vec<u8>>,
        counters: Arc<Counters>,
    ) -> Exporter {
        let body = span::envelope(&cfg.service_name);
        Exporter {
            collector,
            back,
            counters,
            batch_max: cfg.batch_max,
            flush: Duration::from_millis(cfg.flush_ms),
            prefix_len: body.len(),
            body,
            spans: 0,
            last_warn: None,
        }
    }

    /// Runs until every sender is gone: waits for a span, then gathers spans until the batch
    /// is full or `flush_ms` passed since the first, and exports them.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            let deadline = Instant::now() + self.flush;
            let mut next = Ok(msg);
            loop {
                match next {
                    Ok(Msg::Span(s)) => {
                        self.add(s);
                        if self.spans as usize >= self.batch_max {
                            break;
                        }
                    }
                    Ok(Msg::Flush(done)) => {
                        self.export();
                        let _ = done.try_send(());
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.export();
                        return;
                    }
                }
                next = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            }
            self.export();
        }
        self.export();
    }

    /// Appends one span to the body and hands its buffer back to the workers.
    fn add(&mut self, mut s: Vec<u8>) {
        if self.spans > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(&s);
        self.spans += 1;
        s.clear();
        let _ = self.back.try_send(s);
    }

    /// POSTs the spans gathered, if any, and counts what became of them.
    fn export(&mut self) {
        if self.spans == 0 {
            return;
        }
        let n = self.spans;
        self.body.extend_from_slice(span::SUFFIX);
        let sent = self.collector.post(&self.body);
        self.body.truncate(self.prefix_len);
        self.spans = 0;
        let why = match sent {
            Sent::Accepted { rejected } => {
                let rejected = rejected.min(n);
                self.counters
                    .exported
                    .fetch_add(n - rejected, std::sync::atomic::Ordering::Relaxed);
                if rejected == 0 {
                    return;
                }
                self.counters
                    .dropped
                    .fetch_add(rejected, std::sync::atomic::Ordering::Relaxed);
                format!("the collector rejected {rejected} of {n} spans")
            }
            Sent::Refused(status) => {
                self.counters
                    .dropped
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                format!("the collector answered {status}; {n} spans dropped")
            }
            Sent::Failed(e) => {
                self.counters
                    .dropped
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                format!("exporting to the collector failed ({e}); {n} spans dropped")
            }
        };
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() >= FAIL_WARN_EVERY)
        {
            self.last_warn = Some(Instant::now());
            crate::warn!("otlp: {why}");
        }
    }
}
