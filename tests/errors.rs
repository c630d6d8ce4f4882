//! The contract's error table (`gateway.md`, "Errors"), row by row, on an OpenAI route and an
//! Anthropic route: status, body shape and type, and a UUIDv7 `x-routerly-trace-id` on every
//! error. The provider is a capture upstream, so the upstream rows fail on demand.

mod common;

use common::*;
use simd_json::prelude::*;
use std::time::{Duration, Instant};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// An Anthropic-SDK-style POST: `x-api-key` and `anthropic-version`.
fn anthropic_post(path: &str, key: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A POST with no credentials at all.
fn anonymous_post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Row {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    shape: Shape,
    ty: &'static str,
}

fn row(name: &'static str, request: Vec<u8>, status: u16, shape: Shape, ty: &'static str) -> Row {
    Row {
        name,
        request,
        status,
        shape,
        ty,
    }
}

/// The rows a client causes, answered before any provider is asked.
fn client_rows() -> Vec<Row> {
    use Shape::{Anthropic as A, OpenAi as O};
    let chat = chat_body("gpt-test", false);
    let msgs = messages_body("claude-test", false);
    let bad_json = r#"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}"#;
    let no_messages = r#"{"model":"gpt-test","max_tokens":5}"#;
    let dup_model = r#"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"model":"claude-test","max_tokens":5}"#;
    let big_head = |path: &str, anthropic: bool| {
        let auth = if anthropic {
            "x-api-key: sk-lr-test\r\nanthropic-version: 2023-06-01\r\n".to_string()
        } else {
            format!("Authorization: Bearer {TOKEN}\r\n")
        };
        format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\n{auth}X-Pad: {}\r\nContent-Length: 2\r\n\r\n{{}}",
            "p".repeat(6000)
        )
        .into_bytes()
    };
    let big_body = |path: &str, anthropic: bool| {
        let auth = if anthropic {
            "x-api-key: sk-lr-test\r\nanthropic-version: 2023-06-01\r\n".to_string()
        } else {
            format!("Authorization: Bearer {TOKEN}\r\n")
        };
        // Declared only: the gateway must refuse on the header, before reading the body.
        format!("POST {path} HTTP/1.1\r\nHost: gw\r\n{auth}Content-Length: 1000000\r\n\r\n")
            .into_bytes()
    };
    vec![
        // 400
        row("bad JSON", post(CHAT, TOKEN, bad_json, ""), 400, O, "invalid_request_error"),
        row(
            "bad JSON",
            anthropic_post(MESSAGES, TOKEN, bad_json),
            400,
            A,
            "invalid_request_error",
        ),
        row(
            "missing messages",
            post(CHAT, TOKEN, no_messages, ""),
            400,
            O,
            "invalid_request_error",
        ),
        row(
            "missing messages",
            anthropic_post(MESSAGES, TOKEN, no_messages),
            400,
            A,
            "invalid_request_error",
        ),
        // 411: a POST with neither Content-Length nor chunked framing.
        row(
            "POST without a length",
            format!("POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
                .into_bytes(),
            411,
            O,
            "invalid_request_error",
        ),
        row(
            "POST without a length",
            format!("POST {MESSAGES} HTTP/1.1\r\nHost: gw\r\nx-api-key: {TOKEN}\r\nanthropic-version: 2023-06-01\r\n\r\n")
                .into_bytes(),
            411,
            A,
            "invalid_request_error",
        ),
        row(
            "duplicate top-level model",
            post(CHAT, TOKEN, dup_model, ""),
            400,
            O,
            "invalid_request_error",
        ),
        row(
            "duplicate top-level model",
            anthropic_post(MESSAGES, TOKEN, dup_model),
            400,
            A,
            "invalid_request_error",
        ),
        // 401
        row("missing token", anonymous_post(CHAT, &chat), 401, O, "authentication_error"),
        row(
            "missing token",
            anonymous_post(MESSAGES, &msgs),
            401,
            A,
            "authentication_error",
        ),
        row(
            "bad token",
            post(CHAT, "sk-lr-wrong", &chat, ""),
            401,
            O,
            "authentication_error",
        ),
        row(
            "bad token (Bearer)",
            post(MESSAGES, "sk-lr-wrong", &msgs, ""),
            401,
            A,
            "authentication_error",
        ),
        row(
            "bad token (x-api-key)",
            anthropic_post(MESSAGES, "sk-lr-wrong", &msgs),
            401,
            A,
            "authentication_error",
        ),
        row(
            "not a Bearer token",
            format!(
                "POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Basic {TOKEN}\r\nContent-Length: {}\r\n\r\n{chat}",
                chat.len()
            )
            .into_bytes(),
            401,
            O,
            "authentication_error",
        ),
        // 403: `other` lists sk-lr-other only; `default` lists sk-lr-test only.
        row(
            "slug the token may not use",
            post("/projects/default/v1/chat/completions", "sk-lr-other", &chat, ""),
            403,
            O,
            "permission_error",
        ),
        row(
            "slug the token may not use",
            anthropic_post("/projects/other/v1/messages", TOKEN, &msgs),
            403,
            A,
            "permission_error",
        ),
        row(
            "unknown slug",
            post("/projects/nobody/v1/chat/completions", TOKEN, &chat, ""),
            403,
            O,
            "permission_error",
        ),
        // 404
        row("unknown route", get("/v1/nope", TOKEN), 404, O, "not_found_error"),
        row(
            "unknown route",
            post("/v1/chat/completion", TOKEN, &chat, ""),
            404,
            O,
            "not_found_error",
        ),
        row(
            "unknown route",
            anthropic_post("/v1/messages/nope", TOKEN, &msgs),
            404,
            A,
            "not_found_error",
        ),
        // 413
        row("body too large", big_body(CHAT, false), 413, O, "invalid_request_error"),
        row("body too large", big_body(MESSAGES, true), 413, A, "request_too_large"),
        // 431
        row("head too large", big_head(CHAT, false), 431, O, "invalid_request_error"),
        row("head too large", big_head(MESSAGES, true), 431, A, "request_too_large"),
        // 429 (budget or rate limit): not implemented yet — no `budget` policy or rate limiter
        // exists in the gateway, so there is nothing to trigger. Row skipped on purpose.
    ]
}

#[test]
fn client_error_rows() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let mut failures = Vec::new();
    let mut ids = Vec::new();
    let rows = client_rows();
    for r in &rows {
        let mut c = gw.connect();
        let _ = c.send(&r.request);
        let got = match c.read_response() {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("[{} {:?}] {}", r.name, r.shape, describe(&e)));
                continue;
            }
        };
        let outcome = std::panic::catch_unwind(|| assert_error(&got, r.status, r.shape, r.ty));
        match outcome {
            Ok(()) => ids.push(got.header("x-routerly-trace-id").unwrap_or("").to_string()),
            Err(_) => failures.push(format!(
                "[{} {:?}] want {} {}, got:\n{}",
                r.name,
                r.shape,
                r.status,
                r.ty,
                got.dump()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "trace ids repeat: {ids:?}");
    assert!(
        capture.requests().is_empty(),
        "a rejected request reached the provider: {:?}",
        capture.requests()
    );
}

#[test]
fn every_candidate_failed_is_502_api_error() {
    let capture = Capture::fixed(Reply::Json(
        500,
        r#"{"error":{"message":"upstream exploded","type":"server_error"}}"#.into(),
    ));
    let gw = gateway_over(&capture);

    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    let r = roundtrip(
        gw.addr,
        &anthropic_post(MESSAGES, TOKEN, &messages_body("claude-test", false)),
    );
    assert_error(&r, 502, Shape::Anthropic, "api_error");
    // A stream request fails the same way: nothing was sent before the failure.
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", true), ""),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");

    // Every model of the project is a candidate whatever the client's protocol: each request
    // tried the model it named, then failed over to the other one, translated.
    let paths: Vec<String> = capture
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/messages",
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/v1/messages",
        ]
    );
}

#[test]
fn upstream_429_on_every_candidate_is_502() {
    let capture = Capture::fixed(Reply::Json(
        429,
        r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#.into(),
    ));
    let gw = gateway_over(&capture);
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");
}

#[test]
fn garbage_upstream_head_is_502() {
    let capture = Capture::fixed(Reply::Raw(b"NOT HTTP AT ALL\r\n\r\n".to_vec()));
    let gw = gateway_over(&capture);
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    let r = roundtrip(
        gw.addr,
        &anthropic_post(MESSAGES, TOKEN, &messages_body("claude-test", false)),
    );
    assert_error(&r, 502, Shape::Anthropic, "api_error");
}

#[test]
fn unreachable_provider_is_502() {
    // Bind then drop a listener: its port refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let gw = Server::serve(&standard_config(&format!("{base}/v1"), &base), &key_env());
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");
}

#[test]
fn upstream_timeout_is_504_timeout_error() {
    let capture = Capture::fixed(Reply::Hang);
    let gw = gateway_over(&capture); // first_byte_timeout_ms = 1000
    for (req, shape) in [
        (
            post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
            Shape::OpenAi,
        ),
        (
            anthropic_post(MESSAGES, TOKEN, &messages_body("claude-test", true)),
            Shape::Anthropic,
        ),
    ] {
        let start = Instant::now();
        let r = roundtrip(gw.addr, &req);
        let took = start.elapsed();
        assert_error(&r, 504, shape, "timeout_error");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(4000),
            "504 after {took:?}; first_byte_timeout is 1000 ms"
        );
    }
    // Each request timed out on both of the project's models (the other one translated).
    assert_eq!(capture.requests().len(), 4);
}

/// Two OpenAI providers: `bad` (answers `bad_reply`) and `good`; the project prefers
/// `gpt-bad`.
fn failover_config(bad: &Capture, good: &Capture) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
drain_timeout_ms = 2000

[[providers]]
id = "bad"
kind = "openai"
base_url = "{}"
api_key_env = "TEST_OPENAI_KEY"
first_byte_timeout_ms = 1000

[[providers]]
id = "good"
kind = "openai"
base_url = "{}"
api_key_env = "TEST_OPENAI_KEY"

[[models]]
id = "gpt-bad"
provider = "bad"

[[models]]
id = "gpt-good"
provider = "good"

[[projects]]
slug = "default"
tokens = ["sk-lr-test"]
models = ["gpt-bad", "gpt-good"]
"#,
        bad.openai_base(),
        good.openai_base()
    )
}

fn check_failover(bad_reply: Reply, why: &str) {
    let bad = Capture::fixed(bad_reply);
    let good = Capture::ok();
    let gw = Server::serve(&failover_config(&bad, &good), &key_env());

    // Non-streaming: the answer is the good provider's.
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-bad", false), ""),
    );
    assert_eq!(r.status, 200, "{why}: {}", r.dump());
    assert_eq!(
        r.json().get("model").and_then(|m| m.as_str()),
        Some("gpt-good"),
        "{why}: {}",
        r.dump()
    );
    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));

    // Streaming: the trace names the model that answered and lists the failed attempt.
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("gpt-bad", true), ""));
    assert_eq!(r.status, 200, "{why}: {}", r.dump());
    let events = sse_events(&r.body);
    let first = events
        .first()
        .and_then(|e| e.data.clone())
        .unwrap_or_default();
    let trace = parse_json(first.as_bytes());
    assert_eq!(trace.get("type").and_then(|t| t.as_str()), Some("trace"));
    assert_eq!(
        trace.get("model").and_then(|t| t.as_str()),
        Some("gpt-good"),
        "{why}: {first}"
    );
    assert_eq!(
        trace.get("provider").and_then(|t| t.as_str()),
        Some("good"),
        "{why}: {first}"
    );
    let attempts = trace
        .get("attempts")
        .and_then(|a| a.as_array())
        .unwrap_or_else(|| panic!("{why}: no attempts array in the trace: {first}"));
    assert_eq!(attempts.len(), 1, "{why}: {first}");
    assert_eq!(
        attempts[0].get("model").and_then(|m| m.as_str()),
        Some("gpt-bad"),
        "{why}: {first}"
    );
    assert!(
        attempts[0].get("error").and_then(|m| m.as_str()).is_some(),
        "{why}: the failed attempt has no reason: {first}"
    );
    assert_eq!(
        events.last().and_then(|e| e.data.as_deref()),
        Some("[DONE]"),
        "{why}: {}",
        r.text()
    );

    assert_eq!(
        bad.requests().len(),
        2,
        "{why}: the bad provider was tried first"
    );
    assert_eq!(good.requests().len(), 2, "{why}");
}

#[test]
fn failover_after_500() {
    check_failover(
        Reply::Json(500, r#"{"error":{"message":"boom"}}"#.into()),
        "500",
    );
}

#[test]
fn failover_after_429() {
    check_failover(
        Reply::Json(429, r#"{"error":{"message":"slow down"}}"#.into()),
        "429",
    );
}

#[test]
fn failover_after_first_byte_timeout() {
    check_failover(Reply::Hang, "timeout");
}

#[test]
fn no_failover_after_the_first_byte() {
    // The bad provider starts a stream and dies: the client already has bytes, so the
    // gateway must end the stream with an error event, not switch to the good provider.
    let bad = Capture::fixed(Reply::SseCut(chat_chunk_events("gpt-bad")));
    let good = Capture::ok();
    let gw = Server::serve(&failover_config(&bad, &good), &key_env());
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("gpt-bad", true), ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    let events = sse_events(&r.body);
    let last = events
        .last()
        .and_then(|e| e.data.clone())
        .unwrap_or_default();
    assert!(
        last.starts_with("{\"error\""),
        "the cut stream does not end with an error event: {}",
        r.text()
    );
    assert!(
        !events.iter().any(|e| e.data.as_deref() == Some("[DONE]")),
        "a cut stream must not end with [DONE]: {}",
        r.text()
    );
    assert!(
        good.requests().is_empty(),
        "failed over after the first byte"
    );
}
