//! Relaying an answer to the client: whole bodies, and streams as they arrive.
//!
//! A stream goes out as: our response head and the trace event in one write, then every
//! upstream read as one HTTP chunk, unchanged. The upstream's own chunked framing is decoded in
//! place and the payload re-framed without a copy: the read buffer keeps [`RESERVE`] bytes in
//! front of the data, the chunk-size line is written into them, `\r\n` after the payload, and
//! that one range of the same buffer is written to the client.
//!
//! An upstream failure after the first byte ends the stream with the protocol's error event
//! (OpenAI `data: {"error":...}`, Anthropic `event: error`) and the terminating chunk, never a
//! fake `[DONE]`. A client write failure drops the upstream connection at once.

use crate::conn::{Bufs, Outcome, Request};
use crate::endpoint::Protocol;
use crate::error::{self, Error, ErrorKind};
use crate::gateway::Attempt;
use crate::http1::write::{chunk_header, LAST_CHUNK, MAX_CHUNK_HEADER};
use crate::http1::{ChunkedDecoder, ResponseFraming};
use crate::metrics::Counter;
use crate::mock::{self, Mock, MockOptions};
use crate::netio::{self, IoFail};
use crate::respond;
use crate::upstream::{Exchange, MAX_ERROR_BODY};
use crate::worker::Worker;
use monoio::net::TcpStream;

/// Room kept in front of relayed data for a chunk-size line.
pub const RESERVE: usize = 32;
/// Read size of one relay step.
pub const RELAY_READ: usize = 16 * 1024;

/// How an attempt ended when it did not produce a normal answer.
pub enum Relayed {
    /// Failed before anything reached the client: the next candidate may be tried.
    Before(Error),
    /// Something reached the client, then it ended (answered, or cut with an error event).
    After(Outcome),
}

/// The upstream's `content-type`, relayed as sent when it is plain visible ASCII (no header
/// injection through it), `application/json` otherwise or when absent.
fn relayable_content_type(ex: &Exchange) -> &[u8] {
    match ex.head.header(&ex.buf, b"content-type") {
        Some(ct) if ct.iter().all(|&b| (0x20..0x7f).contains(&b)) => ct,
        _ => b"application/json",
    }
}

fn is_event_stream(ct: Option<&[u8]>) -> bool {
    ct.is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"))
}

/// Whether `hay` contains a fragment of `key` long enough to identify it (8 bytes), so an
/// upstream error body that echoes the key is never relayed.
fn echoes_key(hay: &[u8], key: &str) -> bool {
    let k = key.as_bytes();
    if k.len() < 8 {
        return !k.is_empty() && memchr::memmem::find(hay, k).is_some();
    }
    k.windows(8).any(|w| memchr::memmem::find(hay, w).is_some())
}

/// Relays an upstream answer to the client.
pub async fn upstream(
    w: &Worker,
    req: &Request<'_>,
    a: &Attempt<'_>,
    mut ex: Exchange,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Outcome, Relayed> {
    let p = a.provider;
    a.first_byte_us
        .set(Some(a.started.elapsed().as_micros() as u64));
    let status = ex.head.status;
    let table = a.table;
    let limits = &table.limits;
    let body_deadline = netio::after(p.stream_idle_timeout.max(p.first_byte_timeout));

    if !(200..300).contains(&status) {
        let read = ex.read_body(MAX_ERROR_BODY, body_deadline).await;
        let (start, end, reusable) = read.unwrap_or_default();
        let err = match status {
            429 => Some(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} is rate limiting (429)", p.id),
            )),
            500..=599 => Some(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} answered {status}", p.id),
            )),
            401 | 403 => Some(Error::upstream(
                ErrorKind::UpstreamAuth,
                format!(
                    "provider {} rejected the gateway's credentials ({status})",
                    p.id
                ),
            )),
            _ => None,
        };
        if let Some(e) = err {
            bufs.ubuf = ex.finish(w, p, reusable);
            return Err(Relayed::Before(e));
        }
        // A client error the provider found (400, 404, 413, 422...): relay it, unless the
        // body could echo the provider key.
        let body_ok = end > start && !echoes_key(&ex.buf[start..end], &p.key);
        let out = if body_ok {
            let ct = relayable_content_type(&ex);
            respond::whole(
                w,
                client,
                status,
                ct,
                &req.trace_id,
                &ex.buf[start..end],
                true,
                bufs,
            )
            .await
        } else {
            let e = Error::upstream(
                ErrorKind::InvalidRequest,
                format!("provider {} rejected the request ({status})", p.id),
            );
            let e = Error {
                side: crate::error::Side::Upstream,
                ..e
            };
            let mut o =
                respond::error(w, client, a.endpoint.protocol(), &req.trace_id, &e, bufs).await;
            o.status = e.status();
            o
        };
        bufs.ubuf = ex.finish(w, p, reusable);
        return Ok(out);
    }

    if !is_event_stream(ex.head.header(&ex.buf, b"content-type")) {
        let (start, end, reusable) = match ex
            .read_body(limits.max_upstream_body_bytes, body_deadline)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                drop(ex);
                return Err(Relayed::Before(e));
            }
        };
        let ct = relayable_content_type(&ex);
        let out = respond::whole(
            w,
            client,
            status,
            ct,
            &req.trace_id,
            &ex.buf[start..end],
            true,
            bufs,
        )
        .await;
        bufs.ubuf = ex.finish(w, p, reusable && out.keep_alive);
        return Ok(out);
    }

    if !start_stream(w, client, status, req, a, bufs).await {
        return Err(Relayed::After(Outcome {
            status,
            keep_alive: false,
        }));
    }
    let protocol = a.endpoint.protocol();
    let end = relay_stream(
        &mut ex,
        client,
        p.stream_idle_timeout,
        limits.idle_timeout,
        protocol,
    )
    .await;
    let (keep_alive, reusable) = match end {
        StreamEnd::Complete { reusable } => (true, reusable),
        StreamEnd::UpstreamFailed(e) => {
            a.cut.set(true);
            crate::warn!(
                "trace_id={} stream from {} cut: {}",
                req.trace_id.as_str(),
                p.id,
                e.message
            );
            w.stats().inc(Counter::UpstreamErrors);
            (true, false)
        }
        StreamEnd::ClientGone => (false, false),
    };
    bufs.ubuf = ex.finish(w, p, reusable);
    Err(Relayed::After(Outcome { status, keep_alive }))
}

/// Sends the stream's head and its trace chunk in one write; false if the client is gone.
async fn start_stream(
    w: &Worker,
    client: &mut TcpStream,
    status: u16,
    req: &Request<'_>,
    a: &Attempt<'_>,
    bufs: &mut Bufs,
) -> bool {
    w.stats().inc(Counter::Streams);
    let mut o = std::mem::take(&mut bufs.wbuf);
    o.clear();
    write_stream_head(&mut o, status, req, a);
    let (r, b) = netio::write_vec(client, o, netio::after(a.table.limits.idle_timeout)).await;
    bufs.wbuf = b;
    r.is_ok()
}

/// Appends the stream's response head and its opening chunk (the trace, when on).
fn write_stream_head(o: &mut Vec<u8>, status: u16, req: &Request<'_>, a: &Attempt<'_>) {
    respond::write_head(
        o,
        status,
        b"text/event-stream; charset=utf-8",
        None,
        &req.trace_id,
        true,
    );
    o.extend_from_slice(b"cache-control: no-cache\r\n\r\n");
    let at = o.len();
    a.write_trace(&req.trace_id, o);
    let n = o.len() - at;
    if n > 0 {
        // Frame the trace as one chunk: insert its size line in front.
        let (hdr, hl) = chunk_header(n);
        o.splice(at..at, hdr[..hl].iter().copied());
        o.extend_from_slice(b"\r\n");
    }
}

enum StreamEnd {
    Complete { reusable: bool },
    UpstreamFailed(Error),
    ClientGone,
}

/// Relays the body of `ex` (whose head is parsed) to the client as HTTP chunks.
async fn relay_stream(
    ex: &mut Exchange,
    client: &mut TcpStream,
    gap: std::time::Duration,
    client_timeout: std::time::Duration,
    protocol: Protocol,
) -> StreamEnd {
    let framing = ex.head.framing;
    let mut dec = ChunkedDecoder::new();
    let mut remaining: u64 = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let mut data_start = ex.head.head_len;
    let mut tail: [u8; 2] = *b"\n\n"; // last two bytes relayed, for the event boundary
    let mut buf = std::mem::take(&mut ex.buf);
    let result = loop {
        let filled = buf.len();
        let (payload, done, clean) = match framing {
            ResponseFraming::Chunked => match dec.decode_in_place(&mut buf[data_start..filled]) {
                Ok(d) => (
                    d.payload,
                    d.done,
                    !d.done || data_start + d.consumed == filled,
                ),
                Err(_) => {
                    break StreamEnd::UpstreamFailed(Error::upstream(
                        ErrorKind::UpstreamFailed,
                        "upstream sent a malformed chunk",
                    ))
                }
            },
            ResponseFraming::Length(_) => {
                let avail = (filled - data_start) as u64;
                let n = avail.min(remaining);
                remaining -= n;
                (n as usize, remaining == 0, avail == n)
            }
            ResponseFraming::CloseDelimited => (filled - data_start, false, true),
            ResponseFraming::None => (0, true, filled == data_start),
        };
        let mut w_start = data_start;
        let mut w_end = data_start;
        buf.truncate(data_start + payload);
        if payload > 0 {
            let (hdr, hl) = chunk_header(payload);
            w_start = data_start - hl;
            buf[w_start..data_start].copy_from_slice(&hdr[..hl]);
            buf.extend_from_slice(b"\r\n");
            w_end = buf.len();
            let p = &buf[data_start..data_start + payload];
            if payload >= 2 {
                tail = [p[payload - 2], p[payload - 1]];
            } else {
                tail = [tail[1], p[0]];
            }
        }
        if done {
            buf.extend_from_slice(LAST_CHUNK);
            w_end = buf.len();
        }
        if w_end > w_start {
            let (r, b) =
                netio::write_range(client, buf, w_start, w_end, netio::after(client_timeout)).await;
            buf = b;
            if r.is_err() {
                break StreamEnd::ClientGone;
            }
        }
        if done {
            break StreamEnd::Complete {
                reusable: clean && ex.head.keep_alive,
            };
        }
        buf.truncate(RESERVE.min(buf.len()));
        buf.resize(RESERVE, 0);
        data_start = RESERVE;
        let reading = ex.conn.read_more(buf, RELAY_READ, netio::after(gap));
        let (r, b) = monoio::select! {
            r = reading => r,
            _ = netio::client_gone_later(client) => {
                // The client left while we waited: drop the upstream connection now.
                buf = Vec::new();
                break StreamEnd::ClientGone;
            }
        };
        buf = b;
        match r {
            Ok(_) => {}
            Err(IoFail::Closed) if framing == ResponseFraming::CloseDelimited => {
                buf.clear();
                buf.extend_from_slice(LAST_CHUNK);
                let (r, b) = netio::write_vec(client, buf, netio::after(client_timeout)).await;
                buf = b;
                break if r.is_ok() {
                    StreamEnd::Complete { reusable: false }
                } else {
                    StreamEnd::ClientGone
                };
            }
            Err(IoFail::Timeout) => {
                buf = Vec::new();
                break StreamEnd::UpstreamFailed(Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    "upstream stream stalled",
                ));
            }
            Err(_) => {
                break StreamEnd::UpstreamFailed(Error::upstream(
                    ErrorKind::UpstreamFailed,
                    "upstream closed the stream early",
                ))
            }
        }
    };
    if let StreamEnd::UpstreamFailed(e) = &result {
        buf.clear();
        if !end_with_error(
            client,
            &mut buf,
            protocol,
            e,
            tail == *b"\n\n",
            client_timeout,
        )
        .await
        {
            ex.buf = buf;
            return StreamEnd::ClientGone;
        }
    }
    ex.buf = buf;
    result
}

/// Writes the protocol's error event as a chunk, then the last chunk. False if the client is
/// gone.
async fn end_with_error(
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
    protocol: Protocol,
    e: &Error,
    at_boundary: bool,
    client_timeout: std::time::Duration,
) -> bool {
    let mut ev = Vec::with_capacity(256);
    error::write_stream_event(&mut ev, protocol, e, at_boundary);
    let mut out = std::mem::take(buf);
    out.clear();
    crate::http1::write::write_chunk_header(&mut out, ev.len());
    out.extend_from_slice(&ev);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(LAST_CHUNK);
    let (r, b) = netio::write_vec(client, out, netio::after(client_timeout)).await;
    *buf = b;
    r.is_ok()
}

/// The mock's endpoint for ours.
fn mock_endpoint(e: crate::endpoint::Endpoint) -> mock::Endpoint {
    use crate::endpoint::Endpoint as E;
    match e {
        E::ChatCompletions | E::Models => mock::Endpoint::ChatCompletions,
        E::Responses => mock::Endpoint::Responses,
        E::Messages => mock::Endpoint::Messages,
        E::CountTokens => mock::Endpoint::CountTokens,
    }
}

/// Serves an attempt from the in-process mock provider, as an upstream would answer.
pub async fn mock(
    w: &Worker,
    req: &Request<'_>,
    a: &Attempt<'_>,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Outcome, Relayed> {
    let cfg = &a.provider.mock;
    let m = Mock::new(MockOptions {
        ttft_ms: cfg.ttft_ms,
        tokens_per_s: cfg.tokens_per_s,
        reply_tokens: cfg.reply_tokens,
        fail_rate: cfg.fail_rate,
        seed: crate::trace::rand_u64(),
    });
    let mut body = std::mem::take(&mut bufs.ubuf);
    body.clear();
    a.splice_body(req.body, &mut body);
    let reply = m.reply(mock_endpoint(a.endpoint), &body);
    bufs.ubuf = body;
    if !reply.first_byte_delay.is_zero() {
        let d = reply.first_byte_delay.min(a.provider.first_byte_timeout);
        monoio::time::sleep(d).await;
        if reply.first_byte_delay > a.provider.first_byte_timeout {
            return Err(Relayed::Before(Error::upstream(
                ErrorKind::UpstreamTimeout,
                format!("provider {} timed out before its first byte", a.provider.id),
            )));
        }
    }
    a.first_byte_us
        .set(Some(a.started.elapsed().as_micros() as u64));
    let status = reply.status;
    let limits = &a.table.limits;
    match status {
        429 => {
            return Err(Relayed::Before(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} is rate limiting (429)", a.provider.id),
            )))
        }
        500..=599 => {
            return Err(Relayed::Before(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} answered {status}", a.provider.id),
            )))
        }
        _ => {}
    }
    let Some(mut s) = reply.stream else {
        let ct = reply.content_type.as_bytes();
        return Ok(respond::whole(
            w,
            client,
            status,
            ct,
            &req.trace_id,
            &reply.body,
            true,
            bufs,
        )
        .await);
    };
    if !start_stream(w, client, status, req, a, bufs).await {
        return Err(Relayed::After(Outcome {
            status,
            keep_alive: false,
        }));
    }
    let mut o = std::mem::take(&mut bufs.wbuf);
    let protocol = a.endpoint.protocol();
    let mut keep_alive = true;
    let mut ev = std::mem::take(&mut bufs.scratch);
    loop {
        ev.clear();
        let Some(delay) = s.next_event(&mut ev) else {
            break;
        };
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
        o.clear();
        o.reserve(ev.len() + MAX_CHUNK_HEADER + 2);
        crate::http1::write::write_chunk_header(&mut o, ev.len());
        o.extend_from_slice(&ev);
        o.extend_from_slice(b"\r\n");
        let (r, b) = netio::write_vec(client, o, netio::after(limits.idle_timeout)).await;
        o = b;
        if r.is_err() {
            keep_alive = false;
            break;
        }
    }
    bufs.scratch = ev;
    if keep_alive {
        if s.ends_abruptly() {
            a.cut.set(true);
            let e = Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} closed the stream early", a.provider.id),
            );
            keep_alive =
                end_with_error(client, &mut o, protocol, &e, true, limits.idle_timeout).await;
        } else {
            o.clear();
            o.extend_from_slice(LAST_CHUNK);
            let (r, b) = netio::write_vec(client, o, netio::after(limits.idle_timeout)).await;
            o = b;
            keep_alive = r.is_ok();
        }
    }
    bufs.wbuf = o;
    Err(Relayed::After(Outcome { status, keep_alive }))
}
