//! The usage ledger's per-request costs: formatting one line (a worker's share) and formatting
//! plus appending it to the rotating file (the writer thread's, so its lines/s ceiling).
//! `cargo bench --bench ledger`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard::relay::Usage;
use switchyard::usage::ledger::{Entry, RotatingFile, Sink};

fn entry(digest: &[u8; 32]) -> Entry<'_> {
    Entry {
        ts_ms: 1_796_258_096_789,
        trace_id: "01a2396f-e177-7336-9fe7-e34b1da8dab7",
        project: Some("team-payments"),
        token_digest: Some(digest),
        route: "/v1/chat/completions",
        model: Some("gpt-4o-mini"),
        provider: Some("openai"),
        status: 200,
        attempts: 1,
        usage: Some(Usage {
            input: 1234,
            output: 321,
            cache_read: 512,
        }),
        cost_usd: 0.000_417_3,
        latency_ms: 812.345,
        ttfb_ms: Some(301.5),
    }
}

fn bench(c: &mut Criterion) {
    let digest = [0x5a; 32];
    let e = entry(&digest);
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(512);
    g.bench_function("format_line", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&e).write(&mut buf);
            black_box(buf.len())
        })
    });
    let dir = std::env::temp_dir().join(format!("switchyard-bench-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut file =
        RotatingFile::open(dir.join("usage.ndjson"), 100 << 20, 2).expect("open the ledger");
    g.bench_function("format_and_append", |b| {
        b.iter(|| {
            buf.clear();
            e.write(&mut buf);
            file.line(&buf);
        })
    });
    g.finish();
    file.flush();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
