//! The upstream HTTP/1.1 client against plain-HTTP upstreams the tests script: keep-alive
//! pooling, connections that must not go back to the pool, connect / first-byte / stream-idle
//! deadlines, cancellation when the client leaves, and strict response parsing.
//!
//! Every upstream here runs in this process (`common::Capture`), counts the connections it
//! accepts and reports over channels what it saw on each, so the tests observe the gateway's
//! upstream side directly instead of guessing from timings.

mod common;

use common::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for an upstream handler's report.
const REPORT_WAIT: Duration = Duration::from_secs(15);
/// Sanity bound on "at once": far below every default deadline (60 s), far above scheduling
/// noise. Not a performance target.
const PROMPT: Duration = Duration::from_secs(5);

/// A gateway whose one provider is at `base_url`, with `extra` lines in its table.
fn gateway_at(base_url: &str, extra: &str) -> Server {
    Server::serve(
        &one_provider_config(&format!("base_url = \"{base_url}\"\n{extra}")),
        &key_env(),
    )
}

fn gateway_for(up: &Capture, extra: &str) -> Server {
    gateway_at(&up.openai_base(), extra)
}

/// An upstream whose first connection reads one request, runs `answer` on it, then reports
/// whether the gateway closed that connection (within [`UPSTREAM_IDLE`]); later connections
/// serve as a working provider.
fn watched(
    answer: impl Fn(&mut UpConn<TcpStream>) + Send + Sync + 'static,
) -> (Capture, mpsc::Receiver<Peer>) {
    let (tx, rx) = mpsc::channel::<Peer>();
    let up = Capture::scripted(move |c| {
        if c.index > 0 {
            return c.serve_openai();
        }
        if c.read_request().is_some() {
            answer(c);
            let _ = tx.send(c.wait_closed());
        }
    });
    (up, rx)
}

/// Asserts the watched connection's report is that the gateway closed it.
fn assert_closed(report: &mpsc::Receiver<Peer>, why: &str) {
    assert_eq!(report.recv_timeout(REPORT_WAIT), Ok(Peer::Closed), "{why}");
}

/// The SSE head and the first of [`SSE_EVENTS`], then nothing more.
fn first_event_then_silence(c: &mut UpConn<TcpStream>) {
    let mut out = sse_head();
    out.extend_from_slice(&chunk(SSE_EVENTS[0].as_bytes()));
    c.write(&out);
}

// ---------------------------------------------------------------------------------------------
// (a) pooling

#[test]
fn sequential_requests_share_one_pooled_upstream_connection() {
    let up = Capture::scripted(|c| c.serve_openai());
    let gw = gateway_for(&up, "");
    for i in 0..5 {
        // A fresh client connection each time: the pool is the worker's, not the client's.
        assert_chat_json(&gw.chat("m1", false), &format!("request {i}"));
    }
    assert_eq!(
        up.connections(),
        1,
        "5 sequential requests opened more than one connection"
    );
    let reqs = up.requests();
    assert_eq!(reqs.len(), 5, "the upstream did not see every request");
    for r in &reqs {
        assert_eq!(r.request_line(), "POST /v1/chat/completions HTTP/1.1");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {OPENAI_KEY}").as_str())
        );
        assert!(
            contains(&r.body, b"\"model\":\"up-model\""),
            "upstream_id not spliced: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(gw.metric("switchyard_upstream_connects_total"), 1);
    assert_eq!(gw.metric("switchyard_upstream_reused_total"), 4);
}

#[test]
fn sequential_streams_share_one_pooled_upstream_connection() {
    let up = Capture::scripted(|c| c.serve_openai());
    let gw = gateway_for(&up, "");
    for i in 0..3 {
        let r = gw.chat("m1", true);
        assert_eq!(r.status, 200, "stream {i}: {}", r.dump());
        let text = r.text();
        assert!(
            text.starts_with("data: {\"type\":\"trace\""),
            "stream {i}: {text}"
        );
        assert!(
            text.ends_with(&SSE_EVENTS.concat()),
            "stream {i}: upstream events not relayed intact: {text}"
        );
    }
    assert_eq!(
        up.connections(),
        1,
        "3 sequential streams opened more than one connection"
    );
    assert_eq!(gw.metric("switchyard_upstream_connects_total"), 1);
    assert_eq!(gw.metric("switchyard_upstream_reused_total"), 2);
}

// ---------------------------------------------------------------------------------------------
// (b) connections that must not be reused

#[test]
fn bytes_after_the_body_poison_the_connection() {
    let (up, rx) = watched(|c| {
        // A whole response and the start of another nobody asked for, in one write.
        let mut out = json_response(CHAT_JSON);
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        c.write(&out);
    });
    let gw = gateway_for(&up, "");

    let r = gw.chat("m1", false);
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    assert_closed(&rx, "the gateway kept the poisoned connection open");

    assert_chat_json(&gw.chat("m1", false), "the request after");
    assert_eq!(
        up.connections(),
        2,
        "the next request did not open a new connection"
    );
    assert_eq!(gw.metric("switchyard_upstream_reused_total"), 0);
}

#[test]
fn a_close_delimited_response_is_relayed_and_its_connection_not_reused() {
    let (up, rx) = watched(|c| {
        // HTTP/1.1 with neither Content-Length nor Transfer-Encoding: the body ends at EOF.
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n";
        c.write(format!("{head}{CHAT_JSON}").as_bytes());
        c.shutdown_write();
    });
    let gw = gateway_for(&up, "");

    assert_chat_json(&gw.chat("m1", false), "the close-delimited body");
    assert_closed(&rx, "the gateway kept the close-delimited connection open");

    let r = gw.chat("m1", false);
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(
        up.connections(),
        2,
        "the next request did not open a new connection"
    );
    assert_eq!(gw.metric("switchyard_upstream_connects_total"), 2);
    assert_eq!(gw.metric("switchyard_upstream_reused_total"), 0);
}

// ---------------------------------------------------------------------------------------------
// (c) connect failures

/// A listening address whose connects hang: a listener with backlog 0 whose accept queue is
/// full and never drained, so further SYNs go unanswered. (An unroutable address such as
/// 10.255.255.1 is not reliable for this: a sandbox's network may answer it at once.)
struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

fn blackhole() -> Blackhole {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: listen(2) on the fd of a socket we own; calling it again only changes the backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen(fd, 0) failed");
    let addr = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    // Fill the queue until a connect hangs; that probe proves the address is a black hole.
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("probe connect failed: {e}"),
        }
        assert!(queued.len() < 64, "the accept queue never filled up");
    }
    Blackhole {
        addr,
        _listener: listener,
        _queued: queued,
    }
}

#[test]
fn connect_timeout_answers_504_promptly() {
    let hole = blackhole();
    let gw = gateway_at(
        &format!("http://{}/v1", hole.addr),
        "connect_timeout_ms = 300\nfirst_byte_timeout_ms = 30000",
    );
    let t = Instant::now();
    let r = gw.chat("m1", false);
    let elapsed = t.elapsed();
    assert_error(&r, 504, Shape::OpenAi, "timeout_error");
    assert!(
        elapsed >= Duration::from_millis(250),
        "answered in {elapsed:?}, before the 300 ms connect deadline could pass"
    );
    assert!(
        elapsed < PROMPT,
        "took {elapsed:?} with connect_timeout_ms = 300"
    );
    gw.wait_log("naming the connect timeout", |l| {
        l.contains("connecting to provider up") && l.contains("timed out")
    });
}

#[test]
fn connection_refused_answers_502_promptly() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }; // dropped: nothing listens there any more
    let gw = gateway_at(&format!("http://{addr}/v1"), "connect_timeout_ms = 3000");
    let t = Instant::now();
    let r = gw.chat("m1", false);
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    assert!(t.elapsed() < PROMPT, "took {:?}", t.elapsed());
    gw.wait_log("naming the refused connect", |l| {
        l.contains("cannot connect to provider up")
    });
}

// ---------------------------------------------------------------------------------------------
// (d) first byte

#[test]
fn a_silent_upstream_hits_first_byte_timeout_with_504() {
    // Never answer; report when the gateway gives up on the connection.
    let (up, rx) = watched(|_| {});
    let gw = gateway_for(&up, "first_byte_timeout_ms = 500");
    let t = Instant::now();
    let r = gw.chat("m1", false);
    let elapsed = t.elapsed();
    assert_error(&r, 504, Shape::OpenAi, "timeout_error");
    assert!(
        elapsed >= Duration::from_millis(450),
        "answered 504 after {elapsed:?}, before first_byte_timeout_ms = 500"
    );
    assert!(elapsed < PROMPT, "took {elapsed:?}");
    assert_closed(&rx, "the timed-out upstream connection was not closed");
}

// ---------------------------------------------------------------------------------------------
// (e) stream idle gap

#[test]
fn a_stalled_stream_ends_with_an_error_event_not_done() {
    let (up, rx) = watched(first_event_then_silence);
    let gw = gateway_for(
        &up,
        "first_byte_timeout_ms = 10000\nstream_idle_timeout_ms = 500",
    );
    let t = Instant::now();
    // read_response returns only once the terminating chunk arrived.
    let r = gw.chat("m1", true);
    assert!(t.elapsed() < PROMPT, "took {:?}", t.elapsed());
    assert_eq!(r.status, 200, "{}", r.dump());
    let text = r.text();
    assert!(
        text.starts_with("data: {\"type\":\"trace\""),
        "no trace event first: {text}"
    );
    let first = text
        .find(SSE_EVENTS[0])
        .unwrap_or_else(|| panic!("the upstream's first event was not relayed intact: {text}"));
    let err = text
        .find("data: {\"error\":")
        .unwrap_or_else(|| panic!("no error event after the stall: {text}"));
    assert!(first < err, "error event before the relayed event: {text}");
    assert!(
        !text.contains("[DONE]"),
        "a cut stream must not end with [DONE]: {text}"
    );
    assert!(
        text.ends_with("\n\n"),
        "the error event is not a whole SSE event: {text}"
    );
    assert_closed(&rx, "the stalled upstream connection was not closed");
}

/// A stream whose events come closer together than `stream_idle_timeout_ms`, lasting several
/// times it in all, is relayed whole: the stall deadline runs from each wait, not from the
/// start of the stream (its one timer is moved on, not left to fire).
#[test]
fn a_stream_longer_than_the_idle_timeout_but_never_idle_that_long_is_whole() {
    let up = Capture::scripted(|c| {
        if c.read_request().is_none() {
            return;
        }
        c.write(&sse_head());
        paced_content(c, "p", 12, Duration::from_millis(40));
        let mut out = chunk(SSE_EVENTS[1].as_bytes());
        out.extend_from_slice(&chunk(SSE_EVENTS[2].as_bytes()));
        out.extend_from_slice(b"0\r\n\r\n");
        c.write(&out);
    });
    let gw = gateway_for(
        &up,
        "first_byte_timeout_ms = 10000\nstream_idle_timeout_ms = 150",
    );
    let r = gw.chat("m1", true);
    assert_eq!(r.status, 200, "{}", r.dump());
    let text = r.text();
    assert!(
        !text.contains("data: {\"error\":"),
        "a stream never idle for the timeout was cut: {text}"
    );
    assert!(text.contains("p11"), "events missing: {text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "no clean end: {text}");
}

// ---------------------------------------------------------------------------------------------
// (f) the client leaves

/// A patient gateway (30 s deadlines) over `up`, and a client whose streaming request has
/// reached `up`.
fn stream_in_flight(up: &Capture) -> (Server, Conn) {
    let gw = gateway_for(
        up,
        "first_byte_timeout_ms = 30000\nstream_idle_timeout_ms = 30000",
    );
    let mut c = gw.connect();
    c.send(&post(CHAT, TOKEN, &chat_body("m1", true), ""))
        .expect("send");
    up.wait_request(REPORT_WAIT)
        .expect("the upstream never received the request");
    (gw, c)
}

#[test]
fn a_client_leaving_before_the_first_byte_closes_the_upstream_connection() {
    let (up, rx) = watched(|_| {});
    let (_gw, c) = stream_in_flight(&up);
    let t = Instant::now();
    c.close();
    assert_closed(
        &rx,
        "the upstream connection outlived the client that asked for it",
    );
    assert!(t.elapsed() < PROMPT, "closed only after {:?}", t.elapsed());
}

#[test]
fn a_client_leaving_mid_stream_closes_the_upstream_connection() {
    let (up, rx) = watched(first_event_then_silence);
    let (_gw, mut c) = stream_in_flight(&up);
    // The trace event and the first upstream event reach the client; then it leaves.
    let received = c.read_until(b"\"content\":\"Hi\"").unwrap_or_else(|got| {
        panic!(
            "the first upstream event never arrived; received {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    assert!(contains(&received, b"data: {\"type\":\"trace\""));
    let t = Instant::now();
    c.close();
    assert_closed(
        &rx,
        "the upstream stream outlived the client that asked for it",
    );
    assert!(t.elapsed() < PROMPT, "closed only after {:?}", t.elapsed());
}

/// The SSE head, then an event every 30 ms naming its index (`"w0"`..`"w3"`), then nothing
/// more: the stream has been read several times, the client watch long armed, when the client
/// leaves after `"w3"`.
fn paced_events_then_silence(c: &mut UpConn<TcpStream>) {
    c.write(&sse_head());
    paced_content(c, "w", 4, Duration::from_millis(30));
}

/// `n` content chunks, `every` apart (the upstream's pacing), their contents `{tag}0`,
/// `{tag}1`...: each event says which it is.
fn paced_content(c: &mut UpConn<TcpStream>, tag: &str, n: usize, every: Duration) {
    for i in 0..n {
        std::thread::sleep(every);
        let ev = format!(
            "data: {{\"id\":\"chatcmpl-up1\",\"object\":\"chat.completion.chunk\",\"model\":\"m1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{tag}{i}\"}}}}]}}\n\n"
        );
        c.write(&chunk(ev.as_bytes()));
    }
}

/// A client leaving a stream that has flowed for a while (the one watch of the whole stream
/// armed, polled across several reads) closes the upstream connection at once, on a relayed
/// stream and on a translated one.
#[test]
fn a_client_leaving_a_flowing_stream_closes_the_upstream_connection() {
    for (path, body) in [
        (CHAT, chat_body("m1", true)),
        (MESSAGES, messages_body("m1", true)),
    ] {
        let (up, rx) = watched(paced_events_then_silence);
        let gw = gateway_for(
            &up,
            "first_byte_timeout_ms = 30000\nstream_idle_timeout_ms = 30000",
        );
        let mut c = gw.connect();
        c.send(&post(path, TOKEN, &body, "")).expect("send");
        c.read_until(b"w3").unwrap_or_else(|got| {
            panic!(
                "{path}: the fourth upstream event never arrived; received {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        let t = Instant::now();
        c.close();
        assert_closed(
            &rx,
            &format!("{path}: the upstream stream outlived the client that asked for it"),
        );
        assert!(
            t.elapsed() < PROMPT,
            "{path}: closed only after {:?}",
            t.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (g) strict response parsing

#[test]
fn content_length_with_transfer_encoding_is_refused_with_502() {
    let (up, rx) = watched(|c| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\n",
            CHAT_JSON.len()
        )
        .into_bytes();
        out.extend_from_slice(&chunk(CHAT_JSON.as_bytes()));
        out.extend_from_slice(b"0\r\n\r\n");
        c.write(&out);
    });
    let gw = gateway_for(&up, "");
    let r = gw.chat("m1", false);
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    assert!(
        !contains(&r.body, b"Hi from upstream"),
        "the smuggling-shaped body leaked: {}",
        r.dump()
    );
    assert_closed(&rx, "the connection with ambiguous framing was kept");
}

#[test]
fn an_interim_100_continue_is_skipped_and_the_200_relayed() {
    let up = Capture::scripted(|c| {
        if c.index == 0 {
            if c.read_request().is_none() {
                return;
            }
            // The interim response in its own write, so it may arrive alone.
            if !c.write(b"HTTP/1.1 100 Continue\r\n\r\n") {
                return;
            }
            if !c.write(&json_response(CHAT_JSON)) {
                return;
            }
        }
        c.serve_openai();
    });
    let gw = gateway_for(&up, "");
    let r = gw.chat("m1", false);
    assert_chat_json(&r, "the final response");
    assert!(
        !r.dump().contains("100 Continue"),
        "the interim response reached the client: {}",
        r.dump()
    );
    // The exchange ended cleanly, so the connection went back to the pool.
    let r = gw.chat("m1", false);
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(up.connections(), 1);
}
