//! Reading what the mock needs out of a request body.
//!
//! The body is parsed with simd-json on a private copy (simd-json rewrites its input; the caller's
//! bytes are never touched). The fields that matter: `model`, `stream`, the output bound,
//! `stream_options.include_usage`, the message text (sizes `input_tokens` and seeds the reply),
//! the tools offered and `tool_choice`, what the last turn is (a user turn or tool results),
//! thinking / reasoning settings and prompt caching. The request is first checked as strictly as
//! the provider checks it (see `validate`); anything else in the body is ignored.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::tools::{self, Choice, Tool};
use super::validate::{self, Invalid};
use super::Endpoint;

/// Words of the last user message quoted back in the reply.
pub(crate) const ECHO_WORDS: usize = 8;
/// Longest quoted word, in bytes; keeps a pathological one-word prompt from bloating every reply.
pub(crate) const ECHO_WORD_MAX: usize = 64;
/// Prompt tokens an image counts for, whatever its size (the mock does not decode images).
pub const IMAGE_TOKENS: u64 = 1000;

/// Why a request was refused with 400. Each maps to the provider's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// The body is not JSON.
    Json,
    /// The body is JSON but not an object.
    NotObject,
    /// `model` is missing or not a string.
    Model,
    /// `messages` is missing, not an array, or empty.
    Messages,
    /// `input` is missing (Responses).
    Input,
    /// `max_tokens` is missing (Anthropic Messages requires it).
    MaxTokens,
    /// The method is not POST.
    Method,
    /// A field breaks one of the provider's rules (see `validate`).
    Invalid(Invalid),
}

impl BadRequest {
    /// The error message, in the wording of the provider behind `endpoint`.
    pub(crate) fn message(self, endpoint: Endpoint) -> String {
        let anthropic = matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens);
        let fixed = match (self, anthropic) {
            (BadRequest::Invalid(i), _) => return i.message(endpoint),
            (BadRequest::Json, false) => "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            (BadRequest::Json, true) => "There was an error parsing the body of your request as JSON.",
            (BadRequest::NotObject, false) => "Invalid type for request body: expected an object.",
            (BadRequest::NotObject, true) => "Input should be a valid dictionary",
            (BadRequest::Model, false) => "you must provide a model parameter",
            (BadRequest::Model, true) => "model: Field required",
            (BadRequest::Messages, false) => "Missing required parameter: 'messages'.",
            (BadRequest::Messages, true) => "messages: Field required",
            (BadRequest::Input, _) => "Missing required parameter: 'input'.",
            (BadRequest::MaxTokens, _) => "max_tokens: Field required",
            (BadRequest::Method, false) => "Only POST is supported on this endpoint.",
            (BadRequest::Method, true) => "Method not allowed: use POST.",
        };
        fixed.to_owned()
    }

    /// OpenAI's `param`: the offending field's path, when one is known.
    pub(crate) fn param(self, endpoint: Endpoint) -> Option<String> {
        match self {
            BadRequest::Invalid(i) => Some(i.path(endpoint)),
            _ => None,
        }
    }
}

impl From<Invalid> for BadRequest {
    fn from(i: Invalid) -> Self {
        BadRequest::Invalid(i)
    }
}

/// What the conversation's last turn is; decides between a tool call and a text answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A user turn with no tool results: tools offered are called.
    User,
    /// Tool results (chat `tool` messages, Anthropic `tool_result` blocks, Responses
    /// `function_call_output` items): the answer quotes the first one.
    ToolResult,
    /// Anything else (an assistant prefill, a trailing system message): a text answer.
    #[default]
    Other,
}

/// The fields of a request the mock acts on.
#[derive(Debug, Default)]
pub(crate) struct Request {
    /// `model`, echoed in the reply.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// The request's output bound: `max_completion_tokens`/`max_tokens` (chat),
    /// `max_tokens` (messages), `max_output_tokens` (responses).
    pub bound: Option<u64>,
    /// `stream_options.include_usage` (chat completions).
    pub include_usage: bool,
    /// Bytes of prompt text (messages, system, instructions, tool results); sizes `input_tokens`.
    pub input_bytes: usize,
    /// Images in the prompt, [`IMAGE_TOKENS`] each.
    pub images: u64,
    /// Up to [`ECHO_WORDS`] words of the last user message.
    pub echo: Vec<String>,
    /// The last user text mentions `parallel` (as a word, any case).
    pub parallel: bool,
    /// The last turn.
    pub turn: Turn,
    /// Up to [`ECHO_WORDS`] words of the first tool result of the last turn.
    pub tool_words: Vec<String>,
    /// The function tools offered, in order.
    pub tools: Vec<Tool>,
    /// `tool_choice`.
    pub choice: Choice,
    /// Parallel calls allowed (OpenAI `parallel_tool_calls`, Anthropic
    /// `tool_choice.disable_parallel_tool_use` negated).
    pub parallel_allowed: bool,
    /// Anthropic `thinking` enabled or adaptive; Responses `reasoning.effort`; chat
    /// `reasoning_effort`.
    pub thinking: bool,
    /// Responses `reasoning.effort`, echoed.
    pub effort: Option<String>,
    /// Responses `reasoning.summary`, echoed; a summary is produced when set.
    pub summary: Option<String>,
    /// Responses `include` has `reasoning.encrypted_content`.
    pub encrypted: bool,
    /// Anthropic: `cache_control` somewhere; OpenAI: `prompt_cache_key` set.
    pub cache: bool,
    /// `instructions` (responses), echoed in the Response object.
    pub instructions: Option<String>,
    /// `previous_response_id` (responses), echoed in the Response object.
    pub previous_response_id: Option<String>,
    /// `store` (responses), default true.
    pub store: bool,
}

impl Request {
    /// Estimated prompt tokens: one per four bytes of text, rounded up, plus
    /// [`IMAGE_TOKENS`] per image.
    pub(crate) fn input_tokens(&self) -> u64 {
        (self.input_bytes as u64)
            .div_ceil(4)
            .saturating_add(self.images.saturating_mul(IMAGE_TOKENS))
    }

    /// Prompt tokens served from the cache: half, rounded down, when the request asks for
    /// caching (see the module doc, "Usage").
    pub(crate) fn cached_tokens(&self) -> u64 {
        if self.cache {
            self.input_tokens() / 2
        } else {
            0
        }
    }
}

/// Parses the model name only, so the failure hooks can fire before full validation.
pub(crate) fn parse_model(root: &BorrowedValue<'_>) -> Result<String, BadRequest> {
    if root.as_object().is_none() {
        return Err(BadRequest::NotObject);
    }
    match root.get_str("model") {
        Some(m) => Ok(m.to_owned()),
        None => Err(BadRequest::Model),
    }
}

/// Parses a copy of `body` into a borrowed value tree; `scratch` owns the copy.
pub(crate) fn parse_json<'a>(
    scratch: &'a mut Vec<u8>,
    body: &[u8],
) -> Result<BorrowedValue<'a>, BadRequest> {
    scratch.clear();
    scratch.extend_from_slice(body);
    simd_json::to_borrowed_value(scratch).map_err(|_| BadRequest::Json)
}

/// Extracts the fields for `endpoint` and checks the request as that provider does.
pub(crate) fn parse_request(
    endpoint: Endpoint,
    root: &BorrowedValue<'_>,
    model: String,
) -> Result<Request, BadRequest> {
    let mut req = Request {
        model,
        stream: root.get_bool("stream").unwrap_or(false),
        store: root.get_bool("store").unwrap_or(true),
        parallel_allowed: true,
        ..Request::default()
    };
    match endpoint {
        Endpoint::ChatCompletions => {
            req.bound = root
                .get_u64("max_completion_tokens")
                .or_else(|| root.get_u64("max_tokens"));
            req.include_usage = root
                .get("stream_options")
                .and_then(|o| o.get_bool("include_usage"))
                .unwrap_or(false);
            messages(root)?;
            validate::chat(root)?;
            read_chat(root, &mut req);
            req.thinking = root
                .get_str("reasoning_effort")
                .is_some_and(|e| e != "none");
            req.cache = root.get_str("prompt_cache_key").is_some();
            req.parallel_allowed = root.get_bool("parallel_tool_calls").unwrap_or(true);
        }
        Endpoint::Messages | Endpoint::CountTokens => {
            messages(root)?;
            if endpoint == Endpoint::Messages {
                req.bound = Some(root.get_u64("max_tokens").ok_or(BadRequest::MaxTokens)?);
            }
            validate::anthropic(root, req.bound)?;
            if let Some(system) = root.get("system") {
                for_each_text(system, &mut |t| req.input_bytes += t.len());
            }
            read_anthropic(root, &mut req);
            req.thinking = root
                .get("thinking")
                .and_then(|t| t.get_str("type"))
                .is_some_and(|t| t == "enabled" || t == "adaptive");
            req.cache = has_key(root, "cache_control");
            if endpoint == Endpoint::CountTokens {
                req.stream = false;
            }
        }
        Endpoint::Responses => {
            req.bound = root.get_u64("max_output_tokens");
            let input = root.get("input").ok_or(BadRequest::Input)?;
            if input.as_str().is_none() && input.as_array().is_none() {
                return Err(BadRequest::Input);
            }
            validate::responses(root)?;
            if let Some(s) = root.get_str("instructions") {
                req.input_bytes += s.len();
                req.instructions = Some(s.to_owned());
            }
            req.previous_response_id = root.get_str("previous_response_id").map(str::to_owned);
            read_input(input, &mut req);
            if let Some(r) = root.get("reasoning") {
                req.effort = r.get_str("effort").map(str::to_owned);
                req.summary = r.get_str("summary").map(str::to_owned);
                req.thinking = req.effort.as_deref().is_some_and(|e| e != "none");
            }
            req.encrypted = root.get_array("include").is_some_and(|a| {
                a.iter()
                    .any(|v| v.as_str() == Some("reasoning.encrypted_content"))
            });
            req.cache = root.get_str("prompt_cache_key").is_some();
            req.parallel_allowed = root.get_bool("parallel_tool_calls").unwrap_or(true);
        }
    }
    let (tools, choice, parallel_allowed) = tools::offered(endpoint, root);
    req.tools = tools;
    req.choice = choice;
    req.parallel_allowed &= parallel_allowed;
    Ok(req)
}

/// `messages` must be a non-empty array (chat, messages, count_tokens).
fn messages<'v, 'a>(root: &'v BorrowedValue<'a>) -> Result<&'v [BorrowedValue<'a>], BadRequest> {
    root.get_array("messages")
        .filter(|m| !m.is_empty())
        .map(|m| m.as_slice())
        .ok_or(BadRequest::Messages)
}

/// Chat `messages`: counts all text, quotes the last user turn, finds the trailing tool results.
fn read_chat(root: &BorrowedValue<'_>, req: &mut Request) {
    let Ok(messages) = messages(root) else { return };
    let mut last_user = None;
    for m in messages {
        if let Some(content) = m.get("content") {
            count(content, req);
            if m.get_str("role") == Some("user") {
                last_user = Some(content);
            }
        }
    }
    quote_user(last_user, req);
    let trailing_tools = messages
        .iter()
        .rev()
        .take_while(|m| m.get_str("role") == Some("tool"))
        .count();
    req.turn = match messages.last().and_then(|m| m.get_str("role")) {
        Some("user") => Turn::User,
        Some("tool") => {
            let first = &messages[messages.len() - trailing_tools];
            if let Some(c) = first.get("content") {
                req.tool_words = first_words(c);
            }
            Turn::ToolResult
        }
        _ => Turn::Other,
    };
}

/// Anthropic `messages`: as chat, with tool results as `tool_result` blocks of a user turn.
fn read_anthropic(root: &BorrowedValue<'_>, req: &mut Request) {
    let Ok(messages) = messages(root) else { return };
    let mut last_user = None;
    for m in messages {
        let Some(content) = m.get("content") else {
            continue;
        };
        count(content, req);
        for block in content.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            if block.get_str("type") == Some("tool_result") {
                if let Some(c) = block.get("content") {
                    count(c, req);
                }
            }
        }
        if m.get_str("role") == Some("user") && !has_tool_result(content) {
            last_user = Some(content);
        }
    }
    quote_user(last_user, req);
    let Some(last) = messages.last() else { return };
    req.turn = match (last.get_str("role"), last.get("content")) {
        (Some("user"), Some(content)) if has_tool_result(content) => {
            let first = content
                .as_array()
                .and_then(|b| b.iter().find(|b| b.get_str("type") == Some("tool_result")))
                .and_then(|b| b.get("content"));
            if let Some(c) = first {
                req.tool_words = first_words(c);
            }
            Turn::ToolResult
        }
        (Some("user"), _) => Turn::User,
        _ => Turn::Other,
    };
}

fn has_tool_result(content: &BorrowedValue<'_>) -> bool {
    content
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b.get_str("type") == Some("tool_result")))
}

/// Responses `input`: a string, or a list of items whose `content` is a string or parts, and
/// whose `function_call_output` items carry their text in `output`.
fn read_input(input: &BorrowedValue<'_>, req: &mut Request) {
    if input.as_str().is_some() {
        count(input, req);
        quote_user(Some(input), req);
        req.turn = Turn::User;
        return;
    }
    let Some(items) = input.as_array().map(Vec::as_slice) else {
        return;
    };
    let mut last_user = None;
    for item in items {
        if let Some(content) = item.get("content") {
            count(content, req);
            if item.get_str("role") == Some("user") {
                last_user = Some(content);
            }
        } else if let Some(out) = item.get("output") {
            count(out, req);
        }
    }
    quote_user(last_user, req);
    let is_output = |i: &BorrowedValue<'_>| i.get_str("type") == Some("function_call_output");
    let trailing = items.iter().rev().take_while(|i| is_output(i)).count();
    req.turn = if trailing > 0 {
        if let Some(out) = items[items.len() - trailing].get("output") {
            req.tool_words = first_words(out);
        }
        Turn::ToolResult
    } else {
        match items.last() {
            Some(i) if i.get_str("role") == Some("user") => Turn::User,
            _ => Turn::Other,
        }
    };
}

/// Adds a content value's text bytes and images to the prompt size.
fn count(content: &BorrowedValue<'_>, req: &mut Request) {
    for_each_text(content, &mut |t| req.input_bytes += t.len());
    if let Some(parts) = content.as_array() {
        let images = parts
            .iter()
            .filter(|p| {
                matches!(
                    p.get_str("type"),
                    Some("image" | "image_url" | "input_image")
                )
            })
            .count();
        req.images += images as u64;
    }
}

/// Quotes the last user turn: its first words, and whether it says `parallel`.
fn quote_user(content: Option<&BorrowedValue<'_>>, req: &mut Request) {
    let Some(content) = content else { return };
    req.echo = first_words(content);
    for_each_text(content, &mut |t| {
        req.parallel |= t
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case("parallel"));
    });
}

/// Whether any object in the tree has `key` (Anthropic's `cache_control` may sit on a system
/// block, a message block, a tool or the top level).
fn has_key(v: &BorrowedValue<'_>, key: &str) -> bool {
    if let Some(o) = v.as_object() {
        o.iter().any(|(k, v)| k == key || has_key(v, key))
    } else if let Some(a) = v.as_array() {
        a.iter().any(|v| has_key(v, key))
    } else {
        false
    }
}

/// Calls `f` with each text in a content value: a string, or an array of parts with `text`
/// (`text`, `input_text`, Anthropic text blocks all use that key).
pub(crate) fn for_each_text<'v>(content: &'v BorrowedValue<'_>, f: &mut dyn FnMut(&'v str)) {
    if let Some(s) = content.as_str() {
        f(s);
    } else if let Some(parts) = content.as_array() {
        for part in parts {
            if let Some(t) = part.get_str("text") {
                f(t);
            }
        }
    }
}

/// The first [`ECHO_WORDS`] whitespace-separated words of a content value, each cut to
/// [`ECHO_WORD_MAX`] bytes on a character boundary.
fn first_words(content: &BorrowedValue<'_>) -> Vec<String> {
    let mut words = Vec::new();
    for_each_text(content, &mut |t| {
        for w in t.split_whitespace() {
            if words.len() == ECHO_WORDS {
                return;
            }
            let mut end = w.len().min(ECHO_WORD_MAX);
            while !w.is_char_boundary(end) {
                end -= 1;
            }
            words.push(w[..end].to_owned());
        }
    });
    words
}
