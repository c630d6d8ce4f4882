//! Streams translated event by event.
//!
//! Upstream SSE bytes go through the [`Framer`](super::sse::Framer), a per-API decoder turns
//! each event into pivot [`Ev`]ents, and a per-API encoder writes them in the client's API.
//! Strings travel as the escaped bytes of the upstream's JSON (validated by the in-place
//! reader, [`crate::scan::members`]), never unescaped and re-escaped; each event's JSON is read
//! in place; the few buffers (SSE framing, held tool calls, the Responses text of the current
//! item) are reused, so a running stream allocates only when something outgrows them.
//!
//! The pivot stream's invariants, which the decoders guarantee and the encoders rely on:
//! - at most one content block is open; a block of another kind, a [`Ev::ToolStart`] or
//!   [`Ev::BlockEnd`] closes it. [`Ev::ToolArgs`] belongs to the last `ToolStart`.
//! - Chat upstreams may interleave parallel tool calls (`tool_calls[].index` 0 and 1
//!   alternating); Anthropic blocks and Responses items cannot. The chat decoder lets the first
//!   tool call that has a name stream live and holds the others (id, name, argument bytes) in
//!   reused per-index buffers until the choice finishes, then writes them in index order. A
//!   tool call is opened only once its name is known. The cost: with several calls, the second
//!   and later ones reach the client at the end of the choice rather than as they come (they are
//!   short JSON; correctness does not depend on the upstream's order).
//! - [`Ev::Stop`] and the last [`Ev::Usage`] come before [`Ev::End`], in either order (a chat
//!   upstream sends its `finish_reason` before the usage chunk); encoders that write both in
//!   one event (Anthropic `message_delta`) hold the stop reason until `End`.
//! - [`Ev::Usage`] carries running totals: a later one replaces an earlier one.

mod decode_chat;
mod decode_messages;
mod encode_chat;
mod encode_messages;
mod encode_responses;
#[cfg(test)]
pub(crate) mod tests;

use super::sse::Framer;
use super::{Api, Session, Stop, Usage};

/// Ids a translated answer is written with.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    /// The request's trace id (UUIDv7 text): translated answers' ids derive from it
    /// (`chatcmpl-<trace id>`, `msg_<hex>`, `resp_<hex>`), so they are unique and traceable.
    pub trace_id: &'a str,
    /// Unix seconds, for `created` / `created_at`.
    pub created: u64,
}

/// Where a stream stands after a feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More events may come.
    Open,
    /// The upstream's end event was seen and the client's closing events written: stop
    /// reading.
    Done,
    /// The upstream sent an error event (or bytes that are not its protocol): the client's
    /// error event was written and the stream is over; the answer is cut.
    Failed,
}

/// One pivot event. Byte slices are escaped JSON string contents (no quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ev<'a> {
    /// The upstream's answer began (message_start, the first chunk).
    Start,
    /// Answer text.
    Text(&'a [u8]),
    /// Reasoning text (Anthropic thinking, chat `reasoning_content` / `reasoning`).
    Thinking(&'a [u8]),
    /// The signature closing a thinking block.
    Signature(&'a [u8]),
    /// A tool call begins; its name is the provider's.
    ToolStart { id: &'a [u8], name: &'a [u8] },
    /// A fragment of the current tool call's JSON arguments.
    ToolArgs(&'a [u8]),
    /// The current block is complete.
    BlockEnd,
    /// Why the answer stopped.
    Stop(Stop),
    /// Usage so far (running totals).
    Usage(Usage),
    /// The upstream reported an error; `kind` is its raw `type`.
    Error { kind: &'a [u8], message: &'a [u8] },
    /// The upstream's end event.
    End,
}

/// A decoder's refusal of an event: not its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadEvent;

enum Decoder {
    Chat(decode_chat::ChatDecoder),
    Messages(decode_messages::MessagesDecoder),
}

enum Encoder {
    Chat(encode_chat::ChatEncoder),
    Messages(encode_messages::MessagesEncoder),
    Responses(Box<encode_responses::ResponsesEncoder>),
}

impl Encoder {
    fn on(&mut self, ev: Ev<'_>, out: &mut Vec<u8>) {
        match self {
            Encoder::Chat(e) => e.on(ev, out),
            Encoder::Messages(e) => e.on(ev, out),
            Encoder::Responses(e) => e.on(ev, out),
        }
    }
}

/// One stream's translator: the upstream API's decoder feeding the client API's encoder.
pub struct Translator {
    framer: Framer,
    decoder: Decoder,
    encoder: Encoder,
    state: Progress,
    usage: Option<Usage>,
    stop: Option<Stop>,
}

/// The message of the client's error event when the upstream's bytes are not its protocol.
const MALFORMED: &[u8] = b"the upstream sent a malformed stream event";
/// The message when the upstream's body ended before its end event.
const TRUNCATED: &[u8] = b"the upstream stream ended before its end event";

impl Translator {
    /// A translator for one stream of `session`.
    pub fn new(session: &Session, ids: &Ids<'_>) -> Translator {
        let decoder = match session.upstream {
            Api::Messages => Decoder::Messages(decode_messages::MessagesDecoder::default()),
            Api::Chat | Api::Responses => Decoder::Chat(decode_chat::ChatDecoder::default()),
        };
        let encoder = match session.client {
            Api::Chat => Encoder::Chat(encode_chat::ChatEncoder::new(session, ids)),
            Api::Messages => Encoder::Messages(encode_messages::MessagesEncoder::new(session, ids)),
            Api::Responses => Encoder::Responses(Box::new(
                encode_responses::ResponsesEncoder::new(session, ids),
            )),
        };
        Translator {
            framer: Framer::new(),
            decoder,
            encoder,
            state: Progress::Open,
            usage: None,
            stop: None,
        }
    }

    /// Feeds upstream SSE bytes (HTTP framing removed), split anywhere; appends the client's
    /// SSE bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        if self.state != Progress::Open {
            return self.state;
        }
        let Translator {
            framer,
            decoder,
            encoder,
            state,
            usage,
            stop,
        } = self;
        let mut on_event = |name: &[u8], data: &[u8]| {
            on_event(decoder, encoder, state, (usage, stop), name, data, out)
        };
        if framer.feed(input, &mut on_event).is_err() && *state == Progress::Open {
            fail(encoder, state, MALFORMED, out);
        }
        self.state
    }

    /// The upstream body ended (its HTTP framing said so) or failed (`error` is the reason):
    /// appends what the client's stream still needs (its error event when the upstream's end
    /// event never came). Returns whether the answer was whole.
    pub fn finish(&mut self, error: Option<&str>, out: &mut Vec<u8>) -> bool {
        if self.state == Progress::Open {
            if error.is_none() {
                let Translator {
                    framer,
                    decoder,
                    encoder,
                    state,
                    usage,
                    stop,
                } = self;
                framer.finish(&mut |name: &[u8], data: &[u8]| {
                    on_event(decoder, encoder, state, (usage, stop), name, data, out)
                });
            }
            if self.state == Progress::Open {
                let mut msg = Vec::new();
                match error {
                    Some(e) => crate::scan::push_json_escaped(&mut msg, e),
                    None => msg.extend_from_slice(TRUNCATED),
                }
                fail(&mut self.encoder, &mut self.state, &msg, out);
            }
        }
        self.state == Progress::Done
    }

    /// The usage the stream reported, once known.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Why the upstream's answer stopped, once known.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }
}

fn fail(encoder: &mut Encoder, state: &mut Progress, message: &[u8], out: &mut Vec<u8>) {
    encoder.on(
        Ev::Error {
            kind: b"api_error",
            message,
        },
        out,
    );
    *state = Progress::Failed;
}

/// One framed event through the decoder and encoder; false stops framing.
fn on_event(
    decoder: &mut Decoder,
    encoder: &mut Encoder,
    state: &mut Progress,
    (usage, stop): (&mut Option<Usage>, &mut Option<Stop>),
    name: &[u8],
    data: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    if *state != Progress::Open {
        return false;
    }
    let mut sink = |ev: Ev<'_>| {
        if *state != Progress::Open {
            return;
        }
        match ev {
            Ev::Usage(u) => *usage = Some(u),
            Ev::Stop(s) => *stop = Some(s),
            Ev::End => *state = Progress::Done,
            Ev::Error { .. } => *state = Progress::Failed,
            _ => {}
        }
        encoder.on(ev, out);
    };
    // Strings are copied into the client's JSON as they are: they must be UTF-8.
    let r = if simdutf8::basic::from_utf8(data).is_err() {
        Err(BadEvent)
    } else {
        match decoder {
            Decoder::Chat(d) => d.decode(data, &mut sink),
            Decoder::Messages(d) => d.decode(name, data, &mut sink),
        }
    };
    if r.is_err() && *state == Progress::Open {
        fail(encoder, state, MALFORMED, out);
    }
    *state == Progress::Open
}
