//! What the relay's edge checks cost per relayed byte: the provider-key scan
//! (`relay::scrub`), alone and with the end-event watch of a passthrough stream
//! (`relay::watch`), over 1 MiB of chat-completion SSE events fed in 16 KiB reads, the
//! relay's read size. A naive scan (every 8-byte window of the key searched with `memmem`)
//! is measured beside it, the rule the gateway applied to error bodies before.
//!
//! Run: `cargo bench --bench scrub -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard::relay::scrub::{KeySet, KeyTail, FRAGMENT};
use switchyard::relay::watch::Watch;
use switchyard::translate::sse::Framer;
use switchyard::translate::Api;

/// A key shaped like the providers' (prefix, then random base62).
const KEY: &[u8] = b"sk-proj-Xq7Lm2Vt9Rk4Pz8Wn3Hb6Jd1Fs5Gc0Ya7Ue2Io9Tr4Ew8Qp3Zx6Cv1Bn5Mk";
const READ: usize = 16 * 1024;
const WORDS: [&str; 8] = [
    " the", " gateway", " relays", " streams", " event", " by", " event,", " quickly",
];

/// 1 MiB of chat-completion chunks, each a few words, as a provider streams them.
fn stream() -> Vec<u8> {
    let mut s = Vec::with_capacity(1 << 20);
    let mut i = 0;
    while s.len() < (1 << 20) - 512 {
        s.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-AbC123\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}{}\"}},\"finish_reason\":null}}]}}\n\n",
                WORDS[i % 8],
                WORDS[(i + 3) % 8]
            )
            .as_bytes(),
        );
        i += 1;
    }
    s.extend_from_slice(b"data: [DONE]\n\n");
    s
}

fn naive(hay: &[u8]) -> bool {
    KEY.windows(FRAGMENT)
        .any(|w| memchr::memmem::find(hay, w).is_some())
}

fn bench(c: &mut Criterion) {
    let body = stream();
    let keys = KeySet::new(KEY);
    let mut g = c.benchmark_group("relay_checks");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("key_scan", |b| {
        b.iter(|| {
            let mut t = KeyTail::default();
            let mut hit = false;
            for read in black_box(&body).chunks(READ) {
                hit |= t.feed(&keys, read);
            }
            assert!(!hit);
        })
    });
    let mut framer = Framer::new();
    g.bench_function("key_scan_and_end_watch", |b| {
        b.iter(|| {
            let mut t = KeyTail::default();
            let mut w = Watch::new(Api::Chat, std::mem::take(&mut framer));
            let mut hit = false;
            for read in black_box(&body).chunks(READ) {
                hit |= t.feed(&keys, read);
                w.feed(read);
            }
            assert!(!hit);
            black_box(w.finish());
            framer = w.into_framer();
        })
    });
    g.bench_function("naive_window_memmem", |b| {
        b.iter(|| {
            let hit = black_box(&body).chunks(READ).any(naive);
            assert!(!hit);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
