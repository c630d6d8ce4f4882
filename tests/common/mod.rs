//! Harness for the integration tests: the real `switchyard` binary as a child process
//! (`server`), a raw HTTP/1.1 client over `std::net::TcpStream` (`client`), and an in-process
//! upstream standing in for a provider that records every request the gateway sends it
//! (`capture`), answering each as told or running a per-connection script, over plain TCP or
//! a TLS session the test wraps around the socket (`scripted`).
//!
//! Nothing here sleeps to wait for something: servers are ready when they print their
//! `listening on http://ADDR` line, responses and log lines are awaited with timeouts, and the
//! upstream reports what it saw over channels and a mutex the test reads.

#![allow(dead_code)]

mod capture;
pub mod chromium;
mod client;
mod command;
mod fixtures;
pub mod redis_server;
mod scripted;
mod server;

pub use capture::*;
pub use client::*;
#[allow(unused_imports)] // only the client-suite drivers run tools
pub use command::*;
#[allow(unused_imports)] // only the compat tests replay fixtures
pub use fixtures::*;
pub use scripted::*;
pub use server::*;

use std::path::Path;
use std::time::Duration;

use simd_json::prelude::*;

/// Read timeout of the raw client: far above every server-side deadline the tests use.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The OpenAI chat completions route.
pub const CHAT: &str = "/v1/chat/completions";
/// The Anthropic messages route.
pub const MESSAGES: &str = "/v1/messages";

/// The client token most configs list.
pub const TOKEN: &str = "sk-lr-test";
/// The provider key the configs' OpenAI provider reads from `TEST_OPENAI_KEY`.
pub const OPENAI_KEY: &str = "sk-provider-SECRET123-openai-0123456789abcdef";
/// The provider key the configs' Anthropic provider reads from `TEST_ANTHROPIC_KEY`.
pub const ANTHROPIC_KEY: &str = "sk-ant-provider-SECRET456-anthropic-fedcba9876543210";

// ---------------------------------------------------------------------------------------------
// Assertions shared by the test files

/// Asserts `v` is a UUIDv7 in its 36-character hyphenated form.
pub fn assert_uuid_v7(v: &str) {
    assert_eq!(v.len(), 36, "trace id {v:?} is not 36 characters");
    let b = v.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(*c, b'-', "trace id {v:?}: no hyphen at {i}");
        } else {
            assert!(
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
                "trace id {v:?}: not lowercase hex at {i}"
            );
        }
    }
    assert_eq!(b[14], b'7', "trace id {v:?}: version nibble is not 7");
    assert!(
        matches!(b[19], b'8' | b'9' | b'a' | b'b'),
        "trace id {v:?}: variant is not RFC 9562"
    );
}

/// The error object's `type` of an OpenAI-shaped error body, after checking the shape:
/// `{"error":{"message": string, "type": string, "code": string|null}}`.
pub fn openai_error_type(r: &Response) -> String {
    let v = r.json();
    let err = v
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object: {}", r.dump()));
    assert!(err.is_object(), "`error` is not an object: {}", r.dump());
    let msg = err.get("message").and_then(|m| m.as_str());
    assert!(
        msg.is_some_and(|m| !m.is_empty()),
        "no error.message string: {}",
        r.dump()
    );
    let code = err
        .get("code")
        .unwrap_or_else(|| panic!("no error.code: {}", r.dump()));
    assert!(
        code.is_str() || code.is_null(),
        "error.code is neither string nor null: {}",
        r.dump()
    );
    err.get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_else(|| panic!("no error.type string: {}", r.dump()))
        .to_string()
}

/// The error object's `type` of an Anthropic-shaped error body, after checking the shape:
/// `{"type":"error","error":{"type": string, "message": string}}`.
pub fn anthropic_error_type(r: &Response) -> String {
    let v = r.json();
    assert_eq!(
        v.get("type").and_then(|t| t.as_str()),
        Some("error"),
        "top-level type is not \"error\": {}",
        r.dump()
    );
    let err = v
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object: {}", r.dump()));
    let msg = err.get("message").and_then(|m| m.as_str());
    assert!(
        msg.is_some_and(|m| !m.is_empty()),
        "no error.message string: {}",
        r.dump()
    );
    err.get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_else(|| panic!("no error.type string: {}", r.dump()))
        .to_string()
}

/// Which error shape a route answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"error":{"message","type","code"}}`
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`
    Anthropic,
}

/// Asserts `r` is an error with `status`, a JSON body of `shape` whose type is `ty`, a
/// JSON content type and a UUIDv7 trace id.
pub fn assert_error(r: &Response, status: u16, shape: Shape, ty: &str) {
    assert_eq!(r.status, status, "status; response:\n{}", r.dump());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error content-type is not JSON:\n{}",
        r.dump()
    );
    let got = match shape {
        Shape::OpenAi => openai_error_type(r),
        Shape::Anthropic => anthropic_error_type(r),
    };
    assert_eq!(got, ty, "error type; response:\n{}", r.dump());
    let id = r
        .header("x-routerly-trace-id")
        .unwrap_or_else(|| panic!("no x-routerly-trace-id on an error:\n{}", r.dump()));
    assert_uuid_v7(id);
}

// ---------------------------------------------------------------------------------------------
// SSE

/// One server-sent event: its `event:` name (if any), its joined `data:` lines, and its
/// comment lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// `event:` field.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`, `None` if there were none.
    pub data: Option<String>,
    /// Comment lines (after `:`), leading space removed.
    pub comments: Vec<String>,
}

/// Splits an SSE body into events (blank-line separated).
pub fn sse_events(body: &[u8]) -> Vec<Event> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        let mut ev = Event::default();
        for line in block.split('\n') {
            if let Some(c) = line.strip_prefix(':') {
                ev.comments
                    .push(c.strip_prefix(' ').unwrap_or(c).to_string());
            } else if let Some(d) = line.strip_prefix("data:") {
                let d = d.strip_prefix(' ').unwrap_or(d);
                ev.data = Some(match ev.data.take() {
                    Some(prev) => format!("{prev}\n{d}"),
                    None => d.to_string(),
                });
            } else if let Some(e) = line.strip_prefix("event:") {
                ev.event = Some(e.trim().to_string());
            }
        }
        out.push(ev);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Configs

/// The standard test config: OpenAI provider `oai` at `oai_base`, Anthropic provider `ant` at
/// `ant_base`, models `gpt-test` (upstream `gpt-upstream`) and `claude-test`, projects
/// `default` (token `sk-lr-test`, both models) and `other` (token `sk-lr-other`, `gpt-test`).
pub fn standard_config(oai_base: &str, ant_base: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
max_header_bytes = 4096
max_body_bytes = 65536
header_timeout_ms = 1500
idle_timeout_ms = 5000
drain_timeout_ms = 2000

[[providers]]
id = "oai"
kind = "openai"
base_url = "{oai_base}"
api_key_env = "TEST_OPENAI_KEY"
first_byte_timeout_ms = 1000

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{ant_base}"
api_key_env = "TEST_ANTHROPIC_KEY"
first_byte_timeout_ms = 1000

[[models]]
id = "gpt-test"
provider = "oai"
upstream_id = "gpt-upstream"

[[models]]
id = "claude-test"
provider = "ant"

[[projects]]
slug = "default"
tokens = ["sk-lr-test"]
models = ["gpt-test", "claude-test"]

[[projects]]
slug = "other"
tokens = ["sk-lr-other"]
models = ["gpt-test"]
"#
    )
}

/// A config with one OpenAI-kind provider `up` (`provider_lines` appended to its table: at least
/// `base_url`) whose key is [`OPENAI_KEY`], one model `m1` on it (sent upstream as
/// `up-model`), one project `p` with [`TOKEN`], one worker (so pooling is observable) and an
/// admin listener for `/metrics`. Serve it with [`key_env`].
pub fn one_provider_config(provider_lines: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1

[[providers]]
id = "up"
kind = "openai"
api_key_env = "TEST_OPENAI_KEY"
{provider_lines}

[[models]]
id = "m1"
provider = "up"
upstream_id = "up-model"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m1"]
"#
    )
}

/// A TOML basic string literal for a path.
pub fn toml_path(p: &Path) -> String {
    let s = p.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The provider keys as environment variables for the child.
pub fn key_env() -> [(&'static str, &'static str); 2] {
    [
        ("TEST_OPENAI_KEY", OPENAI_KEY),
        ("TEST_ANTHROPIC_KEY", ANTHROPIC_KEY),
    ]
}

/// A gateway with [`standard_config`] over `capture` (both providers on it).
pub fn gateway_over(capture: &Capture) -> Server {
    Server::serve(
        &standard_config(&capture.openai_base(), &capture.anthropic_base()),
        &key_env(),
    )
}
