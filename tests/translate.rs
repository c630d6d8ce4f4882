//! Translated routes over real sockets (`gateway.md`, "Translation"): a client of one protocol
//! served by a provider of the other, through the real binary, with an in-process upstream that
//! records what the gateway sends and answers as each test scripts it. What the official SDKs
//! see is `tests/sdk/test_translation.py`'s; here: what reaches the provider (path, auth,
//! body), refused and dropped fields, errors re-shaped, and stream ends that must not look
//! whole (the upstream's error event, a stream without its end event, a stall), and a client
//! that leaves cancelling the upstream.

mod common;

use common::*;
use simd_json::prelude::*;
use std::time::{Duration, Instant};

/// Anthropic stream events of a text answer, without `message_stop` when `end` is false.
fn anthropic_text_events(end: bool) -> Vec<String> {
    let mut v = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":11,\"cache_read_input_tokens\":40,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello \\\"world\\\"\"}}\n\n".into(),
    ];
    if end {
        v.push(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                .into(),
        );
        v.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n".into());
        v.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    }
    v
}

/// The `data:` payloads of an SSE body that parse as JSON.
fn data_json(body: &[u8]) -> Vec<simd_json::OwnedValue> {
    sse_events(body)
        .into_iter()
        .filter_map(|e| e.data)
        .filter(|d| d != "[DONE]")
        .map(|d| parse_json(d.as_bytes()))
        .collect()
}

fn text_of_chat_stream(body: &[u8]) -> String {
    data_json(body)
        .iter()
        .filter_map(|v| {
            // A usage chunk has `choices: []`, which indexing would panic on.
            let choice = v.get("choices")?.as_array()?.first()?;
            choice
                .get("delta")?
                .get("content")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn chat_client_reaches_an_anthropic_model_with_the_providers_auth_and_a_messages_body() {
    let capture = Capture::start(|req: &Captured| match req.wants_stream() {
        true => Reply::Sse(anthropic_text_events(true)),
        false => Reply::Json(200, anthropic_message_json("claude-test")),
    });
    let gw = gateway_over(&capture);
    let body = r#"{"model":"claude-test","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there"}],"stop":["END"]}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["object"].as_str(),
        Some("chat.completion"),
        "{}",
        r.text()
    );
    assert_eq!(v["model"].as_str(), Some("claude-test"));
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str(),
        Some("Hi from capture")
    );
    assert_eq!(v["choices"][0]["finish_reason"].as_str(), Some("stop"));
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(3));
    assert_eq!(v["usage"]["completion_tokens"].as_u64(), Some(3));

    let seen = capture.requests();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let up = &seen[0];
    assert_eq!(up.path(), "/v1/messages", "{}", up.head);
    assert_eq!(up.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert!(up.header("anthropic-version").is_some(), "{}", up.head);
    assert!(
        up.header("authorization").is_none(),
        "client auth leaked: {}",
        up.head
    );
    assert!(
        !up.head.contains(TOKEN),
        "the client token reached the provider"
    );
    let b = up.json();
    assert_eq!(b["model"].as_str(), Some("claude-test"));
    assert_eq!(
        b["max_tokens"].as_u64(),
        Some(4096),
        "the default output bound: {b:?}"
    );
    assert_eq!(b["stop_sequences"][0].as_str(), Some("END"), "{b:?}");
    assert!(format!("{:?}", b["system"]).contains("Be brief."), "{b:?}");
    assert_eq!(b["messages"][0]["role"].as_str(), Some("user"), "{b:?}");
    assert!(
        b.get("stop").is_none() && b.get("messages").is_some(),
        "{b:?}"
    );
}

#[test]
fn messages_client_reaches_an_openai_model_with_usage_asked_for_on_streams() {
    let capture = Capture::start(ok_reply);
    let gw = gateway_over(&capture);
    let r = roundtrip(
        gw.addr,
        &post(MESSAGES, TOKEN, &messages_body("gpt-test", true), ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let events = sse_events(&r.body);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(
        names.first(),
        Some(&"ping"),
        "the trace ping first: {names:?}"
    );
    assert_eq!(names.get(1), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let text: String = data_json(&r.body)
        .iter()
        .filter(|v| v["type"].as_str() == Some("content_block_delta"))
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hi from capture");
    let seen = capture.requests();
    let up = &seen[0];
    assert_eq!(up.path(), "/v1/chat/completions", "{}", up.head);
    assert_eq!(
        up.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert!(up.header("x-api-key").is_none(), "{}", up.head);
    let b = up.json();
    assert_eq!(b["model"].as_str(), Some("gpt-upstream"));
    assert_eq!(
        b["stream_options"]["include_usage"].as_bool(),
        Some(true),
        "{b:?}"
    );
    assert_eq!(
        b["messages"][0]["content"]
            .as_str()
            .map(|s| s.contains("Hello there")),
        Some(true),
        "{b:?}"
    );
}

#[test]
fn a_field_the_provider_cannot_honour_is_refused_before_any_upstream() {
    let capture = Capture::start(ok_reply);
    let gw = gateway_over(&capture);
    let body = r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}],"n":2}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_error(&r, 400, Shape::OpenAi, "invalid_request_error");
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        msg.contains("`n`"),
        "the message does not name the field: {msg}"
    );
    assert!(capture.requests().is_empty(), "{:#?}", capture.requests());
}

#[test]
fn advisory_fields_are_dropped_and_named_in_the_header_and_the_trace() {
    let capture = Capture::start(|_: &Captured| Reply::Sse(anthropic_text_events(true)));
    let gw = gateway_over(&capture);
    let body = r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}],"stream":true,"prompt_cache_key":"k1","service_tier":"auto"}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let dropped = r
        .header("x-routerly-dropped")
        .unwrap_or_default()
        .to_owned();
    for f in ["prompt_cache_key", "service_tier"] {
        assert!(
            dropped.contains(f),
            "{f} not named in x-routerly-dropped: {dropped:?}"
        );
    }
    let first = &data_json(&r.body)[0];
    assert_eq!(first["type"].as_str(), Some("trace"), "{}", r.text());
    let listed = format!("{:?}", first["dropped"]);
    assert!(listed.contains("prompt_cache_key"), "trace: {}", r.text());
    let b = capture.requests()[0].json();
    assert!(
        b.get("prompt_cache_key").is_none() && b.get("service_tier").is_none(),
        "{b:?}"
    );
    // The passthrough route names nothing.
    let r = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("gpt-test", false), ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-routerly-dropped").is_none());
}

#[test]
fn an_upstream_4xx_keeps_its_status_in_the_clients_shape_and_never_echoes_the_key() {
    let capture = Capture::start(|req: &Captured| {
        let text = String::from_utf8_lossy(&req.body).to_string();
        if text.contains("echo-key") {
            Reply::Json(
                400,
                format!(
                    r#"{{"type":"error","error":{{"type":"invalid_request_error","message":"bad key {ANTHROPIC_KEY}"}}}}"#
                ),
            )
        } else {
            Reply::Json(
                422,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content: too odd"}}"#.into(),
            )
        }
    });
    let gw = gateway_over(&capture);
    let body = r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_error(&r, 422, Shape::OpenAi, "invalid_request_error");
    assert!(
        r.text().contains("too odd"),
        "the provider's message is kept: {}",
        r.text()
    );
    let body = r#"{"model":"claude-test","messages":[{"role":"user","content":"echo-key"}]}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        !r.text().contains("SECRET456"),
        "the provider key leaked: {}",
        r.text()
    );
}

#[test]
fn an_upstream_error_event_mid_stream_becomes_the_clients_error_event() {
    let capture = Capture::start(|req: &Captured| {
        if req.path().ends_with("/messages") {
            let mut evs = anthropic_text_events(false);
            evs.push("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into());
            Reply::Sse(evs)
        } else {
            let mut evs = chat_chunk_events("gpt-upstream");
            evs.push(
                "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n".into(),
            );
            Reply::Sse(evs)
        }
    });
    let gw = gateway_over(&capture);
    // Anthropic provider, chat client: text, then `data: {"error":...}`, never `[DONE]`.
    let body =
        r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 200);
    assert_eq!(text_of_chat_stream(&r.body), "Hello \"world\"");
    let last = data_json(&r.body).pop().expect("events");
    assert!(
        last.get("error").is_some(),
        "the stream did not end in an error: {}",
        r.text()
    );
    assert!(
        !r.text().contains("[DONE]"),
        "a cut stream looked whole: {}",
        r.text()
    );
    // OpenAI provider, messages client: `event: error` last, no `message_stop`.
    let r = roundtrip(
        gw.addr,
        &post(MESSAGES, TOKEN, &messages_body("gpt-test", true), ""),
    );
    assert_eq!(r.status, 200);
    let events = sse_events(&r.body);
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("error"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("message_stop"), "{}", r.text());
}

#[test]
fn a_stream_that_ends_without_its_end_event_is_cut_not_whole() {
    let capture = Capture::start(|_: &Captured| Reply::Sse(anthropic_text_events(false)));
    let gw = gateway_over(&capture);
    let body =
        r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 200);
    assert_eq!(text_of_chat_stream(&r.body), "Hello \"world\"");
    let last = data_json(&r.body).pop().expect("events");
    assert!(last.get("error").is_some(), "{}", r.text());
    assert!(!r.text().contains("[DONE]"), "{}", r.text());
}

#[test]
fn client_disconnect_mid_translated_stream_cancels_the_upstream_request() {
    let capture = Capture::fixed(Reply::SseStall(anthropic_text_events(false)));
    let cfg = standard_config(&capture.openai_base(), &capture.anthropic_base()).replace(
        "first_byte_timeout_ms = 1000",
        "first_byte_timeout_ms = 10000\nstream_idle_timeout_ms = 10000",
    );
    let gw = Server::serve(&cfg, &key_env());
    let mut c = gw.connect();
    let body =
        r#"{"model":"claude-test","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    c.send(&post(CHAT, TOKEN, body, "")).expect("send");
    c.read_until(b"world")
        .unwrap_or_else(|got| panic!("stream did not start: {:?}", String::from_utf8_lossy(&got)));
    drop(c);
    let start = Instant::now();
    let closed = capture.wait_closed(Duration::from_secs(5));
    assert!(
        closed.is_some() && start.elapsed() < Duration::from_secs(2),
        "the upstream stream outlived its client by {:?}",
        start.elapsed()
    );
}

#[test]
fn count_tokens_for_an_openai_model_is_counted_here_with_its_encoding() {
    let capture = Capture::start(|_: &Captured| Reply::Json(500, "{}".into()));
    let gw = gateway_over(&capture);
    let text = "Count these words, exactly: naïve café déjà vu. The tokenizer, not a guess, \
        decides how many there are; a byte count or a scaled estimate would disagree.";
    let body = format!(
        r#"{{"model":"gpt-test","system":"Be brief.","messages":[{{"role":"user","content":"{text}"}}]}}"#
    );
    let r = roundtrip(
        gw.addr,
        &post(
            "/v1/messages/count_tokens",
            TOKEN,
            &body,
            "anthropic-version: 2023-06-01\r\n",
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The cookbook's framing in o200k_base (gpt-upstream is not a cl100k name): 3 + role per
    // message, its text, and 3 priming the reply.
    let bpe = tiktoken_rs::o200k_base().unwrap();
    let n = |s: &str| bpe.encode_ordinary(s).len() as u64;
    let want = (3 + n("system") + n("Be brief.")) + (3 + n("user") + n(text)) + 3;
    assert_eq!(
        r.json()["input_tokens"].as_u64(),
        Some(want),
        "{}",
        r.text()
    );
    assert!(
        capture.requests().is_empty(),
        "an OpenAI model is counted without calling its provider"
    );

    // A body the tokenizer cannot read is the client's 400, in Anthropic's shape.
    let bad = r#"{"model":"gpt-test","messages":"not a list"}"#;
    let r = roundtrip(
        gw.addr,
        &post(
            "/v1/messages/count_tokens",
            TOKEN,
            bad,
            "anthropic-version: 2023-06-01\r\n",
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"].as_str(), Some("error"), "{}", r.text());
    assert_eq!(v["error"]["type"].as_str(), Some("invalid_request_error"));
}
