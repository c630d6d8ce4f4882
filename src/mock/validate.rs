//! Request checks as strict as the providers' own, so a malformed request (a translation bug
//! upstream of the mock) gets the 400 the real API would give instead of a plausible answer.
//!
//! Anthropic Messages (API reference, "Messages"): roles `user`/`assistant` only; `system` a
//! string or text blocks; content a string or blocks of known types with their required fields;
//! each `tool_result` answers a `tool_use` of the assistant turn right before it, and every
//! `tool_use` followed by a turn is answered in it; tool names `^[a-zA-Z0-9_-]{1,64}$` with an
//! object `input_schema`; `thinking.budget_tokens` at least 1024 and below `max_tokens`;
//! `temperature` in 0..=1; `tool_choice` of type auto/any/tool/none.
//!
//! OpenAI Chat Completions (API reference, "Create chat completion"): roles
//! system/developer/user/assistant/tool with the content part types each allows; each `tool`
//! message answers a `tool_calls` id of the assistant message it follows, and every call is
//! answered before the next other message; `function.arguments` a string; tool names as above;
//! not both `max_tokens` and `max_completion_tokens`.
//!
//! OpenAI Responses (API reference, "Create a model response"): input items of known types,
//! message roles user/assistant/system/developer, `function_call` and `function_call_output`
//! with their fields, and (without `previous_response_id`) each output's `call_id` answering a
//! `function_call` earlier in `input`.
//!
//! Errors name the field by its path (`messages.2.content.0.tool_use_id` for Anthropic,
//! `messages[2].tool_call_id` for OpenAI, which also puts it in `param`). Runs once per request
//! before the reply is built; never on a stream's path.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::Endpoint;

/// Longest tool name both providers accept (`^[a-zA-Z0-9_-]{1,64}$`).
pub(crate) const MAX_TOOL_NAME: usize = 64;
/// Smallest `thinking.budget_tokens` Anthropic accepts.
pub(crate) const MIN_THINKING_BUDGET: u64 = 1024;

/// Where in the request the offending field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// A top-level field.
    Root,
    /// `system[j]` (Anthropic).
    System(u32),
    /// `messages[i]`.
    Message(u32),
    /// `messages[i].content[j]`.
    Block(u32, u32),
    /// `messages[i].tool_calls[j]` (chat).
    ToolCall(u32, u32),
    /// `tools[i]`.
    Tool(u32),
    /// `input[i]` (Responses).
    Item(u32),
}

/// A broken rule: where, which field, and what the provider says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The object holding the field.
    pub at: At,
    /// The field (empty: the object itself).
    pub field: &'static str,
    /// What is wrong.
    pub text: &'static str,
}

impl Invalid {
    /// The field's path in the provider's notation.
    pub(crate) fn path(&self, endpoint: Endpoint) -> String {
        let anthropic = matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens);
        let mut p = match (self.at, anthropic) {
            (At::Root, _) => String::new(),
            (At::System(j), _) => format!("system.{j}"),
            (At::Message(i), true) => format!("messages.{i}"),
            (At::Message(i), false) => format!("messages[{i}]"),
            (At::Block(i, j), true) => format!("messages.{i}.content.{j}"),
            (At::Block(i, j), false) => format!("messages[{i}].content[{j}]"),
            (At::ToolCall(i, j), _) => format!("messages[{i}].tool_calls[{j}]"),
            (At::Tool(i), true) => format!("tools.{i}"),
            (At::Tool(i), false) => format!("tools[{i}]"),
            (At::Item(i), _) => format!("input[{i}]"),
        };
        if !self.field.is_empty() {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(self.field);
        }
        p
    }

    /// `path: text`.
    pub(crate) fn message(&self, endpoint: Endpoint) -> String {
        let mut m = self.path(endpoint);
        m.push_str(": ");
        m.push_str(self.text);
        m
    }
}

fn bad<T>(at: At, field: &'static str, text: &'static str) -> Result<T, Invalid> {
    Err(Invalid { at, field, text })
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn tool_name_ok(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const NAME_PATTERN: &str = "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'";

fn items<'v, 'a>(v: Option<&'v BorrowedValue<'a>>) -> &'v [BorrowedValue<'a>] {
    v.and_then(|v| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Anthropic server-tool and result blocks the mock accepts without checking their fields.
const ANTHROPIC_OTHER_BLOCKS: [&str; 10] = [
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "search_result",
];

/// Checks an Anthropic Messages or count_tokens request; `max_tokens` is `None` for
/// count_tokens (which has none).
pub(crate) fn anthropic(root: &BorrowedValue<'_>, max_tokens: Option<u64>) -> Result<(), Invalid> {
    if let Some(system) = root.get("system") {
        if system.as_str().is_none() {
            let Some(blocks) = system.as_array() else {
                return bad(
                    At::Root,
                    "system",
                    "Input should be a valid string or a list of text blocks",
                );
            };
            for (j, b) in blocks.iter().enumerate() {
                if b.get_str("type") != Some("text") || b.get_str("text").is_none() {
                    return bad(
                        At::System(idx(j)),
                        "",
                        "Input should be a text block ({\"type\":\"text\",\"text\":...})",
                    );
                }
            }
        }
    }

    let messages = items(root.get("messages"));
    // Ids of the tool_use blocks of the previous message (when it is an assistant turn).
    let mut prev_uses: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let i32_ = idx(i);
        let role = match m.get_str("role") {
            Some(r @ ("user" | "assistant")) => r,
            _ => {
                return bad(
                    At::Message(i32_),
                    "role",
                    "Input should be 'user' or 'assistant'",
                )
            }
        };
        let Some(content) = m.get("content") else {
            return bad(At::Message(i32_), "content", "Field required");
        };
        let mut uses: Vec<&str> = Vec::new();
        let mut answered: Vec<&str> = Vec::new();
        if content.as_str().is_none() {
            let Some(blocks) = content.as_array() else {
                return bad(
                    At::Message(i32_),
                    "content",
                    "Input should be a valid string or a list of content blocks",
                );
            };
            for (j, b) in blocks.iter().enumerate() {
                let at = At::Block(i32_, idx(j));
                anthropic_block(b, role, at, &prev_uses, &mut uses, &mut answered)?;
            }
        }
        if prev_uses.iter().any(|id| !answered.contains(id)) {
            return bad(
                At::Message(i32_),
                "",
                "`tool_use` ids were found without `tool_result` blocks immediately after. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            );
        }
        prev_uses = uses;
    }

    for (i, t) in items(root.get("tools")).iter().enumerate() {
        let at = At::Tool(idx(i));
        if !matches!(t.get_str("type"), None | Some("custom")) {
            // A server tool (web search, code execution, …): its own schema, not checked here.
            continue;
        }
        match t.get_str("name") {
            Some(n) if tool_name_ok(n) => {}
            Some(_) => return bad(at, "name", NAME_PATTERN),
            None => return bad(at, "name", "Field required"),
        }
        if t.get("input_schema").and_then(|s| s.as_object()).is_none() {
            return bad(at, "input_schema", "Input should be a valid dictionary");
        }
    }

    if let Some(thinking) = root.get("thinking") {
        match thinking.get_str("type") {
            Some("enabled") => {
                let Some(budget) = thinking.get_u64("budget_tokens") else {
                    return bad(At::Root, "thinking.enabled.budget_tokens", "Field required");
                };
                if budget < MIN_THINKING_BUDGET {
                    return bad(
                        At::Root,
                        "thinking.enabled.budget_tokens",
                        "Input should be greater than or equal to 1024",
                    );
                }
                if max_tokens.is_some_and(|m| m <= budget) {
                    return bad(
                        At::Root,
                        "max_tokens",
                        "`max_tokens` must be greater than `thinking.budget_tokens`.",
                    );
                }
            }
            Some("disabled" | "adaptive") => {}
            _ => {
                return bad(
                    At::Root,
                    "thinking.type",
                    "Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'",
                )
            }
        }
    }

    if let Some(t) = root.get("temperature") {
        match t.cast_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => {}
            Some(_) => {
                return bad(
                    At::Root,
                    "temperature",
                    "Input should be greater than or equal to 0 and less than or equal to 1",
                )
            }
            None => return bad(At::Root, "temperature", "Input should be a valid number"),
        }
    }

    if let Some(choice) = root.get("tool_choice") {
        match choice.get_str("type") {
            Some("auto" | "any" | "none") => {}
            Some("tool") if choice.get_str("name").is_some() => {}
            Some("tool") => return bad(At::Root, "tool_choice.tool.name", "Field required"),
            _ => return bad(
                At::Root,
                "tool_choice",
                "Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
            ),
        }
    }
    Ok(())
}

/// One Anthropic content block of a `role` turn. Collects the turn's `tool_use` ids and the
/// `tool_result` ids it answers.
fn anthropic_block<'v>(
    b: &'v BorrowedValue<'_>,
    role: &str,
    at: At,
    prev_uses: &[&str],
    uses: &mut Vec<&'v str>,
    answered: &mut Vec<&'v str>,
) -> Result<(), Invalid> {
    let assistant = role == "assistant";
    match b.get_str("type") {
        Some("text") => {
            if b.get_str("text").is_none() {
                return bad(at, "text", "Field required");
            }
        }
        Some("image") => {
            let Some(source) = b.get("source") else {
                return bad(at, "source", "Field required");
            };
            let ok = match source.get_str("type") {
                Some("base64") => {
                    source.get_str("media_type").is_some() && source.get_str("data").is_some()
                }
                Some("url") => source.get_str("url").is_some(),
                Some("file") => source.get_str("file_id").is_some(),
                _ => false,
            };
            if !ok {
                return bad(
                    at,
                    "source",
                    "Input should be {\"type\":\"base64\",\"media_type\",\"data\"}, {\"type\":\"url\",\"url\"} or {\"type\":\"file\",\"file_id\"}",
                );
            }
        }
        Some("document") => {
            if b.get("source").and_then(|s| s.as_object()).is_none() {
                return bad(at, "source", "Field required");
            }
        }
        Some("tool_use") => {
            if !assistant {
                return bad(at, "type", "`tool_use` blocks are only allowed in `assistant` messages");
            }
            let Some(id) = b.get_str("id") else {
                return bad(at, "id", "Field required");
            };
            if b.get_str("name").is_none() {
                return bad(at, "name", "Field required");
            }
            if b.get("input").and_then(|i| i.as_object()).is_none() {
                return bad(at, "input", "Input should be a valid dictionary");
            }
            uses.push(id);
        }
        Some("tool_result") => {
            if assistant {
                return bad(at, "type", "`tool_result` blocks are only allowed in `user` messages");
            }
            let Some(id) = b.get_str("tool_use_id") else {
                return bad(at, "tool_use_id", "Field required");
            };
            if !prev_uses.contains(&id) {
                return bad(
                    at,
                    "tool_use_id",
                    "unexpected `tool_use_id` found in `tool_result` blocks. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
                );
            }
            if let Some(c) = b.get("content") {
                if c.as_str().is_none() && c.as_array().is_none() {
                    return bad(at, "content", "Input should be a valid string or a list of content blocks");
                }
            }
            answered.push(id);
        }
        Some("thinking") => {
            if !assistant {
                return bad(at, "type", "`thinking` blocks are only allowed in `assistant` messages");
            }
            if b.get_str("thinking").is_none() {
                return bad(at, "thinking", "Field required");
            }
            if b.get_str("signature").is_none() {
                return bad(at, "signature", "Field required");
            }
        }
        Some("redacted_thinking") => {
            if b.get_str("data").is_none() {
                return bad(at, "data", "Field required");
            }
        }
        Some(t) if ANTHROPIC_OTHER_BLOCKS.contains(&t) => {}
        _ => {
            return bad(
                at,
                "type",
                "Input tag does not match any of the expected tags: 'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking', …",
            )
        }
    }
    Ok(())
}

/// Checks a chat completions request.
pub(crate) fn chat(root: &BorrowedValue<'_>) -> Result<(), Invalid> {
    if root.get("max_tokens").is_some() && root.get("max_completion_tokens").is_some() {
        return bad(
            At::Root,
            "max_tokens",
            "Cannot set both max_tokens and max_completion_tokens; use max_completion_tokens.",
        );
    }
    // Tool call ids of the assistant message the current run of `tool` messages answers.
    let mut pending: Vec<&str> = Vec::new();
    let mut after_calls = false;
    let messages = items(root.get("messages"));
    for (i, m) in messages.iter().enumerate() {
        let at = At::Message(idx(i));
        let role = m.get_str("role");
        if role != Some("tool") && !pending.is_empty() {
            return bad(
                at,
                "",
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.",
            );
        }
        let parts: &[&str] = match role {
            Some("system" | "developer") => &["text"],
            Some("user") => &["text", "image_url", "input_audio", "file"],
            Some("assistant") => &["text", "refusal"],
            Some("tool") => &["text"],
            _ => {
                return bad(
                    at,
                    "role",
                    "Invalid value. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.",
                )
            }
        };
        match m.get("content") {
            None => {
                if role != Some("assistant") {
                    return bad(at, "content", "Missing required parameter.");
                }
            }
            Some(c) if c.is_null() && role == Some("assistant") => {}
            Some(c) if c.as_str().is_some() => {}
            Some(c) => {
                let Some(list) = c.as_array() else {
                    return bad(
                        at,
                        "content",
                        "Invalid type: expected a string or an array of content parts.",
                    );
                };
                for (j, p) in list.iter().enumerate() {
                    let ok = p.get_str("type").is_some_and(|t| parts.contains(&t));
                    if !ok {
                        return bad(
                            At::Block(idx(i), idx(j)),
                            "type",
                            "Invalid value for this role. Supported content part types: 'text', 'image_url', 'input_audio' and 'file' (user), 'text' and 'refusal' (assistant), 'text' (others).",
                        );
                    }
                }
            }
        }
        match role {
            Some("assistant") => {
                let calls = items(m.get("tool_calls"));
                for (j, c) in calls.iter().enumerate() {
                    let at = At::ToolCall(idx(i), idx(j));
                    let Some(id) = c.get_str("id") else {
                        return bad(at, "id", "Missing required parameter.");
                    };
                    let f = c.get("function");
                    if f.and_then(|f| f.get_str("name")).is_none() {
                        return bad(at, "function.name", "Missing required parameter.");
                    }
                    if f.and_then(|f| f.get("arguments"))
                        .and_then(|a| a.as_str())
                        .is_none()
                    {
                        return bad(
                            at,
                            "function.arguments",
                            "Invalid type: expected a string (JSON-encoded arguments).",
                        );
                    }
                    pending.push(id);
                }
                after_calls = !calls.is_empty();
            }
            Some("tool") => {
                let Some(id) = m.get_str("tool_call_id") else {
                    return bad(at, "tool_call_id", "Missing required parameter.");
                };
                let Some(k) = pending
                    .iter()
                    .position(|p| *p == id)
                    .filter(|_| after_calls)
                else {
                    return bad(
                        at,
                        "role",
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    );
                };
                pending.swap_remove(k);
            }
            _ => after_calls = false,
        }
    }
    if !pending.is_empty() {
        return bad(
            At::Root,
            "messages",
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.",
        );
    }

    for (i, t) in items(root.get("tools")).iter().enumerate() {
        let at = At::Tool(idx(i));
        let (field, name) = match t.get_str("type") {
            Some("function") => (
                "function.name",
                t.get("function").and_then(|f| f.get_str("name")),
            ),
            Some("custom") => (
                "custom.name",
                t.get("custom").and_then(|f| f.get_str("name")),
            ),
            _ => {
                return bad(
                    at,
                    "type",
                    "Invalid value. Supported values are: 'function' and 'custom'.",
                )
            }
        };
        match name {
            Some(n) if tool_name_ok(n) => {}
            Some(_) => return bad(at, field, NAME_PATTERN),
            None => return bad(at, field, "Missing required parameter."),
        }
    }
    Ok(())
}

/// Responses input item types the mock accepts.
const RESPONSES_ITEMS: [&str; 20] = [
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "item_reference",
    "file_search_call",
    "web_search_call",
    "computer_call",
    "computer_call_output",
    "image_generation_call",
    "code_interpreter_call",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
    "compaction",
];

/// Checks a Responses request (`input` is known to be a string or an array).
pub(crate) fn responses(root: &BorrowedValue<'_>) -> Result<(), Invalid> {
    let chained = root.get_str("previous_response_id").is_some();
    let mut calls: Vec<&str> = Vec::new();
    for (i, item) in items(root.get("input")).iter().enumerate() {
        let at = At::Item(idx(i));
        let kind = match item.get_str("type") {
            Some(t) => t,
            None if item.get("role").is_some() => "message",
            None => return bad(at, "type", "Missing required parameter."),
        };
        if !RESPONSES_ITEMS.contains(&kind) {
            return bad(at, "type", "Invalid value: not a known input item type.");
        }
        match kind {
            "message" => {
                if !matches!(
                    item.get_str("role"),
                    Some("user" | "assistant" | "system" | "developer")
                ) {
                    return bad(
                        at,
                        "role",
                        "Invalid value. Supported values are: 'user', 'assistant', 'system' and 'developer'.",
                    );
                }
                match item.get("content") {
                    Some(c) if c.as_str().is_some() || c.as_array().is_some() => {}
                    _ => return bad(at, "content", "Missing required parameter."),
                }
            }
            "function_call" => {
                let Some(id) = item.get_str("call_id") else {
                    return bad(at, "call_id", "Missing required parameter.");
                };
                if item.get_str("name").is_none() {
                    return bad(at, "name", "Missing required parameter.");
                }
                if item.get_str("arguments").is_none() {
                    return bad(at, "arguments", "Invalid type: expected a string.");
                }
                calls.push(id);
            }
            "function_call_output" => {
                let Some(id) = item.get_str("call_id") else {
                    return bad(at, "call_id", "Missing required parameter.");
                };
                match item.get("output") {
                    Some(o) if o.as_str().is_some() || o.as_array().is_some() => {}
                    _ => return bad(at, "output", "Missing required parameter."),
                }
                if !chained && !calls.contains(&id) {
                    return bad(
                        at,
                        "call_id",
                        "No tool call found for function call output with this call_id.",
                    );
                }
            }
            _ => {}
        }
    }
    for (i, t) in items(root.get("tools")).iter().enumerate() {
        if t.get_str("type") != Some("function") {
            continue;
        }
        match t.get_str("name") {
            Some(n) if tool_name_ok(n) => {}
            Some(_) => return bad(At::Tool(idx(i)), "name", NAME_PATTERN),
            None => return bad(At::Tool(idx(i)), "name", "Missing required parameter."),
        }
    }
    Ok(())
}
