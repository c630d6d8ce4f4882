//! OpenAI Responses requests read into the pivot, for chat and messages providers alike.
//!
//! Follows the Responses reference: `instructions`, `input` (a string or items: messages
//! with or without `type`, `function_call`, `function_call_output`, `reasoning`), flat
//! function tools and Codex's `namespace` tools (each function a tool of its own, named
//! through `ToolNames` so a call maps back to its namespace), `reasoning`, `text.format`.
//! The state store is a later stage: `previous_response_id` and `conversation` are refused.
//! Also builds [`Session::echo`], the request members the Response object repeats.

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

use super::from_chat::image;
use super::json;
use super::pivot::{
    parse_data_url, Args, Choice, Effort, Format, Part, Pivot, Reasoning, Role, Tool,
};
use super::{drop_named, Refused};
use crate::translate::{Api, Session};

/// The members the Response object echoes, as the client sent them.
#[derive(Default)]
struct Echo<'v> {
    instructions: Option<&'v Value<'v>>,
    max_output_tokens: Option<&'v Value<'v>>,
    temperature: Option<&'v Value<'v>>,
    top_p: Option<&'v Value<'v>>,
    parallel_tool_calls: Option<&'v Value<'v>>,
    tool_choice: Option<&'v Value<'v>>,
    tools: Option<&'v Value<'v>>,
    store: Option<&'v Value<'v>>,
    metadata: Option<&'v Value<'v>>,
    reasoning: Option<&'v Value<'v>>,
    text: Option<&'v Value<'v>>,
    truncation: Option<&'v Value<'v>>,
}

/// Reads a Responses body for `upstream`.
pub fn parse<'v>(
    root: &'v Value<'v>,
    upstream: Api,
    s: &mut Session,
) -> Result<Pivot<'v>, Refused> {
    let mut p = Pivot::new();
    let Some(obj) = root.as_object() else {
        return Err(Refused::new(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let to_chat = upstream == Api::Chat;
    let mut e = Echo::default();
    let mut input = None;
    let mut user = None;
    let mut safety_id = None;
    for (key, v) in obj.iter() {
        match key.as_ref() {
            "model" => {}
            "input" => input = Some(v),
            "instructions" => {
                e.instructions = Some(v);
                if let Some(t) = v.as_str() {
                    // Instructions come before any system text of the input.
                    p.system.insert(0, t);
                }
            }
            "max_output_tokens" => {
                e.max_output_tokens = Some(v);
                p.max_tokens = v.as_u64();
            }
            "temperature" => {
                e.temperature = Some(v);
                p.temperature = v.cast_f64();
            }
            "top_p" => {
                e.top_p = Some(v);
                p.top_p = v.cast_f64();
            }
            "stream" => p.stream = v.as_bool().unwrap_or(false),
            "tools" => {
                e.tools = Some(v);
                tools(v, &mut p, s)?;
            }
            "tool_choice" => {
                e.tool_choice = Some(v);
                p.choice = tool_choice(v, s)?;
            }
            "parallel_tool_calls" => {
                e.parallel_tool_calls = Some(v);
                p.parallel = v.as_bool();
            }
            "reasoning" => {
                e.reasoning = Some(v);
                if let Some(effort) = v.get_str("effort").and_then(Effort::parse) {
                    p.reasoning = Reasoning::Effort(effort);
                }
                if v.get("summary").is_some_and(|x| !x.is_null()) || v.get("generate_summary").is_some_and(|x| !x.is_null()) {
                    drop_named(&mut s.dropped, "reasoning.summary");
                }
            }
            "text" => {
                e.text = Some(v);
                text(v, &mut p, s, to_chat)?;
            }
            "store" => {
                e.store = Some(v);
                drop_named(&mut s.dropped, "store");
            }
            "metadata" => {
                e.metadata = Some(v);
                if v.as_object().is_some_and(|o| !o.is_empty()) {
                    drop_named(&mut s.dropped, "metadata");
                }
            }
            "truncation" => {
                e.truncation = Some(v);
                if v.as_str() == Some("auto") {
                    drop_named(&mut s.dropped, "truncation");
                }
            }
            "user" => user = v.as_str(),
            "safety_identifier" => safety_id = v.as_str(),
            "prompt_cache_key" | "service_tier" | "prompt_cache_retention" if to_chat && !v.is_null() => {
                let k = match key.as_ref() {
                    "prompt_cache_key" => "prompt_cache_key",
                    "service_tier" => "service_tier",
                    _ => "prompt_cache_retention",
                };
                p.chat_only.push((k, v));
            }
            "previous_response_id" if !v.is_null() => {
                return Err(Refused::new(
                    "previous_response_id",
                    "previous_response_id is not available for this model yet: send the whole conversation in `input`.",
                ))
            }
            "conversation" if !v.is_null() => {
                return Err(Refused::new("conversation", "Conversations are not available for this model: send the whole conversation in `input`."))
            }
            "background" if v.as_bool() == Some(true) => {
                return Err(Refused::new("background", "Background responses are not available for this model."))
            }
            "prompt" if !v.is_null() => {
                return Err(Refused::new("prompt", "Stored prompt templates are not available for this model."))
            }
            "top_logprobs" if v.as_u64().is_some_and(|n| n > 0) => {
                return Err(Refused::new("top_logprobs", "Log probabilities are not available for this model."))
            }
            "previous_response_id" | "conversation" | "background" | "prompt" | "top_logprobs" => {}
            other => drop_named(
                &mut s.dropped,
                match other {
                    "include" => "include",
                    "prompt_cache_key" => "prompt_cache_key",
                    "prompt_cache_retention" => "prompt_cache_retention",
                    "service_tier" => "service_tier",
                    "max_tool_calls" => "max_tool_calls",
                    "stream_options" => "stream_options",
                    "client_metadata" => "client_metadata",
                    _ => "unknown fields",
                },
            ),
        }
    }
    match input {
        Some(v) => items(v, &mut p, s)?,
        None => {
            return Err(Refused::new(
                "input",
                "Missing required parameter: 'input'.",
            ))
        }
    }
    if to_chat {
        // Chat completions takes both as they are.
        p.user = user;
        if let Some(v) = obj.get("safety_identifier").filter(|_| safety_id.is_some()) {
            p.chat_only.push(("safety_identifier", v));
        }
    } else {
        p.user = safety_id.or(user);
    }
    s.echo = echo(&e);
    Ok(p)
}

/// `text`: `format` (structured output) and `verbosity`.
fn text<'v>(
    v: &'v Value<'v>,
    p: &mut Pivot<'v>,
    s: &mut Session,
    to_chat: bool,
) -> Result<(), Refused> {
    if let Some(f) = v.get("format") {
        p.format = match f.get_str("type") {
            None | Some("text") => None,
            Some("json_object") => Some(Format::JsonObject),
            Some("json_schema") => match f.get("schema") {
                Some(schema) => Some(Format::JsonSchema {
                    name: f.get_str("name"),
                    schema,
                    strict: f.get_bool("strict"),
                }),
                None => {
                    return Err(Refused::new(
                        "text.format.schema",
                        "A json_schema format needs its schema.",
                    ))
                }
            },
            Some(_) => {
                return Err(Refused::new(
                    "text.format.type",
                    "Unknown text format type.",
                ))
            }
        };
    }
    if let Some(verbosity) = v.get("verbosity").filter(|x| !x.is_null()) {
        if to_chat {
            p.chat_only.push(("verbosity", verbosity));
        } else {
            drop_named(&mut s.dropped, "text.verbosity");
        }
    }
    Ok(())
}

/// `tools`: flat function tools, `namespace` groups of them; hosted tools are dropped.
fn tools<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    let Some(list) = v.as_array() else {
        return Ok(());
    };
    for (i, t) in list.iter().enumerate() {
        match t.get_str("type") {
            Some("function") => function(t, None, p, s, || format!("tools[{i}].name"))?,
            Some("namespace") => {
                let ns = t.get_str("name");
                for (j, f) in t
                    .get("tools")
                    .and_then(|x| x.as_array())
                    .map(|a| a.as_slice())
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                {
                    match f.get_str("type") {
                        Some("function") | None => {
                            function(f, ns, p, s, || format!("tools[{i}].tools[{j}].name"))?
                        }
                        Some(other) => drop_named(&mut s.dropped, hosted(other)),
                    }
                }
            }
            Some(other) => drop_named(&mut s.dropped, hosted(other)),
            None => {
                return Err(Refused::new(
                    format!("tools[{i}].type"),
                    "A tool needs a type.",
                ))
            }
        }
    }
    Ok(())
}

fn function<'v>(
    t: &'v Value<'v>,
    ns: Option<&str>,
    p: &mut Pivot<'v>,
    s: &mut Session,
    field: impl Fn() -> String,
) -> Result<(), Refused> {
    let Some(name) = t.get_str("name") else {
        return Err(Refused::new(field(), "A function tool needs a name."));
    };
    p.tools.push(Tool {
        name: s.tools.add(ns, name),
        description: t.get_str("description"),
        schema: t.get("parameters"),
        strict: t.get_bool("strict"),
    });
    Ok(())
}

/// The static name of a hosted (or freeform) Responses tool.
fn hosted(ty: &str) -> &'static str {
    match ty {
        "web_search" | "web_search_2025_08_26" => "tools[web_search]",
        "web_search_preview" | "web_search_preview_2025_03_11" => "tools[web_search_preview]",
        "file_search" => "tools[file_search]",
        "code_interpreter" => "tools[code_interpreter]",
        "image_generation" => "tools[image_generation]",
        "local_shell" => "tools[local_shell]",
        "shell" => "tools[shell]",
        "apply_patch" => "tools[apply_patch]",
        "computer_use_preview" | "computer_use" => "tools[computer_use]",
        "mcp" => "tools[mcp]",
        "custom" => "tools[custom]",
        "tool_search" => "tools[tool_search]",
        _ => "tools[hosted]",
    }
}

/// `tool_choice`: `auto`, `none`, `required`, `{type: function, name}`.
fn tool_choice(v: &Value<'_>, s: &mut Session) -> Result<Option<Choice>, Refused> {
    if let Some(w) = v.as_str() {
        return Ok(match w {
            "auto" => Some(Choice::Auto),
            "none" => Some(Choice::None),
            "required" => Some(Choice::Required),
            _ => return Err(Refused::new("tool_choice", "Unknown tool_choice.")),
        });
    }
    match (v.get_str("type"), v.get_str("name")) {
        (Some("function"), Some(name)) => Ok(Some(Choice::Named(
            s.tools.add(v.get_str("namespace"), name),
        ))),
        _ => Err(Refused::new(
            "tool_choice",
            "Only auto, none, required and a named function translate for this model.",
        )),
    }
}

/// `input`: a string (one user message) or items.
fn items<'v>(v: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) -> Result<(), Refused> {
    if let Some(t) = v.as_str() {
        p.push(Role::User, Part::Text(t));
        return Ok(());
    }
    let Some(list) = v.as_array() else {
        return Err(Refused::new(
            "input",
            "`input` must be a string or an array of items.",
        ));
    };
    for (i, item) in list.iter().enumerate() {
        let ty = item.get_str("type");
        match ty {
            Some("message") | None => message(item, p, i)?,
            Some("function_call") => {
                let Some(name) = item.get_str("name") else {
                    return Err(Refused::new(
                        format!("input[{i}].name"),
                        "A function call needs a name.",
                    ));
                };
                p.push(
                    Role::Assistant,
                    Part::Call {
                        id: item.get_str("call_id").unwrap_or(""),
                        name: s.tools.add(item.get_str("namespace"), name),
                        args: Args::Text(item.get_str("arguments").unwrap_or("")),
                    },
                );
            }
            Some("function_call_output") => {
                let mut content = Vec::new();
                if let Some(o) = item.get("output") {
                    if let Some(t) = o.as_str() {
                        content.push(Part::Text(t));
                    } else if let Some(parts) = o.as_array() {
                        for (j, part) in parts.iter().enumerate() {
                            content.push(input_part(part, || format!("input[{i}].output[{j}]"))?);
                        }
                    }
                }
                p.push(
                    Role::User,
                    Part::Result {
                        id: item.get_str("call_id").unwrap_or(""),
                        content,
                        is_error: false,
                    },
                );
            }
            Some("reasoning") => reasoning(item, p, s),
            Some("item_reference") => {
                return Err(Refused::new(
                    format!("input[{i}].type"),
                    "Item references need the response store, not available for this model yet.",
                ))
            }
            Some(
                "web_search_call"
                | "file_search_call"
                | "image_generation_call"
                | "code_interpreter_call",
            ) => drop_named(&mut s.dropped, "input[].hosted_tool_call"),
            Some(
                "custom_tool_call"
                | "custom_tool_call_output"
                | "local_shell_call"
                | "local_shell_call_output"
                | "shell_call"
                | "shell_call_output"
                | "apply_patch_call"
                | "apply_patch_call_output",
            ) => drop_named(&mut s.dropped, "input[].custom_tool_call"),
            Some(_) => {
                return Err(Refused::new(
                    format!("input[{i}].type"),
                    "Unknown input item type.",
                ))
            }
        }
    }
    Ok(())
}

/// A message item: `system`/`developer` text joins the system prompt.
fn message<'v>(item: &'v Value<'v>, p: &mut Pivot<'v>, i: usize) -> Result<(), Refused> {
    let role = match item.get_str("role") {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("system" | "developer") => {
            let c = item.get("content");
            if let Some(t) = c.and_then(|c| c.as_str()) {
                p.system.push(t);
            } else if let Some(parts) = c.and_then(|c| c.as_array()) {
                for (j, part) in parts.iter().enumerate() {
                    match (part.get_str("type"), part.get_str("text")) {
                        (Some("input_text" | "text"), Some(t)) => p.system.push(t),
                        _ => {
                            return Err(Refused::new(
                                format!("input[{i}].content[{j}].type"),
                                "System and developer messages take text only.",
                            ))
                        }
                    }
                }
            }
            return Ok(());
        }
        _ => {
            return Err(Refused::new(
                format!("input[{i}].role"),
                "Unknown message role.",
            ))
        }
    };
    let Some(c) = item.get("content") else {
        return Ok(());
    };
    if let Some(t) = c.as_str() {
        p.push(role, Part::Text(t));
        return Ok(());
    }
    for (j, part) in c
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let field = || format!("input[{i}].content[{j}]");
        let part = match part.get_str("type") {
            Some("output_text") => Part::Text(part.get_str("text").unwrap_or("")),
            Some("refusal") => Part::Text(part.get_str("refusal").unwrap_or("")),
            _ => input_part(part, field)?,
        };
        p.push(role, part);
    }
    Ok(())
}

/// An input content part: `input_text`, `input_image`, `input_file` (inline PDFs).
fn input_part<'v>(part: &'v Value<'v>, field: impl Fn() -> String) -> Result<Part<'v>, Refused> {
    match part.get_str("type") {
        Some("input_text" | "text" | "output_text") => Ok(Part::Text(part.get_str("text").unwrap_or(""))),
        Some("input_image") => match part.get_str("image_url").and_then(image) {
            Some(img) => Ok(img),
            None => Err(Refused::new(
                field() + ".image_url",
                "Images must be http(s) URLs or base64 data: URLs (file ids do not translate).",
            )),
        },
        Some("input_file") => match part.get_str("file_data").and_then(parse_data_url) {
            Some((media_type, data)) => Ok(Part::File { media_type, data, filename: part.get_str("filename") }),
            None => Err(Refused::new(
                field() + ".file_data",
                "Only inline files (file_data as a base64 data: URL) translate; file ids and URLs do not.",
            )),
        },
        Some("input_audio") => Err(Refused::new(field() + ".type", "Audio input does not translate.")),
        _ => Err(Refused::new(field() + ".type", "Unknown content part type.")),
    }
}

/// A `reasoning` item: its summaries and `encrypted_content` replay as an Anthropic thinking
/// block (the encrypted content is the signature a translated answer put there). Without
/// encrypted content there is nothing Anthropic accepts back.
fn reasoning<'v>(item: &'v Value<'v>, p: &mut Pivot<'v>, s: &mut Session) {
    // OpenAI's own encrypted reasoning is a Fernet token (`gAAAAA...`): Anthropic would refuse
    // it as a signature, so it is dropped like reasoning without one.
    let Some(signature) = item
        .get_str("encrypted_content")
        .filter(|e| !e.starts_with("gAAAA"))
    else {
        drop_named(&mut s.dropped, "input[].reasoning");
        return;
    };
    let mut text: Cow<'v, str> = Cow::Borrowed("");
    for part in item
        .get("summary")
        .and_then(|x| x.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[])
    {
        let Some(t) = part.get_str("text") else {
            continue;
        };
        if text.is_empty() {
            text = Cow::Borrowed(t);
        } else {
            let joined = text.to_mut();
            joined.push_str("\n\n");
            joined.push_str(t);
        }
    }
    p.push(Role::Assistant, Part::Thinking { text, signature });
}

/// The echo members, with the Response object's defaults for what the client left out.
fn echo(e: &Echo<'_>) -> String {
    let mut out = Vec::with_capacity(256);
    let members: [(&str, Option<&Value<'_>>, &str); 12] = [
        ("instructions", e.instructions, "null"),
        ("max_output_tokens", e.max_output_tokens, "null"),
        ("temperature", e.temperature, "1.0"),
        ("top_p", e.top_p, "1.0"),
        ("parallel_tool_calls", e.parallel_tool_calls, "true"),
        ("tool_choice", e.tool_choice, "\"auto\""),
        ("tools", e.tools, "[]"),
        ("store", e.store, "true"),
        ("metadata", e.metadata, "{}"),
        (
            "reasoning",
            e.reasoning,
            "{\"effort\":null,\"summary\":null}",
        ),
        ("text", e.text, "{\"format\":{\"type\":\"text\"}}"),
        ("truncation", e.truncation, "\"disabled\""),
    ];
    for (i, (name, v, default)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(&mut out, name);
        out.push(b':');
        match v {
            Some(v) if !v.is_null() || *default == "null" => json::value(&mut out, v),
            _ => out.extend_from_slice(default.as_bytes()),
        }
    }
    String::from_utf8(out).unwrap_or_default()
}
