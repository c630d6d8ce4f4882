//! OpenAI Responses API wire shapes: the `response` object and its streaming events.
//!
//! Follows the OpenAI API reference ("The response object", "Streaming events"). A text stream
//! is `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, one `response.output_text.delta` per word,
//! `response.output_text.done`, `response.content_part.done`, `response.output_item.done`, then
//! `response.completed` carrying the whole response with `output` and `usage`. Every event has a
//! `sequence_number` (0, 1, 2, … in stream order) and is framed `event: TYPE\ndata: {...}\n\n`.
//! There is no `[DONE]` sentinel on this API. `usage.input_tokens_details` carries
//! `cache_write_tokens` as well as `cached_tokens`: current `openai` SDK models require both.
//!
//! With `reasoning.effort` a `reasoning` item (`rs_…`) comes first: `output_item.added`, then,
//! with `reasoning.summary`, `reasoning_summary_part.added`, one
//! `reasoning_summary_text.delta` per word, `reasoning_summary_text.done`,
//! `reasoning_summary_part.done`; then `output_item.done` (with `encrypted_content` when
//! `include` asks for `reasoning.encrypted_content`). A tool call is a `function_call` item
//! (`fc_…`, `call_id` `call_…`): `output_item.added` with empty `arguments`,
//! `function_call_arguments.delta` per fragment, `function_call_arguments.done`,
//! `output_item.done`. `output_index` counts the items in order.
//!
//! When the request's `max_output_tokens` cut the reply short, the response ends as the API does:
//! `status: "incomplete"`, `incomplete_details.reason: "max_output_tokens"`, the message item
//! `incomplete`, and the terminal event is `response.incomplete` (so the SDK's
//! `get_final_response()` raises, exactly as against OpenAI). A failing stream (`error-` hook)
//! ends with `response.failed` (status `failed`, `error.code` `server_error`).

use super::error::SERVER_ERROR;
use super::json::{escaped, opt_string, raw, string, uint};
use super::reply::{Reply, ENCRYPTED_REASONING};
use super::stream::{Ev, Part};

/// How far a `response` object has got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    InProgress,
    Done,
    Failed,
}

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

/// The `summary_text` part with `text`.
fn summary_part(out: &mut Vec<u8>, text: &str) {
    raw(out, "{\"type\":\"summary_text\",\"text\":");
    string(out, text);
    raw(out, "}");
}

/// The output item of `part`: empty and `in_progress` while streaming, full when `done`.
fn item(r: &Reply, part: Part, out: &mut Vec<u8>, done: bool) {
    match part {
        Part::Thinking => {
            let Some(t) = &r.thinking else { return };
            raw(out, "{\"id\":");
            string(out, &t.item_id);
            raw(out, ",\"type\":\"reasoning\",\"summary\":[");
            if done && t.summary {
                summary_part(out, &t.words.text);
            }
            raw(out, "]");
            if done && t.encrypted {
                raw(out, ",\"encrypted_content\":");
                string(out, ENCRYPTED_REASONING);
            }
            raw(out, "}");
        }
        Part::Text => {
            raw(out, "{\"id\":");
            string(out, &r.item_id);
            raw(out, ",\"type\":\"message\",\"status\":\"");
            raw(out, if done { final_status(r) } else { "in_progress" });
            raw(out, "\",\"content\":[");
            if done {
                text_part(out, &r.text.text);
            }
            raw(out, "],\"role\":\"assistant\"}");
        }
        Part::Call(k) => {
            let Some(c) = r.call(k) else { return };
            raw(out, "{\"id\":");
            string(out, &c.item_id);
            raw(out, ",\"type\":\"function_call\",\"status\":\"");
            raw(out, if done { "completed" } else { "in_progress" });
            raw(out, "\",\"arguments\":");
            string(out, if done { &c.arguments.text } else { "" });
            raw(out, ",\"call_id\":");
            string(out, &c.id);
            raw(out, ",\"name\":");
            string(out, &c.name);
            raw(out, "}");
        }
    }
}

/// Every part of the reply, in output order.
fn parts(r: &Reply) -> impl Iterator<Item = Part> + '_ {
    let thinking = r.thinking.is_some().then_some(Part::Thinking);
    thinking.into_iter().chain(r.answer_parts())
}

/// The `response` object in `phase`.
fn write_response(r: &Reply, out: &mut Vec<u8>, phase: Phase) {
    let done = phase == Phase::Done;
    raw(out, "{\"id\":");
    string(out, &r.id);
    raw(out, ",\"object\":\"response\",\"created_at\":");
    uint(out, r.created);
    raw(out, ",\"status\":\"");
    raw(
        out,
        match phase {
            Phase::InProgress => "in_progress",
            Phase::Done => final_status(r),
            Phase::Failed => "failed",
        },
    );
    raw(out, "\",\"background\":false,\"completed_at\":");
    if done && !r.truncated {
        uint(out, r.created);
    } else {
        raw(out, "null");
    }
    raw(out, ",\"error\":");
    if phase == Phase::Failed {
        raw(out, "{\"code\":\"server_error\",\"message\":");
        string(out, SERVER_ERROR);
        raw(out, "}");
    } else {
        raw(out, "null");
    }
    raw(out, ",\"incomplete_details\":");
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
        for (n, part) in parts(r).enumerate() {
            if n > 0 {
                raw(out, ",");
            }
            item(r, part, out, true);
        }
    }
    raw(
        out,
        "],\"parallel_tool_calls\":true,\"previous_response_id\":",
    );
    opt_string(out, r.previous_response_id.as_deref());
    raw(out, ",\"prompt_cache_key\":null,\"reasoning\":{\"effort\":");
    opt_string(out, r.effort.as_deref());
    raw(out, ",\"summary\":");
    opt_string(out, r.summary.as_deref());
    raw(
        out,
        "},\"safety_identifier\":null,\"service_tier\":\"default\",\"store\":",
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
        raw(out, ",\"input_tokens_details\":{\"cached_tokens\":");
        uint(out, r.cached_tokens);
        raw(out, ",\"cache_write_tokens\":0},\"output_tokens\":");
        uint(out, r.output_tokens());
        raw(out, ",\"output_tokens_details\":{\"reasoning_tokens\":");
        uint(out, r.reasoning_tokens());
        raw(out, "},\"total_tokens\":");
        uint(out, r.input_tokens + r.output_tokens());
        raw(out, "}");
    } else {
        raw(out, "null");
    }
    raw(out, ",\"user\":null,\"metadata\":{}}");
}

/// Writes the non-streaming `response` object.
pub(crate) fn write_body(r: &Reply, out: &mut Vec<u8>) {
    write_response(r, out, Phase::Done);
}

/// The stream's events (see the module doc).
pub(crate) fn plan(r: &Reply, plan: &mut Vec<Ev>) {
    plan.push(Ev::Open(0));
    plan.push(Ev::Open(1));
    for part in parts(r) {
        plan.push(Ev::Start(part, 0));
        let pieces = match part {
            Part::Thinking if !r.thinking.as_ref().is_some_and(|t| t.summary) => 0,
            _ => r.words(part).len(),
        };
        if part != Part::Thinking || pieces > 0 {
            if !matches!(part, Part::Call(_)) {
                plan.push(Ev::Start(part, 1));
            }
            plan.extend((0..pieces).map(|i| Ev::Piece(part, i)));
            plan.push(Ev::End(part, 0));
            if !matches!(part, Part::Call(_)) {
                plan.push(Ev::End(part, 1));
            }
        }
        plan.push(Ev::End(part, 2));
    }
    plan.push(Ev::Close(0));
}

/// `event: NAME\ndata: {"type":"NAME"` — the start of every event.
fn head(out: &mut Vec<u8>, name: &str) {
    raw(out, "event: ");
    raw(out, name);
    raw(out, "\ndata: {\"type\":\"");
    raw(out, name);
    raw(out, "\"");
}

/// `,"item_id":…,"output_index":N` and, for a message, `,"content_index":0`, for reasoning,
/// `,"summary_index":0`.
fn item_ref(r: &Reply, part: Part, out: &mut Vec<u8>) {
    raw(out, ",\"item_id\":");
    match part {
        Part::Thinking => string(out, r.thinking.as_ref().map_or("", |t| &t.item_id)),
        Part::Text => string(out, &r.item_id),
        Part::Call(k) => string(out, r.call(k).map_or("", |c| &c.item_id)),
    }
    raw(out, ",\"output_index\":");
    uint(out, u64::from(r.index(part)));
    match part {
        Part::Thinking => raw(out, ",\"summary_index\":0"),
        Part::Text => raw(out, ",\"content_index\":0"),
        Part::Call(_) => {}
    }
}

/// Writes stream event `ev` (see [`plan`]) with its `sequence_number`.
pub(crate) fn write_event(r: &Reply, ev: Ev, seq: u64, out: &mut Vec<u8>) {
    match ev {
        Ev::Open(n) => {
            head(
                out,
                if n == 0 {
                    "response.created"
                } else {
                    "response.in_progress"
                },
            );
            raw(out, ",\"response\":");
            write_response(r, out, Phase::InProgress);
        }
        Ev::Start(part, 0) | Ev::End(part, 2) => {
            let done = matches!(ev, Ev::End(..));
            head(
                out,
                if done {
                    "response.output_item.done"
                } else {
                    "response.output_item.added"
                },
            );
            raw(out, ",\"output_index\":");
            uint(out, u64::from(r.index(part)));
            raw(out, ",\"item\":");
            item(r, part, out, done);
        }
        // The content part of a message, the summary part of reasoning.
        Ev::Start(part, _) | Ev::End(part, 1) => {
            let start = matches!(ev, Ev::Start(..));
            let text = if start {
                ""
            } else {
                r.words(part).text.as_str()
            };
            let name = match (part, start) {
                (Part::Thinking, true) => "response.reasoning_summary_part.added",
                (Part::Thinking, false) => "response.reasoning_summary_part.done",
                (_, true) => "response.content_part.added",
                (_, false) => "response.content_part.done",
            };
            head(out, name);
            item_ref(r, part, out);
            raw(out, ",\"part\":");
            if part == Part::Thinking {
                summary_part(out, text);
            } else {
                text_part(out, text);
            }
        }
        // The whole text or arguments, done.
        Ev::End(part, _) => {
            head(
                out,
                match part {
                    Part::Thinking => "response.reasoning_summary_text.done",
                    Part::Text => "response.output_text.done",
                    Part::Call(_) => "response.function_call_arguments.done",
                },
            );
            item_ref(r, part, out);
            if let Part::Call(k) = part {
                raw(out, ",\"name\":");
                string(out, r.call(k).map_or("", |c| &c.name));
                raw(out, ",\"arguments\":");
            } else {
                raw(out, ",\"text\":");
            }
            string(out, &r.words(part).text);
            if part == Part::Text {
                raw(out, ",\"logprobs\":[]");
            }
        }
        Ev::Piece(part, i) => {
            head(
                out,
                match part {
                    Part::Thinking => "response.reasoning_summary_text.delta",
                    Part::Text => "response.output_text.delta",
                    Part::Call(_) => "response.function_call_arguments.delta",
                },
            );
            item_ref(r, part, out);
            raw(out, ",\"delta\":\"");
            escaped(out, r.words(part).piece(i));
            raw(out, "\"");
            if part == Part::Text {
                raw(out, ",\"logprobs\":[]");
            }
        }
        Ev::Close(_) => {
            head(
                out,
                if r.truncated {
                    "response.incomplete"
                } else {
                    "response.completed"
                },
            );
            raw(out, ",\"response\":");
            write_response(r, out, Phase::Done);
        }
        Ev::Error => {
            head(out, "response.failed");
            raw(out, ",\"response\":");
            write_response(r, out, Phase::Failed);
        }
    }
    raw(out, ",\"sequence_number\":");
    uint(out, seq);
    raw(out, "}\n\n");
}
