//! The token counter: adversarial 1 MB texts and a typical prompt through `tokens::count`, and
//! `/v1/messages/count_tokens` bodies of 4 KB, 78 KB and 1 MB through `count_request` and
//! `estimate_anthropic`, with the simd-json parse alone as the baseline of what bytes/4 costs.
//!
//! Fixtures are generated here, deterministically (a fixed-seed xorshift):
//! - 1 MB of one repeated character, of spaces, of random bytes read as lossy UTF-8 (which grows
//!   to ~1.9 MB: each invalid byte becomes U+FFFD), of random ASCII letters without spaces;
//! - a ~4 KB prompt of prose with `\n`, quotes and non-ASCII (é, 東京, emoji);
//! - Anthropic Messages bodies: a system prompt, a conversation of prose turns, a tool call and
//!   its result, one tool definition, padded with turns to the size.
//!
//! Vocabularies are built before measuring (`tokens::warm`).
//! Run: `cargo bench --bench tokens -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard::scan::push_json_string;
use switchyard::tokens::{self, count, count_request, estimate_anthropic, Encoding};

const MB: usize = 1 << 20;

fn bench_count(c: &mut Criterion) {
    tokens::warm();
    let mut g = c.benchmark_group("count");
    g.sample_size(10);
    let cases = [
        ("repeated_char_1MB", "a".repeat(MB)),
        ("spaces_1MB", " ".repeat(MB)),
        ("random_bytes_lossy_1MB", fixtures::random_lossy(MB)),
        ("random_letters_1MB", fixtures::random_letters(MB)),
        (
            "prose_1MB",
            fixtures::prose(&mut fixtures::Rng(0x5eed_0005), MB),
        ),
        (
            "prompt_4KB",
            fixtures::prose(&mut fixtures::Rng(0x5eed_0004), 4096),
        ),
    ];
    for (name, text) in &cases {
        g.throughput(Throughput::Bytes(text.len() as u64));
        for enc in [Encoding::O200k, Encoding::Cl100k] {
            g.bench_function(format!("{}/{name}", enc.name()), |b| {
                b.iter(|| count(enc, black_box(text)))
            });
        }
    }
    g.finish();
}

fn bench_request(c: &mut Criterion) {
    tokens::warm();
    let mut g = c.benchmark_group("count_request");
    g.sample_size(10);
    for (name, size) in [("4KB", 4 * 1024), ("78KB", 78 * 1024), ("1MB", MB)] {
        let body = fixtures::messages_body(size);
        let mut scratch = Vec::with_capacity(body.len());
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("parse_only/{name}"), |b| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(&body));
                simd_json::to_borrowed_value(&mut scratch).is_ok()
            })
        });
        for enc in [Encoding::O200k, Encoding::Cl100k] {
            g.bench_function(format!("{}/{name}", enc.name()), |b| {
                b.iter(|| count_request(black_box(&body), enc, &mut scratch).unwrap())
            });
        }
        g.bench_function(format!("estimate_anthropic/{name}"), |b| {
            b.iter(|| estimate_anthropic(black_box(&body), &mut scratch).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_count, bench_request);
criterion_main!(benches);

mod fixtures {
    use super::push_json_string;

    /// xorshift64*, fixed seed: the same fixtures every run.
    pub struct Rng(pub u64);

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
        "don't",
        "1024",
    ];

    /// `len` random bytes read as lossy UTF-8.
    pub fn random_lossy(len: usize) -> String {
        let mut rng = Rng(0x5eed_0006);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `len` random ASCII letters, both cases, no spaces: one pre-tokenizer piece per case run.
    pub fn random_letters(len: usize) -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = Rng(0x5eed_0007);
        (0..len)
            .map(|_| char::from(LETTERS[rng.below(LETTERS.len())]))
            .collect()
    }

    /// Prose of about `len` bytes: sentences, some quoted, paragraphs split by `\n\n`.
    pub fn prose(rng: &mut Rng, len: usize) -> String {
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

    /// An Anthropic Messages body of about `size` bytes.
    pub fn messages_body(size: usize) -> Vec<u8> {
        let mut rng = Rng(0x5eed_0008 ^ size as u64);
        let mut b = Vec::with_capacity(size + 16 * 1024);
        b.extend_from_slice(br#"{"model":"gpt-4o","max_tokens":1024,"system":"#);
        push_json_string(
            &mut b,
            "You are a concise assistant for an operations team. Cite the runbook section you use.",
        );
        b.extend_from_slice(br#","tools":[{"name":"get_runbook","description":"Fetch a runbook section by id.","input_schema":{"type":"object","properties":{"id":{"type":"string","description":"Section id"},"format":{"type":"string","enum":["text","markdown"]}},"required":["id"]}}],"messages":["#);
        b.extend_from_slice(br#"{"role":"user","content":"#);
        push_json_string(&mut b, &prose(&mut rng, 600));
        b.extend_from_slice(br#"},{"role":"assistant","content":[{"type":"text","text":"Checking the runbook."},{"type":"tool_use","id":"toolu_01","name":"get_runbook","input":{"id":"db-failover","format":"text"}}]},"#);
        b.extend_from_slice(br#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"#);
        push_json_string(&mut b, &prose(&mut rng, 800));
        b.extend_from_slice(b"}]}");
        let mut user = false;
        while b.len() + 64 < size {
            let room = size - b.len() - 40;
            let len = room.min(if size > 64 * 1024 {
                4096 + rng.below(8192)
            } else {
                600
            });
            b.extend_from_slice(if user {
                br#",{"role":"user","content":"#
            } else {
                br#",{"role":"assistant","content":"#
            });
            push_json_string(&mut b, &prose(&mut rng, len));
            b.push(b'}');
            user = !user;
        }
        b.extend_from_slice(b"]}");
        b
    }
}
