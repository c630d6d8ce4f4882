//! Edge hardening of the relay (`docs/api.md`, "Failures mid-stream and disconnects"):
//! a stream the upstream ends without its protocol's end event, or that a shutdown's drain
//! deadline cuts, reaches the client with the protocol's error event, never as a clean end;
//! the provider key never reaches a client, not in a 2xx body nor in a mid-stream error event,
//! split across upstream writes or not; a large non-streamed answer is relayed without being
//! held (the gateway's peak RSS stays under 1.2x the body).
//!
//! Upstreams are scripted raw servers; the gateway is the real binary.

mod common;

use common::*;
use simd_json::prelude::*;

const RESPONSES: &str = "/v1/responses";

fn chunked_head(content_type: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n")
        .into_bytes()
}

/// A close-delimited event stream: no length, no chunking; the body ends when the upstream
/// closes.
fn close_delimited_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_vec()
}

fn responses_body(stream: bool) -> String {
    format!(r#"{{"model":"gpt-test","input":"Tell me a joke.","stream":{stream},"store":false}}"#)
}

fn messages_request(body: &str) -> Vec<u8> {
    format!(
        "POST {MESSAGES} HTTP/1.1\r\nHost: gw\r\nx-api-key: {TOKEN}\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The three protocols: the request, and events of an answer cut before its end event.
#[derive(Clone, Copy, Debug)]
enum Api {
    Chat,
    Messages,
    Responses,
}

impl Api {
    fn request(self) -> Vec<u8> {
        match self {
            Api::Chat => post(CHAT, TOKEN, &chat_body("gpt-test", true), ""),
            Api::Messages => messages_request(&messages_body("claude-test", true)),
            Api::Responses => post(RESPONSES, TOKEN, &responses_body(true), ""),
        }
    }

    /// Events of an answer in progress (no end event).
    fn open_events(self) -> Vec<u8> {
        match self {
            Api::Chat => SSE_EVENTS[..2].concat().into_bytes(),
            Api::Messages => b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-test\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n".to_vec(),
            Api::Responses => b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n".to_vec(),
        }
    }

    /// The end event the stream never got.
    fn end_marker(self) -> &'static str {
        match self {
            Api::Chat => "[DONE]",
            Api::Messages => "message_stop",
            Api::Responses => "response.completed",
        }
    }

    /// Whether `ev` is this protocol's error event.
    fn is_error_event(self, ev: &Event) -> bool {
        let data_has_error = ev.data.as_deref().is_some_and(|d| {
            let mut bytes = d.as_bytes().to_vec();
            simd_json::to_owned_value(&mut bytes)
                .is_ok_and(|v| v.get("error").is_some_and(|e| e.get("message").is_some()))
        });
        match self {
            Api::Chat | Api::Responses => ev.event.is_none() && data_has_error,
            Api::Messages => ev.event.as_deref() == Some("error") && data_has_error,
        }
    }
}

/// Asserts `r` is a whole chunked stream whose last event is the protocol's error event and
/// which never shows the end event.
fn assert_ends_with_error(api: Api, r: &Response, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.dump());
    let events = sse_events(&r.body);
    let last = events.last().unwrap_or_else(|| panic!("{what}: no events"));
    assert!(
        api.is_error_event(last),
        "{what}: the stream does not end with the error event:\n{}",
        r.text()
    );
    assert!(
        !r.text().contains(api.end_marker()),
        "{what}: a fake end event:\n{}",
        r.text()
    );
}

fn gateway_over_script<F>(script: F) -> (Capture, Server)
where
    F: Fn(&mut UpConn<std::net::TcpStream>) + Send + Sync + 'static,
{
    let up = Capture::scripted(script);
    let gw = gateway_over(&up);
    (up, gw)
}

// ---------------------------------------------------------------------------------------------
// Streams that end without their end event

#[test]
fn a_chunked_stream_that_ends_cleanly_without_its_end_event_gets_the_error_event() {
    for api in [Api::Chat, Api::Messages, Api::Responses] {
        let (_up, gw) = gateway_over_script(move |c| {
            if c.read_request().is_some() {
                let mut out = chunked_head("text/event-stream");
                out.extend_from_slice(&chunk(&api.open_events()));
                out.extend_from_slice(b"0\r\n\r\n");
                c.write(&out);
            }
        });
        let r = roundtrip(gw.addr, &api.request());
        assert_ends_with_error(api, &r, &format!("{api:?}, chunked"));
    }
}

#[test]
fn a_close_delimited_stream_that_just_closes_gets_the_error_event() {
    for api in [Api::Chat, Api::Messages, Api::Responses] {
        let (_up, gw) = gateway_over_script(move |c| {
            if c.read_request().is_some() {
                let mut out = close_delimited_head();
                out.extend_from_slice(&api.open_events());
                c.write(&out);
            }
        });
        let r = roundtrip(gw.addr, &api.request());
        assert_ends_with_error(api, &r, &format!("{api:?}, close-delimited"));
    }
}

#[test]
fn a_close_delimited_stream_with_its_end_event_is_whole() {
    // The control: the same upstream, with the end event, ends cleanly.
    let (_up, gw) = gateway_over_script(|c| {
        if c.read_request().is_some() {
            let mut out = close_delimited_head();
            out.extend_from_slice(SSE_EVENTS.concat().as_bytes());
            c.write(&out);
        }
    });
    let r = roundtrip(gw.addr, &Api::Chat.request());
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.text().ends_with(&SSE_EVENTS.concat()), "{}", r.text());
    assert!(!sse_events(&r.body)
        .iter()
        .any(|e| Api::Chat.is_error_event(e)));
}

// ---------------------------------------------------------------------------------------------
// The provider key in answers

/// Every run of 8 bytes of `key` that holds a digit (its secret part: the test keys' words,
/// such as `provider`, also name things in the trace): none may reach a client.
fn assert_no_key_fragment(what: &str, bytes: &[u8], key: &str) {
    let secret = key
        .as_bytes()
        .windows(8)
        .filter(|w| w.iter().any(u8::is_ascii_digit));
    for w in secret {
        assert!(
            !contains(bytes, w),
            "{what} holds key material {:?}:\n{}",
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(bytes)
        );
    }
}

fn wire(r: &Response) -> Vec<u8> {
    let mut v = r.raw_head.clone();
    v.extend_from_slice(&r.raw_body);
    v
}

/// The protocol's error event carrying the key, as a provider that echoes it would send.
fn key_error_event(api: Api, key: &str) -> String {
    match api {
        Api::Chat | Api::Responses => format!(
            "data: {{\"error\":{{\"message\":\"Incorrect API key provided: {key}\",\"type\":\"invalid_request_error\"}}}}\n\n"
        ),
        Api::Messages => format!(
            "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key {key}\"}}}}\n\n"
        ),
    }
}

#[test]
fn the_key_in_a_mid_stream_error_event_never_reaches_the_client() {
    for (api, key) in [(Api::Chat, OPENAI_KEY), (Api::Messages, ANTHROPIC_KEY)] {
        for split in [false, true] {
            let (_up, gw) = gateway_over_script(move |c| {
                if c.read_request().is_none() {
                    return;
                }
                let mut out = chunked_head("text/event-stream");
                out.extend_from_slice(&chunk(&api.open_events()));
                c.write(&out);
                let ev = key_error_event(api, key);
                if split {
                    // The key split between two upstream writes (and two HTTP chunks).
                    let at = ev.find(key).expect("key in event") + key.len() / 2;
                    c.write(&chunk(&ev.as_bytes()[..at]));
                    c.write(&chunk(&ev.as_bytes()[at..]));
                } else {
                    c.write(&chunk(ev.as_bytes()));
                }
                c.write(b"0\r\n\r\n");
            });
            let r = roundtrip(gw.addr, &api.request());
            let what = format!("{api:?}, split {split}");
            assert_no_key_fragment(&what, &wire(&r), key);
            assert_ends_with_error(api, &r, &what);
        }
    }
}

#[test]
fn the_key_in_a_2xx_body_becomes_a_502() {
    for (api, key) in [(Api::Chat, OPENAI_KEY), (Api::Messages, ANTHROPIC_KEY)] {
        let (_up, gw) = gateway_over_script(move |c| {
            if c.read_request().is_some() {
                let body = format!(
                    r#"{{"id":"x","choices":[{{"message":{{"role":"assistant","content":"my key is {key}"}}}}]}}"#
                );
                c.write(&json_response(&body));
            }
        });
        let req = match api {
            Api::Messages => messages_request(&messages_body("claude-test", false)),
            _ => post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
        };
        let r = roundtrip(gw.addr, &req);
        assert_no_key_fragment(&format!("{api:?} body"), &wire(&r), key);
        let shape = match api {
            Api::Messages => Shape::Anthropic,
            _ => Shape::OpenAi,
        };
        assert_error(&r, 502, shape, "api_error");
    }
}

// ---------------------------------------------------------------------------------------------
// Drain

#[test]
fn a_stream_cut_by_the_drain_deadline_gets_the_error_event() {
    let up = Capture::scripted(|c| {
        if c.read_request().is_some() {
            let mut out = chunked_head("text/event-stream");
            out.extend_from_slice(&chunk(SSE_EVENTS[0].as_bytes()));
            c.write(&out);
            // A long answer: nothing more until the gateway hangs up.
            c.wait_closed();
        }
    });
    let config = standard_config(&up.openai_base(), &up.anthropic_base())
        .replace("drain_timeout_ms = 2000", "drain_timeout_ms = 200");
    let mut gw = Server::serve(&config, &key_env());
    let mut c = gw.connect();
    c.send(&Api::Chat.request()).expect("send");
    c.read_until(b"Hi").expect("the first event");
    gw.signal(libc::SIGTERM);
    let r = c.response();
    assert_ends_with_error(Api::Chat, &r, "drain-cut stream");
    let status = gw.wait().expect("the gateway exits after its drain");
    assert!(status.success(), "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Memory

/// Peak resident set of a process, in bytes (`VmHWM` of `/proc/PID/status`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

#[test]
fn a_64_mb_non_streamed_answer_is_not_held() {
    const SIZE: usize = 64_000_000;
    const PIECE: usize = 1 << 20;
    let up = Capture::scripted(|c| {
        if c.read_request().is_none() {
            return;
        }
        let open = br#"{"id":"big","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":""#;
        let close = br#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        let filler = SIZE - open.len() - close.len();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {SIZE}\r\n\r\n"
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(open);
        c.write(&out);
        let piece = vec![b'a'; PIECE];
        let mut left = filler;
        while left > 0 {
            let n = left.min(PIECE);
            if !c.write(&piece[..n]) {
                return;
            }
            left -= n;
        }
        c.write(close);
    });
    let gw = gateway_over(&up);
    let before = peak_rss(gw.pid());
    let (head, len, last) = read_large(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(len, SIZE, "the whole body arrives");
    assert!(last.ends_with(br#""total_tokens":12}}"#));
    let peak = peak_rss(gw.pid());
    eprintln!("gateway VmHWM: {before} bytes before, {peak} after a {SIZE}-byte answer");
    assert!(
        (peak as f64) < 1.2 * SIZE as f64,
        "the gateway peaked at {peak} bytes relaying a {SIZE}-byte answer"
    );
}

/// Sends `req` and reads a large response as it arrives, keeping none of it: the head, the
/// body's length, and its last 64 bytes. Content-Length or chunked.
fn read_large(addr: std::net::SocketAddr, req: &[u8]) -> (String, usize, Vec<u8>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    tcp.write_all(req).expect("send");
    let mut r = BufReader::with_capacity(1 << 20, tcp);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("head line");
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut len = 0;
    let mut last = Vec::new();
    let mut take = |r: &mut BufReader<std::net::TcpStream>, mut n: usize| {
        let mut piece = vec![0u8; 1 << 20];
        while n > 0 {
            let k = n.min(piece.len());
            r.read_exact(&mut piece[..k]).expect("body bytes");
            len += k;
            last.extend_from_slice(&piece[..k]);
            let cut = last.len().saturating_sub(64);
            last.drain(..cut);
            n -= k;
        }
    };
    if let Some(cl) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
    {
        take(&mut r, cl.trim().parse().expect("content-length"));
    } else {
        assert!(lower.contains("transfer-encoding: chunked"), "{head}");
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("chunk line");
            let n = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            take(&mut r, n);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).expect("chunk end");
        }
    }
    (head, len, last)
}

// ---------------------------------------------------------------------------------------------
// The cap on held answers

/// A gate the scripted upstream waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.cv.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

#[test]
fn past_max_held_bodies_a_held_answer_gets_503_with_retry_after() {
    // Two translated (chat -> messages) non-streaming answers, each larger than
    // hold_body_bytes, whose bodies the upstream holds back until the gate opens: with one
    // slot per worker, whichever reaches the gateway second is refused at once.
    let gate = std::sync::Arc::new(Gate::default());
    let g = gate.clone();
    let up = Capture::scripted(move |c| {
        if c.read_request().is_none() {
            return;
        }
        let text = "a".repeat(4096);
        let body = format!(
            r#"{{"id":"msg_big","type":"message","role":"assistant","model":"claude-test","content":[{{"type":"text","text":"{text}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":3,"output_tokens":3}}}}"#
        );
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body.as_bytes()[..64]);
        c.write(&out);
        g.wait();
        c.write(&body.as_bytes()[64..]);
    });
    let config = standard_config(&up.openai_base(), &up.anthropic_base()).replace(
        "drain_timeout_ms = 2000",
        "drain_timeout_ms = 2000\nhold_body_bytes = 1024\nmax_held_bodies = 1",
    );
    let gw = Server::serve(&config, &key_env());
    let (tx, rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (addr, tx) = (gw.addr, tx.clone());
            std::thread::spawn(move || {
                let r = roundtrip(
                    addr,
                    &post(CHAT, TOKEN, &chat_body("claude-test", false), ""),
                );
                let _ = tx.send(r.status);
                r
            })
        })
        .collect();
    // The refusal comes while the other answer is still held back.
    let first = rx
        .recv_timeout(READ_TIMEOUT)
        .expect("one answer before the gate opens");
    assert_eq!(first, 503, "the second held answer is refused at once");
    gate.open();
    let mut rs: Vec<Response> = clients
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    rs.sort_by_key(|r| r.status);
    assert_eq!(rs[0].status, 200, "{}", rs[0].dump());
    assert!(rs[0].text().contains("aaaa"), "{}", rs[0].dump());
    assert_error(&rs[1], 503, Shape::OpenAi, "api_error");
    assert_eq!(rs[1].header("retry-after"), Some("1"), "{}", rs[1].dump());
}
