//! The gateway's one error type: a kind (what happened) and a side (whose fault), as Pingora's
//! `ErrorType` + `ErrorSource`.
//!
//! [`Error::status`] maps a kind to the status of the contract's error table
//! (`docs/api.md`, "Errors"); [`write_body`] gives the body in the route's
//! protocol; [`Error::may_fail_over`] says whether another candidate may be tried.
//! Messages never carry a provider key or an upstream body.

use crate::endpoint::Protocol;
use crate::scan::push_json_string;
use std::borrow::Cow;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed HTTP framing: ambiguous or invalid length, bad chunk.
    BadFraming,
    /// The body is not valid JSON, or a required field is missing or mistyped.
    InvalidRequest,
    /// No or an unknown token.
    Unauthorized,
    /// The token may not use the project.
    Forbidden,
    /// No such route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// Body past `max_body_bytes`.
    BodyTooLarge,
    /// Head past `max_header_bytes`.
    HeadTooLarge,
    /// A head that started did not complete within `header_timeout_ms`.
    HeadTimeout,
    /// A body that did not arrive within `body_timeout_ms` of its head.
    BodyTimeout,
    /// A POST with neither `Content-Length` nor chunked framing.
    LengthRequired,
    /// The worker holds `max_body_memory_per_worker` of request bodies already: the request is
    /// shed rather than grow the process.
    Overloaded,
    /// A field whose meaning the chosen provider cannot honour (translation refused it).
    UnsupportedField,
    /// Budget or rate limit.
    RateLimited,
    /// Could not connect to the provider.
    UpstreamConnect,
    /// The provider answered badly: 5xx, 429, a broken response.
    UpstreamFailed,
    /// The provider did not answer in time.
    UpstreamTimeout,
    /// The provider refused the gateway's own credentials (401/403): a config problem, not the
    /// client's, and no reason to try another candidate.
    UpstreamAuth,
    /// No candidate model can serve this request.
    NoCandidate,
    /// A stored response named by the client (`previous_response_id`, `/v1/responses/{id}`)
    /// that does not exist, expired, was deleted, or belongs to another project.
    NoSuchResponse,
    /// The conversation store cannot answer (down, slow, full): only requests that need state
    /// get this; the rest are served.
    StateUnavailable,
    /// The gateway cannot take this now: the worker holds its maximum of large upstream
    /// bodies, or it is shutting down. Worth retrying (elsewhere or later).
    Unavailable,
    /// A bug of ours.
    Internal,
    /// The client went away before its answer; nothing is sent.
    ClientClosed,
}

/// Whose fault it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something wrong.
    Client,
    /// The provider failed.
    Upstream,
    /// The gateway failed.
    Internal,
}

/// An error with the message shown to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What happened.
    pub kind: ErrorKind,
    /// Whose fault.
    pub side: Side,
    /// Shown to the client: never a key, never an upstream body.
    pub message: Cow<'static, str>,
    /// Sent as `retry-after` (seconds; RFC 9110 §10.2.3) with a 429.
    pub retry_after_s: Option<u64>,
}

impl Error {
    /// A client-side error.
    pub fn client(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            side: Side::Client,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// The gateway's own failing part (the conversation store), not the client's fault nor a
    /// provider's.
    pub fn gateway(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            side: Side::Internal,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// An upstream-side error.
    pub fn upstream(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            side: Side::Upstream,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// A gateway bug or resource failure.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind: ErrorKind::Internal,
            side: Side::Internal,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// The same error, answered with `retry-after: {secs}`.
    pub fn with_retry_after(mut self, secs: u64) -> Error {
        self.retry_after_s = Some(secs);
        self
    }

    /// The HTTP status of the contract's table.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::BadFraming
            | ErrorKind::InvalidRequest
            | ErrorKind::UnsupportedField
            | ErrorKind::NoCandidate => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound | ErrorKind::NoSuchResponse => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::HeadTooLarge => 431,
            ErrorKind::HeadTimeout | ErrorKind::BodyTimeout => 408,
            ErrorKind::LengthRequired => 411,
            ErrorKind::RateLimited => 429,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamFailed | ErrorKind::UpstreamAuth => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal => 500,
            ErrorKind::StateUnavailable | ErrorKind::Overloaded | ErrorKind::Unavailable => 503,
            ErrorKind::ClientClosed => 499,
        }
    }

    /// The `type` of the error object in `protocol`'s shape.
    pub fn type_name(&self, protocol: Protocol) -> &'static str {
        match self.kind {
            ErrorKind::BadFraming
            | ErrorKind::InvalidRequest
            | ErrorKind::UnsupportedField
            | ErrorKind::NoCandidate
            | ErrorKind::HeadTimeout
            | ErrorKind::BodyTimeout
            | ErrorKind::LengthRequired
            | ErrorKind::MethodNotAllowed => "invalid_request_error",
            ErrorKind::Unauthorized => "authentication_error",
            ErrorKind::Forbidden => "permission_error",
            ErrorKind::NotFound | ErrorKind::NoSuchResponse => "not_found_error",
            ErrorKind::BodyTooLarge | ErrorKind::HeadTooLarge => match protocol {
                Protocol::OpenAi => "invalid_request_error",
                Protocol::Anthropic => "request_too_large",
            },
            ErrorKind::RateLimited => "rate_limit_error",
            // Anthropic's own type for "try again shortly"; OpenAI has none but `api_error`.
            ErrorKind::Overloaded => match protocol {
                Protocol::OpenAi => "api_error",
                Protocol::Anthropic => "overloaded_error",
            },
            ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamFailed
            | ErrorKind::UpstreamAuth
            | ErrorKind::Internal
            | ErrorKind::StateUnavailable
            | ErrorKind::Unavailable
            | ErrorKind::ClientClosed => "api_error",
            ErrorKind::UpstreamTimeout => "timeout_error",
        }
    }

    /// The OpenAI `code` field: a stable machine-readable name of the kind.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadFraming => "bad_framing",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthorized => "invalid_api_key",
            ErrorKind::Forbidden => "project_forbidden",
            ErrorKind::NotFound => "unknown_route",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::HeadTooLarge => "header_too_large",
            ErrorKind::HeadTimeout => "request_timeout",
            ErrorKind::BodyTimeout => "body_timeout",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::LengthRequired => "length_required",
            ErrorKind::UnsupportedField => "unsupported_parameter",
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::UpstreamConnect => "upstream_connect_failed",
            ErrorKind::UpstreamFailed => "upstream_failed",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamAuth => "upstream_auth_failed",
            ErrorKind::NoCandidate => "no_candidate_model",
            ErrorKind::NoSuchResponse => "response_not_found",
            ErrorKind::StateUnavailable => "state_unavailable",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal_error",
            ErrorKind::ClientClosed => "client_closed",
        }
    }

    /// Whether the next candidate may be tried after this error (before the first byte reached
    /// the client): connect errors, timeouts, 429 and 5xx.
    pub fn may_fail_over(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamFailed | ErrorKind::UpstreamTimeout
        )
    }

    /// Whether the connection must close after this error: the request's framing can no longer
    /// be trusted, or its body was not read. A POST without a length is here too: the bytes
    /// after its head were most likely meant as its body, never as the next request.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadFraming
                | ErrorKind::BodyTooLarge
                | ErrorKind::HeadTooLarge
                | ErrorKind::HeadTimeout
                | ErrorKind::BodyTimeout
                | ErrorKind::LengthRequired
                | ErrorKind::Overloaded
        )
    }
}

/// Appends the error body in `protocol`'s shape:
/// OpenAI `{"error":{"message","type","code"}}`,
/// Anthropic `{"type":"error","error":{"type","message"}}`.
pub fn write_body(out: &mut Vec<u8>, protocol: Protocol, err: &Error) {
    match protocol {
        Protocol::OpenAi => {
            out.extend_from_slice(b"{\"error\":{\"message\":");
            push_json_string(out, &err.message);
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(err.type_name(protocol).as_bytes());
            out.extend_from_slice(b"\",\"param\":null,\"code\":\"");
            out.extend_from_slice(err.code().as_bytes());
            out.extend_from_slice(b"\"}}");
        }
        Protocol::Anthropic => {
            out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
            out.extend_from_slice(err.type_name(protocol).as_bytes());
            out.extend_from_slice(b"\",\"message\":");
            push_json_string(out, &err.message);
            out.extend_from_slice(b"}}");
        }
    }
}

/// Appends the error as the protocol's mid-stream error event (SSE): OpenAI
/// `data: {"error":{...}}`, Anthropic `event: error` + `data: {...}`. Starts with a blank line
/// when `at_event_boundary` is false so a cut event cannot swallow it.
pub fn write_stream_event(
    out: &mut Vec<u8>,
    protocol: Protocol,
    err: &Error,
    at_event_boundary: bool,
) {
    if !at_event_boundary {
        out.extend_from_slice(b"\n\n");
    }
    match protocol {
        Protocol::OpenAi => out.extend_from_slice(b"data: "),
        Protocol::Anthropic => out.extend_from_slice(b"event: error\ndata: "),
    }
    write_body(out, protocol, err);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_types_follow_the_contract_table() {
        use ErrorKind::*;
        let table = [
            (
                InvalidRequest,
                400,
                "invalid_request_error",
                "invalid_request_error",
            ),
            (
                Unauthorized,
                401,
                "authentication_error",
                "authentication_error",
            ),
            (Forbidden, 403, "permission_error", "permission_error"),
            (NotFound, 404, "not_found_error", "not_found_error"),
            (
                BodyTooLarge,
                413,
                "invalid_request_error",
                "request_too_large",
            ),
            (
                HeadTooLarge,
                431,
                "invalid_request_error",
                "request_too_large",
            ),
            (RateLimited, 429, "rate_limit_error", "rate_limit_error"),
            (UpstreamFailed, 502, "api_error", "api_error"),
            (UpstreamTimeout, 504, "timeout_error", "timeout_error"),
        ];
        for (kind, status, oa, an) in table {
            let e = Error::client(kind, "m");
            assert_eq!(e.status(), status, "{kind:?}");
            assert_eq!(e.type_name(Protocol::OpenAi), oa, "{kind:?}");
            assert_eq!(e.type_name(Protocol::Anthropic), an, "{kind:?}");
        }
    }

    #[test]
    fn bodies_have_each_protocols_shape() {
        let e = Error::client(ErrorKind::Unauthorized, "bad \"token\"");
        let mut out = Vec::new();
        write_body(&mut out, Protocol::OpenAi, &e);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"error":{"message":"bad \"token\"","type":"authentication_error","param":null,"code":"invalid_api_key"}}"#
        );
        let mut out = Vec::new();
        write_body(&mut out, Protocol::Anthropic, &e);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"error","error":{"type":"authentication_error","message":"bad \"token\""}}"#
        );
    }
}
