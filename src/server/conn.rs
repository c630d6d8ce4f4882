//! One client connection: the keep-alive loop, request framing, deadlines, pipelining.
//!
//! A request takes this path: read until a whole head is buffered (within
//! `header_timeout`, and `idle_timeout` while nothing has arrived), parse it strictly
//! (`http1::head`, at most `max_headers` fields, a valid `Host`), decide its framing
//! (`http1::framing`; a POST with neither length is 411), let the service admit it on the head
//! alone ([`Service::admit`]: token, route), answer `Expect: 100-continue`, read the body
//! (Content-Length or chunked, within `max_body_bytes` and `body_timeout`), hand it to the
//! service, and loop. Pipelined requests are answered in order because each is handled to
//! completion before the next head is parsed; their bytes simply wait in the read buffer.
//!
//! Memory: nothing is set aside for a body before its request is admitted, and then the read
//! buffer grows as the bytes arrive (never up front from a declared length), a chunked body
//! being decoded in place in it (one copy). What bodies hold is charged to the worker
//! ([`Counter::BodyBytes`]) until the request is answered; a body that would take it past
//! `max_body_memory_per_worker` is shed with 503 instead.
//!
//! Invariant: after a framing error, an oversized head or body, a refusal with its body
//! unread, or a timeout, the connection is closed after the error answer, so no byte of a
//! rejected request is ever taken as the start of another (request smuggling). Closing
//! lingers ([`linger`]) so the answer is not lost to a reset.

use super::respond;
use super::worker::Worker;
use super::Service;
use crate::endpoint::guess_protocol;
use crate::error::{Error, ErrorKind};
use crate::http1::{self, BodyFraming, ChunkedDecoder, HeadError, Method, RequestHead};
use crate::metrics::Counter;
use crate::netio::{self, IoFail};
use crate::route::{Limits, RouteTable};
use crate::trace::TraceId;
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use monoio::time::Instant;
use std::rc::Rc;
use std::time::Duration;

/// A connection's own read buffer, all an idle keep-alive connection holds: room for a typical
/// SDK request head and a small body.
pub const IDLE_BUF: usize = 2 * 1024;
/// Capacity of the pooled read and upstream buffers a request borrows.
pub const READ_BUF: usize = 16 * 1024;
/// Initial capacity of the write and scratch buffers: a response head with the trace event,
/// an upstream request head. A pooled buffer keeps what it grew to, so a larger need costs one
/// growth per pooled set, not one per request; 4 KiB here was 6 KiB of RSS per active stream
/// (bench/streams.sh), each buffer's page touched for a few hundred bytes.
pub const SMALL_BUF: usize = 1024;
/// A read buffer grown past this is replaced by a fresh small one after the request, so a
/// single large body does not pin memory on an idle keep-alive connection.
pub const SHRINK_ABOVE: usize = 256 * 1024;
/// The smallest step a body's read buffer grows by; past it the buffer doubles (capped at
/// what the body still needs), so a large body costs a logarithmic number of reallocations
/// and never more room than it declared.
pub const BODY_STEP: usize = 64 * 1024;
/// How long a connection closed after an error keeps reading (and discarding) what the
/// client still sends, and how much: RFC 9112 §9.6 asks a server to half-close and drain
/// rather than close with unread input, which makes the kernel send a reset that can destroy
/// the error answer before the client reads it.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// See [`LINGER_TIME`].
pub const LINGER_BYTES: usize = 1024 * 1024;

/// Buffers a request borrows from its worker's pool for as long as it is being served.
#[derive(Default)]
pub struct Bufs {
    /// Response heads and small bodies to the client.
    pub wbuf: Vec<u8>,
    /// Upstream request and response bytes.
    pub ubuf: Vec<u8>,
    /// Upstream request heads with spliced bodies, error bodies, stream events.
    pub scratch: Vec<u8>,
    /// Translated routes: the translated upstream request body, then the translated answer.
    pub xlate: Vec<u8>,
    /// Translated routes: the copy of a JSON document simd-json parses in place.
    pub json: Vec<u8>,
    /// Passthrough streams: the framer watching for the protocol's end event
    /// (`relay::watch`), reused so a stream allocates nothing to watch.
    pub sse: crate::translate::sse::Framer,
    /// Streams: the iovecs that send our head with the first relayed bytes in one write.
    pub iov: crate::netio::IoVecs,
    /// The last token a request on these buffers presented, and its digest: keep-alive
    /// clients send the same one every time.
    pub auth: TokenCache,
}

/// A token and its SHA-256 digest, kept so a keep-alive client's token is hashed once.
pub type TokenCache = Option<(Vec<u8>, [u8; 32])>;

/// A request whose head has arrived, before any of its body is read: what
/// [`Service::admit`] decides on.
pub struct Incoming<'a> {
    /// The parsed head; spans point into `raw`.
    pub head: &'a RequestHead,
    /// The bytes the head spans point into.
    pub raw: &'a [u8],
    /// This request's trace id, sent on every answer.
    pub trace_id: TraceId,
    /// The route snapshot loaded for this request.
    pub table: &'a RouteTable,
}

impl Incoming<'_> {
    /// A header value by name (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head.header(self.raw, name)
    }
    /// The request target.
    pub fn path(&self) -> &[u8] {
        self.head.path(self.raw)
    }
}

/// One parsed request, borrowed from the connection's buffers.
pub struct Request<'a> {
    /// The parsed head; spans point into `raw`.
    pub head: &'a RequestHead,
    /// The bytes the head spans point into.
    pub raw: &'a [u8],
    /// The whole body, de-chunked.
    pub body: &'a [u8],
    /// This request's trace id, sent on every answer.
    pub trace_id: TraceId,
    /// The route snapshot, loaded once for this request: every phase reads this one.
    pub table: &'a RouteTable,
}

impl Request<'_> {
    /// A header value by name (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head.header(self.raw, name)
    }
    /// The request target.
    pub fn path(&self) -> &[u8] {
        self.head.path(self.raw)
    }
}

/// What a service did with a request.
pub struct Outcome {
    /// Status sent.
    pub status: u16,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

/// Serves one connection until it closes, fails, or is idle too long.
///
/// Memory: an idle connection holds only its small read buffer ([`IDLE_BUF`]) and a task of
/// about 1.5 KiB, its wait for the next request; the larger buffers a request needs, and the
/// request's own future, come from the worker's pools when the request arrives and go back
/// when it is answered (4 KiB per idle keep-alive client, measured with 10,000 of them; 16
/// KiB when the request's future lived in the task), and a busy connection still allocates
/// nothing per request.
pub async fn serve<S: Service>(w: Rc<Worker>, svc: Rc<S>, mut stream: TcpStream) {
    let mut rb = ReadBuf {
        buf: Vec::with_capacity(IDLE_BUF),
        small: None,
    };
    loop {
        // Idle: the first byte of the next request must come within idle_timeout (pipelined
        // bytes may be buffered already). This wait is all an idle connection's task holds.
        if rb.buf.is_empty() {
            let deadline = netio::after(w.routes().limits.idle_timeout);
            rb.ensure(&w, 1);
            if rb.read(&mut stream, deadline).await.is_err() {
                return; // idle timeout or peer closed between requests
            }
        }
        let carry_on = w
            .slots
            .run(|| request(&w, &*svc, &mut stream, &mut rb))
            .await;
        if !carry_on {
            return;
        }
    }
}

/// One request on a connection, from its first bytes (in `rb`) to its answer, run in a
/// pooled block ([`super::slot`]) so an idle connection does not carry its state. Whether
/// the connection carries on to another request.
async fn request<S: Service>(
    w: &Rc<Worker>,
    svc: &S,
    stream: &mut TcpStream,
    rb: &mut ReadBuf,
) -> bool {
    let table = w.routes();
    let limits = &table.limits;
    // Head: its first bytes are here; the rest must follow within header_timeout.
    let head_deadline = netio::after(limits.header_timeout);
    let head = loop {
        if !rb.buf.is_empty() {
            match http1::parse_request_head_with(
                &rb.buf,
                limits.max_header_bytes,
                limits.max_headers,
            ) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => {
                    let mut bufs = w.take_bufs();
                    let err = head_error(e);
                    respond::error_raw(w, stream, &rb.buf, err, &mut bufs).await;
                    w.put_bufs(bufs);
                    linger(stream, rb).await;
                    return false;
                }
            }
        }
        // A head that does not fit the connection's own small buffer moves to a pooled
        // larger one.
        rb.ensure(w, HEAD_READ);
        match rb.read(stream, head_deadline).await {
            Ok(_) => {}
            Err(IoFail::Timeout) => {
                // A head that started but did not finish in time: 408 and close.
                let mut bufs = w.take_bufs();
                let err = Error::client(ErrorKind::HeadTimeout, "request head timed out");
                respond::error_raw(w, stream, &rb.buf, err, &mut bufs).await;
                w.put_bufs(bufs);
                linger(stream, rb).await;
                return false;
            }
            Err(_) => return false, // the peer closed mid-head
        }
    };
    let trace_id = TraceId::new();
    let started = std::time::Instant::now();
    let mut bufs = w.take_bufs();
    let head_len = head.head_len;

    // Admission, on the head alone.
    let admitted = if head.method == Method::Post && head.framing == BodyFraming::None {
        // RFC 9112 §6.3 would read it as an empty body, and what follows as the next
        // request; the client meant it as the body. 411, and nothing after it runs.
        Err(super::Refusal {
            protocol: guess_protocol(head.path(&rb.buf), anthropic_headers(&head, &rb.buf)),
            err: Error::client(
                ErrorKind::LengthRequired,
                "a POST needs a body framed by Content-Length or chunked transfer coding",
            ),
        })
    } else {
        let incoming = Incoming {
            head: &head,
            raw: &rb.buf,
            trace_id,
            table: &table,
        };
        svc.admit(w, &incoming, &mut bufs)
    };
    let admitted = match admitted {
        Ok(a) => a,
        Err(refusal) => {
            // The body is never read: the connection carries on only when it is already
            // wholly buffered (a small body sent with its head), and can be skipped.
            let skip = match head.framing {
                BodyFraming::None => Some(head_len),
                BodyFraming::Length(n) => {
                    let end = head_len as u64 + n;
                    (rb.buf.len() as u64 >= end).then_some(end as usize)
                }
                BodyFraming::Chunked => None,
            };
            let keep = skip.is_some() && head.keep_alive && !refusal.err.closes_connection();
            w.stats().status(refusal.err.status());
            let incoming = Incoming {
                head: &head,
                raw: &rb.buf,
                trace_id,
                table: &table,
            };
            svc.refused(w, &incoming, None, refusal.err.status(), started);
            let out = respond::error_keep(
                limits.idle_timeout,
                stream,
                refusal.protocol,
                &trace_id,
                &refusal.err,
                keep,
                &mut bufs,
            )
            .await;
            w.put_bufs(bufs);
            match skip {
                Some(consumed) if out.keep_alive && !w.shutting_down() => {
                    rb.buf.drain(..consumed);
                    rb.settle(w);
                    return true;
                }
                _ => {
                    linger(stream, rb).await;
                    return false;
                }
            }
        }
    };

    // Body.
    let mut charge = BodyCharge { w, bytes: 0 };
    let (body_end, consumed) =
        match read_body(w, stream, rb, &head, limits, &mut charge, &mut bufs).await {
            Ok(r) => r,
            Err(BodyFail::Gone) => return false,
            Err(BodyFail::Answer(err)) => {
                if err.kind == ErrorKind::Overloaded {
                    w.stats().inc(Counter::BodyShed);
                }
                let incoming = Incoming {
                    head: &head,
                    raw: &rb.buf,
                    trace_id,
                    table: &table,
                };
                svc.refused(w, &incoming, Some(&admitted), err.status(), started);
                respond::error_for(w, stream, &head, &rb.buf, trace_id, err, &mut bufs).await;
                w.put_bufs(bufs);
                drop(charge);
                linger(stream, rb).await;
                return false;
            }
        };

    let in_flight = InFlight::new(w);
    let req = Request {
        head: &head,
        raw: &rb.buf,
        body: &rb.buf[head_len..body_end],
        trace_id,
        table: &table,
    };
    let outcome = svc.handle(w, &req, admitted, stream, &mut bufs).await;
    drop(in_flight);
    w.stats().status(outcome.status);
    w.put_bufs(bufs);

    if !outcome.keep_alive || !head.keep_alive || w.shutting_down() {
        return false;
    }
    // Keep pipelined bytes, drop the request, give back the large buffer if it was lent.
    rb.buf.drain(..consumed);
    rb.settle(w);
    drop(charge);
    true
}

/// Whether a head carries the Anthropic SDK's headers (for the shape of an early answer).
fn anthropic_headers(head: &RequestHead, raw: &[u8]) -> bool {
    head.header(raw, b"x-api-key").is_some() || head.header(raw, b"anthropic-version").is_some()
}

/// Why a body was not read to its end.
enum BodyFail {
    /// Answer this error, then close.
    Answer(Error),
    /// The client went away: nothing to answer.
    Gone,
}

/// The memory a request's body holds, charged to its worker's [`Counter::BodyBytes`] while
/// the request lives and released when it is dropped (also when its task is cancelled).
struct BodyCharge<'a> {
    w: &'a Worker,
    bytes: usize,
}

impl BodyCharge<'_> {
    /// Whether `more` bytes still fit under the worker's `cap`.
    fn fits(&self, more: usize, cap: usize) -> bool {
        let held = self.w.stats().get(Counter::BodyBytes) as usize;
        held.saturating_add(more) <= cap
    }

    fn add(&mut self, n: usize) {
        self.bytes += n;
        self.w.stats().add(Counter::BodyBytes, n as u64);
    }
}

impl Drop for BodyCharge<'_> {
    fn drop(&mut self) {
        self.w.stats().sub(Counter::BodyBytes, self.bytes as u64);
    }
}

/// The answer to a body that would take the worker past its body memory bound.
fn overloaded(cap: usize) -> BodyFail {
    BodyFail::Answer(Error::gateway(
        ErrorKind::Overloaded,
        format!("the gateway holds its limit of {cap} bytes of request bodies; retry shortly"),
    ))
}

fn too_large(max_body: usize) -> BodyFail {
    BodyFail::Answer(Error::client(
        ErrorKind::BodyTooLarge,
        format!("request body is over the limit of {max_body} bytes"),
    ))
}

/// Reads the body of an admitted request into `rb` behind its head, within `max_body_bytes`,
/// `body_timeout` and the worker's body memory. Returns where the (de-chunked) body ends and
/// where the next request starts; a chunked body is decoded in place, so both are the same.
async fn read_body(
    w: &Worker,
    stream: &mut TcpStream,
    rb: &mut ReadBuf,
    head: &RequestHead,
    limits: &Limits,
    charge: &mut BodyCharge<'_>,
    bufs: &mut Bufs,
) -> Result<(usize, usize), BodyFail> {
    let head_len = head.head_len;
    let max_body = limits.max_body_bytes;
    let cap = limits.max_body_memory_per_worker;
    let deadline = netio::after(limits.body_timeout);
    let read_fail = |e: IoFail| match e {
        IoFail::Timeout => BodyFail::Answer(Error::client(
            ErrorKind::BodyTimeout,
            format!(
                "request body not received within {} ms",
                limits.body_timeout.as_millis()
            ),
        )),
        _ => BodyFail::Gone,
    };
    match head.framing {
        BodyFraming::None => Ok((head_len, head_len)),
        BodyFraming::Length(n) => {
            if n > max_body as u64 {
                return Err(BodyFail::Answer(Error::client(
                    ErrorKind::BodyTooLarge,
                    format!("request body of {n} bytes is over the limit of {max_body}"),
                )));
            }
            let need = head_len + n as usize;
            if rb.buf.len() >= need {
                return Ok((need, need));
            }
            // Shed at once what could not be held anyway (nothing is reserved: bodies still
            // grow as they arrive, and each growth is checked again).
            if !charge.fits(need.saturating_sub(rb.buf.capacity().max(READ_BUF)), cap) {
                return Err(overloaded(cap));
            }
            if head.expect_continue && !send_continue(stream, bufs, limits.idle_timeout).await {
                return Err(BodyFail::Gone);
            }
            while rb.buf.len() < need {
                let len = rb.buf.len();
                if rb.buf.capacity() == len {
                    let step = (need - len).min(len.max(BODY_STEP));
                    if !rb.grow(w, step, charge, cap) {
                        return Err(overloaded(cap));
                    }
                }
                rb.read(stream, deadline).await.map_err(read_fail)?;
            }
            Ok((need, need))
        }
        BodyFraming::Chunked => {
            if head.expect_continue
                && rb.buf.len() == head_len
                && !send_continue(stream, bufs, limits.idle_timeout).await
            {
                return Err(BodyFail::Gone);
            }
            let mut dec = ChunkedDecoder::new();
            // `rb.buf[head_len..end]` is decoded body, `rb.buf[end..]` bytes not decoded yet.
            let mut end = head_len;
            // The buffer never needs more than the largest body and one read's room.
            let most = head_len + max_body + BODY_STEP;
            loop {
                let d = dec.decode_in_place(&mut rb.buf[end..]).map_err(|e| {
                    BodyFail::Answer(Error::client(
                        ErrorKind::BadFraming,
                        format!("malformed chunked body: {e:?}"),
                    ))
                })?;
                let body_end = end + d.payload;
                if body_end - head_len > max_body {
                    return Err(too_large(max_body));
                }
                if d.done {
                    // Pipelined bytes after the body move up against it.
                    let tail = end + d.consumed;
                    let len = rb.buf.len();
                    rb.buf.copy_within(tail..len, body_end);
                    rb.buf.truncate(body_end + (len - tail));
                    return Ok((body_end, body_end));
                }
                end = body_end;
                rb.buf.truncate(end);
                let spare = rb.buf.capacity() - end;
                if spare < HEAD_READ {
                    let step = end
                        .max(BODY_STEP)
                        .min(most.saturating_sub(rb.buf.capacity()));
                    if step > spare && !rb.grow(w, step, charge, cap) {
                        return Err(overloaded(cap));
                    }
                }
                rb.read(stream, deadline).await.map_err(read_fail)?;
            }
        }
    }
}

/// Closes a connection after an error answer the way RFC 9112 §9.6 asks: half-close, then
/// read and discard what the client still sends, for at most [`LINGER_TIME`] and
/// [`LINGER_BYTES`], into the connection's small buffer (nothing grows).
async fn linger(stream: &mut TcpStream, rb: &mut ReadBuf) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut b = rb
        .small
        .take()
        .unwrap_or_else(|| std::mem::take(&mut rb.buf));
    let deadline = netio::after(LINGER_TIME);
    let mut drained = 0;
    while drained < LINGER_BYTES {
        b.clear();
        let (r, back) = netio::read_more(stream, b, 1, deadline).await;
        b = back;
        match r {
            Ok(n) => drained += n,
            Err(_) => break,
        }
    }
}

/// Room a head read asks for once the first bytes did not complete the head.
pub const HEAD_READ: usize = 4096;

/// A connection's read buffer: its own small one while idle, a pooled larger one while a
/// request needs the room.
struct ReadBuf {
    buf: Vec<u8>,
    /// The connection's own small buffer, kept aside while `buf` is a pooled one.
    small: Option<Vec<u8>>,
}

impl ReadBuf {
    /// Makes room for `spare` more bytes: swaps to a pooled buffer (copying what is
    /// buffered), and grows that one only for requests larger than pooled buffers.
    fn ensure(&mut self, w: &Worker, spare: usize) {
        if self.buf.capacity() - self.buf.len() >= spare {
            return;
        }
        self.move_to_pooled(w);
        if self.buf.capacity() - self.buf.len() < spare {
            self.buf.reserve(spare);
        }
    }

    /// Moves what is buffered from the connection's own small buffer to a pooled larger one
    /// (once per request; a no-op when already there).
    fn move_to_pooled(&mut self, w: &Worker) {
        if self.small.is_none() {
            let mut big = w.take_rbuf();
            big.extend_from_slice(&self.buf);
            let mut small = std::mem::replace(&mut self.buf, big);
            small.clear();
            self.small = Some(small);
        }
    }

    /// Makes room for `spare` more bytes for a body: moves to a pooled buffer first (not
    /// charged: pooled buffers are bounded), then grows exactly, charging what the growth
    /// allocates. False, with nothing allocated, when the charge would pass `cap`.
    fn grow(&mut self, w: &Worker, spare: usize, charge: &mut BodyCharge<'_>, cap: usize) -> bool {
        if self.buf.capacity() - self.buf.len() < spare {
            self.move_to_pooled(w);
        }
        let room = self.buf.capacity() - self.buf.len();
        if room >= spare {
            return true;
        }
        if !charge.fits(spare - room, cap) {
            return false;
        }
        let before = self.buf.capacity();
        self.buf.reserve_exact(spare);
        charge.add(self.buf.capacity() - before);
        true
    }

    /// Reads more bytes at the end (never 0: end of stream is `Err(Closed)`).
    async fn read(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<usize, IoFail> {
        let b = std::mem::take(&mut self.buf);
        let (res, b) = netio::read_more(stream, b, 1, deadline).await;
        self.buf = b;
        res
    }

    /// Between requests: back to the small buffer when what is left (pipelined bytes) fits;
    /// else, a buffer a body grew past [`SHRINK_ABOVE`] is swapped for a pooled one, so the
    /// body's memory (no longer charged) is not held while the next head arrives.
    fn settle(&mut self, w: &Worker) {
        if let Some(small) = self.small.as_mut() {
            if self.buf.len() <= small.capacity() {
                small.extend_from_slice(&self.buf);
                let big = std::mem::replace(&mut self.buf, self.small.take().unwrap_or_default());
                w.put_rbuf(big);
                return;
            }
        }
        if self.buf.capacity() > SHRINK_ABOVE {
            let mut fresh = w.take_rbuf();
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
    }
}

/// Counts a request in flight until dropped, also when its task is cancelled mid-request, so
/// the drain on shutdown never waits for a request that no longer exists.
struct InFlight<'a>(&'a Worker);

impl<'a> InFlight<'a> {
    fn new(w: &'a Worker) -> Self {
        w.stats().inc(Counter::InFlight);
        InFlight(w)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.stats().dec(Counter::InFlight);
    }
}

async fn send_continue(
    stream: &mut TcpStream,
    bufs: &mut Bufs,
    timeout: std::time::Duration,
) -> bool {
    let mut out = std::mem::take(&mut bufs.wbuf);
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    let (r, b) = netio::write_vec(stream, out, netio::after(timeout)).await;
    bufs.wbuf = b;
    r.is_ok()
}

/// The error for a head that could not be parsed.
pub fn head_error(e: HeadError) -> Error {
    match e {
        HeadError::TooLarge => Error::client(ErrorKind::HeadTooLarge, "request head too large"),
        HeadError::TooManyHeaders => {
            Error::client(ErrorKind::HeadTooLarge, "too many request headers")
        }
        HeadError::BadHost => {
            Error::client(ErrorKind::BadFraming, "the Host header must be host[:port]")
        }
        HeadError::Framing(f) => Error::client(
            ErrorKind::BadFraming,
            format!("ambiguous or invalid request framing: {f:?}"),
        ),
        other => Error::client(
            ErrorKind::BadFraming,
            format!("malformed request head: {other:?}"),
        ),
    }
}

/// The protocol to answer a raw (unparsed) request in, from its first line.
pub fn protocol_of_raw(raw: &[u8]) -> crate::endpoint::Protocol {
    let line_end = memchr::memchr(b'\n', raw).unwrap_or(raw.len()).min(2048);
    let first = &raw[..line_end];
    let anthropic_hdr = memchr::memmem::find(&raw[..raw.len().min(16384)], b"anthropic-version")
        .is_some()
        || memchr::memmem::find(&raw[..raw.len().min(16384)], b"x-api-key").is_some();
    let path = first.split(|b| *b == b' ').nth(1).unwrap_or(b"");
    guess_protocol(path, anthropic_hdr)
}
