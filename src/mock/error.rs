//! Error bodies in each provider's shape.
//!
//! OpenAI (API reference, "Error codes"):
//! `{"error":{"message":…,"type":…,"param":null,"code":…}}`.
//! Anthropic (API reference, "Errors"): `{"type":"error","error":{"type":…,"message":…}}`.

use super::json::{opt_string, raw, string};
use super::request::BadRequest;
use super::Endpoint;

/// Anthropic's message for an overload (API reference, "Errors": 529 `overloaded_error`).
pub(crate) const OVERLOADED: &str = "Overloaded";
/// OpenAI's message for a server error mid-answer.
pub(crate) const SERVER_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

fn anthropic(endpoint: Option<Endpoint>) -> bool {
    matches!(endpoint, Some(Endpoint::Messages | Endpoint::CountTokens))
}

/// What went wrong, before the provider's wording is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 400: the request is malformed.
    BadRequest(BadRequest),
    /// 404: no such endpoint.
    NotFound,
    /// 429: injected rate limit.
    RateLimited,
    /// The `error-` hook on a non-streaming request: Anthropic's 529 `overloaded_error`,
    /// OpenAI's 500 `server_error`.
    Overloaded,
    /// 500: injected server error.
    Server,
}

impl Failure {
    /// The HTTP status on `endpoint`'s provider.
    pub(crate) fn status(self, endpoint: Option<Endpoint>) -> u16 {
        match self {
            Failure::BadRequest(_) => 400,
            Failure::NotFound => 404,
            Failure::RateLimited => 429,
            Failure::Server => 500,
            Failure::Overloaded if anthropic(endpoint) => 529,
            Failure::Overloaded => 500,
        }
    }

    /// Writes the error body for `endpoint`'s provider.
    pub(crate) fn write_body(self, endpoint: Option<Endpoint>, out: &mut Vec<u8>) {
        let anthropic = anthropic(endpoint);
        let bad_message;
        let message = match self {
            Failure::BadRequest(b) => {
                bad_message = b.message(endpoint.unwrap_or(Endpoint::ChatCompletions));
                bad_message.as_str()
            }
            Failure::NotFound if anthropic => "Not found",
            Failure::NotFound => "Invalid URL: this mock serves /v1/chat/completions, /v1/responses, /v1/messages and /v1/messages/count_tokens.",
            Failure::RateLimited => "Rate limit reached (injected by the Switchyard mock).",
            Failure::Server => "The server had an error while processing your request (injected by the Switchyard mock).",
            Failure::Overloaded if anthropic => OVERLOADED,
            Failure::Overloaded => SERVER_ERROR,
        };
        if anthropic {
            let kind = match self {
                Failure::BadRequest(_) => "invalid_request_error",
                Failure::NotFound => "not_found_error",
                Failure::RateLimited => "rate_limit_error",
                Failure::Server => "api_error",
                Failure::Overloaded => "overloaded_error",
            };
            raw(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
            raw(out, kind);
            raw(out, "\",\"message\":");
            string(out, message);
            raw(out, "}}");
        } else {
            let (kind, code) = match self {
                Failure::BadRequest(_) => ("invalid_request_error", "null"),
                Failure::NotFound => ("invalid_request_error", "\"unknown_url\""),
                Failure::RateLimited => ("requests", "\"rate_limit_exceeded\""),
                Failure::Server | Failure::Overloaded => ("server_error", "null"),
            };
            raw(out, "{\"error\":{\"message\":");
            string(out, message);
            raw(out, ",\"type\":\"");
            raw(out, kind);
            raw(out, "\",\"param\":");
            let param = match self {
                Failure::BadRequest(b) => b.param(endpoint.unwrap_or(Endpoint::ChatCompletions)),
                _ => None,
            };
            opt_string(out, param.as_deref());
            raw(out, ",\"code\":");
            raw(out, code);
            raw(out, "}}");
        }
    }
}
