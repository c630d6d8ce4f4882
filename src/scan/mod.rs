//! Top-level JSON key scanning in place.
//!
//! Every proxied request body (OpenAI chat completions and responses, Anthropic messages and
//! count_tokens) goes through [`scan_top_level`] exactly once. It finds the spans of the few
//! top-level members the gateway reads ([`Key`]) without building a DOM, and it validates the
//! whole body, so "bad JSON -> 400" needs no second parse:
//!
//! - the body is UTF-8 (RFC 8259 §8.1) and one JSON object, with only whitespace around it;
//! - strings hold no raw control bytes (§7) and no lone surrogate escapes (I-JSON, RFC 7493
//!   §2.1); numbers follow the §6 grammar, of any magnitude; literals are exact;
//! - nesting is at most [`MAX_DEPTH`], counting the top-level object;
//! - a tracked [`Key`] appears at most once at the top level ([`ScanError::DuplicateKey`]);
//!   repeated untracked keys are passed through, as RFC 8259 §4 leaves them to the receiver.
//!
//! Keys are compared after unescaping, so `"mo\u0064el"` is `model`; a `model` nested in
//! another value or inside a string is not. Spans are byte ranges of the raw value (quotes
//! included for strings), so the caller can [`splice`] a new model name into the body without
//! re-encoding the rest. Bodies must be shorter than 4 GiB because spans are `u32`.
//!
//! The scan does not allocate. String contents are skipped 16 bytes at a time (SSE2 on
//! x86_64, SWAR elsewhere), looking for quote, backslash and control bytes in one pass; nested
//! values go through a non-recursive skipper; UTF-8 is checked in one pass by
//! `std::str::from_utf8` before the grammar. Where the scanner deliberately differs from
//! simd-json is listed in [`fuzzing`].

mod lex;
pub mod members;
pub mod needle;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use lex::{skip_string, skip_value, skip_ws, syntax};

/// Deepest nesting accepted, the top-level object counting as 1. RFC 8259 §9 lets a parser
/// limit depth; real requests (tool JSON schemas included) stay far below, and the bound keeps
/// the skipper's container stack in one `u128`.
pub const MAX_DEPTH: u32 = 128;

/// Byte range `start..end` of a raw JSON value in the body; strings include their quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ValueSpan {
    /// Offset of the value's first byte.
    pub start: u32,
    /// Offset just past the value's last byte.
    pub end: u32,
}

impl ValueSpan {
    /// The raw value bytes, or `None` if the span does not fit `body`.
    pub fn bytes<'a>(&self, body: &'a [u8]) -> Option<&'a [u8]> {
        body.get(self.start as usize..self.end as usize)
    }
}

/// A top-level member the gateway reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// `model`
    Model,
    /// `stream`
    Stream,
    /// `max_tokens` (Chat Completions, Anthropic Messages)
    MaxTokens,
    /// `max_completion_tokens` (Chat Completions)
    MaxCompletionTokens,
    /// `max_output_tokens` (Responses)
    MaxOutputTokens,
    /// `messages`
    Messages,
    /// `input` (Responses)
    Input,
    /// `system` (Anthropic)
    System,
    /// `tools`
    Tools,
    /// `response_format` (Chat Completions)
    ResponseFormat,
    /// `previous_response_id` (Responses)
    PreviousResponseId,
    /// `instructions` (Responses)
    Instructions,
    /// `store`
    Store,
    /// `stream_options` (Chat Completions)
    StreamOptions,
}

impl Key {
    /// Every key, in declaration order.
    pub const ALL: [Key; 14] = [
        Key::Model,
        Key::Stream,
        Key::MaxTokens,
        Key::MaxCompletionTokens,
        Key::MaxOutputTokens,
        Key::Messages,
        Key::Input,
        Key::System,
        Key::Tools,
        Key::ResponseFormat,
        Key::PreviousResponseId,
        Key::Instructions,
        Key::Store,
        Key::StreamOptions,
    ];

    /// The member name on the wire.
    pub const fn json_name(self) -> &'static str {
        match self {
            Key::Model => "model",
            Key::Stream => "stream",
            Key::MaxTokens => "max_tokens",
            Key::MaxCompletionTokens => "max_completion_tokens",
            Key::MaxOutputTokens => "max_output_tokens",
            Key::Messages => "messages",
            Key::Input => "input",
            Key::System => "system",
            Key::Tools => "tools",
            Key::ResponseFormat => "response_format",
            Key::PreviousResponseId => "previous_response_id",
            Key::Instructions => "instructions",
            Key::Store => "store",
            Key::StreamOptions => "stream_options",
        }
    }

    /// The key named by the decoded member name `name`, if tracked.
    #[inline]
    pub fn from_name(name: &[u8]) -> Option<Key> {
        Some(match name {
            b"model" => Key::Model,
            b"stream" => Key::Stream,
            b"max_tokens" => Key::MaxTokens,
            b"max_completion_tokens" => Key::MaxCompletionTokens,
            b"max_output_tokens" => Key::MaxOutputTokens,
            b"messages" => Key::Messages,
            b"input" => Key::Input,
            b"system" => Key::System,
            b"tools" => Key::Tools,
            b"response_format" => Key::ResponseFormat,
            b"previous_response_id" => Key::PreviousResponseId,
            b"instructions" => Key::Instructions,
            b"store" => Key::Store,
            b"stream_options" => Key::StreamOptions,
            _ => return None,
        })
    }

    /// The key named by the raw (escaped) member name `raw`: the slow path, unescaping into a
    /// stack buffer longer than any tracked name.
    fn from_escaped(raw: &[u8]) -> Option<Key> {
        let mut buf = [0u8; 24];
        let mut len = 0;
        let ok = lex::unescape(raw, |piece| match buf.get_mut(len..len + piece.len()) {
            Some(dst) => {
                dst.copy_from_slice(piece);
                len += piece.len();
                true
            }
            None => false,
        });
        if ok {
            Key::from_name(&buf[..len])
        } else {
            None
        }
    }
}

/// What [`scan_top_level`] found: one span per tracked key present, and the member count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopLevel {
    /// `model` value (any JSON type; see [`TopLevel::model_str`]).
    pub model: Option<ValueSpan>,
    /// `stream` value (see [`TopLevel::stream_flag`]).
    pub stream: Option<ValueSpan>,
    /// `max_tokens` value.
    pub max_tokens: Option<ValueSpan>,
    /// `max_completion_tokens` value.
    pub max_completion_tokens: Option<ValueSpan>,
    /// `max_output_tokens` value.
    pub max_output_tokens: Option<ValueSpan>,
    /// `messages` value.
    pub messages: Option<ValueSpan>,
    /// `input` value.
    pub input: Option<ValueSpan>,
    /// `system` value.
    pub system: Option<ValueSpan>,
    /// `tools` value.
    pub tools: Option<ValueSpan>,
    /// `response_format` value.
    pub response_format: Option<ValueSpan>,
    /// `previous_response_id` value.
    pub previous_response_id: Option<ValueSpan>,
    /// `instructions` value.
    pub instructions: Option<ValueSpan>,
    /// `store` value.
    pub store: Option<ValueSpan>,
    /// `stream_options` value.
    pub stream_options: Option<ValueSpan>,
    /// Number of top-level members, tracked or not, duplicates counted.
    pub key_count: u32,
}

impl TopLevel {
    /// The span of `key`'s value, if present.
    pub fn get(&self, key: Key) -> Option<ValueSpan> {
        *self.slot(key)
    }

    fn slot(&self, key: Key) -> &Option<ValueSpan> {
        match key {
            Key::Model => &self.model,
            Key::Stream => &self.stream,
            Key::MaxTokens => &self.max_tokens,
            Key::MaxCompletionTokens => &self.max_completion_tokens,
            Key::MaxOutputTokens => &self.max_output_tokens,
            Key::Messages => &self.messages,
            Key::Input => &self.input,
            Key::System => &self.system,
            Key::Tools => &self.tools,
            Key::ResponseFormat => &self.response_format,
            Key::PreviousResponseId => &self.previous_response_id,
            Key::Instructions => &self.instructions,
            Key::Store => &self.store,
            Key::StreamOptions => &self.stream_options,
        }
    }

    fn slot_mut(&mut self, key: Key) -> &mut Option<ValueSpan> {
        match key {
            Key::Model => &mut self.model,
            Key::Stream => &mut self.stream,
            Key::MaxTokens => &mut self.max_tokens,
            Key::MaxCompletionTokens => &mut self.max_completion_tokens,
            Key::MaxOutputTokens => &mut self.max_output_tokens,
            Key::Messages => &mut self.messages,
            Key::Input => &mut self.input,
            Key::System => &mut self.system,
            Key::Tools => &mut self.tools,
            Key::ResponseFormat => &mut self.response_format,
            Key::PreviousResponseId => &mut self.previous_response_id,
            Key::Instructions => &mut self.instructions,
            Key::Store => &mut self.store,
            Key::StreamOptions => &mut self.stream_options,
        }
    }

    /// `stream` as a flag. Absent or `null` is `Ok(false)`, the default of both APIs;
    /// `true`/`false` are themselves; any other value is `WrongType(Stream)`.
    pub fn stream_flag(&self, body: &[u8]) -> Result<bool, ScanError> {
        let Some(span) = self.stream else {
            return Ok(false);
        };
        match span.bytes(body) {
            Some(b"true") => Ok(true),
            Some(b"false" | b"null") => Ok(false),
            _ => Err(ScanError::WrongType(Key::Stream)),
        }
    }

    /// `model` decoded: `Ok(None)` if absent, borrowed from `body` when the raw string has
    /// no escape (no allocation), owned otherwise. Any non-string, `null` included, is
    /// `WrongType(Model)`. `body` must be the scanned body.
    pub fn model_str<'a>(&self, body: &'a [u8]) -> Result<Option<Cow<'a, str>>, ScanError> {
        let Some(span) = self.model else {
            return Ok(None);
        };
        let inner = span
            .bytes(body)
            .and_then(|raw| raw.strip_prefix(b"\""))
            .and_then(|raw| raw.strip_suffix(b"\""))
            .ok_or(ScanError::WrongType(Key::Model))?;
        decode_string(inner).map(Some)
    }

    /// `key`'s value as a non-negative integer: `None` if absent, not an integer literal
    /// (fractions and exponents included, so `1.0` is `None`) or above `u64::MAX`. `-0` is 0.
    pub fn uint(&self, body: &[u8], key: Key) -> Option<u64> {
        let raw = self.get(key)?.bytes(body)?;
        // `-0` is zero, as JSON parsers read it.
        let raw = if raw == b"-0" { &raw[1..] } else { raw };
        if raw.is_empty() || (raw.len() > 1 && raw[0] == b'0') {
            return None;
        }
        raw.iter().try_fold(0u64, |acc, &c| {
            if c.is_ascii_digit() {
                acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            } else {
                None
            }
        })
    }
}

/// Decodes the inside of a JSON string; borrowed when it has no backslash.
fn decode_string(inner: &[u8]) -> Result<Cow<'_, str>, ScanError> {
    if memchr::memchr(b'\\', inner).is_none() {
        return std::str::from_utf8(inner)
            .map(Cow::Borrowed)
            .map_err(|_| ScanError::InvalidUtf8);
    }
    let mut out = Vec::with_capacity(inner.len());
    if !lex::unescape(inner, |piece| {
        out.extend_from_slice(piece);
        true
    }) {
        return Err(syntax(0));
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| ScanError::InvalidUtf8)
}

/// Why a body was rejected. Every variant is the client's fault (HTTP 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// The body is empty or only whitespace.
    Empty,
    /// The body starts with something other than `{`.
    NotAnObject,
    /// The JSON grammar is broken at `offset` (also: lone surrogate escapes).
    Syntax {
        /// Body offset where the problem was seen.
        offset: u32,
    },
    /// The body is not UTF-8.
    InvalidUtf8,
    /// A string holds a raw byte below 0x20 at `offset`.
    ControlCharInString {
        /// Body offset of the control byte.
        offset: u32,
    },
    /// A tracked top-level key appears twice. Reported only when the body is otherwise valid.
    DuplicateKey(Key),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A tracked value has the wrong JSON type (from the typed accessors of [`TopLevel`]).
    WrongType(Key),
    /// Non-whitespace bytes follow the top-level object.
    TrailingData,
    /// The body is 4 GiB or longer; spans could not address it.
    TooLarge,
}

impl ScanError {
    /// A human message for an API error body.
    pub fn message(&self) -> &'static str {
        match self {
            ScanError::Empty => "request body is empty",
            ScanError::NotAnObject => "request body must be a JSON object",
            ScanError::Syntax { .. } => "request body is not valid JSON",
            ScanError::InvalidUtf8 => "request body is not valid UTF-8",
            ScanError::ControlCharInString { .. } => {
                "request body is not valid JSON: unescaped control character in a string"
            }
            ScanError::DuplicateKey(k) => match k {
                Key::Model => "duplicate top-level key: model",
                Key::Stream => "duplicate top-level key: stream",
                _ => "duplicate top-level key",
            },
            ScanError::TooDeep => "request body is nested too deeply",
            ScanError::WrongType(k) => match k {
                Key::Model => "'model' must be a string",
                Key::Stream => "'stream' must be a boolean",
                _ => "a top-level field has the wrong type",
            },
            ScanError::TrailingData => "unexpected data after the JSON object",
            ScanError::TooLarge => "request body is too large",
        }
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())?;
        match self {
            ScanError::Syntax { offset } | ScanError::ControlCharInString { offset } => {
                write!(f, " (at byte {offset})")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ScanError {}

/// Scans and validates `body`, returning the spans of the tracked top-level members.
///
/// Errors, checked in this order: `TooLarge`, `Empty`, `NotAnObject` (first non-whitespace
/// byte is not `{`), `InvalidUtf8`, then grammar errors (`Syntax`, `ControlCharInString`,
/// `TooDeep`, `TrailingData`) at the first offending byte, and last `DuplicateKey` for the
/// first tracked key seen twice.
pub fn scan_top_level(body: &[u8]) -> Result<TopLevel, ScanError> {
    if u32::try_from(body.len()).is_err() {
        return Err(ScanError::TooLarge);
    }
    let mut i = skip_ws(body, 0);
    match body.get(i) {
        None => return Err(ScanError::Empty),
        Some(b'{') => {}
        Some(_) => return Err(ScanError::NotAnObject),
    }
    // simdutf8 (already under simd-json) validates at memory speed where std's validator
    // crawls through non-ASCII text; this pass dominated a 1 MB scan of multilingual prose.
    if simdutf8::basic::from_utf8(body).is_err() {
        return Err(ScanError::InvalidUtf8);
    }
    let mut top = TopLevel::default();
    let mut duplicate = None;
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if body.get(i) != Some(&b'"') {
                return Err(syntax(i));
            }
            let (key_end, escaped) = skip_string(body, i)?;
            let name = &body[i + 1..key_end - 1];
            let key = if escaped {
                Key::from_escaped(name)
            } else {
                Key::from_name(name)
            };
            i = skip_ws(body, key_end);
            if body.get(i) != Some(&b':') {
                return Err(syntax(i));
            }
            let start = skip_ws(body, i + 1);
            i = skip_value(body, start)?;
            top.key_count += 1;
            if let Some(key) = key {
                let slot = top.slot_mut(key);
                if slot.is_some() {
                    duplicate = duplicate.or(Some(key));
                } else {
                    *slot = Some(ValueSpan {
                        start: start as u32,
                        end: i as u32,
                    });
                }
            }
            i = skip_ws(body, i);
            match body.get(i) {
                Some(b',') => i = skip_ws(body, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(syntax(i)),
            }
        }
    }
    if skip_ws(body, i) != body.len() {
        return Err(ScanError::TrailingData);
    }
    match duplicate {
        Some(key) => Err(ScanError::DuplicateKey(key)),
        None => Ok(top),
    }
}

/// Appends to `out` the body with the bytes at `span` replaced by `replacement`.
///
/// `out` is not cleared; it grows at most once, by exactly the spliced length. A span outside
/// `body` is clamped to it. `replacement` is written verbatim: for a model name pass a JSON
/// string literal, e.g. built with [`push_json_string`].
pub fn splice(body: &[u8], span: ValueSpan, replacement: &[u8], out: &mut Vec<u8>) {
    let end = (span.end as usize).min(body.len());
    let start = (span.start as usize).min(end);
    out.reserve(body.len() - (end - start) + replacement.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(replacement);
    out.extend_from_slice(&body[end..]);
}

/// Appends `s` to `out` as a JSON string literal with its quotes (RFC 8259 §7).
///
/// Escapes `"`, `\` and control bytes below 0x20 (short forms where they exist, `\u00XX`
/// otherwise); everything else, non-ASCII and `/` included, is copied as is.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_json_escaped(out, s);
    out.push(b'"');
}

/// Whether any byte of the little-endian word `w` is `"`, `\\` or a control character: the
/// classic SWAR zero-byte test (it may report a word that has none, never miss one), so
/// text that needs no escape is skipped eight bytes at a time.
fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGH != 0
}

/// Appends the escaped content of `s` without the quotes, as [`push_json_string`] escapes it
/// (for text streamed into a string literal piece by piece): `\"`, `\\`, the short escapes,
/// `\u00XX` for other control characters, skipping clean text a word at a time (the text of
/// a request or an answer is most of what the gateway writes into JSON).
pub fn push_json_escaped(out: &mut Vec<u8>, s: &str) {
    use crate::digits::HEX;
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if may_need_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { break };
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ],
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(short);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}
