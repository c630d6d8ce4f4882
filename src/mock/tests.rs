//! Shape tests: every body and every stream event is parsed back with simd-json and checked
//! against the fields the providers' SDK helpers read.

use super::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;

pub(super) fn parse(bytes: &[u8]) -> OwnedValue {
    let mut copy = bytes.to_vec();
    simd_json::to_owned_value(&mut copy)
        .unwrap_or_else(|e| panic!("bad JSON {e}: {}", String::from_utf8_lossy(bytes)))
}

pub(super) fn s<'a>(v: &'a OwnedValue, key: &str) -> &'a str {
    v.get_str(key)
        .unwrap_or_else(|| panic!("missing string {key} in {v}"))
}

pub(super) fn u(v: &OwnedValue, key: &str) -> u64 {
    v.get_u64(key)
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

pub(super) fn at<'a>(v: &'a OwnedValue, path: &[&str]) -> &'a OwnedValue {
    path.iter().fold(v, |v, k| {
        v.get(*k).unwrap_or_else(|| panic!("missing {k} in {v}"))
    })
}

/// One SSE event: its `event:` name (if any), its data, and the delay before it.
#[derive(Debug)]
pub(super) struct Event {
    pub(super) name: Option<String>,
    pub(super) data: String,
    pub(super) delay: Duration,
}

impl Event {
    pub(super) fn json(&self) -> OwnedValue {
        parse(self.data.as_bytes())
    }
}

/// Drains a stream, checking that each call appends exactly one well-framed event.
pub(super) fn drain(stream: &mut MockStream) -> Vec<Event> {
    let mut out = Vec::new();
    let mut events = Vec::new();
    while let Some(delay) = stream.next_event(&mut out) {
        let text = std::str::from_utf8(&out).expect("utf-8");
        let body = text
            .strip_suffix("\n\n")
            .expect("event ends with a blank line");
        assert!(!body.contains("\n\n"), "one event per call: {text:?}");
        let mut name = None;
        let mut data = None;
        for line in body.split('\n') {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                assert!(data.is_none(), "single data line");
                data = Some(d.to_owned());
            } else {
                panic!("unexpected SSE line {line:?}");
            }
        }
        events.push(Event {
            name,
            data: data.expect("data line"),
            delay,
        });
        out.clear();
    }
    assert!(stream.next_event(&mut out).is_none(), "stays finished");
    assert!(out.is_empty());
    events
}

pub(super) fn mock() -> Mock {
    Mock::new(MockOptions::default())
}

pub(super) fn streamed(m: &Mock, endpoint: Endpoint, body: &str) -> (MockReply, Vec<Event>) {
    let mut r = m.reply(endpoint, body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, EVENT_STREAM);
    assert!(r.body.is_empty());
    let events = drain(r.stream.as_mut().expect("stream"));
    (r, events)
}

pub(super) fn ok_body(m: &Mock, endpoint: Endpoint, body: &str) -> OwnedValue {
    let r = m.reply(endpoint, body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, JSON);
    assert!(r.stream.is_none());
    parse(&r.body)
}

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[
    {"role":"system","content":"Be brief."},
    {"role":"user","content":"Say hello to the gateway please"}]}"#;

const EXPECTED_TEXT: &str = "This is a mock reply from Switchyard to: Say hello to the gateway \
                             please lorem ipsum";

#[test]
fn chat_body_shape() {
    let v = ok_body(&mock(), Endpoint::ChatCompletions, CHAT);
    assert!(s(&v, "id").starts_with("chatcmpl-"));
    assert_eq!(s(&v, "id").len(), "chatcmpl-".len() + 32);
    assert_eq!(s(&v, "object"), "chat.completion");
    assert_eq!(s(&v, "model"), "gpt-4o-mini");
    assert!(u(&v, "created") > 1_600_000_000);
    let choices = v.get_array("choices").unwrap();
    assert_eq!(choices.len(), 1);
    let c = &choices[0];
    assert_eq!(u(c, "index"), 0);
    assert_eq!(s(c, "finish_reason"), "stop");
    let msg = c.get("message").unwrap();
    assert_eq!(s(msg, "role"), "assistant");
    assert_eq!(s(msg, "content"), EXPECTED_TEXT);
    let usage = v.get("usage").unwrap();
    // "Be brief." (9) + "Say hello to the gateway please" (31) = 40 bytes -> 10 tokens.
    assert_eq!(u(usage, "prompt_tokens"), 10);
    assert_eq!(u(usage, "completion_tokens"), 16);
    assert_eq!(u(usage, "total_tokens"), 26);
}

#[test]
fn chat_stream_shape() {
    let body = CHAT.replacen("{", "{\"stream\":true,", 1);
    let (r, ev) = streamed(&mock(), Endpoint::ChatCompletions, &body);
    assert_eq!(r.first_byte_delay, Duration::ZERO);
    assert_eq!(ev.len(), 1 + 16 + 2);
    assert!(
        ev.iter().all(|e| e.name.is_none()),
        "chat chunks have no event names"
    );
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let chunks: Vec<OwnedValue> = ev[..ev.len() - 1].iter().map(Event::json).collect();
    let id = s(&chunks[0], "id").to_owned();
    let mut text = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(s(c, "object"), "chat.completion.chunk");
        assert_eq!(s(c, "id"), id);
        assert_eq!(s(c, "model"), "gpt-4o-mini");
        assert!(
            c.get("usage").is_none(),
            "no usage key without include_usage"
        );
        let choice = &c.get_array("choices").unwrap()[0];
        assert_eq!(u(choice, "index"), 0);
        let delta = choice.get("delta").unwrap();
        if i == 0 {
            assert_eq!(s(delta, "role"), "assistant");
        }
        if let Some(t) = delta.get_str("content") {
            text.push_str(t);
        }
        let finish = choice.get("finish_reason").unwrap();
        if i == chunks.len() - 1 {
            assert_eq!(finish.as_str(), Some("stop"));
            assert!(delta.as_object().unwrap().is_empty());
        } else {
            assert!(finish.is_null());
        }
    }
    assert_eq!(text, EXPECTED_TEXT);
    // Words after the first arrive as " word".
    assert_eq!(
        at(&chunks[2], &["choices"])
            .get_idx(0)
            .unwrap()
            .get("delta")
            .unwrap()
            .get_str("content"),
        Some(" is")
    );
}

#[test]
fn chat_stream_include_usage() {
    let body = CHAT.replacen(
        "{",
        "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":4,",
        1,
    );
    let (_, ev) = streamed(&mock(), Endpoint::ChatCompletions, &body);
    assert_eq!(ev.len(), 1 + 4 + 3);
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let chunks: Vec<OwnedValue> = ev[..ev.len() - 1].iter().map(Event::json).collect();
    for c in &chunks[..chunks.len() - 1] {
        assert!(c.get("usage").unwrap().is_null());
    }
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(
        finish.get_array("choices").unwrap()[0].get_str("finish_reason"),
        Some("length"),
        "max_tokens cut the reply"
    );
    let last = chunks.last().unwrap();
    assert!(last.get_array("choices").unwrap().is_empty());
    let usage = last.get("usage").unwrap();
    assert_eq!(u(usage, "completion_tokens"), 4);
    assert_eq!(
        u(usage, "total_tokens"),
        u(usage, "prompt_tokens") + u(usage, "completion_tokens")
    );
}

#[test]
fn chat_bounds() {
    let m = mock();
    let cases: &[(&str, u64, &str)] = &[
        ("\"max_tokens\":5,", 5, "length"),
        ("\"max_completion_tokens\":3,", 3, "length"),
        ("\"max_tokens\":16,", 16, "stop"),
        ("\"max_tokens\":1000,", 16, "stop"),
        ("\"max_tokens\":0,", 1, "length"),
        ("", 16, "stop"),
    ];
    for (extra, words, finish) in cases {
        let v = ok_body(
            &m,
            Endpoint::ChatCompletions,
            &CHAT.replacen("{", &format!("{{{extra}"), 1),
        );
        let c = &v.get_array("choices").unwrap()[0];
        let text = s(c.get("message").unwrap(), "content");
        assert_eq!(text.split(' ').count() as u64, *words, "{extra}");
        assert_eq!(u(v.get("usage").unwrap(), "completion_tokens"), *words);
        assert_eq!(s(c, "finish_reason"), *finish, "{extra}");
    }
    let long = Mock::new(MockOptions {
        reply_tokens: 40,
        ..MockOptions::default()
    });
    let v = ok_body(&long, Endpoint::ChatCompletions, CHAT);
    assert_eq!(u(v.get("usage").unwrap(), "completion_tokens"), 40);
}

#[test]
fn chat_content_parts_and_escaping() {
    let body = r#"{"model":"m","messages":[
        {"role":"user","content":"first turn"},
        {"role":"assistant","content":"ok"},
        {"role":"user","content":[{"type":"text","text":"say \"hi\"\n\ttab\u0001 héllo"},
                                   {"type":"image_url","image_url":{"url":"x"}},
                                   {"type":"text","text":"✓ back\\slash"}]}]}"#;
    let v = ok_body(&mock(), Endpoint::ChatCompletions, body);
    let text = s(
        v.get_array("choices").unwrap()[0].get("message").unwrap(),
        "content",
    );
    assert_eq!(
        text,
        "This is a mock reply from Switchyard to: say \"hi\" tab\u{1} héllo ✓ back\\slash lorem \
         ipsum"
    );
    let stream_body = body.replacen("{", "{\"stream\":true,", 1);
    let (_, ev) = streamed(&mock(), Endpoint::ChatCompletions, &stream_body);
    let joined: String = ev[..ev.len() - 1]
        .iter()
        .filter_map(|e| {
            e.json().get_array("choices").unwrap()[0]
                .get("delta")
                .unwrap()
                .get_str("content")
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(joined, text);
}

const MESSAGES: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,
    "system":[{"type":"text","text":"Be brief."}],
    "messages":[{"role":"user","content":[{"type":"text","text":"Say hello to the gateway please"}]}]}"#;

#[test]
fn messages_body_shape() {
    let v = ok_body(&mock(), Endpoint::Messages, MESSAGES);
    assert!(s(&v, "id").starts_with("msg_"));
    assert_eq!(s(&v, "type"), "message");
    assert_eq!(s(&v, "role"), "assistant");
    assert_eq!(s(&v, "model"), "claude-sonnet-4-5");
    assert_eq!(s(&v, "stop_reason"), "end_turn");
    assert!(v.get("stop_sequence").unwrap().is_null());
    let content = v.get_array("content").unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(s(&content[0], "type"), "text");
    assert_eq!(s(&content[0], "text"), EXPECTED_TEXT);
    let usage = v.get("usage").unwrap();
    assert_eq!(u(usage, "input_tokens"), 10);
    assert_eq!(u(usage, "output_tokens"), 16);
    assert_eq!(u(usage, "cache_read_input_tokens"), 0);
}

#[test]
fn messages_stream_shape() {
    let body = MESSAGES.replacen("{", "{\"stream\":true,", 1);
    let (_, ev) = streamed(&mock(), Endpoint::Messages, &body);
    let names: Vec<&str> = ev
        .iter()
        .map(|e| e.name.as_deref().expect("named"))
        .collect();
    let mut want = vec!["message_start", "content_block_start", "ping"];
    want.extend(std::iter::repeat_n("content_block_delta", 16));
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    let mut text = String::new();
    for e in &ev {
        let v = e.json();
        assert_eq!(
            s(&v, "type"),
            e.name.as_deref().unwrap(),
            "data.type matches event"
        );
        match s(&v, "type") {
            "message_start" => {
                let m = v.get("message").unwrap();
                assert!(s(m, "id").starts_with("msg_"));
                assert_eq!(s(m, "type"), "message");
                assert_eq!(s(m, "role"), "assistant");
                assert_eq!(s(m, "model"), "claude-sonnet-4-5");
                assert!(m.get_array("content").unwrap().is_empty());
                assert!(m.get("stop_reason").unwrap().is_null());
                assert_eq!(u(m.get("usage").unwrap(), "input_tokens"), 10);
            }
            "content_block_start" => {
                assert_eq!(u(&v, "index"), 0);
                let b = v.get("content_block").unwrap();
                assert_eq!((s(b, "type"), s(b, "text")), ("text", ""));
            }
            "content_block_delta" => {
                assert_eq!(u(&v, "index"), 0);
                let d = v.get("delta").unwrap();
                assert_eq!(s(d, "type"), "text_delta");
                text.push_str(s(d, "text"));
            }
            "content_block_stop" => assert_eq!(u(&v, "index"), 0),
            "message_delta" => {
                assert_eq!(s(v.get("delta").unwrap(), "stop_reason"), "end_turn");
                assert!(at(&v, &["delta", "stop_sequence"]).is_null());
                assert_eq!(u(v.get("usage").unwrap(), "output_tokens"), 16);
            }
            "ping" | "message_stop" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(text, EXPECTED_TEXT);
}

#[test]
fn messages_max_tokens() {
    let m = mock();
    let body = MESSAGES
        .replace("1024", "6")
        .replacen("{", "{\"stream\":true,", 1);
    let (_, ev) = streamed(&m, Endpoint::Messages, &body);
    let deltas = ev
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"));
    assert_eq!(deltas.count(), 6);
    let md = ev
        .iter()
        .find(|e| e.name.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(s(md.get("delta").unwrap(), "stop_reason"), "max_tokens");
    assert_eq!(u(md.get("usage").unwrap(), "output_tokens"), 6);

    // Anthropic requires max_tokens.
    let r = m.reply(
        Endpoint::Messages,
        br#"{"model":"c","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400);
    let v = parse(&r.body);
    assert_eq!(s(&v, "type"), "error");
    assert_eq!(s(v.get("error").unwrap(), "type"), "invalid_request_error");
}

#[test]
fn count_tokens() {
    let m = mock();
    let body = br#"{"model":"claude-x","system":"12345678","messages":[{"role":"user","content":"abcdefghi"}]}"#;
    let v = ok_body(
        &m,
        Endpoint::CountTokens,
        std::str::from_utf8(body).unwrap(),
    );
    // 8 + 9 = 17 bytes -> 5 tokens.
    assert_eq!(u(&v, "input_tokens"), 5);
    assert_eq!(v.as_object().unwrap().len(), 1);
    // Streaming flag is ignored; max_tokens is not required.
    let r = m.reply(
        Endpoint::CountTokens,
        br#"{"model":"c","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!((r.status, r.stream.is_none()), (200, true));
}

const RESPONSES: &str = r#"{"model":"gpt-4.1","instructions":"Be brief.",
    "input":[{"role":"user","content":[{"type":"input_text","text":"Say hello to the gateway please"}]}]}"#;

fn check_response_object(v: &OwnedValue, status: &str) {
    assert!(s(v, "id").starts_with("resp_"));
    assert_eq!(s(v, "object"), "response");
    assert_eq!(s(v, "status"), status);
    assert_eq!(s(v, "model"), "gpt-4.1");
    assert!(u(v, "created_at") > 1_600_000_000);
    assert!(v.get_bool("parallel_tool_calls").is_some());
    assert!(v.get_array("tools").is_some());
    assert!(v.get("tool_choice").is_some());
    assert!(v.get_array("output").is_some());
    assert_eq!(s(v, "instructions"), "Be brief.");
    assert!(v.get("error").unwrap().is_null());
}

fn check_message_item(item: &OwnedValue, text: &str, status: &str) {
    assert_eq!(s(item, "type"), "message");
    assert!(s(item, "id").starts_with("msg_"));
    assert_eq!(s(item, "role"), "assistant");
    assert_eq!(s(item, "status"), status);
    let content = item.get_array("content").unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(s(&content[0], "type"), "output_text");
    assert_eq!(s(&content[0], "text"), text);
    assert!(content[0].get_array("annotations").unwrap().is_empty());
}

fn check_response_usage(v: &OwnedValue, output: u64) {
    let usage = v.get("usage").unwrap();
    assert_eq!(u(usage, "input_tokens"), 10);
    assert_eq!(u(usage, "output_tokens"), output);
    assert_eq!(u(usage, "total_tokens"), 10 + output);
    assert_eq!(
        u(usage.get("input_tokens_details").unwrap(), "cached_tokens"),
        0
    );
    assert_eq!(
        u(
            usage.get("output_tokens_details").unwrap(),
            "reasoning_tokens"
        ),
        0
    );
}

#[test]
fn responses_body_shape() {
    let v = ok_body(&mock(), Endpoint::Responses, RESPONSES);
    check_response_object(&v, "completed");
    let output = v.get_array("output").unwrap();
    assert_eq!(output.len(), 1);
    check_message_item(&output[0], EXPECTED_TEXT, "completed");
    check_response_usage(&v, 16);
    assert!(v.get("incomplete_details").unwrap().is_null());

    // A plain string input works too.
    let v = ok_body(
        &mock(),
        Endpoint::Responses,
        r#"{"model":"gpt-4.1","input":"Say hello to the gateway please"}"#,
    );
    let item = &v.get_array("output").unwrap()[0];
    assert_eq!(
        s(&item.get_array("content").unwrap()[0], "text"),
        EXPECTED_TEXT
    );
}

#[test]
fn responses_stream_shape() {
    let body = RESPONSES.replacen("{", "{\"stream\":true,", 1);
    let (_, ev) = streamed(&mock(), Endpoint::Responses, &body);
    let names: Vec<&str> = ev
        .iter()
        .map(|e| e.name.as_deref().expect("named"))
        .collect();
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    want.extend(std::iter::repeat_n("response.output_text.delta", 16));
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, want);

    let mut resp_id = String::new();
    let mut item_id = String::new();
    let mut text = String::new();
    for (i, e) in ev.iter().enumerate() {
        let v = e.json();
        assert_eq!(s(&v, "type"), e.name.as_deref().unwrap());
        assert_eq!(
            u(&v, "sequence_number"),
            i as u64,
            "sequence numbers count up from 0"
        );
        match s(&v, "type") {
            "response.created" | "response.in_progress" => {
                let r = v.get("response").unwrap();
                check_response_object(r, "in_progress");
                assert!(r.get_array("output").unwrap().is_empty());
                assert!(r.get("usage").unwrap().is_null());
                if resp_id.is_empty() {
                    resp_id = s(r, "id").to_owned();
                }
                assert_eq!(s(r, "id"), resp_id);
            }
            "response.output_item.added" => {
                assert_eq!(u(&v, "output_index"), 0);
                let item = v.get("item").unwrap();
                assert_eq!(s(item, "status"), "in_progress");
                assert!(item.get_array("content").unwrap().is_empty());
                item_id = s(item, "id").to_owned();
            }
            "response.content_part.added" | "response.content_part.done" => {
                assert_eq!(s(&v, "item_id"), item_id);
                assert_eq!((u(&v, "output_index"), u(&v, "content_index")), (0, 0));
                let part = v.get("part").unwrap();
                assert_eq!(s(part, "type"), "output_text");
                let want = if s(&v, "type").ends_with("added") {
                    ""
                } else {
                    EXPECTED_TEXT
                };
                assert_eq!(s(part, "text"), want);
            }
            "response.output_text.delta" => {
                assert_eq!(s(&v, "item_id"), item_id);
                assert_eq!((u(&v, "output_index"), u(&v, "content_index")), (0, 0));
                assert!(v.get_array("logprobs").is_some());
                text.push_str(s(&v, "delta"));
            }
            "response.output_text.done" => {
                assert_eq!(s(&v, "item_id"), item_id);
                assert_eq!(s(&v, "text"), EXPECTED_TEXT);
            }
            "response.output_item.done" => {
                let item = v.get("item").unwrap();
                assert_eq!(s(item, "id"), item_id);
                check_message_item(item, EXPECTED_TEXT, "completed");
            }
            "response.completed" => {
                let r = v.get("response").unwrap();
                check_response_object(r, "completed");
                assert_eq!(s(r, "id"), resp_id);
                let output = r.get_array("output").unwrap();
                assert_eq!(s(&output[0], "id"), item_id);
                check_message_item(&output[0], EXPECTED_TEXT, "completed");
                check_response_usage(r, 16);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(text, EXPECTED_TEXT);
}

#[test]
fn responses_truncated() {
    let body = RESPONSES.replacen("{", "{\"max_output_tokens\":5,", 1);
    let v = ok_body(&mock(), Endpoint::Responses, &body);
    check_response_object(&v, "incomplete");
    assert_eq!(
        s(v.get("incomplete_details").unwrap(), "reason"),
        "max_output_tokens"
    );
    assert_eq!(u(&v, "max_output_tokens"), 5);
    check_response_usage(&v, 5);

    let (_, ev) = streamed(
        &mock(),
        Endpoint::Responses,
        &body.replacen("{", "{\"stream\":true,", 1),
    );
    let last = ev.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("response.incomplete"));
    let r = last.json();
    check_response_object(r.get("response").unwrap(), "incomplete");
}

#[test]
fn bad_requests() {
    let m = mock();
    let openai: &[(Endpoint, &str)] = &[
        (Endpoint::ChatCompletions, "not json"),
        (Endpoint::ChatCompletions, "[1,2]"),
        (
            Endpoint::ChatCompletions,
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
        ),
        (Endpoint::ChatCompletions, r#"{"model":"m"}"#),
        (Endpoint::ChatCompletions, r#"{"model":"m","messages":[]}"#),
        (Endpoint::ChatCompletions, r#"{"model":"m","messages":"x"}"#),
        (Endpoint::Responses, r#"{"model":"m"}"#),
        (Endpoint::Responses, r#"{"model":"m","input":5}"#),
        (Endpoint::Responses, ""),
    ];
    for (ep, body) in openai {
        let r = m.reply(*ep, body.as_bytes());
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.content_type, JSON);
        let v = parse(&r.body);
        let e = v.get("error").unwrap();
        assert_eq!(s(e, "type"), "invalid_request_error", "{body}");
        assert!(!s(e, "message").is_empty());
    }
    let anthropic: &[(Endpoint, &str)] = &[
        (Endpoint::Messages, "{"),
        (Endpoint::Messages, r#"{"model":"c","max_tokens":5}"#),
        (Endpoint::CountTokens, r#"{"model":"c"}"#),
        (
            Endpoint::CountTokens,
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
        ),
    ];
    for (ep, body) in anthropic {
        let r = m.reply(*ep, body.as_bytes());
        assert_eq!(r.status, 400, "{body}");
        let v = parse(&r.body);
        assert_eq!(s(&v, "type"), "error");
        assert_eq!(s(v.get("error").unwrap(), "type"), "invalid_request_error");
    }

    let r = m.handle(b"GET", b"/v1/chat/completions", b"");
    assert_eq!(r.status, 400);
    let r = m.handle(b"POST", b"/v1/embeddings", b"{}");
    assert_eq!(r.status, 404);
    assert_eq!(
        s(parse(&r.body).get("error").unwrap(), "code"),
        "unknown_url"
    );
    let r = m.handle(b"POST", b"/v1/chat/completions", CHAT.as_bytes());
    assert_eq!(r.status, 200);
}

#[test]
fn paths() {
    let table: &[(&[u8], Option<Endpoint>)] = &[
        (b"/v1/chat/completions", Some(Endpoint::ChatCompletions)),
        (b"/chat/completions", Some(Endpoint::ChatCompletions)),
        (
            b"/openai/v1/chat/completions/",
            Some(Endpoint::ChatCompletions),
        ),
        (b"/v1/messages", Some(Endpoint::Messages)),
        (b"/v1/messages?beta=true", Some(Endpoint::Messages)),
        (b"/messages", Some(Endpoint::Messages)),
        (b"/v1/messages/count_tokens", Some(Endpoint::CountTokens)),
        (
            b"/v1/messages/count_tokens?beta=true",
            Some(Endpoint::CountTokens),
        ),
        (b"/v1/responses", Some(Endpoint::Responses)),
        (b"/responses", Some(Endpoint::Responses)),
        (b"/v1/responses/resp_123", None),
        (b"/v1/completions", None),
        (b"/v1/models", None),
        (b"/", None),
        (b"", None),
        (b"?/v1/messages", None),
    ];
    for (path, want) in table {
        assert_eq!(
            Mock::endpoint_for_path(path),
            *want,
            "{}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn hooks_fail() {
    let m = mock();
    let cases: &[(Endpoint, &str, u16, &str)] = &[
        (Endpoint::ChatCompletions, "fail-500", 500, "server_error"),
        (Endpoint::ChatCompletions, "fail-429-gpt", 429, "requests"),
        (Endpoint::Responses, "slow-fail-500", 500, "server_error"),
        (Endpoint::Messages, "fail-500-claude", 500, "api_error"),
        (Endpoint::Messages, "fail-429", 429, "rate_limit_error"),
        (Endpoint::CountTokens, "fail-429", 429, "rate_limit_error"),
    ];
    for (ep, model, status, kind) in cases {
        // A minimal body suffices: the hook fires before the other checks.
        let body = format!("{{\"model\":\"{model}\",\"stream\":true}}");
        let r = m.reply(*ep, body.as_bytes());
        assert_eq!(r.status, *status, "{model}");
        assert_eq!(r.content_type, JSON);
        assert!(r.stream.is_none());
        let v = parse(&r.body);
        let e = v.get("error").unwrap();
        assert_eq!(s(e, "type"), *kind, "{model}");
        let slow = if model.starts_with("slow-") {
            SLOW_DELAY
        } else {
            Duration::ZERO
        };
        assert_eq!(r.first_byte_delay, slow);
    }
}

#[test]
fn hooks_slow_and_cut() {
    let m = mock();
    let slow = CHAT.replace("gpt-4o-mini", "slow-gpt");
    let r = m.reply(Endpoint::ChatCompletions, slow.as_bytes());
    assert_eq!((r.status, r.first_byte_delay), (200, SLOW_DELAY));
    assert_eq!(
        s(&parse(&r.body), "model"),
        "slow-gpt",
        "model echoed verbatim"
    );

    for (ep, body, pre) in [
        (Endpoint::ChatCompletions, CHAT, 1),
        (Endpoint::Messages, MESSAGES, 3),
        (Endpoint::Responses, RESPONSES, 4),
    ] {
        let body = body.replacen("\"model\":\"", "\"stream\":true,\"model\":\"slow-cut-", 1);
        let (r, ev) = streamed(&m, ep, &body);
        assert_eq!(r.first_byte_delay, SLOW_DELAY);
        assert!(r.stream.as_ref().unwrap().ends_abruptly());
        assert_eq!(ev.len(), pre + CUT_AFTER_WORDS as usize, "{ep:?}");
        assert!(ev.iter().all(|e| e.data != "[DONE]"));
        for e in &ev {
            e.json();
        }
    }
    // Cut applies to streams only.
    let r = m.reply(
        Endpoint::ChatCompletions,
        CHAT.replace("gpt-4o-mini", "cut-gpt").as_bytes(),
    );
    assert_eq!(r.status, 200);
    // An uncut stream does not end abruptly.
    let body = CHAT.replacen("{", "{\"stream\":true,", 1);
    let r = m.reply(Endpoint::ChatCompletions, body.as_bytes());
    assert!(!r.stream.unwrap().ends_abruptly());
}

/// Classifies a reply: "ok", "500", "429" or "cut".
fn outcome(r: &mut MockReply) -> &'static str {
    match r.status {
        500 => "500",
        429 => "429",
        200 => match r.stream.as_mut() {
            Some(st) if st.ends_abruptly() => {
                let ev = drain(st);
                assert!(ev.iter().all(|e| e.data != "[DONE]"));
                "cut"
            }
            _ => "ok",
        },
        other => panic!("status {other}"),
    }
}

#[test]
fn fail_rate() {
    let stream_body = CHAT.replacen("{", "{\"stream\":true,", 1);
    let always = Mock::new(MockOptions {
        fail_rate: 1.0,
        seed: 7,
        ..MockOptions::default()
    });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let mut r = always.reply(Endpoint::ChatCompletions, CHAT.as_bytes());
        let o = outcome(&mut r);
        assert!(
            o == "500" || o == "429",
            "non-streaming failures are statuses"
        );
        seen.insert(o);
        let mut r = always.reply(Endpoint::ChatCompletions, stream_body.as_bytes());
        let o = outcome(&mut r);
        assert_ne!(o, "ok");
        seen.insert(o);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["429", "500", "cut"]);

    // Bad requests stay 400 even when everything fails.
    assert_eq!(always.reply(Endpoint::ChatCompletions, b"{}").status, 400);

    let never = Mock::new(MockOptions {
        fail_rate: 0.0,
        ..MockOptions::default()
    });
    for _ in 0..200 {
        let mut r = never.reply(Endpoint::ChatCompletions, stream_body.as_bytes());
        assert_eq!(outcome(&mut r), "ok");
    }

    // Same seed, same sequence; about the right rate.
    let run = |seed| {
        let m = Mock::new(MockOptions {
            fail_rate: 0.3,
            seed,
            ..MockOptions::default()
        });
        (0..1000)
            .map(|_| outcome(&mut m.reply(Endpoint::Responses, RESPONSES.as_bytes())))
            .collect::<Vec<_>>()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    let failures = a.iter().filter(|o| **o != "ok").count();
    assert!((200..400).contains(&failures), "{failures} failures at 30%");
}

#[test]
fn pacing() {
    let m = Mock::new(MockOptions {
        ttft_ms: 150,
        tokens_per_s: 20.0,
        reply_tokens: 5,
        ..MockOptions::default()
    });
    let gap = Duration::from_millis(50);
    let ttft = Duration::from_millis(150);

    let r = m.reply(Endpoint::ChatCompletions, CHAT.as_bytes());
    assert_eq!(r.first_byte_delay, ttft + gap * 4);

    let (r, ev) = streamed(
        &m,
        Endpoint::Messages,
        &MESSAGES.replacen("{", "{\"stream\":true,", 1),
    );
    assert_eq!(r.first_byte_delay, Duration::ZERO);
    let delays: Vec<Duration> = ev.iter().map(|e| e.delay).collect();
    let z = Duration::ZERO;
    assert_eq!(delays, [z, z, z, ttft, gap, gap, gap, gap, z, z, z]);

    let fast = Mock::new(MockOptions {
        tokens_per_s: f64::NAN,
        ttft_ms: 0,
        ..MockOptions::default()
    });
    let (_, ev) = streamed(
        &fast,
        Endpoint::Responses,
        &RESPONSES.replacen("{", "{\"stream\":true,", 1),
    );
    assert!(ev.iter().all(|e| e.delay == Duration::ZERO));
}

#[test]
fn ids_are_fresh_and_request_body_untouched() {
    let m = mock();
    let body = CHAT.as_bytes().to_vec();
    let a = ok_body(&m, Endpoint::ChatCompletions, CHAT);
    let b = ok_body(&m, Endpoint::ChatCompletions, CHAT);
    assert_ne!(s(&a, "id"), s(&b, "id"));
    let other = mock();
    let c = ok_body(&other, Endpoint::ChatCompletions, CHAT);
    assert_ne!(s(&a, "id"), s(&c, "id"));
    let _ = m.reply(Endpoint::ChatCompletions, &body);
    assert_eq!(
        body,
        CHAT.as_bytes(),
        "the caller's bytes are never rewritten"
    );
}

#[test]
fn stream_reuses_buffer() {
    let mut r = mock().reply(
        Endpoint::Responses,
        RESPONSES.replacen("{", "{\"stream\":true,", 1).as_bytes(),
    );
    let st = r.stream.as_mut().unwrap();
    let mut out = Vec::with_capacity(8192);
    let ptr = out.as_ptr();
    while st.next_event(&mut out).is_some() {
        out.clear();
    }
    assert_eq!(
        out.as_ptr(),
        ptr,
        "events fit the reused buffer without reallocating"
    );
    assert_eq!(st.text(), EXPECTED_TEXT);
}
