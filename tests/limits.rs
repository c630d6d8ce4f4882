//! Request and token rate limits through the real binary: `rpm` and `tpm` trip to 429
//! `rate_limit_error` with `retry-after` in both shapes, nothing is sent upstream when refused,
//! the window frees again, per-token limits keep tokens apart, and two gateways sharing one
//! real `redis-server` are held to one shared limit.
//!
//! Windows are shortened with the `window_ms` testing knob instead of waiting a minute.

mod common;

use common::redis_server::RedisServer;
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECOND: &str = "sk-lr-two";

/// The standard config with `lines` added to project `default`, which also lists [`SECOND`].
fn limited_config(capture: &Capture, lines: &str, workers: usize, state: &str) -> String {
    standard_config(&capture.openai_base(), &capture.anthropic_base())
        .replace(
            "tokens = [\"sk-lr-test\"]\nmodels = [\"gpt-test\", \"claude-test\"]\n",
            &format!(
                "tokens = [\"sk-lr-test\", \"{SECOND}\"]\nmodels = [\"gpt-test\", \"claude-test\"]\n{lines}\n"
            ),
        )
        .replace("workers = 1", &format!("workers = {workers}"))
        + state
}

fn chat(addr: SocketAddr, token: &str) -> Response {
    roundtrip(addr, &post(CHAT, token, &chat_body("gpt-test", false), ""))
}

fn retry_after(r: &Response) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("a 429 without retry-after:\n{}", r.dump()))
        .parse()
        .expect("retry-after in seconds")
}

#[test]
fn rpm_trips_in_both_shapes_with_retry_after_and_recovers() {
    let up = Capture::ok();
    let gw = Server::serve(
        &limited_config(&up, "limits = { rpm = 2, window_ms = 1000 }", 1, ""),
        &key_env(),
    );
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    let r = chat(gw.addr, TOKEN);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    let m = roundtrip(
        gw.addr,
        &post(MESSAGES, TOKEN, &messages_body("claude-test", false), ""),
    );
    assert_error(&m, 429, Shape::Anthropic, "rate_limit_error");
    assert!(retry_after(&m) >= 1);
    assert_eq!(up.requests().len(), 2, "a refused request went upstream");
    // The window passes: admitted again (polled with a deadline; refusals are not counted).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = chat(gw.addr, TOKEN);
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.dump());
        assert!(Instant::now() < deadline, "never admitted again");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(up.requests().len(), 3);
}

#[test]
fn tpm_trips_on_a_big_request() {
    let up = Capture::ok();
    let gw = Server::serve(
        &limited_config(&up, "limits = { tpm = 1000 }", 1, ""),
        &key_env(),
    );
    let body = |max: u32| {
        format!(
            r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"Hello"}}],"max_tokens":{max}}}"#
        )
    };
    let send = |max| roundtrip(gw.addr, &post(CHAT, TOKEN, &body(max), ""));
    // Past the limit on its own: never admitted, however empty the window.
    let r = send(5000);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    assert_eq!(send(600).status, 200);
    // 600 + 600 > 1000 within the minute.
    let r = send(600);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    assert_eq!(send(100).status, 200, "a smaller request still fits");
    assert_eq!(up.requests().len(), 2, "a refused request went upstream");
}

#[test]
fn token_limits_keep_tokens_apart() {
    let up = Capture::ok();
    let gw = Server::serve(
        &limited_config(&up, "token_limits = { rpm = 1 }", 1, ""),
        &key_env(),
    );
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    let r = chat(gw.addr, TOKEN);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    assert_eq!(
        chat(gw.addr, SECOND).status,
        200,
        "the other token has its own limit"
    );
    assert_eq!(chat(gw.addr, SECOND).status, 429);
    assert_eq!(up.requests().len(), 2);
}

fn redis_state(url: &str) -> String {
    format!("\n[state]\nbackend = \"redis\"\nredis_url = \"{url}\"\n")
}

#[test]
fn two_gateways_sharing_redis_share_the_limit() {
    let redis = RedisServer::start();
    let up = Capture::ok();
    let cfg = limited_config(&up, "limits = { rpm = 10 }", 2, &redis_state(&redis.url(0)));
    let a = Server::serve(&cfg, &key_env());
    let b = Server::serve(&cfg, &key_env());
    let mut ok = [0usize; 2];
    for i in 0..30 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = chat(gw.addr, TOKEN);
        match r.status {
            200 => ok[i % 2] += 1,
            429 => {
                assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
                assert!(retry_after(&r) >= 1);
            }
            s => panic!("status {s}:\n{}", r.dump()),
        }
    }
    // Exact while Redis answers: the two gateways together admit the limit, no more.
    assert_eq!(ok[0] + ok[1], 10, "admitted per gateway: {ok:?}");
    assert!(ok[0] > 0 && ok[1] > 0, "{ok:?}");
    assert_eq!(up.requests().len(), 10, "a refused request went upstream");
}

#[test]
fn redis_gone_fails_open_to_local_counting() {
    let mut redis = RedisServer::start();
    let up = Capture::ok();
    let cfg = limited_config(&up, "limits = { rpm = 3 }", 1, &redis_state(&redis.url(0)));
    let gw = Server::serve(&cfg, &key_env());
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    redis.kill();
    // Served, and counted locally: this gateway's own count still holds it to the limit.
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    assert_eq!(chat(gw.addr, TOKEN).status, 429);
    gw.wait_log("the limits' fail-open warning", |l| {
        l.contains("rate limits: redis did not answer")
    });
}

/// `[state]` for batched sharing: `limits_sync = "batched"` every `ms`.
fn batched_state(url: &str, ms: u64) -> String {
    redis_state(url) + &format!("limits_sync = \"batched\"\nlimits_sync_ms = {ms}\n")
}

/// Polls `gw`'s completed sync passes until `n` more have completed than now, so a pass that
/// started after this call has finished.
fn wait_passes(gw: &Server, n: u64) {
    const PASSES: &str = "switchyard_limits_sync_passes_total";
    let start = gw.metric(PASSES);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.metric(PASSES) < start + n {
        assert!(Instant::now() < deadline, "no sync pass in 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The names of the keys under `pattern`.
fn keys(redis: &RedisServer, pattern: &str) -> Vec<String> {
    match redis.query(&[b"KEYS", pattern.as_bytes()]) {
        switchyard::redis::Value::Array(v) => v
            .iter()
            .map(|k| String::from_utf8_lossy(k.as_bytes().unwrap_or_default()).into_owned())
            .collect(),
        v => panic!("KEYS: {v:?}"),
    }
}

#[test]
fn batched_gateways_see_each_others_counts_after_a_sync() {
    let redis = RedisServer::start();
    let up = Capture::ok();
    let cfg = limited_config(
        &up,
        "limits = { rpm = 20, window_ms = 3600000 }",
        2,
        &batched_state(&redis.url(0), 20),
    );
    let a = Server::serve(&cfg, &key_env());
    let b = Server::serve(&cfg, &key_env());
    // B idle: A alone admits exactly the limit (its own counts are exact for one client).
    let mut ok = 0;
    loop {
        let r = chat(a.addr, TOKEN);
        if r.status == 429 {
            assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
            assert!(retry_after(&r) >= 1);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.dump());
        ok += 1;
        assert!(ok <= 20, "A admitted past its limit");
    }
    assert_eq!(ok, 20);
    // A pushes (a pass that started after its last admission), then B pulls.
    wait_passes(&a, 2);
    wait_passes(&b, 2);
    let r = chat(b.addr, TOKEN);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    assert_eq!(up.requests().len(), 20, "a refused request went upstream");
    // Batched keys only: the exact mode's script keys are never written.
    let batched = keys(&redis, "sy:lb:default:*");
    assert!(!batched.is_empty(), "no batched key in redis");
    assert_eq!(keys(&redis, "sy:l:*"), Vec::<String>::new());
}

#[test]
fn batched_gateways_alternating_stay_within_the_bound() {
    const RPM: usize = 200;
    const SYNC_MS: u64 = 10;
    const WORKERS: usize = 2;
    let redis = RedisServer::start();
    let up = Capture::ok();
    let cfg = limited_config(
        &up,
        &format!("limits = {{ rpm = {RPM}, window_ms = 3600000 }}"),
        WORKERS,
        &batched_state(&redis.url(0), SYNC_MS),
    );
    let gws = [
        Server::serve(&cfg, &key_env()),
        Server::serve(&cfg, &key_env()),
    ];
    // Both gateways syncing before the first request.
    gws.iter().for_each(|g| wait_passes(g, 1));
    // Alternate, paced at about a request per 2 ms (a load shape, not a wait: it keeps what a
    // gateway admits per sync interval well under the limit), until both gateways have
    // refused 10 in a row.
    let start = Instant::now();
    let mut admitted: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut refused_run = [0usize; 2];
    let mut i = 0;
    while refused_run.iter().any(|&n| n < 10) {
        let g = i % 2;
        i += 1;
        assert!(i < 20 * RPM, "never refused: {refused_run:?}");
        let r = chat(gws[g].addr, TOKEN);
        match r.status {
            200 => {
                admitted[g].push(start.elapsed());
                refused_run[g] = 0;
            }
            429 => {
                assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
                assert!(retry_after(&r) >= 1);
                refused_run[g] += 1;
            }
            s => panic!("status {s}:\n{}", r.dump()),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = admitted[0].len() + admitted[1].len();
    // The documented bound: what one gateway admits in two sync intervals (push lag + pull
    // lag), measured here over a span with room for scheduling delays on a busy machine.
    let span = Duration::from_millis(2 * SYNC_MS + 100);
    let most_in_span = |ts: &[Duration]| {
        (0..ts.len())
            .map(|k| ts[k..].iter().take_while(|&&t| t - ts[k] <= span).count())
            .max()
            .unwrap_or(0)
    };
    let a = most_in_span(&admitted[0]).max(most_in_span(&admitted[1]));
    const GATEWAYS: usize = 2;
    let bound = (GATEWAYS - 1) * a + (WORKERS - 1);
    eprintln!(
        "admitted {total} (per gateway {} + {}) for rpm {RPM}; bound {bound} (a = {a} in {span:?})",
        admitted[0].len(),
        admitted[1].len()
    );
    assert!(total >= RPM, "under-admitted: {total} < {RPM}");
    assert!(
        total <= RPM + bound,
        "over-admitted past the bound: {total} > {RPM} + {bound}"
    );
    // The run can tell shared counts from none: unshared, each would admit the limit.
    assert!(RPM + bound < 2 * RPM, "bound {bound} too loose to tell");
    assert!(!admitted[0].is_empty() && !admitted[1].is_empty());
    assert_eq!(
        up.requests().len(),
        total,
        "a refused request went upstream"
    );
}

#[test]
fn batched_redis_gone_keeps_counting_locally() {
    let mut redis = RedisServer::start();
    let up = Capture::ok();
    let cfg = limited_config(
        &up,
        "limits = { rpm = 3, window_ms = 3600000 }",
        1,
        &batched_state(&redis.url(0), 20),
    );
    let gw = Server::serve(&cfg, &key_env());
    wait_passes(&gw, 1);
    redis.kill();
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    assert_eq!(chat(gw.addr, TOKEN).status, 200);
    let r = chat(gw.addr, TOKEN);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert!(retry_after(&r) >= 1);
    gw.wait_log("the sync's outage warning", |l| {
        l.contains("batched sync cannot reach redis")
    });
    assert!(gw.metric("switchyard_limits_sync_failures_total") >= 1);
}

/// Added latency of the limits on the request path: none, local counting, and shared through
/// Redis (one script call per request). Prints p50/p99; asserts nothing about time.
/// `cargo test --release --test limits -- --ignored --nocapture measure`
#[test]
#[ignore]
fn measure_limit_cost() {
    let redis = RedisServer::start();
    let up = Capture::ok();
    let big = "limits = { rpm = 100000000, tpm = 100000000000 }";
    let runs = [
        ("none", limited_config(&up, "", 1, "")),
        ("local", limited_config(&up, big, 1, "")),
        (
            "redis (no limits)",
            limited_config(&up, "", 1, &redis_state(&redis.url(0))),
        ),
        (
            "redis exact",
            limited_config(&up, big, 1, &redis_state(&redis.url(0))),
        ),
    ];
    const N: usize = 5000;
    // All four at once, one request to each in turn, so a noisy machine weighs on all alike.
    let gws: Vec<Server> = runs
        .iter()
        .map(|(_, c)| Server::serve(c, &key_env()))
        .collect();
    let mut conns: Vec<Conn> = gws.iter().map(|g| g.connect()).collect();
    let req = post(CHAT, TOKEN, &chat_body("gpt-test", false), "");
    let mut lat = vec![Vec::with_capacity(N); runs.len()];
    for i in 0..N + 200 {
        for (k, c) in conns.iter_mut().enumerate() {
            let t = Instant::now();
            c.send(&req).expect("send");
            let r = c.response();
            assert_eq!(r.status, 200);
            if i >= 200 {
                lat[k].push(t.elapsed().as_micros() as u64);
            }
        }
    }
    for ((name, _), l) in runs.iter().zip(&mut lat) {
        l.sort_unstable();
        println!(
            "{name:>18}: p50 {} us, p90 {} us, p99 {} us over {N} keep-alive requests",
            l[N / 2],
            l[N * 9 / 10],
            l[N * 99 / 100]
        );
    }
}
