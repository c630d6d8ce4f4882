//! The Anthropic Messages API: `base_url` is the bare host and gets `/v1/messages` appended,
//! the key goes in `x-api-key`, and every request carries `anthropic-version` (the client's
//! when it sent a plain one, else the provider's configured default) and the client's
//! `anthropic-beta` flags.

use super::{header, Adapter, ClientHeaders};
use crate::endpoint::{Endpoint, Protocol};

/// The Anthropic adapter.
pub struct Anthropic;

/// Longest client header value carried over to the provider.
const MAX_FORWARDED_VALUE: usize = 256;

/// Header values carried over verbatim must be plain visible ASCII: no CR/LF smuggling.
fn plain(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_FORWARDED_VALUE && v.iter().all(|&b| (0x20..0x7f).contains(&b))
}

impl Adapter for Anthropic {
    fn speaks(&self, protocol: Protocol) -> bool {
        protocol == Protocol::Anthropic
    }

    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        match endpoint {
            Endpoint::Messages => Some("/v1/messages"),
            Endpoint::CountTokens => Some("/v1/messages/count_tokens"),
            Endpoint::Models => Some("/v1/models"),
            Endpoint::ChatCompletions | Endpoint::Responses => None,
        }
    }

    fn write_auth(&self, key: &str, out: &mut Vec<u8>) {
        if !key.is_empty() {
            header(out, b"x-api-key", key.as_bytes());
        }
    }

    fn write_protocol_headers(
        &self,
        default_version: &str,
        client: &ClientHeaders<'_>,
        out: &mut Vec<u8>,
    ) {
        let version = client
            .anthropic_version
            .filter(|v| plain(v))
            .unwrap_or(default_version.as_bytes());
        header(out, b"anthropic-version", version);
        if let Some(beta) = client.anthropic_beta.filter(|v| plain(v)) {
            header(out, b"anthropic-beta", beta);
        }
    }
}
