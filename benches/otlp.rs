//! The span's per-request cost on a worker (encoding one span object into a reused buffer, what
//! `otlp::record` does before its `try_send`), and the passthrough stream tap per relayed read
//! now that it also looks for the finish reason. `cargo bench --bench otlp`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use switchyard::config::ProviderKind;
use switchyard::endpoint::{Endpoint, Protocol};
use switchyard::otlp::Span;
use switchyard::relay::Usage;
use switchyard::trace::TraceId;
use switchyard::usage::{Finish, StreamTap};

/// One relayed read of a chat stream: 40 content chunks (`"finish_reason":null` each), the
/// last chunk with its reason, the usage chunk and `[DONE]` (~9 KB).
fn chat_stream_read() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..40 {
        out.extend_from_slice(format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token {i} \"}},\"finish_reason\":null}}]}}\n\n").as_bytes());
    }
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":1234,\"completion_tokens\":41,\"total_tokens\":1275}}\n\ndata: [DONE]\n\n");
    out
}

fn bench(c: &mut Criterion) {
    let id = TraceId::new();
    let parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let s = Span {
        trace_id: &id,
        parent: Some(parent),
        started: Instant::now(),
        method: "POST",
        route: "/v1/chat/completions",
        endpoint: Some(Endpoint::ChatCompletions),
        status: 200,
        project: Some("team-payments"),
        requested_model: Some(b"\"gpt-4o-mini\""),
        model: Some("gpt-4o-mini-2024-07-18"),
        provider: Some("openai"),
        provider_kind: Some(ProviderKind::Openai),
        attempts: 1,
        usage: Some(Usage {
            input: 1234,
            output: 321,
            cache_read: 512,
        }),
        finish: Finish::new(b"stop"),
        cost_usd: 0.000_417_3,
    };
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(2048);
    g.bench_function("encode_span", |b| {
        b.iter(|| {
            buf.clear();
            let s = black_box(&s);
            s.write(&s.ids(0x1234_5678), 1_796_258_096_789_000_000, &mut buf);
            black_box(buf.len())
        })
    });
    let read = chat_stream_read();
    g.throughput(Throughput::Bytes(read.len() as u64));
    g.bench_function("stream_tap_chat_read", |b| {
        b.iter(|| {
            let mut tap = StreamTap::new(Protocol::OpenAi);
            tap.feed(black_box(&read));
            black_box((tap.usage(), tap.finish()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
