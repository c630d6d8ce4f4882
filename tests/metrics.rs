//! The operator's metrics end to end: the gateway binary in front of a capture upstream that
//! reports usage, the in-process mock (paced, for stream gaps) and a dead provider (for
//! failover); `/metrics` read over HTTP as requests flow. Also `POST /admin/reload` and
//! `/ready` under a client loop: no request fails across reloads, the counters carry over.

mod common;

use common::*;
use simd_json::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMPT: u64 = 1000;
const CACHED: u64 = 400;
const COMPLETION: u64 = 200;
const INPUT_PRICE: f64 = 2.0;
const OUTPUT_PRICE: f64 = 8.0;
const CACHED_PRICE: f64 = 0.5;
const OTHER: &str = "sk-lr-other";

fn reply(req: &Captured) -> Reply {
    let model = req.model().unwrap_or_default();
    Reply::Json(
        200,
        format!(
            r#"{{"id":"c","object":"chat.completion","created":1,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"hi"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT},"completion_tokens":{COMPLETION},"total_tokens":1200,"prompt_tokens_details":{{"cached_tokens":{CACHED}}}}}}}"#
        ),
    )
}

fn config(up: &Capture, dead: u16, price: f64) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2

[[providers]]
id = "up"
kind = "openai"
base_url = "{base}"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "paced"
kind = "mock"
[providers.mock]
tokens_per_s = 400
reply_tokens = 12

[[providers]]
id = "gone"
kind = "openai"
base_url = "http://127.0.0.1:{dead}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[models]]
id = "m1"
provider = "up"
input_per_million = {price}
output_per_million = {OUTPUT_PRICE}
cached_input_per_million = {CACHED_PRICE}

[[models]]
id = "m2"
provider = "paced"

[[models]]
id = "dead"
provider = "gone"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m1", "m2"]

[[projects]]
slug = "f"
tokens = ["{OTHER}"]
models = ["dead", "m1"]
"#,
        base = up.openai_base(),
    )
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `/metrics` until `selector` sums to `want`: a request is recorded once its last
/// byte is written, so the scrape after the answer may come first.
fn wait_metric(gw: &Server, selector: &str, want: f64) -> String {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let text = gw.metrics_text();
        if metric_sum(&text, selector) == Some(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{selector} never reached {want} (is {:?}):\n{text}",
            metric_sum(&text, selector)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn value(text: &str, selector: &str) -> f64 {
    metric_sum(text, selector).unwrap_or_else(|| panic!("no {selector} in:\n{text}"))
}

#[test]
fn labelled_series_move_as_requests_flow() {
    let up = Capture::start(reply);
    let gw = Server::serve(&config(&up, dead_port(), INPUT_PRICE), &key_env());
    let chat_m1 = r#"switchyard_requests_total{route="/v1/chat/completions",project="p",model="m1",provider="up",code="2xx"}"#;
    assert_eq!(metric_sum(&gw.metrics_text(), chat_m1), Some(0.0));

    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m1", false), ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    let text = wait_metric(&gw, chat_m1, 1.0);
    let l = r#"project="p",model="m1",provider="up""#;
    assert_eq!(
        value(
            &text,
            &format!("switchyard_tokens_total{{{l},kind=\"input\"}}")
        ),
        PROMPT as f64
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_tokens_total{{{l},kind=\"output\"}}")
        ),
        COMPLETION as f64
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_tokens_total{{{l},kind=\"cached_input\"}}")
        ),
        CACHED as f64
    );
    let cost = ((PROMPT - CACHED) as f64 * INPUT_PRICE
        + CACHED as f64 * CACHED_PRICE
        + COMPLETION as f64 * OUTPUT_PRICE)
        / 1e6;
    let got = value(&text, &format!("switchyard_cost_usd_total{{{l}}}"));
    assert!((got - cost).abs() < 1e-12, "cost {got} != {cost}");
    let chat = r#"route="/v1/chat/completions""#;
    assert_eq!(
        value(
            &text,
            &format!("switchyard_request_duration_seconds_count{{{chat},{l}}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_request_duration_seconds_bucket{{{chat},{l},le=\"+Inf\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_upstream_first_byte_seconds_count{{{chat},{l}}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_upstream_attempts_total{{{l},outcome=\"ok\"}}")
        ),
        1.0
    );

    // A paced stream: several upstream reads, so gaps; the open-stream gauge back to zero.
    let streams = gw.metric("switchyard_streams_total");
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m2", true), ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    let m2 = r#"project="p",model="m2",provider="paced""#;
    let text = wait_metric(
        &gw,
        &format!("switchyard_requests_total{{{chat},{m2},code=\"2xx\"}}"),
        1.0,
    );
    let gaps = value(
        &text,
        &format!("switchyard_stream_gap_seconds_count{{{chat},{m2}}}"),
    );
    assert!(
        gaps >= 3.0,
        "a 12-token stream at 400 tokens/s has gaps, counted {gaps}"
    );
    assert_eq!(
        value(&text, "switchyard_streams_total"),
        (streams + 1) as f64
    );
    assert_eq!(value(&text, "switchyard_streams_open"), 0.0);

    // A bad token: no project, the 4xx class.
    let r = roundtrip(
        gw.addr,
        &post(CHAT, "sk-lr-wrong", &chat_body("m1", false), ""),
    );
    assert_eq!(r.status, 401);
    wait_metric(
        &gw,
        r#"switchyard_requests_total{route="/v1/chat/completions",project="",code="4xx"}"#,
        1.0,
    );

    // Failover: the dead model's attempt fails, m1 answers; both counted under project f.
    let r = roundtrip(gw.addr, &post(CHAT, OTHER, &chat_body("auto", false), ""));
    assert_eq!(r.status, 200, "{}", r.dump());
    let text = wait_metric(
        &gw,
        r#"switchyard_requests_total{project="f",model="m1",code="2xx"}"#,
        1.0,
    );
    let dead = r#"project="f",model="dead",provider="gone""#;
    assert_eq!(
        value(&text, &format!("switchyard_failovers_total{{{dead}}}")),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_upstream_attempts_total{{{dead},outcome=\"error\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"switchyard_upstream_attempts_total{project="f",model="m1",outcome="ok"}"#
        ),
        1.0
    );
    for m in ["m1", "m2", "dead"] {
        assert!(metric_sum(&text, &format!("switchyard_circuit_state{{model=\"{m}\"}}")).is_some());
    }
    assert!(text.contains("# TYPE switchyard_request_duration_seconds histogram"));
    assert!(text.contains("switchyard_build_info{version="));
    assert!(!text.contains(TOKEN) && !text.contains(OPENAI_KEY));
}

fn admin_post(gw: &Server, path: &str) -> Response {
    roundtrip(
        gw.admin(),
        format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
}

#[test]
fn reloads_under_a_client_loop_fail_no_request_and_keep_the_counters() {
    let up = Capture::start(reply);
    let dead = dead_port();
    let gw = Server::serve(&config(&up, dead, INPUT_PRICE), &key_env());
    let path = gw.stderr_path.parent().unwrap().join("switchyard.toml");
    // Ready once both workers accept (they start after the listening line).
    let deadline = Instant::now() + LOG_WAIT;
    let ready = loop {
        let r = roundtrip(gw.admin(), b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n");
        if r.status == 200 {
            break r.json();
        }
        assert!(Instant::now() < deadline, "never ready: {}", r.dump());
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(ready["workers"]["configured"].as_u64(), Some(2));
    assert_eq!(ready["workers"]["running"].as_u64(), Some(2));
    assert_eq!(ready["state"]["backend"].as_str(), Some("embedded"));
    let generation = ready["config"]["generation"].as_u64().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..2)
        .map(|i| {
            let (stop, ok, addr) = (stop.clone(), ok.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut c = Conn::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    // Every fourth request on a fresh connection, the rest kept alive.
                    if ok.load(Ordering::Relaxed) % 4 == i {
                        c = Conn::connect(addr);
                    }
                    c.send(&post(CHAT, TOKEN, &chat_body("m1", false), ""))
                        .unwrap();
                    match c.read_response() {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.push(r.dump()),
                        Err(e) => failures.push(describe(&e)),
                    }
                }
                failures
            })
        })
        .collect();

    let reloads = 20;
    for n in 0..reloads {
        // Alternate the price, so every reload publishes a different snapshot.
        let price = if n % 2 == 0 { 3.0 } else { INPUT_PRICE };
        std::fs::write(&path, config(&up, dead, price)).unwrap();
        let r = admin_post(&gw, "/admin/reload");
        assert_eq!(r.status, 200, "{}", r.dump());
        assert_eq!(r.json()["reloaded"].as_bool(), Some(true));
    }
    std::fs::write(&path, "[server\nbroken").unwrap();
    let r = admin_post(&gw, "/admin/reload");
    assert_eq!(r.status, 422, "{}", r.dump());
    assert!(
        r.text().contains("line"),
        "the refusal says where: {}",
        r.text()
    );
    // Let the clients run on the last good snapshot for a while.
    let target = ok.load(Ordering::Relaxed) + 20;
    let deadline = Instant::now() + LOG_WAIT;
    while ok.load(Ordering::Relaxed) < target && Instant::now() < deadline {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "failed across reloads: {failures:#?}");
    let served = ok.load(Ordering::Relaxed);
    assert!(
        served >= 20,
        "the clients ran during the reloads ({served} answers)"
    );

    let r = roundtrip(gw.admin(), b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n");
    let ready = r.json();
    assert_eq!(
        ready["config"]["generation"].as_u64(),
        Some(generation + reloads)
    );
    assert_eq!(ready["config"]["reloads_ok"].as_u64(), Some(reloads));
    assert_eq!(ready["config"]["reloads_refused"].as_u64(), Some(1));
    assert!(ready["config"]["last_reload_error"].as_str().is_some());
    // Every answer is counted once, on the series that outlived 20 snapshots.
    let text = wait_metric(
        &gw,
        r#"switchyard_requests_total{project="p",model="m1",code="2xx"}"#,
        served as f64,
    );
    assert_eq!(
        value(&text, r#"switchyard_config_reloads_total{result="ok"}"#),
        reloads as f64
    );
    assert_eq!(
        value(
            &text,
            r#"switchyard_config_reloads_total{result="refused"}"#
        ),
        1.0
    );
    assert_eq!(admin_post(&gw, "/ready").status, 404);
}
