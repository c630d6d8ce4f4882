//! The built-in mock LLM provider.
//!
//! Used in-process as the provider of kind `mock` (so the gateway runs with no provider account),
//! as the `switchyard mock-upstream` load-test server, and as the upstream of the integration
//! tests that drive the official `openai` and `anthropic` Python SDKs through the gateway. Every
//! body and stream is in the provider's exact wire shape, so the SDKs' stream helpers
//! (`chat.completions.stream()`, `responses.stream()` with `get_final_response()`,
//! `messages.stream()` with `get_final_message()` and `text_stream`) accept it.
//!
//! This module is pure and synchronous: no sockets, no clocks beyond stamping `created`. The
//! server calls [`Mock::handle`] (or [`Mock::endpoint_for_path`] then [`Mock::reply`]), waits
//! [`MockReply::first_byte_delay`], writes `status` and `content_type`, then either `body` or,
//! for a stream, loops on [`MockStream::next_event`], sleeping the returned delay before writing
//! each event.
//!
//! # Endpoints
//! Matched on the path with any query string and trailing `/` removed, by suffix, so the OpenAI
//! base url (`/v1/...`), a bare one (`/chat/completions`) and a mounted one
//! (`/openai/v1/...`, `/anthropic/v1/messages?beta=true`) all work:
//! - `…/chat/completions` → [`Endpoint::ChatCompletions`]
//! - `…/responses` → [`Endpoint::Responses`]
//! - `…/messages` → [`Endpoint::Messages`]
//! - `…/messages/count_tokens` → [`Endpoint::CountTokens`]
//!
//! Anything else is 404; a method other than POST is 400. Bad JSON, a missing `model`, missing
//! or empty `messages` (chat, messages, count_tokens), missing `input` (responses) or missing
//! `max_tokens` (messages, as Anthropic requires) is 400. Errors use the provider's error shape.
//!
//! # Strict checks
//! A request is checked as the real API checks it, so a malformed one (a translation bug in
//! front of the mock) is a 400 `invalid_request_error` rather than an answer. The message starts
//! with the field's path, `path: …` (`messages.2.content.0.tool_use_id` on Anthropic,
//! `messages[2].role` on OpenAI, where `param` is the path too):
//! - Anthropic (messages and count_tokens): roles `user`/`assistant` only; `system` a string or
//!   `text` blocks; content a string or blocks of known types (`text`, `image` with `source`
//!   base64 `{media_type,data}` / url `{url}` / file `{file_id}`, `document`, `tool_use`
//!   `{id,name,input object}` in assistant turns, `tool_result` `{tool_use_id}` in user turns,
//!   `thinking` `{thinking,signature}`, `redacted_thinking` `{data}`, and the server-tool result
//!   types); each `tool_result` answers a `tool_use` of the assistant turn right before it, and
//!   each `tool_use` is answered in the next turn when there is one; custom tools named
//!   `^[a-zA-Z0-9_-]{1,64}$` with an object `input_schema`; `thinking` `enabled` with
//!   `budget_tokens` >= 1024 and < `max_tokens`, or `adaptive`/`disabled`; `temperature` in
//!   0..=1; `tool_choice` an object of type `auto`/`any`/`tool` (with `name`)/`none`.
//! - Chat: roles `system`/`developer`/`user`/`assistant`/`tool`; content parts `text`,
//!   `image_url`, `input_audio`, `file` (user), `text`, `refusal` (assistant), `text` (others);
//!   `tool_calls[].function.arguments` a string; each `tool` message's `tool_call_id` answers a
//!   call of the assistant message its run follows, and every call is answered before the next
//!   other message (or the end); tools of type `function`/`custom` named as above; not both
//!   `max_tokens` and `max_completion_tokens`.
//! - Responses: input items of known types (an item without `type` but with `role` is a
//!   message); message roles `user`/`assistant`/`system`/`developer`; `function_call`
//!   `{call_id,name,arguments string}`; `function_call_output` `{call_id,output}` whose
//!   `call_id` names an earlier `function_call` of `input` (unless `previous_response_id` is set);
//!   function tools named as above.
//!
//! # The reply
//! Deterministic, so tests can assert on it. The last turn decides its kind:
//! - **Text** (a user turn without tools, `tool_choice` none, or anything else): `This is a mock
//!   reply from Switchyard to:` followed by up to 8 words of the last user message, padded with
//!   lorem words. It has `reply_tokens` words (default 16), fewer when the request bounds it
//!   (`max_completion_tokens`/`max_tokens`, `max_tokens`, `max_output_tokens`); then the finish
//!   reason is `length` / `max_tokens` and a Response is `incomplete`, as the real APIs report
//!   truncation.
//! - **Tool calls**: when the request offers function tools (chat `tools[].function`, Anthropic
//!   tools without a server-tool `type`, Responses `tools[]` of type `function`), the last turn
//!   is a user turn (not tool results) and `tool_choice` is not `none`: one call to the first
//!   tool, or to the one `tool_choice` names (chat `{"type":"function","function":{"name"}}`,
//!   Anthropic `{"type":"tool","name"}`, Responses `{"type":"function","name"}`). When the last
//!   user text has the word `parallel` (any case, as a whole word) and parallel calls are allowed
//!   (not `parallel_tool_calls: false`, not `disable_parallel_tool_use: true`, no named tool):
//!   two calls, to the first and second tools (the one tool twice when there is one). Arguments
//!   are `{"<prop>":"<up to 8 words of the last user message, space-joined>"}` where `<prop>`
//!   is the schema's first `required` property of type string, else its first string property;
//!   `{}` when it has none. Ids: chat `call_` + 32 hex, Anthropic `toolu_` + 32 hex, Responses
//!   item `fc_` + 32 hex with `call_id` `call_` + 32 hex. Finish reason `tool_calls` (content
//!   `null`), stop reason `tool_use`, Response `function_call` items (status `completed`).
//!   Streams send the arguments in fragments of [`FRAGMENT_BYTES`] (at least two); chat heads
//!   each call with `index`, `id`, `type`, `function.name` and `arguments: ""`, and interleaves
//!   two calls' fragments 0, 1, 0, 1 (see `chat`, `anthropic`, `responses` for the events).
//! - **Tool result**: when the last turn is tool results (chat trailing `tool` messages,
//!   Anthropic `tool_result` blocks in the last user turn, Responses trailing
//!   `function_call_output` items), text as above but starting `Tool said:` then up to 8 words
//!   of the first result of that turn (e.g. `Tool said: Sunny and 22 degrees lorem ipsum …`).
//! - **Thinking** first, when asked: Anthropic `thinking` `enabled` or `adaptive` → a `thinking`
//!   block `Mock thinking about: <the quoted words>` with `signature`
//!   [`THINKING_SIGNATURE`] (streamed as `thinking_delta` per word, then one
//!   `signature_delta`); Responses `reasoning.effort` (not `none`) → a `reasoning` item `rs_…`
//!   whose `summary` holds that text when `reasoning.summary` is set (else `[]`), with
//!   `encrypted_content` [`ENCRYPTED_REASONING`] when `include` has
//!   `reasoning.encrypted_content`; chat `reasoning_effort` → no text (the API returns none),
//!   only `completion_tokens_details.reasoning_tokens`.
//!
//! `model` echoes the request's `model`.
//!
//! # Usage
//! One word (or argument fragment, or thinking word) is one output token; thinking words are
//! also the reasoning tokens and are included in the output count. Prompt tokens are
//! ceil(bytes of prompt text / 4) plus [`IMAGE_TOKENS`] per image part; count_tokens answers
//! the same number. Prompt caching, deterministic: Anthropic requests with `cache_control`
//! anywhere report `cache_read_input_tokens` = half the prompt tokens (rounded down),
//! `input_tokens` the rest and `cache_creation_input_tokens` 0; OpenAI requests with
//! `prompt_cache_key` report `prompt_tokens_details.cached_tokens` (chat) /
//! `input_tokens_details.cached_tokens` (responses) = half, with the prompt count still the
//! total, as OpenAI counts.
//!
//! # Test hooks, keyed on the request's model name
//! - `fail-500…` → always 500 in the provider's error shape.
//! - `fail-429…` → always 429.
//! - `slow-…` → 2000 ms ([`SLOW_DELAY`]) more `first_byte_delay` (before the status line).
//! - `cut-…` → a stream that stops after its framing events and [`CUT_AFTER_WORDS`] content
//!   pieces; [`MockStream::ends_abruptly`] is true and the server must close the connection
//!   without the terminating chunk. Non-streaming requests answer normally.
//! - `error-…` → a stream that stops at the same point and then sends the provider's error
//!   event: Anthropic `event: error` with `{"type":"error","error":{"type":"overloaded_error",
//!   "message":"Overloaded"}}`; chat `data: {"error":{…,"type":"server_error",…}}` (no
//!   `[DONE]`); Responses `response.failed` (status `failed`, `error.code` `server_error`).
//!   The stream then ends cleanly at the HTTP level, so only the protocol says it failed. A
//!   non-streaming request gets the error as a status: Anthropic 529 `overloaded_error`,
//!   OpenAI 500 `server_error`.
//!
//! `slow-`, `cut-` and `error-` combine in any order in front of the rest (`slow-cut-gpt-4o`,
//! `error-slow-claude`, `slow-fail-500`; `cut-error-` sends the error event, then cuts). The
//! hooks fire after the JSON and `model` are read but before the other checks, except `error-`,
//! which needs a valid request to know whether it streams.
//!
//! # Injected failures
//! With `fail_rate` p, each valid request fails with probability p, drawn from a per-[`Mock`]
//! xorshift generator seeded with `seed` (so a run is reproducible). A non-streaming failure is
//! 500 or 429 with equal odds; a streaming one is 500, 429 or a cut stream with equal odds.
//! Invalid requests are always 400 and never draw.
//!
//! # Timing
//! `ttft_ms` is the wait before the first content: for a stream, before the first content event
//! (the framing events go out at once); otherwise before the response. `tokens_per_s` paces the
//! stream; a non-streaming reply also waits the time its words would have taken, so both modes
//! take as long end to end. Paced events are scheduled from the previous one's due time, and
//! waits end within microseconds of it (`netio::sleep_until_precise`), so a driver measuring
//! the mock sees the configured timing, not the timer wheel's millisecond rounding.
//!
//! # Realism (opt-in)
//! With `spread` set (see `timing`; `mock-upstream --ttft-spread-ms`, `--gap-spread`,
//! `--tail-rate`, `--tail-factor`, `--reply-spread`, `--stall-rate`, `--stall-ms`, or the same
//! keys under `[providers.mock]`): TTFT and gaps are drawn log-normally around their means with
//! an optional heavy tail, reply lengths around `reply_tokens` (still capped by the request's
//! own bound), and a stream may stall once midway. Every spread is 0 by default, and then
//! nothing is drawn: the mock stays deterministic for the tests that rely on it.

mod anthropic;
mod chat;
mod error;
mod json;
mod reply;
mod request;
mod responses;
pub mod serve;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_strict;
#[cfg(test)]
mod tests_turns;
pub mod timing;
mod tools;
mod validate;
pub mod wire;

use crate::trace::xorshift;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use error::Failure;
use reply::Reply;
use request::BadRequest;

pub use reply::{ENCRYPTED_REASONING, FRAGMENT_BYTES, THINKING_SIGNATURE};
pub use request::IMAGE_TOKENS;
pub use stream::{MockStream, CUT_AFTER_WORDS};

/// Extra first-byte delay for models named `slow-…`.
pub const SLOW_DELAY: Duration = Duration::from_millis(2000);

/// `Content-Type` of JSON bodies, including errors.
pub const JSON: &str = "application/json";
/// `Content-Type` of streams.
pub const EVENT_STREAM: &str = "text/event-stream";

/// An API the mock answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/responses`.
    Responses,
}

/// How the mock behaves; fixed for the life of a [`Mock`].
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Delay before the first content, in milliseconds (see the module doc, "Timing").
    pub ttft_ms: u64,
    /// Streaming pace in words per second; 0 (or not finite) means no delay between events.
    pub tokens_per_s: f64,
    /// Words in a reply the request does not bound lower. At least one word is always sent.
    pub reply_tokens: u32,
    /// Probability in 0..=1 that a valid request fails (see "Injected failures").
    pub fail_rate: f64,
    /// Seed of the failure generator.
    pub seed: u64,
    /// Spreads, tails, reply-length spread and stalls (see `timing`); none by default.
    pub spread: timing::Spread,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            ttft_ms: 0,
            tokens_per_s: 0.0,
            reply_tokens: 16,
            fail_rate: 0.0,
            seed: 0,
            spread: timing::Spread::default(),
        }
    }
}

/// What to send for one request.
#[derive(Debug)]
pub struct MockReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`: [`JSON`] or [`EVENT_STREAM`].
    pub content_type: &'static str,
    /// The whole body when `stream` is `None`; empty for a stream.
    pub body: Vec<u8>,
    /// The events to send, for a streaming 200.
    pub stream: Option<MockStream>,
    /// Wait this long before writing the status line.
    pub first_byte_delay: Duration,
    /// Whether this answer is an injected failure (`fail_rate`: an error status or a cut).
    pub injected: bool,
    /// Output tokens of a 200 answer (0 otherwise, and for a stream that will be cut).
    pub output_tokens: u64,
}

/// The mock provider. One per worker: the generators live in `Cell`s, so it is `!Sync`.
#[derive(Debug)]
pub struct Mock {
    opts: MockOptions,
    /// xorshift state for injected failures; never zero.
    rng: Cell<u64>,
    /// xorshift state for id randomness; seeded per instance so workers do not collide.
    ids: Cell<u64>,
}

/// Distinguishes the id generators of mocks created in the same nanosecond.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// What the model name asks for (see "Test hooks").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hooks {
    fail: Option<Failure>,
    slow: bool,
    cut: bool,
    error: bool,
}

impl Hooks {
    fn from_model(model: &str) -> Self {
        let mut hooks = Hooks::default();
        let mut rest = model;
        loop {
            if let Some(r) = rest.strip_prefix("slow-") {
                hooks.slow = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("cut-") {
                hooks.cut = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("error-") {
                hooks.error = true;
                rest = r;
            } else {
                break;
            }
        }
        if rest.starts_with("fail-500") {
            hooks.fail = Some(Failure::Server);
        } else if rest.starts_with("fail-429") {
            hooks.fail = Some(Failure::RateLimited);
        }
        hooks
    }
}

/// SplitMix64 finalizer: turns any seed into a well-mixed, non-zero xorshift state.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 {
        0x2545_f491_4f6c_dd1d
    } else {
        z
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

impl Mock {
    /// Creates a mock; the failure generator starts from `opts.seed`.
    pub fn new(opts: MockOptions) -> Self {
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let id_seed =
            (now().as_nanos() as u64) ^ instance.rotate_left(32) ^ u64::from(std::process::id());
        Mock {
            rng: Cell::new(mix(opts.seed)),
            ids: Cell::new(mix(id_seed)),
            opts,
        }
    }

    /// The endpoint a request path names, or `None` (answer 404). The query string and a
    /// trailing `/` are ignored; see the module doc for the accepted suffixes.
    pub fn endpoint_for_path(path: &[u8]) -> Option<Endpoint> {
        let path = match memchr::memchr(b'?', path) {
            Some(q) => &path[..q],
            None => path,
        };
        let path = path.strip_suffix(b"/").unwrap_or(path);
        if path.ends_with(b"/chat/completions") {
            Some(Endpoint::ChatCompletions)
        } else if path.ends_with(b"/messages/count_tokens") {
            Some(Endpoint::CountTokens)
        } else if path.ends_with(b"/messages") {
            Some(Endpoint::Messages)
        } else if path.ends_with(b"/responses") {
            Some(Endpoint::Responses)
        } else {
            None
        }
    }

    /// Answers a whole request: 404 for an unknown path, 400 for a method other than POST,
    /// otherwise [`Mock::reply`].
    pub fn handle(&self, method: &[u8], path: &[u8], body: &[u8]) -> MockReply {
        let Some(endpoint) = Self::endpoint_for_path(path) else {
            return error_reply(None, Failure::NotFound, Duration::ZERO);
        };
        if method != b"POST" {
            return error_reply(
                Some(endpoint),
                Failure::BadRequest(BadRequest::Method),
                Duration::ZERO,
            );
        }
        self.reply(endpoint, body)
    }

    /// Answers a POST to `endpoint` with request JSON `body` (see the module doc for the
    /// checks, the hooks and the reply).
    pub fn reply(&self, endpoint: Endpoint, body: &[u8]) -> MockReply {
        let bad = |b| error_reply(Some(endpoint), Failure::BadRequest(b), Duration::ZERO);
        let mut scratch = Vec::new();
        let root = match request::parse_json(&mut scratch, body) {
            Ok(root) => root,
            Err(b) => return bad(b),
        };
        let model = match request::parse_model(&root) {
            Ok(m) => m,
            Err(b) => return bad(b),
        };

        let hooks = Hooks::from_model(&model);
        let ttft = Duration::from_millis(self.opts.ttft_ms);
        let slow = if hooks.slow {
            SLOW_DELAY
        } else {
            Duration::ZERO
        };
        if let Some(f) = hooks.fail {
            return error_reply(Some(endpoint), f, ttft.saturating_add(slow));
        }

        let req = match request::parse_request(endpoint, &root, model) {
            Ok(r) => r,
            Err(b) => return bad(b),
        };
        drop(root);

        if hooks.error && !req.stream {
            return error_reply(
                Some(endpoint),
                Failure::Overloaded,
                ttft.saturating_add(slow),
            );
        }
        let mut cut = hooks.cut && req.stream;
        let mut injected = false;
        match self.injected_failure(req.stream) {
            Some(Injected::Fail(f)) => {
                let mut r = error_reply(Some(endpoint), f, ttft.saturating_add(slow));
                r.injected = true;
                return r;
            }
            Some(Injected::Cut) => {
                cut = true;
                injected = true;
            }
            None => {}
        }

        if endpoint == Endpoint::CountTokens {
            let mut body = Vec::with_capacity(24);
            anthropic::write_count(req.input_tokens(), &mut body);
            return json_reply(200, body, ttft.saturating_add(slow));
        }

        let stream = req.stream;
        let reply = self.build(endpoint, req);
        let gap = self.gap();
        // Draws only when asked to vary, so the default mock stays deterministic.
        let varied = timing::Timing::varies(&self.opts.spread).then(|| {
            let pieces = u32::try_from(reply.output_tokens()).unwrap_or(u32::MAX);
            timing::Timing::new(xorshift(&self.rng), ttft, gap, self.opts.spread, pieces)
        });
        let ttft = varied.as_ref().map_or(ttft, |t| t.ttft());
        // A cut stream never delivers its answer: its tokens are not counted as answered.
        let output_tokens = if cut { 0 } else { reply.output_tokens() };
        if stream {
            return MockReply {
                injected,
                output_tokens,
                status: 200,
                content_type: EVENT_STREAM,
                body: Vec::new(),
                stream: Some(MockStream::new(
                    reply,
                    ttft,
                    gap,
                    stream::Ending {
                        cut,
                        error: hooks.error,
                    },
                    varied,
                )),
                first_byte_delay: slow,
            };
        }
        let mut body = Vec::with_capacity(1024 + 2 * reply.text.text.len());
        match endpoint {
            Endpoint::ChatCompletions => chat::write_body(&reply, &mut body),
            Endpoint::Messages | Endpoint::CountTokens => anthropic::write_body(&reply, &mut body),
            Endpoint::Responses => responses::write_body(&reply, &mut body),
        }
        let words = u32::try_from(reply.output_tokens()).unwrap_or(u32::MAX);
        let generation = gap.saturating_mul(words.saturating_sub(1));
        let mut r = json_reply(
            200,
            body,
            ttft.saturating_add(slow).saturating_add(generation),
        );
        r.output_tokens = output_tokens;
        r
    }

    /// The pause between streamed words.
    fn gap(&self) -> Duration {
        let tps = self.opts.tokens_per_s;
        if tps.is_finite() && tps > 0.0 {
            Duration::try_from_secs_f64(1.0 / tps).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        }
    }

    /// A uniform draw in `[0, 1)` from the failure generator.
    fn draw(&self) -> f64 {
        (xorshift(&self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Decides whether this request fails (see "Injected failures"). Draws only when
    /// `fail_rate > 0`, so a mock without failures is fully deterministic.
    fn injected_failure(&self, stream: bool) -> Option<Injected> {
        let rate = self.opts.fail_rate;
        if rate.is_nan() || rate <= 0.0 || self.draw() >= rate {
            return None;
        }
        let kind = self.draw();
        Some(if stream && kind >= 2.0 / 3.0 {
            Injected::Cut
        } else if kind < if stream { 1.0 / 3.0 } else { 0.5 } {
            Injected::Fail(Failure::Server)
        } else {
            Injected::Fail(Failure::RateLimited)
        })
    }

    /// Builds the reply with fresh ids.
    fn build(&self, endpoint: Endpoint, req: request::Request) -> Reply {
        let now = now();
        let words = timing::reply_tokens(
            &self.rng,
            self.opts.reply_tokens,
            self.opts.spread.reply_spread,
        );
        Reply::new(
            endpoint,
            req,
            words,
            &mut |prefix| self.new_id(prefix, now),
            now.as_secs(),
        )
    }

    /// `prefix` + a UUID v7 as 32 hex digits, time-ordered; randomness from this instance's
    /// generator (no shared state, no syscall).
    fn new_id(&self, prefix: &str, now: Duration) -> String {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&xorshift(&self.ids).to_le_bytes());
        random[8..].copy_from_slice(&xorshift(&self.ids).to_le_bytes()[..2]);
        let millis = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
        let mut id = String::with_capacity(prefix.len() + buf.len());
        id.push_str(prefix);
        id.push_str(uuid.simple().encode_lower(&mut buf));
        id
    }
}

/// An injected failure: an error status, or a stream cut.
enum Injected {
    Fail(Failure),
    Cut,
}

fn json_reply(status: u16, body: Vec<u8>, delay: Duration) -> MockReply {
    MockReply {
        status,
        content_type: JSON,
        body,
        stream: None,
        first_byte_delay: delay,
        injected: false,
        output_tokens: 0,
    }
}

fn error_reply(endpoint: Option<Endpoint>, failure: Failure, delay: Duration) -> MockReply {
    let mut body = Vec::with_capacity(256);
    failure.write_body(endpoint, &mut body);
    json_reply(failure.status(endpoint), body, delay)
}
