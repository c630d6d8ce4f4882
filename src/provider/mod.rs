//! Provider adapters: everything that differs between kinds of provider, in one place per
//! kind (`openai`, `anthropic`, `mock`).
//!
//! An adapter says which client protocols its provider speaks, the path of each endpoint
//! (under the `base_url` prefix), and writes the headers that go with every upstream request:
//! the provider's credential and its protocol headers. They are written per request (never
//! cached as finished header lines), so signed or expiring credentials can slot in here. The
//! one rule that turns an upstream status into what the gateway does with it is
//! [`classify`]; adapters use it unless their provider says otherwise.

mod anthropic;
mod mock;
mod openai;

use crate::config::ProviderKind;
use crate::endpoint::{Endpoint, Protocol};

pub use anthropic::Anthropic;
pub use mock::Mock;
pub use openai::OpenAi;

/// What an upstream status means for the attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: the answer, relayed to the client.
    Answer,
    /// 429 and 5xx: the provider failed or is overloaded; another candidate may be tried.
    FailOver,
    /// 401 and 403: the provider refused the gateway's own credentials. The client is not at
    /// fault and no other candidate is tried: it is the operator's problem (502).
    Credentials,
    /// Any other status: the provider found fault with the request; its error is relayed
    /// (when it cannot echo the provider key).
    RelayError,
}

/// The status rule shared by every provider kind (the README's failover rule).
pub fn classify(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Answer,
        429 | 500..=599 => StatusClass::FailOver,
        401 | 403 => StatusClass::Credentials,
        _ => StatusClass::RelayError,
    }
}

/// What the request path needs from a provider kind.
pub trait Adapter: Sync {
    /// Whether a client of `protocol` can be served without translation.
    fn speaks(&self, protocol: Protocol) -> bool;

    /// The path of `endpoint` after the provider's `base_url` prefix, or `None` when the
    /// provider has no such endpoint (then the gateway answers itself where it can, as for
    /// `count_tokens` on OpenAI-protocol providers).
    fn path(&self, endpoint: Endpoint) -> Option<&'static str>;

    /// Appends the provider's auth header lines (`name: value\r\n`) for one request.
    fn write_auth(&self, key: &str, out: &mut Vec<u8>);

    /// Appends the protocol headers that depend on the client's request (Anthropic's
    /// `anthropic-version` and `anthropic-beta`).
    fn write_protocol_headers(
        &self,
        _default_version: &str,
        _client: &ClientHeaders<'_>,
        _out: &mut Vec<u8>,
    ) {
    }

    /// What an upstream status means.
    fn classify(&self, status: u16) -> StatusClass {
        classify(status)
    }
}

/// The client's headers an adapter may carry over (already read off the request).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientHeaders<'a> {
    /// `anthropic-version`.
    pub anthropic_version: Option<&'a [u8]>,
    /// `anthropic-beta`.
    pub anthropic_beta: Option<&'a [u8]>,
}

/// The adapter of a provider kind.
pub fn adapter(kind: ProviderKind) -> &'static dyn Adapter {
    match kind {
        ProviderKind::Openai => &OpenAi,
        ProviderKind::Anthropic => &Anthropic,
        ProviderKind::Mock => &Mock,
    }
}

/// Appends `name: value\r\n`.
fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Authorization: Bearer KEY\r\n` when a key is configured.
fn bearer(key: &str, out: &mut Vec<u8>) {
    if !key.is_empty() {
        out.extend_from_slice(b"Authorization: Bearer ");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_rule() {
        for (s, c) in [
            (200, StatusClass::Answer),
            (204, StatusClass::Answer),
            (429, StatusClass::FailOver),
            (500, StatusClass::FailOver),
            (503, StatusClass::FailOver),
            (401, StatusClass::Credentials),
            (403, StatusClass::Credentials),
            (400, StatusClass::RelayError),
            (404, StatusClass::RelayError),
            (422, StatusClass::RelayError),
        ] {
            assert_eq!(classify(s), c, "{s}");
            for kind in [
                ProviderKind::Openai,
                ProviderKind::Anthropic,
                ProviderKind::Mock,
            ] {
                assert_eq!(adapter(kind).classify(s), c, "{kind:?} {s}");
            }
        }
    }

    #[test]
    fn auth_is_each_kind_own() {
        let mut o = Vec::new();
        adapter(ProviderKind::Openai).write_auth("k1", &mut o);
        assert_eq!(o, b"Authorization: Bearer k1\r\n");
        o.clear();
        adapter(ProviderKind::Anthropic).write_auth("k2", &mut o);
        assert_eq!(o, b"x-api-key: k2\r\n");
        o.clear();
        adapter(ProviderKind::Anthropic).write_auth("", &mut o);
        assert!(o.is_empty(), "no key, no header");
    }

    #[test]
    fn paths_and_protocols() {
        let oa = adapter(ProviderKind::Openai);
        assert_eq!(
            oa.path(Endpoint::ChatCompletions),
            Some("/chat/completions")
        );
        assert_eq!(oa.path(Endpoint::Responses), Some("/responses"));
        assert_eq!(oa.path(Endpoint::CountTokens), None);
        assert!(oa.speaks(Protocol::OpenAi) && !oa.speaks(Protocol::Anthropic));
        let an = adapter(ProviderKind::Anthropic);
        assert_eq!(an.path(Endpoint::Messages), Some("/v1/messages"));
        assert_eq!(
            an.path(Endpoint::CountTokens),
            Some("/v1/messages/count_tokens")
        );
        assert_eq!(an.path(Endpoint::ChatCompletions), None);
        let m = adapter(ProviderKind::Mock);
        assert!(m.speaks(Protocol::OpenAi) && m.speaks(Protocol::Anthropic));
        assert_eq!(m.path(Endpoint::Responses), Some("/v1/responses"));
    }

    #[test]
    fn anthropic_version_is_the_clients_when_plain() {
        let an = adapter(ProviderKind::Anthropic);
        let mut o = Vec::new();
        an.write_protocol_headers("2023-06-01", &ClientHeaders::default(), &mut o);
        assert_eq!(o, b"anthropic-version: 2023-06-01\r\n");
        o.clear();
        let h = ClientHeaders {
            anthropic_version: Some(b"2024-01-01"),
            anthropic_beta: Some(b"x\r\ninjected: 1"),
        };
        an.write_protocol_headers("2023-06-01", &h, &mut o);
        assert_eq!(
            o, b"anthropic-version: 2024-01-01\r\n",
            "a beta with CR/LF is dropped"
        );
    }
}
