//! The embedded conversation store through the real binary: what a client was told is stored
//! survives a restart and a `kill -9`; a stream is stored only once whole; stored ids are
//! scoped to their project. (Multi-turn across providers, through the official SDK, is
//! `tests/sdk/test_state.py`'s.)

mod common;

use common::*;
use simd_json::prelude::*;
use std::path::Path;

const RESPONSES: &str = "/v1/responses";

/// The built-in mock behind projects `p` and `q` (same token), the store under `state_dir`;
/// model `bad` trips the mock's mid-stream error hook.
fn mock_config(state_dir: &Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = ""
workers = 2

[[providers]]
id = "mock"
kind = "mock"

[[models]]
id = "m"
provider = "mock"

[[models]]
id = "bad"
provider = "mock"
upstream_id = "error-bad"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m", "bad"]

[[projects]]
slug = "q"
tokens = ["{TOKEN}"]
models = ["m"]

[state]
path = "{}"
"#,
        state_dir.display()
    )
}

fn create(gw: &Server, body: &str) -> simd_json::OwnedValue {
    let r = roundtrip(gw.addr, &post(RESPONSES, TOKEN, body, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn get_response(gw: &Server, path: &str) -> Response {
    roundtrip(gw.addr, &get(path, TOKEN))
}

#[test]
fn acknowledged_responses_survive_a_restart_and_kill_9() {
    let dir = temp_dir("state-restart");
    let cfg = mock_config(&dir.join("store"));
    let mut gw = Server::serve(&cfg, &[]);
    let first = create(&gw, r#"{"model":"m","input":"remember the number 42"}"#);
    let id1 = first["id"].as_str().unwrap().to_string();
    gw.stop();

    // A clean restart.
    let mut gw = Server::serve(&cfg, &[]);
    let got = get_response(&gw, &format!("{RESPONSES}/{id1}"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["output"], first["output"]);
    let second = create(
        &gw,
        &format!(r#"{{"model":"m","input":"and now?","previous_response_id":"{id1}"}}"#),
    );
    let id2 = second["id"].as_str().unwrap().to_string();

    // kill -9 right after the answer: what the client got is on disk already.
    gw.signal(libc::SIGKILL);
    gw.wait();
    let gw = Server::serve(&cfg, &[]);
    for id in [&id1, &id2] {
        let r = get_response(&gw, &format!("{RESPONSES}/{id}"));
        assert_eq!(r.status, 200, "{id} lost by kill -9: {}", r.text());
    }
    let items = get_response(&gw, &format!("{RESPONSES}/{id2}/input_items?order=asc"));
    assert_eq!(items.status, 200, "{}", items.text());
    let v = items.json();
    let text = simd_json::to_string(&v["data"]).unwrap();
    assert!(text.contains("remember the number 42"), "{text}");
    assert!(text.contains("and now?"), "{text}");
    assert_eq!(v["object"].as_str(), Some("list"));
}

#[test]
fn stored_ids_belong_to_their_project_and_delete_is_final() {
    let dir = temp_dir("state-scope");
    let gw = Server::serve(&mock_config(&dir.join("store")), &[]);
    let r = roundtrip(
        gw.addr,
        &post(
            "/projects/p/v1/responses",
            TOKEN,
            r#"{"model":"m","input":"mine"}"#,
            "",
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let in_p = format!("/projects/p/v1/responses/{id}");
    let in_q = format!("/projects/q/v1/responses/{id}");
    assert_eq!(get_response(&gw, &in_p).status, 200);
    let other = get_response(&gw, &in_q);
    assert_eq!(other.status, 404, "{}", other.text());
    assert_eq!(
        other.json()["error"]["type"].as_str(),
        Some("not_found_error")
    );
    // Continuing another project's conversation is the same 404, before any provider.
    let cont = roundtrip(
        gw.addr,
        &post(
            "/projects/q/v1/responses",
            TOKEN,
            &format!(r#"{{"model":"m","input":"x","previous_response_id":"{id}"}}"#),
            "",
        ),
    );
    assert_eq!(cont.status, 404, "{}", cont.text());

    let del = roundtrip(
        gw.addr,
        format!("DELETE {in_p} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(del.status, 200, "{}", del.text());
    assert_eq!(del.json()["deleted"].as_bool(), Some(true));
    assert_eq!(get_response(&gw, &in_p).status, 404);
    // A POST to a stored route is refused, in the OpenAI shape.
    let wrong = roundtrip(gw.addr, &post(&in_p, TOKEN, "{}", ""));
    assert_eq!(wrong.status, 405, "{}", wrong.text());
}

#[test]
fn a_stream_is_stored_once_whole_and_a_cut_one_not_at_all() {
    let dir = temp_dir("state-stream");
    let gw = Server::serve(&mock_config(&dir.join("store")), &[]);
    let r = roundtrip(
        gw.addr,
        &post(
            RESPONSES,
            TOKEN,
            r#"{"model":"m","input":"stream me","stream":true}"#,
            "",
        ),
    );
    assert_eq!(r.status, 200);
    let done = sse_events(&r.body)
        .into_iter()
        .filter_map(|e| e.data)
        .map(|d| parse_json(d.as_bytes()))
        .find(|v| v["type"].as_str() == Some("response.completed"))
        .expect("a completed event");
    let id = done["response"]["id"].as_str().unwrap().to_string();
    let got = get_response(&gw, &format!("{RESPONSES}/{id}"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["output"], done["response"]["output"]);

    // The mock's `error-` hook fails the stream midway: nothing is kept under its id.
    let r = roundtrip(
        gw.addr,
        &post(
            RESPONSES,
            TOKEN,
            r#"{"model":"bad","input":"stream me","stream":true}"#,
            "",
        ),
    );
    assert_eq!(r.status, 200);
    let events: Vec<_> = sse_events(&r.body)
        .into_iter()
        .filter_map(|e| e.data)
        .map(|d| parse_json(d.as_bytes()))
        .collect();
    assert!(
        !events
            .iter()
            .any(|v| v["type"].as_str() == Some("response.completed")),
        "the hook failed the stream"
    );
    let id = events
        .iter()
        .find(|v| v["type"].as_str() == Some("response.created"))
        .and_then(|v| v["response"]["id"].as_str())
        .expect("the stream had started")
        .to_string();
    let got = get_response(&gw, &format!("{RESPONSES}/{id}"));
    assert_eq!(
        got.status,
        404,
        "a failed stream was stored: {}",
        got.text()
    );
}
