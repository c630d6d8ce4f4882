//! Requests in the provider's API.
//!
//! The client's body is parsed once with simd-json (on the caller's scratch copy), read into a
//! [`pivot::Pivot`] by its API's parser (`from_chat`, `from_messages`, `from_responses`) and
//! written by the provider's writer (`to_messages`, `to_chat`). Every member of the client's
//! body is either carried over, refused ([`Refused`], a 400 naming the field: the provider
//! cannot honour its meaning) or dropped and named in [`Session::dropped`] (advisory fields,
//! hosted tools): the parsers walk the top-level object member by member so nothing passes
//! unseen. The decisions, with the providers' references they follow, are in
//! `docs/translation.md`.

mod from_chat;
mod from_messages;
mod from_responses;
mod json;
pub mod pivot;
mod to_chat;
mod to_messages;

#[cfg(test)]
mod tests;

use simd_json::prelude::*;

use super::{names::ToolNames, Api, Dropped, Session};

/// The provider side of one translated request.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The provider's API (`Chat` or `Messages`).
    pub upstream: Api,
    /// The model's `upstream_id` as a JSON string literal, quotes included.
    pub model_json: &'a [u8],
    /// The model id the client knows (the gateway's model id).
    pub client_model: &'a str,
    /// Sent as `max_tokens` to a Messages provider when the client gave no bound.
    pub max_output_tokens: u64,
}

/// A request the provider cannot honour: answered 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The field, as the client named it (`n`, `logprobs`, `messages[2].content[0].type`...).
    pub field: String,
    /// Why, in a sentence the client can act on.
    pub message: String,
}

impl Refused {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Refused {
        Refused {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Names `field` in the dropped list once.
pub(crate) fn drop_named(dropped: &mut Dropped, field: &'static str) {
    if !dropped.contains(&field) {
        dropped.push(field);
    }
}

/// Translates the client's `body` (already validated as JSON by the scan) from `client`'s API
/// into `target.upstream`'s, appending the provider's JSON body to `out`. `scratch` is the
/// reused copy simd-json parses in place.
pub fn translate(
    body: &[u8],
    client: Api,
    target: &Target<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<Session, Refused> {
    let mut session = Session {
        client,
        upstream: target.upstream,
        tools: ToolNames::default(),
        dropped: Dropped::new(),
        include_usage: client != Api::Chat,
        model: target.client_model.to_owned(),
        echo: String::new(),
    };
    scratch.clear();
    scratch.extend_from_slice(body);
    let root = simd_json::to_borrowed_value(scratch)
        .map_err(|_| Refused::new("body", "The request body is not valid JSON."))?;
    if !root.is_object() {
        return Err(Refused::new(
            "body",
            "The request body must be a JSON object.",
        ));
    }
    let pivot = match (client, target.upstream) {
        (Api::Chat, Api::Messages) => from_chat::parse(&root, &mut session)?,
        (Api::Messages, Api::Chat) => from_messages::parse(&root, &mut session)?,
        (Api::Responses, Api::Chat | Api::Messages) => {
            from_responses::parse(&root, target.upstream, &mut session)?
        }
        (c, u) => {
            return Err(Refused::new(
                "model",
                format!("The gateway does not translate {c:?} requests to {u:?}."),
            ))
        }
    };
    let start = out.len();
    let written = match target.upstream {
        Api::Messages => to_messages::write(&pivot, target, &mut session, out),
        _ => to_chat::write(&pivot, target, &mut session, out),
    };
    if written.is_err() {
        out.truncate(start);
    }
    written.map(|()| session)
}
