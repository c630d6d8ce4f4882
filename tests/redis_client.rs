//! The per-worker Redis client against a real `redis-server` (started per test on a free
//! port, see `common::redis_server`), on both monoio drivers: round trips, one pipelined
//! connection shared by many tasks, the bound on pending commands, failing fast when Redis is
//! down or slow, reconnecting, and the handshake's AUTH and SELECT.
//!
//! Waiting is polling a condition until a deadline; nothing sleeps to synchronise.

mod common;

use common::redis_server::{RedisOptions, RedisServer};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use switchyard::redis::{Health, Redis, RedisConfig, RedisError, Value};

/// Every wait for a state change gives up after this.
const WAIT: Duration = Duration::from_secs(10);

/// A config for `url` with test deadlines: a long command timeout (so a quick error is
/// provably not a timeout) and a short backoff cap (so reconnects are quick).
fn config(url: &str) -> RedisConfig {
    let mut c = RedisConfig::from_url(url).expect("redis url");
    c.connect_timeout = Duration::from_secs(2);
    c.command_timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

/// A started client and its health.
fn client(cfg: RedisConfig) -> (Rc<Redis>, Arc<Health>) {
    let health = Arc::new(Health::new());
    let r = Redis::new(Arc::new(cfg), health.clone());
    r.start();
    (Rc::new(r), health)
}

/// Polls `cond` every few milliseconds until it holds or [`WAIT`] passes.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls a future once, without a waker that does anything: what it answers without waiting.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn bulk(b: &[u8]) -> Value {
    Value::Bulk(b.to_vec())
}

#[monoio::test_all(timer_enabled = true)]
async fn round_trips() {
    let server = RedisServer::start();
    let (r, health) = client(config(&server.url(0)));
    // Sent while the first connect is under way: queued, not refused.
    assert_eq!(r.cmd(&[b"SET", b"k", b"v1"]).await, Ok(Value::Ok));
    assert!(health.is_up());
    assert_eq!(r.cmd(&[b"GET", b"k"]).await, Ok(bulk(b"v1")));
    assert_eq!(r.cmd(&[b"GET", b"missing"]).await, Ok(Value::Nil));
    assert_eq!(r.cmd(&[b"INCR", b"n"]).await, Ok(Value::Int(1)));
    assert_eq!(r.cmd(&[b"INCRBY", b"n", b"41"]).await, Ok(Value::Int(42)));
    assert_eq!(r.cmd(&[b"EXPIRE", b"n", b"100"]).await, Ok(Value::Int(1)));
    let ttl = r.cmd(&[b"TTL", b"n"]).await.unwrap().as_int().unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    // A 2 KB binary value with CRLF and NUL inside comes back byte for byte.
    let big: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(r.cmd(&[b"SET", b"big", &big]).await, Ok(Value::Ok));
    assert_eq!(
        r.cmd(&[b"MGET", b"k", b"missing", b"big", b"n"]).await,
        Ok(Value::Array(vec![
            bulk(b"v1"),
            Value::Nil,
            Value::Bulk(big),
            bulk(b"42")
        ]))
    );
    match r.cmd(&[b"INCR", b"k"]).await {
        Err(RedisError::Server(m)) => assert!(m.starts_with("ERR "), "{m}"),
        other => panic!("INCR of a string: {other:?}"),
    }
    assert_eq!(r.cmd(&[]).await, Err(RedisError::EmptyCommand));
    assert_eq!(r.cmd(&[b"DEL", b"k", b"big"]).await, Ok(Value::Int(2)));
    assert_eq!(r.cmd(&[b"EXISTS", b"k"]).await, Ok(Value::Int(0)));
}

#[monoio::test_all(timer_enabled = true)]
async fn concurrent_tasks_share_one_pipelined_connection() {
    const TASKS: usize = 256;
    let server = RedisServer::start();
    let (r, _health) = client(config(&server.url(0)));
    let keys: Vec<Vec<u8>> = (0..TASKS)
        .map(|i| format!("key:{i}").into_bytes())
        .collect();
    let sets: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![&b"SET"[..], k, &k[4..]]).collect();
    let cmds: Vec<&[&[u8]]> = sets.iter().map(|c| c.as_slice()).collect();
    let replies = r.pipeline(&cmds).await.expect("pipeline");
    assert_eq!(replies, vec![Value::Ok; TASKS]);

    let connections = server.info("total_connections_received");
    let before = r.stats();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let r = r.clone();
            monoio::spawn(async move {
                let key = format!("key:{i}");
                r.cmd(&[b"GET", key.as_bytes()]).await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        // Each task gets its own key's value: replies are matched in order.
        assert_eq!(t.await, Ok(bulk(i.to_string().as_bytes())), "task {i}");
    }
    let after = r.stats();
    let commands = after.commands - before.commands;
    let writes = after.writes - before.writes;
    assert_eq!(commands, TASKS as u64);
    assert!(
        writes * 8 <= commands,
        "{commands} commands took {writes} writes: not pipelined"
    );
    // One connection served them all: the only connection opened since is INFO's own, and
    // the server sees two clients (ours and the one asking).
    assert_eq!(server.info("total_connections_received"), connections + 1);
    assert_eq!(server.info("connected_clients"), 2);
    assert_eq!(after.connects, 1);

    // Error replies keep their place in a pipeline.
    let got = r
        .pipeline(&[
            &[b"SET", b"s", b"text"],
            &[b"INCR", b"s"],
            &[b"GET", b"s"],
            &[b"INCR", b"c"],
        ])
        .await
        .expect("pipeline");
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], Value::Ok);
    assert!(matches!(&got[1], Value::Error(m) if m.starts_with(b"ERR ")));
    assert_eq!(got[2], bulk(b"text"));
    assert_eq!(got[3], Value::Int(1));
}

/// A call dropped after its command went out leaves its reply to be read and discarded: the
/// next call gets its own reply, not the dropped one's.
#[monoio::test_all(timer_enabled = true)]
async fn a_dropped_call_does_not_shift_replies() {
    let server = RedisServer::start();
    let (r, _health) = client(config(&server.url(0)));
    r.pipeline(&[&[b"SET", b"a", b"A"], &[b"SET", b"b", b"B"]])
        .await
        .expect("set");
    {
        let get_a = std::pin::pin!(r.cmd(&[b"GET", b"a"]));
        assert!(poll_once(get_a).is_pending());
    }
    assert_eq!(r.pending(), 1, "the dropped call's reply is still due");
    assert_eq!(r.cmd(&[b"GET", b"b"]).await, Ok(bulk(b"B")));
    assert_eq!(r.pending(), 0);
}

#[monoio::test_all(timer_enabled = true)]
async fn pending_commands_are_bounded() {
    let server = RedisServer::start();
    let mut cfg = config(&server.url(0));
    cfg.max_pending = 4;
    let (r, _health) = client(cfg);
    until("connected", || r.is_connected()).await;
    let ping: &[&[u8]] = &[b"PING"];
    assert_eq!(
        r.pipeline(&[ping; 5]).await,
        Err(RedisError::Busy),
        "a pipeline longer than the bound"
    );
    // Four in flight: a fifth is refused at once, and the four complete.
    let pings = [ping; 4];
    let (four, fifth) = monoio::join!(r.pipeline(&pings), r.cmd(ping));
    assert_eq!(fifth, Err(RedisError::Busy));
    assert_eq!(four.map(|v| v.len()), Ok(4));
    assert_eq!(r.cmd(ping).await, Ok(Value::Simple(b"PONG".to_vec())));
}

#[monoio::test_all(timer_enabled = true)]
async fn redis_down_fails_fast_then_reconnects() {
    let mut server = RedisServer::start_with(RedisOptions {
        persist: true,
        ..RedisOptions::default()
    });
    let cfg = config(&server.url(0));
    let timeout = cfg.command_timeout;
    let (r, health) = client(cfg);
    assert_eq!(r.cmd(&[b"SET", b"kept", b"yes"]).await, Ok(Value::Ok));
    assert!(health.is_up());

    server.kill();
    // The connection is dead: the next call fails as soon as that is seen, not at its
    // deadline.
    let t = Instant::now();
    assert_eq!(
        r.cmd(&[b"GET", b"kept"]).await,
        Err(RedisError::Unavailable)
    );
    assert!(t.elapsed() < timeout / 5, "took {:?}", t.elapsed());
    until("health is down", || !health.is_up()).await;
    assert!(!r.is_connected());
    // While down, calls are refused without waiting at all: the first poll answers.
    for _ in 0..3 {
        let call = std::pin::pin!(r.cmd(&[b"PING"]));
        assert_eq!(poll_once(call), Poll::Ready(Err(RedisError::Unavailable)));
    }
    // It keeps trying in the background (backing off).
    let failures = r.stats().connect_failures;
    until("two more reconnect attempts", || {
        r.stats().connect_failures >= failures + 2
    })
    .await;

    server.restart();
    until("health is up again", || health.is_up()).await;
    assert_eq!(r.cmd(&[b"GET", b"kept"]).await, Ok(bulk(b"yes")));
    assert!(r.stats().connects >= 2);
}

#[monoio::test_all(timer_enabled = true)]
async fn no_server_fails_fast() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = config(&format!("redis://127.0.0.1:{port}"));
    let timeout = cfg.command_timeout;
    let (r, health) = client(cfg);
    let t = Instant::now();
    assert_eq!(r.cmd(&[b"PING"]).await, Err(RedisError::Unavailable));
    assert!(t.elapsed() < timeout / 5, "took {:?}", t.elapsed());
    assert!(!health.is_up());
    assert_eq!((health.clients(), health.clients_down()), (1, 1));
    drop(r);
    assert_eq!((health.clients(), health.clients_down()), (0, 0));
}

#[monoio::test_all(timer_enabled = true)]
async fn slow_redis_times_out_then_recovers() {
    let server = RedisServer::start();
    let mut cfg = config(&server.url(0));
    cfg.command_timeout = Duration::from_millis(200);
    cfg.connect_timeout = Duration::from_millis(200);
    let (r, health) = client(cfg);
    assert_eq!(r.cmd(&[b"SET", b"k", b"v"]).await, Ok(Value::Ok));

    // Another client puts the server to sleep for 2 s.
    let mut sleeper = server.connect();
    sleeper
        .send(&[b"DEBUG", b"SLEEP", b"2"])
        .expect("DEBUG SLEEP");
    // Until the sleep has begun a GET may still be answered; once it has, a GET times out
    // at its deadline, and so do the calls queued behind it.
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let t = Instant::now();
        let (first, second) = monoio::join!(r.cmd(&[b"GET", b"k"]), r.cmd(&[b"GET", b"k"]));
        match first {
            Ok(_) => {
                assert!(Instant::now() < deadline, "the server never slept");
                continue;
            }
            Err(RedisError::Timeout) => {
                let took = t.elapsed();
                assert!(took < Duration::from_secs(1), "timed out after {took:?}");
                assert_eq!(second, Err(RedisError::Timeout));
                break;
            }
            Err(e) => panic!("a slow server gave {e:?}, not Timeout"),
        }
    }
    // A server that does not answer the handshake within the connect deadline is down.
    until("health is down", || !health.is_up()).await;
    assert_eq!(r.cmd(&[b"GET", b"k"]).await, Err(RedisError::Unavailable));
    // Once it wakes, the client reconnects on its own.
    until("health is up again", || health.is_up()).await;
    assert_eq!(r.cmd(&[b"GET", b"k"]).await, Ok(bulk(b"v")));
    assert_eq!(sleeper.read_reply().expect("DEBUG SLEEP reply"), Value::Ok);
}

#[monoio::test_all(timer_enabled = true)]
async fn auth_and_select_on_connect() {
    let server = RedisServer::start_with(RedisOptions {
        password: Some("pa:ss@word".into()),
        user: Some(("alice".into(), "wonder land".into())),
        ..RedisOptions::default()
    });
    let port = server.port;
    // The default user's password (percent-encoded in the URL) and database 3.
    let (r, health) = client(config(&format!(
        "redis://:pa%3Ass%40word@127.0.0.1:{port}/3"
    )));
    assert_eq!(r.cmd(&[b"SET", b"where", b"db3"]).await, Ok(Value::Ok));
    assert!(health.is_up());
    let info = r.cmd(&[b"CLIENT", b"INFO"]).await.unwrap();
    let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
    assert!(info.contains(" db=3 "), "{info}");
    assert!(info.contains(" user=default "), "{info}");

    // An ACL user.
    let (alice, _) = client(config(&format!(
        "redis://alice:wonder%20land@127.0.0.1:{port}/3"
    )));
    assert_eq!(alice.cmd(&[b"ACL", b"WHOAMI"]).await, Ok(bulk(b"alice")));
    assert_eq!(alice.cmd(&[b"GET", b"where"]).await, Ok(bulk(b"db3")));

    // A wrong password: the handshake is refused, the client stays down and fails fast.
    let (wrong, wrong_health) = client(config(&format!("redis://:nope@127.0.0.1:{port}/3")));
    assert_eq!(wrong.cmd(&[b"PING"]).await, Err(RedisError::Unavailable));
    assert!(!wrong_health.is_up());
    assert!(!wrong.is_connected());
}

/// As a worker does: the client is made before the runtime runs (the service is), and
/// connects once started inside it.
#[test]
fn made_outside_the_runtime_started_inside() {
    let server = RedisServer::start();
    let health = Arc::new(Health::new());
    let r = Redis::new(Arc::new(config(&server.url(0))), health.clone());
    assert_eq!((health.clients(), health.clients_down()), (1, 1));
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime");
    rt.block_on(async {
        r.start();
        until("connected", || health.is_up()).await;
        assert_eq!(r.cmd(&[b"PING"]).await, Ok(Value::Simple(b"PONG".to_vec())));
    });
    drop(r);
    assert_eq!((health.clients(), health.clients_down()), (0, 0));
}
