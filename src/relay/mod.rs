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
//!
//! The relay is handed a [`Plan`] (the provider, the client's protocol, the trace already
//! rendered) and returns how the answer ended, [`Relayed`], by value; the attempt phase
//! records it. The in-process mock is read here exactly as a socket is.

use crate::endpoint::Protocol;
use crate::error::{self, Error, ErrorKind};
use crate::http1::write::{chunk_header, LAST_CHUNK};
use crate::http1::{ChunkedDecoder, ResponseFraming};
use crate::metrics::{CoreStats, Counter};
use crate::netio::{self, IoFail};
use crate::provider::StatusClass;
use crate::route::{Limits, Provider};
use crate::server::conn::Bufs;
use crate::server::respond;
use crate::trace::TraceId;
use crate::translate::stream::{Ids, Translator};
use crate::translate::{self, Session};
use crate::upstream::{Exchange, Upstream, MAX_ERROR_BODY};
use monoio::net::TcpStream;
use std::time::Instant;

pub mod keep;
mod translated;

use keep::Keep;

/// Room kept in front of relayed data for a chunk-size line.
pub const RESERVE: usize = 32;
/// Read size of one relay step.
pub const RELAY_READ: usize = 16 * 1024;

/// What the relay needs to answer one attempt: handed over by the attempt phase, which
/// rendered the trace before the relay started.
pub struct Plan<'a> {
    /// The provider answering.
    pub provider: &'a Provider,
    /// The client's protocol: the shape of errors and of the error event that ends a cut
    /// stream.
    pub protocol: Protocol,
    /// Sent as `x-routerly-trace-id`.
    pub trace_id: &'a TraceId,
    /// The trace as the stream's first SSE event (already in the chosen form; empty when off).
    pub trace: &'a [u8],
    /// Server limits of this request's snapshot.
    pub limits: &'a Limits,
    /// When the attempt started: first-byte time is measured from it.
    pub started: Instant,
    /// The translation of this exchange, when the provider speaks another API than the
    /// client: the answer, its errors and its stream are translated back.
    pub xlate: Option<&'a Session>,
    /// Extra response header lines (`x-routerly-dropped`), each `name: value\r\n`.
    pub extra_headers: &'a [u8],
}

/// How an attempt that reached the client ended, returned by value to the attempt phase,
/// which records it (health, latency, spend, log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// Status sent to the client.
    pub status: u16,
    /// Upstream time to first byte, µs after the attempt started.
    pub first_byte_us: u64,
    /// How the answer ended.
    pub end: End,
    /// Answer body bytes relayed (upstream payload, without our framing or trace).
    pub bytes: u64,
    /// Whether the client connection may carry another request.
    pub keep_alive: bool,
    /// Token usage read from the answer, when the usage tap has it.
    pub usage: Option<Usage>,
    /// Why the answer stopped, when the usage tap or the translator saw it.
    pub finish: Option<crate::usage::Finish>,
}

/// How a relayed answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Whole: the upstream finished and the client got every byte.
    Complete,
    /// The upstream failed after the first byte: the client got the protocol's error event.
    Cut,
    /// The client went away.
    ClientGone,
}

/// Tokens an answer reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input: u64,
    /// Output (completion) tokens.
    pub output: u64,
    /// Of `input`, tokens read from the provider's prompt cache.
    pub cache_read: u64,
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

/// Relays an upstream answer to the client. `Err` means nothing reached the client (the
/// status says fail over, or the provider refused our credentials, or the body broke before
/// any of it was sent): the attempt phase decides what comes next.
pub async fn answer(
    plan: &Plan<'_>,
    up: &Upstream,
    stats: &CoreStats,
    mut ex: Exchange,
    client: &mut TcpStream,
    bufs: &mut Bufs,
    keep: Option<&mut Keep<'_>>,
) -> Result<Relayed, Error> {
    let p = plan.provider;
    let first_byte_us = plan.started.elapsed().as_micros() as u64;
    let status = ex.head.status;
    let limits = plan.limits;
    let idle = limits.idle_timeout;
    let body_deadline = netio::after(p.stream_idle_timeout.max(p.first_byte_timeout));
    let done = |status, end, bytes: usize, keep_alive| Relayed {
        status,
        first_byte_us,
        end,
        bytes: bytes as u64,
        keep_alive,
        usage: None,
        finish: None,
    };

    let class = p.adapter.classify(status);
    if class != StatusClass::Answer {
        let read = ex.read_body(MAX_ERROR_BODY, body_deadline).await;
        let (start, end, reusable) = read.unwrap_or_default();
        let err = match class {
            StatusClass::FailOver if status == 429 => Some(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} is rate limiting (429)", p.id),
            )),
            StatusClass::FailOver => Some(Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} answered {status}", p.id),
            )),
            StatusClass::Credentials => Some(Error::upstream(
                ErrorKind::UpstreamAuth,
                format!(
                    "provider {} rejected the gateway's credentials ({status})",
                    p.id
                ),
            )),
            StatusClass::RelayError | StatusClass::Answer => None,
        };
        if let Some(e) = err {
            bufs.ubuf = ex.finish(up, p, reusable);
            return Err(e);
        }
        // A client error the provider found (400, 404, 413, 422...): relay it, unless the
        // body could echo the provider key.
        let body_ok = end > start && !echoes_key(&ex.buf[start..end], &p.key);
        let out = if body_ok && plan.xlate.is_some() {
            let s = plan.xlate.map_or(translate::Api::Chat, |s| s.client);
            let mut body = std::mem::take(&mut bufs.xlate);
            body.clear();
            translate::answer::error(status, &ex.buf[start..end], s, &mut bufs.json, &mut body);
            let o = whole_json(plan, client, status, &body, bufs).await;
            bufs.xlate = body;
            done(status, End::Complete, end - start, o.keep_alive)
        } else if body_ok {
            let o = whole(plan, client, status, &ex, start, end, bufs).await;
            done(status, End::Complete, end - start, o.keep_alive)
        } else {
            let e = Error::upstream(
                ErrorKind::InvalidRequest,
                format!("provider {} rejected the request ({status})", p.id),
            );
            let o = respond::error(idle, client, plan.protocol, plan.trace_id, &e, bufs).await;
            done(e.status(), End::Complete, 0, o.keep_alive)
        };
        bufs.ubuf = ex.finish(up, p, reusable);
        return Ok(out);
    }

    if !is_event_stream(ex.head.header(&ex.buf, b"content-type")) {
        let (start, end, reusable) = ex
            .read_body(limits.max_upstream_body_bytes, body_deadline)
            .await?;
        let mut usage = None;
        let mut finish = None;
        let o = match plan.xlate {
            None => {
                let kept = match keep.as_deref() {
                    Some(k) => k.store(&ex.buf[start..end]).await,
                    None => Ok(()),
                };
                usage = crate::usage::parse_body(plan.protocol, &ex.buf[start..end]);
                finish = crate::usage::parse_finish(plan.protocol, &ex.buf[start..end]);
                match kept {
                    Ok(()) => whole(plan, client, status, &ex, start, end, bufs).await,
                    Err(e) => {
                        respond::error(idle, client, plan.protocol, plan.trace_id, &e, bufs).await
                    }
                }
            }
            Some(session) => {
                let mut body = std::mem::take(&mut bufs.xlate);
                body.clear();
                let ids = ids(plan);
                let r = translate::answer::translate(
                    &ex.buf[start..end],
                    session,
                    &ids,
                    &mut bufs.json,
                    &mut body,
                );
                let o = match r {
                    Ok(a) => {
                        usage = a.usage.map(Usage::from);
                        finish = a.stop.and_then(|s| stop_words(session, s));
                        let kept = match keep.as_deref() {
                            Some(k) => k.store(&body).await,
                            None => Ok(()),
                        };
                        Ok(match kept {
                            Ok(()) => whole_json(plan, client, status, &body, bufs).await,
                            Err(e) => {
                                let (c, t) = (plan.protocol, plan.trace_id);
                                respond::error(idle, client, c, t, &e, bufs).await
                            }
                        })
                    }
                    Err(m) => Err(Error::upstream(
                        ErrorKind::UpstreamFailed,
                        format!(
                            "provider {} answered a body that does not parse: {}",
                            p.id, m.0
                        ),
                    )),
                };
                bufs.xlate = body;
                match o {
                    Ok(o) => o,
                    Err(e) => {
                        bufs.ubuf = ex.finish(up, p, reusable);
                        return Err(e);
                    }
                }
            }
        };
        bufs.ubuf = ex.finish(up, p, reusable && o.keep_alive);
        let end_how = if o.keep_alive {
            End::Complete
        } else {
            End::ClientGone
        };
        let mut r = done(status, end_how, end - start, o.keep_alive);
        r.usage = usage;
        r.finish = finish;
        return Ok(r);
    }

    stats.inc(Counter::Streams);
    if !start_stream(client, status, plan, bufs).await {
        bufs.ubuf = ex.finish(up, p, false);
        return Ok(done(status, End::ClientGone, 0, false));
    }
    let ((end, bytes), usage, finish) = match plan.xlate {
        None => {
            let (gap, proto) = (p.stream_idle_timeout, plan.protocol);
            let mut tap = crate::usage::StreamTap::new(proto);
            let r = relay_stream(&mut ex, client, gap, idle, proto, keep, &mut tap).await;
            (r, tap.usage(), tap.finish())
        }
        Some(session) => {
            let mut tr = Translator::new(session, &ids(plan));
            let r = translated::relay(
                &mut ex,
                client,
                &mut tr,
                p.stream_idle_timeout,
                idle,
                &mut bufs.xlate,
                keep,
            )
            .await;
            let finish = tr.stop().and_then(|s| stop_words(session, s));
            (r, tr.usage().map(Usage::from), finish)
        }
    };
    let (end, keep_alive, reusable) = match end {
        StreamEnd::Complete { reusable } => (End::Complete, true, reusable),
        StreamEnd::UpstreamFailed(e) => {
            crate::warn!(
                "trace_id={} stream from {} cut: {}",
                plan.trace_id.as_str(),
                p.id,
                e.message
            );
            stats.inc(Counter::UpstreamErrors);
            (End::Cut, true, false)
        }
        StreamEnd::ClientGone => (End::ClientGone, false, false),
    };
    bufs.ubuf = ex.finish(up, p, reusable);
    let mut r = done(status, end, bytes, keep_alive);
    r.usage = usage;
    r.finish = finish;
    Ok(r)
}

/// A translated answer's stop reason in the upstream's words (its `finish_reason` or
/// `stop_reason`), as a passthrough answer's is reported.
fn stop_words(session: &Session, stop: translate::Stop) -> Option<crate::usage::Finish> {
    let word = match session.upstream {
        translate::Api::Messages => translate::wire::messages_stop(stop),
        translate::Api::Chat | translate::Api::Responses => translate::wire::chat_finish(stop),
    };
    crate::usage::Finish::new(word.as_bytes())
}

/// The ids a translated answer is written with.
fn ids<'a>(plan: &Plan<'a>) -> Ids<'a> {
    Ids {
        trace_id: plan.trace_id.as_str(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

impl From<translate::Usage> for Usage {
    fn from(u: translate::Usage) -> Usage {
        Usage {
            input: u.input,
            output: u.output,
            cache_read: u.cache_read,
        }
    }
}

/// Sends a JSON body the gateway wrote (a translated answer or error) with our head.
async fn whole_json(
    plan: &Plan<'_>,
    client: &mut TcpStream,
    status: u16,
    body: &[u8],
    bufs: &mut Bufs,
) -> crate::server::conn::Outcome {
    let head = respond::Head {
        status,
        content_type: b"application/json",
        trace_id: plan.trace_id,
        extra: plan.extra_headers,
    };
    respond::whole_with(plan.limits.idle_timeout, client, &head, body, true, bufs).await
}

/// Sends the upstream body `ex.buf[start..end]` whole with our head and its content type.
async fn whole(
    plan: &Plan<'_>,
    client: &mut TcpStream,
    status: u16,
    ex: &Exchange,
    start: usize,
    end: usize,
    bufs: &mut Bufs,
) -> crate::server::conn::Outcome {
    let head = respond::Head {
        status,
        content_type: relayable_content_type(ex),
        trace_id: plan.trace_id,
        extra: plan.extra_headers,
    };
    let body = &ex.buf[start..end];
    respond::whole_with(plan.limits.idle_timeout, client, &head, body, true, bufs).await
}

/// Sends the stream's head and its trace chunk in one write; false if the client is gone.
async fn start_stream(
    client: &mut TcpStream,
    status: u16,
    plan: &Plan<'_>,
    bufs: &mut Bufs,
) -> bool {
    let mut o = std::mem::take(&mut bufs.wbuf);
    o.clear();
    respond::write_head(
        &mut o,
        status,
        b"text/event-stream; charset=utf-8",
        None,
        plan.trace_id,
        true,
    );
    o.extend_from_slice(plan.extra_headers);
    o.extend_from_slice(b"cache-control: no-cache\r\n\r\n");
    if !plan.trace.is_empty() {
        // The trace as one chunk.
        let (hdr, hl) = chunk_header(plan.trace.len());
        o.extend_from_slice(&hdr[..hl]);
        o.extend_from_slice(plan.trace);
        o.extend_from_slice(b"\r\n");
    }
    let (r, b) = netio::write_vec(client, o, netio::after(plan.limits.idle_timeout)).await;
    bufs.wbuf = b;
    r.is_ok()
}

/// How a relayed stream ended (the client already has the error event of an
/// `UpstreamFailed`).
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
    mut keep: Option<&mut Keep<'_>>,
    tap: &mut crate::usage::StreamTap,
) -> (StreamEnd, usize) {
    let mut relayed = 0usize;
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
            relayed += payload;
            let (hdr, hl) = chunk_header(payload);
            w_start = data_start - hl;
            buf[w_start..data_start].copy_from_slice(&hdr[..hl]);
            buf.extend_from_slice(b"\r\n");
            w_end = buf.len();
            let p = &buf[data_start..data_start + payload];
            tap.feed(p);
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
        if let Some(k) = keep.as_deref_mut() {
            // The chunk holding the final event waits until the answer is stored.
            if payload > 0 && k.saw_end(&buf[data_start..data_start + payload]) {
                if let Err(e) = k.store_stream().await {
                    break StreamEnd::UpstreamFailed(e);
                }
            }
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
            return (StreamEnd::ClientGone, relayed);
        }
    }
    ex.buf = buf;
    (result, relayed)
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
