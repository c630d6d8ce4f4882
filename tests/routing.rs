//! The routing engine end to end, over real sockets: the gateway binary in front of upstreams
//! the tests control (capture upstreams in this process, and `switchyard mock-upstream` with
//! its `fail-500…`, `fail-429…`, `slow-…` and `cut-…` model hooks).
//!
//! Covered: failover before the first byte and none after it, the circuit breaker opening,
//! probing and closing, project and model budgets, `costEstimate`, the `cheapest`,
//! `capability` and `context` policies, and the one `route` log line per request. The
//! rules are the README's "Routing" decisions, `docs/api.md` ("Streaming", "Errors") and its
//! "Decisions where the contract is silent".

mod common;

use common::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Configs

/// A gateway config: one worker (exact counts), an admin listener, `routing` as the
/// `[routing]` table's lines (none when empty), then `tables`.
fn config(routing: &str, tables: &[String]) -> String {
    let mut s = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\ndrain_timeout_ms = 2000\n\n",
    );
    if !routing.is_empty() {
        s.push_str(&format!("[routing]\n{routing}\n\n"));
    }
    for t in tables {
        s.push_str(t);
        s.push('\n');
    }
    s
}

/// An OpenAI-kind provider at `base_url` (`.../v1`), `extra` lines appended to its table.
fn openai_provider(id: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[providers]]\nid = \"{id}\"\nkind = \"openai\"\nbase_url = \"{base_url}\"\napi_key_env = \"TEST_OPENAI_KEY\"\n{extra}\n"
    )
}

/// An Anthropic-kind provider at `base_url` (the bare host).
fn anthropic_provider(id: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[providers]]\nid = \"{id}\"\nkind = \"anthropic\"\nbase_url = \"{base_url}\"\napi_key_env = \"TEST_ANTHROPIC_KEY\"\n{extra}\n"
    )
}

/// A model on `provider`, `extra` lines appended (`upstream_id`, prices, `budget`...).
fn model(id: &str, provider: &str, extra: &str) -> String {
    format!("[[models]]\nid = \"{id}\"\nprovider = \"{provider}\"\n{extra}\n")
}

/// A project with one plain token, its candidate models in order and `extra` lines
/// (`policies`, `budget`, `trace`).
fn project(slug: &str, token: &str, models: &[&str], extra: &str) -> String {
    let list = models
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!("[[projects]]\nslug = \"{slug}\"\ntokens = [\"{token}\"]\nmodels = [{list}]\n{extra}\n")
}

fn serve(routing: &str, tables: &[String]) -> Server {
    Server::serve(&config(routing, tables), &key_env())
}

/// A gateway whose only provider, `oai`, is `up`, with `tables` after it.
fn serve_on(up: &Capture, tables: &[String]) -> Server {
    let mut all = vec![openai_provider("oai", &up.openai_base(), "")];
    all.extend_from_slice(tables);
    serve("", &all)
}

/// A base URL nothing listens on: a port bound and released.
fn refused_base() -> String {
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    format!("http://{addr}/v1")
}

// ---------------------------------------------------------------------------------------------
// Requests and answers

/// A chat completion for `model` with `token`.
fn chat_as(gw: &Server, token: &str, model: &str, stream: bool) -> Response {
    roundtrip(gw.addr, &post(CHAT, token, &chat_body(model, stream), ""))
}

/// An Anthropic message for `model` with `token`.
fn messages_as(gw: &Server, token: &str, model: &str, stream: bool) -> Response {
    roundtrip(
        gw.addr,
        &post(
            MESSAGES,
            token,
            &messages_body(model, stream),
            "anthropic-version: 2023-06-01\r\n",
        ),
    )
}

/// The `model` of a whole JSON answer: the capture upstreams echo the `upstream_id` they were
/// sent, so it names the model that served.
fn served_by(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.dump());
    r.json()
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_else(|| panic!("no model in the answer: {}", r.dump()))
        .to_string()
}

/// The trace event, which must be a stream's first event, parsed.
fn trace_of(r: &Response) -> OwnedValue {
    assert_eq!(r.status, 200, "{}", r.dump());
    let events = sse_events(&r.body);
    let data = events
        .first()
        .and_then(|e| e.data.clone())
        .unwrap_or_else(|| panic!("no first data event: {}", r.text()));
    let mut v = parse_json(data.as_bytes());
    // On messages streams the trace rides in an Anthropic `ping` event.
    if events[0].event.as_deref() == Some("ping") {
        assert_eq!(v.get("type").and_then(|t| t.as_str()), Some("ping"));
        v = v
            .get("trace")
            .cloned()
            .unwrap_or_else(|| panic!("a ping without the trace: {}", r.text()));
    }
    assert_eq!(
        v.get("type").and_then(|t| t.as_str()),
        Some("trace"),
        "the first event is not the trace: {}",
        r.text()
    );
    v
}

fn str_at<'a>(v: &'a OwnedValue, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// The trace's `attempts` as (model, error) pairs.
fn attempts(trace: &OwnedValue) -> Vec<(String, String)> {
    trace
        .get("attempts")
        .and_then(|a| a.as_array())
        .unwrap_or_else(|| panic!("no attempts array: {trace:?}"))
        .iter()
        .map(|a| {
            (
                str_at(a, "model").unwrap_or("").to_string(),
                str_at(a, "error").unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn cost_of(trace: &OwnedValue) -> f64 {
    let c = trace
        .get("costEstimate")
        .unwrap_or_else(|| panic!("no costEstimate: {trace:?}"));
    c.as_f64()
        .or_else(|| c.as_u64().map(|u| u as f64))
        .unwrap_or_else(|| panic!("costEstimate is not a number: {trace:?}"))
}

// ---------------------------------------------------------------------------------------------
// (a) Failover before the first byte

/// What the bad candidate's upstream does.
enum Bad {
    /// A capture upstream answering this.
    Capture(Reply),
    /// `switchyard mock-upstream`, sent this `upstream_id` (one of its failure hooks).
    Mock(&'static str),
    /// Nothing listens at its address.
    Refused,
}

fn check_failover(why: &str, bad: Bad, bad_provider_extra: &str, code: &str) {
    let good = Capture::ok();
    let mut keep_capture = None;
    let mut keep_mock = None;
    let (base, upstream_id) = match bad {
        Bad::Capture(reply) => {
            let c = Capture::fixed(reply);
            let base = c.openai_base();
            keep_capture = Some(c);
            (base, "bad")
        }
        Bad::Mock(id) => {
            let m = Server::mock_upstream();
            let base = format!("http://{}/v1", m.addr);
            keep_mock = Some(m);
            (base, id)
        }
        Bad::Refused => (refused_base(), "bad"),
    };
    let gw = serve(
        "",
        &[
            openai_provider("badp", &base, bad_provider_extra),
            openai_provider("goodp", &good.openai_base(), ""),
            model("bad", "badp", &format!("upstream_id = \"{upstream_id}\"")),
            model("good", "goodp", ""),
            project("default", TOKEN, &["bad", "good"], ""),
        ],
    );

    // Plain: the good upstream's answer.
    let r = gw.chat("auto", false);
    assert_eq!(served_by(&r), "good", "{why}: {}", r.dump());
    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));

    // Streaming: the trace names the model that served and the failed attempt, with its code.
    let r = gw.chat("auto", true);
    let trace = trace_of(&r);
    assert_eq!(str_at(&trace, "model"), Some("good"), "{why}: {trace:?}");
    assert_eq!(
        str_at(&trace, "provider"),
        Some("goodp"),
        "{why}: {trace:?}"
    );
    assert_eq!(
        attempts(&trace),
        [("bad".to_string(), code.to_string())],
        "{why}: {trace:?}"
    );
    let events = sse_events(&r.body);
    assert_eq!(
        events.last().and_then(|e| e.data.as_deref()),
        Some("[DONE]"),
        "{why}: the good stream was not relayed whole: {}",
        r.text()
    );

    assert_eq!(good.requests().len(), 2, "{why}");
    if let Some(c) = keep_capture {
        assert_eq!(
            c.requests().len(),
            2,
            "{why}: the bad upstream is tried first"
        );
    }
    drop(keep_mock);
}

#[test]
fn failover_on_500() {
    let reply = Reply::Json(500, r#"{"error":{"message":"boom"}}"#.into());
    check_failover("500", Bad::Capture(reply), "", "upstream_failed");
}

#[test]
fn failover_on_429() {
    let reply = Reply::Json(429, r#"{"error":{"message":"slow down"}}"#.into());
    check_failover("429", Bad::Capture(reply), "", "upstream_failed");
}

#[test]
fn failover_on_mock_upstream_fail_hooks() {
    check_failover(
        "mock fail-500",
        Bad::Mock("fail-500-bad"),
        "",
        "upstream_failed",
    );
    check_failover(
        "mock fail-429",
        Bad::Mock("fail-429-bad"),
        "",
        "upstream_failed",
    );
}

#[test]
fn failover_on_connection_refused() {
    check_failover(
        "refused",
        Bad::Refused,
        "connect_timeout_ms = 2000",
        "upstream_connect_failed",
    );
}

#[test]
fn failover_on_first_byte_timeout() {
    check_failover(
        "silent upstream",
        Bad::Capture(Reply::Hang),
        "first_byte_timeout_ms = 500",
        "upstream_timeout",
    );
    // The mock's `slow-` hook adds 2 s before its first byte.
    check_failover(
        "mock slow-",
        Bad::Mock("slow-bad"),
        "first_byte_timeout_ms = 500",
        "upstream_timeout",
    );
}

// ---------------------------------------------------------------------------------------------
// (b) The circuit breaker

const COOLDOWN: Duration = Duration::from_millis(1500);
const MIN_REQUESTS: usize = 3;

/// A capture upstream that fails (500) until told otherwise, noting when each request came.
struct Switchable {
    up: Capture,
    healthy: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Switchable {
    fn failing() -> Switchable {
        let healthy = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (h, a) = (healthy.clone(), arrivals.clone());
        let up = Capture::start(move |req| {
            a.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Instant::now());
            if h.load(Ordering::SeqCst) {
                ok_reply(req)
            } else {
                Reply::Json(500, r#"{"error":{"message":"down"}}"#.into())
            }
        });
        Switchable {
            up,
            healthy,
            arrivals,
        }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[test]
fn the_circuit_opens_excludes_then_a_probe_closes_it() {
    let bad = Switchable::failing();
    let good = Capture::ok();
    let gw = serve(
        "health_window_ms = 60000\nhealth_min_requests = 3\nhealth_error_rate = 0.5\nhealth_cooldown_ms = 1500",
        &[
            openai_provider("badp", &bad.up.openai_base(), ""),
            openai_provider("goodp", &good.openai_base(), ""),
            model("bad", "badp", ""),
            model("good", "goodp", ""),
            project("default", TOKEN, &["bad", "good"], "policies = [\"health\"]"),
        ],
    );

    // Every request names `bad`, so it goes first for as long as its circuit is closed (a
    // named model goes first unless excluded; its falling health score does not move it).
    const SENT: usize = 20;
    let phase = Instant::now();
    for i in 0..SENT {
        let r = gw.chat("bad", false);
        assert_eq!(served_by(&r), "good", "request {i} did not fail over");
        if i < MIN_REQUESTS {
            assert_eq!(
                bad.up.requests().len(),
                i + 1,
                "the circuit opened before {MIN_REQUESTS} outcomes"
            );
        }
    }
    let phase = phase.elapsed();
    let seen = bad.arrivals();
    // Once three failures opened the circuit, `bad` is excluded for the cool-down. The only
    // traffic it may see after that is a half-open probe, at least one cool-down after the
    // failure before it (which re-opens the circuit): none while the 20 requests take less
    // than a cool-down, as they normally do.
    assert!(
        seen.len() >= MIN_REQUESTS,
        "bad got {} requests",
        seen.len()
    );
    for (k, pair) in seen.windows(2).enumerate().skip(MIN_REQUESTS - 1) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= COOLDOWN - Duration::from_millis(10),
            "bad got request {} only {gap:?} after the one before, while its circuit was open",
            k + 2
        );
    }
    let probes_possible = (phase.as_millis() / COOLDOWN.as_millis()) as usize;
    assert!(
        seen.len() <= MIN_REQUESTS + probes_possible,
        "bad got {} of {SENT} requests in {phase:?}",
        seen.len()
    );
    assert_eq!(
        good.requests().len(),
        SENT,
        "every request succeeded via good"
    );

    // Recovery: poll (one request every ~100 ms, at most 10 s) until a request reaches `bad`:
    // the half-open probe, which now succeeds.
    bad.healthy.store(true, Ordering::SeqCst);
    let before = bad.up.requests().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = loop {
        let r = gw.chat("bad", false);
        if bad.up.requests().len() > before {
            break r;
        }
        assert_eq!(served_by(&r), "good", "{}", r.dump());
        assert!(
            Instant::now() < deadline,
            "no probe reached bad within 10 s (cool-down {COOLDOWN:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served_by(&probe), "bad", "the probe's answer");
    // The probe came a cool-down after the failure that opened (or re-opened) the circuit.
    let arrivals = bad.arrivals();
    let n = arrivals.len();
    assert!(
        arrivals[n - 1] - arrivals[n - 2] >= COOLDOWN - Duration::from_millis(10),
        "the probe came {:?} after the last failure",
        arrivals[n - 1] - arrivals[n - 2]
    );

    // The probe closed the circuit: requests naming bad reach it again.
    for i in 0..3 {
        let r = gw.chat("bad", false);
        assert_eq!(served_by(&r), "bad", "request {i} after the probe");
        assert_eq!(bad.up.requests().len(), before + 2 + i);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) No failover after the first byte

/// Anthropic stream events up to a content delta, without `message_stop`.
fn anthropic_cut_events(model: &str) -> Vec<String> {
    let mut evs = anthropic_stream_events(model);
    evs.pop();
    evs.push("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into());
    evs.push("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n".into());
    evs
}

/// The stream from `bad` (first candidate) is cut after its first bytes: it must end with the
/// protocol's error event, never its normal end, and `good` must see nothing.
fn check_cut(anthropic: bool, bad_base: &str, bad_upstream_id: &str, bad: Option<&Capture>) {
    let good = Capture::ok();
    let provider = |id: &str, base: &str, extra: &str| {
        if anthropic {
            anthropic_provider(id, base, extra)
        } else {
            openai_provider(id, base, extra)
        }
    };
    let (good_base, route) = if anthropic {
        (good.anthropic_base(), "anthropic")
    } else {
        (good.openai_base(), "openai")
    };
    let why = format!("{route} route, bad upstream {bad_upstream_id}");
    let gw = serve(
        "",
        &[
            provider("badp", bad_base, "stream_idle_timeout_ms = 5000"),
            provider("goodp", &good_base, ""),
            model(
                "bad",
                "badp",
                &format!("upstream_id = \"{bad_upstream_id}\""),
            ),
            model("good", "goodp", ""),
            project("default", TOKEN, &["bad", "good"], ""),
        ],
    );
    let r = if anthropic {
        messages_as(&gw, TOKEN, "bad", true)
    } else {
        chat_as(&gw, TOKEN, "bad", true)
    };
    let trace = trace_of(&r);
    assert_eq!(str_at(&trace, "model"), Some("bad"), "{why}: {trace:?}");
    assert!(attempts(&trace).is_empty(), "{why}: {trace:?}");
    let events = sse_events(&r.body);
    let last = events.last().expect("events");
    if anthropic {
        assert_eq!(last.event.as_deref(), Some("error"), "{why}: {}", r.text());
        let v = parse_json(last.data.as_deref().unwrap_or("").as_bytes());
        assert_eq!(str_at(&v, "type"), Some("error"), "{why}: {}", r.text());
        assert!(
            !events
                .iter()
                .any(|e| e.event.as_deref() == Some("message_stop")),
            "{why}: a cut stream must not end with message_stop: {}",
            r.text()
        );
    } else {
        let data = last.data.as_deref().unwrap_or("");
        assert!(
            parse_json(data.as_bytes()).get("error").is_some(),
            "{why}: the cut stream does not end with an error event: {}",
            r.text()
        );
        assert!(
            !events.iter().any(|e| e.data.as_deref() == Some("[DONE]")),
            "{why}: a cut stream must not end with [DONE]: {}",
            r.text()
        );
    }
    if let Some(bad) = bad {
        assert_eq!(bad.requests().len(), 1, "{why}");
    }
    assert!(
        good.requests().is_empty(),
        "{why}: failed over after the first byte"
    );
}

#[test]
fn a_stream_cut_after_the_first_byte_ends_with_an_error_event_and_no_failover() {
    let bad = Capture::fixed(Reply::SseCut(chat_chunk_events("bad")));
    check_cut(false, &bad.openai_base(), "bad", Some(&bad));
    let bad = Capture::fixed(Reply::SseCut(anthropic_cut_events("bad")));
    check_cut(true, &bad.anthropic_base(), "bad", Some(&bad));
    // The mock provider's `cut-` hook, both protocols.
    let mock = Server::mock_upstream();
    check_cut(false, &format!("http://{}/v1", mock.addr), "cut-gpt", None);
    check_cut(true, &format!("http://{}", mock.addr), "cut-claude", None);
}

// ---------------------------------------------------------------------------------------------
// (d) Budgets

#[test]
fn a_spent_project_budget_is_429_in_the_routes_shape() {
    let up = Capture::ok();
    let budget = "budget = { window_ms = 60000, max_calls = 3 }";
    let gw = serve_on(
        &up,
        &[
            anthropic_provider("ant", &up.anthropic_base(), ""),
            model("gpt", "oai", ""),
            model("claude", "ant", ""),
            project("oa", "sk-lr-oa", &["gpt"], budget),
            project("an", "sk-lr-an", &["claude"], budget),
        ],
    );
    for i in 0..3 {
        assert_eq!(
            served_by(&chat_as(&gw, "sk-lr-oa", "gpt", false)),
            "gpt",
            "call {i}"
        );
    }
    let r = chat_as(&gw, "sk-lr-oa", "gpt", false);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    for i in 0..3 {
        let r = messages_as(&gw, "sk-lr-an", "claude", false);
        assert_eq!(served_by(&r), "claude", "call {i}");
    }
    let r = messages_as(&gw, "sk-lr-an", "claude", false);
    assert_error(&r, 429, Shape::Anthropic, "rate_limit_error");
    // Streaming requests are refused the same way, before any stream starts.
    let r = messages_as(&gw, "sk-lr-an", "claude", true);
    assert_error(&r, 429, Shape::Anthropic, "rate_limit_error");
    // The refused requests never reached a provider.
    assert_eq!(up.requests().len(), 6);
}

#[test]
fn a_spent_model_budget_moves_to_the_next_model_then_429() {
    let up = Capture::ok();
    let gw = serve_on(
        &up,
        &[
            model(
                "capped",
                "oai",
                "budget = { window_ms = 60000, max_calls = 2 }",
            ),
            model("free", "oai", ""),
            model("one-a", "oai", "budget = { max_calls = 1 }"),
            model("one-b", "oai", "budget = { max_calls = 1 }"),
            project(
                "default",
                TOKEN,
                &["capped", "free"],
                "policies = [\"budget\"]",
            ),
            project(
                "tight",
                "sk-lr-tight",
                &["one-a", "one-b"],
                "policies = [\"budget\"]",
            ),
        ],
    );
    // Named, `capped` goes first while it has budget; after 2 calls it is excluded.
    assert_eq!(served_by(&gw.chat("capped", false)), "capped");
    assert_eq!(served_by(&gw.chat("capped", false)), "capped");
    for i in 0..3 {
        assert_eq!(
            served_by(&gw.chat("capped", false)),
            "free",
            "call {i} after capped's budget was spent"
        );
    }
    let to = |m: &str| {
        up.requests()
            .iter()
            .filter(|r| r.model().as_deref() == Some(m))
            .count()
    };
    assert_eq!(to("capped"), 2);
    assert_eq!(to("free"), 3);

    // Every candidate out of budget: 429.
    assert_eq!(
        served_by(&chat_as(&gw, "sk-lr-tight", "auto", false)),
        "one-a"
    );
    assert_eq!(
        served_by(&chat_as(&gw, "sk-lr-tight", "auto", false)),
        "one-b"
    );
    let r = chat_as(&gw, "sk-lr-tight", "auto", false);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    assert_eq!(to("one-a") + to("one-b"), 2);
}

// ---------------------------------------------------------------------------------------------
// (e) costEstimate

/// The `messages` value of the cost requests, byte for byte.
const COST_MESSAGES: &str = r#"[{"role":"system","content":"Be brief."},{"role":"user","content":"How much does this request cost, roughly?"}]"#;
const COST_MAX_TOKENS: u64 = 1000;

fn cost_request(model: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{model}","max_tokens":{COST_MAX_TOKENS},"stream":true,"messages":{COST_MESSAGES}}}"#
    );
    post(CHAT, TOKEN, &body, "")
}

/// The README's formula: ceil(bytes of `messages` / 4) input tokens at the input price plus
/// `max_tokens` at the output price, prices per million.
fn documented_cost(input_per_million: f64, output_per_million: f64) -> f64 {
    let input_tokens = COST_MESSAGES.len().div_ceil(4) as f64;
    (input_tokens * input_per_million + COST_MAX_TOKENS as f64 * output_per_million) / 1e6
}

#[test]
fn cost_estimate_follows_the_models_prices() {
    let up = Capture::ok();
    let gw = serve_on(
        &up,
        &[
            model(
                "low",
                "oai",
                "input_per_million = 1.0\noutput_per_million = 2.0",
            ),
            model(
                "high",
                "oai",
                "input_per_million = 3.0\noutput_per_million = 6.0",
            ),
            project("default", TOKEN, &["low", "high"], ""),
        ],
    );
    let low = trace_of(&roundtrip(gw.addr, &cost_request("low")));
    let high = trace_of(&roundtrip(gw.addr, &cost_request("high")));
    assert_eq!(str_at(&low, "model"), Some("low"));
    assert_eq!(str_at(&high, "model"), Some("high"));
    let (l, h) = (cost_of(&low), cost_of(&high));
    assert!(l > 0.0, "costEstimate {l}");
    assert!(
        (h / l - 3.0).abs() < 1e-6,
        "prices 3x, costEstimate {h} vs {l}"
    );
    let want = documented_cost(1.0, 2.0);
    assert!(
        (l - want).abs() <= want * 1e-9,
        "costEstimate {l}, the documented formula gives {want}"
    );
    let want = documented_cost(3.0, 6.0);
    assert!(
        (h - want).abs() <= want * 1e-9,
        "costEstimate {h}, the documented formula gives {want}"
    );
}

// ---------------------------------------------------------------------------------------------
// (f) Policies

/// One upstream for every model (it echoes the `upstream_id`, so answers name who served).
fn policies_gateway(up: &Capture) -> Server {
    serve_on(
        up,
        &[
            model(
                "dear",
                "oai",
                "input_per_million = 10.0\noutput_per_million = 30.0",
            ),
            model(
                "cheap",
                "oai",
                "input_per_million = 0.5\noutput_per_million = 1.5",
            ),
            model("plain", "oai", ""),
            model("tooled", "oai", "capabilities = [\"tools\"]"),
            model("small", "oai", "context_window = 50"),
            model("large", "oai", "context_window = 100000"),
            project(
                "price",
                "sk-lr-price",
                &["dear", "cheap"],
                "policies = [\"cheapest\"]",
            ),
            project(
                "caps",
                "sk-lr-caps",
                &["plain", "tooled"],
                "policies = [\"capability\"]",
            ),
            project(
                "nocaps",
                "sk-lr-nocaps",
                &["plain"],
                "policies = [\"capability\"]",
            ),
            project(
                "ctx",
                "sk-lr-ctx",
                &["small", "large"],
                "policies = [\"context\"]",
            ),
        ],
    )
}

fn chat_with(gw: &Server, token: &str, body: &str) -> Response {
    roundtrip(gw.addr, &post(CHAT, token, body, ""))
}

#[test]
fn cheapest_picks_the_cheaper_model_unless_one_is_named() {
    let up = Capture::ok();
    let gw = policies_gateway(&up);
    assert_eq!(
        served_by(&chat_as(&gw, "sk-lr-price", "auto", false)),
        "cheap"
    );
    let trace = trace_of(&chat_as(&gw, "sk-lr-price", "auto", true));
    assert_eq!(str_at(&trace, "model"), Some("cheap"), "{trace:?}");
    // Named, the dearer model goes first.
    assert_eq!(
        served_by(&chat_as(&gw, "sk-lr-price", "dear", false)),
        "dear"
    );
    let trace = trace_of(&chat_as(&gw, "sk-lr-price", "dear", true));
    assert_eq!(str_at(&trace, "model"), Some("dear"), "{trace:?}");
    assert_eq!(up.requests().len(), 4);
}

#[test]
fn capability_skips_models_without_tools_and_all_excluded_is_400() {
    let up = Capture::ok();
    let gw = policies_gateway(&up);
    let tools = r#""tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]"#;
    let with_tools = |m: &str| {
        format!(r#"{{"model":"{m}","messages":[{{"role":"user","content":"time?"}}],{tools}}}"#)
    };
    // `plain` comes first in the project, but cannot take tools, even when named.
    for m in ["auto", "plain"] {
        let r = chat_with(&gw, "sk-lr-caps", &with_tools(m));
        assert_eq!(served_by(&r), "tooled", "model {m}");
    }
    // Without tools (or with an empty list) nothing is excluded: project order.
    assert_eq!(
        served_by(&chat_as(&gw, "sk-lr-caps", "auto", false)),
        "plain"
    );
    let empty = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[]}"#;
    assert_eq!(served_by(&chat_with(&gw, "sk-lr-caps", empty)), "plain");
    // Every candidate excluded: 400.
    let r = chat_with(&gw, "sk-lr-nocaps", &with_tools("auto"));
    assert_error(&r, 400, Shape::OpenAi, "invalid_request_error");
    assert_eq!(up.requests().len(), 4, "the 400 reached no provider");
}

#[test]
fn context_skips_a_window_the_request_does_not_fit() {
    let up = Capture::ok();
    let gw = policies_gateway(&up);
    // ~300 bytes of messages ≈ 75 tokens, plus 10 output: more than `small`'s 50.
    let long = "word ".repeat(60);
    let big = format!(
        r#"{{"model":"auto","max_tokens":10,"messages":[{{"role":"user","content":"{long}"}}]}}"#
    );
    assert_eq!(served_by(&chat_with(&gw, "sk-lr-ctx", &big)), "large");
    // Named, `small` still cannot take it.
    let big_named = big.replace("\"auto\"", "\"small\"");
    assert_eq!(served_by(&chat_with(&gw, "sk-lr-ctx", &big_named)), "large");
    // A short request fits both: project order.
    let short = r#"{"model":"auto","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(served_by(&chat_with(&gw, "sk-lr-ctx", short)), "small");
}

// ---------------------------------------------------------------------------------------------
// (g) One route line per request

/// The `route trace_id=` lines of `log`.
fn route_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("route trace_id="))
        .collect()
}

/// Asserts `log` has exactly one `route` line for each of `ids` and no other, each with the
/// decision's fields; returns them in the order of `ids`.
fn assert_one_route_line_each<'a>(log: &'a str, ids: &[String]) -> Vec<&'a str> {
    let lines = route_lines(log);
    assert_eq!(
        lines.len(),
        ids.len(),
        "{} route lines for {} requests:\n{log}",
        lines.len(),
        ids.len()
    );
    ids.iter()
        .map(|id| {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains(&format!("route trace_id={id} ")))
                .collect();
            assert_eq!(mine.len(), 1, "route lines for {id}:\n{log}");
            let l = mine[0];
            assert!(l.contains(" chosen="), "{l}");
            let cands = l
                .split(" candidates=[")
                .nth(1)
                .and_then(|rest| rest.split(']').next())
                .unwrap_or_else(|| panic!("no candidates=[...] in {l}"));
            assert!(!cands.is_empty(), "empty candidates in {l}");
            l
        })
        .collect()
}

fn assert_no_secrets(log: &str) {
    for secret in [OPENAI_KEY, ANTHROPIC_KEY, TOKEN, "sk-lr-an"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    // Nor a recognisable piece of a provider key.
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        for frag in key.as_bytes().windows(12) {
            let frag = std::str::from_utf8(frag).expect("ASCII key");
            assert!(!log.contains(frag), "{frag:?} of a provider key in the log");
        }
    }
}

fn trace_id(r: &Response) -> String {
    let id = r
        .header("x-routerly-trace-id")
        .unwrap_or_else(|| panic!("no trace id: {}", r.dump()))
        .to_string();
    assert_uuid_v7(&id);
    id
}

#[test]
fn each_request_logs_its_routing_decision_once() {
    let bad = Capture::fixed(Reply::Json(500, r#"{"error":{"message":"boom"}}"#.into()));
    let good = Capture::ok();
    let mut gw = serve(
        "",
        &[
            openai_provider("badp", &bad.openai_base(), ""),
            openai_provider("goodp", &good.openai_base(), ""),
            anthropic_provider("antp", &good.anthropic_base(), ""),
            model("bad", "badp", ""),
            model("good", "goodp", ""),
            model("claude", "antp", ""),
            project("default", TOKEN, &["bad", "good"], ""),
            project("solo", "sk-lr-an", &["bad"], ""),
            project("an", "sk-lr-an2", &["claude"], ""),
        ],
    );
    let mut ids = Vec::new();
    let mut want = Vec::new();
    for (stream, model) in [
        (false, "good"),
        (true, "good"),
        (false, "bad"),
        (true, "auto"),
    ] {
        let r = gw.chat(model, stream);
        assert_eq!(r.status, 200, "{}", r.dump());
        ids.push(trace_id(&r));
        want.push((
            "chosen=good ",
            if model == "good" {
                "failed=[]"
            } else {
                "failed=[bad:upstream_failed]"
            },
        ));
    }
    // Every candidate failed: still one line, nothing chosen.
    let r = chat_as(&gw, "sk-lr-an", "bad", false);
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    ids.push(trace_id(&r));
    want.push(("chosen=- ", "failed=[bad:upstream_failed]"));
    // The Anthropic route.
    let r = messages_as(&gw, "sk-lr-an2", "claude", true);
    ids.push(trace_id(&r));
    want.push(("chosen=claude ", "failed=[]"));

    // Stopped first: every line it would write is in the log.
    gw.stop();
    let log = gw.stderr();
    let lines = assert_one_route_line_each(&log, &ids);
    for (l, (chosen, failed)) in lines.iter().zip(&want) {
        assert!(l.contains(chosen), "want {chosen:?} in {l}");
        assert!(l.contains(failed), "want {failed:?} in {l}");
    }
    assert!(lines[0].contains("candidates=[good:"), "{}", lines[0]);
    assert!(lines[3].contains("candidates=[bad:"), "{}", lines[3]);
    assert_no_secrets(&log);
}

#[test]
fn requests_refused_by_routing_log_their_decision_once_too() {
    let up = Capture::ok();
    let mut gw = serve_on(
        &up,
        &[
            model("plain", "oai", ""),
            project(
                "default",
                TOKEN,
                &["plain"],
                "policies = [\"capability\"]\nbudget = { max_calls = 1 }",
            ),
        ],
    );
    let mut ids = Vec::new();
    // No candidate takes tools: 400 (refused before any attempt, so no budget is used).
    let tools = r#"{"model":"plain","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#;
    let r = chat_with(&gw, TOKEN, tools);
    assert_error(&r, 400, Shape::OpenAi, "invalid_request_error");
    ids.push(trace_id(&r));
    let r = gw.chat("plain", false);
    assert_eq!(served_by(&r), "plain");
    ids.push(trace_id(&r));
    // The project's budget is spent: 429.
    let r = gw.chat("plain", false);
    assert_error(&r, 429, Shape::OpenAi, "rate_limit_error");
    ids.push(trace_id(&r));
    gw.stop();
    let log = gw.stderr();
    let lines = assert_one_route_line_each(&log, &ids);
    assert!(lines[0].contains("status=400"), "{}", lines[0]);
    assert!(lines[2].contains("status=429"), "{}", lines[2]);
    assert_no_secrets(&log);
}
