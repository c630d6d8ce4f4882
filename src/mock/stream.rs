//! The streaming state machine: one SSE event per call, with its pacing delay.
//!
//! A stream is `PRE` framing events, one content event per word, then `POST` closing events,
//! with the counts fixed by the wire shape (see `chat`, `anthropic`, `responses`). Event `step`
//! is written by the shape's `write_event`, which appends to the caller's buffer and allocates
//! nothing. Delays: zero for framing events, `ttft` before the first word, `1 / tokens_per_s`
//! before each later word.
//!
//! A cut stream (the `cut-` model hook or an injected failure) stops after the framing events and
//! [`CUT_AFTER_WORDS`] words: no closing events, no `[DONE]`. [`MockStream::ends_abruptly`] tells
//! the server to close the connection without the terminating chunk, as a crashed upstream would.

use std::time::Duration;

use super::reply::Reply;
use super::{anthropic, chat, responses, Endpoint};

/// Content events a cut stream sends before it stops.
pub const CUT_AFTER_WORDS: u32 = 3;

/// A reply being streamed; drive it with [`MockStream::next_event`].
#[derive(Debug)]
pub struct MockStream {
    reply: Reply,
    step: u32,
    /// Events before the first word.
    pre: u32,
    /// Events in the whole stream (or up to the cut).
    total: u32,
    ttft: Duration,
    gap: Duration,
    cut: bool,
}

impl MockStream {
    pub(crate) fn new(reply: Reply, ttft: Duration, gap: Duration, cut: bool) -> Self {
        let (pre, post) = match reply.endpoint {
            Endpoint::ChatCompletions => (chat::PRE, chat::post(&reply)),
            Endpoint::Messages | Endpoint::CountTokens => (anthropic::PRE, anthropic::POST),
            Endpoint::Responses => (responses::PRE, responses::POST),
        };
        let words = u32::try_from(reply.ends.len()).unwrap_or(u32::MAX);
        let total = if cut {
            pre.saturating_add(words.min(CUT_AFTER_WORDS))
        } else {
            pre.saturating_add(words).saturating_add(post)
        };
        MockStream {
            reply,
            step: 0,
            pre,
            total,
            ttft,
            gap,
            cut,
        }
    }

    /// Appends the next SSE event to `out` (a reused buffer; the caller clears it) and returns
    /// the delay to wait BEFORE sending it, or `None` when the stream is finished. After `None`,
    /// check [`MockStream::ends_abruptly`] to decide how to end the response.
    pub fn next_event(&mut self, out: &mut Vec<u8>) -> Option<Duration> {
        if self.step >= self.total {
            return None;
        }
        let step = self.step;
        let delay = if step == self.pre {
            self.ttft
        } else if step > self.pre && step < self.pre + self.reply.ends.len() as u32 {
            self.gap
        } else {
            Duration::ZERO
        };
        match self.reply.endpoint {
            Endpoint::ChatCompletions => chat::write_event(&self.reply, step, out),
            Endpoint::Messages | Endpoint::CountTokens => {
                anthropic::write_event(&self.reply, step, out)
            }
            Endpoint::Responses => responses::write_event(&self.reply, step, out),
        }
        self.step += 1;
        Some(delay)
    }

    /// True when this stream is cut: after the last event the server must close the connection
    /// without the terminating zero-length chunk (and without `[DONE]`/`message_stop`, which
    /// the stream never produced). Known from the start, so it can be checked at any time.
    pub fn ends_abruptly(&self) -> bool {
        self.cut
    }

    /// The full reply text, as the client will have assembled it from a complete stream.
    pub fn text(&self) -> &str {
        &self.reply.text
    }
}
