//! OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, Gemini's and
//! Azure's OpenAI endpoints): `base_url` ends in `/v1`, endpoints are appended to it, the key
//! goes in `Authorization: Bearer`. There is no token-count endpoint.

use super::{bearer, Adapter};
use crate::endpoint::{Endpoint, Protocol};

/// The OpenAI adapter.
pub struct OpenAi;

impl Adapter for OpenAi {
    fn speaks(&self, protocol: Protocol) -> bool {
        protocol == Protocol::OpenAi
    }

    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        match endpoint {
            Endpoint::ChatCompletions => Some("/chat/completions"),
            Endpoint::Responses => Some("/responses"),
            Endpoint::Models => Some("/models"),
            Endpoint::Messages | Endpoint::CountTokens => None,
        }
    }

    fn write_auth(&self, key: &str, out: &mut Vec<u8>) {
        bearer(key, out);
    }
}
