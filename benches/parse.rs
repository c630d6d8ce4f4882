//! Hot-path pure functions at real sizes: request head parse, top-level JSON scan, model
//! splice, chunked decode, SSE event boundaries, trace encoding, route decision.
//!
//! Fixtures are generated here, deterministically (a fixed-seed xorshift picks words), so the
//! numbers do not depend on files and stay comparable between runs:
//! - an OpenAI Python SDK request head (the headers `openai` 1.x sends through httpx);
//! - a ~2 KB chat completion request (system prompt, a short conversation, one tool);
//! - a ~1 MB request of long messages: prose with `\n`, `\"` and non-ASCII (é, 東京, emoji);
//! - a ~64 KB OpenAI chat completion stream (`chat.completion.chunk` events), raw and in
//!   the chunked coding with one event per chunk (~200 bytes), as OpenAI sends it.
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use switchyard::config::Config;
use switchyard::http1::{parse_request_head, ChunkedDecoder};
use switchyard::route::policy::{self, Features};
use switchyard::route::{caps, token_digest, RouteTable};
use switchyard::scan::{push_json_string, scan_top_level, splice, Key};
use switchyard::trace::{write_trace_sse, Score, TraceForm, TraceId, TraceInfo};

/// Request heads are parsed against the default `server.max_header_bytes`.
const MAX_HEAD: usize = 16 * 1024;

fn bench_head(c: &mut Criterion) {
    let head = fixtures::sdk_head(2048);
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Bytes(head.len() as u64));
    g.bench_function(
        format!("parse_request_head/openai_sdk_{}B", head.len()),
        |b| {
            b.iter(|| {
                parse_request_head(black_box(&head), MAX_HEAD)
                    .unwrap()
                    .unwrap()
            })
        },
    );
    // Baseline: httparse alone, without our checks, spans and framing decision.
    g.bench_function(format!("httparse_only/openai_sdk_{}B", head.len()), |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(black_box(&head)).unwrap().unwrap()
        })
    });
    g.finish();
}

fn bench_scan(c: &mut Criterion) {
    let small = fixtures::chat_2k();
    let large = fixtures::chat_1m();
    let mut g = c.benchmark_group("scan");
    for (name, body) in [("chat_2KB", &small), ("chat_1MB", &large)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("scan_top_level/{name}_{}B", body.len()), |b| {
            b.iter(|| scan_top_level(black_box(body)).unwrap())
        });
    }

    // Everything the gateway does to a request before routing: head, then body.
    let head = fixtures::sdk_head(small.len());
    let mut request = head.clone();
    request.extend_from_slice(&small);
    g.throughput(Throughput::Bytes(request.len() as u64));
    g.bench_function(format!("head_and_scan/chat_2KB_{}B", request.len()), |b| {
        b.iter(|| {
            let buf = black_box(&request);
            let h = parse_request_head(buf, MAX_HEAD).unwrap().unwrap();
            scan_top_level(&buf[h.head_len..]).unwrap()
        })
    });

    // The model rewrite: the upstream id spliced over the client's `model` value.
    let top = scan_top_level(&small).unwrap();
    let span = top.get(Key::Model).unwrap();
    let mut replacement = Vec::new();
    push_json_string(&mut replacement, "gpt-4o-mini-2024-07-18");
    let mut out = Vec::with_capacity(small.len() + 64);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function(format!("splice_model/chat_2KB_{}B", small.len()), |b| {
        b.iter(|| {
            out.clear();
            splice(black_box(&small), span, &replacement, &mut out);
            out.len()
        })
    });
    g.finish();
}

fn bench_stream(c: &mut Criterion) {
    let sse = fixtures::sse_stream(64 * 1024);
    let chunked = fixtures::chunk_events(&sse);
    let mut g = c.benchmark_group("stream");

    g.throughput(Throughput::Bytes(chunked.len() as u64));
    g.bench_function(
        format!("chunked_decode_in_place/sse_64KB_{}B", chunked.len()),
        |b| {
            b.iter_batched_ref(
                || chunked.clone(),
                |buf| {
                    let d = ChunkedDecoder::new().decode_in_place(buf).unwrap();
                    debug_assert!(d.done && d.payload == sse.len());
                    d.payload
                },
                BatchSize::LargeInput,
            )
        },
    );

    let events = sse.windows(2).filter(|w| w == b"\n\n").count();
    g.throughput(Throughput::Bytes(sse.len() as u64));
    g.bench_function(format!("sse_boundaries_memmem_find/{}B", sse.len()), |b| {
        b.iter(|| {
            let buf = black_box(&sse[..]);
            let (mut n, mut at) = (0, 0);
            while let Some(i) = memchr::memmem::find(&buf[at..], b"\n\n") {
                n += 1;
                at += i + 2;
            }
            assert_eq!(n, events);
            n
        })
    });
    let finder = memchr::memmem::Finder::new(b"\n\n");
    g.bench_function(
        format!("sse_boundaries_memmem_finder/{}B", sse.len()),
        |b| b.iter(|| finder.find_iter(black_box(&sse[..])).count()),
    );
    g.finish();
}

fn bench_trace(c: &mut Criterion) {
    let id = TraceId::new();
    let scores = [
        Score {
            model: "gpt-4o-mini",
            score: 0.8125,
        },
        Score {
            model: "claude-haiku-4-5",
            score: 0.6431,
        },
        Score {
            model: "llama-3.3-70b",
            score: 0.3,
        },
    ];
    let info = TraceInfo {
        id: &id,
        model: "gpt-4o-mini",
        provider: "openai",
        policies_json: br#"["health","cheapest","fastest"]"#,
        scores: &scores,
        attempts: &[],
        cost_estimate: 0.000_213_75,
        dropped: &[],
    };
    let mut out = Vec::with_capacity(512);
    write_trace_sse(&mut out, TraceForm::Chunk, &info);
    let mut g = c.benchmark_group("trace");
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function(format!("write_trace_sse/3_scores_{}B", out.len()), |b| {
        b.iter(|| {
            out.clear();
            write_trace_sse(&mut out, TraceForm::Chunk, black_box(&info));
            out.len()
        })
    });
    g.finish();
}

fn bench_route(c: &mut Criterion) {
    const TOKEN: &str = "sk-lr-7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b4d6f8a0c";
    let cfg = Config::parse(&fixtures::route_config(20, TOKEN), "<bench>").unwrap();
    let keys = vec![String::new(); cfg.providers.len()];
    let table = RouteTable::build(&cfg, &keys, 1, None, &mut |_| {}).unwrap();
    let project = table.project_by_slug(b"bench").unwrap();
    let feats = Features {
        caps: caps::TOOLS,
        input_tokens: 600,
        max_output: 256,
    };
    let now = 1_732_550_000_000;
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decide/20_models_6_policies", |b| {
        b.iter(|| policy::decide(&table, project, black_box(Some("model-7")), &feats, now).unwrap())
    });
    g.throughput(Throughput::Bytes(TOKEN.len() as u64));
    g.bench_function(format!("projects_for_token/{}B", TOKEN.len()), |b| {
        b.iter(|| table.projects_for_token(black_box(TOKEN.as_bytes())).len())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_head,
    bench_scan,
    bench_stream,
    bench_trace,
    bench_route
);
criterion_main!(benches);

mod fixtures {
    use super::{push_json_string, token_digest};
    use std::fmt::Write;

    /// xorshift64*, fixed seed: the same fixtures every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const WORDS: &[&str] = &[
        "the",
        "request",
        "model",
        "gateway",
        "stream",
        "token",
        "latency",
        "is",
        "and",
        "of",
        "a",
        "to",
        "in",
        "response",
        "upstream",
        "provider",
        "budget",
        "we",
        "should",
        "cache",
        "retry",
        "when",
        "the",
        "context",
        "window",
        "fits",
        "with",
        "café",
        "naïve",
        "Zürich",
        "東京",
        "данные",
        "🙂",
        "résumé",
        "for",
        "it",
        "returns",
        "JSON",
        "field",
        "value",
    ];

    /// Prose of about `len` bytes: sentences, some quoted, paragraphs split by `\n\n`, lines
    /// by `\n`, the way chat messages and pasted documents look.
    fn prose(rng: &mut Rng, len: usize) -> String {
        let mut s = String::with_capacity(len + 64);
        while s.len() < len {
            let quoted = rng.below(6) == 0;
            if quoted {
                s.push_str("He said \"");
            }
            for i in 0..4 + rng.below(12) {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(WORDS[rng.below(WORDS.len())]);
            }
            s.push_str(if quoted { ".\"" } else { "." });
            s.push_str(match rng.below(10) {
                0 => "\n\n",
                1 | 2 => "\n",
                _ => " ",
            });
        }
        s
    }

    /// The head the OpenAI Python SDK (1.x, over httpx) sends for a chat completion.
    pub fn sdk_head(content_length: usize) -> Vec<u8> {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\n\
             Host: switchyard.internal:3000\r\n\
             Accept-Encoding: gzip, deflate\r\n\
             Connection: keep-alive\r\n\
             Accept: application/json\r\n\
             Content-Type: application/json\r\n\
             User-Agent: OpenAI/Python 1.54.3\r\n\
             X-Stainless-Lang: python\r\n\
             X-Stainless-Package-Version: 1.54.3\r\n\
             X-Stainless-OS: Linux\r\n\
             X-Stainless-Arch: x64\r\n\
             X-Stainless-Runtime: CPython\r\n\
             X-Stainless-Runtime-Version: 3.12.7\r\n\
             Authorization: Bearer sk-lr-7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b4d6f8a0c\r\n\
             X-Stainless-Async: false\r\n\
             x-stainless-retry-count: 0\r\n\
             x-stainless-read-timeout: 600\r\n\
             Content-Length: {content_length}\r\n\r\n"
        )
        .into_bytes()
    }

    fn message(out: &mut String, role: &str, content: &str) {
        let mut json = Vec::new();
        push_json_string(&mut json, content);
        let _ = write!(
            out,
            r#"{{"role":"{role}","content":{}}}"#,
            String::from_utf8(json).unwrap()
        );
    }

    /// A chat completion request: system prompt, a conversation, one tool; about 2 KB.
    pub fn chat_2k() -> Vec<u8> {
        let mut rng = Rng(0x5eed_0001);
        let mut s = String::from(r#"{"model":"gpt-4o-mini","messages":["#);
        message(
            &mut s,
            "system",
            "You are a concise assistant for an operations team. Answer in plain text, \
             cite the runbook section when you use one, and say \"I don't know\" rather \
             than guessing.",
        );
        for (i, len) in [220, 380, 160, 300].into_iter().enumerate() {
            s.push(',');
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            message(&mut s, role, &prose(&mut rng, len));
        }
        s.push_str(
            r#"],"tools":[{"type":"function","function":{"name":"get_runbook","description":"Fetch a runbook section by id","parameters":{"type":"object","properties":{"id":{"type":"string","description":"Section id, e.g. \"db-failover\""}},"required":["id"]}}}],"tool_choice":"auto","temperature":0.2,"max_tokens":512,"stream":true,"stream_options":{"include_usage":true},"user":"ops-bot"}"#,
        );
        let body = s.into_bytes();
        assert!((1800..2400).contains(&body.len()), "{}", body.len());
        body
    }

    /// A request of long messages (pasted documents), just over 1 MiB.
    pub fn chat_1m() -> Vec<u8> {
        let mut rng = Rng(0x5eed_0002);
        let mut s = String::from(r#"{"model":"gpt-4.1","messages":["#);
        message(&mut s, "system", "Summarise the documents the user pastes.");
        let mut i = 0;
        while s.len() < 1 << 20 {
            s.push(',');
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            let len = 4096 + rng.below(8192);
            message(&mut s, role, &prose(&mut rng, len));
            i += 1;
        }
        s.push_str(r#"],"max_tokens":4096,"stream":true}"#);
        s.into_bytes()
    }

    /// An OpenAI chat completion stream of at least `len` bytes, `data: [DONE]` included.
    pub fn sse_stream(len: usize) -> Vec<u8> {
        let mut rng = Rng(0x5eed_0003);
        const HEAD: &str = r#"data: {"id":"chatcmpl-AXm3kQ9vT2bLr8Yp1ZcW4nF6eH0sJ","object":"chat.completion.chunk","created":1732550000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":"#;
        let mut s = format!(
            r#"{HEAD}{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}]}}"#
        );
        s.push_str("\n\n");
        while s.len() < len {
            let mut word = String::from(" ");
            word.push_str(WORDS[rng.below(WORDS.len())]);
            if rng.below(12) == 0 {
                word.push('\n');
            }
            let mut json = Vec::new();
            push_json_string(&mut json, &word);
            let _ = write!(
                s,
                r#"{HEAD}{{"content":{}}},"logprobs":null,"finish_reason":null}}]}}"#,
                String::from_utf8(json).unwrap()
            );
            s.push_str("\n\n");
        }
        let _ = write!(
            s,
            r#"{HEAD}{{}},"logprobs":null,"finish_reason":"stop"}}]}}"#
        );
        s.push_str("\n\ndata: [DONE]\n\n");
        s.into_bytes()
    }

    /// `sse` in the chunked coding, one event per chunk.
    pub fn chunk_events(sse: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(sse.len() + sse.len() / 20);
        let mut rest = sse;
        while !rest.is_empty() {
            let end = memchr::memmem::find(rest, b"\n\n").map_or(rest.len(), |i| i + 2);
            out.extend_from_slice(format!("{end:x}\r\n").as_bytes());
            out.extend_from_slice(&rest[..end]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[end..];
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// One project `bench` over `n` models of three mock providers, every policy on.
    pub fn route_config(n: usize, token: &str) -> String {
        let digest: String = token_digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut s = String::from("[server]\nlisten = \"127.0.0.1:3000\"\n\n");
        for p in ["mock-a", "mock-b", "mock-c"] {
            let _ = writeln!(s, "[[providers]]\nid = \"{p}\"\nkind = \"mock\"\n");
        }
        let mut ids = Vec::new();
        for i in 0..n {
            let provider = ["mock-a", "mock-b", "mock-c"][i % 3];
            let _ = writeln!(
                s,
                "[[models]]\nid = \"model-{i}\"\nprovider = \"{provider}\"\n\
                 input_per_million = {}.{:02}\noutput_per_million = {}.5\n\
                 context_window = {}\ncapabilities = [\"tools\", \"json\"]\n",
                i % 7,
                (i * 37) % 100,
                i % 11,
                32_000 * (1 + i % 4),
            );
            ids.push(format!("\"model-{i}\""));
        }
        let _ = writeln!(
            s,
            "[[projects]]\nslug = \"bench\"\ntokens = [\"sha256:{digest}\"]\n\
             models = [{}]\n\
             policies = [\"health\", \"capability\", \"context\", \"budget\", \"cheapest\", \"fastest\"]\n\
             budget = {{ max_spend_usd = 1000.0 }}",
            ids.join(", ")
        );
        s
    }
}
