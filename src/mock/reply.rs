//! The generated answer to one request: its text, word boundaries, ids and usage.
//!
//! A [`Reply`] is built once per request (a few small allocations) and then only read: the body
//! writers and the stream state machine slice words out of `text` by the stored offsets, so no
//! event allocates. The text is deterministic: a fixed preamble, up to
//! [`ECHO_WORDS`](super::request::ECHO_WORDS) words of the last user message, then lorem words,
//! cut to the word count. One word is one output token.

use super::request::Request;
use super::Endpoint;

/// The words every reply starts with.
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
    /// The whole reply: words joined by single spaces.
    pub text: String,
    /// Byte offset in `text` where each word ends; its length is the output token count.
    pub ends: Vec<u32>,
    /// Estimated prompt tokens.
    pub input_tokens: u64,
    /// The request's bound cut the reply short (finish reason `length` / `max_tokens` /
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
    /// Responses: echoed `store`.
    pub store: bool,
}

impl Reply {
    /// Builds the reply for `req`: `reply_tokens` words unless the request bounds it lower,
    /// and at least one word.
    pub(crate) fn new(
        endpoint: Endpoint,
        req: Request,
        reply_tokens: u32,
        id: String,
        item_id: String,
        created: u64,
    ) -> Self {
        let natural = u64::from(reply_tokens.max(1));
        let words = req.bound.map_or(natural, |b| b.min(natural)).max(1);
        let truncated = req.bound.is_some_and(|b| b < natural);
        // `words` is at most `u32::MAX`, so the cast cannot truncate.
        let words = words as usize;

        let echo = req.echo.iter().map(String::as_str);
        let lorem = LOREM.iter().copied().cycle();
        let mut text = String::new();
        let mut ends = Vec::with_capacity(words);
        for w in PREAMBLE
            .iter()
            .copied()
            .chain(echo)
            .chain(lorem)
            .take(words)
        {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(w);
            // Echoed words are capped, so the text stays far below 4 GiB.
            ends.push(text.len() as u32);
        }

        Reply {
            endpoint,
            input_tokens: req.input_tokens(),
            model: req.model,
            id,
            item_id,
            created,
            text,
            ends,
            truncated,
            include_usage: req.include_usage,
            max_output_tokens: req.bound.filter(|_| endpoint == Endpoint::Responses),
            instructions: req.instructions,
            previous_response_id: req.previous_response_id,
            store: req.store,
        }
    }

    /// Output tokens: one per word.
    pub(crate) fn output_tokens(&self) -> u64 {
        self.ends.len() as u64
    }

    /// The streamed delta for word `i`: the word itself for the first, `" word"` after.
    pub(crate) fn delta(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}
