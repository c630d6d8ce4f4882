//! Writing answers to the client: heads, whole JSON bodies, errors in the route's protocol.
//!
//! Every answer carries `x-routerly-trace-id`. A head and a small body go out in one write
//! (one packet with `TCP_NODELAY`). Errors that leave the request's framing untrusted say
//! `Connection: close` and the caller closes.

use super::conn::{Bufs, Outcome};
use super::worker::Worker;
use crate::endpoint::{guess_protocol, Protocol};
use crate::error::{write_body, Error};
use crate::http1::write::{status_reason, write_header, write_header_usize};
use crate::http1::RequestHead;
use crate::netio;
use crate::trace::TraceId;
use monoio::net::TcpStream;
use std::time::Duration;

/// Appends a response head. `content_length: None` means chunked.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &[u8],
    content_length: Option<usize>,
    trace_id: &TraceId,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::http1::write::push_usize(out, status as usize);
    out.push(b' ');
    out.extend_from_slice(status_reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    write_header(out, b"content-type", content_type);
    match content_length {
        Some(n) => write_header_usize(out, b"content-length", n),
        None => write_header(out, b"transfer-encoding", b"chunked"),
    }
    write_header(out, b"x-routerly-trace-id", trace_id.as_bytes());
    if !keep_alive {
        write_header(out, b"connection", b"close");
    }
}

/// Sends `status` with a whole JSON `body`.
pub async fn json(
    idle: Duration,
    stream: &mut TcpStream,
    status: u16,
    trace_id: &TraceId,
    body: &[u8],
    keep_alive: bool,
    bufs: &mut Bufs,
) -> Outcome {
    whole(
        idle,
        stream,
        status,
        b"application/json",
        trace_id,
        body,
        keep_alive,
        bufs,
    )
    .await
}

/// Sends `status` with a whole `body` of `content_type`, head and body in one write.
#[allow(clippy::too_many_arguments)]
pub async fn whole(
    idle: Duration,
    stream: &mut TcpStream,
    status: u16,
    content_type: &[u8],
    trace_id: &TraceId,
    body: &[u8],
    keep_alive: bool,
    bufs: &mut Bufs,
) -> Outcome {
    let head = Head {
        status,
        content_type,
        trace_id,
        extra: &[],
    };
    whole_with(idle, stream, &head, body, keep_alive, bufs).await
}

/// A response head's fields beyond framing.
pub struct Head<'a> {
    /// Status code.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'a [u8],
    /// Sent as `x-routerly-trace-id`.
    pub trace_id: &'a TraceId,
    /// Extra header lines, each `name: value\r\n` (e.g. `x-routerly-dropped`).
    pub extra: &'a [u8],
}

/// Sends a whole `body` under `head`, head and body in one write.
pub async fn whole_with(
    idle: Duration,
    stream: &mut TcpStream,
    head: &Head<'_>,
    body: &[u8],
    keep_alive: bool,
    bufs: &mut Bufs,
) -> Outcome {
    let Head {
        status,
        content_type,
        trace_id,
        extra,
    } = *head;
    let mut out = std::mem::take(&mut bufs.wbuf);
    out.clear();
    write_head(
        &mut out,
        status,
        content_type,
        Some(body.len()),
        trace_id,
        keep_alive,
    );
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    let (r, b) = netio::write_vec(stream, out, netio::after(idle)).await;
    bufs.wbuf = b;
    Outcome {
        status,
        keep_alive: keep_alive && r.is_ok(),
    }
}

/// Sends `err` in `protocol`'s shape.
pub async fn error(
    idle: Duration,
    stream: &mut TcpStream,
    protocol: Protocol,
    trace_id: &TraceId,
    err: &Error,
    bufs: &mut Bufs,
) -> Outcome {
    let keep_alive = !err.closes_connection();
    error_keep(idle, stream, protocol, trace_id, err, keep_alive, bufs).await
}

/// Sends `err` in `protocol`'s shape, saying `Connection: close` unless `keep_alive` (a
/// request refused on its head keeps its connection only if its body was already read).
pub async fn error_keep(
    idle: Duration,
    stream: &mut TcpStream,
    protocol: Protocol,
    trace_id: &TraceId,
    err: &Error,
    keep_alive: bool,
    bufs: &mut Bufs,
) -> Outcome {
    let status = err.status();
    let mut body = std::mem::take(&mut bufs.scratch);
    body.clear();
    write_body(&mut body, protocol, err);
    crate::debug!(
        "error trace_id={} status={status} kind={:?} side={:?}",
        trace_id.as_str(),
        err.kind,
        err.side
    );
    // `retry-after: <u64>\r\n` fits on the stack: no allocation for a refusal.
    let mut extra = [0u8; 40];
    let mut n = 0;
    if let Some(secs) = err.retry_after_s {
        let mut put = |b: &[u8]| {
            extra[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        put(b"retry-after: ");
        let (digits, start) = crate::digits::decimal(secs);
        put(&digits[start..]);
        put(b"\r\n");
    }
    let head = Head {
        status,
        content_type: b"application/json",
        trace_id,
        extra: &extra[..n],
    };
    let out = whole_with(idle, stream, &head, &body, keep_alive, bufs).await;
    bufs.scratch = body;
    out
}

/// Sends `err` for a parsed request, in the protocol its path and headers say.
pub async fn error_for(
    w: &Worker,
    stream: &mut TcpStream,
    head: &RequestHead,
    raw: &[u8],
    trace_id: TraceId,
    err: Error,
    bufs: &mut Bufs,
) -> Outcome {
    let anthropic = head.header(raw, b"x-api-key").is_some()
        || head.header(raw, b"anthropic-version").is_some();
    let protocol = guess_protocol(head.path(raw), anthropic);
    w.stats().status(err.status());
    error(idle_of(w), stream, protocol, &trace_id, &err, bufs).await
}

/// The client write deadline of answers sent before a request reached a service.
fn idle_of(w: &Worker) -> Duration {
    w.routes().limits.idle_timeout
}

/// Sends `err` for bytes that did not parse (or arrive) as a request head, in the protocol
/// they suggest; the connection is closed after it.
pub async fn error_raw(
    w: &Worker,
    stream: &mut TcpStream,
    raw: &[u8],
    err: Error,
    bufs: &mut Bufs,
) {
    let protocol = super::conn::protocol_of_raw(raw);
    w.stats().status(err.status());
    let trace_id = TraceId::new();
    error(idle_of(w), stream, protocol, &trace_id, &err, bufs).await;
}
