//! Request translation at a real size: a ~4 KB chat completions request (system prompt, a
//! multi-turn conversation with a tool call and its result, three function tools) translated
//! to Anthropic messages, and that messages body translated back to chat. The budget is
//! 10 µs per 4 KB request. The fixture is built here, deterministically.
//!
//! Run: `cargo bench --bench translate -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simd_json::prelude::*;
use switchyard::translate::request::{translate, Target};
use switchyard::translate::Api;

/// A chat request of about `size` bytes: the conversation grows until it is reached.
fn chat_request(size: usize) -> Vec<u8> {
    let tool = |name: &str, desc: &str, prop: &str| {
        format!(
            r#"{{"type":"function","function":{{"name":"{name}","description":"{desc}","parameters":{{"type":"object","properties":{{"{prop}":{{"type":"string","description":"The {prop} to use."}}}},"required":["{prop}"],"additionalProperties":false}},"strict":true}}}}"#
        )
    };
    let tools = [
        tool(
            "get_weather",
            "Current weather for a city, in metric units.",
            "city",
        ),
        tool(
            "search_docs",
            "Searches the project documentation and returns the best passages.",
            "query",
        ),
        tool(
            "read_file",
            "Reads a file of the repository and returns its text.",
            "path",
        ),
    ]
    .join(",");
    let mut turns = vec![
        r#"{"role":"system","content":"You are a careful assistant for a small engineering team. Answer briefly, cite the files you read, and prefer the tools to guessing. When a question is ambiguous, say what you assumed."}"#.to_owned(),
    ];
    let mut i = 0;
    let body = |turns: &[String]| {
        format!(
            r#"{{"model":"gw-model","messages":[{}],"tools":[{tools}],"tool_choice":"auto","temperature":0.3,"max_completion_tokens":2048,"stream":true,"stream_options":{{"include_usage":true}}}}"#,
            turns.join(",")
        )
    };
    while body(&turns).len() < size {
        turns.push(format!(
            r#"{{"role":"user","content":"Question {i}: what does the relay do with a stream whose upstream stalls for longer than the idle deadline, and is the client told why?"}}"#
        ));
        turns.push(format!(
            r#"{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_{i}","type":"function","function":{{"name":"search_docs","arguments":"{{\"query\":\"stream idle deadline {i}\"}}"}}}}]}}"#
        ));
        turns.push(format!(
            r#"{{"role":"tool","tool_call_id":"call_{i}","content":"docs/architecture.md: the relay cuts a stream idle past stream_idle_s and writes the client's error event naming the timeout."}}"#
        ));
        turns.push(format!(
            r#"{{"role":"assistant","content":"It cuts the stream after the idle deadline ({i}) and sends an error event that names the timeout."}}"#
        ));
        i += 1;
    }
    body(&turns).into_bytes()
}

fn bench_translate(c: &mut Criterion) {
    let chat = chat_request(4096);
    let to_messages = Target {
        upstream: Api::Messages,
        model_json: b"\"claude-sonnet-4-6\"",
        client_model: "gw-model",
        max_output_tokens: 8192,
    };
    let to_chat = Target {
        upstream: Api::Chat,
        model_json: b"\"gpt-5.2\"",
        ..to_messages
    };
    let mut scratch = Vec::new();
    let mut messages = Vec::new();
    translate(&chat, Api::Chat, &to_messages, &mut scratch, &mut messages).unwrap();

    let mut g = c.benchmark_group("translate_request");
    g.throughput(Throughput::Bytes(chat.len() as u64));
    g.bench_function(format!("chat_to_messages/{}B", chat.len()), |b| {
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            translate(
                black_box(&chat),
                Api::Chat,
                &to_messages,
                &mut scratch,
                &mut out,
            )
            .unwrap()
        })
    });
    // Baseline: the simd-json parse alone (reused buffers), the floor under a translation.
    g.bench_function(format!("simd_json_parse_only/{}B", chat.len()), |b| {
        let mut buffers = simd_json::Buffers::new(16 * 1024);
        let mut copy = Vec::with_capacity(chat.len());
        b.iter(|| {
            copy.clear();
            copy.extend_from_slice(black_box(&chat));
            simd_json::value::borrowed::to_value_with_buffers(&mut copy, &mut buffers)
                .map(|v| v.is_object())
                .unwrap()
        })
    });
    g.throughput(Throughput::Bytes(messages.len() as u64));
    g.bench_function(format!("messages_to_chat/{}B", messages.len()), |b| {
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            translate(
                black_box(&messages),
                Api::Messages,
                &to_chat,
                &mut scratch,
                &mut out,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_translate);
criterion_main!(benches);
