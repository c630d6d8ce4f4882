//! OpenAI Chat Completions wire shapes: the `chat.completion` object and the
//! `chat.completion.chunk` stream.
//!
//! Follows the OpenAI API reference ("The chat completion object", "The chat completion chunk
//! object"). A stream is: one chunk with `delta.role`, one chunk per word, one chunk with
//! `finish_reason`, then (with `stream_options.include_usage`) a chunk with empty `choices` and
//! `usage`, then `data: [DONE]`. With `include_usage` every other chunk carries `"usage":null`,
//! as the API does. Chunks are `data:` lines only, no `event:` names.

use super::json::{escaped, raw, string, uint};
use super::reply::Reply;

/// Events before the first word: the role chunk.
pub(crate) const PRE: u32 = 1;

/// Events after the last word: finish chunk, optional usage chunk, `[DONE]`.
pub(crate) fn post(r: &Reply) -> u32 {
    2 + u32::from(r.include_usage)
}

fn finish_reason(r: &Reply) -> &'static str {
    if r.truncated {
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
    raw(
        out,
        ",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\
         \"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\
         \"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
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
    string(out, &r.text);
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

/// Writes stream event `step` (0-based, `PRE + words + post` in all).
pub(crate) fn write_event(r: &Reply, step: u32, out: &mut Vec<u8>) {
    let words = r.ends.len() as u32;
    if step < PRE {
        chunk_head(r, out);
        raw(
            out,
            "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\
             \"logprobs\":null,\"finish_reason\":null}",
        );
        chunk_tail(r, out);
    } else if step < PRE + words {
        chunk_head(r, out);
        raw(out, "{\"index\":0,\"delta\":{\"content\":\"");
        escaped(out, r.delta((step - PRE) as usize));
        raw(out, "\"},\"logprobs\":null,\"finish_reason\":null}");
        chunk_tail(r, out);
    } else {
        match (step - PRE - words, r.include_usage) {
            (0, _) => {
                chunk_head(r, out);
                raw(
                    out,
                    "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"",
                );
                raw(out, finish_reason(r));
                raw(out, "\"}");
                chunk_tail(r, out);
            }
            (1, true) => {
                chunk_head(r, out);
                raw(out, "],\"usage\":");
                usage(r, out);
                raw(out, "}\n\n");
            }
            _ => raw(out, "data: [DONE]\n\n"),
        }
    }
}
