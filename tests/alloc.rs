//! The steady state allocates nothing per request (`cargo test --features count-allocs --test
//! alloc`; without the feature this file is empty).
//!
//! The gateway counts heap allocations of every thread and reports the sum in `/metrics`.
//! After warming a keep-alive connection and the upstream pool, N more requests (plain and
//! streaming, to a real upstream over the pool) must not move the count beyond what the
//! `/metrics` scrapes themselves allocate, measured in the same run. The project has rate
//! limits (project and token, counted locally), so their check is on the measured path.
#![cfg(feature = "count-allocs")]

mod common;

use common::{chat_body, messages_body, post, Conn, Server, CHAT, MESSAGES, TOKEN};

const N: u64 = 400;

#[test]
fn no_allocation_per_request_once_warm() {
    let mock = Server::mock_upstream();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
[[providers]]
id = "oai"
kind = "openai"
base_url = "http://{m}/v1"
api_key_env = "TEST_OPENAI_KEY"
[[providers]]
id = "ant"
kind = "anthropic"
base_url = "http://{m}"
api_key_env = "TEST_ANTHROPIC_KEY"
[[models]]
id = "gpt"
provider = "oai"
[[models]]
id = "claude"
provider = "ant"
[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["gpt", "claude"]
policies = ["health", "cheapest", "fastest"]
limits = {{ rpm = 100000000, tpm = 100000000000 }}
token_limits = {{ rpm = 100000000, tpm = 100000000000 }}
"#,
        m = mock.addr
    );
    // warn: the per-request route line is formatted into a reused batch, but keep the test
    // about the request path itself.
    let gw = Server::serve(
        &config,
        &[
            ("TEST_OPENAI_KEY", "k1"),
            ("TEST_ANTHROPIC_KEY", "k2"),
            ("SWITCHYARD_LOG", "warn"),
        ],
    );
    let mut conn = Conn::connect(gw.addr);
    let requests = [
        post(CHAT, TOKEN, &chat_body("gpt", false), ""),
        post(CHAT, TOKEN, &chat_body("gpt", true), ""),
        post(MESSAGES, TOKEN, &messages_body("claude", false), ""),
        post(MESSAGES, TOKEN, &messages_body("claude", true), ""),
    ];
    let mut run = |n: u64| {
        for i in 0..n {
            conn.send(&requests[(i % 4) as usize]).unwrap();
            let r = conn.response();
            assert_eq!(r.status, 200, "{}", r.dump());
        }
    };
    run(200);
    // What one scrape costs, measured twice in a row.
    let a = gw.metric("switchyard_allocations_total");
    let b = gw.metric("switchyard_allocations_total");
    let scrape = b - a;
    run(N);
    let c = gw.metric("switchyard_allocations_total");
    let per_request = (c - b).saturating_sub(scrape) as f64 / N as f64;
    assert!(
        per_request < 0.05,
        "{} allocations over {N} requests beyond the scrape's {scrape}",
        c - b - scrape
    );
}
