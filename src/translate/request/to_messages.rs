//! The pivot written as an Anthropic messages body.
//!
//! Anthropic's rules, from the Messages reference, that shape what is written:
//! - `max_tokens` is required: the client's bound, else the model's `max_output_tokens`.
//! - `system` is top-level; turns alternate user/assistant (the pivot merged same-role
//!   turns), text blocks must not be empty, and an assistant turn replays thinking blocks
//!   (with their signatures) before its text and `tool_use`.
//! - `temperature` is 0..1 (OpenAI's is 0..2: above 1 is refused, not clamped, since the
//!   client asked for more randomness than the model can give); current models take
//!   `temperature` or `top_p`, not both (`top_p` is dropped and named).
//! - Extended thinking takes `budget_tokens` >= 1024 and < `max_tokens`, no forced tool
//!   choice, and no `temperature`/`top_k` change (see [`thinking_budget`]).

use super::json;
use super::pivot::{Args, Choice, Effort, Format, Image, Part, Pivot, Reasoning, Role};
use super::{drop_named, Refused, Target};
use crate::translate::Session;

/// Anthropic's smallest thinking budget.
pub const MIN_BUDGET: u64 = 1024;

/// The thinking budget for an OpenAI reasoning effort. `None` for `none`: no thinking.
///
/// | effort  | budget_tokens |
/// |---------|---------------|
/// | minimal | 1024          |
/// | low     | 2048          |
/// | medium  | 8192          |
/// | high    | 16384         |
/// | xhigh   | 32768         |
pub fn effort_budget(e: Effort) -> Option<u64> {
    match e {
        Effort::None => None,
        Effort::Minimal => Some(1024),
        Effort::Low => Some(2048),
        Effort::Medium => Some(8192),
        Effort::High => Some(16384),
        Effort::XHigh => Some(32768),
    }
}

/// The budget actually sent: at most `max_tokens - 1` (the client's bound covers thinking
/// and answer together, in both APIs, so it is never raised); `None` when `max_tokens` leaves
/// no room for Anthropic's minimum, and thinking is then dropped and named.
pub fn thinking_budget(wanted: u64, max_tokens: u64) -> Option<u64> {
    let budget = wanted.max(MIN_BUDGET).min(max_tokens.saturating_sub(1));
    (budget >= MIN_BUDGET).then_some(budget)
}

/// Writes `p` as a messages body.
pub fn write(
    p: &Pivot<'_>,
    target: &Target<'_>,
    s: &mut Session,
    out: &mut Vec<u8>,
) -> Result<(), Refused> {
    let max_tokens = p.max_tokens.unwrap_or(target.max_output_tokens);
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(target.model_json);
    out.extend_from_slice(b",\"max_tokens\":");
    json::u64(out, max_tokens);
    if p.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    system(p, out);
    messages(p, out);
    let forced = matches!(p.choice, Some(Choice::Required | Choice::Named(_)));
    let wanted = match p.reasoning {
        Reasoning::Effort(e) => effort_budget(e),
        Reasoning::Budget(b) => Some(b),
        Reasoning::Adaptive(e) => effort_budget(e.unwrap_or(Effort::High)),
        Reasoning::Unset | Reasoning::Disabled => None,
    };
    let budget = match wanted {
        Some(_) if forced => {
            // Anthropic refuses a forced tool choice with thinking; the tool choice is the
            // client's instruction, the effort only a hint.
            drop_named(&mut s.dropped, reasoning_field(s.client));
            None
        }
        Some(w) => {
            let b = thinking_budget(w, max_tokens);
            if b.is_none() {
                drop_named(&mut s.dropped, reasoning_field(s.client));
            }
            b
        }
        None => None,
    };
    if let Some(b) = budget {
        out.extend_from_slice(b",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
        json::u64(out, b);
        out.push(b'}');
    }
    if let Some(t) = p.temperature {
        if t > 1.0 {
            return Err(Refused::new(
                "temperature",
                "Anthropic models take a temperature from 0 to 1.",
            ));
        }
        if budget.is_some() && t != 1.0 {
            drop_named(&mut s.dropped, "temperature");
        } else {
            out.extend_from_slice(b",\"temperature\":");
            json::f64(out, t);
        }
    }
    if let Some(tp) = p.top_p {
        let thinking_ok = budget.is_none() || tp >= 0.95;
        if p.temperature.is_some() || !thinking_ok {
            drop_named(&mut s.dropped, "top_p");
        } else {
            out.extend_from_slice(b",\"top_p\":");
            json::f64(out, tp);
        }
    }
    if !p.stop.is_empty() {
        out.extend_from_slice(b",\"stop_sequences\":[");
        for (i, st) in p.stop.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(out, st);
        }
        out.push(b']');
    }
    tools(p, out);
    match p.format {
        None => {}
        Some(Format::JsonObject) => {
            return Err(Refused::new(
                if s.client == crate::translate::Api::Responses {
                    "text.format"
                } else {
                    "response_format"
                },
                "Anthropic models enforce a JSON schema, not bare JSON mode: use json_schema.",
            ))
        }
        // Anthropic's output format takes no name (OpenAI's only labels the schema).
        Some(Format::JsonSchema { schema, .. }) => {
            out.extend_from_slice(
                b",\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":",
            );
            json::value(out, schema);
            out.extend_from_slice(b"}}");
        }
    }
    if let Some(u) = p.user {
        out.extend_from_slice(b",\"metadata\":{\"user_id\":");
        json::string(out, u);
        out.push(b'}');
    }
    for (name, _) in &p.chat_only {
        drop_named(&mut s.dropped, name);
    }
    out.push(b'}');
    Ok(())
}

/// The client's name for its reasoning request.
fn reasoning_field(client: crate::translate::Api) -> &'static str {
    match client {
        crate::translate::Api::Responses => "reasoning.effort",
        _ => "reasoning_effort",
    }
}

fn system(p: &Pivot<'_>, out: &mut Vec<u8>) {
    let texts = p.system.iter().filter(|t| !t.is_empty());
    match p.system.iter().filter(|t| !t.is_empty()).count() {
        0 => {}
        1 => {
            out.extend_from_slice(b",\"system\":");
            for t in texts {
                json::string(out, t);
            }
        }
        _ => {
            out.extend_from_slice(b",\"system\":[");
            for (i, t) in texts.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                text_block(out, t);
            }
            out.push(b']');
        }
    }
}

fn text_block(out: &mut Vec<u8>, t: &str) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    json::string(out, t);
    out.push(b'}');
}

/// Whether a part writes a block (empty text does not: Anthropic refuses it).
fn writes(part: &Part<'_>) -> bool {
    !matches!(part, Part::Text(t) if t.is_empty())
}

fn messages(p: &Pivot<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"messages\":[");
    let mut open: Option<Role> = None;
    let mut scratch = Vec::new();
    for turn in &p.turns {
        for part in turn.parts.iter().filter(|x| writes(x)) {
            if open == Some(turn.role) {
                out.push(b',');
            } else {
                if open.is_some() {
                    out.extend_from_slice(b"]},");
                }
                out.extend_from_slice(match turn.role {
                    Role::User => b"{\"role\":\"user\",\"content\":[",
                    Role::Assistant => b"{\"role\":\"assistant\",\"content\":[",
                });
                open = Some(turn.role);
            }
            block(out, part, &mut scratch);
        }
    }
    if open.is_some() {
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
}

fn block(out: &mut Vec<u8>, part: &Part<'_>, scratch: &mut Vec<u8>) {
    match part {
        Part::Text(t) => text_block(out, t),
        Part::Image(img) => {
            out.extend_from_slice(b"{\"type\":\"image\",\"source\":");
            match img {
                Image::Base64 { media_type, data } => {
                    out.extend_from_slice(b"{\"type\":\"base64\",\"media_type\":");
                    json::string(out, media_type);
                    out.extend_from_slice(b",\"data\":");
                    json::string(out, data);
                    out.push(b'}');
                }
                Image::Url(u) => {
                    out.extend_from_slice(b"{\"type\":\"url\",\"url\":");
                    json::string(out, u);
                    out.push(b'}');
                }
            }
            out.push(b'}');
        }
        Part::File {
            media_type,
            data,
            filename,
        } => {
            out.extend_from_slice(
                b"{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":",
            );
            json::string(out, media_type);
            out.extend_from_slice(b",\"data\":");
            json::string(out, data);
            out.push(b'}');
            if let Some(f) = filename {
                out.extend_from_slice(b",\"title\":");
                json::string(out, f);
            }
            out.push(b'}');
        }
        Part::Thinking { text, signature } => {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            json::string(out, text);
            out.extend_from_slice(b",\"signature\":");
            json::string(out, signature);
            out.push(b'}');
        }
        Part::Redacted(data) => {
            out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
            json::string(out, data);
            out.push(b'}');
        }
        Part::Call { id, name, args } => {
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            json::string(out, id);
            out.extend_from_slice(b",\"name\":");
            json::string(out, name);
            out.extend_from_slice(b",\"input\":");
            match args {
                Args::Text(t) => json::args_object(out, t, scratch),
                Args::Value(v) if v.is_object() => json::value(out, v),
                Args::Value(_) => out.extend_from_slice(b"{}"),
            }
            out.push(b'}');
        }
        Part::Result {
            id,
            content,
            is_error,
        } => {
            out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
            json::string(out, id);
            let shown: Vec<&Part<'_>> = content.iter().filter(|x| writes(x)).collect();
            match shown.as_slice() {
                [] => {}
                [Part::Text(t)] => {
                    out.extend_from_slice(b",\"content\":");
                    json::string(out, t);
                }
                parts => {
                    out.extend_from_slice(b",\"content\":[");
                    for (i, inner) in parts.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        block(out, inner, scratch);
                    }
                    out.push(b']');
                }
            }
            if *is_error {
                out.extend_from_slice(b",\"is_error\":true");
            }
            out.push(b'}');
        }
    }
}

fn tools(p: &Pivot<'_>, out: &mut Vec<u8>) {
    if p.tools.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"tools\":[");
    for (i, t) in p.tools.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        json::string(out, &t.name);
        if let Some(d) = t.description {
            out.extend_from_slice(b",\"description\":");
            json::string(out, d);
        }
        out.extend_from_slice(b",\"input_schema\":");
        match t.schema {
            Some(schema) if schema.is_object() => json::value(out, schema),
            // Anthropic requires a schema; a function without parameters takes none.
            _ => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
        }
        if let Some(strict) = t.strict {
            out.extend_from_slice(if strict {
                b",\"strict\":true"
            } else {
                b",\"strict\":false"
            });
        }
        out.push(b'}');
    }
    out.push(b']');
    let no_parallel = p.parallel == Some(false);
    let choice: &[u8] = match &p.choice {
        None if !no_parallel => return,
        None | Some(Choice::Auto) => b"{\"type\":\"auto\"",
        Some(Choice::None) => {
            out.extend_from_slice(b",\"tool_choice\":{\"type\":\"none\"}");
            return;
        }
        Some(Choice::Required) => b"{\"type\":\"any\"",
        Some(Choice::Named(name)) => {
            out.extend_from_slice(b",\"tool_choice\":{\"type\":\"tool\",\"name\":");
            json::string(out, name);
            if no_parallel {
                out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
            }
            out.push(b'}');
            return;
        }
    };
    out.extend_from_slice(b",\"tool_choice\":");
    out.extend_from_slice(choice);
    if no_parallel {
        out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
    }
    out.push(b'}');
}

use simd_json::prelude::*;
