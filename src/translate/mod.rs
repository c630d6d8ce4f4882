//! Translation between the wire APIs: any client, any model.
//!
//! When the chosen model's provider speaks another API than the client's route, the request,
//! the answer and the stream are translated here. Three APIs meet: OpenAI chat completions
//! ([`Api::Chat`]), Anthropic messages ([`Api::Messages`]) and OpenAI Responses
//! ([`Api::Responses`], translated to a provider's chat completions or messages when it does
//! not serve `/v1/responses` itself).
//!
//! The shape of the work, one module each:
//! - `request`: the client's body parsed once (simd-json, on a copy) and written in the
//!   provider's API; returns the [`Session`] that the answer's translation needs (tool names
//!   mapped for the provider, what was dropped, whether the client asked for stream usage).
//! - `sse`: the incremental SSE framer (events split across reads in any way).
//! - `stream`: upstream events decoded into [`Event`]s by a per-API decoder and encoded in the
//!   client's API by a per-API encoder, as they arrive, with no allocation per event.
//! - `answer`: whole (non-streaming) answers and upstream error bodies.
//! - `names`: tool names longer than a provider allows, mapped and mapped back.
//!
//! The pairs served: chat -> messages, messages -> chat, responses -> chat,
//! responses -> messages. Everything a request carries is either translated, refused with a
//! 400 naming the field (its meaning cannot be honoured), or dropped and named (advisory fields,
//! hosted tools): [`Session::dropped`] feeds `x-routerly-dropped` and the trace.

pub mod answer;
pub mod names;
pub mod request;
pub mod sse;
pub mod stream;
pub mod wire;

use smallvec::SmallVec;

/// A wire API, on either side of a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI `POST /v1/chat/completions`.
    Chat,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// OpenAI `POST /v1/responses`.
    Responses,
}

/// Token usage as both protocols report it, normalised: `input` counts every prompt token
/// including cached ones (OpenAI's `prompt_tokens`), so Anthropic's `input_tokens` is
/// `input - cache_read - cache_write`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached ones included.
    pub input: u64,
    /// Output tokens (reasoning included).
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache (Anthropic).
    pub cache_write: u64,
    /// Of `output`, reasoning tokens, when reported.
    pub reasoning: u64,
}

/// Why an answer stopped, normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Natural end (`stop`, `end_turn`).
    End,
    /// A stop sequence matched (Anthropic `stop_sequence`; OpenAI `stop`).
    StopSequence,
    /// The output bound was hit (`length`, `max_tokens`).
    Length,
    /// The model called tools (`tool_calls`, `tool_use`).
    ToolUse,
    /// Refused or filtered (`content_filter`, `refusal`).
    Filtered,
    /// Anthropic `pause_turn` (a long server-side turn paused).
    Pause,
}

/// Names of request fields (or hosted tools) dropped because the provider has no equivalent
/// and they are advisory. Static strings: the field names are known at compile time.
pub type Dropped = SmallVec<[&'static str; 8]>;

/// What the request's translation hands to the answer's: everything needed to write the
/// answer in the client's API. Built once per translated request.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client's API.
    pub client: Api,
    /// The provider's API.
    pub upstream: Api,
    /// Tool names as the provider saw them, and what the client called them.
    pub tools: names::ToolNames,
    /// Fields and hosted tools dropped, in the order met.
    pub dropped: Dropped,
    /// Chat clients: `stream_options.include_usage` was set (the usage chunk is passed on
    /// only then, though the provider is always asked for usage).
    pub include_usage: bool,
    /// The model id the client knows (the gateway's model id), written in translated answers.
    pub model: String,
    /// Responses clients: fields the Response object echoes back (`instructions`,
    /// `max_output_tokens`, `temperature`, `top_p`, `tool_choice`, `tools`, `store`...) as a
    /// JSON object's members without braces (`"instructions":"...","store":false`), or empty.
    pub echo: String,
}
