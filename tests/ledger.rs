//! The usage ledger end to end: the gateway binary in front of a capture upstream that reports
//! usage, over real sockets. Each answered request gets one NDJSON line carrying the
//! upstream's token counts and the cost at the config's prices (cache reads at the cached
//! price); refusals get lines too; the token itself never appears; budgets count the real cost.
//! The writer's queue and rotation are unit-tested beside it (`usage::ledger`).

mod common;

use common::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INPUT_PRICE: f64 = 2.0;
const OUTPUT_PRICE: f64 = 8.0;
const CACHED_PRICE: f64 = 0.5;
/// What the upstream reports: prompt tokens (cached ones included), cached, completion.
const PROMPT: u64 = 1000;
const CACHED: u64 = 400;
const COMPLETION: u64 = 200;

fn usage_json() -> String {
    format!(
        r#"{{"prompt_tokens":{PROMPT},"completion_tokens":{COMPLETION},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{CACHED}}}}}"#,
        PROMPT + COMPLETION
    )
}

/// Whether the request asks for stream usage, as OpenAI reads it.
fn asks_usage(req: &Captured) -> bool {
    req.json()
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|v| v.as_bool())
        == Some(true)
}

/// A chat answer reporting [`usage_json`]: JSON, or chunks then `[DONE]`, with the usage chunk
/// only when the request asked for it (`stream_options.include_usage`), as OpenAI does.
fn reply(req: &Captured) -> Reply {
    let model = req.model().unwrap_or_default();
    if req.wants_stream() {
        let mut evs = chat_chunk_events(&model);
        if asks_usage(req) {
            evs.push(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"{model}\",\"choices\":[],\"usage\":{}}}\n\n",
            usage_json()
        ));
        }
        evs.push("data: [DONE]\n\n".into());
        Reply::Sse(evs)
    } else {
        Reply::Json(
            200,
            format!(
                r#"{{"id":"c","object":"chat.completion","created":1,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"hi"}},"finish_reason":"stop"}}],"usage":{}}}"#,
                usage_json()
            ),
        )
    }
}

/// The cost the ledger must show for [`usage_json`].
fn expected_cost() -> f64 {
    ((PROMPT - CACHED) as f64 * INPUT_PRICE
        + CACHED as f64 * CACHED_PRICE
        + COMPLETION as f64 * OUTPUT_PRICE)
        / 1e6
}

/// A gateway on `up` writing its ledger to `dir`, the project's `extra` lines appended.
fn serve(up: &Capture, dir: &Path, project_extra: &str) -> Server {
    serve_with(up, dir, "", project_extra)
}

/// [`serve`] with more `[usage]` lines.
fn serve_with(up: &Capture, dir: &Path, usage_extra: &str, project_extra: &str) -> Server {
    let usage = format!(
        "ledger = {}\naccess_log = \"\"\n{usage_extra}",
        toml_path(&dir.join("usage.ndjson"))
    );
    serve_usage(up, &usage, project_extra)
}

/// A gateway on `up` with these `[usage]` lines.
fn serve_usage(up: &Capture, usage: &str, project_extra: &str) -> Server {
    let cfg = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1

[usage]
{usage}

[[providers]]
id = "up"
kind = "openai"
base_url = "{base}"
api_key_env = "TEST_OPENAI_KEY"

[[models]]
id = "m1"
provider = "up"
upstream_id = "up-model"
input_per_million = {INPUT_PRICE}
output_per_million = {OUTPUT_PRICE}
cached_input_per_million = {CACHED_PRICE}

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m1"]
{project_extra}
"#,
        base = up.openai_base(),
    );
    Server::serve(&cfg, &key_env())
}

/// The ledger's lines once it holds `n` (the writer thread appends them after the answers).
fn wait_lines(path: &PathBuf, n: usize) -> Vec<OwnedValue> {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= n {
            return lines.iter().map(|l| parse_json(l.as_bytes())).collect();
        }
        assert!(
            Instant::now() < deadline,
            "the ledger has {} lines, wanted {n}:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: {got} != {want}");
}

#[test]
fn plain_and_streamed_lines_carry_the_upstreams_tokens_and_cost() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger");
    let gw = serve(&up, &dir, "");
    let plain = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m1", false), ""));
    assert_eq!(plain.status, 200);
    let streamed = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m1", true), ""));
    assert_eq!(streamed.status, 200);
    let lines = wait_lines(&dir.join("usage.ndjson"), 2);
    for (l, what) in lines.iter().zip(["plain", "streamed"]) {
        assert_eq!(l["input_tokens"].as_u64(), Some(PROMPT), "{what}: {l}");
        assert_eq!(l["output_tokens"].as_u64(), Some(COMPLETION), "{what}");
        assert_eq!(l["cached_tokens"].as_u64(), Some(CACHED), "{what}");
        assert_close(l["cost_usd"].as_f64().unwrap(), expected_cost(), what);
        assert_eq!(l["status"].as_u64(), Some(200));
        assert_eq!(l["project"].as_str(), Some("p"));
        assert_eq!(l["model"].as_str(), Some("m1"));
        assert_eq!(l["provider"].as_str(), Some("up"));
        assert_eq!(l["route"].as_str(), Some(CHAT));
        assert_eq!(l["attempts"].as_u64(), Some(1));
        assert_eq!(l["token_id"].as_str().map(str::len), Some(12));
        let ts = l["ts"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{ts}"
        );
        assert!(l["latency_ms"].as_f64().is_some() && l["ttfb_ms"].as_f64().is_some());
    }
    assert_eq!(
        lines[0]["trace_id"].as_str(),
        plain.header("x-routerly-trace-id")
    );
}

#[test]
fn stream_usage_is_asked_for_and_shown_only_to_a_client_that_asked() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-stream-usage");
    let gw = serve(&up, &dir, "");
    let stream = |options: &str| {
        let body = format!(
            r#"{{"model":"m1","stream":true,{options}"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &body, ""));
        assert_eq!(r.status, 200, "{}", r.dump());
        let events = sse_events(&r.body);
        assert_eq!(
            events.last().and_then(|e| e.data.as_deref()),
            Some("[DONE]")
        );
        let usage_chunks = events
            .iter()
            .filter_map(|e| e.data.as_deref())
            .filter(|d| d.contains("\"choices\":[]") && d.contains("\"usage\":{"))
            .count();
        let sent = up.requests().last().unwrap().json();
        (usage_chunks, sent.get("stream_options").cloned())
    };
    // Not asked: the gateway asks upstream and the client sees no usage chunk.
    let (seen, sent) = stream("");
    assert_eq!(seen, 0, "a client that did not ask sees no usage chunk");
    assert_eq!(sent.unwrap()["include_usage"].as_bool(), Some(true));
    // Options of the client's own are kept beside it.
    let (seen, sent) = stream(r#""stream_options":{"include_obfuscation":false},"#);
    assert_eq!(seen, 0);
    let sent = sent.unwrap();
    assert_eq!(sent["include_usage"].as_bool(), Some(true));
    assert_eq!(sent["include_obfuscation"].as_bool(), Some(false));
    // Asked: passed on as sent, and the chunk reaches the client.
    let (seen, sent) = stream(r#""stream_options":{"include_usage":true},"#);
    assert_eq!(seen, 1, "a client that asked gets its usage chunk");
    assert_eq!(sent.unwrap()["include_usage"].as_bool(), Some(true));
    // Every one of the three is counted with the upstream's tokens.
    let lines = wait_lines(&dir.join("usage.ndjson"), 3);
    for l in &lines {
        assert_eq!(l["output_tokens"].as_u64(), Some(COMPLETION), "{l}");
        assert_close(l["cost_usd"].as_f64().unwrap(), expected_cost(), "stream");
    }
}

#[test]
fn every_answer_is_logged_when_sigterm_ends_the_process() {
    // The access log is a pipe this test reads only after the signal: the writer is stuck
    // behind it, so lines are still queued when the workers stop. All must come out.
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-sigterm");
    let fifo = dir.join("access.pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Opening blocks until the gateway opens its end.
            let mut f = std::fs::File::open(&fifo).unwrap();
            wait_go.recv().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).unwrap();
            text
        })
    };
    let usage = format!("ledger = \"\"\naccess_log = {}", toml_path(&fifo));
    let mut gw = serve_usage(&up, &usage, "");
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (answered, addr) = (answered.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut c = Conn::connect(addr);
                loop {
                    if c.send(&post(CHAT, TOKEN, &chat_body("m1", false), ""))
                        .is_err()
                    {
                        return;
                    }
                    match c.read_response() {
                        Ok(r) if r.status == 200 => {
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + LOG_WAIT;
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
        assert!(Instant::now() < deadline, "the clients are not served");
        std::thread::yield_now();
    }
    gw.signal(libc::SIGTERM);
    for c in clients {
        c.join().unwrap();
    }
    // The workers have stopped with lines still queued behind the pipe; only now is it read.
    let line = gw.wait_log("the write-out", |l| {
        l.contains("writing out the usage ledger")
    });
    assert!(
        !line.contains("(0 lines queued)"),
        "lines were still queued: {line}"
    );
    go.send(()).unwrap();
    assert!(gw.wait().is_some_and(|s| s.success()), "{}", gw.stderr());
    let text = reader.join().unwrap();
    let ok = text
        .lines()
        .filter(|l| l.contains("\"status\":200"))
        .count() as u64;
    assert_eq!(
        ok,
        answered.load(std::sync::atomic::Ordering::Relaxed),
        "every answer the clients got has its line"
    );
}

#[test]
fn refusals_get_lines_and_the_token_never_appears() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-refusals");
    let gw = serve(&up, &dir, "budget = { window_ms = 60000, max_calls = 1 }");
    let body = chat_body("m1", false);
    let bad = roundtrip(gw.addr, &post(CHAT, "sk-lr-wrong", &body, ""));
    assert_eq!(bad.status, 401);
    let missing = roundtrip(gw.addr, &post("/v1/nowhere", TOKEN, &body, ""));
    assert_eq!(missing.status, 404);
    assert_eq!(
        roundtrip(gw.addr, &post(CHAT, TOKEN, &body, "")).status,
        200
    );
    let spent = roundtrip(gw.addr, &post(CHAT, TOKEN, &body, ""));
    assert_eq!(spent.status, 429);
    // Let in on its head, refused for its body (a declared length past max_body_bytes).
    let mut c = gw.connect();
    c.send(
        format!(
            "POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
            1u64 << 31
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.response().status, 413);
    let path = dir.join("usage.ndjson");
    let lines = wait_lines(&path, 5);
    let statuses: Vec<_> = lines.iter().map(|l| l["status"].as_u64()).collect();
    assert_eq!(
        statuses,
        [Some(401), Some(404), Some(200), Some(429), Some(413)]
    );
    assert!(lines[0]["project"].is_null() && lines[0]["token_id"].is_null());
    assert_eq!(lines[3]["project"].as_str(), Some("p"));
    assert_eq!(lines[3]["attempts"].as_u64(), Some(0));
    assert_eq!(lines[4]["project"].as_str(), Some("p"), "a body refusal");
    assert_eq!(lines[4]["route"].as_str(), Some(CHAT));
    assert!(lines[4]["token_id"].is_str());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains("sk-lr-wrong"));
}

#[test]
fn a_budget_counts_the_real_cost_not_the_estimate() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-budget");
    // No max_tokens: the estimate charged at send time is the input only, far under the
    // budget; the real cost (with 200 output tokens) is over it.
    let body = r#"{"model":"m1","messages":[{"role":"user","content":"Hello there"}]}"#;
    let budget = expected_cost() * 0.9;
    let gw = serve(
        &up,
        &dir,
        &format!("budget = {{ window_ms = 60000, max_spend_usd = {budget} }}"),
    );
    assert_eq!(roundtrip(gw.addr, &post(CHAT, TOKEN, body, "")).status, 200);
    let r = roundtrip(gw.addr, &post(CHAT, TOKEN, body, ""));
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn metrics_show_the_dropped_line_count() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-metrics");
    let gw = serve(&up, &dir, "");
    assert_eq!(gw.metric("switchyard_ledger_dropped_total"), 0);
}

#[test]
fn the_ledger_rotates_at_its_size_limit() {
    let up = Capture::start(reply);
    let dir = temp_dir("ledger-rotate");
    let mut gw = serve_with(&up, &dir, "ledger_max_bytes = 4096\nledger_keep = 2", "");
    let path = dir.join("usage.ndjson");
    let mut c = gw.connect();
    // Lines are ~400 bytes: 40 of them fill the file and one rotated file and start a second.
    for _ in 0..40 {
        c.send(&post(CHAT, TOKEN, &chat_body("m1", false), ""))
            .unwrap();
        assert_eq!(c.response().status, 200);
    }
    let rotated = |n: u32| dir.join(format!("usage.ndjson.{n}"));
    // Lines reach the writer in batches, so rotations can still be under way when the last
    // answer arrives (between two renames `.1` is briefly missing): the exit, after SIGTERM
    // wrote out every line, is when the files are final.
    drop(c);
    assert!(gw.stop().is_some_and(|s| s.success()), "{}", gw.stderr());
    assert!(rotated(2).exists(), "no usage.ndjson.2 in {dir:?}");
    for p in [path.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 4096, "{p:?} is {len} bytes");
    }
    assert!(
        !rotated(3).exists(),
        "ledger_keep = 2 keeps two rotated files"
    );
    let full = std::fs::read_to_string(rotated(1)).unwrap();
    assert!(full.len() > 3000 && full.lines().all(|l| l.starts_with("{\"ts\"")));
}
