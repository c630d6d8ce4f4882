//! The embedded Responses store on its own: real files under the target's tmp directory, driven
//! from monoio tasks on both drivers, as workers will drive it.
//!
//! The crash test re-runs this test binary as a child (selected by `SWITCHYARD_STATE_CHILD`)
//! that puts records and prints each acknowledged id, SIGKILLs it mid-stream and checks every
//! printed id survived. `measure` (ignored; run it with `--release -- --ignored --nocapture
//! measure`) prints latency percentiles, asserting nothing about time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::config::StateConfig;
use switchyard::state::{Clock, Options, Record, State, StateErrorKind};

const CLOSE: Duration = Duration::from_secs(30);

/// A fresh store directory (each `test_all` test runs once per driver, in parallel, hence the
/// number); the next run of the tests empties it again.
fn config(name: &str) -> StateConfig {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = format!(
        "{}/state-{name}-{}",
        env!("CARGO_TARGET_TMPDIR"),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let _ = std::fs::remove_dir_all(&dir);
    StateConfig {
        path: dir,
        ..StateConfig::default()
    }
}

/// One turn: `in_bytes` of input items and `out_bytes` of output items, as JSON arrays.
fn turn(id: &str, previous: Option<&str>, in_bytes: usize, out_bytes: usize) -> Record {
    let item = |role: &str, n: usize| {
        format!(
            r#"[{{"type":"message","role":"{role}","content":[{{"type":"input_text","text":"{id} {}"}}]}}]"#,
            "x".repeat(n.saturating_sub(80))
        )
        .into_bytes()
    };
    let output = item("assistant", out_bytes);
    let mut response = format!(r#"{{"id":"{id}","object":"response","output":"#).into_bytes();
    response.extend_from_slice(&output);
    response.push(b'}');
    Record {
        id: id.into(),
        previous: previous.map(str::to_string),
        model: "gpt-5-mini".into(),
        created_at: 1_700_000_000,
        status: "completed".into(),
        input: item("user", in_bytes),
        output,
        response,
    }
}

/// What `conversation` must give for `turns`, oldest first.
fn joined(turns: &[&Record]) -> Vec<u8> {
    let mut items: Vec<&[u8]> = Vec::new();
    for t in turns {
        for a in [&t.input, &t.output] {
            let a = a.trim_ascii();
            let inner = a[1..a.len() - 1].trim_ascii();
            if !inner.is_empty() {
                items.push(inner);
            }
        }
    }
    let mut out = b"[".to_vec();
    out.extend_from_slice(&items.join(&b","[..]));
    out.push(b']');
    out
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

fn manual_clock(start: u64) -> (Clock, Arc<AtomicU64>) {
    let t = Arc::new(AtomicU64::new(start));
    (Clock::Manual(t.clone()), t)
}

#[monoio::test_all]
async fn put_get_delete_and_conversation_round_trip() {
    let cfg = config("round-trip");
    let state = State::open(&cfg).unwrap();
    assert!(state.ready());
    let t1 = turn("resp_1", None, 300, 200);
    let t2 = turn("resp_2", Some("resp_1"), 300, 200);
    let mut t3 = turn("resp_3", Some("resp_2"), 300, 200);
    t3.input = b" [ ] ".to_vec(); // a turn with no new input items
    for t in [&t1, &t2, &t3] {
        state.put("proj", t.clone()).await.unwrap();
    }
    assert_eq!(
        state.get("proj", "resp_2").await.unwrap().as_ref(),
        Some(&t2)
    );
    assert_eq!(state.get("proj", "resp_9").await.unwrap(), None);
    let whole = state.conversation("proj", "resp_3").await.unwrap().unwrap();
    assert_eq!(text(whole), text(joined(&[&t1, &t2, &t3])));
    assert_eq!(
        text(state.conversation("proj", "resp_1").await.unwrap().unwrap()),
        text(joined(&[&t1]))
    );
    assert_eq!(state.conversation("proj", "resp_9").await.unwrap(), None);
    assert_eq!(state.usage().records, 3);

    // Deleting a turn leaves its ancestors and descendants stored, but breaks the chain.
    assert!(state.delete("proj", "resp_2").await.unwrap());
    assert!(!state.delete("proj", "resp_2").await.unwrap());
    assert_eq!(state.get("proj", "resp_2").await.unwrap(), None);
    assert_eq!(state.conversation("proj", "resp_3").await.unwrap(), None);
    assert_eq!(
        state.get("proj", "resp_3").await.unwrap().as_ref(),
        Some(&t3)
    );
    assert_eq!(
        text(state.conversation("proj", "resp_1").await.unwrap().unwrap()),
        text(joined(&[&t1]))
    );
    assert_eq!(state.usage().records, 2);

    // A put under an existing id replaces it.
    let again = turn("resp_1", None, 100, 100);
    state.put("proj", again.clone()).await.unwrap();
    assert_eq!(state.get("proj", "resp_1").await.unwrap(), Some(again));
    assert_eq!(state.usage().records, 2);
    assert!(state.close(CLOSE));
}

/// Ids are the gateway's own, so a loop means a damaged store; it must end in an error, not hang
/// a reader thread.
#[monoio::test_all]
async fn a_looping_chain_is_an_error() {
    let state = State::open(&config("loop")).unwrap();
    state
        .put("p", turn("resp_a", Some("resp_b"), 100, 100))
        .await
        .unwrap();
    state
        .put("p", turn("resp_b", Some("resp_a"), 100, 100))
        .await
        .unwrap();
    let r = state.conversation("p", "resp_a").await.map(|_| ());
    assert_eq!(r.unwrap_err().kind, StateErrorKind::Corrupt);
    assert!(state.close(CLOSE));
}

#[test]
fn the_handle_is_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<State>();
}

#[monoio::test_all]
async fn another_projects_id_is_invisible() {
    let state = State::open(&config("projects")).unwrap();
    let t1 = turn("resp_1", None, 100, 100);
    state.put("alpha", t1.clone()).await.unwrap();
    assert_eq!(state.get("beta", "resp_1").await.unwrap(), None);
    assert_eq!(state.conversation("beta", "resp_1").await.unwrap(), None);
    assert!(!state.delete("beta", "resp_1").await.unwrap());
    // A chain does not cross projects either.
    state
        .put("beta", turn("resp_2", Some("resp_1"), 100, 100))
        .await
        .unwrap();
    assert_eq!(state.conversation("beta", "resp_2").await.unwrap(), None);
    assert_eq!(state.get("alpha", "resp_1").await.unwrap(), Some(t1));
    assert!(state.close(CLOSE));
}

#[monoio::test_all]
async fn expired_records_are_invisible_at_once_and_swept_in_batches() {
    let (clock, now) = manual_clock(1_000);
    let cfg = StateConfig {
        ttl_s: 100,
        ..config("ttl")
    };
    let opts = Options {
        clock,
        sweep_batch: 2,
        ..Options::default()
    };
    let state = State::open_with(&cfg, opts).unwrap();
    let mut prev: Option<String> = None;
    for i in 0..5 {
        let id = format!("resp_{i}");
        state
            .put("p", turn(&id, prev.as_deref(), 100, 100))
            .await
            .unwrap();
        prev = Some(id);
    }
    now.store(1_050, Ordering::Relaxed);
    state
        .put("p", turn("resp_late", None, 100, 100))
        .await
        .unwrap();

    now.store(1_099, Ordering::Relaxed);
    assert!(state.get("p", "resp_0").await.unwrap().is_some());
    assert!(state.conversation("p", "resp_4").await.unwrap().is_some());
    assert_eq!(state.sweep().await.unwrap(), 0);

    now.store(1_100, Ordering::Relaxed);
    assert_eq!(state.get("p", "resp_0").await.unwrap(), None);
    assert_eq!(state.conversation("p", "resp_4").await.unwrap(), None);
    assert!(!state.delete("p", "resp_3").await.unwrap()); // expired: not there to delete
    assert_eq!(state.usage().records, 5); // invisible, not yet swept (one went with the delete)
    assert!(state.get("p", "resp_late").await.unwrap().is_some());

    // Two per batch; the record stored later is not expired and stays.
    let mut swept = Vec::new();
    loop {
        let n = state.sweep().await.unwrap();
        swept.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(swept, vec![2, 2, 0]);
    let u = state.usage();
    assert_eq!((u.records, u.expired), (1, 4));
    assert!(state.get("p", "resp_late").await.unwrap().is_some());
    assert!(state.close(CLOSE));
}

/// The background sweep runs on its own: nothing asks for it here.
#[monoio::test_all(timer_enabled = true)]
async fn the_background_sweep_removes_expired_records() {
    let (clock, now) = manual_clock(1_000);
    let cfg = StateConfig {
        ttl_s: 10,
        ..config("background-sweep")
    };
    let opts = Options {
        clock,
        sweep_every: Duration::from_millis(5),
        sweep_batch: 3,
        ..Options::default()
    };
    let state = State::open_with(&cfg, opts).unwrap();
    for i in 0..10 {
        state
            .put("p", turn(&format!("resp_{i}"), None, 100, 100))
            .await
            .unwrap();
    }
    now.store(2_000, Ordering::Relaxed);
    // Polls the published count (a condition, with a deadline), not a guessed delay.
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.usage().records > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(state.usage().records, 0);
    assert_eq!(state.usage().expired, 10);
    assert!(state.close(CLOSE));
}

#[monoio::test_all]
async fn past_max_bytes_the_oldest_are_evicted() {
    let cfg = StateConfig {
        max_bytes: 20_000,
        ..config("evict")
    };
    let state = State::open(&cfg).unwrap();
    for i in 0..40 {
        state
            .put("p", turn(&format!("resp_{i:02}"), None, 600, 300))
            .await
            .unwrap();
        assert!(state.usage().live_bytes <= 20_000, "after {i}");
    }
    let u = state.usage();
    assert!(u.evicted > 0);
    assert_eq!(u.records + u.evicted, 40);
    // Exactly the oldest went: every record from the first survivor on is there.
    let mut present = Vec::new();
    for i in 0..40 {
        present.push(
            state
                .get("p", &format!("resp_{i:02}"))
                .await
                .unwrap()
                .is_some(),
        );
    }
    let first = present.iter().position(|&p| p).unwrap();
    assert_eq!(first as u64, u.evicted);
    assert!(present[first..].iter().all(|&p| p));
    assert!(state.close(CLOSE));

    // The count of live bytes survives a restart, so the cap holds across it.
    let state = State::open(&cfg).unwrap();
    assert_eq!(state.usage().live_bytes, u.live_bytes);
    assert_eq!(state.usage().records, u.records);
    state
        .put("p", turn("resp_new", None, 600, 300))
        .await
        .unwrap();
    assert!(state.usage().live_bytes <= 20_000);
    assert_eq!(
        state.get("p", &format!("resp_{first:02}")).await.unwrap(),
        None
    );
    assert!(state.close(CLOSE));
}

#[monoio::test_all]
async fn oversized_and_malformed_records_are_refused() {
    let opts = Options {
        max_record_bytes: 4_000,
        max_conversation_bytes: 4_000,
        ..Options::default()
    };
    let state = State::open_with(&config("too-large"), opts).unwrap();
    let big = state.put("p", turn("resp_big", None, 3_000, 1_000)).await;
    assert_eq!(big.unwrap_err().kind, StateErrorKind::TooLarge);
    assert_eq!(state.get("p", "resp_big").await.unwrap(), None);

    // Each turn fits; the conversation of three does not.
    state
        .put("p", turn("resp_1", None, 1_000, 600))
        .await
        .unwrap();
    state
        .put("p", turn("resp_2", Some("resp_1"), 1_000, 600))
        .await
        .unwrap();
    assert!(state.conversation("p", "resp_2").await.unwrap().is_some());
    state
        .put("p", turn("resp_3", Some("resp_2"), 1_000, 600))
        .await
        .unwrap();
    let long = state.conversation("p", "resp_3").await.map(|_| ());
    assert_eq!(long.unwrap_err().kind, StateErrorKind::TooLarge);

    let mut bad = turn("resp_bad", None, 100, 100);
    bad.output = b"{\"not\":\"an array\"}".to_vec();
    let bad = state.put("p", bad).await;
    assert_eq!(bad.unwrap_err().kind, StateErrorKind::Invalid);
    assert!(state.close(CLOSE));
}

#[monoio::test_all]
async fn a_record_larger_than_max_bytes_is_refused() {
    let cfg = StateConfig {
        max_bytes: 2_000,
        ..config("over-max-bytes")
    };
    let state = State::open(&cfg).unwrap();
    state
        .put("p", turn("resp_1", None, 500, 500))
        .await
        .unwrap();
    let r = state.put("p", turn("resp_2", None, 2_000, 500)).await;
    assert_eq!(r.unwrap_err().kind, StateErrorKind::TooLarge);
    assert!(state.get("p", "resp_1").await.unwrap().is_some());
    assert!(state.close(CLOSE));
}

#[monoio::test_all]
async fn acknowledged_records_survive_a_reopen() {
    let cfg = config("reopen");
    let state = State::open(&cfg).unwrap();
    let t1 = turn("resp_1", None, 2_000, 1_000);
    let t2 = turn("resp_2", Some("resp_1"), 2_000, 1_000);
    state.put("p", t1.clone()).await.unwrap();
    state.put("p", t2.clone()).await.unwrap();
    assert!(state.close(CLOSE));
    let state = State::open(&cfg).unwrap();
    assert_eq!(state.get("p", "resp_2").await.unwrap(), Some(t2.clone()));
    assert_eq!(
        text(state.conversation("p", "resp_2").await.unwrap().unwrap()),
        text(joined(&[&t1, &t2]))
    );
    assert!(state.close(CLOSE));
}

#[test]
fn a_store_in_use_is_refused() {
    let cfg = config("locked");
    let first = State::open(&cfg).unwrap();
    let second = State::open(&cfg).err().expect("a second open must fail");
    assert_eq!(second.kind, StateErrorKind::Locked);
    assert!(second.message.contains("responses.redb"), "{second}");
    assert!(first.close(CLOSE));
    // Once closed, it opens again.
    assert!(State::open(&cfg).unwrap().close(CLOSE));
}

#[test]
fn a_damaged_store_is_refused() {
    let cfg = config("corrupt");
    std::fs::create_dir_all(&cfg.path).unwrap();
    let file = format!("{}/responses.redb", cfg.path);
    // Not a redb file at all.
    std::fs::write(&file, vec![0x5a; 64 * 1024]).unwrap();
    let e = State::open(&cfg)
        .err()
        .expect("a damaged file must be refused");
    assert_eq!(e.kind, StateErrorKind::Corrupt, "{e}");
    assert!(e.message.contains("move it aside"), "{e}");

    // A real store with its pages overwritten past the header.
    let cfg = config("corrupt-pages");
    let state = State::open(&cfg).unwrap();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .unwrap()
        .block_on(async {
            for i in 0..50 {
                let t = turn(&format!("resp_{i}"), None, 2_000, 1_000);
                state.put("p", t).await.unwrap();
            }
        });
    assert!(state.close(CLOSE));
    let file = format!("{}/responses.redb", cfg.path);
    let mut bytes = std::fs::read(&file).unwrap();
    // One record's bytes, in a page nothing reads at open: only a check of every page finds it.
    let marker = b"resp_25 xxxx";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    for b in &mut bytes[at..at + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&file, bytes).unwrap();
    let e = State::open(&cfg)
        .err()
        .expect("damaged pages must be refused");
    assert_eq!(e.kind, StateErrorKind::Corrupt, "{e}");
}

const CHILD_ENV: &str = "SWITCHYARD_STATE_CHILD";

/// The child of `acknowledged_records_survive_kill_9`; a no-op in a normal run.
#[test]
fn child_puts_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg = StateConfig {
        path,
        ..StateConfig::default()
    };
    let state = State::open(&cfg).unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Several writers at once, so the kill lands in group commits too.
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let state = state.clone();
                monoio::spawn(async move {
                    let mut prev: Option<String> = None;
                    // Bounded, should the parent never kill it.
                    for i in 0..20_000 {
                        let id = format!("resp_{w}_{i}");
                        let t = turn(&id, prev.as_deref(), 2_000, 1_000);
                        state.put("p", t).await.unwrap();
                        println!("acked {id}");
                        prev = Some(id);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
    });
}

#[test]
fn acknowledged_records_survive_kill_9() {
    let cfg = config("kill-9");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_puts_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &cfg.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        // Only whole lines: the kill may cut the last one.
        let Some(id) = line
            .strip_suffix(b"\n")
            .and_then(|l| l.strip_prefix(b"acked "))
        else {
            continue;
        };
        acked.push(String::from_utf8(id.to_vec()).unwrap());
        if acked.len() == 300 {
            child.kill().unwrap(); // SIGKILL: no destructor, no clean close
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    assert!(acked.len() >= 300);

    let state = State::open(&cfg).unwrap();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .unwrap()
        .block_on(async {
            for id in &acked {
                assert!(
                    state.get("p", id).await.unwrap().is_some(),
                    "{id} was acknowledged but is gone"
                );
            }
            // Every acknowledged turn's conversation is whole too.
            let last = acked.last().unwrap();
            assert!(state.conversation("p", last).await.unwrap().is_some());
        });
    assert!(state.usage().records >= acked.len() as u64);
    assert!(state.close(CLOSE));
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        v.len(),
        at(0.50),
        at(0.99),
        v[v.len() - 1]
    )
}

/// Latency of `conversation` for a 20-turn conversation (each turn ~2 KB in, ~1 KB out) and of
/// `put`, sequential and with 16 writers sharing group commits. Prints; asserts no timing.
#[test]
#[ignore]
fn measure() {
    let cfg = config("measure");
    let state = State::open(&cfg).unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        // 50 conversations of 20 turns, so the file is not one page.
        let mut puts = Vec::new();
        for c in 0..50 {
            let mut prev: Option<String> = None;
            for t in 0..20 {
                let id = format!("resp_{c}_{t}");
                let rec = turn(&id, prev.as_deref(), 2_000, 1_000);
                let start = Instant::now();
                state.put("p", rec).await.unwrap();
                puts.push(start.elapsed());
                prev = Some(id);
            }
        }
        println!(
            "put (sequential, 3 KB items + response): {}",
            percentiles(puts)
        );

        let mut reads = Vec::new();
        let mut len = 0;
        for i in 0..5_000 {
            let id = format!("resp_{}_19", i % 50);
            let start = Instant::now();
            let conv = state.conversation("p", &id).await.unwrap().unwrap();
            reads.push(start.elapsed());
            len = conv.len();
        }
        println!(
            "conversation (20 turns, {len} bytes): {}",
            percentiles(reads)
        );

        let mut gets = Vec::new();
        for i in 0..5_000 {
            let id = format!("resp_{}_{}", i % 50, i % 20);
            let start = Instant::now();
            state.get("p", &id).await.unwrap().unwrap();
            gets.push(start.elapsed());
        }
        println!("get: {}", percentiles(gets));

        let started = Instant::now();
        let tasks: Vec<_> = (0..16)
            .map(|w| {
                let state = state.clone();
                monoio::spawn(async move {
                    let mut lat = Vec::new();
                    for i in 0..50 {
                        let rec = turn(&format!("resp_w{w}_{i}"), None, 2_000, 1_000);
                        let start = Instant::now();
                        state.put("p", rec).await.unwrap();
                        lat.push(start.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await);
        }
        let n = lat.len();
        println!(
            "put (16 concurrent writers, group commit): {} ({:.0} puts/s)",
            percentiles(lat),
            n as f64 / started.elapsed().as_secs_f64()
        );
    });
    let bytes = std::fs::metadata(format!("{}/responses.redb", cfg.path))
        .unwrap()
        .len();
    assert!(state.close(CLOSE));
    let start = Instant::now();
    let state = State::open(&cfg).unwrap();
    println!(
        "open with verify ({} KiB file): {:?}",
        bytes / 1024,
        start.elapsed()
    );
    assert!(state.close(CLOSE));
}
