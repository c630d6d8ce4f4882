//! The Redis conversation store through the real binary and a real `redis-server`: two gateway
//! processes sharing it continue each other's conversations; with Redis gone, requests that need
//! state get a prompt 503 in the OpenAI shape while the rest are served, `/ready` says so, and
//! both recover when Redis is back.

mod common;

use common::redis_server::RedisServer;
use common::*;
use simd_json::prelude::*;
use std::time::{Duration, Instant};

const RESPONSES: &str = "/v1/responses";

/// The built-in mock behind project `p`, conversations in Redis at `url`.
fn redis_config(url: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2

[[providers]]
id = "mock"
kind = "mock"

[[models]]
id = "m"
provider = "mock"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m"]

[state]
backend = "redis"
redis_url = "{url}"
"#
    )
}

fn ready_status(gw: &Server) -> u16 {
    roundtrip(gw.admin(), b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n").status
}

/// Polls `/ready` until it answers `want` (bounded: the client's backoff is capped).
fn wait_ready(gw: &Server, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready_status(gw) != want {
        assert!(Instant::now() < deadline, "/ready never answered {want}");
        std::thread::yield_now();
    }
}

#[test]
fn two_gateways_share_conversations_and_survive_redis_going_away() {
    let mut redis = RedisServer::start();
    let cfg = redis_config(&redis.url(0));
    let a = Server::serve(&cfg, &[]);
    let b = Server::serve(&cfg, &[]);
    wait_ready(&a, 200);
    wait_ready(&b, 200);

    // Turn 1 on gateway A, turn 2 on gateway B, read back on A.
    let r = roundtrip(
        a.addr,
        &post(
            RESPONSES,
            TOKEN,
            r#"{"model":"m","input":"the password is swordfish"}"#,
            "",
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id1 = r.json()["id"].as_str().unwrap().to_string();
    let r = roundtrip(
        b.addr,
        &post(
            RESPONSES,
            TOKEN,
            &format!(r#"{{"model":"m","input":"what was it?","previous_response_id":"{id1}"}}"#),
            "",
        ),
    );
    assert_eq!(r.status, 200, "B continues A's conversation: {}", r.text());
    let id2 = r.json()["id"].as_str().unwrap().to_string();
    let items = roundtrip(
        a.addr,
        &get(&format!("{RESPONSES}/{id2}/input_items?order=asc"), TOKEN),
    );
    assert_eq!(items.status, 200, "{}", items.text());
    let text = simd_json::to_string(&items.json()["data"]).unwrap();
    assert!(text.contains("the password is swordfish"), "{text}");
    assert!(text.contains("what was it?"), "{text}");
    assert!(
        matches!(redis.query(&[b"DBSIZE"]), switchyard::redis::Value::Int(n) if n >= 2),
        "the records are in the shared Redis"
    );

    // Redis gone: stateful requests fail fast with 503, the rest are served.
    redis.kill();
    let started = Instant::now();
    let r = roundtrip(
        a.addr,
        &post(RESPONSES, TOKEN, r#"{"model":"m","input":"hello"}"#, ""),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"].as_str(), Some("api_error"));
    assert_eq!(v["error"]["code"].as_str(), Some("state_unavailable"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        started.elapsed()
    );
    let r = roundtrip(b.addr, &get(&format!("{RESPONSES}/{id1}"), TOKEN));
    assert_eq!(r.status, 503, "{}", r.text());
    let r = roundtrip(a.addr, &post(CHAT, TOKEN, &chat_body("m", false), ""));
    assert_eq!(r.status, 200, "chat needs no state: {}", r.text());
    let r = roundtrip(
        a.addr,
        &post(
            RESPONSES,
            TOKEN,
            r#"{"model":"m","input":"not kept","store":false}"#,
            "",
        ),
    );
    assert_eq!(r.status, 200, "store:false needs no state: {}", r.text());
    wait_ready(&a, 503);
    assert!(a.stderr().contains("down"), "the outage is logged");

    // Back: both gateways reconnect and serve stateful requests again.
    redis.restart();
    wait_ready(&a, 200);
    wait_ready(&b, 200);
    let r = roundtrip(
        b.addr,
        &post(RESPONSES, TOKEN, r#"{"model":"m","input":"again"}"#, ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id3 = r.json()["id"].as_str().unwrap().to_string();
    let r = roundtrip(a.addr, &get(&format!("{RESPONSES}/{id3}"), TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
}
