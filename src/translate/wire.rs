//! Pieces of the wire formats shared by the stream and answer translators: stop reasons,
//! usage objects, error types and ids in each API, and small writers.
//!
//! References: OpenAI chat completions (`finish_reason`, `usage` with `prompt_tokens_details`
//! and `completion_tokens_details`), Anthropic messages (`stop_reason`, `usage` with
//! `cache_read_input_tokens` and `cache_creation_input_tokens`, error `type`s), OpenAI
//! Responses (`usage` with `input_tokens_details` and `output_tokens_details`, `error.code`).

use super::{Stop, Usage};
use crate::scan::members::{as_u64, get, members, str_content};
use crate::scan::push_json_escaped;

pub use crate::digits::push_u64;

/// The trace id's hex digits (its dashes removed), the body of `msg_`, `resp_`... ids.
pub fn id_hex(trace_id: &str) -> String {
    trace_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// OpenAI `finish_reason` (chat completions).
pub fn chat_finish(stop: Stop) -> &'static str {
    match stop {
        Stop::End | Stop::StopSequence | Stop::Pause => "stop",
        Stop::Length => "length",
        Stop::ToolUse => "tool_calls",
        Stop::Filtered => "content_filter",
    }
}

/// Anthropic `stop_reason`.
pub fn messages_stop(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "end_turn",
        Stop::StopSequence => "stop_sequence",
        Stop::Length => "max_tokens",
        Stop::ToolUse => "tool_use",
        Stop::Filtered => "refusal",
        Stop::Pause => "pause_turn",
    }
}

/// A chat `finish_reason` read back (`function_call` is the legacy spelling of tool calls).
pub fn parse_chat_finish(raw: &[u8]) -> Stop {
    match raw {
        b"length" => Stop::Length,
        b"tool_calls" | b"function_call" => Stop::ToolUse,
        b"content_filter" => Stop::Filtered,
        _ => Stop::End,
    }
}

/// An Anthropic `stop_reason` read back.
pub fn parse_messages_stop(raw: &[u8]) -> Stop {
    match raw {
        b"stop_sequence" => Stop::StopSequence,
        b"max_tokens" | b"model_context_window_exceeded" => Stop::Length,
        b"tool_use" => Stop::ToolUse,
        b"refusal" => Stop::Filtered,
        b"pause_turn" => Stop::Pause,
        _ => Stop::End,
    }
}

/// Appends a chat completions `usage` object. Anthropic's cache writes have no OpenAI field;
/// they are counted in `prompt_tokens` and, when any, named `cache_creation_input_tokens`
/// as LiteLLM does.
pub fn push_chat_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    push_u64(out, u.input);
    out.extend_from_slice(b",\"completion_tokens\":");
    push_u64(out, u.output);
    out.extend_from_slice(b",\"total_tokens\":");
    push_u64(out, u.input + u.output);
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    push_u64(out, u.cache_read);
    out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
    push_u64(out, u.reasoning);
    out.push(b'}');
    if u.cache_write > 0 {
        out.extend_from_slice(b",\"cache_creation_input_tokens\":");
        push_u64(out, u.cache_write);
    }
    out.push(b'}');
}

/// Appends an Anthropic `usage` object: `input_tokens` excludes cached prompt tokens.
pub fn push_messages_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, u.input.saturating_sub(u.cache_read + u.cache_write));
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_u64(out, u.cache_write);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_u64(out, u.cache_read);
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(out, u.output);
    out.push(b'}');
}

/// Appends a Responses `usage` object.
pub fn push_responses_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, u.input);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    push_u64(out, u.cache_read);
    out.extend_from_slice(b"},\"output_tokens\":");
    push_u64(out, u.output);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    push_u64(out, u.reasoning);
    out.extend_from_slice(b"},\"total_tokens\":");
    push_u64(out, u.input + u.output);
    out.push(b'}');
}

/// Reads an OpenAI chat `usage` object into `u` (DeepSeek's `prompt_cache_hit_tokens` when
/// the details are missing).
pub fn read_chat_usage(obj: &[u8], u: &mut Usage) {
    let Some(ms) = members(obj) else { return };
    let mut hit = None;
    let mut cached = None;
    for (k, v) in ms.map_while(Result::ok) {
        match k {
            b"prompt_tokens" => u.input = as_u64(v).unwrap_or(u.input),
            b"completion_tokens" => u.output = as_u64(v).unwrap_or(u.output),
            b"prompt_tokens_details" => cached = get(v, b"cached_tokens").and_then(as_u64),
            b"prompt_cache_hit_tokens" => hit = as_u64(v),
            b"completion_tokens_details" => {
                if let Some(r) = get(v, b"reasoning_tokens").and_then(as_u64) {
                    u.reasoning = r;
                }
            }
            b"cache_creation_input_tokens" => u.cache_write = as_u64(v).unwrap_or(0),
            _ => {}
        }
    }
    if let Some(c) = cached.or(hit) {
        u.cache_read = c;
    }
}

/// Anthropic usage as reported: each field is the running total, so a later report replaces
/// an earlier one (message_start, then message_delta) instead of adding to it.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessagesUsage {
    /// `input_tokens` (uncached).
    pub input: u64,
    /// `cache_read_input_tokens`.
    pub cache_read: u64,
    /// `cache_creation_input_tokens`.
    pub cache_write: u64,
    /// `output_tokens`.
    pub output: u64,
}

impl MessagesUsage {
    /// Replaces the fields present in the `usage` object `obj`.
    pub fn read(&mut self, obj: &[u8]) {
        let Some(ms) = members(obj) else { return };
        for (k, v) in ms.map_while(Result::ok) {
            let Some(n) = as_u64(v) else { continue };
            match k {
                b"input_tokens" => self.input = n,
                b"cache_read_input_tokens" => self.cache_read = n,
                b"cache_creation_input_tokens" => self.cache_write = n,
                b"output_tokens" => self.output = n,
                _ => {}
            }
        }
    }

    /// Normalised: `input` counts every prompt token.
    pub fn usage(&self) -> Usage {
        Usage {
            input: self.input + self.cache_read + self.cache_write,
            output: self.output,
            cache_read: self.cache_read,
            cache_write: self.cache_write,
            reasoning: 0,
        }
    }
}

/// An upstream error `type` as an Anthropic client expects it.
pub fn messages_error_type(raw: &[u8]) -> &'static str {
    match raw {
        b"invalid_request_error" => "invalid_request_error",
        b"authentication_error" => "authentication_error",
        b"permission_error" => "permission_error",
        b"not_found_error" => "not_found_error",
        b"request_too_large" => "request_too_large",
        b"rate_limit_error" | b"rate_limit_exceeded" | b"insufficient_quota" => "rate_limit_error",
        b"overloaded_error" => "overloaded_error",
        b"timeout_error" => "timeout_error",
        _ => "api_error",
    }
}

/// An upstream error `type` as an OpenAI client expects it.
pub fn openai_error_type(raw: &[u8]) -> &'static str {
    match raw {
        b"invalid_request_error" | b"request_too_large" => "invalid_request_error",
        b"authentication_error" => "authentication_error",
        b"permission_error" => "permission_error",
        b"not_found_error" => "not_found_error",
        b"rate_limit_error" | b"rate_limit_exceeded" => "rate_limit_error",
        b"insufficient_quota" => "insufficient_quota",
        b"timeout_error" => "timeout_error",
        b"server_error" | b"overloaded_error" => "server_error",
        _ => "api_error",
    }
}

/// A Responses `error.code` (`response.failed`) for an upstream error type.
pub fn responses_error_code(raw: &[u8]) -> &'static str {
    match raw {
        b"rate_limit_error" | b"rate_limit_exceeded" | b"insufficient_quota" => {
            "rate_limit_exceeded"
        }
        b"invalid_request_error" | b"request_too_large" => "invalid_prompt",
        _ => "server_error",
    }
}

/// The error `type` of an upstream status, in the client's protocol (the contract's error
/// table): `anthropic` picks Anthropic's names where the two differ.
pub fn status_error_type(status: u16, anthropic: bool) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 if anthropic => "request_too_large",
        429 => "rate_limit_error",
        529 if anthropic => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// An upstream error body's `(type, message)` as raw escaped string contents: OpenAI
/// `{"error":{"message","type"}}`, Anthropic `{"type":"error","error":{"type","message"}}`,
/// or a bare `{"error":"..."}` / `{"message":"..."}`.
pub fn read_error(body: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let Some(err) = get(body, b"error") else {
        return (None, get(body, b"message").and_then(str_content));
    };
    read_error_object(err)
}

/// The `(type, message)` of an `error` member's value (an object, or a bare string).
pub fn read_error_object(err: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    if let Some(msg) = str_content(err) {
        return (None, Some(msg));
    }
    let ty = get(err, b"type").and_then(str_content);
    let msg = get(err, b"message").and_then(str_content);
    (ty, msg)
}

/// Appends a tool name as the client knows it (escaped, no quotes) from the provider's raw
/// escaped `name`; with its namespace, if any, through `ns_out`.
pub fn client_tool_name<'a>(
    names: &'a super::names::ToolNames,
    raw: &'a [u8],
) -> (Option<&'a str>, ClientName<'a>) {
    match std::str::from_utf8(raw) {
        Ok(s) if !raw.contains(&b'\\') => {
            let (ns, name) = names.to_client(s);
            if std::ptr::eq(name.as_ptr(), s.as_ptr()) {
                (ns, ClientName::Raw(raw))
            } else {
                (ns, ClientName::Plain(name))
            }
        }
        _ => (None, ClientName::Raw(raw)),
    }
}

/// A tool name to write: raw escaped bytes from the upstream, or a client name to escape.
#[derive(Clone, Copy, Debug)]
pub enum ClientName<'a> {
    /// Already escaped JSON string content.
    Raw(&'a [u8]),
    /// Unescaped text.
    Plain(&'a str),
}

impl ClientName<'_> {
    /// Appends the name as escaped JSON string content.
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            ClientName::Raw(b) => out.extend_from_slice(b),
            ClientName::Plain(s) => push_json_escaped(out, s),
        }
    }
}

/// Appends the Responses echo members (each after a comma), with `tools: []`,
/// `tool_choice: "auto"` and `parallel_tool_calls: true` when the echo does not name them
/// (the SDKs' Response types require them).
pub fn push_echo(out: &mut Vec<u8>, echo: &str) {
    let given = echo.trim();
    if !given.is_empty() {
        out.push(b',');
        out.extend_from_slice(given.as_bytes());
    }
    for (key, default) in [
        ("\"tools\":", "[]"),
        ("\"tool_choice\":", "\"auto\""),
        ("\"parallel_tool_calls\":", "true"),
    ] {
        if !given.contains(key) {
            out.push(b',');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(default.as_bytes());
        }
    }
}
