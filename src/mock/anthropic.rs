//! Anthropic Messages wire shapes: the `message` object, the streaming event sequence, and the
//! count_tokens answer.
//!
//! Follows the Anthropic API reference ("Messages", "Streaming Messages"). A stream is
//! `message_start`, `content_block_start`, `ping`, one `content_block_delta` (`text_delta`) per
//! word, `content_block_stop`, `message_delta` (stop reason and cumulative `usage.output_tokens`),
//! `message_stop`; each framed as `event: NAME\ndata: {...}\n\n`. The SDK skips frames without
//! an `event:` name, so the name is not optional.

use super::json::{escaped, raw, string, uint};
use super::reply::Reply;

/// Events before the first word: `message_start`, `content_block_start`, `ping`.
pub(crate) const PRE: u32 = 3;
/// Events after the last word: `content_block_stop`, `message_delta`, `message_stop`.
pub(crate) const POST: u32 = 3;

fn stop_reason(r: &Reply) -> &'static str {
    if r.truncated {
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

fn usage(r: &Reply, out: &mut Vec<u8>, output_tokens: u64) {
    raw(out, ",\"usage\":{\"input_tokens\":");
    uint(out, r.input_tokens);
    raw(
        out,
        ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":",
    );
    uint(out, output_tokens);
    raw(out, ",\"service_tier\":\"standard\"}");
}

/// Writes the non-streaming `message` object.
pub(crate) fn write_body(r: &Reply, out: &mut Vec<u8>) {
    message_head(r, out);
    raw(out, ",\"content\":[{\"type\":\"text\",\"text\":");
    string(out, &r.text);
    raw(out, "}],\"stop_reason\":\"");
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

/// Writes stream event `step` (0-based, `PRE + words + POST` in all).
pub(crate) fn write_event(r: &Reply, step: u32, out: &mut Vec<u8>) {
    let words = r.ends.len() as u32;
    match step {
        0 => {
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
        1 => raw(
            out,
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\
             \"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        ),
        2 => raw(out, "event: ping\ndata: {\"type\":\"ping\"}\n\n"),
        s if s < PRE + words => {
            raw(
                out,
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\
                 \"delta\":{\"type\":\"text_delta\",\"text\":\"",
            );
            escaped(out, r.delta((s - PRE) as usize));
            raw(out, "\"}}\n\n");
        }
        s => match s - PRE - words {
            0 => raw(
                out,
                "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            ),
            1 => {
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
            _ => raw(
                out,
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            ),
        },
    }
}
