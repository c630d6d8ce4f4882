//! Stream translation per pair: a 100-event upstream stream (role or start, 90 text deltas of a
//! few words, one tool call in 6 argument fragments, stop, usage, end), fed in one piece into
//! a fresh translator, with the output buffer reused. Target: under 1 µs per event.
//!
//! Run: `cargo bench --bench translate_stream -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard::translate::names::ToolNames;
use switchyard::translate::stream::{Ids, Translator};
use switchyard::translate::{Api, Dropped, Session};

const TEXT_DELTAS: usize = 90;
const WORDS: [&str; 8] = [
    " the",
    " gateway",
    " translates",
    " \\\"streams\\\"",
    " event",
    " by",
    " event,\\n",
    " café",
];

fn chat_stream() -> Vec<u8> {
    let head = r#"{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"delta":"#;
    let mut s = String::new();
    let mut push = |delta: &str, finish: &str| {
        s.push_str(&format!(
            "data: {head}{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
        ));
    };
    push(
        r#"{"role":"assistant","content":"","refusal":null}"#,
        "null",
    );
    for i in 0..TEXT_DELTAS {
        push(
            &format!(r#"{{"content":"{}{}"}}"#, WORDS[i % 8], WORDS[(i + 3) % 8]),
            "null",
        );
    }
    push(
        r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
        "null",
    );
    for frag in [
        r#"{\""#,
        r#"city\":"#,
        r#"\"Paris"#,
        r#"\",\"unit"#,
        r#"\":\"c\""#,
    ] {
        push(
            &format!(r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":"{frag}"}}}}]}}"#),
            "null",
        );
    }
    push("{}", "\"tool_calls\"");
    s.push_str("data: {\"id\":\"chatcmpl-up\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":51,\"completion_tokens\":300,\"total_tokens\":351,\"prompt_tokens_details\":{\"cached_tokens\":40}}}\n\ndata: [DONE]\n\n");
    s.into_bytes()
}

fn messages_stream() -> Vec<u8> {
    let mut s = String::new();
    let mut ev = |name: &str, data: &str| s.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    ev(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"cache_creation_input_tokens":0,"cache_read_input_tokens":40,"output_tokens":1}}}"#,
    );
    ev(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    );
    for i in 0..TEXT_DELTAS {
        ev(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{}{}"}}}}"#,
                WORDS[i % 8],
                WORDS[(i + 3) % 8]
            ),
        );
    }
    ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    );
    ev(
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
    );
    for frag in [r#"{\"city\":"#, r#"\"Paris\""#, r#"}"#] {
        ev(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":1,"delta":{{"type":"input_json_delta","partial_json":"{frag}"}}}}"#
            ),
        );
    }
    ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    );
    ev(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":300}}"#,
    );
    ev("message_stop", r#"{"type":"message_stop"}"#);
    s.into_bytes()
}

fn bench_pairs(c: &mut Criterion) {
    let chat = chat_stream();
    let messages = messages_stream();
    let mut g = c.benchmark_group("translate_stream");
    for (upstream, client, input, name) in [
        (Api::Messages, Api::Chat, &messages, "messages_to_chat"),
        (Api::Chat, Api::Messages, &chat, "chat_to_messages"),
        (Api::Chat, Api::Responses, &chat, "chat_to_responses"),
        (
            Api::Messages,
            Api::Responses,
            &messages,
            "messages_to_responses",
        ),
    ] {
        let mut tools = ToolNames::default();
        tools.add(None, "get_weather");
        let session = Session {
            client,
            upstream,
            tools,
            dropped: Dropped::new(),
            include_usage: true,
            model: "switchyard-model".into(),
            echo: String::new(),
        };
        let ids = Ids {
            trace_id: "0190b2c3-d4e5-7f00-8a1b-2c3d4e5f6a7b",
            created: 1_700_000_000,
        };
        let mut out = Vec::with_capacity(64 * 1024);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(format!("{name}/100_events_{}B", input.len()), |b| {
            b.iter(|| {
                out.clear();
                let mut t = Translator::new(&session, &ids);
                t.feed(black_box(input), &mut out);
                assert!(t.finish(None, &mut out));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_pairs);
criterion_main!(benches);
