//! The built-in mock provider: speaks both protocols, answers in process (`mock::upstream`)
//! through the same upstream client and relay as a real provider, at the providers' own paths.

use super::{bearer, Adapter};
use crate::endpoint::{Endpoint, Protocol};

/// The mock adapter.
pub struct Mock;

impl Adapter for Mock {
    fn speaks(&self, _protocol: Protocol) -> bool {
        true
    }

    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        Some(match endpoint {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::Models => "/v1/models",
        })
    }

    fn write_auth(&self, key: &str, out: &mut Vec<u8>) {
        bearer(key, out);
    }
}
