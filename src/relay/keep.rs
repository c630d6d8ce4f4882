//! Keeping a Responses answer in the conversation store before the client is told it is done.
//!
//! A whole answer is stored before its body is written; a stream's final event
//! (`response.completed` or `response.incomplete`) is found by framing the bytes bound for the
//! client, and the chunk holding it waits until the record is stored. So an id a client has
//! seen complete is one a restart cannot lose. A stream that fails (`response.failed`, an
//! upstream cut, the client leaving) is not stored: a later `previous_response_id` naming it
//! is a 404, never a conversation continued from half an answer. If the store cannot take
//! the record, the client gets a 503 (whole) or the error event (stream) instead of the end.

use crate::error::{Error, ErrorKind};
use crate::proxy::conversation::answered;
use crate::scan::members::get;
use crate::state::{Record, State};
use crate::translate::sse::Framer;

/// This turn's part of the record, fixed before any attempt: where it goes and what was asked.
pub struct Turn<'a> {
    /// The store.
    pub state: &'a State,
    /// The project's slug: the namespace of its ids.
    pub project: &'a str,
    /// `previous_response_id`, when this turn continues a conversation.
    pub previous: Option<&'a str>,
    /// This turn's input items (a JSON array).
    pub input: &'a [u8],
}

/// The recorder of one attempt's answer.
pub struct Keep<'a> {
    turn: &'a Turn<'a>,
    /// The gateway id of the model answering.
    model: &'a str,
    framer: Framer,
    /// The `data` of the final event, once seen.
    last: Vec<u8>,
    found: bool,
}

impl<'a> Keep<'a> {
    /// A recorder for an attempt of `model`.
    pub fn new(turn: &'a Turn<'a>, model: &'a str) -> Keep<'a> {
        Keep {
            turn,
            model,
            framer: Framer::new(),
            last: Vec::new(),
            found: false,
        }
    }

    /// Frames stream bytes bound for the client; true once they held the final event (its
    /// response is then ready for [`Keep::store_stream`]).
    pub fn saw_end(&mut self, bytes: &[u8]) -> bool {
        if self.found {
            return false;
        }
        let last = &mut self.last;
        let found = &mut self.found;
        let r = self.framer.feed(bytes, &mut |_event, data| {
            let ty = get(data, b"type").unwrap_or_default();
            if ty == b"\"response.completed\"" || ty == b"\"response.incomplete\"" {
                if let Some(resp) = get(data, b"response") {
                    last.clear();
                    last.extend_from_slice(resp);
                    *found = true;
                    return false;
                }
            }
            true
        });
        // An event too large to frame is never one we keep: the stream goes on unrecorded.
        r.is_ok() && self.found
    }

    /// Stores the response the stream's final event carried.
    pub async fn store_stream(&mut self) -> Result<(), Error> {
        let resp = std::mem::take(&mut self.last);
        let r = self.store(&resp).await;
        self.last = resp;
        r
    }

    /// Stores a whole response object. An answer that is not a response object (no `id` or
    /// `output`) is not kept, and not an error: the client still gets it.
    pub async fn store(&self, response: &[u8]) -> Result<(), Error> {
        let Some(a) = answered(response) else {
            crate::warn!("a Responses answer without id or output was not stored");
            return Ok(());
        };
        let t = self.turn;
        let rec = Record {
            id: a.id.to_owned(),
            previous: t.previous.map(str::to_owned),
            model: self.model.to_owned(),
            created_at: a.created_at.unwrap_or_else(unix_now),
            status: a.status.to_owned(),
            input: t.input.to_vec(),
            output: a.output.to_vec(),
            response: response.to_vec(),
        };
        t.state.put(t.project, rec).await.map_err(|e| {
            Error::gateway(
                ErrorKind::StateUnavailable,
                format!("the conversation store could not keep this response: {e}"),
            )
        })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
