//! Watching a passthrough stream's events as they are relayed, to know whether it ended
//! with its protocol's end event.
//!
//! A body that just stops (the upstream closes a close-delimited stream, or sends the last
//! chunk of a chunked one) is whole only when the protocol said so: chat completions'
//! `data: [DONE]`, Messages' `message_stop`, Responses' `response.completed` /
//! `response.incomplete` / `response.failed`. Anything else is a cut answer, and the relay
//! ends it with the error event rather than a clean end that makes it look whole.
//!
//! The relayed bytes are framed with the shared [`Framer`] as they pass and never changed or
//! copied on the way to the client (the framer keeps the current event's data in its own
//! reused buffers). An upstream's own error event (OpenAI `data: {"error":...}`, Anthropic and
//! Responses `event: error`) is remembered too: the stream then failed, and the client already
//! has the error event, so none is added.

use crate::scan::members::get;
use crate::scan::needle::Needle;
use crate::translate::sse::Framer;
use crate::translate::Api;

/// What the events so far said about how the stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No end yet.
    Open,
    /// The protocol's end event (a successful or failed answer, relayed as the provider
    /// sent it).
    End,
    /// The upstream's own error event: the stream failed and the client knows.
    Error,
}

/// The end-event watcher of one passthrough stream.
#[derive(Debug)]
pub struct Watch {
    api: Api,
    framer: Framer,
    seen: Seen,
    /// Framing gave up (an event past the framer's limit): the end is then unknown, and the
    /// stream is trusted to end as its framing says, as before this watcher existed.
    blind: bool,
}

impl Watch {
    /// A watcher for a stream of the client's `api`, framing with `framer` (a reused one:
    /// it is reset here).
    pub fn new(api: Api, mut framer: Framer) -> Watch {
        framer.reset();
        Watch {
            api,
            framer,
            seen: Seen::Open,
            blind: false,
        }
    }

    /// Gives the framer back for the next stream.
    pub fn into_framer(self) -> Framer {
        self.framer
    }

    /// Looks at one relayed payload.
    pub fn feed(&mut self, payload: &[u8]) {
        if self.blind || self.seen != Seen::Open {
            return;
        }
        let (api, seen) = (self.api, &mut self.seen);
        let r = self.framer.feed(payload, &mut |event, data| {
            *seen = classify(api, event, data);
            *seen == Seen::Open
        });
        self.blind = r.is_err();
    }

    /// The body ended by its framing: what the events said, the last one included.
    pub fn finish(&mut self) -> Seen {
        if !self.blind && self.seen == Seen::Open {
            let (api, seen) = (self.api, &mut self.seen);
            self.framer.finish(&mut |event, data| {
                *seen = classify(api, event, data);
                false
            });
        }
        if self.blind {
            Seen::End
        } else {
            self.seen
        }
    }
}

/// An `error` key: an event without it is no error event, and is passed without parsing (a
/// chat chunk's members were parsed per event, most of the watch's cost). A key spelled with
/// escapes (`"\u0065rror"`) is so not seen as one: that stream, which has no end event either,
/// still ends with the gateway's own error event, never as a whole answer.
static ERROR_KEY: Needle = Needle::new(b"\"error\"");

/// Whether `data` has a top-level `error` member.
fn has_error(data: &[u8]) -> bool {
    ERROR_KEY.is_in(data) && get(data, b"error").is_some()
}

/// What one event means for the end of a stream of `api`.
fn classify(api: Api, event: &[u8], data: &[u8]) -> Seen {
    match api {
        Api::Chat if data == b"[DONE]" => Seen::End,
        Api::Chat if has_error(data) => Seen::Error,
        Api::Chat => Seen::Open,
        Api::Messages => match event {
            b"message_stop" => Seen::End,
            b"error" => Seen::Error,
            // An event without its name: its data's `type` says the same.
            b"" => match get(data, b"type") {
                Some(b"\"message_stop\"") => Seen::End,
                Some(b"\"error\"") => Seen::Error,
                _ => Seen::Open,
            },
            _ => Seen::Open,
        },
        Api::Responses => {
            let ty = match event {
                b"" => get(data, b"type")
                    .and_then(|t| t.strip_prefix(b"\""))
                    .and_then(|t| t.strip_suffix(b"\""))
                    .unwrap_or_default(),
                e => e,
            };
            match ty {
                b"response.completed" | b"response.incomplete" | b"response.failed" => Seen::End,
                b"error" => Seen::Error,
                _ if event.is_empty()
                    && ERROR_KEY.is_in(data)
                    && get(data, b"error").is_some_and(|e| e != b"null") =>
                {
                    Seen::Error
                }
                _ => Seen::Open,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(api: Api, body: &[u8]) -> Seen {
        // The verdict must not depend on how the body was split.
        let mut first = None;
        for at in 0..=body.len() {
            let mut w = Watch::new(api, Framer::new());
            w.feed(&body[..at]);
            w.feed(&body[at..]);
            let s = w.finish();
            assert!(first.is_none_or(|f| f == s), "split at {at}");
            first = Some(s);
        }
        first.unwrap_or(Seen::Open)
    }

    #[test]
    fn end_events_of_each_protocol() {
        let table: &[(Api, &[u8], Seen)] = &[
            (Api::Chat, b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n", Seen::End),
            (Api::Chat, b"data: {\"choices\":[]}\n\ndata: [DONE]\n", Seen::End),
            (Api::Chat, b"data: {\"choices\":[]}\n\n", Seen::Open),
            (Api::Chat, b"data: {\"choices\":[]}\n\ndata: [DO", Seen::Open),
            (Api::Chat, b"data: {\"error\":{\"message\":\"x\"}}\n\n", Seen::Error),
            (
                Api::Messages,
                b"event: message_start\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                Seen::End,
            ),
            (Api::Messages, b"event: message_delta\ndata: {}\n\n", Seen::Open),
            (Api::Messages, b"data: {\"type\":\"message_stop\"}\n\n", Seen::End),
            (Api::Messages, b"event: error\ndata: {\"type\":\"error\"}\n\n", Seen::Error),
            (
                Api::Responses,
                b"event: response.created\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
                Seen::End,
            ),
            (Api::Responses, b"event: response.incomplete\ndata: {}\n\n", Seen::End),
            (Api::Responses, b"event: response.failed\ndata: {}\n\n", Seen::End),
            (
                Api::Responses,
                b"data: {\"type\":\"response.completed\",\"response\":{}}\n\n",
                Seen::End,
            ),
            (Api::Responses, b"event: response.output_text.delta\ndata: {}\n\n", Seen::Open),
            (Api::Responses, b"event: error\ndata: {\"type\":\"error\"}\n\n", Seen::Error),
            (Api::Responses, b"data: {\"error\":{\"message\":\"x\"}}\n\n", Seen::Error),
        ];
        for (api, body, want) in table {
            assert_eq!(
                seen(*api, body),
                *want,
                "{api:?} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
