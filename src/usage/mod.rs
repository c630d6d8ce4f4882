//! Usage: what an answer cost, from the tokens the upstream itself reported, why it stopped
//! (its finish reason, for the request's span), and the ledger that records every answered
//! request.
//!
//! Cost follows the providers' price sheets: uncached prompt tokens at the input price,
//! cache-read tokens at `cached_input_per_million` (the input price when unset), output tokens
//! at the output price. Cache-write tokens are priced as input (the configs carry no separate
//! write price).

pub mod ledger;

use crate::endpoint::Protocol;
use crate::relay::Usage;
use crate::route::Model;
use crate::scan::members::{as_u64, elements, get, members, str_content};
use crate::scan::needle::Needle;
use crate::translate;
use crate::translate::wire::{read_chat_usage, MessagesUsage};

/// Whether a chat chunk is the usage chunk `include_usage` adds: no choices, a usage object.
fn is_usage_chunk(json: &[u8]) -> bool {
    get(json, b"choices").is_some_and(|c| c.trim_ascii() == b"[]")
}

/// The cost in USD of `u` at `model`'s prices.
pub fn cost(model: &Model, u: &Usage) -> f64 {
    let cached = u.cache_read.min(u.input);
    ((u.input - cached) as f64 * model.input_per_million
        + cached as f64 * model.cached_input_per_million
        + u.output as f64 * model.output_per_million)
        / 1e6
}

/// The usage an upstream reported in a whole answer body of `protocol` (a passthrough answer:
/// translated ones are read by the translator). `None` when the body has none.
pub fn parse_body(protocol: Protocol, body: &[u8]) -> Option<Usage> {
    read_usage(protocol, get(body, b"usage")?)
}

/// Bytes kept from the end of a whole body relayed as it arrives, for its usage: every
/// provider writes `usage` among the last members of its answer object, followed by a few
/// short members at most (`system_fingerprint`, `user`, `metadata`).
pub const USAGE_TAIL: usize = 16 * 1024;

/// Keeps the last [`USAGE_TAIL`] bytes of a body in `tail` as `payload` passes (at most one
/// `USAGE_TAIL` move per read; the buffer is the request's, reused).
pub fn keep_tail(tail: &mut Vec<u8>, payload: &[u8]) {
    if payload.len() >= USAGE_TAIL {
        tail.clear();
        tail.extend_from_slice(&payload[payload.len() - USAGE_TAIL..]);
        return;
    }
    let over = (tail.len() + payload.len()).saturating_sub(USAGE_TAIL);
    if over > 0 {
        tail.drain(..over);
    }
    tail.extend_from_slice(payload);
}

/// The usage in the last bytes of a whole answer body of `protocol` (see [`keep_tail`]): the
/// last `"usage"` member there. A `"usage":` can only be a member name (inside a string its
/// quotes would be escaped). `None` when the tail has none, or it is cut.
pub fn parse_tail(protocol: Protocol, tail: &[u8]) -> Option<Usage> {
    let at = memchr::memmem::rfind(tail, b"\"usage\"")?;
    let rest = tail[at + 7..].trim_ascii_start().strip_prefix(b":")?;
    read_usage(protocol, rest)
}

/// Reads one `usage` object: OpenAI chat (`prompt_tokens`...), OpenAI Responses
/// (`input_tokens` with `input_tokens_details.cached_tokens`), or Anthropic (`input_tokens`
/// without the cached ones, which are added back so `input` counts every prompt token).
fn read_usage(protocol: Protocol, obj: &[u8]) -> Option<Usage> {
    members(obj)?;
    let u = match protocol {
        Protocol::Anthropic => {
            let mut m = MessagesUsage::default();
            m.read(obj);
            m.usage()
        }
        Protocol::OpenAi if get(obj, b"prompt_tokens").is_some() => {
            let mut u = translate::Usage::default();
            read_chat_usage(obj, &mut u);
            u
        }
        Protocol::OpenAi => translate::Usage {
            input: get(obj, b"input_tokens").and_then(as_u64)?,
            output: get(obj, b"output_tokens").and_then(as_u64).unwrap_or(0),
            cache_read: get(obj, b"input_tokens_details")
                .and_then(|d| get(d, b"cached_tokens"))
                .and_then(as_u64)
                .unwrap_or(0),
            ..translate::Usage::default()
        },
    };
    Some(Usage::from(u))
}

/// Why an answer stopped, in the upstream's own words: chat `finish_reason` (`stop`,
/// `length`, `tool_calls`...), Anthropic `stop_reason` (`end_turn`, `max_tokens`,
/// `tool_use`...), or a Response's `status` (`completed`, `incomplete`). Kept inline (no
/// allocation on the worker); a value longer than [`Finish::MAX`] or with bytes other than
/// letters, digits, `_`, `-` and `.` is not kept (none of the documented ones is).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    len: u8,
    bytes: [u8; Finish::MAX],
}

impl Finish {
    /// Longest reason kept (`model_context_window_exceeded` is 29).
    pub const MAX: usize = 31;

    /// The reason from the escaped content of a JSON string, when it is a plain word.
    pub fn new(raw: &[u8]) -> Option<Finish> {
        let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if raw.is_empty() || raw.len() > Finish::MAX || !raw.iter().all(plain) {
            return None;
        }
        let mut bytes = [0; Finish::MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Finish {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The reason's text.
    pub fn as_str(&self) -> &str {
        // `new` keeps ASCII only.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The finish reason of a whole answer body of `protocol` (a passthrough answer): the first
/// choice's `finish_reason` (chat), the Response's `status`, or `stop_reason` (Anthropic).
pub fn parse_finish(protocol: Protocol, body: &[u8]) -> Option<Finish> {
    let raw = match protocol {
        Protocol::Anthropic => get(body, b"stop_reason")?,
        Protocol::OpenAi => match get(body, b"choices") {
            Some(choices) => get(elements(choices)?.next()?.ok()?, b"finish_reason")?,
            None => get(body, b"status")?,
        },
    };
    Finish::new(str_content(raw)?)
}

/// The usage tap of a passthrough stream: the relayed bytes are looked at (never changed) for
/// SSE `data:` lines that carry a `usage` object: OpenAI chat's final usage chunk, Responses'
/// `response.completed`, Anthropic's `message_start` (input and cache tokens) and
/// `message_delta` (running output total, replacing the earlier report). One `memmem` per
/// relayed read; a line is parsed only when it names `usage` and lies whole in one read (an
/// event split across reads is not seen: its usage is then unknown, never wrong).
///
/// The finish reason rides the same way: a second `memmem` finds `_reason"` (chat
/// `finish_reason`, Anthropic `stop_reason`; inside a JSON string a quote is escaped, so only a
/// key matches) and the line is parsed only when the value is a string (every chat chunk
/// carries `"finish_reason":null` until the last); a Responses stream's reason is the `status`
/// of the `response` its usage event carries.
#[derive(Debug)]
pub struct StreamTap {
    protocol: Protocol,
    anthropic: MessagesUsage,
    seen: Option<translate::Usage>,
    /// Cut OpenAI chat's usage chunk out of the relayed bytes: the gateway asked for it, the
    /// client did not.
    strip: bool,
    finish: Option<Finish>,
}

impl StreamTap {
    /// A tap for a stream of `protocol`.
    pub fn new(protocol: Protocol) -> StreamTap {
        StreamTap {
            protocol,
            anthropic: MessagesUsage::default(),
            seen: None,
            strip: false,
            finish: None,
        }
    }

    /// A tap that also hands back, from [`feed`](Self::feed), where the usage chunk of an
    /// OpenAI chat stream lies, for the relay to leave it out.
    pub fn stripping(mut self, strip: bool) -> StreamTap {
        self.strip = strip;
        self
    }

    /// Looks at one relayed payload. When stripping, gives the byte range of the usage chunk
    /// (its `data:` line and the blank line that ends the event) if this payload holds it.
    pub fn feed(&mut self, payload: &[u8]) -> Option<std::ops::Range<usize>> {
        self.reason_lines(payload);
        self.usage_lines(payload)
    }

    fn usage_lines(&mut self, payload: &[u8]) -> Option<std::ops::Range<usize>> {
        let mut from = 0;
        let mut cut = None;
        while let Some(i) = USAGE_KEY.find(&payload[from..]) {
            let at = from + i;
            // A chat chunk asked for with include_usage carries `"usage":null` in every event
            // but the last: skipped without parsing the line (the relay's CPU per event), unless
            // the line is a Responses event, whose `response` also carries the status.
            if value_after(&payload[at + b"\"usage\"".len()..])
                .is_some_and(|v| v.starts_with(b"null"))
            {
                let line_end =
                    memchr::memchr(b'\n', &payload[at..]).map_or(payload.len(), |n| at + n);
                let line_start = memchr::memrchr(b'\n', &payload[..at]).map_or(0, |n| n + 1);
                if RESPONSE_KEY.find(&payload[line_start..line_end]).is_none() {
                    from = at + 1;
                    continue;
                }
            }
            let start = memchr::memrchr(b'\n', &payload[..at]).map_or(0, |n| n + 1);
            let Some(len) = memchr::memchr(b'\n', &payload[at..]) else {
                return cut;
            };
            let end = at + len;
            from = end;
            let line = &payload[start..end];
            let Some(json) = line.strip_prefix(b"data:") else {
                continue;
            };
            let before = self.seen;
            self.event(json);
            if self.strip && cut.is_none() && self.seen != before && is_usage_chunk(json) {
                // The event ends at the blank line after its last `data:` line.
                let mut stop = end + 1;
                if payload.get(stop) == Some(&b'\r') {
                    stop += 1;
                }
                if payload.get(stop) == Some(&b'\n') {
                    stop += 1;
                }
                cut = Some(start..stop.min(payload.len()));
            }
        }
        cut
    }

    fn reason_lines(&mut self, payload: &[u8]) {
        let mut from = 0;
        while let Some(i) = REASON_KEY.find(&payload[from..]) {
            let at = from + i;
            from = at + 1;
            let Some(value) = value_after(&payload[at + b"_reason\"".len()..]) else {
                continue;
            };
            if value.first() != Some(&b'"') {
                continue; // null: not the last chunk
            }
            let start = memchr::memrchr(b'\n', &payload[..at]).map_or(0, |n| n + 1);
            let Some(len) = memchr::memchr(b'\n', &payload[at..]) else {
                return;
            };
            from = at + len;
            let Some(json) = payload[start..at + len].strip_prefix(b"data:") else {
                continue;
            };
            let json = json.trim_ascii();
            let raw = match self.protocol {
                Protocol::Anthropic => get(json, b"delta").and_then(|d| get(d, b"stop_reason")),
                Protocol::OpenAi => get(json, b"choices")
                    .and_then(elements)
                    .and_then(|mut e| e.next())
                    .and_then(Result::ok)
                    .and_then(|c| get(c, b"finish_reason")),
            };
            if let Some(f) = raw.and_then(str_content).and_then(Finish::new) {
                self.finish = Some(f);
            }
        }
    }

    fn event(&mut self, json: &[u8]) {
        let json = json.trim_ascii();
        match self.protocol {
            Protocol::Anthropic => {
                let usage = get(json, b"usage")
                    .or_else(|| get(json, b"message").and_then(|m| get(m, b"usage")));
                if let Some(u) = usage.filter(|u| members(u).is_some()) {
                    self.anthropic.read(u);
                    self.seen = Some(self.anthropic.usage());
                }
            }
            Protocol::OpenAi => {
                let response = get(json, b"response");
                if let Some(status) = response.and_then(|r| get(r, b"status")) {
                    self.finish = str_content(status).and_then(Finish::new).or(self.finish);
                }
                let usage = get(json, b"usage").or_else(|| response.and_then(|r| get(r, b"usage")));
                if let Some(u) = usage.and_then(|u| read_usage(Protocol::OpenAi, u)) {
                    self.seen = Some(translate::Usage {
                        input: u.input,
                        output: u.output,
                        cache_read: u.cache_read,
                        ..translate::Usage::default()
                    });
                }
            }
        }
    }

    /// The last usage the stream reported.
    pub fn usage(&self) -> Option<Usage> {
        self.seen.map(Usage::from)
    }

    /// The last finish reason the stream reported.
    pub fn finish(&self) -> Option<Finish> {
        self.finish
    }
}

/// The keys a stream's events are searched for.
static USAGE_KEY: Needle = Needle::new(b"\"usage\"");
static RESPONSE_KEY: Needle = Needle::new(b"\"response\"");
static REASON_KEY: Needle = Needle::new(b"_reason\"");

/// What follows a key's `:` (whitespace skipped), given what follows the key's closing quote;
/// `None` when no `:` comes next (the match was no key).
fn value_after(after: &[u8]) -> Option<&[u8]> {
    after
        .trim_ascii_start()
        .strip_prefix(b":")
        .map(<[u8]>::trim_ascii_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_each_protocol() {
        let chat = br#"{"id":"x","usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let resp = br#"{"usage":{"input_tokens":10,"output_tokens":3,"input_tokens_details":{"cached_tokens":4}}}"#;
        let msgs = br#"{"usage":{"input_tokens":6,"cache_read_input_tokens":4,"output_tokens":3}}"#;
        let want = Usage {
            input: 10,
            output: 3,
            cache_read: 4,
        };
        assert_eq!(parse_body(Protocol::OpenAi, chat), Some(want));
        assert_eq!(parse_body(Protocol::OpenAi, resp), Some(want));
        assert_eq!(parse_body(Protocol::Anthropic, msgs), Some(want));
        assert_eq!(parse_body(Protocol::OpenAi, b"{\"usage\":null}"), None);
        let finish = |p, b: &[u8]| parse_finish(p, b).map(|f| f.as_str().to_string());
        let chat = br#"{"choices":[{"index":0,"message":{},"finish_reason":"tool_calls"}]}"#;
        assert_eq!(
            finish(Protocol::OpenAi, chat).as_deref(),
            Some("tool_calls")
        );
        let resp = br#"{"id":"r","status":"incomplete","output":[]}"#;
        assert_eq!(
            finish(Protocol::OpenAi, resp).as_deref(),
            Some("incomplete")
        );
        let msgs = br#"{"content":[],"stop_reason":"max_tokens"}"#;
        assert_eq!(
            finish(Protocol::Anthropic, msgs).as_deref(),
            Some("max_tokens")
        );
        let null = br#"{"choices":[{"finish_reason":null}]}"#;
        assert_eq!(finish(Protocol::OpenAi, null), None);
        let odd = br#"{"stop_reason":"a\"b"}"#;
        assert_eq!(finish(Protocol::Anthropic, odd), None);
    }

    #[test]
    fn stream_finish_reasons_of_each_protocol() {
        let mut t = StreamTap::new(Protocol::OpenAi);
        t.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x_reason\\\"\"},\"finish_reason\":null}]}\n\n");
        assert_eq!(t.finish(), None);
        t.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\": \"length\"}]}\n\ndata: [DONE]\n\n");
        assert_eq!(
            t.finish().map(|f| f.as_str().to_string()).as_deref(),
            Some("length")
        );
        let mut t = StreamTap::new(Protocol::Anthropic);
        t.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"stop_reason\":null}}\n\n");
        assert_eq!(t.finish(), None);
        t.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n");
        assert_eq!(
            t.finish().map(|f| f.as_str().to_string()).as_deref(),
            Some("end_turn")
        );
        let mut t = StreamTap::new(Protocol::OpenAi);
        t.feed(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n");
        assert_eq!(
            t.finish().map(|f| f.as_str().to_string()).as_deref(),
            Some("completed")
        );
        // A Responses event whose usage is null still gives its status (the null-usage skip
        // is for chat chunks only).
        let mut t = StreamTap::new(Protocol::OpenAi);
        t.feed(b"event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"usage\" : null}}\n\n");
        assert_eq!(
            t.finish().map(|f| f.as_str().to_string()).as_deref(),
            Some("incomplete")
        );
    }

    #[test]
    fn tails_of_bodies_split_anywhere() {
        let mut body =
            br#"{"id":"x","choices":[{"message":{"content":"the word \"usage\": here"}}],"#
                .to_vec();
        body.extend(std::iter::repeat_n(b' ', USAGE_TAIL));
        body.extend_from_slice(
            br#""usage" : {"prompt_tokens":10,"completion_tokens":3},"system_fingerprint":"fp"}"#,
        );
        for step in [1, 7, 4096, USAGE_TAIL + 5, body.len()] {
            let mut tail = Vec::new();
            for part in body.chunks(step) {
                keep_tail(&mut tail, part);
            }
            assert!(tail.len() <= USAGE_TAIL);
            let u = parse_tail(Protocol::OpenAi, &tail).map(|u| (u.input, u.output));
            assert_eq!(u, Some((10, 3)), "reads of {step}");
        }
        assert_eq!(parse_tail(Protocol::OpenAi, br#"{"choices":[]}"#), None);
    }

    #[test]
    fn streams_of_each_protocol() {
        let chat = b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
        let mut t = StreamTap::new(Protocol::OpenAi);
        t.feed(chat);
        assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((10, 3)));
        // Null usage lines (every chunk but the last) are passed over, also with the real one
        // in the same read after them, and the usage chunk is still cut when stripping.
        let chat = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\": null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        let mut t = StreamTap::new(Protocol::OpenAi).stripping(true);
        let cut = t.feed(chat).expect("the usage chunk is found");
        assert!(chat[cut.clone()].starts_with(b"data: {\"choices\":[],\"usage\":{"));
        assert!(chat[cut.end..].starts_with(b"data: [DONE]"));
        assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((7, 2)));
        let mut t = StreamTap::new(Protocol::Anthropic);
        t.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":6,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n");
        t.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n");
        assert_eq!(
            t.usage(),
            Some(Usage {
                input: 10,
                output: 3,
                cache_read: 4
            })
        );
    }
}
