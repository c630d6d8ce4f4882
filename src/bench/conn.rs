//! One bench connection and one exchange on it: the request written whole, the response head
//! parsed strictly (`http1::response`), the body de-framed (`Content-Length`, chunked, or
//! until close) and, for a stream, framed into SSE events (`translate::sse`) whose kinds are
//! told apart by their event name or `type`, without parsing their JSON: content events time
//! the first token and the gaps between tokens, the usage event gives the output tokens, the
//! terminal event says the stream is whole.
//!
//! A connection owns its read buffer, framer and decoder and reuses them from request to
//! request: a running stream allocates nothing per event. Timestamps are taken when a read
//! completes, so events that arrive in one read share one time (as the client saw them).

use super::args::Api;
use super::stats::{Done, FailKind, Stats};
use crate::http1::{self, ChunkedDecoder, ResponseFraming};
use crate::netio::IoFail;
use crate::translate::sse::Framer;
use crate::upstream::{tls, UpstreamStream};
use memchr::memmem;
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest whole (non-stream) body kept for its usage; the rest is read and dropped.
pub const MAX_BODY: usize = 4 << 20;
/// Bytes kept free in the read buffer for each read.
const READ_SPARE: usize = 16 * 1024;

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    /// The resolved address.
    pub addr: SocketAddr,
    /// The TLS config and server name for `https://`.
    pub tls: Option<(Arc<rustls::ClientConfig>, String)>,
}

/// One keep-alive connection with its reused buffers.
pub struct Conn {
    stream: UpstreamStream,
    buf: Vec<u8>,
    body: Vec<u8>,
    framer: Framer,
}

fn monoio_deadline(at: Instant) -> monoio::time::Instant {
    let now = Instant::now();
    monoio::time::Instant::now() + at.saturating_duration_since(now)
}

impl Conn {
    /// Opens a connection before `deadline`.
    pub async fn open(t: &Target, deadline: Instant) -> Result<Conn, FailKind> {
        let dl = monoio_deadline(deadline);
        let tcp = match monoio::time::timeout_at(dl, TcpStream::connect_addr(t.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => return Err(FailKind::Connect),
            Err(_) => return Err(FailKind::Timeout),
        };
        let _ = tcp.set_nodelay(true);
        let stream = match &t.tls {
            None => UpstreamStream::Plain(tcp),
            Some((cfg, host)) => match tls::TlsStream::connect(tcp, cfg.clone(), host, dl).await {
                Ok(s) => UpstreamStream::Tls(Box::new(s)),
                Err(tls::TlsFail::Io(IoFail::Timeout)) => return Err(FailKind::Timeout),
                Err(_) => return Err(FailKind::Connect),
            },
        };
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(READ_SPARE * 2),
            body: Vec::new(),
            framer: Framer::new(),
        })
    }

    async fn read(&mut self, deadline: monoio::time::Instant) -> Result<usize, IoFail> {
        let buf = std::mem::take(&mut self.buf);
        let (r, b) = self.stream.read_more(buf, READ_SPARE, deadline).await;
        self.buf = b;
        r
    }
}

/// What one exchange measured and whether the connection may carry the next request.
pub struct Exchanged {
    /// The outcome.
    pub result: Result<Done, FailKind>,
    /// The connection, when it may be reused.
    pub conn: Option<Conn>,
}

/// What the events of one stream said so far.
#[derive(Default)]
struct StreamState {
    /// Content events seen.
    pieces: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    usage: Option<u64>,
    terminal: bool,
    error: bool,
}

/// The kind of one SSE event, from its name or its data's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventKind {
    Content,
    Usage,
    Terminal,
    Error,
    Other,
}

/// The value of `"key":` as an unsigned number, when it is one.
fn number_after(data: &[u8], key: &[u8]) -> Option<u64> {
    let at = memmem::find(data, key)? + key.len();
    let rest = &data[at..];
    let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The string value of the first `"type":"…"` in `data`.
fn type_of(data: &[u8]) -> &[u8] {
    let Some(at) = memmem::find(data, b"\"type\":\"") else {
        return b"";
    };
    let rest = &data[at + 8..];
    &rest[..memchr::memchr(b'"', rest).unwrap_or(0)]
}

/// Whether a chat chunk's delta carries generated output (text, reasoning or a tool call):
/// a `"content"`, `"reasoning_content"` or `"reasoning"` string that is not empty, or
/// `"tool_calls"`.
fn chat_delta_has_output(data: &[u8]) -> bool {
    for key in [
        &b"\"content\":\""[..],
        b"\"reasoning_content\":\"",
        b"\"reasoning\":\"",
    ] {
        if let Some(at) = memmem::find(data, key) {
            if data.get(at + key.len()) != Some(&b'"') {
                return true;
            }
        }
    }
    memmem::find(data, b"\"tool_calls\"").is_some()
}

fn classify(api: Api, event: &[u8], data: &[u8]) -> EventKind {
    match api {
        Api::Chat => {
            if data == b"[DONE]" {
                EventKind::Terminal
            } else if data.starts_with(b"{\"error\"") {
                EventKind::Error
            } else if chat_delta_has_output(data) {
                EventKind::Content
            } else if memmem::find(data, b"\"completion_tokens\"").is_some() {
                EventKind::Usage
            } else {
                EventKind::Other
            }
        }
        Api::Messages | Api::Responses => {
            let name = if event.is_empty() {
                type_of(data)
            } else {
                event
            };
            match name {
                b"content_block_delta" => EventKind::Content,
                b"message_delta" => EventKind::Usage,
                b"message_stop" => EventKind::Terminal,
                b"response.completed" | b"response.incomplete" => EventKind::Terminal,
                b"error" | b"response.failed" => EventKind::Error,
                n if api == Api::Responses && n.ends_with(b".delta") => EventKind::Content,
                _ => EventKind::Other,
            }
        }
    }
}

fn usage_tokens(api: Api, data: &[u8]) -> Option<u64> {
    match api {
        Api::Chat => number_after(data, b"\"completion_tokens\":"),
        Api::Messages | Api::Responses => number_after(data, b"\"output_tokens\":"),
    }
}

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sends `req` on `conn` and reads the whole answer. `intended` is when the request should
/// have been sent (open loop) or was sent (closed loop): every latency counts from it.
/// Inter-token gaps go straight into `stats.itl` when `measured`.
pub async fn exchange(
    mut conn: Conn,
    req: &mut Vec<u8>,
    api: Api,
    intended: Instant,
    deadline: Instant,
    stats: &RefCell<Stats>,
    measured: bool,
) -> Exchanged {
    let dl = monoio_deadline(deadline);
    let out = std::mem::take(req);
    let (r, b) = conn.stream.write_vec(out, dl).await;
    *req = b;
    if let Err(f) = r {
        return fail(match f {
            IoFail::Timeout => FailKind::Timeout,
            _ => FailKind::Socket,
        });
    }
    // The head.
    conn.buf.clear();
    let head = loop {
        match http1::parse_response_head(&conn.buf, MAX_HEAD, false) {
            Ok(Some(h)) if h.is_informational() => {
                conn.buf.drain(..h.head_len);
                continue;
            }
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(_) => return fail(FailKind::Malformed),
        }
        if let Err(f) = conn.read(dl).await {
            return fail(match f {
                IoFail::Timeout => FailKind::Timeout,
                _ => FailKind::Socket,
            });
        }
    };
    let head_at = Instant::now();
    let status = head.status;
    let ok_status = (200..300).contains(&status);
    let is_stream = ok_status
        && head
            .header(&conn.buf, b"content-type")
            .is_some_and(|v| memmem::find(v, b"text/event-stream").is_some());
    let framing = head.framing;
    let keep_alive = head.keep_alive;
    conn.buf.drain(..head.head_len);

    let mut dec = ChunkedDecoder::new();
    let mut remaining = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let mut st = StreamState::default();
    conn.framer = Framer::new();
    conn.body.clear();
    let mut now = head_at;
    let mut body_done = matches!(framing, ResponseFraming::None | ResponseFraming::Length(0));
    let mut malformed = false;
    // Bytes already read with the head are body bytes that arrived at `head_at`.
    let mut pending = !conn.buf.is_empty();
    while !body_done {
        if !pending {
            conn.buf.clear();
            match conn.read(dl).await {
                Ok(_) => now = Instant::now(),
                Err(IoFail::Closed) if framing == ResponseFraming::CloseDelimited => {
                    body_done = true;
                    break;
                }
                Err(IoFail::Timeout) => return fail(FailKind::Timeout),
                Err(_) => break,
            }
        }
        pending = false;
        let payload = match framing {
            ResponseFraming::Chunked => match dec.decode_in_place(&mut conn.buf) {
                Ok(d) => {
                    body_done = d.done;
                    d.payload
                }
                Err(_) => {
                    malformed = true;
                    break;
                }
            },
            ResponseFraming::Length(_) => {
                let n = (conn.buf.len() as u64).min(remaining);
                remaining -= n;
                body_done = remaining == 0;
                n as usize
            }
            _ => conn.buf.len(),
        };
        let data = &conn.buf[..payload];
        if is_stream {
            let r = conn.framer.feed(data, &mut |event, data| {
                on_event(api, event, data, now, &mut st, stats, measured);
                true
            });
            if r.is_err() {
                malformed = true;
                break;
            }
        } else if conn.body.len() < MAX_BODY {
            let room = MAX_BODY - conn.body.len();
            conn.body.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let end = Instant::now();
    if is_stream && body_done {
        conn.framer
            .finish(&mut |event, data| on_event(api, event, data, now, &mut st, stats, measured));
    }
    let usage = (!is_stream)
        .then(|| usage_tokens(api, &conn.body))
        .flatten();
    let reuse = body_done && keep_alive && framing != ResponseFraming::CloseDelimited;
    let conn = reuse.then_some(conn);
    let result = if !ok_status {
        Err(FailKind::Status(status))
    } else if malformed {
        Err(FailKind::Malformed)
    } else if st.error {
        Err(FailKind::StreamError)
    } else if !body_done || (is_stream && !st.terminal) {
        Err(FailKind::Cut)
    } else if is_stream {
        let first = st.first.unwrap_or(end);
        Ok(Done {
            ttft_us: us(first.saturating_duration_since(intended)),
            e2e_us: us(end.saturating_duration_since(intended)),
            output_tokens: st.usage.unwrap_or(st.pieces),
            from_usage: st.usage.is_some(),
        })
    } else {
        Ok(Done {
            ttft_us: us(head_at.saturating_duration_since(intended)),
            e2e_us: us(end.saturating_duration_since(intended)),
            output_tokens: usage.unwrap_or(0),
            from_usage: usage.is_some(),
        })
    };
    Exchanged { result, conn }
}

fn fail(kind: FailKind) -> Exchanged {
    Exchanged {
        result: Err(kind),
        conn: None,
    }
}

fn on_event(
    api: Api,
    event: &[u8],
    data: &[u8],
    now: Instant,
    st: &mut StreamState,
    stats: &RefCell<Stats>,
    measured: bool,
) -> bool {
    match classify(api, event, data) {
        EventKind::Content => {
            st.pieces += 1;
            if st.first.is_none() {
                st.first = Some(now);
            }
            if let Some(last) = st.last {
                if measured {
                    stats
                        .borrow_mut()
                        .itl
                        .record(us(now.saturating_duration_since(last)));
                }
            }
            st.last = Some(now);
        }
        EventKind::Usage => {}
        EventKind::Terminal => st.terminal = true,
        EventKind::Error => st.error = true,
        EventKind::Other => {}
    }
    // Usage rides on several events (chat's last chunk, message_delta, response.completed).
    if let Some(n) = usage_tokens(api, data) {
        st.usage = Some(n);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart() {
        let chat = [
            (
                &br#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#[..],
                EventKind::Other,
            ),
            (
                br#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
                EventKind::Content,
            ),
            (
                br#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#,
                EventKind::Content,
            ),
            (
                br#"{"choices":[],"usage":{"completion_tokens":7}}"#,
                EventKind::Usage,
            ),
            (br#"{"error":{"message":"x"}}"#, EventKind::Error),
            (b"[DONE]", EventKind::Terminal),
        ];
        for (data, want) in chat {
            assert_eq!(
                classify(Api::Chat, b"", data),
                want,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(
            classify(Api::Messages, b"content_block_delta", b"{}"),
            EventKind::Content
        );
        assert_eq!(
            classify(Api::Messages, b"", br#"{"type":"message_stop"}"#),
            EventKind::Terminal
        );
        assert_eq!(classify(Api::Messages, b"error", b"{}"), EventKind::Error);
        assert_eq!(
            classify(Api::Responses, b"response.output_text.delta", b"{}"),
            EventKind::Content
        );
        assert_eq!(
            classify(Api::Responses, b"response.failed", b"{}"),
            EventKind::Error
        );
        assert_eq!(
            usage_tokens(Api::Messages, br#"{"usage":{"output_tokens": 12}}"#),
            Some(12)
        );
    }
}
