//! Reading what the mock needs out of a request body.
//!
//! The body is parsed with simd-json on a private copy (simd-json rewrites its input; the caller's
//! bytes are never touched). Only a handful of fields matter: `model`, `stream`, the output bound,
//! `stream_options.include_usage`, and the message text, which sizes `input_tokens` and seeds the
//! reply. Anything else in the body is ignored, as a lenient provider would.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::Endpoint;

/// Words of the last user message quoted back in the reply.
pub(crate) const ECHO_WORDS: usize = 8;
/// Longest quoted word, in bytes; keeps a pathological one-word prompt from bloating every reply.
pub(crate) const ECHO_WORD_MAX: usize = 64;

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
}

impl BadRequest {
    /// The error message, in the wording of the provider behind `endpoint`.
    pub(crate) fn message(self, endpoint: Endpoint) -> &'static str {
        let anthropic = matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens);
        match (self, anthropic) {
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
        }
    }
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
    /// Bytes of prompt text (messages, system, instructions); sizes `input_tokens`.
    pub input_bytes: usize,
    /// Up to [`ECHO_WORDS`] words of the last user message.
    pub echo: Vec<String>,
    /// `instructions` (responses), echoed in the Response object.
    pub instructions: Option<String>,
    /// `previous_response_id` (responses), echoed in the Response object.
    pub previous_response_id: Option<String>,
    /// `store` (responses), default true.
    pub store: bool,
}

impl Request {
    /// Estimated prompt tokens: one per four bytes of text, rounded up.
    pub(crate) fn input_tokens(&self) -> u64 {
        (self.input_bytes as u64).div_ceil(4)
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

/// Extracts the fields for `endpoint` and checks the ones that provider requires.
pub(crate) fn parse_request(
    endpoint: Endpoint,
    root: &BorrowedValue<'_>,
    model: String,
) -> Result<Request, BadRequest> {
    let mut req = Request {
        model,
        stream: root.get_bool("stream").unwrap_or(false),
        store: root.get_bool("store").unwrap_or(true),
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
            read_messages(root, &mut req)?;
        }
        Endpoint::Messages | Endpoint::CountTokens => {
            if let Some(system) = root.get("system") {
                for_each_text(system, &mut |t| req.input_bytes += t.len());
            }
            read_messages(root, &mut req)?;
            if endpoint == Endpoint::CountTokens {
                req.stream = false;
            } else {
                req.bound = Some(root.get_u64("max_tokens").ok_or(BadRequest::MaxTokens)?);
            }
        }
        Endpoint::Responses => {
            req.bound = root.get_u64("max_output_tokens");
            if let Some(s) = root.get_str("instructions") {
                req.input_bytes += s.len();
                req.instructions = Some(s.to_owned());
            }
            req.previous_response_id = root.get_str("previous_response_id").map(str::to_owned);
            read_input(root, &mut req)?;
        }
    }
    Ok(req)
}

/// Chat and Anthropic `messages`: counts all text, quotes the last user turn.
fn read_messages(root: &BorrowedValue<'_>, req: &mut Request) -> Result<(), BadRequest> {
    let messages = root
        .get_array("messages")
        .filter(|m| !m.is_empty())
        .ok_or(BadRequest::Messages)?;
    let mut last_user = None;
    for m in messages {
        if let Some(content) = m.get("content") {
            for_each_text(content, &mut |t| req.input_bytes += t.len());
            if m.get_str("role") == Some("user") {
                last_user = Some(content);
            }
        }
    }
    if let Some(content) = last_user {
        req.echo = first_words(content);
    }
    Ok(())
}

/// Responses `input`: a string, or a list of items whose `content` is a string or parts.
fn read_input(root: &BorrowedValue<'_>, req: &mut Request) -> Result<(), BadRequest> {
    let input = root.get("input").ok_or(BadRequest::Input)?;
    if input.as_str().is_some() {
        for_each_text(input, &mut |t| req.input_bytes += t.len());
        req.echo = first_words(input);
        return Ok(());
    }
    let items = input.as_array().ok_or(BadRequest::Input)?;
    let mut last_user = None;
    for item in items {
        if let Some(content) = item.get("content") {
            for_each_text(content, &mut |t| req.input_bytes += t.len());
            if item.get_str("role") == Some("user") {
                last_user = Some(content);
            }
        } else if let Some(out) = item.get_str("output") {
            // function_call_output items carry their text in `output`.
            req.input_bytes += out.len();
        }
    }
    if let Some(content) = last_user {
        req.echo = first_words(content);
    }
    Ok(())
}

/// Calls `f` with each text in a content value: a string, or an array of parts with `text`
/// (`text`, `input_text`, Anthropic text blocks all use that key).
fn for_each_text<'v>(content: &'v BorrowedValue<'_>, f: &mut dyn FnMut(&'v str)) {
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
