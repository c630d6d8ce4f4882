//! Reaching Redis from a worker, the two designs measured against one local `redis-server`
//! (started here by the tests' harness, installed when missing), plus the codec alone.
//!
//! - (a) `switchyard::redis::Redis`: the per-worker client on the worker's monoio runtime,
//!   one pipelined connection shared by the worker's tasks.
//! - (b) a dedicated thread owning a connection of the sync `redis` crate; worker tasks send
//!   it commands over a channel and await replies woken across threads. Twice: one command
//!   per round trip (b1), and every queued command drained into one pipeline per round trip
//!   (b2, the best such a thread can do).
//!
//! Each is measured on one worker (a monoio runtime on this thread, io_uring then the legacy
//! driver): the round trip of a `GET` of a 2 KB value, one at a time (p50, p99), and with 64
//! tasks issuing `GET`s concurrently (throughput, p50, p99). Figures are printed, not
//! asserted. The codec (pure) is measured with criterion first.
//!
//! Run: `cargo bench --bench redis` (criterion's options after `--`; the end-to-end part
//! always runs).

#[allow(dead_code)]
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use criterion::{Criterion, Throughput};
use redis_server::RedisServer;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use switchyard::redis::resp::{parse_reply, write_command};
use switchyard::redis::{Health, Redis, RedisConfig, Value};

const VALUE_BYTES: usize = 2048;
const KEY: &[u8] = b"bench:value";
const SEQUENTIAL: usize = 20_000;
const TASKS: usize = 64;
const PER_TASK: usize = 1_500;
const WARMUP: usize = 2_000;

fn value() -> Vec<u8> {
    (0..VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect()
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp");
    let v = value();
    let mut one = Vec::new();
    one.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
    one.extend_from_slice(&v);
    one.extend_from_slice(b"\r\n");
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("parse_bulk_2KB", |b| {
        b.iter(|| parse_reply(black_box(&one)))
    });
    let mut mget = b"*16\r\n".to_vec();
    for _ in 0..16 {
        mget.extend_from_slice(&one);
    }
    g.throughput(Throughput::Bytes(mget.len() as u64));
    g.bench_function("parse_array_16x2KB", |b| {
        b.iter(|| parse_reply(black_box(&mget)))
    });
    let mut out = Vec::with_capacity(4096);
    g.throughput(Throughput::Bytes(VALUE_BYTES as u64));
    g.bench_function("write_set_2KB", |b| {
        b.iter(|| {
            out.clear();
            write_command(&mut out, black_box(&[b"SET", KEY, &v]));
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// (b): a dedicated thread with the sync client.

struct Done {
    state: Mutex<(Option<usize>, Option<Waker>)>,
}

struct Job {
    key: Vec<u8>,
    done: Arc<Done>,
}

struct ThreadClient {
    tx: mpsc::Sender<Job>,
}

impl ThreadClient {
    fn start(url: &str, batch: bool) -> ThreadClient {
        let client = redis::Client::open(url).expect("redis url");
        let mut con = client.get_connection().expect("sync connection");
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            let mut jobs = Vec::new();
            while let Ok(first) = rx.recv() {
                jobs.push(first);
                if batch {
                    while let Ok(j) = rx.try_recv() {
                        jobs.push(j);
                    }
                }
                let lens: Vec<usize> = if jobs.len() == 1 {
                    let v: redis::Value = redis::cmd("GET")
                        .arg(&jobs[0].key)
                        .query(&mut con)
                        .expect("GET");
                    vec![len_of(&v)]
                } else {
                    let mut p = redis::pipe();
                    for j in &jobs {
                        p.cmd("GET").arg(&j.key);
                    }
                    let vs: Vec<redis::Value> = p.query(&mut con).expect("pipeline");
                    vs.iter().map(len_of).collect()
                };
                for (j, n) in jobs.drain(..).zip(lens) {
                    let mut s = j.done.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.0 = Some(n);
                    if let Some(w) = s.1.take() {
                        w.wake();
                    }
                }
            }
        });
        ThreadClient { tx }
    }

    async fn get(&self, key: &[u8]) -> usize {
        let done = Arc::new(Done {
            state: Mutex::new((None, None)),
        });
        let job = Job {
            key: key.to_vec(),
            done: done.clone(),
        };
        self.tx.send(job).expect("redis thread alive");
        DoneWait(&done).await
    }
}

fn len_of(v: &redis::Value) -> usize {
    match v {
        redis::Value::BulkString(b) => b.len(),
        _ => 0,
    }
}

struct DoneWait<'a>(&'a Done);

impl Future for DoneWait<'_> {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(n) => Poll::Ready(n),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measurement, the same for every backend.

enum Backend {
    Ours(Redis),
    Thread(ThreadClient),
}

impl Backend {
    async fn get(&self) -> usize {
        match self {
            Backend::Ours(r) => match r.cmd(&[b"GET", KEY]).await {
                Ok(Value::Bulk(b)) => b.len(),
                other => panic!("GET: {other:?}"),
            },
            Backend::Thread(t) => t.get(KEY).await,
        }
    }
}

struct Figures {
    seq_p50: Duration,
    seq_p99: Duration,
    ops_per_s: f64,
    conc_p50: Duration,
    conc_p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn measure(b: Rc<Backend>) -> Figures {
    for _ in 0..WARMUP {
        assert_eq!(b.get().await, VALUE_BYTES);
    }
    let mut seq = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        black_box(b.get().await);
        seq.push(t.elapsed());
    }
    seq.sort();
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let b = b.clone();
            monoio::spawn(async move {
                let mut lat = Vec::with_capacity(PER_TASK);
                for _ in 0..PER_TASK {
                    let t = Instant::now();
                    black_box(b.get().await);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut conc = Vec::with_capacity(TASKS * PER_TASK);
    for t in tasks {
        conc.extend(t.await);
    }
    let took = start.elapsed();
    conc.sort();
    Figures {
        seq_p50: percentile(&seq, 0.50),
        seq_p99: percentile(&seq, 0.99),
        ops_per_s: conc.len() as f64 / took.as_secs_f64(),
        conc_p50: percentile(&conc, 0.50),
        conc_p99: percentile(&conc, 0.99),
    }
}

/// Measures every design on the current runtime; one table row each.
async fn measure_all(driver: &str, url: &str) -> Vec<String> {
    let mut cfg = RedisConfig::from_url(url).expect("url");
    cfg.command_timeout = Duration::from_secs(5);
    let designs = [
        "a  per-worker monoio client",
        "b1 sync thread, 1 cmd/trip",
        "b2 sync thread, pipelined",
    ];
    let mut rows = Vec::new();
    for (i, name) in designs.into_iter().enumerate() {
        let backend = match i {
            0 => Backend::Ours(Redis::new(Arc::new(cfg.clone()), Arc::new(Health::new()))),
            1 => Backend::Thread(ThreadClient::start(url, false)),
            _ => Backend::Thread(ThreadClient::start(url, true)),
        };
        let f = measure(Rc::new(backend)).await;
        rows.push(format!(
            "{driver:<8} {name:<28} {:>8.1} {:>8.1} {:>10.0} {:>8.1} {:>8.1}",
            micros(f.seq_p50),
            micros(f.seq_p99),
            f.ops_per_s,
            micros(f.conc_p50),
            micros(f.conc_p99)
        ));
    }
    rows
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_codec(&mut c);
    c.final_summary();

    let server = RedisServer::start();
    server.query(&[b"SET", KEY, &value()]);
    let url = server.url(0);
    let mut rows = Vec::new();
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => rows.extend(rt.block_on(measure_all("io_uring", &url))),
        Err(e) => rows.push(format!("io_uring unavailable: {e}")),
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => rows.extend(rt.block_on(measure_all("legacy", &url))),
        Err(e) => rows.push(format!("legacy unavailable: {e}")),
    }
    println!(
        "\nGET of a {VALUE_BYTES} B value against a local redis-server, one worker; \
         latency in µs ({SEQUENTIAL} one at a time; {TASKS} tasks x {PER_TASK} concurrently)"
    );
    println!(
        "{:<8} {:<28} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "driver", "design", "seq p50", "seq p99", "64x ops/s", "64x p50", "64x p99"
    );
    for r in rows {
        println!("{r}");
    }
}
