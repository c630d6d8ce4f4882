//! Streams translated event by event. (Interface; the decoders and encoders land here.)

use super::{Session, Usage};

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

/// One stream's translator: the upstream API's decoder feeding the client API's encoder.
pub struct Translator {
    _session: (),
}

impl Translator {
    /// A translator for one stream of `session`.
    pub fn new(session: &Session, ids: &Ids<'_>) -> Translator {
        let _ = (session, ids);
        Translator { _session: () }
    }

    /// Feeds upstream SSE bytes (HTTP framing removed), split anywhere; appends the client's
    /// SSE bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let _ = (input, out);
        Progress::Open
    }

    /// The upstream body ended (its HTTP framing said so) or failed (`error` is the reason):
    /// appends what the client's stream still needs (its error event when the upstream's end
    /// event never came). Returns whether the answer was whole.
    pub fn finish(&mut self, error: Option<&str>, out: &mut Vec<u8>) -> bool {
        let _ = (error, out);
        false
    }

    /// The usage the stream reported, once known.
    pub fn usage(&self) -> Option<Usage> {
        None
    }
}
