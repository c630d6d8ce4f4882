//! Anthropic messages requests read into the pivot (messages clients go to chat providers
//! only, so what OpenAI has no place for is dropped or refused here).
//!
//! Follows the Messages reference: `system` (a string or text blocks), `messages` of `user`
//! and `assistant` turns whose content is a string or blocks (`text`, `image`, `document`,
//! `tool_use`, `tool_result`, `thinking`, `redacted_thinking`), client tools and server
//! tools, `tool_choice`, `thinking`, `output_config`. Claude Code also sends `system` turns
//! inside `messages`: folded into the system prompt.

use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

use super::from_chat::{anthropic_thinking, stop};
use super::pivot::{Args, Choice, Effort, Format, Image, Part, Pivot, Reasoning, Role, Tool};
use super::{drop_named, Refused};
use crate::translate::Session;

/// Reads a messages body.
pub fn parse<'v>(root: &'v Value<'v>, s: &mut Session) -> Result<Pivot<'v>, Refused> {
    let mut p = Pivot::new();
    let Some(obj) = root.as_object() else {
        return Err(Refused::new(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let mut effort = None;
    // The top-level system prompt goes before any `system` turn found inside `messages`,
    // whatever the members' order.
    if let Some(v) = obj.get("system") {
        system(v, &mut p, s)?;
    }
    for (key, v) in obj.iter() {
        match key.as_ref() {
            "model" => {}
            "max_tokens" => p.max_tokens = v.as_u64(),
            "stream" => p.stream = v.as_bool().unwrap_or(false),
            "system" => {}
            "messages" => messages(v, &mut p, s)?,
            "stop_sequences" => stop(v, &mut p),
            "temperature" => p.temperature = v.cast_f64(),
            "top_p" => p.top_p = v.cast_f64(),
            "top_k" => drop_named(&mut s.dropped, "top_k"),
            "tools" => tools(v, &mut p, s)?,
            "tool_choice" => tool_choice(v, &mut p, s)?,
            "thinking" => p.reasoning = anthropic_thinking(v),
            "output_config" => {
                let Some(o) = v.as_object() else { continue };
                for (k, c) in o.iter() {
                    match k.as_ref() {
                        "effort" => effort = c.as_str().and_then(Effort::parse),
                        "format" => match (c.get_str("type"), c.get("schema")) {
                            (Some("json_schema"), Some(schema)) => {
                                p.format = Some(Format::JsonSchema {
                                    name: None,
                                    schema,
                                    strict: Some(true),
                                })
                            }
                            _ => {
                                return Err(Refused::new(
                                    "output_config.format",
                                    "Only a json_schema output format translates.",
                                ))
                            }
                        },
                        _ => drop_named(&mut s.dropped, "output_config"),
                    }
                }
            }
            "mcp_servers" => {
                return Err(Refused::new(
                    "mcp_servers",
                    "OpenAI chat models cannot reach MCP servers.",
                ))
            }
            "container" => {
                return Err(Refused::new(
                    "container",
                    "OpenAI chat models have no code execution container.",
                ))
            }
            other => drop_named(
                &mut s.dropped,
                match other {
                    "metadata" => "metadata",
                    "context_management" => "context_management",
                    "service_tier" => "service_tier",
                    "betas" => "betas",
                    "inference_geo" => "inference_geo",
                    _ => "unknown fields",
                },
            ),
        }
    }
    // `output_config.effort` sets how hard an adaptive (or budgeted) thinker thinks; with
    // thinking off or unsaid it has no OpenAI counterpart.
    match (&mut p.reasoning, effort) {
        (Reasoning::Adaptive(e), Some(x)) => *e = Some(x),
        (Reasoning::Budget(_), Some(x)) => p.reasoning = Reasoning::Effort(x),
        (_, Some(_)) => drop_named(&mut s.dropped, "output_config.effort"),
        _ => {}
    }
    Ok(p)
}

/// `system`: a string or text blocks.
fn system<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    if let Some(t) = v.as_str() {
        p.system.push(t);
    } else if let Some(blocks) = v.as_array() {
        for (j, b) in blocks.iter().enumerate() {
            match (b.get_str("type"), b.get_str("text")) {
                (Some("text"), Some(t)) => p.system.push(t),
                _ => {
                    return Err(Refused::new(
                        format!("system[{j}].type"),
                        "System blocks must be text.",
                    ))
                }
            }
            if b.get("cache_control").is_some() {
                drop_named(&mut s.dropped, "cache_control");
            }
        }
    }
    Ok(())
}

/// `tools`: client tools (no `type`, or `custom`) translate; server tools are dropped.
fn tools<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    let Some(list) = v.as_array() else {
        return Ok(());
    };
    for (i, t) in list.iter().enumerate() {
        match t.get_str("type") {
            None | Some("custom") => {
                let Some(name) = t.get_str("name") else {
                    return Err(Refused::new(
                        format!("tools[{i}].name"),
                        "A tool needs a name.",
                    ));
                };
                if t.get("cache_control").is_some() {
                    drop_named(&mut s.dropped, "cache_control");
                }
                p.tools.push(Tool {
                    name: s.tools.add(None, name),
                    description: t.get_str("description"),
                    schema: t.get("input_schema"),
                    strict: t.get_bool("strict"),
                });
            }
            Some(server) => drop_named(&mut s.dropped, server_tool(server)),
        }
    }
    Ok(())
}

/// The static name of an Anthropic server tool (versioned types such as
/// `web_search_20250305`).
fn server_tool(ty: &str) -> &'static str {
    const KNOWN: [(&str, &str); 9] = [
        ("web_search", "tools[web_search]"),
        ("web_fetch", "tools[web_fetch]"),
        ("bash", "tools[bash]"),
        ("text_editor", "tools[text_editor]"),
        ("computer", "tools[computer]"),
        ("code_execution", "tools[code_execution]"),
        ("memory", "tools[memory]"),
        ("tool_search", "tools[tool_search]"),
        ("mcp_toolset", "tools[mcp_toolset]"),
    ];
    KNOWN
        .iter()
        .find(|(prefix, _)| ty.starts_with(prefix))
        .map_or("tools[server tool]", |(_, name)| name)
}

/// `tool_choice`: `auto`, `any`, `tool`, `none`; `disable_parallel_tool_use`.
fn tool_choice(v: &Value<'_>, p: &mut Pivot<'_>, s: &mut Session) -> Result<(), Refused> {
    p.choice = Some(match v.get_str("type") {
        Some("auto") => Choice::Auto,
        Some("any") => Choice::Required,
        Some("none") => Choice::None,
        Some("tool") => match v.get_str("name") {
            Some(n) => Choice::Named(s.tools.add(None, n)),
            None => {
                return Err(Refused::new(
                    "tool_choice.name",
                    "A tool choice of type tool needs a name.",
                ))
            }
        },
        _ => {
            return Err(Refused::new(
                "tool_choice.type",
                "Unknown tool_choice type.",
            ))
        }
    });
    if v.get_bool("disable_parallel_tool_use") == Some(true) {
        p.parallel = Some(false);
    }
    Ok(())
}

fn messages<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    let Some(list) = v.as_array() else {
        return Err(Refused::new("messages", "`messages` must be an array."));
    };
    for (i, m) in list.iter().enumerate() {
        let role = match m.get_str("role") {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system") => {
                system(m.get("content").unwrap_or(&NULL), p, s)?;
                continue;
            }
            _ => {
                return Err(Refused::new(
                    format!("messages[{i}].role"),
                    "Messages take user and assistant turns.",
                ))
            }
        };
        let Some(c) = m.get("content") else { continue };
        if let Some(t) = c.as_str() {
            p.push(role, Part::Text(t));
            continue;
        }
        let Some(blocks) = c.as_array() else { continue };
        for (j, b) in blocks.iter().enumerate() {
            if let Some(part) = block(b, s, i, j, false)? {
                p.push(role, part);
            }
        }
    }
    Ok(())
}

static NULL: Value<'static> = Value::Static(simd_json::StaticNode::Null);

/// One content block; `None` when it is dropped. `nested`: inside a `tool_result`.
fn block<'v>(
    b: &'v Value<'v>,
    s: &mut Session,
    i: usize,
    j: usize,
    nested: bool,
) -> Result<Option<Part<'v>>, Refused> {
    if b.get("cache_control").is_some() {
        drop_named(&mut s.dropped, "cache_control");
    }
    let field = || format!("messages[{i}].content[{j}]");
    let ty = b.get_str("type").unwrap_or("");
    Ok(Some(match ty {
        "text" => Part::Text(b.get_str("text").unwrap_or("")),
        "image" => {
            let src = b.get("source");
            match src.and_then(|s| s.get_str("type")) {
                Some("base64") => Part::Image(Image::Base64 {
                    media_type: src
                        .and_then(|s| s.get_str("media_type"))
                        .unwrap_or("image/png"),
                    data: src.and_then(|s| s.get_str("data")).unwrap_or(""),
                }),
                Some("url") => {
                    Part::Image(Image::Url(src.and_then(|s| s.get_str("url")).unwrap_or("")))
                }
                _ => {
                    return Err(Refused::new(
                        field() + ".source.type",
                        "Only base64 and url image sources translate.",
                    ))
                }
            }
        }
        "document" => {
            let src = b.get("source");
            match src.and_then(|s| s.get_str("type")) {
                Some("base64") => Part::File {
                    media_type: src
                        .and_then(|s| s.get_str("media_type"))
                        .unwrap_or("application/pdf"),
                    data: src.and_then(|s| s.get_str("data")).unwrap_or(""),
                    filename: b.get_str("title"),
                },
                Some("text") => Part::Text(src.and_then(|s| s.get_str("data")).unwrap_or("")),
                _ => {
                    return Err(Refused::new(
                        field() + ".source.type",
                        "Only base64 and text document sources translate.",
                    ))
                }
            }
        }
        "tool_use" if !nested => Part::Call {
            id: b.get_str("id").unwrap_or(""),
            name: s.tools.add(None, b.get_str("name").unwrap_or("")),
            args: match b.get("input") {
                Some(input) => Args::Value(input),
                None => Args::Text(""),
            },
        },
        "tool_result" if !nested => {
            let mut content = Vec::new();
            if let Some(c) = b.get("content") {
                if let Some(t) = c.as_str() {
                    content.push(Part::Text(t));
                } else if let Some(list) = c.as_array() {
                    for inner in list {
                        if let Some(part) = block(inner, s, i, j, true)? {
                            content.push(part);
                        }
                    }
                }
            }
            Part::Result {
                id: b.get_str("tool_use_id").unwrap_or(""),
                content,
                is_error: b.get_bool("is_error").unwrap_or(false),
            }
        }
        "thinking" if !nested => Part::Thinking {
            text: b.get_str("thinking").unwrap_or("").into(),
            signature: b.get_str("signature").unwrap_or(""),
        },
        "redacted_thinking" if !nested => Part::Redacted(b.get_str("data").unwrap_or("")),
        "server_tool_use"
        | "web_search_tool_result"
        | "web_fetch_tool_result"
        | "code_execution_tool_result"
        | "bash_code_execution_tool_result"
        | "text_editor_code_execution_tool_result"
        | "mcp_tool_use"
        | "mcp_tool_result"
        | "container_upload" => {
            // The server tool ran at Anthropic; the chat model can neither see nor redo it.
            drop_named(&mut s.dropped, "content[].server_tool_use");
            return Ok(None);
        }
        _ => {
            return Err(Refused::new(
                field() + ".type",
                "Unknown content block type.",
            ))
        }
    }))
}
