//! OpenAI Chat Completions wire shapes: the `chat.completion` object and the
//! `chat.completion.chunk` stream.
//!
//! Follows the OpenAI API reference ("The chat completion object", "The chat completion chunk
//! object"). A text stream is: one chunk with `delta.role`, one chunk per word, one chunk with
//! `finish_reason`, then (with `stream_options.include_usage`) a chunk with empty `choices` and
//! `usage`, then `data: [DONE]`. With `include_usage` every other chunk carries `"usage":null`,
//! as the API does. Chunks are `data:` lines only, no `event:` names.
//!
//! A tool-call stream has `content: null` in the role chunk, then for each call a chunk with its
//! `index`, `id`, `type: "function"`, `function.name` and empty `arguments`, then the argument
//! fragments (`{"index":k,"function":{"arguments":"…"}}`); with two calls both heads come first
//! and the fragments interleave (0, 1, 0, 1, …), as OpenAI's parallel calls can. The finish
//! reason is `tool_calls`. Reasoning is never sent (the API returns none); it shows only in
//! `usage.completion_tokens_details.reasoning_tokens`. A failing stream (`error-` hook) ends
//! with `data: {"error":{…,"type":"server_error",…}}` and no `[DONE]`.

use super::error::SERVER_ERROR;
use super::json::{escaped, raw, string, uint};
use super::reply::Reply;
use super::stream::{Ev, Part};

fn finish_reason(r: &Reply) -> &'static str {
    if r.is_tool_use() {
        "tool_calls"
    } else if r.truncated {
        "length"
    } else {
        "stop"
    }
}

fn usage(r: &Reply, out: &mut Vec<u8>) {
    raw(out, "{\"prompt_tokens\":");
    uint(out, r.input_tokens);
    raw(out, ",\"completion_tokens\":");
    uint(out, r.output_tokens());
    raw(out, ",\"total_tokens\":");
    uint(out, r.input_tokens + r.output_tokens());
    raw(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    uint(out, r.cached_tokens);
    raw(
        out,
        ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":",
    );
    uint(out, r.reasoning_tokens());
    raw(
        out,
        ",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
    );
}

/// Writes the non-streaming `chat.completion` object.
pub(crate) fn write_body(r: &Reply, out: &mut Vec<u8>) {
    raw(out, "{\"id\":");
    string(out, &r.id);
    raw(out, ",\"object\":\"chat.completion\",\"created\":");
    uint(out, r.created);
    raw(out, ",\"model\":");
    string(out, &r.model);
    raw(
        out,
        ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    if r.is_tool_use() {
        raw(out, "null,\"tool_calls\":[");
        for (k, c) in r.calls.iter().enumerate() {
            if k > 0 {
                raw(out, ",");
            }
            raw(out, "{\"id\":");
            string(out, &c.id);
            raw(out, ",\"type\":\"function\",\"function\":{\"name\":");
            string(out, &c.name);
            raw(out, ",\"arguments\":");
            string(out, &c.arguments.text);
            raw(out, "}}");
        }
        raw(out, "]");
    } else {
        string(out, &r.text.text);
    }
    raw(
        out,
        ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"",
    );
    raw(out, finish_reason(r));
    raw(out, "\"}],\"usage\":");
    usage(r, out);
    raw(
        out,
        ",\"service_tier\":\"default\",\"system_fingerprint\":null}",
    );
}

/// The stream's events: role chunk, the text's words or the calls' heads and fragments,
/// finish chunk, usage chunk (with `include_usage`), `[DONE]`.
pub(crate) fn plan(r: &Reply, plan: &mut Vec<Ev>) {
    plan.push(Ev::Open(0));
    if r.is_tool_use() {
        let calls: Vec<Part> = r.answer_parts().collect();
        plan.extend(calls.iter().map(|&p| Ev::Start(p, 0)));
        let longest = calls.iter().map(|&p| r.words(p).len()).max().unwrap_or(0);
        for i in 0..longest {
            for &p in &calls {
                if i < r.words(p).len() {
                    plan.push(Ev::Piece(p, i));
                }
            }
        }
    } else {
        plan.extend((0..r.text.len()).map(|i| Ev::Piece(Part::Text, i)));
    }
    plan.push(Ev::Close(0));
    if r.include_usage {
        plan.push(Ev::Close(1));
    }
    plan.push(Ev::Close(2));
}

fn chunk_head(r: &Reply, out: &mut Vec<u8>) {
    raw(out, "data: {\"id\":");
    string(out, &r.id);
    raw(out, ",\"object\":\"chat.completion.chunk\",\"created\":");
    uint(out, r.created);
    raw(out, ",\"model\":");
    string(out, &r.model);
    raw(
        out,
        ",\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[",
    );
}

fn chunk_tail(r: &Reply, out: &mut Vec<u8>) {
    raw(out, "]");
    if r.include_usage {
        raw(out, ",\"usage\":null");
    }
    raw(out, "}\n\n");
}

/// `{"index":0,"delta":{"tool_calls":[{"index":k`
fn call_delta_head(k: u8, out: &mut Vec<u8>) {
    raw(out, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":");
    uint(out, u64::from(k));
}

const NOT_FINISHED: &str = ",\"logprobs\":null,\"finish_reason\":null}";

/// Writes stream event `ev` (see [`plan`]).
pub(crate) fn write_event(r: &Reply, ev: Ev, out: &mut Vec<u8>) {
    match ev {
        Ev::Open(_) => {
            chunk_head(r, out);
            raw(
                out,
                if r.is_tool_use() {
                    "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null}"
                } else {
                    "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"
                },
            );
            raw(out, NOT_FINISHED);
            chunk_tail(r, out);
        }
        Ev::Start(Part::Call(k), _) => {
            chunk_head(r, out);
            call_delta_head(k, out);
            if let Some(c) = r.call(k) {
                raw(out, ",\"id\":");
                string(out, &c.id);
                raw(out, ",\"type\":\"function\",\"function\":{\"name\":");
                string(out, &c.name);
            }
            raw(out, ",\"arguments\":\"\"}}]}");
            raw(out, NOT_FINISHED);
            chunk_tail(r, out);
        }
        Ev::Piece(Part::Call(k), i) => {
            chunk_head(r, out);
            call_delta_head(k, out);
            raw(out, ",\"function\":{\"arguments\":\"");
            escaped(out, r.words(Part::Call(k)).piece(i));
            raw(out, "\"}}]}");
            raw(out, NOT_FINISHED);
            chunk_tail(r, out);
        }
        Ev::Piece(part, i) => {
            chunk_head(r, out);
            raw(out, "{\"index\":0,\"delta\":{\"content\":\"");
            escaped(out, r.words(part).piece(i));
            raw(out, "\"}");
            raw(out, NOT_FINISHED);
            chunk_tail(r, out);
        }
        Ev::Close(0) => {
            chunk_head(r, out);
            raw(
                out,
                "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"",
            );
            raw(out, finish_reason(r));
            raw(out, "\"}");
            chunk_tail(r, out);
        }
        Ev::Close(1) => {
            chunk_head(r, out);
            raw(out, "],\"usage\":");
            usage(r, out);
            raw(out, "}\n\n");
        }
        Ev::Error => {
            raw(out, "data: {\"error\":{\"message\":");
            string(out, SERVER_ERROR);
            raw(
                out,
                ",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
            );
        }
        // `[DONE]`; chat has no other part events.
        Ev::Close(_) | Ev::Start(..) | Ev::End(..) => raw(out, "data: [DONE]\n\n"),
    }
}
