//! The capture upstream: a plain-thread HTTP/1.1 server in the test process standing in for a
//! provider. It counts the connections it accepts, records every request byte for byte, and
//! reports each request's arrival and each connection's end over channels. It answers as the
//! test says: every request with a [`Reply`] ([`Capture::start`], [`Capture::fixed`],
//! [`Capture::ok`]: JSON, SSE, a cut or stalled stream, raw bytes, or silence), or every
//! connection with a script ([`Capture::scripted`], and [`Capture::accepting`] for a test that
//! wraps the socket itself, as the TLS tests do; see `scripted.rs`).

use super::{parse_json, ConnTap, UpConn};
use simd_json::prelude::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Read and write timeout of every accepted upstream socket: how long a silent gateway keeps
/// a connection thread alive, and how long [`UpConn::wait_closed`] waits.
pub const UPSTREAM_IDLE: Duration = Duration::from_secs(30);

/// One request the capture upstream received.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Every byte of the request as received (head and body, framing included).
    pub raw: Vec<u8>,
    /// The head, as text.
    pub head: String,
    /// The body (de-chunked if it was chunked).
    pub body: Vec<u8>,
    /// Index of the accepted connection it came on (0-based).
    pub conn: usize,
}

impl Captured {
    /// The request line (`POST /v1/chat/completions HTTP/1.1`).
    pub fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }

    /// The request-target.
    pub fn path(&self) -> &str {
        self.request_line().split(' ').nth(1).unwrap_or("")
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> simd_json::OwnedValue {
        parse_json(&self.body)
    }

    /// The `model` of the JSON body.
    pub fn model(&self) -> Option<String> {
        self.json()
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_string)
    }

    /// Whether the client asked for a stream (`"stream": true` in the JSON body).
    pub fn wants_stream(&self) -> bool {
        self.json()
            .get("stream")
            .and_then(|s| s.as_bool())
            .unwrap_or(false)
    }
}

/// How the capture upstream answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A whole response: status, content type, body (sent with `Content-Length`).
    Json(u16, String),
    /// `200` `text/event-stream`, chunked, one chunk per event, then the last chunk.
    Sse(Vec<String>),
    /// `200` `text/event-stream`, chunked: these events, then the connection is closed
    /// without the last chunk.
    SseCut(Vec<String>),
    /// `200` `text/event-stream`, chunked: these events, then silence (no last chunk, no
    /// close) until the peer closes.
    SseStall(Vec<String>),
    /// These exact bytes, then close.
    Raw(Vec<u8>),
    /// Nothing at all: the connection stays open, silent, until the peer closes it.
    Hang,
}

/// An OpenAI chat completion JSON for `model`.
pub fn chat_completion_json(model: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-capture","object":"chat.completion","created":1700000000,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hi from capture"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}}}"#
    )
}

/// OpenAI chat completion chunk events for `model` (without `[DONE]`).
pub fn chat_chunk_events(model: &str) -> Vec<String> {
    ["Hi", " from", " capture"]
        .iter()
        .map(|w| {
            format!(
                "data: {{\"id\":\"chatcmpl-capture\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"finish_reason\":null}}]}}\n\n"
            )
        })
        .collect()
}

/// An Anthropic message JSON for `model`.
pub fn anthropic_message_json(model: &str) -> String {
    format!(
        r#"{{"id":"msg_capture","type":"message","role":"assistant","model":"{model}","content":[{{"type":"text","text":"Hi from capture"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":3,"output_tokens":3}}}}"#
    )
}

/// Anthropic message stream events for `model`: `message_start` to `message_stop`.
pub fn anthropic_stream_events(model: &str) -> Vec<String> {
    vec![
        format!("event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_capture\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[],\"stop_reason\":null,\"usage\":{{\"input_tokens\":3,\"output_tokens\":0}}}}}}\n\n"),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
    ]
}

/// The reply of a working provider to `req`: a chat completion (JSON, or SSE ending in
/// `[DONE]` when the request streams) or an Anthropic message (JSON or SSE), echoing the
/// request's model.
pub fn ok_reply(req: &Captured) -> Reply {
    let model = req.model().unwrap_or_else(|| "unknown".into());
    let anthropic = req.path().ends_with("/messages");
    match (anthropic, req.wants_stream()) {
        (false, false) => Reply::Json(200, chat_completion_json(&model)),
        (false, true) => {
            let mut evs = chat_chunk_events(&model);
            evs.push("data: [DONE]\n\n".into());
            Reply::Sse(evs)
        }
        (true, false) => Reply::Json(200, anthropic_message_json(&model)),
        (true, true) => Reply::Sse(anthropic_stream_events(&model)),
    }
}

/// What the accept loop and the connection threads share.
pub(super) struct Shared {
    /// Every request read, in arrival order.
    pub(super) requests: Mutex<Vec<Captured>>,
    /// One message per request read (its index in `requests`).
    pub(super) arrived: Mutex<mpsc::Sender<usize>>,
}

/// An in-process upstream on 127.0.0.1:0: every accepted connection runs in its own thread.
/// Stops accepting on drop.
pub struct Capture {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// One message per request received (its index in `requests`).
    arrivals: Mutex<mpsc::Receiver<usize>>,
    /// One message per connection ended (its accept index), when the peer closed it, the
    /// reply or script did, or [`UPSTREAM_IDLE`] passed in silence.
    closed: Mutex<mpsc::Receiver<usize>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl Capture {
    /// Hands each accepted socket (read and write timeouts [`UPSTREAM_IDLE`]) to `serve` with
    /// its [`ConnTap`], in its own thread; `serve` wraps the socket (in TLS, say) and makes an
    /// [`UpConn`] of it with [`ConnTap::wrap`].
    pub fn accepting<F>(serve: F) -> Capture
    where
        F: Fn(TcpStream, ConnTap) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind capture");
        let addr = listener.local_addr().expect("capture addr");
        let (arrived, arrivals) = mpsc::channel();
        let (closed_tx, closed) = mpsc::channel();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Mutex::new(arrived),
        });
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let (sh, a, s) = (shared.clone(), accepted.clone(), stop.clone());
        let accept_thread = thread::spawn(move || {
            for tcp in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(UPSTREAM_IDLE));
                let _ = tcp.set_write_timeout(Some(UPSTREAM_IDLE));
                let _ = tcp.set_nodelay(true);
                let index = a.fetch_add(1, Ordering::SeqCst);
                let tap = ConnTap {
                    index,
                    shared: sh.clone(),
                };
                let (serve, closed) = (serve.clone(), closed_tx.clone());
                thread::spawn(move || {
                    // The socket is dropped (closed) when `serve` returns.
                    serve(tcp, tap);
                    let _ = closed.send(index);
                });
            }
        });
        Capture {
            addr,
            shared,
            arrivals: Mutex::new(arrivals),
            closed: Mutex::new(closed),
            accepted,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// Runs `script` on every accepted plain-TCP connection.
    pub fn scripted<F>(script: F) -> Capture
    where
        F: Fn(&mut UpConn<TcpStream>) + Send + Sync + 'static,
    {
        Capture::accepting(move |tcp, tap| script(&mut tap.wrap(tcp)))
    }

    /// Answers every request with `responder(request)`, keeping connections alive between
    /// requests unless the reply closes them.
    pub fn start(responder: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> Capture {
        Capture::scripted(move |c| c.serve(&responder))
    }

    /// Answers every request with the same reply.
    pub fn fixed(reply: Reply) -> Capture {
        Capture::start(move |_| reply.clone())
    }

    /// Answers as a working provider would ([`ok_reply`]).
    pub fn ok() -> Capture {
        Capture::start(ok_reply)
    }

    /// OpenAI base URL (`http://ADDR/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Anthropic base URL (`http://ADDR`).
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for the next request to arrive; its index, or `None`.
    pub fn wait_request(&self, timeout: Duration) -> Option<usize> {
        self.arrivals
            .lock()
            .expect("capture lock")
            .recv_timeout(timeout)
            .ok()
    }

    /// Waits up to `timeout` for a connection to end; its accept index, or `None`.
    pub fn wait_closed(&self, timeout: Duration) -> Option<usize> {
        self.closed
            .lock()
            .expect("capture lock")
            .recv_timeout(timeout)
            .ok()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}
