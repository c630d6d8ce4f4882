//! The streaming state machine: one SSE event per call, with its pacing delay.
//!
//! A stream follows a plan: the list of its events ([`Ev`]), made once per request by the wire
//! shape's `plan` (see `chat`, `anthropic`, `responses`). Event `i` is written by the shape's
//! `write_event`, which appends to the caller's buffer and allocates nothing. Content pieces
//! ([`Ev::Piece`]: a word of text or thinking, a fragment of a call's arguments) are the paced
//! events: `ttft` before the first, `1 / tokens_per_s` before each later one; every other event
//! goes out without delay.
//!
//! A cut stream (the `cut-` model hook or an injected failure) stops after
//! [`CUT_AFTER_WORDS`] pieces: no closing events, no `[DONE]`. [`MockStream::ends_abruptly`]
//! tells the server to close the connection without the terminating chunk, as a crashed upstream
//! would. A failing stream (the `error-` hook) stops at the same point, sends the provider's
//! error event, and then ends cleanly at the HTTP level, so only the protocol says it failed.

use std::time::Duration;

use super::reply::Reply;
use super::timing::Timing;
use super::{anthropic, chat, responses, Endpoint};

/// Content events a cut or failing stream sends before it stops.
pub const CUT_AFTER_WORDS: u32 = 3;

/// A part of the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The thinking / reasoning block.
    Thinking,
    /// The text answer.
    Text,
    /// Tool call `k`.
    Call(u8),
}

/// One event of a stream; the wire shape gives each its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ev {
    /// Opening framing event `n` (the shape numbers its own).
    Open(u8),
    /// Event `n` that opens a part.
    Start(Part, u8),
    /// Piece `i` of a part's content: paced.
    Piece(Part, u32),
    /// Event `n` that closes a part.
    End(Part, u8),
    /// Closing framing event `n`.
    Close(u8),
    /// The provider's mid-stream error event (the `error-` hook).
    Error,
}

/// How a stream ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// Stop early and close the connection without the terminating chunk.
    pub cut: bool,
    /// Stop early with the provider's error event.
    pub error: bool,
}

/// A reply being streamed; drive it with [`MockStream::next_event`].
#[derive(Debug)]
pub struct MockStream {
    reply: Reply,
    plan: Vec<Ev>,
    step: usize,
    /// A piece went out already (the next one waits `gap`, not `ttft`).
    started: bool,
    ttft: Duration,
    gap: Duration,
    cut: bool,
    /// Drawn delays instead of the fixed ones, when the mock varies (see `timing`).
    timing: Option<Timing>,
    /// Content pieces written so far.
    pieces: u32,
}

impl MockStream {
    pub(crate) fn new(
        reply: Reply,
        ttft: Duration,
        gap: Duration,
        ending: Ending,
        timing: Option<Timing>,
    ) -> Self {
        let mut plan = Vec::with_capacity(16 + 2 * reply.text.ends.len());
        match reply.endpoint {
            Endpoint::ChatCompletions => chat::plan(&reply, &mut plan),
            Endpoint::Messages | Endpoint::CountTokens => anthropic::plan(&reply, &mut plan),
            Endpoint::Responses => responses::plan(&reply, &mut plan),
        }
        if ending.cut || ending.error {
            let is_piece = |e: &Ev| matches!(e, Ev::Piece(..));
            let last_piece = plan
                .iter()
                .enumerate()
                .filter(|(_, e)| is_piece(e))
                .take(CUT_AFTER_WORDS as usize)
                .last()
                .map_or(0, |(i, _)| i + 1);
            plan.truncate(last_piece);
            if ending.error {
                plan.push(Ev::Error);
            }
        }
        MockStream {
            reply,
            plan,
            step: 0,
            started: false,
            ttft,
            gap,
            cut: ending.cut,
            timing,
            pieces: 0,
        }
    }

    /// Appends the next SSE event to `out` (a reused buffer; the caller clears it) and returns
    /// the delay to wait BEFORE sending it, or `None` when the stream is finished. After `None`,
    /// check [`MockStream::ends_abruptly`] to decide how to end the response.
    pub fn next_event(&mut self, out: &mut Vec<u8>) -> Option<Duration> {
        let ev = *self.plan.get(self.step)?;
        let delay = match ev {
            Ev::Piece(..) if self.started => {
                self.pieces += 1;
                self.timing
                    .as_ref()
                    .map_or(self.gap, |t| t.gap(self.pieces))
            }
            Ev::Piece(..) => {
                self.started = true;
                // The first piece's draw was made with the reply (it is the reply's TTFT).
                self.ttft
            }
            _ => Duration::ZERO,
        };
        // The event's position is its Responses `sequence_number`; plans are short.
        let seq = self.step as u64;
        match self.reply.endpoint {
            Endpoint::ChatCompletions => chat::write_event(&self.reply, ev, out),
            Endpoint::Messages | Endpoint::CountTokens => {
                anthropic::write_event(&self.reply, ev, out)
            }
            Endpoint::Responses => responses::write_event(&self.reply, ev, seq, out),
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

    /// Whether this stream will stall once midway (see `timing`).
    pub fn stalls(&self) -> bool {
        self.timing
            .as_ref()
            .is_some_and(|t| t.stall_before.is_some())
    }

    /// The full reply text, as the client will have assembled it from a complete stream
    /// (empty when the reply is tool calls).
    pub fn text(&self) -> &str {
        &self.reply.text.text
    }
}
