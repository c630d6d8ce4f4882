//! OpenAI Responses API wire shapes: the `response` object and its streaming events.
//!
//! Follows the OpenAI API reference ("The response object", "Streaming events"). A stream is
//! `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, one `response.output_text.delta` per word,
//! `response.output_text.done`, `response.content_part.done`, `response.output_item.done`, then
//! `response.completed` carrying the whole response with `output` and `usage`. Every event has a
//! `sequence_number` (0, 1, 2, … in stream order) and is framed `event: TYPE\ndata: {...}\n\n`.
//! There is no `[DONE]` sentinel on this API. `usage.input_tokens_details` carries
//! `cache_write_tokens` as well as `cached_tokens`: current `openai` SDK models require both.
//!
//! When the request's `max_output_tokens` cut the reply short, the response ends as the API does:
//! `status: "incomplete"`, `incomplete_details.reason: "max_output_tokens"`, the message item
//! `incomplete`, and the terminal event is `response.incomplete` (so the SDK's
//! `get_final_response()` raises, exactly as against OpenAI).

use super::json::{escaped, opt_string, raw, string, uint};
use super::reply::Reply;

/// Events before the first word: created, in_progress, output_item.added, content_part.added.
pub(crate) const PRE: u32 = 4;
/// Events after the last word: output_text.done, content_part.done, output_item.done, completed.
pub(crate) const POST: u32 = 4;

fn final_status(r: &Reply) -> &'static str {
    if r.truncated {
        "incomplete"
    } else {
        "completed"
    }
}

/// The `output_text` content part with `text`.
fn text_part(out: &mut Vec<u8>, text: &str) {
    raw(
        out,
        "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":",
    );
    string(out, text);
    raw(out, "}");
}

/// The output message item: empty and `in_progress` while streaming, full when `done`.
fn message_item(r: &Reply, out: &mut Vec<u8>, done: bool) {
    raw(out, "{\"id\":");
    string(out, &r.item_id);
    raw(out, ",\"type\":\"message\",\"status\":\"");
    raw(out, if done { final_status(r) } else { "in_progress" });
    raw(out, "\",\"content\":[");
    if done {
        text_part(out, &r.text);
    }
    raw(out, "],\"role\":\"assistant\"}");
}

/// The `response` object: `in_progress` with empty output, or final with output and usage.
pub(crate) fn write_response(r: &Reply, out: &mut Vec<u8>, done: bool) {
    raw(out, "{\"id\":");
    string(out, &r.id);
    raw(out, ",\"object\":\"response\",\"created_at\":");
    uint(out, r.created);
    raw(out, ",\"status\":\"");
    raw(out, if done { final_status(r) } else { "in_progress" });
    raw(out, "\",\"background\":false,\"completed_at\":");
    if done && !r.truncated {
        uint(out, r.created);
    } else {
        raw(out, "null");
    }
    raw(out, ",\"error\":null,\"incomplete_details\":");
    if done && r.truncated {
        raw(out, "{\"reason\":\"max_output_tokens\"}");
    } else {
        raw(out, "null");
    }
    raw(out, ",\"instructions\":");
    opt_string(out, r.instructions.as_deref());
    raw(out, ",\"max_output_tokens\":");
    match r.max_output_tokens {
        Some(n) => uint(out, n),
        None => raw(out, "null"),
    }
    raw(out, ",\"max_tool_calls\":null,\"model\":");
    string(out, &r.model);
    raw(out, ",\"output\":[");
    if done {
        message_item(r, out, true);
    }
    raw(
        out,
        "],\"parallel_tool_calls\":true,\"previous_response_id\":",
    );
    opt_string(out, r.previous_response_id.as_deref());
    raw(
        out,
        ",\"prompt_cache_key\":null,\"reasoning\":{\"effort\":null,\"summary\":null},\
         \"safety_identifier\":null,\"service_tier\":\"default\",\"store\":",
    );
    raw(out, if r.store { "true" } else { "false" });
    raw(
        out,
        ",\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"},\
         \"tool_choice\":\"auto\",\"tools\":[],\"top_logprobs\":0,\"top_p\":1.0,\
         \"truncation\":\"disabled\",\"usage\":",
    );
    if done {
        raw(out, "{\"input_tokens\":");
        uint(out, r.input_tokens);
        raw(
            out,
            ",\"input_tokens_details\":{\"cached_tokens\":0,\"cache_write_tokens\":0},\"output_tokens\":",
        );
        uint(out, r.output_tokens());
        raw(
            out,
            ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":",
        );
        uint(out, r.input_tokens + r.output_tokens());
        raw(out, "}");
    } else {
        raw(out, "null");
    }
    raw(out, ",\"user\":null,\"metadata\":{}}");
}

/// Writes the non-streaming `response` object.
pub(crate) fn write_body(r: &Reply, out: &mut Vec<u8>) {
    write_response(r, out, true);
}

/// `event: NAME\ndata: {"type":"NAME"` — the start of every event.
fn head(out: &mut Vec<u8>, name: &str) {
    raw(out, "event: ");
    raw(out, name);
    raw(out, "\ndata: {\"type\":\"");
    raw(out, name);
    raw(out, "\"");
}

/// `,"item_id":…,"output_index":0,"content_index":0`
fn item_ref(r: &Reply, out: &mut Vec<u8>) {
    raw(out, ",\"item_id\":");
    string(out, &r.item_id);
    raw(out, ",\"output_index\":0,\"content_index\":0");
}

/// Writes stream event `step` (0-based, `PRE + words + POST` in all); `step` is also its
/// `sequence_number`.
pub(crate) fn write_event(r: &Reply, step: u32, out: &mut Vec<u8>) {
    let words = r.ends.len() as u32;
    match step {
        0 | 1 => {
            head(
                out,
                if step == 0 {
                    "response.created"
                } else {
                    "response.in_progress"
                },
            );
            raw(out, ",\"response\":");
            write_response(r, out, false);
        }
        2 => {
            head(out, "response.output_item.added");
            raw(out, ",\"output_index\":0,\"item\":");
            message_item(r, out, false);
        }
        3 => {
            head(out, "response.content_part.added");
            item_ref(r, out);
            raw(out, ",\"part\":");
            text_part(out, "");
        }
        s if s < PRE + words => {
            head(out, "response.output_text.delta");
            item_ref(r, out);
            raw(out, ",\"delta\":\"");
            escaped(out, r.delta((s - PRE) as usize));
            raw(out, "\",\"logprobs\":[]");
        }
        s => match s - PRE - words {
            0 => {
                head(out, "response.output_text.done");
                item_ref(r, out);
                raw(out, ",\"text\":");
                string(out, &r.text);
                raw(out, ",\"logprobs\":[]");
            }
            1 => {
                head(out, "response.content_part.done");
                item_ref(r, out);
                raw(out, ",\"part\":");
                text_part(out, &r.text);
            }
            2 => {
                head(out, "response.output_item.done");
                raw(out, ",\"output_index\":0,\"item\":");
                message_item(r, out, true);
            }
            _ => {
                head(
                    out,
                    if r.truncated {
                        "response.incomplete"
                    } else {
                        "response.completed"
                    },
                );
                raw(out, ",\"response\":");
                write_response(r, out, true);
            }
        },
    }
    raw(out, ",\"sequence_number\":");
    uint(out, u64::from(step));
    raw(out, "}\n\n");
}
