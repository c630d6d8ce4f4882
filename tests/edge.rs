//! Edge hardening over real sockets: what a client may make the gateway hold, and for how
//! long. A request is judged on its head before any body byte is read (no token, unknown
//! route: answered and closed, the body never buffered); bodies are bounded in time
//! (`body_timeout_ms`, 408) and, per worker, in memory (`max_body_memory_per_worker`, 503);
//! a POST without a length is 411 and nothing after it runs; `Host` must be host[:port];
//! the header count limit is `max_headers`.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

/// The standard test config with `max_body_bytes` set and `extra` lines added to `[server]`.
fn config(capture: &Capture, max_body: usize, extra: &str) -> String {
    let base = standard_config(&capture.openai_base(), &capture.anthropic_base());
    assert!(
        base.contains("max_body_bytes = 65536\n"),
        "standard_config changed"
    );
    base.replacen(
        "max_body_bytes = 65536\n",
        &format!("max_body_bytes = {max_body}\n{extra}\n"),
        1,
    )
}

/// A POST head to the chat route declaring a `len`-byte body, with `auth` header lines.
fn head_with_length(auth: &str, len: usize) -> String {
    format!(
        "POST {CHAT} HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// A valid chat body of about `size` bytes (a long user message).
fn chat_body_of(size: usize) -> String {
    let pad = size.saturating_sub(120);
    format!(
        r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"{}"}}],"max_tokens":8}}"#,
        "a".repeat(pad)
    )
}

/// Polls `/metrics` until `name` satisfies `pred` (the gateway publishes what it holds there);
/// panics with the last value after `within`.
fn wait_metric(gw: &Server, name: &str, within: Duration, pred: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let v = gw.metric(name);
        if pred(v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is still {v} after {within:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// One anonymous client: declares a 32 MiB body, sends `part` bytes of it, reads what comes
/// back within `wait`, and keeps its connection open (stalled) for the caller.
fn stalled_anonymous(addr: std::net::SocketAddr, part: usize, wait: Duration) -> (Conn, String) {
    let mut c = Conn::connect(addr);
    c.set_read_timeout(wait);
    let mut bytes = head_with_length("", 32 * MIB).into_bytes();
    bytes.resize(bytes.len() + part, b'a');
    // The gateway may answer and close before taking every byte: a failed write is fine.
    let _ = c.send(&bytes);
    let got = match c.read_response() {
        Ok(r) => format!("{} {}", r.status, r.header("connection").unwrap_or("")),
        Err(e) => describe(&e),
    };
    (c, got)
}

#[test]
fn stalled_anonymous_bodies_hold_no_memory() {
    let capture = Capture::ok();
    let gw = Server::serve(&config(&capture, 32 * MIB, ""), &key_env());
    // Each client sends a little under a MiB of its declared 32 MiB, all of which a gateway
    // that read bodies before checking tokens would hold (40 of them: ~38 MiB).
    let part = 960 * 1024;
    let wait = Duration::from_secs(3);
    // Warm up: the worker's pools and runtime as they are after a first refusal.
    let (warm, warm_got) = stalled_anonymous(gw.addr, part, wait);
    drop(warm);
    let before = gw.rss_kib();

    let clients: Vec<_> = (0..40)
        .map(|_| {
            let addr = gw.addr;
            thread::spawn(move || stalled_anonymous(addr, part, wait))
        })
        .collect();
    let results: Vec<(Conn, String)> = clients
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    // Every connection is still open on the client's side: stalled, as an attacker's would be.
    let after = gw.rss_kib();
    let growth_kib = after.saturating_sub(before);
    eprintln!(
        "gateway VmRSS {before} KiB -> {after} KiB (+{growth_kib} KiB) with 40 stalled clients"
    );
    assert!(
        growth_kib < 10 * 1024,
        "40 stalled anonymous bodies grew the gateway by {growth_kib} KiB"
    );
    assert_eq!(warm_got, "401 close", "warm-up");
    for (i, (_, got)) in results.iter().enumerate() {
        assert_eq!(
            got, "401 close",
            "client {i}: refused on its head, then closed"
        );
    }
    assert!(capture.requests().is_empty());
}

#[test]
fn post_without_length_is_411_and_nothing_after_it_runs() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let mut c = gw.connect();
    // What follows the head was meant as its body; here it is a whole valid request, which
    // must not run.
    let mut bytes =
        format!("POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
            .into_bytes();
    bytes.extend_from_slice(&post(CHAT, TOKEN, &chat_body("gpt-test", false), ""));
    c.send(&bytes).expect("send");
    let r = c.response();
    assert_error(&r, 411, Shape::OpenAi, "invalid_request_error");
    assert!(
        r.says_close(),
        "411 without connection: close:\n{}",
        r.dump()
    );
    c.expect_closed().unwrap_or_else(|b| {
        panic!(
            "a second answer after 411: {:?}",
            String::from_utf8_lossy(&b)
        )
    });
    assert!(
        capture.requests().is_empty(),
        "the bytes after a 411 ran as a request: {:?}",
        capture.requests()
    );
}

#[test]
fn stalled_body_is_408_at_body_timeout() {
    let capture = Capture::ok();
    let body_timeout = Duration::from_millis(1000);
    let gw = Server::serve(
        &config(&capture, 65536, "body_timeout_ms = 1000"),
        &key_env(),
    );
    let mut c = gw.connect();
    c.set_read_timeout(Duration::from_secs(4));
    let body = chat_body("gpt-test", false);
    let mut bytes =
        head_with_length(&format!("Authorization: Bearer {TOKEN}\r\n"), body.len()).into_bytes();
    bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
    let start = Instant::now();
    c.send(&bytes).expect("send");
    let r = c.response();
    let elapsed = start.elapsed();
    assert_error(&r, 408, Shape::OpenAi, "invalid_request_error");
    assert!(r.says_close(), "{}", r.dump());
    assert!(
        elapsed >= body_timeout - Duration::from_millis(100),
        "408 after {elapsed:?}, before body_timeout_ms"
    );
    // idle_timeout_ms is 5000 in the standard config: the body deadline is its own.
    assert!(
        elapsed < Duration::from_millis(3000),
        "408 only after {elapsed:?}"
    );
    c.expect_closed()
        .unwrap_or_else(|b| panic!("open after 408: {b:?}"));
    assert!(capture.requests().is_empty());
}

#[test]
fn bad_host_is_400() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let body = chat_body("gpt-test", false);
    for host in ["", "a b", "gw:99999", "user@gw", "gw/x", "[::1"] {
        let req = format!(
            "POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut c = gw.connect();
        c.send(req.as_bytes()).expect("send");
        let r = c.response();
        assert_error(&r, 400, Shape::OpenAi, "invalid_request_error");
        assert!(r.says_close(), "Host {host:?}: {}", r.dump());
    }
    assert!(capture.requests().is_empty());
    // A good one with a port goes through.
    let req = post(CHAT, TOKEN, &body, "").replace_host("gw:3000");
    assert_eq!(roundtrip(gw.addr, &req).status, 200);
}

/// `Host: gw` replaced, for requests built by the shared helpers.
trait ReplaceHost {
    fn replace_host(self, host: &str) -> Vec<u8>;
}

impl ReplaceHost for Vec<u8> {
    fn replace_host(self, host: &str) -> Vec<u8> {
        String::from_utf8(self)
            .expect("utf-8 request")
            .replacen("Host: gw\r\n", &format!("Host: {host}\r\n"), 1)
            .into_bytes()
    }
}

/// A chat POST with `count` header fields in all.
fn with_headers(count: usize) -> Vec<u8> {
    let base = post(CHAT, TOKEN, &chat_body("gpt-test", false), "");
    let fixed = 4; // Host, Authorization, Content-Type, Content-Length
    let extra: String = (0..count - fixed)
        .map(|i| format!("X-Pad-{i}: v\r\n"))
        .collect();
    let text = String::from_utf8(base).expect("utf-8");
    text.replacen("Content-Type:", &format!("{extra}Content-Type:"), 1)
        .into_bytes()
}

#[test]
fn header_count_limit_is_max_headers() {
    let capture = Capture::ok();
    // Default: 100 fields. The head stays under max_header_bytes (4096 in the standard config).
    let gw = gateway_over(&capture);
    assert_eq!(
        roundtrip(gw.addr, &with_headers(100)).status,
        200,
        "100 headers"
    );
    let r = roundtrip(gw.addr, &with_headers(101));
    assert_error(&r, 431, Shape::OpenAi, "invalid_request_error");
    assert!(r.says_close(), "{}", r.dump());
    drop(gw);
    // Configured.
    let gw = Server::serve(&config(&capture, 65536, "max_headers = 20"), &key_env());
    assert_eq!(
        roundtrip(gw.addr, &with_headers(20)).status,
        200,
        "20 headers"
    );
    let r = roundtrip(gw.addr, &with_headers(21));
    assert_error(&r, 431, Shape::OpenAi, "invalid_request_error");
}

#[test]
fn body_memory_cap_sheds_503() {
    let capture = Capture::ok();
    let gw = Server::serve(
        &config(
            &capture,
            2 * MIB,
            &format!("max_body_memory_per_worker = {}", 3 * MIB),
        ),
        &key_env(),
    );
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    // A: an admitted body that stalls at 1.9 of its 2 MiB; the worker now holds ~2 MiB of it.
    let mut a = gw.connect();
    let mut bytes = head_with_length(&auth, 2 * MIB).into_bytes();
    bytes.resize(bytes.len() + 2 * MIB - 100 * 1024, b' ');
    a.send(&bytes).expect("send A");
    let held = wait_metric(
        &gw,
        "switchyard_request_body_bytes",
        Duration::from_secs(10),
        |v| v as usize >= 3 * MIB / 2,
    );
    assert!(held as usize <= 3 * MIB, "held {held} past the cap");
    // B: another 2 MiB would take the worker past 3 MiB: 503 at once, before its body.
    let mut b = gw.connect();
    b.send(head_with_length(&auth, 2 * MIB).as_bytes())
        .expect("send B");
    let r = b.response();
    assert_error(&r, 503, Shape::OpenAi, "api_error");
    assert!(r.says_close(), "{}", r.dump());
    assert_eq!(gw.metric("switchyard_body_memory_shed_total"), 1);
    // A goes away: its memory is released, and a large body is served again.
    a.close();
    wait_metric(
        &gw,
        "switchyard_request_body_bytes",
        Duration::from_secs(10),
        |v| v == 0,
    );
    let big = chat_body_of(3 * MIB / 2);
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &big, ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    let seen = capture.requests();
    assert_eq!(seen.len(), 1, "only the last request reaches the provider");
}

#[test]
fn refused_on_the_head_keeps_a_wholly_buffered_connection_only() {
    // A refusal whose small body came with the head may keep the connection; the pipelined
    // request after it runs.
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let body = chat_body("gpt-test", false);
    let mut bytes = post(CHAT, "sk-lr-wrong", &body, "");
    bytes.extend_from_slice(&post(CHAT, TOKEN, &body, ""));
    let mut c = gw.connect();
    c.send(&bytes).expect("send");
    let r = c.response();
    assert_error(&r, 401, Shape::OpenAi, "authentication_error");
    assert!(!r.says_close(), "{}", r.dump());
    assert_eq!(c.response().status, 200);
    // Unknown route with a body still to come: 404 and close, body never read.
    let mut c = gw.connect();
    c.send(
        head_with_length(&format!("Authorization: Bearer {TOKEN}\r\n"), 1000)
            .replace(CHAT, "/v1/nope")
            .as_bytes(),
    )
    .expect("send");
    let r = c.response();
    assert_error(&r, 404, Shape::OpenAi, "not_found_error");
    assert!(r.says_close(), "{}", r.dump());
    assert_eq!(capture.requests().len(), 1);
}

#[test]
fn chunked_bodies_growing_past_the_cap_are_shed() {
    // No declared length: the cap is enforced as the body grows, not only at the head.
    let capture = Capture::ok();
    let gw = Server::serve(
        &config(
            &capture,
            2 * MIB,
            &format!("max_body_memory_per_worker = {}", 3 * MIB),
        ),
        &key_env(),
    );
    let chunked_head = format!(
        "POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let open_chunk = |size: usize, sent: usize| {
        let mut b = chunked_head.clone().into_bytes();
        b.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        b.resize(b.len() + sent, b' ');
        b
    };
    let mut a = gw.connect();
    a.send(&open_chunk(2 * MIB - 4096, 2 * MIB - 100 * 1024))
        .expect("send A");
    wait_metric(
        &gw,
        "switchyard_request_body_bytes",
        Duration::from_secs(10),
        |v| v as usize >= 3 * MIB / 2,
    );
    let mut b = gw.connect();
    // B's own chunk grows its buffer past what is left under the cap (about 1 MiB) well
    // before its first MiB is in; what follows the refusal is drained, not reset.
    let _ = b.send(&open_chunk(2 * MIB - 4096, MIB));
    let r = b.response();
    assert_error(&r, 503, Shape::OpenAi, "api_error");
    assert_eq!(gw.metric("switchyard_body_memory_shed_total"), 1);
    let held = gw.metric("switchyard_request_body_bytes") as usize;
    assert!(held <= 3 * MIB, "held {held} bytes past the 3 MiB cap");
    a.close();
    assert!(capture.requests().is_empty());
}
