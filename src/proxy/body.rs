//! Body scan: the request JSON validated and its top-level keys located in place, once
//! (`scan`); the fields the route needs read off those spans; what the policies need to know
//! (`Features`) derived from them. Nothing here copies or re-parses the body.

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};
use crate::route::policy::{self, Features};
use crate::route::Model;
use crate::scan::{self, Key, TopLevel};
use crate::server::conn::Request;
use std::borrow::Cow;

/// Tokens estimated per byte of request text: ~4 bytes a token for English BPE vocabularies.
/// Used for `costEstimate` and the local `count_tokens` estimate.
pub const BYTES_PER_TOKEN: usize = 4;

/// What the scan found.
pub struct Scanned<'a> {
    /// Located top-level keys.
    pub top: TopLevel,
    /// The client's `model` value.
    pub model: Option<Cow<'a, str>>,
    /// The client asked for a stream.
    pub streaming: bool,
    /// What the policies read.
    pub feats: Features,
}

/// Scans the body of a POST endpoint.
pub fn scan<'a>(req: &Request<'a>, endpoint: Endpoint) -> Result<Scanned<'a>, Error> {
    let body = req.body;
    let top = scan::scan_top_level(body)
        .map_err(|e| Error::client(ErrorKind::InvalidRequest, e.message()))?;
    require_fields(endpoint, &top)?;
    let model = top
        .model_str(body)
        .map_err(|_| Error::client(ErrorKind::InvalidRequest, "`model` must be a string"))?;
    let streaming = top
        .stream_flag(body)
        .map_err(|_| Error::client(ErrorKind::InvalidRequest, "`stream` must be a boolean"))?;
    let max_output = [
        Key::MaxTokens,
        Key::MaxCompletionTokens,
        Key::MaxOutputTokens,
    ]
    .iter()
    .find_map(|k| top.uint(body, *k))
    .unwrap_or(0);
    let feats = Features {
        caps: policy::request_caps(body, &top),
        input_tokens: estimate_input_tokens(&top),
        max_output,
    };
    Ok(Scanned {
        top,
        model,
        streaming,
        feats,
    })
}

fn require_fields(endpoint: Endpoint, top: &TopLevel) -> Result<(), Error> {
    let missing = match endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens => {
            top.get(Key::Messages).is_none().then_some("messages")
        }
        Endpoint::Responses => (top.get(Key::Input).is_none()
            && top.get(Key::PreviousResponseId).is_none())
        .then_some("input"),
        Endpoint::Models => None,
    };
    match missing {
        Some(f) => Err(Error::client(
            ErrorKind::InvalidRequest,
            format!("missing required field `{f}`"),
        )),
        None => Ok(()),
    }
}

/// Input tokens estimated from the bytes of the prompt-bearing fields (`messages`, `input`,
/// `system`, `instructions`, `tools`) at [`BYTES_PER_TOKEN`]; documented in the README.
pub fn estimate_input_tokens(top: &TopLevel) -> u64 {
    let bytes: usize = [
        Key::Messages,
        Key::Input,
        Key::System,
        Key::Instructions,
        Key::Tools,
    ]
    .iter()
    .filter_map(|k| top.get(*k))
    .map(|s| (s.end - s.start) as usize)
    .sum();
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// `costEstimate` in USD: estimated input tokens at the input price plus the requested
/// `max_tokens` (or `max_completion_tokens` / `max_output_tokens`, 0 if absent) at the
/// output price.
pub fn cost_estimate(model: &Model, input_tokens: u64, max_output: u64) -> f64 {
    (input_tokens as f64 * model.input_per_million + max_output as f64 * model.output_per_million)
        / 1e6
}
