//! OpenAI chat completions requests read into the pivot (chat clients go to messages
//! providers only, so what Anthropic has no place for is dropped or refused here).
//!
//! Follows the chat completions reference: `messages` roles `system`/`developer` (folded
//! into Anthropic's top-level `system`, in order), `user`, `assistant` (`tool_calls`, and
//! LiteLLM's `thinking_blocks` convention for replaying Anthropic thinking), `tool`.

use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

use super::pivot::{
    parse_data_url, Args, Choice, Effort, Format, Image, Part, Pivot, Reasoning, Role, Tool,
};
use super::{drop_named, Refused};
use crate::translate::Session;

/// Reads a chat completions body.
pub fn parse<'v>(root: &'v Value<'v>, s: &mut Session) -> Result<Pivot<'v>, Refused> {
    let mut p = Pivot::new();
    let Some(obj) = root.as_object() else {
        return Err(Refused::new(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let mut max_completion = None;
    let mut max_tokens = None;
    let mut safety_id = None;
    for (key, v) in obj.iter() {
        match key.as_ref() {
            "model" => {}
            "messages" => messages(v, &mut p, s)?,
            "max_completion_tokens" => max_completion = v.as_u64(),
            "max_tokens" => max_tokens = v.as_u64(),
            "stream" => p.stream = v.as_bool().unwrap_or(false),
            "stream_options" => {
                s.include_usage = v.get_bool("include_usage").unwrap_or(false);
                if v.as_object()
                    .is_some_and(|o| o.iter().any(|(k, _)| k != "include_usage"))
                {
                    drop_named(&mut s.dropped, "stream_options");
                }
            }
            "temperature" => p.temperature = v.cast_f64(),
            "top_p" => p.top_p = v.cast_f64(),
            "stop" => stop(v, &mut p),
            "n" => {
                if v.as_u64().is_some_and(|n| n > 1) {
                    return Err(Refused::new(
                        "n",
                        "Anthropic models return one choice: n must be 1.",
                    ));
                }
            }
            "logprobs" => {
                if v.as_bool() == Some(true) {
                    return Err(Refused::new(
                        "logprobs",
                        "Anthropic models do not return log probabilities.",
                    ));
                }
            }
            "top_logprobs" => {
                if !v.is_null() && v.as_u64() != Some(0) {
                    return Err(Refused::new(
                        "top_logprobs",
                        "Anthropic models do not return log probabilities.",
                    ));
                }
            }
            "audio" => {
                if !v.is_null() {
                    return Err(Refused::new(
                        "audio",
                        "Anthropic models do not produce audio.",
                    ));
                }
            }
            "modalities" => {
                if v.as_array()
                    .is_some_and(|a| a.iter().any(|m| m.as_str() == Some("audio")))
                {
                    return Err(Refused::new(
                        "modalities",
                        "Anthropic models do not produce audio.",
                    ));
                }
            }
            "prediction" => {
                if !v.is_null() {
                    return Err(Refused::new(
                        "prediction",
                        "Anthropic models take no predicted output.",
                    ));
                }
            }
            "functions" | "function_call" => {
                return Err(Refused::new(
                    key.as_ref(),
                    "The deprecated `functions` interface is not translated: use `tools`.",
                ))
            }
            "tools" => tools(v, &mut p, s)?,
            "tool_choice" => p.choice = tool_choice(v, s)?,
            "parallel_tool_calls" => p.parallel = v.as_bool(),
            "reasoning_effort" => {
                if let Some(e) = v.as_str().and_then(Effort::parse) {
                    p.reasoning = Reasoning::Effort(e);
                }
            }
            // LiteLLM's convention: Anthropic's own `thinking` on the chat route.
            "thinking" => p.reasoning = anthropic_thinking(v),
            "response_format" => p.format = response_format(v)?,
            "user" => p.user = v.as_str(),
            "safety_identifier" => safety_id = v.as_str(),
            "frequency_penalty" | "presence_penalty" => {
                if v.cast_f64().is_some_and(|f| f != 0.0) {
                    drop_named(
                        &mut s.dropped,
                        if key == "frequency_penalty" {
                            "frequency_penalty"
                        } else {
                            "presence_penalty"
                        },
                    );
                }
            }
            "logit_bias" => {
                if v.as_object().is_some_and(|o| !o.is_empty()) {
                    drop_named(&mut s.dropped, "logit_bias");
                }
            }
            other => drop_named(&mut s.dropped, advisory(other)),
        }
    }
    p.max_tokens = max_completion.or(max_tokens);
    if safety_id.is_some() {
        p.user = safety_id;
    }
    Ok(p)
}

/// The static name of an advisory member dropped on the way to Anthropic.
fn advisory(key: &str) -> &'static str {
    match key {
        "metadata" => "metadata",
        "store" => "store",
        "service_tier" => "service_tier",
        "seed" => "seed",
        "prompt_cache_key" => "prompt_cache_key",
        "prompt_cache_retention" => "prompt_cache_retention",
        "verbosity" => "verbosity",
        "web_search_options" => "web_search_options",
        _ => "unknown fields",
    }
}

/// `stop`: a string or an array of strings.
pub(super) fn stop<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>) {
    if let Some(s) = v.as_str() {
        p.stop.push(s);
    } else if let Some(a) = v.as_array() {
        p.stop.extend(a.iter().filter_map(|s| s.as_str()));
    }
}

/// Anthropic `thinking` (`enabled` with a budget, `adaptive`, `disabled`).
pub(super) fn anthropic_thinking(v: &Value<'_>) -> Reasoning {
    match v.get_str("type") {
        Some("enabled") => match v.get_u64("budget_tokens") {
            Some(b) => Reasoning::Budget(b),
            None => Reasoning::Adaptive(None),
        },
        Some("adaptive") => Reasoning::Adaptive(None),
        Some("disabled") => Reasoning::Disabled,
        _ => Reasoning::Unset,
    }
}

/// `response_format`: `text`, `json_object`, `json_schema`.
fn response_format<'v>(v: &'v Value<'v>) -> Result<Option<Format<'v>>, Refused> {
    match v.get_str("type") {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Format::JsonObject)),
        Some("json_schema") => {
            let js = v.get("json_schema");
            match js.and_then(|j| j.get("schema")) {
                Some(schema) => Ok(Some(Format::JsonSchema {
                    name: js.and_then(|j| j.get_str("name")),
                    schema,
                    strict: js.and_then(|j| j.get_bool("strict")),
                })),
                None => Err(Refused::new(
                    "response_format.json_schema.schema",
                    "A json_schema response format needs its schema.",
                )),
            }
        }
        Some(_) => Err(Refused::new(
            "response_format.type",
            "Unknown response format type.",
        )),
    }
}

/// `tools`: function tools; anything else (`custom`) has no Anthropic equivalent.
fn tools<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    let Some(list) = v.as_array() else {
        return Ok(());
    };
    for (i, t) in list.iter().enumerate() {
        match t.get_str("type") {
            Some("function") | None => {
                let Some(f) = t.get("function") else {
                    return Err(Refused::new(
                        format!("tools[{i}].function"),
                        "A function tool needs `function`.",
                    ));
                };
                let Some(name) = f.get_str("name") else {
                    return Err(Refused::new(
                        format!("tools[{i}].function.name"),
                        "A function tool needs a name.",
                    ));
                };
                p.tools.push(Tool {
                    name: s.tools.add(None, name),
                    description: f.get_str("description"),
                    schema: f.get("parameters"),
                    strict: f.get_bool("strict"),
                });
            }
            Some("custom") => drop_named(&mut s.dropped, "tools[custom]"),
            Some(_) => drop_named(&mut s.dropped, "tools[hosted]"),
        }
    }
    Ok(())
}

/// `tool_choice`: `auto`, `none`, `required`, or a named function.
fn tool_choice(v: &Value<'_>, s: &mut Session) -> Result<Option<Choice>, Refused> {
    if let Some(w) = v.as_str() {
        return Ok(match w {
            "auto" => Some(Choice::Auto),
            "none" => Some(Choice::None),
            "required" => Some(Choice::Required),
            _ => return Err(Refused::new("tool_choice", "Unknown tool_choice.")),
        });
    }
    match (
        v.get_str("type"),
        v.get("function").and_then(|f| f.get_str("name")),
    ) {
        (Some("function"), Some(name)) => Ok(Some(Choice::Named(s.tools.add(None, name)))),
        _ => Err(Refused::new(
            "tool_choice",
            "Only auto, none, required and a named function translate to Anthropic models.",
        )),
    }
}

/// `messages`.
fn messages<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    let Some(list) = v.as_array() else {
        return Err(Refused::new("messages", "`messages` must be an array."));
    };
    for (i, m) in list.iter().enumerate() {
        let content = m.get("content");
        match m.get_str("role") {
            Some("system" | "developer") => system_text(content, p, s, i)?,
            Some("user") => {
                if let Some(c) = content {
                    user_content(c, p, s, i)?;
                }
            }
            Some("assistant") => assistant(m, p, s, i)?,
            Some("tool") => {
                let id = m.get_str("tool_call_id").unwrap_or("");
                let mut result = Vec::new();
                if let Some(c) = content {
                    if let Some(t) = c.as_str() {
                        result.push(Part::Text(t));
                    } else if let Some(parts) = c.as_array() {
                        for (j, part) in parts.iter().enumerate() {
                            result.push(user_part(part, s, i, j)?);
                        }
                    }
                }
                p.push(
                    Role::User,
                    Part::Result {
                        id,
                        content: result,
                        is_error: false,
                    },
                );
            }
            _ => {
                return Err(Refused::new(
                    format!("messages[{i}].role"),
                    "Only system, developer, user, assistant and tool messages translate.",
                ))
            }
        }
        if m.get("name").is_some() {
            drop_named(&mut s.dropped, "messages[].name");
        }
    }
    Ok(())
}

/// A system or developer message's text, folded into the system prompt.
fn system_text<'v>(
    c: Option<&'v Value<'v>>,
    p: &mut Pivot<'v>,
    s: &mut Session,
    i: usize,
) -> Result<(), Refused> {
    let Some(c) = c else { return Ok(()) };
    if let Some(t) = c.as_str() {
        p.system.push(t);
    } else if let Some(parts) = c.as_array() {
        for (j, part) in parts.iter().enumerate() {
            match (part.get_str("type"), part.get_str("text")) {
                (Some("text"), Some(t)) => p.system.push(t),
                _ => {
                    return Err(Refused::new(
                        format!("messages[{i}].content[{j}].type"),
                        "System messages take text parts only.",
                    ))
                }
            }
            if part.get("cache_control").is_some() {
                drop_named(&mut s.dropped, "cache_control");
            }
        }
    }
    Ok(())
}

fn user_content<'v>(
    c: &'v Value<'v>,
    p: &mut Pivot<'v>,
    s: &mut Session,
    i: usize,
) -> Result<(), Refused> {
    if let Some(t) = c.as_str() {
        p.push(Role::User, Part::Text(t));
    } else if let Some(parts) = c.as_array() {
        for (j, part) in parts.iter().enumerate() {
            let part = user_part(part, s, i, j)?;
            p.push(Role::User, part);
        }
    }
    Ok(())
}

/// One part of a user (or tool) message: `text`, `image_url`, `file` (inline PDFs).
fn user_part<'v>(
    part: &'v Value<'v>,
    s: &mut Session,
    i: usize,
    j: usize,
) -> Result<Part<'v>, Refused> {
    if part.get("cache_control").is_some() {
        drop_named(&mut s.dropped, "cache_control");
    }
    let field = || format!("messages[{i}].content[{j}]");
    match part.get_str("type") {
        Some("text") => Ok(Part::Text(part.get_str("text").unwrap_or(""))),
        Some("image_url") => {
            let iu = part.get("image_url");
            let url = iu
                .and_then(|u| u.get_str("url").or_else(|| u.as_str()))
                .unwrap_or("");
            if iu
                .and_then(|u| u.get_str("detail"))
                .is_some_and(|d| d != "auto")
            {
                drop_named(&mut s.dropped, "image_url.detail");
            }
            image(url).ok_or_else(|| {
                Refused::new(
                    field() + ".image_url.url",
                    "Images must be http(s) URLs or base64 data: URLs.",
                )
            })
        }
        Some("file") => {
            let f = part.get("file");
            let data = f
                .and_then(|f| f.get_str("file_data"))
                .and_then(parse_data_url);
            match data {
                Some((media_type, data)) => Ok(Part::File {
                    media_type,
                    data,
                    filename: f.and_then(|f| f.get_str("filename")),
                }),
                None => Err(Refused::new(
                    field() + ".file",
                    "Only inline files (file_data as a base64 data: URL) translate; file ids do not.",
                )),
            }
        }
        Some("input_audio") => Err(Refused::new(
            field() + ".type",
            "Anthropic models take no audio input.",
        )),
        _ => Err(Refused::new(
            field() + ".type",
            "Unknown content part type.",
        )),
    }
}

/// An image URL as an image: `data:` (base64) or `http(s)`.
pub(super) fn image(url: &str) -> Option<Part<'_>> {
    if let Some((media_type, data)) = parse_data_url(url) {
        return Some(Part::Image(Image::Base64 { media_type, data }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Some(Part::Image(Image::Url(url)));
    }
    None
}

/// An assistant message: thinking blocks first (Anthropic wants them before text and
/// tool_use), then text, then tool calls.
fn assistant<'v>(
    m: &'v Value<'v>,
    p: &mut Pivot<'v>,
    s: &mut Session,
    i: usize,
) -> Result<(), Refused> {
    let blocks = m.get("thinking_blocks").and_then(|b| b.as_array());
    if let Some(blocks) = blocks {
        for b in blocks {
            match b.get_str("type") {
                Some("thinking") => match b.get_str("signature") {
                    Some(sig) => p.push(
                        Role::Assistant,
                        Part::Thinking {
                            text: b.get_str("thinking").unwrap_or("").into(),
                            signature: sig,
                        },
                    ),
                    None => drop_named(&mut s.dropped, "thinking_blocks"),
                },
                Some("redacted_thinking") => {
                    if let Some(d) = b.get_str("data") {
                        p.push(Role::Assistant, Part::Redacted(d));
                    }
                }
                _ => drop_named(&mut s.dropped, "thinking_blocks"),
            }
        }
    } else if m
        .get_str("reasoning_content")
        .is_some_and(|r| !r.is_empty())
    {
        // Anthropic takes thinking back only with its signature.
        drop_named(&mut s.dropped, "reasoning_content");
    }
    let mut spoke = false;
    if let Some(c) = m.get("content") {
        if let Some(t) = c.as_str() {
            p.push(Role::Assistant, Part::Text(t));
            spoke = true;
        } else if let Some(parts) = c.as_array() {
            for (j, part) in parts.iter().enumerate() {
                match part.get_str("type") {
                    Some("text") => p.push(
                        Role::Assistant,
                        Part::Text(part.get_str("text").unwrap_or("")),
                    ),
                    Some("refusal") => p.push(
                        Role::Assistant,
                        Part::Text(part.get_str("refusal").unwrap_or("")),
                    ),
                    _ => {
                        return Err(Refused::new(
                            format!("messages[{i}].content[{j}].type"),
                            "Assistant messages take text and refusal parts only.",
                        ))
                    }
                }
                spoke = true;
            }
        }
    }
    if let Some(r) = m.get_str("refusal") {
        p.push(Role::Assistant, Part::Text(r));
        spoke = true;
    }
    if let Some(calls) = m.get("tool_calls").and_then(|c| c.as_array()) {
        for (j, c) in calls.iter().enumerate() {
            let f = c.get("function");
            let Some(name) = f.and_then(|f| f.get_str("name")) else {
                return Err(Refused::new(
                    format!("messages[{i}].tool_calls[{j}].function.name"),
                    "A tool call needs a function name.",
                ));
            };
            p.push(
                Role::Assistant,
                Part::Call {
                    id: c.get_str("id").unwrap_or(""),
                    name: s.tools.add(None, name),
                    args: Args::Text(f.and_then(|f| f.get_str("arguments")).unwrap_or("")),
                },
            );
            spoke = true;
        }
    }
    if m.get("audio").is_some_and(|a| !a.is_null()) {
        return Err(Refused::new(
            format!("messages[{i}].audio"),
            "Anthropic models take no audio.",
        ));
    }
    if !spoke && blocks.is_none() {
        // An empty assistant turn says nothing; Anthropic refuses empty content.
        p.push(Role::Assistant, Part::Text(""));
    }
    Ok(())
}
