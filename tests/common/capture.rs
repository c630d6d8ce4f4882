//! The capture upstream: a plain-thread HTTP/1.1 server standing in for a provider. It records
//! every request byte for byte and answers as the test says: JSON, SSE, a cut or stalled
//! stream, raw bytes, or silence.

use super::{decode_chunked, find, parse_json};
use simd_json::prelude::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

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
    /// The request-target.
    pub fn path(&self) -> &str {
        self.head
            .split("\r\n")
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
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

type Responder = dyn Fn(&Captured) -> Reply + Send + Sync;

/// A plain-thread HTTP/1.1 server that records every request and answers with `responder`.
/// Keeps connections alive between requests unless the reply closes them.
pub struct Capture {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
    /// One message per request received (its index in `requests`).
    arrivals: Mutex<mpsc::Receiver<usize>>,
    /// One message per connection ended (its accept index), when the peer closed it or the
    /// reply did.
    closed: Mutex<mpsc::Receiver<usize>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl Capture {
    /// Starts a capture upstream answering every request with `responder(request)`.
    pub fn start(responder: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind capture");
        let addr = listener.local_addr().expect("capture addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let responder: Arc<Responder> = Arc::new(responder);
        let (arrived_tx, arrivals) = mpsc::channel();
        let (closed_tx, closed) = mpsc::channel();
        let (r, a, s) = (requests.clone(), accepted.clone(), stop.clone());
        let accept_thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let idx = a.fetch_add(1, Ordering::SeqCst);
                let (r, resp) = (r.clone(), responder.clone());
                let (arrived, closed) = (arrived_tx.clone(), closed_tx.clone());
                thread::spawn(move || {
                    serve_capture_conn(conn, idx, &r, &*resp, &arrived);
                    let _ = closed.send(idx);
                });
            }
        });
        Capture {
            addr,
            requests,
            arrivals: Mutex::new(arrivals),
            closed: Mutex::new(closed),
            accepted,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// Answers every request with the same reply.
    pub fn fixed(reply: Reply) -> Capture {
        Capture::start(move |_| reply.clone())
    }

    /// Answers chat completions (JSON or SSE as the request's `stream` asks) and Anthropic
    /// messages, echoing the request's model.
    pub fn ok() -> Capture {
        Capture::start(|req| {
            let v = req.json();
            let model = v
                .get("model")
                .and_then(|m| m.as_str())
                .unwrap_or("unknown")
                .to_string();
            let stream = v.get("stream").and_then(|s| s.as_bool()).unwrap_or(false);
            let anthropic = req.path().ends_with("/messages");
            match (anthropic, stream) {
                (false, false) => Reply::Json(200, chat_completion_json(&model)),
                (false, true) => {
                    let mut evs = chat_chunk_events(&model);
                    evs.push("data: [DONE]\n\n".into());
                    Reply::Sse(evs)
                }
                (true, false) => Reply::Json(200, anthropic_message_json(&model)),
                (true, true) => Reply::Sse(vec![
                    format!("event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_capture\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[],\"stop_reason\":null,\"usage\":{{\"input_tokens\":3,\"output_tokens\":0}}}}}}\n\n"),
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
                ]),
            }
        })
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
        self.requests.lock().expect("capture lock").clone()
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

/// Reads one request from `conn` (reading into `buf`); `None` when the peer closed or the
/// bytes cannot be framed.
fn read_captured(conn: &mut TcpStream, buf: &mut Vec<u8>, idx: usize) -> Option<Captured> {
    let mut tmp = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let (body, used) = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            match decode_chunked(&buf[head_end..]) {
                Ok(Some((b, u))) => break (b, head_end + u),
                Ok(None) => {}
                Err(()) => return None,
            }
            match conn.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    } else {
        let n: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + n {
            match conn.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(k) => buf.extend_from_slice(&tmp[..k]),
            }
        }
        (buf[head_end..head_end + n].to_vec(), head_end + n)
    };
    let raw: Vec<u8> = buf.drain(..used).collect();
    Some(Captured {
        raw,
        head,
        body,
        conn: idx,
    })
}

fn serve_capture_conn(
    mut conn: TcpStream,
    idx: usize,
    log: &Mutex<Vec<Captured>>,
    responder: &Responder,
    arrived: &mpsc::Sender<usize>,
) {
    // A bound on how long a silent gateway keeps this thread alive.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    while let Some(req) = read_captured(&mut conn, &mut buf, idx) {
        let reply = responder(&req);
        let n = {
            let mut log = log.lock().expect("capture lock");
            log.push(req);
            log.len() - 1
        };
        let _ = arrived.send(n);
        let keep = match reply {
            Reply::Json(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    reason(status),
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(body.as_bytes());
                conn.write_all(&out).is_ok()
            }
            Reply::Sse(events) => write_sse(&mut conn, &events, true),
            Reply::SseCut(events) => {
                write_sse(&mut conn, &events, false);
                false
            }
            Reply::SseStall(events) => {
                // Whether or not the events went out, wait for the gateway to hang up.
                write_sse(&mut conn, &events, false);
                wait_for_peer_close(&mut conn);
                false
            }
            Reply::Raw(bytes) => {
                let _ = conn.write_all(&bytes);
                false
            }
            Reply::Hang => {
                wait_for_peer_close(&mut conn);
                false
            }
        };
        if !keep {
            break;
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

/// Stays silent until the gateway closes the connection (or the read bound hits).
fn wait_for_peer_close(conn: &mut TcpStream) {
    let mut tmp = [0u8; 4096];
    while matches!(conn.read(&mut tmp), Ok(n) if n > 0) {}
}

fn write_sse(conn: &mut TcpStream, events: &[String], finish: bool) -> bool {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return false;
    }
    for ev in events {
        let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
        if conn.write_all(chunk.as_bytes()).is_err() {
            return false;
        }
    }
    if finish {
        conn.write_all(b"0\r\n\r\n").is_ok()
    } else {
        false
    }
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
