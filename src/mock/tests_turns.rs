//! Tool calls, tool results, thinking / reasoning, cache usage and the `error-` hook, in all
//! three wire shapes, streamed and not.

use super::tests::{drain, mock, ok_body, parse, s, streamed, u, Event};
use super::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;

const WEATHER_SCHEMA: &str = r#"{"type":"object","properties":{"unit":{"type":"string"},"city":{"type":"string"}},"required":["city"]}"#;
const TIME_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
const ASK: &str = "What is the weather in Paris";
const WEATHER_ARGS: &str = r#"{"city":"What is the weather in Paris"}"#;

fn chat_tools(user: &str, extra: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o",{extra}"messages":[{{"role":"user","content":"{user}"}}],"tools":[
        {{"type":"function","function":{{"name":"get_weather","parameters":{WEATHER_SCHEMA}}}}},
        {{"type":"function","function":{{"name":"get_time","parameters":{TIME_SCHEMA}}}}}]}}"#
    )
}

fn messages_tools(user: &str, extra: &str) -> String {
    format!(
        r#"{{"model":"claude",{extra}"max_tokens":4096,"messages":[{{"role":"user","content":"{user}"}}],"tools":[
        {{"name":"get_weather","input_schema":{WEATHER_SCHEMA}}},
        {{"name":"get_time","input_schema":{TIME_SCHEMA}}}]}}"#
    )
}

fn responses_tools(user: &str, extra: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o",{extra}"input":"{user}","tools":[
        {{"type":"function","name":"get_weather","parameters":{WEATHER_SCHEMA}}},
        {{"type":"function","name":"get_time","parameters":{TIME_SCHEMA}}}]}}"#
    )
}

fn stream(body: &str) -> String {
    body.replacen('{', "{\"stream\":true,", 1)
}

fn first_choice(chunk: &OwnedValue) -> &OwnedValue {
    &chunk.get_array("choices").unwrap()[0]
}

// ---- chat ------------------------------------------------------------------------------------

#[test]
fn chat_tool_call_body() {
    let v = ok_body(&mock(), Endpoint::ChatCompletions, &chat_tools(ASK, ""));
    let c = first_choice(&v);
    assert_eq!(s(c, "finish_reason"), "tool_calls");
    let msg = c.get("message").unwrap();
    assert!(msg.get("content").unwrap().is_null());
    let calls = msg.get_array("tool_calls").unwrap();
    assert_eq!(calls.len(), 1);
    let id = s(&calls[0], "id");
    assert!(id.starts_with("call_") && id.len() == 5 + 32, "{id}");
    assert_eq!(s(&calls[0], "type"), "function");
    let f = calls[0].get("function").unwrap();
    assert_eq!(s(f, "name"), "get_weather");
    assert_eq!(s(f, "arguments"), WEATHER_ARGS);
    let usage = v.get("usage").unwrap();
    // One output token per argument fragment: 37 bytes in fragments of 8.
    assert_eq!(u(usage, "completion_tokens"), 5);
}

/// A streamed chat call: index, id, name, assembled arguments.
type ChatCall = (u64, String, String, String);
/// A streamed Anthropic block: type, `content_block` of its start, assembled deltas, signature.
type Block = (String, OwnedValue, String, String);

/// Assembles a chat stream's tool calls as the SDK does; returns (index, id, name, arguments)
/// per call and the call index of each argument fragment in order.
fn assemble_chat_calls(ev: &[Event]) -> (Vec<ChatCall>, Vec<u64>) {
    let mut calls: Vec<ChatCall> = Vec::new();
    let mut order = Vec::new();
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let chunks: Vec<OwnedValue> = ev[..ev.len() - 1].iter().map(Event::json).collect();
    let role = first_choice(&chunks[0]).get("delta").unwrap();
    assert_eq!(s(role, "role"), "assistant");
    assert!(role.get("content").unwrap().is_null());
    for c in &chunks[1..chunks.len() - 1] {
        let delta = first_choice(c).get("delta").unwrap();
        let tc = &delta.get_array("tool_calls").unwrap()[0];
        let index = u(tc, "index");
        let f = tc.get("function").unwrap();
        if let Some(id) = tc.get_str("id") {
            assert_eq!(s(tc, "type"), "function");
            assert_eq!(s(f, "arguments"), "", "the head has empty arguments");
            assert_eq!(index as usize, calls.len());
            calls.push((index, id.to_owned(), s(f, "name").to_owned(), String::new()));
        } else {
            assert!(f.get("name").is_none());
            order.push(index);
            calls[index as usize].3.push_str(s(f, "arguments"));
        }
    }
    let last = first_choice(&chunks[chunks.len() - 1]);
    assert_eq!(s(last, "finish_reason"), "tool_calls");
    (calls, order)
}

#[test]
fn chat_tool_call_stream() {
    let (_, ev) = streamed(
        &mock(),
        Endpoint::ChatCompletions,
        &stream(&chat_tools(ASK, "")),
    );
    let (calls, order) = assemble_chat_calls(&ev);
    assert_eq!(calls.len(), 1);
    assert!(calls[0].1.starts_with("call_"));
    assert_eq!(calls[0].2, "get_weather");
    assert_eq!(calls[0].3, WEATHER_ARGS);
    assert_eq!(order, [0, 0, 0, 0, 0], "arguments in 5 fragments");
}

#[test]
fn chat_parallel_calls_interleave() {
    let m = mock();
    let body = stream(&chat_tools("Check both in PARALLEL, please", ""));
    let (_, ev) = streamed(&m, Endpoint::ChatCompletions, &body);
    let (calls, order) = assemble_chat_calls(&ev);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].2.as_str(), calls[1].2.as_str()),
        ("get_weather", "get_time")
    );
    assert_eq!(calls[0].3, r#"{"city":"Check both in PARALLEL, please"}"#);
    assert_eq!(calls[1].3, "{}");
    assert_ne!(calls[0].1, calls[1].1);
    // `{}` goes in two fragments; the longer call's continue after.
    assert_eq!(&order[..4], [0, 1, 0, 1]);
    assert!(order[4..].iter().all(|&i| i == 0));

    // One tool, called twice with distinct ids.
    let one = r#"{"model":"m","messages":[{"role":"user","content":"parallel"}],
        "tools":[{"type":"function","function":{"name":"f"}}]}"#;
    let v = ok_body(&m, Endpoint::ChatCompletions, one);
    let calls = first_choice(&v)
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_ne!(s(&calls[0], "id"), s(&calls[1], "id"));
    for c in calls {
        let f = c.get("function").unwrap();
        assert_eq!((s(f, "name"), s(f, "arguments")), ("f", "{}"));
    }
    // `parallel_tool_calls: false`: one call.
    let v = ok_body(
        &m,
        Endpoint::ChatCompletions,
        &chat_tools("parallel", "\"parallel_tool_calls\":false,"),
    );
    let calls = first_choice(&v)
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap();
    assert_eq!(calls.len(), 1);
    // "parallelism" is not the word.
    let v = ok_body(
        &m,
        Endpoint::ChatCompletions,
        &chat_tools("parallelism", ""),
    );
    let calls = first_choice(&v)
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap();
    assert_eq!(calls.len(), 1);
}

#[test]
fn chat_tool_choice() {
    let m = mock();
    let v = ok_body(
        &m,
        Endpoint::ChatCompletions,
        &chat_tools(ASK, "\"tool_choice\":\"none\","),
    );
    let c = first_choice(&v);
    assert_eq!(s(c, "finish_reason"), "stop");
    assert!(s(c.get("message").unwrap(), "content").starts_with("This is a mock reply"));
    let named = r#""tool_choice":{"type":"function","function":{"name":"get_time"}},"#;
    let v = ok_body(
        &m,
        Endpoint::ChatCompletions,
        &chat_tools("parallel", named),
    );
    let calls = first_choice(&v)
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap();
    assert_eq!(calls.len(), 1, "a named tool is called alone");
    assert_eq!(s(calls[0].get("function").unwrap(), "name"), "get_time");
    let v = ok_body(
        &m,
        Endpoint::ChatCompletions,
        &chat_tools(ASK, "\"tool_choice\":\"required\","),
    );
    assert_eq!(s(first_choice(&v), "finish_reason"), "tool_calls");
}

const CHAT_RESULT: &str = r#"{"model":"gpt-4o","messages":[
    {"role":"user","content":"What is the weather in Paris"},
    {"role":"assistant","content":null,"tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}},
        {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"Sunny and 22 degrees"},
    {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"Noon"}]}],
    "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#;

#[test]
fn chat_tool_result_is_quoted() {
    let m = mock();
    let v = ok_body(&m, Endpoint::ChatCompletions, CHAT_RESULT);
    let c = first_choice(&v);
    assert_eq!(s(c, "finish_reason"), "stop");
    let text = s(c.get("message").unwrap(), "content");
    assert!(
        text.starts_with("Tool said: Sunny and 22 degrees lorem ipsum"),
        "{text}"
    );
    assert_eq!(text.split(' ').count(), 16);
    let (r, _) = streamed(&m, Endpoint::ChatCompletions, &stream(CHAT_RESULT));
    let _ = r;
}

#[test]
fn chat_reasoning_and_cache_usage() {
    let body = CHAT_WITH.replace(
        "\"messages\"",
        "\"reasoning_effort\":\"low\",\"prompt_cache_key\":\"k\",\"messages\"",
    );
    let v = ok_body(&mock(), Endpoint::ChatCompletions, &body);
    let usage = v.get("usage").unwrap();
    // 40 bytes of prompt: 10 tokens, 5 of them cached.
    assert_eq!(u(usage, "prompt_tokens"), 10);
    assert_eq!(
        u(usage.get("prompt_tokens_details").unwrap(), "cached_tokens"),
        5
    );
    // "Mock thinking about:" + 6 quoted words.
    let details = usage.get("completion_tokens_details").unwrap();
    assert_eq!(u(details, "reasoning_tokens"), 9);
    assert_eq!(u(usage, "completion_tokens"), 16 + 9);
    let msg = first_choice(&v).get("message").unwrap();
    assert!(msg.get("reasoning").is_none() && msg.get("reasoning_content").is_none());

    let v = ok_body(&mock(), Endpoint::ChatCompletions, CHAT_WITH);
    let usage = v.get("usage").unwrap();
    assert_eq!(
        u(usage.get("prompt_tokens_details").unwrap(), "cached_tokens"),
        0
    );
    assert_eq!(
        u(
            usage.get("completion_tokens_details").unwrap(),
            "reasoning_tokens"
        ),
        0
    );
}

const CHAT_WITH: &str = r#"{"model":"gpt-4o-mini","messages":[
    {"role":"system","content":"Be brief."},
    {"role":"user","content":"Say hello to the gateway please"}]}"#;

// ---- Anthropic -------------------------------------------------------------------------------

#[test]
fn messages_tool_use_body() {
    let v = ok_body(&mock(), Endpoint::Messages, &messages_tools(ASK, ""));
    assert_eq!(s(&v, "stop_reason"), "tool_use");
    let content = v.get_array("content").unwrap();
    assert_eq!(content.len(), 1);
    let b = &content[0];
    assert_eq!(s(b, "type"), "tool_use");
    assert!(s(b, "id").starts_with("toolu_"));
    assert_eq!(s(b, "name"), "get_weather");
    assert_eq!(s(b.get("input").unwrap(), "city"), ASK);
    assert_eq!(u(v.get("usage").unwrap(), "output_tokens"), 5);
}

/// Checks an Anthropic stream's framing and returns its blocks as (type, start, assembled
/// delta text, signature).
fn anthropic_blocks(ev: &[Event]) -> (Vec<Block>, OwnedValue) {
    let names: Vec<&str> = ev.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[2], "ping");
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let mut blocks: Vec<Block> = Vec::new();
    let mut open = false;
    for e in ev {
        let v = e.json();
        assert_eq!(s(&v, "type"), e.name.as_deref().unwrap());
        match s(&v, "type") {
            "content_block_start" => {
                assert!(!open);
                open = true;
                assert_eq!(u(&v, "index") as usize, blocks.len());
                let b = v.get("content_block").unwrap().clone();
                blocks.push((s(&b, "type").to_owned(), b, String::new(), String::new()));
            }
            "content_block_delta" => {
                assert!(open);
                assert_eq!(u(&v, "index") as usize, blocks.len() - 1);
                let d = v.get("delta").unwrap();
                let last = blocks.last_mut().unwrap();
                match (last.0.as_str(), s(d, "type")) {
                    ("text", "text_delta") => last.2.push_str(s(d, "text")),
                    ("thinking", "thinking_delta") => {
                        assert!(last.3.is_empty(), "signature comes last");
                        last.2.push_str(s(d, "thinking"))
                    }
                    ("thinking", "signature_delta") => last.3.push_str(s(d, "signature")),
                    ("tool_use", "input_json_delta") => last.2.push_str(s(d, "partial_json")),
                    other => panic!("delta {other:?}"),
                }
            }
            "content_block_stop" => {
                assert!(open);
                open = false;
                assert_eq!(u(&v, "index") as usize, blocks.len() - 1);
            }
            _ => {}
        }
    }
    let delta = ev[ev.len() - 2].json();
    (blocks, delta)
}

#[test]
fn messages_tool_use_stream_with_thinking() {
    let thinking = r#""thinking":{"type":"enabled","budget_tokens":1024},"#;
    let body = stream(&messages_tools("parallel weather and time", thinking));
    let (_, ev) = streamed(&mock(), Endpoint::Messages, &body);
    let (blocks, delta) = anthropic_blocks(&ev);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].0, "thinking");
    assert_eq!(s(&blocks[0].1, "thinking"), "");
    assert_eq!(
        blocks[0].2,
        "Mock thinking about: parallel weather and time"
    );
    assert_eq!(blocks[0].3, THINKING_SIGNATURE);
    for (b, name, args) in [
        (
            &blocks[1],
            "get_weather",
            r#"{"city":"parallel weather and time"}"#,
        ),
        (&blocks[2], "get_time", "{}"),
    ] {
        assert_eq!(b.0, "tool_use");
        assert!(s(&b.1, "id").starts_with("toolu_"));
        assert_eq!(s(&b.1, "name"), name);
        assert!(b.1.get("input").unwrap().as_object().unwrap().is_empty());
        assert_eq!(b.2, args);
    }
    assert_eq!(s(delta.get("delta").unwrap(), "stop_reason"), "tool_use");
    // 7 thinking words + 5 + 2 fragments.
    assert_eq!(u(delta.get("usage").unwrap(), "output_tokens"), 7 + 5 + 2);

    // `disable_parallel_tool_use`: one call.
    let body = messages_tools(
        "parallel",
        r#""tool_choice":{"type":"auto","disable_parallel_tool_use":true},"#,
    );
    let v = ok_body(&mock(), Endpoint::Messages, &body);
    assert_eq!(v.get_array("content").unwrap().len(), 1);
}

#[test]
fn messages_thinking_body_and_adaptive() {
    for thinking in [
        r#""thinking":{"type":"enabled","budget_tokens":2000},"#,
        r#""thinking":{"type":"adaptive"},"#,
    ] {
        let body = MESSAGES_PLAIN.replacen('{', &format!("{{{thinking}"), 1);
        let v = ok_body(&mock(), Endpoint::Messages, &body);
        let content = v.get_array("content").unwrap();
        assert_eq!(content.len(), 2);
        assert_eq!(s(&content[0], "type"), "thinking");
        assert_eq!(s(&content[0], "thinking"), "Mock thinking about: Hi there");
        assert_eq!(s(&content[0], "signature"), THINKING_SIGNATURE);
        assert_eq!(s(&content[1], "type"), "text");
        assert_eq!(s(&v, "stop_reason"), "end_turn");

        let (_, ev) = streamed(&mock(), Endpoint::Messages, &stream(&body));
        let (blocks, _) = anthropic_blocks(&ev);
        assert_eq!(blocks[0].0, "thinking");
        assert_eq!(blocks[1].0, "text");
        assert!(blocks[1]
            .2
            .starts_with("This is a mock reply from Switchyard to: Hi there"));
    }
    // Disabled: no thinking block.
    let body = MESSAGES_PLAIN.replacen('{', r#"{"thinking":{"type":"disabled"},"#, 1);
    let v = ok_body(&mock(), Endpoint::Messages, &body);
    assert_eq!(v.get_array("content").unwrap().len(), 1);
}

const MESSAGES_PLAIN: &str =
    r#"{"model":"claude","max_tokens":4096,"messages":[{"role":"user","content":"Hi there"}]}"#;

#[test]
fn messages_tool_result_is_quoted() {
    let body = r#"{"model":"claude","max_tokens":100,"messages":[
        {"role":"user","content":"What is the weather in Paris"},
        {"role":"assistant","content":[{"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
            "content":[{"type":"text","text":"Rain all day"}]}]}],
        "tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#;
    let v = ok_body(&mock(), Endpoint::Messages, body);
    assert_eq!(s(&v, "stop_reason"), "end_turn");
    let text = s(&v.get_array("content").unwrap()[0], "text");
    assert!(text.starts_with("Tool said: Rain all day lorem"), "{text}");
    let (_, ev) = streamed(&mock(), Endpoint::Messages, &stream(body));
    let (blocks, _) = anthropic_blocks(&ev);
    assert_eq!(blocks[0].2, text);
}

#[test]
fn messages_cache_usage() {
    let body = r#"{"model":"claude","max_tokens":100,
        "system":[{"type":"text","text":"You are a helpful assistant.","cache_control":{"type":"ephemeral"}}],
        "messages":[{"role":"user","content":"Hello there, friend"}]}"#;
    // 28 + 19 bytes: 12 tokens, 6 cached.
    let v = ok_body(&mock(), Endpoint::Messages, body);
    let usage = v.get("usage").unwrap();
    assert_eq!(u(usage, "input_tokens"), 6);
    assert_eq!(u(usage, "cache_read_input_tokens"), 6);
    assert_eq!(u(usage, "cache_creation_input_tokens"), 0);
    let (_, ev) = streamed(&mock(), Endpoint::Messages, &stream(body));
    let start = ev[0].json();
    let usage = start.get("message").unwrap().get("usage").unwrap();
    assert_eq!(u(usage, "input_tokens"), 6);
    assert_eq!(u(usage, "cache_read_input_tokens"), 6);
    // count_tokens reports the whole prompt.
    let r = mock().reply(Endpoint::CountTokens, body.as_bytes());
    assert_eq!(u(&parse(&r.body), "input_tokens"), 12);
    // Without cache_control nothing is cached.
    let v = ok_body(
        &mock(),
        Endpoint::Messages,
        &body.replace("cache_control", "x_cache"),
    );
    let usage = v.get("usage").unwrap();
    assert_eq!(u(usage, "input_tokens"), 12);
    assert_eq!(u(usage, "cache_read_input_tokens"), 0);
}

#[test]
fn count_tokens_images() {
    let body = r#"{"model":"claude","messages":[{"role":"user","content":[
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
        {"type":"text","text":"Describe this"}]}]}"#;
    let r = mock().reply(Endpoint::CountTokens, body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // "Describe this": 13 bytes, 4 tokens.
    assert_eq!(u(&parse(&r.body), "input_tokens"), IMAGE_TOKENS + 4);
}

// ---- Responses -------------------------------------------------------------------------------

#[test]
fn responses_function_call_body() {
    let v = ok_body(&mock(), Endpoint::Responses, &responses_tools(ASK, ""));
    assert_eq!(s(&v, "status"), "completed");
    let output = v.get_array("output").unwrap();
    assert_eq!(output.len(), 1);
    let fc = &output[0];
    assert_eq!(s(fc, "type"), "function_call");
    assert_eq!(s(fc, "status"), "completed");
    assert!(s(fc, "id").starts_with("fc_"));
    assert!(s(fc, "call_id").starts_with("call_"));
    assert_eq!(s(fc, "name"), "get_weather");
    assert_eq!(s(fc, "arguments"), WEATHER_ARGS);
}

#[test]
fn responses_reasoning_and_calls_stream() {
    let extra = r#""reasoning":{"effort":"low","summary":"auto"},"include":["reasoning.encrypted_content"],"prompt_cache_key":"k","#;
    let (_, ev) = streamed(
        &mock(),
        Endpoint::Responses,
        &stream(&responses_tools("parallel please", extra)),
    );
    let names: Vec<&str> = ev.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let evs: Vec<OwnedValue> = ev.iter().map(Event::json).collect();
    for (i, v) in evs.iter().enumerate() {
        assert_eq!(u(v, "sequence_number"), i as u64);
    }
    let rs = evs[2].get("item").unwrap();
    assert_eq!(s(rs, "type"), "reasoning");
    assert!(s(rs, "id").starts_with("rs_"));
    let summary: String = evs[4..9].iter().map(|v| s(v, "delta").to_owned()).collect();
    assert_eq!(summary, "Mock thinking about: parallel please");
    assert_eq!(u(&evs[4], "summary_index"), 0);
    let rs_done = evs[11].get("item").unwrap();
    assert_eq!(s(rs_done, "encrypted_content"), ENCRYPTED_REASONING);
    assert_eq!(
        s(&rs_done.get_array("summary").unwrap()[0], "text"),
        "Mock thinking about: parallel please"
    );

    let added = evs[12].get("item").unwrap();
    assert_eq!(u(&evs[12], "output_index"), 1);
    assert_eq!(
        (s(added, "status"), s(added, "arguments")),
        ("in_progress", "")
    );
    let args: String = evs[13..17]
        .iter()
        .map(|v| s(v, "delta").to_owned())
        .collect();
    assert_eq!(args, r#"{"city":"parallel please"}"#);
    assert_eq!(s(&evs[13], "item_id"), s(added, "id"));
    assert_eq!(s(&evs[17], "arguments"), args);
    assert_eq!(s(&evs[17], "name"), "get_weather");
    assert_eq!(u(&evs[19], "output_index"), 2);
    assert_eq!(s(evs[19].get("item").unwrap(), "name"), "get_time");

    let done = evs.last().unwrap().get("response").unwrap();
    let output = done.get_array("output").unwrap();
    let kinds: Vec<&str> = output.iter().map(|o| s(o, "type")).collect();
    assert_eq!(kinds, ["reasoning", "function_call", "function_call"]);
    let usage = done.get("usage").unwrap();
    assert_eq!(
        u(
            usage.get("output_tokens_details").unwrap(),
            "reasoning_tokens"
        ),
        5
    );
    assert_eq!(u(usage, "output_tokens"), 5 + 4 + 2);
    let cached = u(usage.get("input_tokens_details").unwrap(), "cached_tokens");
    assert_eq!(cached, u(usage, "input_tokens") / 2);
    assert_eq!(s(done.get("reasoning").unwrap(), "effort"), "low");
}

#[test]
fn responses_reasoning_without_summary() {
    let body = r#"{"model":"o4","input":"Hi","reasoning":{"effort":"high"}}"#;
    let v = ok_body(&mock(), Endpoint::Responses, body);
    let output = v.get_array("output").unwrap();
    assert_eq!(s(&output[0], "type"), "reasoning");
    assert!(output[0].get_array("summary").unwrap().is_empty());
    assert!(output[0].get("encrypted_content").is_none());
    assert_eq!(s(&output[1], "type"), "message");
    let (_, ev) = streamed(&mock(), Endpoint::Responses, &stream(body));
    let names: Vec<&str> = ev
        .iter()
        .take(6)
        .map(|e| e.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names[2..],
        [
            "response.output_item.added",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    let text = ev[6].json();
    assert_eq!(u(&text, "output_index"), 1);
}

#[test]
fn responses_tool_output_is_quoted() {
    let body = r#"{"model":"gpt-4o","input":[
        {"role":"user","content":"weather?"},
        {"type":"function_call","call_id":"call_9","name":"get_weather","arguments":"{}"},
        {"type":"function_call_output","call_id":"call_9","output":"Windy with showers"}],
        "tools":[{"type":"function","name":"get_weather"}]}"#;
    let v = ok_body(&mock(), Endpoint::Responses, body);
    let output = v.get_array("output").unwrap();
    assert_eq!(s(&output[0], "type"), "message");
    let text = s(&output[0].get_array("content").unwrap()[0], "text");
    assert!(
        text.starts_with("Tool said: Windy with showers lorem"),
        "{text}"
    );
}

// ---- the error- hook -------------------------------------------------------------------------

#[test]
fn error_hook_streams() {
    let m = mock();
    for (ep, body) in [
        (Endpoint::ChatCompletions, CHAT_WITH),
        (Endpoint::Messages, MESSAGES_PLAIN),
        (Endpoint::Responses, r#"{"model":"gpt-4o","input":"Hi"}"#),
    ] {
        for prefix in ["error-", "slow-error-", "error-slow-", "cut-error-"] {
            let body = stream(body).replacen("\"model\":\"", &format!("\"model\":\"{prefix}"), 1);
            let mut r = m.reply(ep, body.as_bytes());
            assert_eq!(r.status, 200);
            let slow = if prefix.contains("slow") {
                SLOW_DELAY
            } else {
                Duration::ZERO
            };
            assert_eq!(r.first_byte_delay, slow);
            let st = r.stream.as_mut().unwrap();
            assert_eq!(st.ends_abruptly(), prefix.starts_with("cut"), "{prefix}");
            let ev = drain(st);
            let last = ev.last().unwrap();
            let v = last.json();
            let before = ev.len() - 1;
            match ep {
                Endpoint::ChatCompletions => {
                    assert!(last.name.is_none());
                    let e = v.get("error").unwrap();
                    assert_eq!(s(e, "type"), "server_error");
                    assert!(ev.iter().all(|e| e.data != "[DONE]"));
                    assert_eq!(before, 1 + CUT_AFTER_WORDS as usize);
                }
                Endpoint::Messages => {
                    assert_eq!(last.name.as_deref(), Some("error"));
                    assert_eq!(s(&v, "type"), "error");
                    let e = v.get("error").unwrap();
                    assert_eq!(
                        (s(e, "type"), s(e, "message")),
                        ("overloaded_error", "Overloaded")
                    );
                    assert_eq!(before, 3 + CUT_AFTER_WORDS as usize);
                }
                _ => {
                    assert_eq!(last.name.as_deref(), Some("response.failed"));
                    let resp = v.get("response").unwrap();
                    assert_eq!(s(resp, "status"), "failed");
                    assert_eq!(s(resp.get("error").unwrap(), "code"), "server_error");
                    assert_eq!(u(&v, "sequence_number"), before as u64);
                    assert_eq!(before, 4 + CUT_AFTER_WORDS as usize);
                }
            }
        }
    }
}

#[test]
fn error_hook_without_stream_is_an_error_status() {
    let m = mock();
    let r = m.reply(
        Endpoint::Messages,
        MESSAGES_PLAIN.replace("claude", "error-claude").as_bytes(),
    );
    assert_eq!(r.status, 529);
    let v = parse(&r.body);
    assert_eq!(s(v.get("error").unwrap(), "type"), "overloaded_error");
    let r = m.reply(
        Endpoint::ChatCompletions,
        CHAT_WITH.replace("gpt-4o-mini", "error-gpt").as_bytes(),
    );
    assert_eq!(r.status, 500);
    assert_eq!(
        s(parse(&r.body).get("error").unwrap(), "type"),
        "server_error"
    );
}

#[test]
fn tool_streams_reuse_the_buffer() {
    let body = stream(&messages_tools(
        "parallel",
        r#""thinking":{"type":"enabled","budget_tokens":1024},"#,
    ));
    let mut r = mock().reply(Endpoint::Messages, body.as_bytes());
    let st = r.stream.as_mut().unwrap();
    let mut out = Vec::with_capacity(8192);
    let ptr = out.as_ptr();
    let mut n = 0;
    while st.next_event(&mut out).is_some() {
        out.clear();
        n += 1;
    }
    assert!(n > 10);
    assert_eq!(out.as_ptr(), ptr, "events fit the reused buffer");
}
