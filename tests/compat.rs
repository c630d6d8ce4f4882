//! OpenAI-compatible servers behind `kind = "openai"` (`gateway.md`, "Configuration" and
//! "Requests"): vLLM and Ollama answers, replayed from fixtures written from their docs
//! (`tests/fixtures/compat/`), reach the client byte for byte, non-standard fields and error
//! shapes included; a provider with `responses = false` is never sent `/v1/responses`; a
//! provider's `headers` go on every upstream request exactly once; and its key header is built
//! per request, so a key reloaded on SIGHUP replaces the old one even on a pooled connection.

mod common;

use common::*;
use simd_json::prelude::*;

const RESPONSES: &str = "/v1/responses";

/// The vLLM provider's key (read from `TEST_VLLM_KEY`).
const VLLM_KEY: &str = "sk-vllm-Q7ZX4M2PW9RTB6KD";
/// The Ollama provider's key (read from `TEST_OLLAMA_KEY`); Ollama ignores it, the gateway
/// sends it all the same.
const OLLAMA_KEY: &str = "sk-olm-H3JV8NC5YF2LGX7S";
/// The key of the `responses = true` provider (read from `TEST_OAI_KEY`).
const OAI_KEY: &str = "sk-oai-T6PW3QZ8KM4VB2XN";

fn compat_env() -> [(&'static str, &'static str); 3] {
    [
        ("TEST_VLLM_KEY", VLLM_KEY),
        ("TEST_OLLAMA_KEY", OLLAMA_KEY),
        ("TEST_OAI_KEY", OAI_KEY),
    ]
}

const SERVER: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = ""
workers = 1
idle_timeout_ms = 5000
drain_timeout_ms = 2000
"#;

/// A vLLM provider `vllm` and an Ollama provider `ollama` (both `responses = false`), with
/// models `qwen` (upstream `Qwen/Qwen2.5-7B-Instruct`) and `llama` (upstream `llama3.2`), in
/// project `p` with [`TOKEN`].
fn compat_config(vllm: &Capture, ollama: &Capture) -> String {
    format!(
        r#"{SERVER}
[[providers]]
id = "vllm"
kind = "openai"
responses = false
base_url = "{vllm_base}"
api_key_env = "TEST_VLLM_KEY"
first_byte_timeout_ms = 2000

[[providers]]
id = "ollama"
kind = "openai"
responses = false
base_url = "{ollama_base}"
api_key_env = "TEST_OLLAMA_KEY"
first_byte_timeout_ms = 2000

[[models]]
id = "qwen"
provider = "vllm"
upstream_id = "Qwen/Qwen2.5-7B-Instruct"

[[models]]
id = "llama"
provider = "ollama"
upstream_id = "llama3.2"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["qwen", "llama"]
"#,
        vllm_base = vllm.openai_base(),
        ollama_base = ollama.openai_base(),
    )
}

/// One server of each kind, replaying its fixtures, and the gateway in front of both.
struct Compat {
    vllm: Capture,
    ollama: Capture,
    gw: Server,
}

fn compat() -> Compat {
    let vllm = Capture::start(fixture_replay(
        "compat/vllm/chat.json",
        "compat/vllm/chat_stream.sse",
    ));
    let ollama = Capture::start(fixture_replay(
        "compat/ollama/chat.json",
        "compat/ollama/chat_stream.sse",
    ));
    let gw = Server::serve(&compat_config(&vllm, &ollama), &compat_env());
    Compat { vllm, ollama, gw }
}

/// A chat completion for `model`; streaming ones ask for the usage chunk, as the fixtures
/// were answered.
fn chat_request(model: &str, stream: bool) -> Vec<u8> {
    let body = if stream {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello there"}}],"stream":true,"stream_options":{{"include_usage":true}},"max_tokens":32}}"#
        )
    } else {
        chat_body(model, false)
    };
    post(CHAT, TOKEN, &body, "")
}

/// Checks what the server behind `capture` saw of the one request it got: the model's
/// `upstream_id`, its own key as `Authorization: Bearer` (once), and no client token.
fn assert_upstream_saw(capture: &Capture, upstream_id: &str, key: &str) {
    let seen = capture.requests();
    assert_eq!(seen.len(), 1, "requests upstream: {seen:#?}");
    let req = &seen[0];
    assert_eq!(req.path(), "/v1/chat/completions", "{}", req.head);
    assert_eq!(req.model().as_deref(), Some(upstream_id), "{}", req.head);
    assert_eq!(header_count(req, "authorization"), 1, "{}", req.head);
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {key}").as_str()),
        "{}",
        req.head
    );
    assert!(
        !contains(&req.raw, TOKEN.as_bytes()),
        "the client token reached the provider:\n{}",
        String::from_utf8_lossy(&req.raw)
    );
}

fn assert_relayed_json(r: &Response, status: u16, want: &str, what: &str) {
    assert_eq!(r.status, status, "[{what}] {}", r.dump());
    assert_uuid_v7(
        r.header("x-routerly-trace-id")
            .unwrap_or_else(|| panic!("[{what}] no x-routerly-trace-id:\n{}", r.dump())),
    );
    assert!(
        r.body == want.as_bytes(),
        "[{what}] the body is not the upstream's byte for byte\n  sent: {want:?}\n  got:  {:?}",
        r.text()
    );
}

#[test]
fn vllm_chat_completion_is_relayed_byte_for_byte() {
    let c = compat();
    let r = roundtrip(c.gw.addr, &chat_request("qwen", false));
    let want = fixture("compat/vllm/chat.json");
    assert_relayed_json(&r, 200, &want, "vllm chat");
    // The non-standard fields are there for the client (a second look, by name).
    let v = r.json();
    for key in ["prompt_logprobs", "kv_transfer_params", "service_tier"] {
        assert!(
            v.get(key).is_some_and(|x| x.is_null()),
            "{key}: {}",
            r.text()
        );
    }
    assert!(v["choices"][0].get("stop_reason").is_some(), "{}", r.text());
    assert!(
        v["usage"]["prompt_tokens_details"].is_null(),
        "{}",
        r.text()
    );
    assert_upstream_saw(&c.vllm, "Qwen/Qwen2.5-7B-Instruct", VLLM_KEY);
    assert!(c.ollama.requests().is_empty());
}

#[test]
fn ollama_chat_completions_are_relayed_byte_for_byte() {
    for fx in [
        "compat/ollama/chat.json",
        "compat/ollama/chat_tool_calls.json",
    ] {
        let ollama = Capture::fixed(Reply::Json(200, fixture(fx)));
        let vllm = Capture::ok();
        let gw = Server::serve(&compat_config(&vllm, &ollama), &compat_env());
        let r = roundtrip(gw.addr, &chat_request("llama", false));
        let want = fixture(fx);
        assert!(
            want.ends_with("}\n"),
            "Go's encoder ends the body with a newline"
        );
        assert_relayed_json(&r, 200, &want, fx);
        assert_eq!(
            r.json()["system_fingerprint"].as_str(),
            Some("fp_ollama"),
            "{}",
            r.text()
        );
        assert_upstream_saw(&ollama, "llama3.2", OLLAMA_KEY);
        assert!(vllm.requests().is_empty());
    }
}

/// The client's stream after the gateway's first event, which must be the trace.
fn after_trace(r: &Response) -> Vec<u8> {
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        r.dump()
    );
    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
    let end = find(&r.body, b"\n\n").unwrap_or_else(|| panic!("no event: {}", r.dump())) + 2;
    let first = sse_events(&r.body[..end]);
    let data = first[0].data.as_deref().unwrap_or("");
    assert!(
        data.starts_with("{\"type\":\"trace\""),
        "the first event is not the trace: {}",
        r.text()
    );
    r.body[end..].to_vec()
}

fn assert_stream_relayed(r: &Response, fixture_path: &str) {
    let events = fixture_events(fixture_path);
    let rest = after_trace(r);
    assert!(
        rest == events.concat().as_bytes(),
        "[{fixture_path}] the upstream events did not reach the client unchanged and in order\n  sent: {:?}\n  got:  {:?}",
        events.concat(),
        String::from_utf8_lossy(&rest)
    );
    // The same, event by event, for a readable failure if the bytes above ever differ in a
    // way the comparison hides (they cannot both pass and differ).
    let got = sse_events(&rest);
    let sent = sse_events(events.concat().as_bytes());
    assert_eq!(got, sent, "[{fixture_path}]");
    assert_eq!(got.last().and_then(|e| e.data.as_deref()), Some("[DONE]"));
}

#[test]
fn vllm_stream_is_relayed_event_for_event() {
    let c = compat();
    let r = roundtrip(c.gw.addr, &chat_request("qwen", true));
    assert_stream_relayed(&r, "compat/vllm/chat_stream.sse");
    // The usage chunk with empty choices is among them.
    let usage = sse_events(&r.body)
        .into_iter()
        .filter_map(|e| e.data)
        .filter(|d| d.contains("\"choices\":[],\"usage\""))
        .count();
    assert_eq!(usage, 1, "{}", r.text());
    assert_upstream_saw(&c.vllm, "Qwen/Qwen2.5-7B-Instruct", VLLM_KEY);
}

#[test]
fn ollama_stream_is_relayed_event_for_event() {
    let c = compat();
    let r = roundtrip(c.gw.addr, &chat_request("llama", true));
    assert_stream_relayed(&r, "compat/ollama/chat_stream.sse");
    assert_upstream_saw(&c.ollama, "llama3.2", OLLAMA_KEY);
}

/// Each stream fixture cut in two at every byte boundary (two upstream chunks), relayed on one
/// keep-alive client connection: the client's bytes must not depend on where the upstream's
/// chunks fell.
#[test]
fn streams_split_at_every_byte_are_relayed_unchanged() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    for (model, fx) in [
        ("qwen", "compat/vllm/chat_stream.sse"),
        ("llama", "compat/ollama/chat_stream.sse"),
    ] {
        let whole = fixture_events(fx).concat();
        let next = Arc::new(AtomicUsize::new(1));
        let upstream = {
            let (whole, next) = (whole.clone(), next.clone());
            Capture::start(move |_| {
                let at = next.fetch_add(1, Ordering::SeqCst);
                Reply::Sse(vec![whole[..at].to_string(), whole[at..].to_string()])
            })
        };
        let gw = Server::serve(&compat_config(&upstream, &upstream), &compat_env());
        let mut conn = gw.connect();
        for at in 1..whole.len() {
            conn.send(&chat_request(model, true)).expect("send");
            let r = conn.response();
            let rest = after_trace(&r);
            assert!(
                rest == whole.as_bytes(),
                "[{fx}] split at byte {at}: the client got\n{:?}",
                String::from_utf8_lossy(&rest)
            );
        }
        assert_eq!(next.load(Ordering::SeqCst), whole.len(), "[{fx}]");
    }
}

#[test]
fn vllm_and_ollama_errors_are_relayed_with_their_status() {
    for (model, fx, status) in [
        ("qwen", "compat/vllm/error_400.json", 400),
        ("qwen", "compat/vllm/error_404.json", 404),
        ("qwen", "compat/vllm/error_404_legacy.json", 404),
        ("llama", "compat/ollama/error_400.json", 400),
        ("llama", "compat/ollama/error_404.json", 404),
    ] {
        let upstream = Capture::fixed(Reply::Json(status, fixture(fx)));
        let gw = Server::serve(&compat_config(&upstream, &upstream), &compat_env());
        for stream in [false, true] {
            let r = roundtrip(gw.addr, &chat_request(model, stream));
            assert_relayed_json(&r, status, &fixture(fx), &format!("{fx} stream={stream}"));
        }
        // A 4xx is the request's fault: no failover to the other server.
        assert_eq!(upstream.requests().len(), 2, "[{fx}]");
    }
}

// ---------------------------------------------------------------------------------------------
// /v1/responses and `responses = false`

/// A Responses API answer (only its relay matters here).
fn responses_json(model: &str) -> String {
    format!(
        r#"{{"id":"resp_compat","object":"response","created_at":1735689600,"status":"completed","model":"{model}","output":[{{"type":"message","id":"msg_compat","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"Hi","annotations":[]}}]}}],"usage":{{"input_tokens":3,"output_tokens":1,"total_tokens":4}}}}"#
    )
}

fn responses_request(model: &str) -> Vec<u8> {
    post(
        RESPONSES,
        TOKEN,
        &format!(r#"{{"model":"{model}","input":"Hello there","max_output_tokens":32}}"#),
        "",
    )
}

#[test]
fn responses_on_compat_servers_are_translated_to_their_chat_completions() {
    let c = compat();
    for (model, server) in [("qwen", &c.vllm), ("llama", &c.ollama)] {
        let before = server.requests().len();
        let r = roundtrip(c.gw.addr, &responses_request(model));
        assert_eq!(r.status, 200, "[{model}] {}", r.text());
        let v = r.json();
        assert_eq!(v["object"].as_str(), Some("response"), "{}", r.text());
        assert_eq!(v["status"].as_str(), Some("completed"), "{}", r.text());
        assert_eq!(v["model"].as_str(), Some(model), "the gateway's model id");
        let item = &v["output"][0];
        assert_eq!(item["type"].as_str(), Some("message"), "{}", r.text());
        let text = item["content"][0]["text"].as_str().unwrap_or_default();
        assert!(!text.is_empty(), "[{model}] no output text: {}", r.text());
        let seen = server.requests();
        assert_eq!(seen.len(), before + 1, "{seen:#?}");
        let req = seen.last().expect("one request");
        assert!(
            req.path().ends_with("/chat/completions"),
            "a responses = false server was sent {}",
            req.path()
        );
        let body = req.json();
        assert_eq!(
            body["messages"][0]["role"].as_str(),
            Some("user"),
            "{body:?}"
        );
        assert!(
            format!("{:?}", body["messages"][0]["content"]).contains("Hello there"),
            "{body:?}"
        );
        assert!(
            body.get("input").is_none(),
            "Responses fields leaked: {body:?}"
        );
    }
}

#[test]
fn responses_are_relayed_where_served_and_translated_elsewhere() {
    let vllm = Capture::start(fixture_replay(
        "compat/vllm/chat.json",
        "compat/vllm/chat_stream.sse",
    ));
    let oai = Capture::start(|req: &Captured| {
        let model = req.model().unwrap_or_default();
        if req.path().ends_with("/responses") {
            Reply::Json(200, responses_json(&model))
        } else {
            Reply::Json(200, chat_completion_json(&model))
        }
    });
    // The compat model comes first in the project, and is named by the first request.
    let config = format!(
        r#"{SERVER}
[[providers]]
id = "vllm"
kind = "openai"
responses = false
base_url = "{}"
api_key_env = "TEST_VLLM_KEY"

[[providers]]
id = "oai"
kind = "openai"
responses = true
base_url = "{}"
api_key_env = "TEST_OAI_KEY"

[[models]]
id = "qwen"
provider = "vllm"
upstream_id = "Qwen/Qwen2.5-7B-Instruct"

[[models]]
id = "gpt"
provider = "oai"
upstream_id = "gpt-upstream"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["qwen", "gpt"]
"#,
        vllm.openai_base(),
        oai.openai_base()
    );
    let gw = Server::serve(&config, &compat_env());
    for model in ["gpt", "gpt", "gpt"] {
        let r = roundtrip(gw.addr, &responses_request(model));
        assert_relayed_json(
            &r,
            200,
            &responses_json("gpt-upstream"),
            &format!("responses model={model}"),
        );
    }
    let seen = oai.requests();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    for req in &seen {
        assert_eq!(req.path(), "/v1/responses", "{}", req.head);
        assert_eq!(req.model().as_deref(), Some("gpt-upstream"));
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {OAI_KEY}").as_str())
        );
    }
    assert!(
        vllm.requests().is_empty(),
        "the responses = false server was sent: {:#?}",
        vllm.requests()
    );
    // Named, or first in the project's order, the compat server gets its chat completions.
    for model in ["qwen", "auto"] {
        let r = roundtrip(gw.addr, &responses_request(model));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["object"].as_str(),
            Some("response"),
            "{}",
            r.text()
        );
    }
    let seen = vllm.requests();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(
        seen.iter().all(|r| r.path() == "/v1/chat/completions"),
        "{seen:#?}"
    );
    // Chat completions go to it unchanged.
    let r = roundtrip(gw.addr, &chat_request("qwen", false));
    assert_relayed_json(&r, 200, &fixture("compat/vllm/chat.json"), "chat on qwen");
    assert_eq!(vllm.requests().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// `headers = {...}` and per-request auth

/// Sends `n` chat completions for `model` on one keep-alive client connection, each with
/// `extra` header lines, and checks each answer is the capture's.
fn chats_on_one_connection(gw: &Server, model: &str, n: usize, extra: &str) {
    let mut conn = gw.connect();
    for i in 0..n {
        conn.send(&post(CHAT, TOKEN, &chat_body(model, false), extra))
            .expect("send");
        let r = conn.response();
        assert_eq!(r.status, 200, "request {i}: {}", r.dump());
        assert!(!r.says_close(), "request {i}: {}", r.dump());
    }
}

#[test]
fn configured_headers_go_on_every_upstream_request_exactly_once() {
    let upstream = Capture::ok();
    let gw = Server::serve(
        &one_provider_config(&format!(
            "base_url = \"{}\"\nheaders = {{ \"X-Org-Id\" = \"org-compat-42\", \"x-gateway-tag\" = \"switchyard compat\" }}",
            upstream.openai_base()
        )),
        &key_env(),
    );
    // The client tries to set one of them itself.
    chats_on_one_connection(&gw, "m1", 3, "x-org-id: org-of-the-client\r\n");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(
        upstream.connections(),
        1,
        "the three requests did not share one pooled upstream connection"
    );
    for (i, req) in seen.iter().enumerate() {
        for (name, value) in [
            ("x-org-id", "org-compat-42"),
            ("x-gateway-tag", "switchyard compat"),
        ] {
            assert_eq!(
                header_count(req, name),
                1,
                "request {i}: {name} not exactly once:\n{}",
                req.head
            );
            assert_eq!(req.header(name), Some(value), "request {i}:\n{}", req.head);
        }
        assert!(
            !contains(&req.raw, b"org-of-the-client"),
            "request {i}: the client's header was forwarded:\n{}",
            req.head
        );
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {OPENAI_KEY}").as_str()),
            "request {i}:\n{}",
            req.head
        );
    }
}

#[test]
fn provider_key_is_set_per_request_and_replaced_on_reload() {
    const OLD_KEY: &str = "sk-file-OLD-K8W2N5R9C3V7";
    const NEW_KEY: &str = "sk-file-NEW-J4T6X1M8B2Q5";
    let dir = temp_dir("compat-key");
    let key_file = dir.join("vllm.key");
    std::fs::write(&key_file, format!("{OLD_KEY}\n")).expect("write key file");
    let upstream = Capture::start(fixture_replay(
        "compat/vllm/chat.json",
        "compat/vllm/chat_stream.sse",
    ));
    let config = format!(
        r#"{SERVER}
[[providers]]
id = "vllm"
kind = "openai"
responses = false
base_url = "{}"
api_key_file = {}

[[models]]
id = "qwen"
provider = "vllm"
upstream_id = "Qwen/Qwen2.5-7B-Instruct"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["qwen"]
"#,
        upstream.openai_base(),
        toml_path(&key_file)
    );
    let gw = Server::serve(&config, &[]);

    // Three requests on one client connection: the first opens the upstream connection, the
    // others reuse it from the pool, and each one carries the key.
    chats_on_one_connection(&gw, "qwen", 3, "");
    assert_eq!(upstream.connections(), 1, "the pool was not used");
    let before = upstream.requests();
    assert_eq!(before.len(), 3);
    for (i, req) in before.iter().enumerate() {
        assert_eq!(header_count(req, "authorization"), 1, "{}", req.head);
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {OLD_KEY}").as_str()),
            "request {i} (upstream connection {}):\n{}",
            req.conn,
            req.head
        );
    }

    std::fs::write(&key_file, format!("{NEW_KEY}\n")).expect("rewrite key file");
    gw.signal(libc::SIGHUP);
    gw.wait_log("the reload", |l| l.contains("reloaded"));

    // Streaming and not, on a new client connection and on a kept one.
    chats_on_one_connection(&gw, "qwen", 2, "");
    let r = roundtrip(gw.addr, &chat_request("qwen", true));
    assert_stream_relayed(&r, "compat/vllm/chat_stream.sse");
    let after = upstream.requests();
    assert_eq!(after.len(), 6);
    for (i, req) in after[3..].iter().enumerate() {
        assert_eq!(header_count(req, "authorization"), 1, "{}", req.head);
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {NEW_KEY}").as_str()),
            "request {i} after the reload (upstream connection {}):\n{}",
            req.conn,
            req.head
        );
        assert!(
            !contains(&req.raw, OLD_KEY.as_bytes()),
            "the old key went upstream after the reload:\n{}",
            req.head
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
