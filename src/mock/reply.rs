//! The generated answer to one request: its parts (thinking, text or tool calls), ids and usage.
//!
//! A [`Reply`] is built once per request (a few small allocations) and then only read: the body
//! writers and the stream state machine slice words and argument fragments out of the stored
//! strings by stored offsets, so no event allocates.
//!
//! The parts are deterministic (see the module doc of `mock` for the exact shapes):
//! - thinking, when the request enables it: [`THINKING_PREAMBLE`] then the quoted words;
//! - tool calls, when the request offers tools and the last turn is a user turn;
//! - otherwise text: a fixed preamble ([`PREAMBLE`], or [`TOOL_PREAMBLE`] after tool results),
//!   up to [`ECHO_WORDS`](super::request::ECHO_WORDS) quoted words, then lorem words, cut to
//!   the word count. One word is one output token.

use super::request::{Request, Turn};
use super::stream::Part;
use super::tools;
use super::Endpoint;

/// The words every text reply to a user turn starts with.
pub(crate) const PREAMBLE: [&str; 8] = [
    "This",
    "is",
    "a",
    "mock",
    "reply",
    "from",
    "Switchyard",
    "to:",
];

/// The words a text reply to tool results starts with, before the result's first words.
pub(crate) const TOOL_PREAMBLE: [&str; 2] = ["Tool", "said:"];

/// The words thinking / reasoning text starts with, before the quoted words.
pub(crate) const THINKING_PREAMBLE: [&str; 3] = ["Mock", "thinking", "about:"];

/// The `signature` of every thinking block (base64 of `mock-thinking-signature`).
pub const THINKING_SIGNATURE: &str = "bW9jay10aGlua2luZy1zaWduYXR1cmU=";

/// The `encrypted_content` of a reasoning item (base64 of `mock-encrypted-reasoning`).
pub const ENCRYPTED_REASONING: &str = "bW9jay1lbmNyeXB0ZWQtcmVhc29uaW5n";

/// Bytes per streamed argument fragment (a call's arguments always go in at least two).
pub const FRAGMENT_BYTES: usize = 8;

/// Filler after the echoed words, cycled as needed.
const LOREM: [&str; 19] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

/// A text split into streamable pieces: word `i` ends at byte `ends[i]`.
#[derive(Debug, Default)]
pub(crate) struct Words {
    /// The whole text.
    pub text: String,
    /// Byte offset in `text` where each piece ends.
    pub ends: Vec<u32>,
}

impl Words {
    /// Words joined by single spaces.
    fn join<'w>(words: impl Iterator<Item = &'w str>) -> Words {
        let mut w = Words::default();
        for word in words {
            if !w.text.is_empty() {
                w.text.push(' ');
            }
            w.text.push_str(word);
            // Quoted words are capped, so the text stays far below 4 GiB.
            w.ends.push(w.text.len() as u32);
        }
        w
    }

    /// `text` cut into pieces of at most [`FRAGMENT_BYTES`] on character boundaries, and at
    /// least two pieces when it has two characters.
    fn fragments(text: String) -> Words {
        let mut ends = Vec::new();
        let mut at = 0;
        let step = FRAGMENT_BYTES.min(text.len() / 2).max(1);
        while at < text.len() {
            let mut end = (at + step).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            ends.push(end as u32);
            at = end;
        }
        Words { text, ends }
    }

    /// Pieces, as output tokens.
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.ends.len()).unwrap_or(u32::MAX)
    }

    /// Piece `i` as streamed: for words, the first bare and `" word"` after.
    pub(crate) fn piece(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

/// The reasoning part of a reply.
#[derive(Debug)]
pub(crate) struct Thinking {
    /// The thinking (Anthropic) or reasoning summary (Responses) text.
    pub words: Words,
    /// Responses: the `rs_…` id of the reasoning item.
    pub item_id: String,
    /// Responses: write the text as a summary (`reasoning.summary` was set).
    pub summary: bool,
    /// Responses: add `encrypted_content` (`include` asked for it).
    pub encrypted: bool,
}

/// One tool call.
#[derive(Debug)]
pub(crate) struct Call {
    /// `call_…` (chat; Responses `call_id`) or `toolu_…` (Anthropic).
    pub id: String,
    /// Responses: the `fc_…` id of the function_call item.
    pub item_id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments JSON, split into streamed fragments.
    pub arguments: Words,
}

/// Everything the writers need to produce one reply in any wire shape.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Which API shape to write.
    pub endpoint: Endpoint,
    /// The request's `model`, echoed.
    pub model: String,
    /// `chatcmpl-…`, `msg_…` or `resp_…`.
    pub id: String,
    /// Responses only: the `msg_…` id of the output message item.
    pub item_id: String,
    /// Unix seconds.
    pub created: u64,
    /// Thinking before the answer (chat: counted in usage only, never sent).
    pub thinking: Option<Thinking>,
    /// The text answer; empty when the reply is tool calls.
    pub text: Words,
    /// The tool calls, in order; empty for a text answer.
    pub calls: Vec<Call>,
    /// Estimated prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Prompt tokens read from the cache (half when the request asks for caching).
    pub cached_tokens: u64,
    /// The request's bound cut the text short (finish reason `length` / `max_tokens` /
    /// Responses status `incomplete`).
    pub truncated: bool,
    /// Chat: send `usage: null` on chunks and a final usage chunk.
    pub include_usage: bool,
    /// Responses: echoed `max_output_tokens`.
    pub max_output_tokens: Option<u64>,
    /// Responses: echoed `instructions`.
    pub instructions: Option<String>,
    /// Responses: echoed `previous_response_id`.
    pub previous_response_id: Option<String>,
    /// Responses: echoed `reasoning.effort` and `reasoning.summary`.
    pub effort: Option<String>,
    /// See `effort`.
    pub summary: Option<String>,
    /// Responses: echoed `store`.
    pub store: bool,
}

impl Reply {
    /// Builds the reply for `req`; `new_id(prefix)` makes a fresh id. Text has `reply_tokens`
    /// words unless the request bounds it lower, and at least one word.
    pub(crate) fn new(
        endpoint: Endpoint,
        req: Request,
        reply_tokens: u32,
        new_id: &mut dyn FnMut(&str) -> String,
        created: u64,
    ) -> Self {
        let responses = endpoint == Endpoint::Responses;
        let anthropic = matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens);
        let id = new_id(match endpoint {
            Endpoint::ChatCompletions => "chatcmpl-",
            Endpoint::Messages | Endpoint::CountTokens => "msg_",
            Endpoint::Responses => "resp_",
        });
        let quoted = match req.turn {
            Turn::ToolResult => &req.tool_words,
            _ => &req.echo,
        };

        let thinking = req.thinking.then(|| Thinking {
            words: Words::join(
                THINKING_PREAMBLE
                    .iter()
                    .copied()
                    .chain(quoted.iter().map(String::as_str)),
            ),
            item_id: if responses {
                new_id("rs_")
            } else {
                String::new()
            },
            summary: req.summary.is_some(),
            encrypted: req.encrypted,
        });

        let picked = if req.turn == Turn::User {
            tools::pick(
                &req.tools,
                &req.choice,
                req.parallel && req.parallel_allowed,
            )
        } else {
            Vec::new()
        };
        let calls: Vec<Call> = picked
            .into_iter()
            .map(|t| Call {
                id: new_id(if anthropic { "toolu_" } else { "call_" }),
                item_id: if responses {
                    new_id("fc_")
                } else {
                    String::new()
                },
                name: t.name.clone(),
                arguments: Words::fragments(tools::arguments(t, &req.echo)),
            })
            .collect();

        let (text, truncated) = if calls.is_empty() {
            let natural = u64::from(reply_tokens.max(1));
            let words = req.bound.map_or(natural, |b| b.min(natural)).max(1);
            // `words` is at most `u32::MAX`, so the cast cannot truncate.
            let words = words as usize;
            let preamble: &[&str] = if req.turn == Turn::ToolResult {
                &TOOL_PREAMBLE
            } else {
                &PREAMBLE
            };
            let text = Words::join(
                preamble
                    .iter()
                    .copied()
                    .chain(quoted.iter().map(String::as_str))
                    .chain(LOREM.iter().copied().cycle())
                    .take(words),
            );
            (text, req.bound.is_some_and(|b| b < natural))
        } else {
            (Words::default(), false)
        };

        Reply {
            endpoint,
            input_tokens: req.input_tokens(),
            cached_tokens: req.cached_tokens(),
            model: req.model,
            id,
            item_id: if responses {
                new_id("msg_")
            } else {
                String::new()
            },
            created,
            thinking,
            text,
            calls,
            truncated,
            include_usage: req.include_usage,
            max_output_tokens: req.bound.filter(|_| responses),
            instructions: req.instructions,
            previous_response_id: req.previous_response_id,
            effort: req.effort,
            summary: req.summary,
            store: req.store,
        }
    }

    /// Reasoning tokens: one per thinking word.
    pub(crate) fn reasoning_tokens(&self) -> u64 {
        self.thinking
            .as_ref()
            .map_or(0, |t| u64::from(t.words.len()))
    }

    /// Output tokens: one per word of text and thinking and per argument fragment.
    pub(crate) fn output_tokens(&self) -> u64 {
        let calls: u64 = self
            .calls
            .iter()
            .map(|c| u64::from(c.arguments.len()))
            .sum();
        u64::from(self.text.len()) + self.reasoning_tokens() + calls
    }

    /// Whether the reply is tool calls.
    pub(crate) fn is_tool_use(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The streamed pieces of `part`.
    pub(crate) fn words(&self, part: Part) -> &Words {
        static EMPTY: Words = Words {
            text: String::new(),
            ends: Vec::new(),
        };
        match part {
            Part::Thinking => self.thinking.as_ref().map_or(&EMPTY, |t| &t.words),
            Part::Text => &self.text,
            Part::Call(k) => self
                .calls
                .get(usize::from(k))
                .map_or(&EMPTY, |c| &c.arguments),
        }
    }

    /// The position of `part` among the content blocks (Anthropic `index`) or output items
    /// (Responses `output_index`): thinking first, then the text or the calls.
    pub(crate) fn index(&self, part: Part) -> u32 {
        let after = u32::from(self.thinking.is_some());
        match part {
            Part::Thinking => 0,
            Part::Text => after,
            Part::Call(k) => after + u32::from(k),
        }
    }

    /// The parts after thinking, in order: the text, or each call.
    pub(crate) fn answer_parts(&self) -> impl Iterator<Item = Part> {
        let calls = u8::try_from(self.calls.len()).unwrap_or(u8::MAX);
        let text = (calls == 0).then_some(Part::Text);
        text.into_iter().chain((0..calls).map(Part::Call))
    }

    /// Tool call `k` (a valid index from [`Reply::answer_parts`]).
    pub(crate) fn call(&self, k: u8) -> Option<&Call> {
        self.calls.get(usize::from(k))
    }
}
