//! The proxy API end to end: the gateway in front of the real `switchyard mock-upstream`
//! (OpenAI and Anthropic shapes, streaming, the `cut-` fault hook), and in front of a capture
//! upstream where exact bytes or connection counts matter.

mod common;

use common::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use std::time::{Duration, Instant};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const RESPONSES: &str = "/v1/responses";

/// The gateway config over a mock provider at `mock` (both protocols on it).
fn mock_config(mock: &Server) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
idle_timeout_ms = 5000
drain_timeout_ms = 2000

[[providers]]
id = "oai"
kind = "openai"
base_url = "http://{addr}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "http://{addr}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[models]]
id = "gpt-test"
provider = "oai"
upstream_id = "gpt-4o-mini"
input_per_million = 1.0
output_per_million = 4.0

[[models]]
id = "claude-test"
provider = "ant"
upstream_id = "claude-haiku-4-5"
input_per_million = 1.0
output_per_million = 5.0

[[models]]
id = "cut-gpt"
provider = "oai"
upstream_id = "cut-gpt-4o-mini"

[[models]]
id = "cut-claude"
provider = "ant"
upstream_id = "cut-claude-haiku-4-5"

[[projects]]
slug = "default"
tokens = ["sk-lr-test"]
models = ["gpt-test", "claude-test", "cut-gpt", "cut-claude"]
policies = ["health", "cheapest"]

[[projects]]
slug = "other"
tokens = ["sk-lr-other"]
models = ["gpt-test"]

[[projects]]
slug = "quiet"
tokens = ["sk-lr-quiet"]
models = ["gpt-test"]
trace = "comment"
"#,
        addr = mock.addr
    )
}

struct Setup {
    gw: Server,
    _mock: Server,
}

fn setup() -> Setup {
    let mock = Server::mock_upstream();
    let gw = Server::serve(&mock_config(&mock), &key_env());
    Setup { gw, _mock: mock }
}

fn anthropic_post(path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nx-api-key: {TOKEN}\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A JSON number as `f64`, whether simd-json parsed it as an integer or a float.
fn num(v: &OwnedValue) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_u64().map(|x| x as f64))
        .or_else(|| v.as_i64().map(|x| x as f64))
}

fn str_of<'a>(v: &'a OwnedValue, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// Checks `trace` is a whole trace object for `model` on `provider` with the response's id.
fn check_trace(trace: &OwnedValue, r: &Response, model: &str, provider: &str) {
    let id = r.header("x-routerly-trace-id").expect("trace id header");
    assert_uuid_v7(id);
    assert_eq!(str_of(trace, "type"), Some("trace"), "{trace:?}");
    assert_eq!(str_of(trace, "traceId"), Some(id), "{trace:?}");
    assert_eq!(str_of(trace, "model"), Some(model), "{trace:?}");
    assert_eq!(str_of(trace, "provider"), Some(provider), "{trace:?}");
    let policies = trace
        .get("policies")
        .and_then(|p| p.as_array())
        .unwrap_or_else(|| panic!("no policies array: {trace:?}"));
    assert!(policies.iter().all(|p| p.is_str()), "{trace:?}");
    let scores = trace
        .get("scores")
        .and_then(|p| p.as_array())
        .unwrap_or_else(|| panic!("no scores array: {trace:?}"));
    assert!(!scores.is_empty(), "{trace:?}");
    for s in scores {
        assert!(str_of(s, "model").is_some(), "{trace:?}");
        let score = s
            .get("score")
            .and_then(num)
            .unwrap_or_else(|| panic!("score is not a number: {trace:?}"));
        assert!((0.0..=1.0).contains(&score), "{trace:?}");
    }
    assert!(
        scores.iter().any(|s| str_of(s, "model") == Some(model)),
        "the chosen model is not among the scores: {trace:?}"
    );
    let cost = trace
        .get("costEstimate")
        .and_then(num)
        .unwrap_or_else(|| panic!("no numeric costEstimate: {trace:?}"));
    assert!(cost >= 0.0 && cost.is_finite(), "{trace:?}");
}

/// The trace JSON of a `data:` trace event.
fn data_trace(ev: &Event) -> OwnedValue {
    let d = ev
        .data
        .as_deref()
        .unwrap_or_else(|| panic!("the first event has no data: {ev:?}"));
    assert!(
        d.starts_with("{\"type\":\"trace\""),
        "the first event is not the trace: {d}"
    );
    let v = parse_json(d.as_bytes());
    // It is also a valid, empty chat.completion.chunk, so `choices[0].delta` loops work.
    assert_eq!(str_of(&v, "object"), Some("chat.completion.chunk"), "{d}");
    let id = str_of(&v, "id").unwrap_or_default();
    assert!(id.starts_with("chatcmpl-"), "{d}");
    assert!(v.get("created").and_then(|c| c.as_u64()).is_some(), "{d}");
    let choice = &v["choices"][0];
    assert_eq!(choice.get("index").and_then(|i| i.as_u64()), Some(0), "{d}");
    assert!(
        choice.get("finish_reason").is_some_and(|f| f.is_null()),
        "{d}"
    );
    assert_eq!(
        choice
            .get("delta")
            .and_then(|x| x.as_object())
            .map(|o| o.len()),
        Some(0),
        "an empty delta: {d}"
    );
    v
}

/// The trace carried by an Anthropic `ping` event (the first event of a messages stream).
fn ping_trace(ev: &Event) -> OwnedValue {
    assert_eq!(ev.event.as_deref(), Some("ping"), "not a ping: {ev:?}");
    let d = ev.data.as_deref().unwrap_or_default();
    assert!(
        d.starts_with("{\"type\":\"ping\",\"trace\":{"),
        "the ping does not carry the trace: {d}"
    );
    let v = parse_json(d.as_bytes());
    let trace = v.get("trace").cloned().unwrap_or_else(|| panic!("{d}"));
    assert_eq!(str_of(&trace, "type"), Some("trace"), "{d}");
    trace
}

fn assert_stream_head(r: &Response) {
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        r.dump()
    );
}

#[test]
fn chat_completion_non_streaming() {
    let s = setup();
    let r = roundtrip(
        s.gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
    let v = r.json();
    assert_eq!(
        str_of(&v, "object"),
        Some("chat.completion"),
        "{}",
        r.dump()
    );
    assert_eq!(
        str_of(&v, "model"),
        Some("gpt-4o-mini"),
        "upstream body unchanged"
    );
    let content = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
    assert!(
        content.starts_with("This is a mock reply from Switchyard to:"),
        "{content}"
    );
}

#[test]
fn chat_completion_streaming() {
    let s = setup();
    let r = roundtrip(
        s.gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", true), ""),
    );
    assert_stream_head(&r);
    let events = sse_events(&r.body);
    assert!(events.len() >= 3, "{}", r.text());
    check_trace(&data_trace(&events[0]), &r, "gpt-test", "oai");
    let last = events.last().and_then(|e| e.data.as_deref());
    assert_eq!(last, Some("[DONE]"), "{}", r.text());
    let chunks = &events[1..events.len() - 1];
    assert!(!chunks.is_empty(), "{}", r.text());
    let mut text = String::new();
    for ev in chunks {
        let v = parse_json(ev.data.as_deref().unwrap_or("").as_bytes());
        assert_eq!(
            str_of(&v, "object"),
            Some("chat.completion.chunk"),
            "{ev:?}"
        );
        assert_eq!(str_of(&v, "model"), Some("gpt-4o-mini"), "{ev:?}");
        if let Some(t) = v["choices"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(|c| c.get("delta"))
            .and_then(|d| d.get("content"))
            .and_then(|c| c.as_str())
        {
            text.push_str(t);
        }
    }
    assert!(
        text.starts_with("This is a mock reply from Switchyard to:"),
        "{text}"
    );
}

#[test]
fn messages_non_streaming_and_streaming() {
    let s = setup();
    let r = roundtrip(
        s.gw.addr,
        &anthropic_post(MESSAGES, &messages_body("claude-test", false), ""),
    );
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
    let v = r.json();
    assert_eq!(str_of(&v, "type"), Some("message"), "{}", r.dump());
    assert_eq!(str_of(&v, "model"), Some("claude-haiku-4-5"));
    assert_eq!(str_of(&v["content"][0], "type"), Some("text"));

    let r = roundtrip(
        s.gw.addr,
        &anthropic_post(MESSAGES, &messages_body("claude-test", true), ""),
    );
    assert_stream_head(&r);
    let events = sse_events(&r.body);
    check_trace(&ping_trace(&events[0]), &r, "claude-test", "ant");
    assert_eq!(
        events.get(1).and_then(|e| e.event.as_deref()),
        Some("message_start"),
        "{}",
        r.text()
    );
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("message_stop"),
        "{}",
        r.text()
    );
    for ev in &events[1..] {
        let name = ev.event.as_deref().unwrap_or("");
        let v = parse_json(ev.data.as_deref().unwrap_or("").as_bytes());
        assert_eq!(
            str_of(&v, "type"),
            Some(name),
            "event name and type differ: {ev:?}"
        );
    }
}

#[test]
fn responses_stream_carries_the_trace_as_a_comment() {
    let s = setup();
    let body = r#"{"model":"gpt-test","input":"Tell me a joke.","stream":true}"#;
    let r = roundtrip(s.gw.addr, &post(RESPONSES, TOKEN, body, ""));
    assert_stream_head(&r);
    assert!(
        r.body.starts_with(b": trace {"),
        "the stream does not open with the trace comment: {}",
        r.text()
    );
    let events = sse_events(&r.body);
    let comment = events[0].comments.first().expect("trace comment");
    let json = comment.strip_prefix("trace ").expect("`: trace {...}`");
    check_trace(&parse_json(json.as_bytes()), &r, "gpt-test", "oai");
    assert!(
        !events.iter().any(|e| e
            .data
            .as_deref()
            .is_some_and(|d| d.contains("\"type\":\"trace\""))),
        "a data: trace event on /v1/responses breaks the OpenAI SDK: {}",
        r.text()
    );
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("response.completed"),
        "{}",
        r.text()
    );

    let body = r#"{"model":"gpt-test","input":"Tell me a joke.","stream":false}"#;
    let r = roundtrip(s.gw.addr, &post(RESPONSES, TOKEN, body, ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(
        str_of(&r.json(), "object"),
        Some("response"),
        "{}",
        r.dump()
    );
}

#[test]
fn trace_opt_out_and_comment_mode() {
    let s = setup();
    for (extra, what) in [
        ("x-routerly-trace: off\r\n", "x-routerly-trace: off"),
        ("x-routerly-no-trace: 1\r\n", "x-routerly-no-trace: 1"),
    ] {
        let r = roundtrip(
            s.gw.addr,
            &post(CHAT, TOKEN, &chat_body("gpt-test", true), extra),
        );
        assert_stream_head(&r);
        assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
        assert!(
            !contains(&r.body, b"\"type\":\"trace\""),
            "{what}: trace still sent: {}",
            r.text()
        );
        let events = sse_events(&r.body);
        let first = parse_json(events[0].data.as_deref().unwrap_or("").as_bytes());
        assert_eq!(
            str_of(&first, "object"),
            Some("chat.completion.chunk"),
            "{what}"
        );
        assert_eq!(
            events.last().and_then(|e| e.data.as_deref()),
            Some("[DONE]")
        );
        let r = roundtrip(
            s.gw.addr,
            &anthropic_post(MESSAGES, &messages_body("claude-test", true), extra),
        );
        assert_stream_head(&r);
        assert!(
            !contains(&r.body, b"\"type\":\"trace\""),
            "{what}: trace still sent on messages: {}",
            r.text()
        );
    }

    // Project `quiet` has trace = "comment".
    let r = roundtrip(
        s.gw.addr,
        &post(CHAT, "sk-lr-quiet", &chat_body("gpt-test", true), ""),
    );
    assert_stream_head(&r);
    assert!(r.body.starts_with(b": trace {"), "{}", r.text());
    let events = sse_events(&r.body);
    let json = events[0].comments[0].strip_prefix("trace ").expect("trace");
    check_trace(&parse_json(json.as_bytes()), &r, "gpt-test", "oai");
}

#[test]
fn cut_upstream_stream_ends_with_an_error_event() {
    let s = setup();
    let r = roundtrip(
        s.gw.addr,
        &post(CHAT, TOKEN, &chat_body("cut-gpt", true), ""),
    );
    assert_stream_head(&r);
    let events = sse_events(&r.body);
    check_trace(&data_trace(&events[0]), &r, "cut-gpt", "oai");
    let last = events
        .last()
        .and_then(|e| e.data.clone())
        .unwrap_or_default();
    assert!(
        last.starts_with("{\"error\""),
        "no error event at the end: {}",
        r.text()
    );
    let err = parse_json(last.as_bytes());
    assert!(str_of(&err["error"], "message").is_some(), "{last}");
    assert!(
        !events.iter().any(|e| e.data.as_deref() == Some("[DONE]")),
        "a cut stream must not end in [DONE]: {}",
        r.text()
    );
    assert!(
        events.len() > 2,
        "some content came through before the cut: {}",
        r.text()
    );

    let r = roundtrip(
        s.gw.addr,
        &anthropic_post(MESSAGES, &messages_body("cut-claude", true), ""),
    );
    assert_stream_head(&r);
    let events = sse_events(&r.body);
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last.event.as_deref(), Some("error"), "{}", r.text());
    let err = parse_json(last.data.as_deref().unwrap_or("").as_bytes());
    assert_eq!(str_of(&err, "type"), Some("error"), "{}", r.text());
    assert!(
        !events
            .iter()
            .any(|e| e.event.as_deref() == Some("message_stop")),
        "a cut stream must not end in message_stop: {}",
        r.text()
    );
}

#[test]
fn cut_stream_leaves_the_client_connection_usable() {
    let s = setup();
    let mut c = s.gw.connect();
    c.send(&post(CHAT, TOKEN, &chat_body("cut-gpt", true), ""))
        .expect("send");
    let r = c.response();
    assert!(contains(&r.body, b"data: {\"error\""), "{}", r.text());
    c.send(&post(CHAT, TOKEN, &chat_body("gpt-test", false), ""))
        .expect("send");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.dump());
}

#[test]
fn streams_relay_upstream_bytes_unchanged() {
    let events = {
        let mut e = chat_chunk_events("gpt-upstream");
        e.push(": keep-alive comment\n\n".into());
        e.push("data: [DONE]\n\n".into());
        e
    };
    let upstream: String = events.concat();
    let capture = Capture::fixed(Reply::Sse(events));
    let gw = gateway_over(&capture);
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", true), ""),
    );
    assert_stream_head(&r);
    let body = r.text();
    let (first, rest) = body.split_once("\n\n").expect("trace event");
    let trace = parse_json(first.strip_prefix("data: ").expect("data:").as_bytes());
    check_trace(&trace, &r, "gpt-test", "oai");
    assert_eq!(rest, upstream, "the upstream's bytes were changed");
}

#[test]
fn upstream_connections_are_reused() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    for i in 0..5 {
        // A fresh client connection each time: the pool is the gateway's, not the client's.
        let stream = i % 2 == 1;
        let r = roundtrip(
            gw.addr,
            &post(CHAT, TOKEN, &chat_body("gpt-test", stream), ""),
        );
        assert_eq!(r.status, 200, "request {i}: {}", r.dump());
    }
    assert_eq!(capture.requests().len(), 5);
    assert_eq!(
        capture.connections(),
        1,
        "5 sequential requests opened {} upstream connections",
        capture.connections()
    );
    let conns: Vec<usize> = capture.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0, 0, 0, 0]);
}

#[test]
fn models_list_is_the_projects() {
    let s = setup();
    let ids = |token: &str, anthropic: bool| -> Vec<String> {
        let req = if anthropic {
            format!(
                "GET /v1/models HTTP/1.1\r\nHost: gw\r\nx-api-key: {token}\r\nanthropic-version: 2023-06-01\r\n\r\n"
            )
            .into_bytes()
        } else {
            get("/v1/models", token)
        };
        let r = roundtrip(s.gw.addr, &req);
        assert_eq!(r.status, 200, "{}", r.dump());
        assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
        let v = r.json();
        if !anthropic {
            assert_eq!(str_of(&v, "object"), Some("list"), "{}", r.dump());
        }
        v["data"]
            .as_array()
            .expect("data array")
            .iter()
            .map(|m| str_of(m, "id").unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        ids(TOKEN, false),
        ["gpt-test", "claude-test", "cut-gpt", "cut-claude"]
    );
    assert_eq!(ids("sk-lr-other", false), ["gpt-test"]);
    assert_eq!(
        ids(TOKEN, true),
        ["gpt-test", "claude-test", "cut-gpt", "cut-claude"]
    );
    let r = roundtrip(s.gw.addr, &get("/v1/models", "sk-lr-nobody"));
    assert_error(&r, 401, Shape::OpenAi, "authentication_error");
}

fn scrape(admin: std::net::SocketAddr) -> Response {
    roundtrip(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    )
}

fn metric(text: &str, name: &str) -> Option<f64> {
    common::metric_sum(text, name)
}

#[test]
fn admin_metrics_is_prometheus_text() {
    let s = setup();
    let admin = s.gw.admin.expect("admin listener");
    let r = scrape(admin);
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}",
        r.dump()
    );
    let before = metric(&r.text(), "switchyard_requests_total")
        .unwrap_or_else(|| panic!("no switchyard_requests_total sample:\n{}", r.text()));
    assert!(r
        .text()
        .contains("# TYPE switchyard_requests_total counter"));

    // Three requests on one connection: when the third is answered, the first two have been
    // counted (one worker handles a connection's requests in order).
    let mut c = s.gw.connect();
    for _ in 0..3 {
        c.send(&get("/v1/models", TOKEN)).expect("send");
        assert_eq!(c.response().status, 200);
    }
    let r = scrape(admin);
    let after = metric(&r.text(), "switchyard_requests_total").expect("sample");
    assert!(
        (2.0..=3.0).contains(&(after - before)),
        "requests_total went {before} -> {after} over 3 requests"
    );

    let r = roundtrip(admin, b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.dump());
}

#[test]
fn embedded_config_serves_with_the_dev_token() {
    let gw = Server::serve_embedded();
    let r = roundtrip(
        gw.addr,
        &post(CHAT, "sk-lr-dev", &chat_body("mock-small", true), ""),
    );
    assert_stream_head(&r);
    let events = sse_events(&r.body);
    check_trace(&data_trace(&events[0]), &r, "mock-small", "mock");
    assert_eq!(
        events.last().and_then(|e| e.data.as_deref()),
        Some("[DONE]")
    );
}

/// [`standard_config`] over `capture` with upstream deadlines far above what the tests wait,
/// so anything that ends an upstream exchange sooner is not a timeout.
fn patient_gateway(capture: &Capture) -> Server {
    let cfg = standard_config(&capture.openai_base(), &capture.anthropic_base()).replace(
        "first_byte_timeout_ms = 1000",
        "first_byte_timeout_ms = 10000\nstream_idle_timeout_ms = 10000",
    );
    Server::serve(&cfg, &key_env())
}

#[test]
fn client_disconnect_before_first_byte_cancels_the_upstream_request() {
    let capture = Capture::fixed(Reply::Hang);
    let gw = patient_gateway(&capture);
    let mut c = gw.connect();
    c.send(&post(CHAT, TOKEN, &chat_body("gpt-test", true), ""))
        .expect("send");
    capture
        .wait_request(Duration::from_secs(5))
        .expect("the request reached the upstream");
    drop(c);
    let start = Instant::now();
    let closed = capture.wait_closed(Duration::from_secs(5));
    assert!(
        closed.is_some() && start.elapsed() < Duration::from_secs(2),
        "the upstream request outlived its client by {:?} (first_byte_timeout is 10 s)",
        start.elapsed()
    );
}

#[test]
fn client_disconnect_mid_stream_cancels_the_upstream_request() {
    let capture = Capture::fixed(Reply::SseStall(chat_chunk_events("gpt-upstream")));
    let gw = patient_gateway(&capture);
    let mut c = gw.connect();
    c.send(&post(CHAT, TOKEN, &chat_body("gpt-test", true), ""))
        .expect("send");
    // The stream is flowing: the upstream's last event reached the client.
    c.read_until(b" capture")
        .unwrap_or_else(|got| panic!("stream did not start: {:?}", String::from_utf8_lossy(&got)));
    drop(c);
    let start = Instant::now();
    let closed = capture.wait_closed(Duration::from_secs(5));
    assert!(
        closed.is_some() && start.elapsed() < Duration::from_secs(2),
        "the upstream stream outlived its client by {:?} (stream_idle_timeout is 10 s)",
        start.elapsed()
    );
}

#[test]
fn large_bodies_and_split_chunks_relay_exactly() {
    // A 200 KB completion, and a stream whose events are larger than one relay read, so
    // upstream chunks arrive split across reads.
    let big_text = "lorem ipsum ".repeat(200 * 1024 / 12);
    let json = format!(
        r#"{{"id":"x","object":"chat.completion","model":"gpt-upstream","choices":[{{"index":0,"message":{{"role":"assistant","content":"{big_text}"}},"finish_reason":"stop"}}]}}"#
    );
    let events: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "data: {{\"object\":\"chat.completion.chunk\",\"n\":{i},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
                "x".repeat(40 * 1024)
            )
        })
        .chain(std::iter::once("data: [DONE]\n\n".to_string()))
        .collect();
    let upstream_stream = events.concat();
    let (json2, events2) = (json.clone(), events.clone());
    let capture = Capture::start(move |req| {
        if req.json().get("stream").and_then(|s| s.as_bool()) == Some(true) {
            Reply::Sse(events2.clone())
        } else {
            Reply::Json(200, json2.clone())
        }
    });
    let gw = gateway_over(&capture);
    let mut c = gw.connect();
    c.send(&post(CHAT, TOKEN, &chat_body("gpt-test", false), ""))
        .expect("send");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.body == json.as_bytes(), "the 200 KB body was changed");
    c.send(&post(
        CHAT,
        TOKEN,
        &chat_body("gpt-test", true),
        "x-routerly-trace: off\r\n",
    ))
    .expect("send");
    let r = c.response();
    assert_stream_head(&r);
    assert!(
        r.body == upstream_stream.as_bytes(),
        "the stream was changed: {} bytes relayed, {} sent",
        r.body.len(),
        upstream_stream.len()
    );
}

#[test]
fn close_delimited_and_length_delimited_upstream_streams_relay_whole() {
    let events = {
        let mut e = chat_chunk_events("gpt-upstream");
        e.push("data: [DONE]\n\n".into());
        e.concat()
    };
    for (name, head) in [
        (
            "close-delimited",
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                .to_string(),
        ),
        (
            "content-length",
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
                events.len()
            ),
        ),
    ] {
        let mut raw = head.into_bytes();
        raw.extend_from_slice(events.as_bytes());
        let capture = Capture::fixed(Reply::Raw(raw));
        let gw = gateway_over(&capture);
        let r = roundtrip(
            gw.addr,
            &post(
                CHAT,
                TOKEN,
                &chat_body("gpt-test", true),
                "x-routerly-no-trace: 1\r\n",
            ),
        );
        assert_stream_head(&r);
        assert_eq!(r.text(), events, "[{name}]");
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let arrived_tx = std::sync::Mutex::new(arrived_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    // The upstream holds its answer until the test has signalled the gateway.
    let capture = Capture::start(move |_| {
        let _ = arrived_tx.lock().map(|t| t.send(()));
        let _ = release_rx
            .lock()
            .map(|r| r.recv_timeout(Duration::from_secs(10)));
        Reply::Json(200, chat_completion_json("gpt-upstream"))
    });
    let mut gw = gateway_over(&capture); // drain_timeout_ms = 2000
    let addr = gw.addr;
    let client = std::thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.send(&post(CHAT, TOKEN, &chat_body("gpt-test", false), ""))
            .map_err(|e| e.to_string())?;
        c.read_response().map_err(|e| describe(&e))
    });
    arrived_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("request in flight");
    gw.signal(libc::SIGTERM);
    let signalled = Instant::now();
    // Let the upstream answer only once the gateway is draining, which its admin `/ready`
    // reports (503) from the moment the signal is handled.
    let admin = gw.admin.expect("admin listener");
    loop {
        let r = roundtrip(admin, b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n");
        if r.status == 503 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.dump());
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "/ready still 200 5 s after SIGTERM"
        );
    }
    release_tx.send(()).expect("release");
    let answer = client.join().expect("client thread");
    let status = gw.wait().expect("exit status");
    let took = signalled.elapsed();
    match answer {
        Ok(r) => assert_eq!(r.status, 200, "{}", r.dump()),
        Err(e) => panic!(
            "the request in flight at SIGTERM was not finished: {e} (gateway exited {status:?} after {took:?}; drain_timeout is 2 s)"
        ),
    }
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");
}
