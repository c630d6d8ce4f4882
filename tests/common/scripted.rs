//! One accepted upstream connection, scripted by the test: read the gateway's requests, write
//! any bytes back, watch whether the gateway closes. Generic over the stream, so the same
//! script runs over plain TCP ([`super::Capture::scripted`]) or a TLS session the test wraps
//! around the socket ([`super::Capture::accepting`]). Every request read is recorded on the
//! [`super::Capture`] it came to.
//!
//! Also here: the wire forms of replies (the [`Reply`] writer, chunks, SSE heads) and the
//! fixed completion a well-behaved OpenAI upstream answers ([`UpConn::serve_openai`]).

use super::capture::Shared;
use super::{decode_chunked, find, Captured, Reply, Response};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

/// What [`super::Capture::accepting`] hands a connection's script along with the socket: its
/// accept index and where its requests are recorded.
pub struct ConnTap {
    pub(super) index: usize,
    pub(super) shared: Arc<Shared>,
}

impl ConnTap {
    /// The connection over `stream` (the socket itself, or a TLS session over it).
    pub fn wrap<S: Read + Write>(self, stream: S) -> UpConn<S> {
        UpConn {
            stream,
            buf: Vec::new(),
            index: self.index,
            shared: self.shared,
        }
    }
}

/// What a script saw when it waited for the gateway to close its connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Peer {
    /// A read returned end-of-stream or a reset: the gateway closed the connection.
    Closed,
    /// The connection stayed open, silent, for the whole wait.
    StillOpen,
    /// The gateway sent more bytes.
    SentData,
}

/// One accepted upstream connection, plain or TLS.
pub struct UpConn<S: Read + Write> {
    stream: S,
    buf: Vec<u8>,
    /// Position of this connection in accept order, from 0.
    pub index: usize,
    shared: Arc<Shared>,
}

impl<S: Read + Write> UpConn<S> {
    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one request (Content-Length or chunked body); `None` if the gateway closed the
    /// connection, went silent past the socket's timeout, or sent bytes that cannot be framed.
    /// Each request read is recorded, and its arrival reported, before this returns.
    pub fn read_request(&mut self) -> Option<Captured> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut req = Captured {
            raw: Vec::new(),
            head,
            body: Vec::new(),
            conn: self.index,
        };
        let used = if req
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                match decode_chunked(&self.buf[head_end..]) {
                    Ok(Some((body, used))) => {
                        req.body = body;
                        break head_end + used;
                    }
                    Ok(None) => {}
                    Err(()) => return None,
                }
                if !self.fill() {
                    return None;
                }
            }
        } else {
            let n: usize = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while self.buf.len() < head_end + n {
                if !self.fill() {
                    return None;
                }
            }
            req.body = self.buf[head_end..head_end + n].to_vec();
            head_end + n
        };
        req.raw = self.buf.drain(..used).collect();
        let n = {
            let mut log = self
                .shared
                .requests
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            log.push(req.clone());
            log.len() - 1
        };
        let _ = self
            .shared
            .arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(n);
        Some(req)
    }

    /// Writes bytes (one `write_all`, then a flush). False if the gateway is gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok() && self.stream.flush().is_ok()
    }

    /// Waits (bounded by the socket's read timeout, [`super::UPSTREAM_IDLE`]) for the gateway
    /// to close this connection.
    pub fn wait_closed(&mut self) -> Peer {
        let mut tmp = [0u8; 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => Peer::Closed,
            Ok(_) => Peer::SentData,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Peer::StillOpen
            }
            // Reset, or (TLS) an unclean end of stream.
            Err(_) => Peer::Closed,
        }
    }

    /// Stays silent, discarding what arrives, until the gateway closes the connection (or the
    /// read timeout hits).
    fn drain_until_closed(&mut self) {
        let mut tmp = [0u8; 4096];
        while matches!(self.stream.read(&mut tmp), Ok(n) if n > 0) {}
    }

    /// The stream underneath (for TLS session details).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Writes an SSE response head, then `events` one chunk (and one write) each, then the
    /// last chunk when `finish`. False if the gateway is gone.
    fn write_sse(&mut self, events: &[String], finish: bool) -> bool {
        if !self.write(&sse_head()) {
            return false;
        }
        for ev in events {
            if !self.write(&chunk(ev.as_bytes())) {
                return false;
            }
        }
        !finish || self.write(b"0\r\n\r\n")
    }

    /// Sends `reply`; false when the connection is over afterwards (the reply closes it, or
    /// the gateway went away).
    pub fn reply(&mut self, reply: &Reply) -> bool {
        match reply {
            Reply::Json(status, body) => {
                let out = json_response_with(*status, body);
                self.write(&out)
            }
            Reply::Sse(events) => self.write_sse(events, true),
            Reply::SseCut(events) => {
                self.write_sse(events, false);
                false
            }
            Reply::SseStall(events) => {
                // Whether or not the events went out, wait for the gateway to hang up.
                self.write_sse(events, false);
                self.drain_until_closed();
                false
            }
            Reply::Raw(bytes) => {
                self.write(bytes);
                false
            }
            Reply::Hang => {
                self.drain_until_closed();
                false
            }
        }
    }

    /// Answers every request with `responder(request)` until the gateway closes the
    /// connection or a reply ends it.
    pub fn serve(&mut self, responder: &dyn Fn(&Captured) -> Reply) {
        while let Some(req) = self.read_request() {
            if !self.reply(&responder(&req)) {
                return;
            }
        }
    }

    /// Answers requests as an OpenAI provider would until the gateway closes: [`CHAT_JSON`]
    /// with Content-Length, or (for `"stream":true`) [`SSE_EVENTS`], chunked.
    pub fn serve_openai(&mut self) {
        self.serve(&openai_reply);
    }
}

impl UpConn<TcpStream> {
    /// Half-closes the write side: the end of a close-delimited body.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// The chat completion every well-behaved scripted upstream answers.
pub const CHAT_JSON: &str = r#"{"id":"chatcmpl-up1","object":"chat.completion","created":1700000000,"model":"up-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi from upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#;

/// The SSE events every well-behaved scripted upstream streams, each its own HTTP chunk.
pub const SSE_EVENTS: [&str; 3] = [
    "data: {\"id\":\"chatcmpl-up1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-up1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

/// Asserts `r` is a 200 whose body is [`CHAT_JSON`] byte for byte; `what` says which.
pub fn assert_chat_json(r: &Response, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.dump());
    assert_eq!(r.text(), CHAT_JSON, "{what}: body not relayed intact");
}

/// [`CHAT_JSON`], or [`SSE_EVENTS`] when the request streams.
pub fn openai_reply(req: &Captured) -> Reply {
    if req.wants_stream() {
        Reply::Sse(SSE_EVENTS.iter().map(|e| e.to_string()).collect())
    } else {
        Reply::Json(200, CHAT_JSON.into())
    }
}

/// A 200 with a JSON body and Content-Length.
pub fn json_response(body: &str) -> Vec<u8> {
    json_response_with(200, body)
}

/// A response with `status`, a JSON body and Content-Length.
pub fn json_response_with(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// The head of a chunked SSE response.
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()
}

/// `data` as one HTTP chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut o = format!("{:x}\r\n", data.len()).into_bytes();
    o.extend_from_slice(data);
    o.extend_from_slice(b"\r\n");
    o
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
