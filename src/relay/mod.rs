//! Relaying an answer to the client: whole bodies, and streams as they arrive.
//!
//! A stream goes out as: our response head and the trace event, then every upstream read as
//! one HTTP chunk, unchanged. The head and the trace leave in the same write as the bytes that
//! came with the upstream's head (for a short answer the whole body and the last chunk): one
//! write, one segment, as a proxy that copies would send, without the copy ([`Opening`]). The
//! upstream's own chunked framing is decoded in place and the payload re-framed without a copy: the read buffer keeps [`RESERVE`] bytes in
//! front of the data, the chunk-size line is written into them, `\r\n` after the payload, and
//! that one range of the same buffer is written to the client.
//!
//! An upstream failure after the first byte ends the stream with the protocol's error event
//! (OpenAI `data: {"error":...}`, Anthropic `event: error`) and the terminating chunk, never a
//! fake `[DONE]`. So does a stream whose body ends without the protocol's end event (watched
//! as the bytes pass, [`watch`]), and one still running when a shutdown's drain deadline
//! passes ([`drain`]). A client write failure drops the upstream connection at once.
//!
//! Every byte relayed (bodies, error bodies, stream events, across reads) is scanned for
//! fragments of the provider's key ([`scrub`]); a hit is never sent: a held body becomes a 502,
//! a stream ends with the error event, a body already flowing is cut.
//!
//! A non-streaming answer the gateway need not rewrite and larger than `hold_body_bytes` is
//! relayed as it arrives, as chunks, like a stream (its usage read from its last bytes); one it
//! rewrites (translation) or stores (a Responses turn) is held once, within the worker's
//! `max_held_bodies` ([`held`]).
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
use crate::translate::{self, Api, Session};
use crate::upstream::{Exchange, Upstream, UpstreamStream, MAX_ERROR_BODY};
use monoio::net::TcpStream;
use scrub::{KeySet, KeyTail};
use std::os::fd::AsRawFd;
use std::time::Instant;
use watch::{Seen, Watch};

pub mod drain;
pub mod held;
pub mod keep;
pub mod scrub;
mod translated;
pub mod watch;

use keep::Keep;

/// Room kept in front of relayed data for a chunk-size line.
pub const RESERVE: usize = 32;
/// The least room a relay read asks for; it reads into all the room the buffer has. Not the
/// pooled buffer's whole size: the [`RESERVE`] in front leaves less than that, so asking for
/// 16 KiB grew every stream's buffer to 32 KiB (and glibc's realloc touched the old 16 KiB
/// again in the copy), a third of the memory of an active stream. Only a read that fills the
/// buffer, a bulk body, grows it now (for the chunk's closing CRLF).
pub const RELAY_READ: usize = 4 * 1024;

/// What the relay needs to answer one attempt: handed over by the attempt phase, which
/// rendered the trace before the relay started.
pub struct Plan<'a> {
    /// The provider answering.
    pub provider: &'a Provider,
    /// The client's protocol: the shape of errors and of the error event that ends a cut
    /// stream.
    pub protocol: Protocol,
    /// The client's API: which event ends its streams.
    pub api: Api,
    /// Sent as `x-routerly-trace-id`.
    pub trace_id: &'a TraceId,
    /// Leave the usage chunk of an OpenAI chat stream out: the gateway asked for it, the
    /// client did not.
    pub strip_usage: bool,
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
    /// Gaps between the upstream reads of a stream (none for a whole body).
    pub gaps: crate::metrics::hist::Gaps,
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

/// Why a stream or body was withheld: the message never says what was found.
const WITHHELD: &str = "the answer was withheld by the gateway";
/// Why a stream was cut at the drain deadline.
const SHUTTING_DOWN: &str = "the gateway is shutting down";

fn withheld() -> Error {
    Error::upstream(ErrorKind::UpstreamFailed, WITHHELD)
}

fn shutting_down() -> Error {
    Error::gateway(ErrorKind::Unavailable, SHUTTING_DOWN)
}

/// Bodies larger than this are written after their head in a second write, from the buffer
/// they are held in, rather than copied behind the head (a large body is held once).
const SPLIT_WRITE_ABOVE: usize = 64 * 1024;

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
        gaps: Default::default(),
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
        let body_ok = end > start && !p.key_set.contains(&ex.buf[start..end]);
        let out = if body_ok && plan.xlate.is_some() {
            let s = plan.xlate.map_or(translate::Api::Chat, |s| s.client);
            let mut body = std::mem::take(&mut bufs.xlate);
            body.clear();
            translate::answer::error(status, &ex.buf[start..end], s, &mut bufs.json, &mut body);
            let o = whole_json(plan, client, status, &mut body, bufs).await;
            bufs.xlate = body;
            done(status, End::Complete, end - start, o.keep_alive)
        } else if body_ok {
            let o = whole(plan, client, status, &mut ex, start, end, bufs).await;
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
        let large = match ex.head.framing {
            ResponseFraming::Length(n) => n > limits.hold_body_bytes as u64,
            ResponseFraming::None => false,
            ResponseFraming::Chunked | ResponseFraming::CloseDelimited => true,
        };
        if large && plan.xlate.is_none() && keep.is_none() {
            return Ok(flow(plan, up, stats, ex, client, bufs, first_byte_us).await);
        }
        // Held whole: a large body needs one of the worker's slots.
        let slot = if large {
            held::try_take(limits.max_held_bodies)
        } else {
            None
        };
        let full = || {
            Error::gateway(
                ErrorKind::Unavailable,
                "the gateway holds its maximum of large answers; retry shortly",
            )
            .with_retry_after(1)
        };
        if large && slot.is_none() && matches!(ex.head.framing, ResponseFraming::Length(_)) {
            bufs.ubuf = ex.finish(up, p, false);
            let e = full();
            let o = respond::error(idle, client, plan.protocol, plan.trace_id, &e, bufs).await;
            return Ok(done(e.status(), End::Complete, 0, o.keep_alive));
        }
        // Of unknown length and no slot free: still served if it turns out small.
        let max = if large && slot.is_none() {
            limits.hold_body_bytes
        } else {
            limits.max_upstream_body_bytes
        };
        let (start, end, reusable) = match ex.read_body(max, body_deadline).await {
            Ok(r) => r,
            Err(e) if large && slot.is_none() && crate::upstream::is_too_large(&e) => {
                bufs.ubuf = ex.finish(up, p, false);
                let e = full();
                let o = respond::error(idle, client, plan.protocol, plan.trace_id, &e, bufs).await;
                return Ok(done(e.status(), End::Complete, 0, o.keep_alive));
            }
            Err(e) => return Err(e),
        };
        if p.key_set.contains(&ex.buf[start..end]) {
            crate::warn!(
                "trace_id={} provider {} answered with its key in the body: withheld",
                plan.trace_id.as_str(),
                p.id
            );
            bufs.ubuf = ex.finish(up, p, reusable);
            let e = withheld();
            let o = respond::error(idle, client, plan.protocol, plan.trace_id, &e, bufs).await;
            return Ok(done(e.status(), End::Complete, 0, o.keep_alive));
        }
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
                    Ok(()) => whole(plan, client, status, &mut ex, start, end, bufs).await,
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
                // The upstream body is translated: only its translation is held from here.
                if body.len() > SPLIT_WRITE_ABOVE {
                    ex.buf = Vec::new();
                }
                let o = match r {
                    Ok(a) => {
                        usage = a.usage.map(Usage::from);
                        finish = a.stop.and_then(|s| stop_words(session, s));
                        let kept = match keep.as_deref() {
                            Some(k) => k.store(&body).await,
                            None => Ok(()),
                        };
                        Ok(match kept {
                            Ok(()) => whole_json(plan, client, status, &mut body, bufs).await,
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
        drop(slot);
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
    let _open = crate::metrics::Held::new(stats, Counter::StreamsOpen);
    stream_head(status, plan, &mut bufs.wbuf);
    let ((end, bytes), usage, finish) = match plan.xlate {
        None => {
            let (gap, proto) = (p.stream_idle_timeout, plan.protocol);
            let mut tap = crate::usage::StreamTap::new(proto).stripping(plan.strip_usage);
            let mut watch = Watch::new(plan.api, std::mem::take(&mut bufs.sse));
            let mut mode = Mode::Events {
                watch: &mut watch,
                usage: &mut tap,
            };
            let opening = Opening {
                head: &mut bufs.wbuf,
                iov: &mut bufs.iov,
            };
            let r = relay_stream(
                &mut ex, client, gap, idle, proto, keep, &mut mode, &p.key_set, opening,
            )
            .await;
            bufs.sse = watch.into_framer();
            (r, tap.usage(), tap.finish())
        }
        Some(session) => {
            let mut tr = Translator::new(session, &ids(plan));
            let r = translated::relay(
                &mut ex,
                client,
                &mut tr,
                translated::Limits {
                    gap: p.stream_idle_timeout,
                    client_timeout: idle,
                    keys: &p.key_set,
                },
                &mut bufs.xlate,
                keep,
                Opening {
                    head: &mut bufs.wbuf,
                    iov: &mut bufs.iov,
                },
            )
            .await;
            let finish = tr.stop().and_then(|s| stop_words(session, s));
            (r, tr.usage().map(Usage::from), finish)
        }
    };
    let (end, keep_alive, reusable) = match end {
        StreamEnd::Complete { reusable } => (End::Complete, true, reusable),
        StreamEnd::Failed { reusable } => (End::Cut, true, reusable),
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
    let gaps = ex.gaps;
    bufs.ubuf = ex.finish(up, p, reusable);
    let mut r = done(status, end, bytes, keep_alive);
    r.usage = usage;
    r.gaps = gaps;
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
    body: &mut Vec<u8>,
    bufs: &mut Bufs,
) -> crate::server::conn::Outcome {
    let head = respond::Head {
        status,
        content_type: b"application/json",
        trace_id: plan.trace_id,
        extra: plan.extra_headers,
    };
    let idle = plan.limits.idle_timeout;
    if body.len() <= SPLIT_WRITE_ABOVE {
        return respond::whole_with(idle, client, &head, body, true, bufs).await;
    }
    let ok = send_head(idle, client, &head, body.len(), bufs).await;
    let end = body.len();
    let ok = ok && send_held(idle, client, body, 0, end).await;
    crate::server::conn::Outcome {
        status,
        keep_alive: ok,
    }
}

/// Sends the upstream body `ex.buf[start..end]` whole with our head and its content type.
async fn whole(
    plan: &Plan<'_>,
    client: &mut TcpStream,
    status: u16,
    ex: &mut Exchange,
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
    let idle = plan.limits.idle_timeout;
    if end - start <= SPLIT_WRITE_ABOVE {
        let body = &ex.buf[start..end];
        return respond::whole_with(idle, client, &head, body, true, bufs).await;
    }
    let ok = send_head(idle, client, &head, end - start, bufs).await;
    let ok = ok && send_held(idle, client, &mut ex.buf, start, end).await;
    crate::server::conn::Outcome {
        status,
        keep_alive: ok,
    }
}

/// Writes the head of a whole body of `len` bytes sent by itself after it (a large body is
/// written from where it is held, never copied behind its head). False if the client is gone.
async fn send_head(
    idle: std::time::Duration,
    client: &mut TcpStream,
    head: &respond::Head<'_>,
    len: usize,
    bufs: &mut Bufs,
) -> bool {
    let mut o = std::mem::take(&mut bufs.wbuf);
    o.clear();
    respond::write_head(
        &mut o,
        head.status,
        head.content_type,
        Some(len),
        head.trace_id,
        true,
    );
    o.extend_from_slice(head.extra);
    o.extend_from_slice(b"\r\n");
    let (r, b) = netio::write_vec(client, o, netio::after(idle)).await;
    bufs.wbuf = b;
    r.is_ok()
}

/// Writes `held[start..end]` from the buffer it is held in. False if the client is gone.
async fn send_held(
    idle: std::time::Duration,
    client: &mut TcpStream,
    held: &mut Vec<u8>,
    start: usize,
    end: usize,
) -> bool {
    let buf = std::mem::take(held);
    let (r, b) = netio::write_range(client, buf, start, end, netio::after(idle)).await;
    *held = b;
    r.is_ok()
}

/// Relays a large non-streaming answer that needs no rewriting as it arrives: our head
/// (the upstream's content type, chunked), then each upstream read as one chunk, scanned for
/// the key, its usage read from its last [`crate::usage::USAGE_TAIL`] bytes. A failure once
/// the head is sent (the upstream breaks off, the key shows up, the drain deadline passes)
/// can only cut the body: the connection closes without the last chunk, which every HTTP
/// client reports as an incomplete answer.
async fn flow(
    plan: &Plan<'_>,
    up: &Upstream,
    stats: &CoreStats,
    mut ex: Exchange,
    client: &mut TcpStream,
    bufs: &mut Bufs,
    first_byte_us: u64,
) -> Relayed {
    let p = plan.provider;
    let status = ex.head.status;
    let idle = plan.limits.idle_timeout;
    let mut r = Relayed {
        status,
        first_byte_us,
        end: End::ClientGone,
        bytes: 0,
        keep_alive: false,
        usage: None,
        // Reads of a body, not gaps between stream events.
        gaps: Default::default(),
        // Not read from a body relayed as it arrives (its tail is not a whole JSON value).
        finish: None,
    };
    // Sent with the first body bytes, by the relay.
    let o = &mut bufs.wbuf;
    o.clear();
    respond::write_head(
        o,
        status,
        relayable_content_type(&ex),
        None,
        plan.trace_id,
        true,
    );
    o.extend_from_slice(plan.extra_headers);
    o.extend_from_slice(b"\r\n");
    let mut tail = std::mem::take(&mut bufs.xlate);
    tail.clear();
    let gap = p.stream_idle_timeout.max(p.first_byte_timeout);
    let mut mode = Mode::Body { tail: &mut tail };
    let (end, bytes) = relay_stream(
        &mut ex,
        client,
        gap,
        idle,
        plan.protocol,
        None,
        &mut mode,
        &p.key_set,
        Opening {
            head: &mut bufs.wbuf,
            iov: &mut bufs.iov,
        },
    )
    .await;
    r.usage = crate::usage::parse_tail(plan.protocol, &tail);
    bufs.xlate = tail;
    r.bytes = bytes as u64;
    let reusable = match end {
        StreamEnd::Complete { reusable } | StreamEnd::Failed { reusable } => {
            (r.end, r.keep_alive) = (End::Complete, true);
            reusable
        }
        StreamEnd::UpstreamFailed(e) => {
            crate::warn!(
                "trace_id={} body from {} cut: {}",
                plan.trace_id.as_str(),
                p.id,
                e.message
            );
            stats.inc(Counter::UpstreamErrors);
            r.end = End::Cut;
            false
        }
        StreamEnd::ClientGone => false,
    };
    bufs.ubuf = ex.finish(up, p, reusable);
    r
}

/// Writes the stream's head and its trace chunk into `o`, to be sent with the first upstream
/// bytes ([`Opening`]).
fn stream_head(status: u16, plan: &Plan<'_>, o: &mut Vec<u8>) {
    o.clear();
    respond::write_head(
        o,
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
}

/// Our response head (with a stream's trace event), built but not yet sent: the relay writes it
/// in front of the first bytes it relays, in the same `writev` ([`netio::write_pair`]), so a
/// short answer leaves in one write while the relayed bytes stay where they were read. Sent
/// alone when the upstream's head came without body bytes (the client's first byte is not held
/// back for the upstream's), and in front of the error event when the first read already fails.
pub(crate) struct Opening<'a> {
    /// The unsent head; emptied once written.
    pub head: &'a mut Vec<u8>,
    /// The reused iovecs of that write.
    pub iov: &'a mut netio::IoVecs,
}

impl Opening<'_> {
    /// Writes the head if still unsent, with `buf[start..end]` behind it; else that range alone
    /// (nothing when empty). Hands `buf` back.
    async fn write(
        &mut self,
        client: &mut TcpStream,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        deadline: monoio::time::Instant,
    ) -> (Result<(), IoFail>, Vec<u8>) {
        if !self.head.is_empty() {
            netio::write_pair(client, self.head, self.iov, buf, start, end, deadline).await
        } else if end > start {
            netio::write_range(client, buf, start, end, deadline).await
        } else {
            (Ok(()), buf)
        }
    }
}

/// How a relayed stream ended (the client already has the error event of an
/// `UpstreamFailed`).
enum StreamEnd {
    Complete {
        reusable: bool,
    },
    /// The upstream's own error event ended it (relayed as sent, with the last chunk).
    Failed {
        reusable: bool,
    },
    UpstreamFailed(Error),
    ClientGone,
}

/// What a relayed body is, and what is watched as it passes.
enum Mode<'a> {
    /// An SSE stream: its events watched for the protocol's end, its usage tapped; a failure
    /// ends it with the protocol's error event.
    Events {
        watch: &'a mut Watch,
        usage: &'a mut crate::usage::StreamTap,
    },
    /// A whole body relayed as it arrives: its last bytes kept for the usage; a failure cuts
    /// it (no last chunk).
    Body { tail: &'a mut Vec<u8> },
}

/// How a wait for the next upstream read ended.
enum Wait {
    Read(Result<usize, IoFail>, Vec<u8>),
    ClientGone,
    Cut,
}

/// What a stream waits on besides its upstream, made once per stream and polled at every
/// wait for the next upstream read: made per read, the client watch, the drain's cut and the
/// stall deadline each registered and dropped a timer or a waker per event (a quarter of the
/// relay's CPU per event, bench/streams.sh).
struct Waits<'a, G> {
    /// The stream's [`netio::client_gone_watch`].
    gone: std::pin::Pin<&'a mut G>,
    /// The worker's drain cut.
    cut: drain::Cut,
    /// Fires at the stall deadline: set once, moved on only when it fires early (reads came
    /// meanwhile), so a flowing stream touches no timer per event.
    stall: std::pin::Pin<&'a mut monoio::time::Sleep>,
    /// The stall allowance: at most this between two upstream reads.
    gap: std::time::Duration,
    /// When the current wait began.
    last: Instant,
}

impl<'a, G: std::future::Future<Output = ()>> Waits<'a, G> {
    fn new(
        gone: std::pin::Pin<&'a mut G>,
        stall: std::pin::Pin<&'a mut monoio::time::Sleep>,
        gap: std::time::Duration,
    ) -> Self {
        Waits {
            gone,
            cut: drain::cut(),
            stall,
            gap,
            last: Instant::now(),
        }
    }

    /// Waits for the upstream's next bytes (appended to `buf`), for the client to leave (then
    /// the upstream connection is dropped at once), for the drain's cut, or for `gap` to pass
    /// (from now: time spent writing to a slow client is not the upstream's), whichever comes
    /// first. Both relays wait here.
    async fn next_read(&mut self, conn: &mut UpstreamStream, buf: Vec<u8>) -> Wait {
        self.last = Instant::now();
        let deadline = monoio::time::Instant::from_std(self.last + self.gap);
        let reading = conn.read_more_watched(buf, RELAY_READ, deadline);
        let stalled = Stalled {
            sleep: self.stall.as_mut(),
            last: self.last,
            gap: self.gap,
        };
        monoio::select! {
            (r, b) = reading => Wait::Read(r, b),
            _ = self.gone.as_mut() => Wait::ClientGone,
            _ = &mut self.cut => Wait::Cut,
            _ = stalled => Wait::Read(Err(IoFail::Timeout), Vec::new()),
        }
    }
}

/// Resolves once `gap` has passed since `last` (the wait's start): the stream's one stall
/// timer, moved on to `last + gap` when it fires before that.
struct Stalled<'a> {
    sleep: std::pin::Pin<&'a mut monoio::time::Sleep>,
    last: Instant,
    gap: std::time::Duration,
}

impl std::future::Future for Stalled<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return std::task::Poll::Pending;
            }
            let due = self.last + self.gap;
            if due <= Instant::now() {
                return std::task::Poll::Ready(());
            }
            self.sleep
                .as_mut()
                .reset(monoio::time::Instant::from_std(due));
        }
    }
}

/// Relays the body of `ex` (whose head is parsed) to the client as HTTP chunks.
#[allow(clippy::too_many_arguments)]
async fn relay_stream(
    ex: &mut Exchange,
    client: &mut TcpStream,
    gap: std::time::Duration,
    client_timeout: std::time::Duration,
    protocol: Protocol,
    mut keep: Option<&mut Keep<'_>>,
    mode: &mut Mode<'_>,
    keys: &KeySet,
    mut opening: Opening<'_>,
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
    let mut key_tail = KeyTail::default();
    let mut buf = std::mem::take(&mut ex.buf);
    let gone = std::pin::pin!(netio::client_gone_watch(client.as_raw_fd()));
    let stall = std::pin::pin!(monoio::time::sleep(gap));
    let mut waits = Waits::new(gone, stall, gap);
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
        let mut payload = payload;
        if payload > 0 {
            match mode {
                Mode::Events { watch, usage } => {
                    // A usage chunk the client did not ask for is left out (moved over in
                    // place); the end watch sees what the client sees.
                    if let Some(cut) = usage.feed(&buf[data_start..]) {
                        buf.drain(data_start + cut.start..data_start + cut.end);
                        payload -= cut.len();
                    }
                    watch.feed(&buf[data_start..data_start + payload]);
                }
                Mode::Body { tail } => {
                    crate::usage::keep_tail(tail, &buf[data_start..data_start + payload])
                }
            }
        }
        if payload > 0 {
            let p = &buf[data_start..data_start + payload];
            // Checked before a byte of it is sent.
            if key_tail.feed(keys, p) {
                break StreamEnd::UpstreamFailed(withheld());
            }
            relayed += payload;
            if payload >= 2 {
                tail = [p[payload - 2], p[payload - 1]];
            } else {
                tail = [tail[1], p[0]];
            }
            let (hdr, hl) = chunk_header(payload);
            w_start = data_start - hl;
            buf[w_start..data_start].copy_from_slice(&hdr[..hl]);
            buf.extend_from_slice(b"\r\n");
            w_end = buf.len();
        }
        // The body is over by its framing: whole only if the protocol's end event came.
        let mut verdict = Seen::End;
        if done {
            if let Mode::Events { watch, .. } = mode {
                verdict = watch.finish();
            }
            if verdict != Seen::Open {
                buf.extend_from_slice(LAST_CHUNK);
                w_end = buf.len();
            }
        }
        if let Some(k) = keep.as_deref_mut() {
            // The chunk holding the final event waits until the answer is stored.
            if payload > 0 && k.saw_end(&buf[data_start..data_start + payload]) {
                if let Err(e) = k.store_stream().await {
                    break StreamEnd::UpstreamFailed(e);
                }
            }
        }
        let deadline = netio::after(client_timeout);
        let (r, b) = opening.write(client, buf, w_start, w_end, deadline).await;
        buf = b;
        if r.is_err() {
            break StreamEnd::ClientGone;
        }
        if done {
            let reusable = clean && ex.head.keep_alive;
            break match verdict {
                Seen::End => StreamEnd::Complete { reusable },
                Seen::Error => StreamEnd::Failed { reusable },
                Seen::Open => StreamEnd::UpstreamFailed(no_end_event()),
            };
        }
        buf.truncate(RESERVE.min(buf.len()));
        buf.resize(RESERVE, 0);
        data_start = RESERVE;
        let r = match waits.next_read(&mut ex.conn, buf).await {
            Wait::Read(r, b) => {
                buf = b;
                r
            }
            Wait::ClientGone => {
                buf = Vec::new();
                break StreamEnd::ClientGone;
            }
            Wait::Cut => {
                buf = Vec::new();
                break StreamEnd::UpstreamFailed(shutting_down());
            }
        };
        match r {
            Ok(_) => ex.gaps.tick(),
            Err(IoFail::Closed) if framing == ResponseFraming::CloseDelimited => {
                let verdict = match mode {
                    Mode::Events { watch, .. } => watch.finish(),
                    Mode::Body { .. } => Seen::End,
                };
                if verdict == Seen::Open {
                    break StreamEnd::UpstreamFailed(no_end_event());
                }
                buf.clear();
                buf.extend_from_slice(LAST_CHUNK);
                let (r, b) = netio::write_vec(client, buf, netio::after(client_timeout)).await;
                buf = b;
                break match (r, verdict) {
                    (Err(_), _) => StreamEnd::ClientGone,
                    (Ok(()), Seen::Error) => StreamEnd::Failed { reusable: false },
                    (Ok(()), _) => StreamEnd::Complete { reusable: false },
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
    // The first read failed before anything was written: the head still goes out (before the
    // error event of a stream; before the cut of a body, which only closing the connection
    // tells).
    let unsent = !opening.head.is_empty();
    if let (StreamEnd::UpstreamFailed(e), Mode::Events { .. }) = (&result, &*mode) {
        let out = if unsent {
            std::mem::take(opening.head)
        } else {
            buf.clear();
            std::mem::take(&mut buf)
        };
        let at_boundary = tail == *b"\n\n";
        let (ok, out) = end_with_error(client, out, protocol, e, at_boundary, client_timeout).await;
        if unsent {
            *opening.head = out;
        } else {
            buf = out;
        }
        if !ok {
            ex.buf = buf;
            return (StreamEnd::ClientGone, relayed);
        }
    } else if unsent && !matches!(result, StreamEnd::ClientGone) {
        let deadline = netio::after(client_timeout);
        let (_, b) = opening.write(client, buf, 0, 0, deadline).await;
        buf = b;
    }
    ex.buf = buf;
    (result, relayed)
}

fn no_end_event() -> Error {
    Error::upstream(
        ErrorKind::UpstreamFailed,
        "the upstream stream ended without its end event",
    )
}

/// Writes what `out` holds (our head, when it is still unsent), then the protocol's error
/// event as a chunk and the last chunk. False if the client is gone; `out` comes back cleared.
async fn end_with_error(
    client: &mut TcpStream,
    mut out: Vec<u8>,
    protocol: Protocol,
    e: &Error,
    at_boundary: bool,
    client_timeout: std::time::Duration,
) -> (bool, Vec<u8>) {
    let mut ev = Vec::with_capacity(256);
    error::write_stream_event(&mut ev, protocol, e, at_boundary);
    crate::http1::write::write_chunk_header(&mut out, ev.len());
    out.extend_from_slice(&ev);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(LAST_CHUNK);
    let (r, b) = netio::write_vec(client, out, netio::after(client_timeout)).await;
    (r.is_ok(), b)
}
