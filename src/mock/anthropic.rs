//! Anthropic Messages wire shapes: the `message` object, the streaming event sequence, and the
//! count_tokens answer.
//!
//! Follows the Anthropic API reference ("Messages", "Streaming Messages", "Extended thinking",
//! "Tool use"). A stream is `message_start`, then per content block `content_block_start`,
//! its `content_block_delta`s and `content_block_stop` (a `ping` follows the first block's
//! start), then `message_delta` (stop reason and cumulative `usage.output_tokens`) and
//! `message_stop`; each framed as `event: NAME\ndata: {...}\n\n`. The SDK skips frames without
//! an `event:` name, so the name is not optional.
//!
//! Blocks: a `thinking` block first when the request enables thinking (`thinking_delta` per
//! word, then one `signature_delta`), then either one `text` block (`text_delta` per word) or
//! one `tool_use` block per call (`input: {}` at the start, then `input_json_delta`
//! `partial_json` fragments; stop reason `tool_use`). A failing stream (`error-` hook) ends with
//! `event: error` carrying an `overloaded_error`.

use super::error::OVERLOADED;
use super::json::{escaped, raw, string, uint};
use super::reply::{Reply, THINKING_SIGNATURE};
use super::stream::{Ev, Part};

fn stop_reason(r: &Reply) -> &'static str {
    if r.is_tool_use() {
        "tool_use"
    } else if r.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// The `message` object up to (not including) `content`; shared by the body and
/// `message_start`.
fn message_head(r: &Reply, out: &mut Vec<u8>) {
    raw(out, "{\"id\":");
    string(out, &r.id);
    raw(
        out,
        ",\"type\":\"message\",\"role\":\"assistant\",\"model\":",
    );
    string(out, &r.model);
}

/// `usage` with prompt caching as the API reports it: `input_tokens` counts only what was not
/// read from the cache.
fn usage(r: &Reply, out: &mut Vec<u8>, output_tokens: u64) {
    raw(out, ",\"usage\":{\"input_tokens\":");
    uint(out, r.input_tokens - r.cached_tokens);
    raw(
        out,
        ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":",
    );
    uint(out, r.cached_tokens);
    raw(out, ",\"output_tokens\":");
    uint(out, output_tokens);
    raw(out, ",\"service_tier\":\"standard\"}");
}

/// Writes the non-streaming `message` object.
pub(crate) fn write_body(r: &Reply, out: &mut Vec<u8>) {
    message_head(r, out);
    raw(out, ",\"content\":[");
    if let Some(t) = &r.thinking {
        raw(out, "{\"type\":\"thinking\",\"thinking\":");
        string(out, &t.words.text);
        raw(out, ",\"signature\":");
        string(out, THINKING_SIGNATURE);
        raw(out, "},");
    }
    if r.is_tool_use() {
        for (k, c) in r.calls.iter().enumerate() {
            if k > 0 {
                raw(out, ",");
            }
            raw(out, "{\"type\":\"tool_use\",\"id\":");
            string(out, &c.id);
            raw(out, ",\"name\":");
            string(out, &c.name);
            raw(out, ",\"input\":");
            // The arguments are JSON the mock wrote itself.
            raw(out, &c.arguments.text);
            raw(out, "}");
        }
    } else {
        raw(out, "{\"type\":\"text\",\"text\":");
        string(out, &r.text.text);
        raw(out, "}");
    }
    raw(out, "],\"stop_reason\":\"");
    raw(out, stop_reason(r));
    raw(out, "\",\"stop_sequence\":null");
    usage(r, out, r.output_tokens());
    raw(out, "}");
}

/// Writes the count_tokens answer.
pub(crate) fn write_count(input_tokens: u64, out: &mut Vec<u8>) {
    raw(out, "{\"input_tokens\":");
    uint(out, input_tokens);
    raw(out, "}");
}

/// The stream's events (see the module doc).
pub(crate) fn plan(r: &Reply, plan: &mut Vec<Ev>) {
    plan.push(Ev::Open(0));
    let thinking = r.thinking.is_some().then_some(Part::Thinking);
    for (n, part) in thinking.into_iter().chain(r.answer_parts()).enumerate() {
        plan.push(Ev::Start(part, 0));
        if n == 0 {
            plan.push(Ev::Open(1));
        }
        plan.extend((0..r.words(part).len()).map(|i| Ev::Piece(part, i)));
        if part == Part::Thinking {
            plan.push(Ev::End(part, 0));
        }
        plan.push(Ev::End(part, 1));
    }
    plan.push(Ev::Close(0));
    plan.push(Ev::Close(1));
}

/// `event: content_block_…\ndata: {"type":"content_block_…","index":N`
fn block_event(r: &Reply, name: &str, part: Part, out: &mut Vec<u8>) {
    raw(out, "event: ");
    raw(out, name);
    raw(out, "\ndata: {\"type\":\"");
    raw(out, name);
    raw(out, "\",\"index\":");
    uint(out, u64::from(r.index(part)));
}

/// Writes stream event `ev` (see [`plan`]).
pub(crate) fn write_event(r: &Reply, ev: Ev, out: &mut Vec<u8>) {
    match ev {
        Ev::Open(0) => {
            raw(
                out,
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":",
            );
            message_head(r, out);
            raw(
                out,
                ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null",
            );
            // The API reports a provisional output count of 1 here; message_delta overwrites it.
            usage(r, out, 1);
            raw(out, "}}\n\n");
        }
        Ev::Open(_) => raw(out, "event: ping\ndata: {\"type\":\"ping\"}\n\n"),
        Ev::Start(part, _) => {
            block_event(r, "content_block_start", part, out);
            match part {
                Part::Thinking => raw(
                    out,
                    ",\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
                ),
                Part::Text => raw(out, ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
                Part::Call(k) => {
                    raw(out, ",\"content_block\":{\"type\":\"tool_use\",\"id\":");
                    if let Some(c) = r.call(k) {
                        string(out, &c.id);
                        raw(out, ",\"name\":");
                        string(out, &c.name);
                    } else {
                        raw(out, "\"\",\"name\":\"\"");
                    }
                    raw(out, ",\"input\":{}}}\n\n");
                }
            }
        }
        Ev::Piece(part, i) => {
            block_event(r, "content_block_delta", part, out);
            raw(
                out,
                match part {
                    Part::Thinking => ",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"",
                    Part::Text => ",\"delta\":{\"type\":\"text_delta\",\"text\":\"",
                    Part::Call(_) => {
                        ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\""
                    }
                },
            );
            escaped(out, r.words(part).piece(i));
            raw(out, "\"}}\n\n");
        }
        Ev::End(part, 0) => {
            block_event(r, "content_block_delta", part, out);
            raw(
                out,
                ",\"delta\":{\"type\":\"signature_delta\",\"signature\":",
            );
            string(out, THINKING_SIGNATURE);
            raw(out, "}}\n\n");
        }
        Ev::End(part, _) => {
            block_event(r, "content_block_stop", part, out);
            raw(out, "}\n\n");
        }
        Ev::Close(0) => {
            raw(
                out,
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":\
                 {\"stop_reason\":\"",
            );
            raw(out, stop_reason(r));
            raw(
                out,
                "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":",
            );
            uint(out, r.output_tokens());
            raw(out, "}}\n\n");
        }
        Ev::Close(_) => raw(
            out,
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ),
        Ev::Error => {
            raw(
                out,
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":",
            );
            string(out, OVERLOADED);
            raw(out, "}}\n\n");
        }
    }
}
