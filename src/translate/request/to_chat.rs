//! The pivot written as an OpenAI chat completions body.
//!
//! From the chat completions reference: the system prompt is the first `system` message;
//! a user turn's tool results become `tool` messages (in order, before the rest of the
//! turn, which follows as a user message, with any images the tools returned: tool
//! messages take text only); an assistant turn is one message with its text and
//! `tool_calls` (arguments as a JSON text). Thinking blocks have no place in chat history
//! and are dropped and named. A streamed request asks for usage
//! (`stream_options.include_usage`) so the answer's usage is known whatever the client asked.

use simd_json::prelude::*;

use super::json;
use super::pivot::{Args, Choice, Effort, Format, Image, Part, Pivot, Reasoning, Role};
use super::{drop_named, Refused, Target};
use crate::translate::{Api, Session};

/// The OpenAI effort for an Anthropic thinking budget.
///
/// | budget_tokens | reasoning_effort |
/// |---------------|------------------|
/// | < 4096        | low              |
/// | < 16384       | medium           |
/// | otherwise     | high             |
pub fn budget_effort(budget: u64) -> Effort {
    match budget {
        0..=4095 => Effort::Low,
        4096..=16383 => Effort::Medium,
        _ => Effort::High,
    }
}

/// Writes `p` as a chat completions body.
pub fn write(
    p: &Pivot<'_>,
    target: &Target<'_>,
    s: &mut Session,
    out: &mut Vec<u8>,
) -> Result<(), Refused> {
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(target.model_json);
    messages(p, s, out);
    if let Some(m) = p.max_tokens {
        out.extend_from_slice(b",\"max_completion_tokens\":");
        json::u64(out, m);
    }
    if p.stream {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    if !p.stop.is_empty() {
        out.extend_from_slice(b",\"stop\":[");
        for (i, st) in p.stop.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(out, st);
        }
        out.push(b']');
    }
    if let Some(t) = p.temperature {
        out.extend_from_slice(b",\"temperature\":");
        json::f64(out, t);
    }
    if let Some(t) = p.top_p {
        out.extend_from_slice(b",\"top_p\":");
        json::f64(out, t);
    }
    let effort = match p.reasoning {
        Reasoning::Effort(e) => Some(e),
        Reasoning::Budget(b) => Some(budget_effort(b)),
        Reasoning::Adaptive(e) => e,
        Reasoning::Unset | Reasoning::Disabled => None,
    };
    if let Some(e) = effort {
        out.extend_from_slice(b",\"reasoning_effort\":");
        json::string(out, e.as_str());
    }
    tools(p, out);
    match p.format {
        None => {}
        Some(Format::JsonObject) => {
            out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"}")
        }
        Some(Format::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            out.extend_from_slice(
                b",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":",
            );
            json::string(out, name.unwrap_or("output"));
            out.extend_from_slice(b",\"schema\":");
            json::value(out, schema);
            if let Some(st) = strict {
                out.extend_from_slice(if st {
                    b",\"strict\":true"
                } else {
                    b",\"strict\":false"
                });
            }
            out.extend_from_slice(b"}}");
        }
    }
    if let Some(u) = p.user {
        out.extend_from_slice(b",\"user\":");
        json::string(out, u);
    }
    for (name, v) in &p.chat_only {
        out.push(b',');
        json::string(out, name);
        out.push(b':');
        json::value(out, v);
    }
    out.push(b'}');
    Ok(())
}

fn messages(p: &Pivot<'_>, s: &mut Session, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let system: Vec<&str> = p.system.iter().copied().filter(|t| !t.is_empty()).collect();
    if !system.is_empty() {
        sep(out);
        out.extend_from_slice(b"{\"role\":\"system\",\"content\":\"");
        for (i, t) in system.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\\n\\n");
            }
            json::escaped(out, t);
        }
        out.extend_from_slice(b"\"}");
    }
    for turn in &p.turns {
        match turn.role {
            Role::User => {
                let mut rest: Vec<&Part<'_>> = Vec::new();
                for part in &turn.parts {
                    match part {
                        Part::Result {
                            id,
                            content,
                            is_error,
                        } => {
                            sep(out);
                            tool_message(out, id, content, *is_error, &mut rest);
                        }
                        Part::Text(t) if t.is_empty() => {}
                        other => rest.push(other),
                    }
                }
                if !rest.is_empty() {
                    sep(out);
                    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                    match rest.as_slice() {
                        [Part::Text(t)] => json::string(out, t),
                        parts => {
                            out.push(b'[');
                            for (i, part) in parts.iter().enumerate() {
                                if i > 0 {
                                    out.push(b',');
                                }
                                user_part(out, part);
                            }
                            out.push(b']');
                        }
                    }
                    out.push(b'}');
                }
            }
            Role::Assistant => {
                let texts: Vec<&str> = turn
                    .parts
                    .iter()
                    .filter_map(|x| match x {
                        Part::Text(t) if !t.is_empty() => Some(*t),
                        _ => None,
                    })
                    .collect();
                let calls = turn
                    .parts
                    .iter()
                    .filter(|x| matches!(x, Part::Call { .. }))
                    .count();
                for part in &turn.parts {
                    match part {
                        Part::Thinking { .. } => {
                            drop_named(&mut s.dropped, thinking_name(s.client))
                        }
                        Part::Redacted(_) => {
                            drop_named(&mut s.dropped, "content[].redacted_thinking")
                        }
                        _ => {}
                    }
                }
                if texts.is_empty() && calls == 0 {
                    continue;
                }
                sep(out);
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
                match texts.as_slice() {
                    [] => out.extend_from_slice(b"null"),
                    [t] => json::string(out, t),
                    many => {
                        out.push(b'[');
                        for (i, t) in many.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                            json::string(out, t);
                            out.push(b'}');
                        }
                        out.push(b']');
                    }
                }
                if calls > 0 {
                    out.extend_from_slice(b",\"tool_calls\":[");
                    let mut i = 0;
                    for part in &turn.parts {
                        let Part::Call { id, name, args } = part else {
                            continue;
                        };
                        if i > 0 {
                            out.push(b',');
                        }
                        i += 1;
                        out.extend_from_slice(b"{\"id\":");
                        json::string(out, id);
                        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                        json::string(out, name);
                        out.extend_from_slice(b",\"arguments\":");
                        match args {
                            Args::Text(t) if t.trim().is_empty() => json::string(out, "{}"),
                            Args::Text(t) => json::string(out, t),
                            Args::Value(v) => json::value_as_string(out, v),
                        }
                        out.extend_from_slice(b"}}");
                    }
                    out.push(b']');
                }
                out.push(b'}');
            }
        }
    }
    out.push(b']');
}

/// The client's name for thinking replayed in history.
fn thinking_name(client: Api) -> &'static str {
    match client {
        Api::Responses => "input[].reasoning",
        _ => "content[].thinking",
    }
}

/// A `tool` message; images in the result are set aside for the user message after it.
fn tool_message<'p, 'v>(
    out: &mut Vec<u8>,
    id: &str,
    content: &'p [Part<'v>],
    is_error: bool,
    rest: &mut Vec<&'p Part<'v>>,
) {
    out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
    json::string(out, id);
    out.extend_from_slice(b",\"content\":\"");
    if is_error {
        // Chat has no error flag; the model reads the outcome in the text.
        out.extend_from_slice(b"Error: ");
    }
    let mut first = true;
    for part in content {
        match part {
            Part::Text(t) => {
                if !std::mem::take(&mut first) {
                    out.extend_from_slice(b"\\n");
                }
                json::escaped(out, t);
            }
            other => rest.push(other),
        }
    }
    out.extend_from_slice(b"\"}");
}

fn user_part(out: &mut Vec<u8>, part: &Part<'_>) {
    match part {
        Part::Text(t) => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            json::string(out, t);
            out.push(b'}');
        }
        Part::Image(img) => {
            out.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":");
            match img {
                Image::Url(u) => json::string(out, u),
                Image::Base64 { media_type, data } => data_url(out, media_type, data),
            }
            out.extend_from_slice(b"}}");
        }
        Part::File {
            media_type,
            data,
            filename,
        } => {
            out.extend_from_slice(b"{\"type\":\"file\",\"file\":{\"filename\":");
            json::string(out, filename.unwrap_or("document.pdf"));
            out.extend_from_slice(b",\"file_data\":");
            data_url(out, media_type, data);
            out.extend_from_slice(b"}}");
        }
        // Calls, thinking and results never sit in a user message's parts (the parsers put
        // calls and thinking in assistant turns; results were written as tool messages).
        _ => out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}"),
    }
}

fn data_url(out: &mut Vec<u8>, media_type: &str, data: &str) {
    out.extend_from_slice(b"\"data:");
    json::escaped(out, media_type);
    out.extend_from_slice(b";base64,");
    json::escaped(out, data);
    out.push(b'"');
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
        out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
        json::string(out, &t.name);
        if let Some(d) = t.description {
            out.extend_from_slice(b",\"description\":");
            json::string(out, d);
        }
        if let Some(schema) = t.schema.filter(|x| x.is_object()) {
            out.extend_from_slice(b",\"parameters\":");
            json::value(out, schema);
        }
        if let Some(strict) = t.strict {
            out.extend_from_slice(if strict {
                b",\"strict\":true"
            } else {
                b",\"strict\":false"
            });
        }
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
    match &p.choice {
        None => {}
        Some(Choice::Auto) => out.extend_from_slice(b",\"tool_choice\":\"auto\""),
        Some(Choice::None) => out.extend_from_slice(b",\"tool_choice\":\"none\""),
        Some(Choice::Required) => out.extend_from_slice(b",\"tool_choice\":\"required\""),
        Some(Choice::Named(n)) => {
            out.extend_from_slice(
                b",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":",
            );
            json::string(out, n);
            out.extend_from_slice(b"}}");
        }
    }
    if let Some(par) = p.parallel {
        out.extend_from_slice(if par {
            b",\"parallel_tool_calls\":true"
        } else {
            b",\"parallel_tool_calls\":false"
        });
    }
}
