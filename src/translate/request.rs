//! Requests in the provider's API. (Interface; the translators land in this module.)

use super::{Api, Session};

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
    let _ = (body, scratch, out);
    Err(Refused {
        field: "model".into(),
        message: format!(
            "translating {client:?} requests to {:?} is not available yet",
            target.upstream
        ),
    })
}
