//! Typed configuration: the TOML file an operator writes (its keys are documented in the README
//! and on each field below), loaded and validated off the hot path.
//!
//! A folder because the config has three concerns that change for different reasons: the types
//! (this file: what the file may say), `defaults` (what it means when it says nothing, and the
//! embedded config `serve` runs without one) and `validate` (what it must not say, and what
//! `check` and `serve` warn about); `names` holds the machinery behind the enums below.
//!
//! Closed sets of names (routing policies, model capabilities, the state backend) are enums
//! parsed here once, each listing its names in one place ([`Policy::ALL`] and
//! [`Policy::name`]); validation messages and the routing table read them from there. A name
//! that matches nothing does not stop the TOML parse, which reports only its first error: it is
//! kept beside the list ([`Listed::unknown`], [`Choice::unknown`]) and reported by
//! [`Config::validate`] with its place, along with every other problem.
//!
//! Invariant: a `Config` that came out of [`Config::load`] or [`Config::parse`] has passed
//! [`Config::validate`]; a config with any problem is refused whole (never half-loaded), and every
//! problem is reported with its place (`providers[1].base_url: ...`), one per line.

#[macro_use]
mod names;
mod defaults;
mod validate;

pub use defaults::{ADMIN_LISTEN, DEV_TOKEN, EMBEDDED_DEFAULT};
pub use names::{known_names, Choice, Listed, Named};
pub use validate::{MAX_PROVIDER_HEADERS, MAX_PROVIDER_HEADER_BYTES};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

names! {
    /// The routing policies (`policies = [...]` of a project), applied in the order listed. What
    /// each one does is `route::policy`'s.
    Policy {
        /// Circuit breaker: an open circuit excludes the model; score 1 − error rate.
        Health = "health",
        /// Lowest input + output price per million tokens.
        Cheapest = "cheapest",
        /// Lowest recent time to first byte.
        Fastest = "fastest",
        /// Estimated input + `max_tokens` must fit `context_window` (exclusion only).
        Context = "context",
        /// Supports the tools, images and JSON mode the request uses (exclusion only).
        Capability = "capability",
        /// Within the model's budget; score = remaining headroom.
        Budget = "budget",
    }
}

names! {
    /// What a model supports (`capabilities = [...]` of a model), matched by the `capability`
    /// policy against what a request uses.
    Capability {
        /// Tool / function calling.
        Tools = "tools",
        /// Image input.
        Vision = "vision",
        /// JSON mode / structured output.
        Json = "json",
    }
}

names! {
    /// Where the Responses API state lives (`[state] backend`).
    StateBackend {
        /// A file store under `path`, survives restarts.
        Embedded = "embedded",
        /// A Redis server at `redis_url`, shared by every gateway using it.
        Redis = "redis",
    }
}

names! {
    /// How rate limits are shared across gateways on Redis (`[state] limits_sync`).
    LimitsSync {
        /// One script call per limited request: never over-admits, adds a Redis round trip.
        Exact = "exact",
        /// Each gateway counts locally and trades its counts with Redis every
        /// `limits_sync_ms`: no round trip per request, bounded over-admission.
        Batched = "batched",
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, limits and workers.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Models clients may name, each served by one provider.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Projects: tokens, candidate models, policies.
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
    /// The Responses API state store.
    #[serde(default)]
    pub state: StateConfig,
    /// Health-check tuning.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// The usage ledger and the JSON access log.
    #[serde(default)]
    pub usage: UsageConfig,
    /// OpenTelemetry: one span per answered request, exported over OTLP/HTTP.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The proxy API listener.
    pub listen: String,
    /// `/metrics`, `/health`, `/ready`; empty string disables it.
    pub admin_listen: String,
    /// 0 = one worker per core.
    pub workers: usize,
    /// A request head longer than this gets 431.
    pub max_header_bytes: usize,
    /// A request body longer than this gets 413.
    pub max_body_bytes: usize,
    /// Most header fields in a request head; more gets 431.
    pub max_headers: usize,
    /// The whole request body must arrive within this once its head has (408 and close past it),
    /// so a client trickling a body cannot hold its memory until the idle timeout.
    pub body_timeout_ms: u64,
    /// Memory one worker may hold for request bodies being received or served; a request whose
    /// body would take it past this is shed with 503 instead of growing the process.
    pub max_body_memory_per_worker: usize,
    /// The whole request head must arrive within this.
    pub header_timeout_ms: u64,
    /// A keep-alive connection idle this long is closed; also bounds a stalled body read.
    pub idle_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout_ms: u64,
    /// Largest upstream response body buffered for a non-streaming answer.
    pub max_upstream_body_bytes: usize,
    /// A non-streaming upstream body larger than this (or of unknown length) is large: when
    /// the gateway need not rewrite it, it is relayed as it arrives instead of held; when it
    /// must hold it (translation, Responses storage), it takes one of `max_held_bodies`.
    pub hold_body_bytes: usize,
    /// Large upstream bodies one worker holds at once; past it a request that needs one more
    /// gets 503 with `retry-after` (`docs/operations.md`).
    pub max_held_bodies: usize,
    /// Skip the check that no other process listens on `listen` (see [`crate::listen`]). Set by
    /// `serve --share-port` for a zero-downtime upgrade, never read from the file: left on,
    /// it would let a second gateway split the port's traffic with the first without a word.
    #[serde(skip)]
    pub share_port: bool,
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible API; `base_url` ends in `/v1`.
    Openai,
    /// The Anthropic Messages API; `base_url` is the bare host.
    Anthropic,
    /// The built-in mock provider, in process; speaks both protocols.
    Mock,
}

/// `[[providers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name models refer to.
    pub id: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// As the provider's own SDK takes it.
    #[serde(default)]
    pub base_url: String,
    /// Environment variable holding the key.
    #[serde(default)]
    pub api_key_env: String,
    /// File holding the key (first line).
    #[serde(default)]
    pub api_key_file: String,
    /// Extra trust roots (PEM).
    #[serde(default)]
    pub ca_file: String,
    /// TCP connect deadline.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Deadline for the upstream's first response byte.
    #[serde(default = "defaults::first_byte_timeout")]
    pub first_byte_timeout_ms: u64,
    /// Longest silence between streamed bytes once the answer started.
    #[serde(default = "defaults::idle_gap")]
    pub stream_idle_timeout_ms: u64,
    /// Pooled keep-alive connections per worker.
    #[serde(default = "defaults::max_idle")]
    pub max_idle_per_worker: usize,
    /// `anthropic-version` sent to Anthropic providers when the client sent none.
    #[serde(default = "defaults::anthropic_version")]
    pub anthropic_version: String,
    /// Options of the built-in mock (kind = "mock" only).
    #[serde(default)]
    pub mock: MockConfig,
    /// Whether the provider serves `/v1/responses` itself; absent = the kind's default
    /// (`openai` and `mock`: true, `anthropic`: false). An OpenAI-compatible server (vLLM,
    /// Ollama, llama.cpp) sets `false`.
    #[serde(default)]
    pub responses: Option<bool>,
    /// Extra static headers sent to this provider on every request (an organisation or
    /// project id, a gateway tag). Never the key: that comes from `api_key_env` / `api_key_file`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl ProviderConfig {
    /// Whether `/v1/responses` may be sent to this provider as is.
    pub fn serves_responses(&self) -> bool {
        self.responses.unwrap_or(matches!(
            self.kind,
            ProviderKind::Openai | ProviderKind::Mock
        ))
    }
}

/// `[providers.mock]`: timing and faults of the in-process mock provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Time to first token.
    pub ttft_ms: u64,
    /// Streaming pace; 0 = as fast as possible.
    pub tokens_per_s: f64,
    /// Reply length in tokens when the request does not bound it.
    pub reply_tokens: u32,
    /// Probability of an injected failure.
    pub fail_rate: f64,
    /// Standard deviation of the time to first token, ms (0: fixed).
    pub ttft_spread_ms: f64,
    /// Standard deviation of the gaps between tokens, as a fraction of the gap (0: fixed).
    pub gap_spread: f64,
    /// Probability that a TTFT or gap draw is in the heavy tail.
    pub tail_rate: f64,
    /// What a tail draw is multiplied by.
    pub tail_factor: f64,
    /// Standard deviation of the reply length, tokens (0: fixed).
    pub reply_spread: f64,
    /// Probability that a stream stalls once, midway.
    pub stall_rate: f64,
    /// How long a stall lasts, ms.
    pub stall_ms: u64,
}

impl MockConfig {
    /// The mock's spreads as its options take them.
    pub fn spread(&self) -> crate::mock::timing::Spread {
        crate::mock::timing::Spread {
            ttft_spread_ms: self.ttft_spread_ms,
            gap_spread: self.gap_spread,
            tail_rate: self.tail_rate,
            tail_factor: self.tail_factor,
            reply_spread: self.reply_spread,
            stall_rate: self.stall_rate,
            stall: std::time::Duration::from_millis(self.stall_ms),
        }
    }
}

/// `[[models]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// What clients may name.
    pub id: String,
    /// The provider serving it.
    pub provider: String,
    /// What the provider is sent (default: `id`).
    #[serde(default)]
    pub upstream_id: String,
    /// USD per million input tokens.
    #[serde(default)]
    pub input_per_million: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_per_million: f64,
    /// Input plus output tokens the model accepts.
    #[serde(default)]
    pub context_window: u64,
    /// What the model supports ([`Capability`]).
    #[serde(default)]
    pub capabilities: Listed<Capability>,
    /// USD per million cache-read input tokens (default: the input price).
    #[serde(default)]
    pub cached_input_per_million: Option<f64>,
    /// Sent as `max_tokens` to Anthropic-protocol providers when the client gave no output
    /// bound (Anthropic requires one). 0 = [`DEFAULT_MAX_OUTPUT_TOKENS`].
    #[serde(default)]
    pub max_output_tokens: u64,
    /// Spend and call limits for this model.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

/// The output bound sent to an Anthropic-protocol provider for a model without
/// `max_output_tokens` when the client gave none.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

/// How a project's streams carry the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// A `data:` event (an SSE comment on `/v1/responses`).
    #[default]
    Event,
    /// Always an SSE comment line.
    Comment,
    /// Not sent.
    Off,
}

/// `[[projects]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// URL name: `/projects/{slug}/v1/...`.
    pub slug: String,
    /// `sha256:<hex>` digests of tokens (plain `sk-lr-...` accepted with a warning).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Candidate models in preference order.
    pub models: Vec<String>,
    /// Routing policies in priority order.
    #[serde(default)]
    pub policies: Listed<Policy>,
    /// Trace event form.
    #[serde(default)]
    pub trace: TraceMode,
    /// Spend and call limits over a rolling window; exhausted -> 429.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// Requests and tokens per minute of the whole project; over -> 429 with `retry-after`.
    #[serde(default)]
    pub limits: Option<RateLimitConfig>,
    /// Requests and tokens per minute of each of the project's tokens, counted apart.
    #[serde(default)]
    pub token_limits: Option<RateLimitConfig>,
}

/// `limits = { rpm, tpm }`: requests and estimated tokens (input estimate + max output) per
/// minute. Either may be left out (0 = unlimited), not both.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per window (0 = unlimited).
    #[serde(default)]
    pub rpm: u64,
    /// Estimated tokens per window (0 = unlimited).
    #[serde(default)]
    pub tpm: u64,
    /// Window length; one minute. A testing knob (tests shorten it), not documented.
    #[serde(default = "defaults::limit_window")]
    pub window_ms: u64,
}

/// A spend and/or call limit over a rolling window (`budget = { ... }` on a project or model).
/// Spend is counted from each request's `costEstimate` when it is sent upstream.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Rolling window length.
    #[serde(default = "defaults::budget_window")]
    pub window_ms: u64,
    /// Requests allowed per window (0 = unlimited).
    #[serde(default)]
    pub max_calls: u64,
    /// USD allowed per window (0 = unlimited).
    #[serde(default)]
    pub max_spend_usd: f64,
}

/// `[routing]`: the passive health check (circuit breaker) behind the `health` policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// The error rate is measured over a sliding window this long.
    pub health_window_ms: u64,
    /// No verdict before this many outcomes in the window.
    pub health_min_requests: u32,
    /// Open the circuit at or above this error (and timeout) rate.
    pub health_error_rate: f64,
    /// An open circuit excludes its model this long, then one probe is let through.
    pub health_cooldown_ms: u64,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Where the state lives.
    pub backend: Choice<StateBackend>,
    /// Directory of the embedded store.
    pub path: String,
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// Stored responses expire this many seconds after they were stored (30 days, as OpenAI's).
    pub ttl_s: u64,
    /// Past this many bytes of live records the oldest are evicted; 0 = unlimited.
    pub max_bytes: u64,
    /// With `backend = "redis"`: how rate limits are shared (exact or batched).
    pub limits_sync: Choice<LimitsSync>,
    /// With `limits_sync = "batched"`: how often each gateway trades its counts with Redis.
    pub limits_sync_ms: u64,
}

/// `[usage]`: the usage ledger and the JSON access log, both written by one thread off the
/// workers (`usage::ledger`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// NDJSON ledger file, relative to the working directory; "" = off.
    pub ledger: String,
    /// The ledger is rotated (renamed to `<ledger>.1`) before it would pass this size.
    pub ledger_max_bytes: u64,
    /// Rotated files kept (`.1` newest ... `.N` oldest); 0 keeps none.
    pub ledger_keep: u32,
    /// The JSON access log: "stderr", a file path, or "" = off.
    pub access_log: String,
    /// Lines waiting for the writer thread; past this they are dropped and counted.
    pub queue_depth: usize,
}

/// `[telemetry]`: one span per answered request, exported as OTLP/HTTP JSON by one thread off
/// the workers (`otlp`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://host:4318`); spans go to
    /// `{otlp_endpoint}/v1/traces`. "" = off.
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Spans waiting for the exporter; past this they are dropped and counted.
    pub queue_depth: usize,
    /// Most spans in one export request.
    pub batch_max: usize,
    /// A waiting span is exported within this many milliseconds.
    pub flush_ms: u64,
    /// Extra static headers sent with every export (a collector's auth, a tenant id).
    pub headers: BTreeMap<String, String>,
    /// Deadline of the connect and of each read and write of an export.
    pub timeout_ms: u64,
}

/// Every problem found in a config, each with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates a file. `origin` names it in error lines.
    pub fn load(path: &str) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{path}: cannot read: {e}")]))?;
        Config::parse(&text, path)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![toml_error(text, origin, &e)]))?;
        let errors = cfg.validate();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(
                errors
                    .into_iter()
                    .map(|e| format!("{origin}: {e}"))
                    .collect(),
            ))
        }
    }

    /// The embedded default config.
    pub fn embedded() -> Config {
        match Config::parse(EMBEDDED_DEFAULT, "<embedded>") {
            Ok(c) => c,
            // The embedded text is a constant checked by a unit test.
            Err(e) => panic!("embedded default config is invalid: {e}"),
        }
    }
}

/// A syntax or type error as one line: `FILE: line L, column C: message`. toml stops at its
/// first such error and renders it over several lines (a source snippet, then the message);
/// the line and column say as much as the snippet and keep "one problem, one line".
fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> String {
    let msg: Vec<&str> = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let msg = msg.join("; ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{origin}: line {line}, column {col}: {msg}")
        }
        None => format!("{origin}: {msg}"),
    }
}

/// 1-based line and column (in characters) of byte `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A provider `base_url`, split for the upstream client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `https`?
    pub tls: bool,
    /// Host name or address literal (without brackets).
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
    /// Path prefix without a trailing slash (`/v1` or empty).
    pub prefix: String,
}

impl UpstreamUrl {
    /// Parses `http(s)://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<UpstreamUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?} has no usable host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("{url:?}: bad IPv6 host"))?;
            let host = &v6[..end];
            let after = &v6[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url:?}: bad authority")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{url:?}: bad port"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == b'/' || b == b'?') {
            return Err(format!("{url:?} has no usable host"));
        }
        if path.contains('?') || path.contains('#') {
            return Err(format!("{url:?}: no query or fragment in base_url"));
        }
        Ok(UpstreamUrl {
            tls,
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.projects[0].slug, "default");
        assert_eq!(c.providers[0].kind, ProviderKind::Mock);
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = r#"
[server]
listen = "nope"
[[providers]]
id = "p"
kind = "openai"
base_url = "ftp://x"
[[models]]
id = "m"
provider = "missing"
[[projects]]
slug = "a b"
models = ["m", "ghost"]
policies = ["cheapest", "magic"]
"#;
        let err = Config::parse(text, "t.toml").unwrap_err();
        let all = err.to_string();
        for needle in [
            "t.toml: server.listen",
            "providers[0].base_url",
            "models[0].provider",
            "projects[0].slug",
            "projects[0].models[1]",
            "projects[0].policies[1]",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
        assert_eq!(err.0.len(), 6, "{all}");
    }

    #[test]
    fn unknown_keys_are_refused_with_a_line() {
        let err =
            Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n", "x").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn a_syntax_error_is_one_line_with_line_and_column() {
        let err = Config::parse("# top\n[server\nlisten = 1\n", "x.toml").unwrap_err();
        assert_eq!(err.0.len(), 1);
        let line = &err.0[0];
        assert!(line.starts_with("x.toml: line 2, column 8: "), "{line}");
        assert!(line.contains("invalid table header"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn upstream_urls() {
        let u = UpstreamUrl::parse("https://api.openai.com/v1/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.prefix.as_str()),
            (true, "api.openai.com", 443, "/v1")
        );
        let u = UpstreamUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.port, u.prefix.as_str(), u.host_header().as_str()),
            (8080, "", "127.0.0.1:8080")
        );
        let u = UpstreamUrl::parse("http://[::1]:9/v1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header().as_str()),
            ("::1", 9, "[::1]:9")
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://a:b",
            "http://u@h",
            "http://h/v1?x=1",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
