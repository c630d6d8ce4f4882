//! One client connection: the keep-alive loop, request framing, deadlines, pipelining.
//!
//! A request takes this path: read until a whole head is buffered (within
//! `header_timeout`, and `idle_timeout` while nothing has arrived), parse it strictly
//! (`http1::head`), decide its framing (`http1::framing`), answer `Expect: 100-continue`, read
//! the body (Content-Length or chunked, within `max_body_bytes`), hand it to the service, and
//! loop. Pipelined requests are answered in order because each is handled to completion before
//! the next head is parsed; their bytes simply wait in the read buffer.
//!
//! Invariant: after a framing error, an oversized head or body, or a timeout, the connection
//! is closed after the error answer, so no byte of a rejected request is ever taken as the
//! start of another (request smuggling).

use super::respond;
use super::worker::Worker;
use super::Service;
use crate::endpoint::guess_protocol;
use crate::error::{Error, ErrorKind};
use crate::http1::{self, BodyFraming, ChunkedDecoder, HeadError, RequestHead};
use crate::metrics::Counter;
use crate::netio::{self, IoFail};
use crate::route::RouteTable;
use crate::trace::TraceId;
use monoio::net::TcpStream;
use monoio::time::Instant;
use std::rc::Rc;

/// A connection's own read buffer, all an idle keep-alive connection holds: room for a typical
/// SDK request head and a small body.
pub const IDLE_BUF: usize = 2 * 1024;
/// Capacity of the pooled read and upstream buffers a request borrows.
pub const READ_BUF: usize = 16 * 1024;
/// Initial capacity of the write and scratch buffers.
pub const SMALL_BUF: usize = 4096;
/// A read buffer grown past this is replaced by a fresh small one after the request, so a
/// single large body does not pin memory on an idle keep-alive connection.
pub const SHRINK_ABOVE: usize = 256 * 1024;

/// Buffers a request borrows from its worker's pool for as long as it is being served.
#[derive(Default)]
pub struct Bufs {
    /// Response heads and small bodies to the client.
    pub wbuf: Vec<u8>,
    /// Upstream request and response bytes.
    pub ubuf: Vec<u8>,
    /// Upstream request heads with spliced bodies, error bodies, stream events.
    pub scratch: Vec<u8>,
    /// A de-chunked request body (Content-Length bodies are used in place).
    pub body: Vec<u8>,
    /// Translated routes: the translated upstream request body, then the translated answer.
    pub xlate: Vec<u8>,
    /// Translated routes: the copy of a JSON document simd-json parses in place.
    pub json: Vec<u8>,
    /// Passthrough streams: the framer watching for the protocol's end event
    /// (`relay::watch`), reused so a stream allocates nothing to watch.
    pub sse: crate::translate::sse::Framer,
    /// The last token a request on these buffers presented, and its digest: keep-alive
    /// clients send the same one every time.
    pub auth: TokenCache,
}

/// A token and its SHA-256 digest, kept so a keep-alive client's token is hashed once.
pub type TokenCache = Option<(Vec<u8>, [u8; 32])>;

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
/// Memory: an idle connection holds only its small read buffer ([`IDLE_BUF`]); the larger
/// buffers a request needs come from the worker's pools when the request arrives and go back
/// when it is answered, so 10,000 idle keep-alive clients cost kilobytes each, and a busy
/// connection still allocates nothing per request.
pub async fn serve<S: Service>(w: Rc<Worker>, svc: Rc<S>, mut stream: TcpStream) {
    let mut rb = ReadBuf {
        buf: Vec::with_capacity(IDLE_BUF),
        small: None,
    };
    loop {
        let table = w.routes();
        let limits = &table.limits;
        // Head: wait idle_timeout for the first byte, then header_timeout for the whole head.
        let mut head_deadline: Option<Instant> = None;
        let head = loop {
            if !rb.buf.is_empty() {
                match http1::parse_request_head(&rb.buf, limits.max_header_bytes) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(e) => {
                        let mut bufs = w.take_bufs();
                        let err = head_error(e);
                        respond::error_raw(&w, &mut stream, &rb.buf, err, &mut bufs).await;
                        return;
                    }
                }
            }
            let deadline = match head_deadline {
                Some(d) => d,
                None if rb.buf.is_empty() => netio::after(limits.idle_timeout),
                None => *head_deadline.insert(netio::after(limits.header_timeout)),
            };
            // An empty buffer reads into the connection's own small one; a head that does not
            // fit moves to a pooled larger one.
            rb.ensure(&w, if rb.buf.is_empty() { 1 } else { HEAD_READ });
            match rb.read(&mut stream, deadline).await {
                Ok(_) => {
                    if head_deadline.is_none() {
                        head_deadline = Some(netio::after(limits.header_timeout));
                    }
                }
                Err(IoFail::Timeout) if !rb.buf.is_empty() || head_deadline.is_some() => {
                    // A head that started but did not finish in time: 408 and close.
                    let mut bufs = w.take_bufs();
                    let err = Error::client(ErrorKind::HeadTimeout, "request head timed out");
                    respond::error_raw(&w, &mut stream, &rb.buf, err, &mut bufs).await;
                    return;
                }
                Err(_) => return, // idle timeout or peer closed between requests
            }
        };
        let trace_id = TraceId::new();
        let mut bufs = w.take_bufs();

        // Body.
        let head_len = head.head_len;
        let max_body = limits.max_body_bytes;
        let (body_in_rbuf, consumed) = match head.framing {
            BodyFraming::None => (true, head_len),
            BodyFraming::Length(n) => {
                if n > max_body as u64 {
                    let err = Error::client(
                        ErrorKind::BodyTooLarge,
                        format!("request body of {n} bytes is over the limit of {max_body}"),
                    );
                    respond::error_for(&w, &mut stream, &head, &rb.buf, trace_id, err, &mut bufs)
                        .await;
                    return;
                }
                let need = head_len + n as usize;
                if rb.buf.len() < need {
                    if head.expect_continue
                        && !send_continue(&mut stream, &mut bufs, limits.idle_timeout).await
                    {
                        return;
                    }
                    let deadline = netio::after(limits.idle_timeout);
                    rb.ensure(&w, need - rb.buf.len());
                    while rb.buf.len() < need {
                        if rb.read(&mut stream, deadline).await.is_err() {
                            return;
                        }
                    }
                }
                (true, need)
            }
            BodyFraming::Chunked => {
                if head.expect_continue
                    && rb.buf.len() == head_len
                    && !send_continue(&mut stream, &mut bufs, limits.idle_timeout).await
                {
                    return;
                }
                let mut dec = ChunkedDecoder::new();
                let mut pos = head_len;
                bufs.body.clear();
                let deadline = netio::after(limits.idle_timeout);
                loop {
                    let failed = match dec.decode_into(&rb.buf[pos..], &mut bufs.body) {
                        Ok((c, done)) => {
                            pos += c;
                            if bufs.body.len() > max_body {
                                Some(Error::client(
                                    ErrorKind::BodyTooLarge,
                                    format!("request body is over the limit of {max_body} bytes"),
                                ))
                            } else if done {
                                break;
                            } else {
                                None
                            }
                        }
                        Err(e) => Some(Error::client(
                            ErrorKind::BadFraming,
                            format!("malformed chunked body: {e:?}"),
                        )),
                    };
                    if let Some(err) = failed {
                        respond::error_for(
                            &w,
                            &mut stream,
                            &head,
                            &rb.buf,
                            trace_id,
                            err,
                            &mut bufs,
                        )
                        .await;
                        return;
                    }
                    rb.ensure(&w, HEAD_READ);
                    if rb.read(&mut stream, deadline).await.is_err() {
                        return;
                    }
                }
                (false, pos)
            }
        };

        let in_flight = InFlight::new(&w);
        let body = std::mem::take(&mut bufs.body);
        let req = Request {
            head: &head,
            raw: &rb.buf,
            body: if body_in_rbuf {
                &rb.buf[head_len..consumed]
            } else {
                &body
            },
            trace_id,
            table: &table,
        };
        let outcome = svc.handle(&w, &req, &mut stream, &mut bufs).await;
        bufs.body = body;
        drop(in_flight);
        w.stats().status(outcome.status);
        w.put_bufs(bufs);

        if !outcome.keep_alive || !head.keep_alive || w.shutting_down() {
            return;
        }
        // Keep pipelined bytes, drop the request, give back the large buffer if it was lent.
        rb.buf.drain(..consumed);
        rb.settle(&w);
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
        if self.small.is_none() {
            let mut big = w.take_rbuf();
            big.extend_from_slice(&self.buf);
            let mut small = std::mem::replace(&mut self.buf, big);
            small.clear();
            self.small = Some(small);
        }
        if self.buf.capacity() - self.buf.len() < spare {
            self.buf.reserve(spare);
        }
    }

    /// Reads more bytes at the end (never 0: end of stream is `Err(Closed)`).
    async fn read(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<usize, IoFail> {
        let b = std::mem::take(&mut self.buf);
        let (res, b) = netio::read_more(stream, b, 1, deadline).await;
        self.buf = b;
        res
    }

    /// Between requests: back to the small buffer when what is left (pipelined bytes) fits.
    fn settle(&mut self, w: &Worker) {
        if let Some(small) = self.small.as_mut() {
            if self.buf.len() <= small.capacity() {
                small.extend_from_slice(&self.buf);
                let big = std::mem::replace(&mut self.buf, self.small.take().unwrap_or_default());
                w.put_rbuf(big);
            }
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
