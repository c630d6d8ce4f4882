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

use crate::endpoint::guess_protocol;
use crate::error::{Error, ErrorKind};
use crate::http1::{self, BodyFraming, ChunkedDecoder, HeadError, RequestHead};
use crate::metrics::Counter;
use crate::netio::{self, IoFail};
use crate::respond;
use crate::trace::TraceId;
use crate::worker::Worker;
use monoio::net::TcpStream;
use monoio::time::Instant;
use std::rc::Rc;

/// Initial capacity of a connection's read buffer; grows for large bodies, shrinks back after.
pub const READ_BUF: usize = 16 * 1024;
/// Initial capacity of the write and scratch buffers.
pub const SMALL_BUF: usize = 4096;
/// A read buffer grown past this is replaced by a fresh small one after the request, so a
/// single large body does not pin memory on an idle keep-alive connection.
pub const SHRINK_ABOVE: usize = 256 * 1024;

/// Buffers a connection owns and reuses across its requests.
#[derive(Default)]
pub struct Bufs {
    /// Response heads and small bodies to the client.
    pub wbuf: Vec<u8>,
    /// Upstream request and response bytes.
    pub ubuf: Vec<u8>,
    /// Upstream request heads with spliced bodies, error bodies, stream events.
    pub scratch: Vec<u8>,
    /// The connection's last token and its digest.
    pub auth: crate::gateway::AuthCache,
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
pub async fn serve(w: Rc<Worker>, mut stream: TcpStream) {
    let mut rbuf: Vec<u8> = Vec::with_capacity(READ_BUF);
    // Sized for a typical exchange up front, so steady-state requests never grow them.
    let mut bufs = Bufs {
        wbuf: Vec::with_capacity(SMALL_BUF),
        ubuf: Vec::with_capacity(READ_BUF),
        scratch: Vec::with_capacity(SMALL_BUF),
        auth: None,
    };
    // Decoded chunked request bodies (CL bodies are used in place in `rbuf`).
    let mut chunked_body: Vec<u8> = Vec::new();
    loop {
        let table = w.routes();
        let limits = &table.limits;
        // Head: wait idle_timeout for the first byte, then header_timeout for the whole head.
        let mut head_deadline: Option<Instant> = None;
        let head = loop {
            if !rbuf.is_empty() {
                match http1::parse_request_head(&rbuf, limits.max_header_bytes) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(e) => {
                        let err = head_error(e);
                        reject(&w, &mut stream, &rbuf, err, &mut bufs).await;
                        return;
                    }
                }
            }
            let deadline = match head_deadline {
                Some(d) => d,
                None if rbuf.is_empty() => netio::after(limits.idle_timeout),
                None => *head_deadline.insert(netio::after(limits.header_timeout)),
            };
            let (res, b) = netio::read_more(&mut stream, rbuf, 4096, deadline).await;
            rbuf = b;
            match res {
                Ok(_) => {
                    if head_deadline.is_none() {
                        head_deadline = Some(netio::after(limits.header_timeout));
                    }
                }
                Err(IoFail::Timeout) if !rbuf.is_empty() || head_deadline.is_some() => {
                    // A head that started but did not finish in time: 408 and close.
                    let err = Error::client(ErrorKind::InvalidRequest, "request head timed out");
                    respond::error_raw(&w, &mut stream, &rbuf, 408, err, &mut bufs).await;
                    return;
                }
                Err(_) => return, // idle timeout or peer closed between requests
            }
        };
        let trace_id = TraceId::new();

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
                    respond::error_for(&w, &mut stream, &head, &rbuf, trace_id, err, &mut bufs)
                        .await;
                    return;
                }
                let need = head_len + n as usize;
                if rbuf.len() < need {
                    if head.expect_continue
                        && !send_continue(&mut stream, &mut bufs, limits.idle_timeout).await
                    {
                        return;
                    }
                    let deadline = netio::after(limits.idle_timeout);
                    while rbuf.len() < need {
                        let spare = need - rbuf.len();
                        let (res, b) = netio::read_more(&mut stream, rbuf, spare, deadline).await;
                        rbuf = b;
                        if res.is_err() {
                            return;
                        }
                    }
                }
                (true, need)
            }
            BodyFraming::Chunked => {
                if head.expect_continue
                    && rbuf.len() == head_len
                    && !send_continue(&mut stream, &mut bufs, limits.idle_timeout).await
                {
                    return;
                }
                let mut dec = ChunkedDecoder::new();
                let mut pos = head_len;
                chunked_body.clear();
                let deadline = netio::after(limits.idle_timeout);
                loop {
                    let failed = match dec.decode_into(&rbuf[pos..], &mut chunked_body) {
                        Ok((c, done)) => {
                            pos += c;
                            if chunked_body.len() > max_body {
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
                        respond::error_for(&w, &mut stream, &head, &rbuf, trace_id, err, &mut bufs)
                            .await;
                        return;
                    }
                    let (res, b) = netio::read_more(&mut stream, rbuf, 8192, deadline).await;
                    rbuf = b;
                    if res.is_err() {
                        return;
                    }
                }
                (false, pos)
            }
        };

        let in_flight = InFlight::new(&w);
        let body: &[u8] = if body_in_rbuf {
            &rbuf[head_len..consumed]
        } else {
            &chunked_body
        };
        let req = Request {
            head: &head,
            raw: &rbuf,
            body,
            trace_id,
        };
        let outcome = w.service_handle(&req, &mut stream, &mut bufs).await;
        drop(in_flight);
        w.stats().status(outcome.status);

        if !outcome.keep_alive || !head.keep_alive || w.shutting_down() {
            return;
        }
        // Keep pipelined bytes, drop the request.
        rbuf.drain(..consumed);
        if rbuf.capacity() > SHRINK_ABOVE && rbuf.len() < READ_BUF {
            let mut fresh = Vec::with_capacity(READ_BUF);
            fresh.extend_from_slice(&rbuf);
            rbuf = fresh;
        }
        if chunked_body.capacity() > SHRINK_ABOVE {
            chunked_body = Vec::new();
        }
        if bufs.scratch.capacity() > SHRINK_ABOVE {
            bufs.scratch = Vec::with_capacity(SMALL_BUF);
        }
        if bufs.ubuf.capacity() > SHRINK_ABOVE {
            bufs.ubuf = Vec::with_capacity(SMALL_BUF);
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

/// Answers a request whose head could not be parsed, in the protocol its bytes suggest, and
/// leaves the connection to be closed.
async fn reject(w: &Worker, stream: &mut TcpStream, raw: &[u8], err: Error, bufs: &mut Bufs) {
    let status = err.status();
    respond::error_raw(w, stream, raw, status, err, bufs).await;
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
