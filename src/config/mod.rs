//! Typed configuration: the TOML file of `../shared/spec/gateway.md`, loaded and validated off the
//! hot path.
//!
//! Invariant: a `Config` that came out of [`Config::load`] or [`Config::parse`] has passed
//! [`Config::validate`]; a config with any problem is refused whole (never half-loaded), and every
//! problem is reported with its place (`providers[1].base_url: ...`), one per line.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;

/// The config `serve` runs with when no `--config` is given: the built-in mock provider, one
/// project `default`, the dev token `sk-lr-dev` (its digest below), loopback only.
pub const EMBEDDED_DEFAULT: &str = r#"
[server]
listen = "127.0.0.1:3000"
admin_listen = "127.0.0.1:9090"

[[providers]]
id = "mock"
kind = "mock"

[[models]]
id = "mock-small"
provider = "mock"
input_per_million = 0.10
output_per_million = 0.40
context_window = 128000
capabilities = ["tools", "json"]

[[models]]
id = "mock-large"
provider = "mock"
input_per_million = 2.50
output_per_million = 10.00
context_window = 200000
capabilities = ["tools", "vision", "json"]

[[projects]]
slug = "default"
tokens = ["sha256:e1609e2925ce817b38987ec53546776448ff446514c057ab93514070f5dea24f"]  # sk-lr-dev
models = ["mock-small", "mock-large"]
policies = ["health", "cheapest"]
"#;

/// The dev token of the embedded default config, printed at start.
pub const DEV_TOKEN: &str = "sk-lr-dev";

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
    /// The whole request head must arrive within this.
    pub header_timeout_ms: u64,
    /// A keep-alive connection idle this long is closed; also bounds a stalled body read.
    pub idle_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout_ms: u64,
    /// Largest upstream response body buffered for a non-streaming answer.
    pub max_upstream_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:3000".into(),
            admin_listen: "127.0.0.1:9090".into(),
            workers: 0,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 32 * 1024 * 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            drain_timeout_ms: 30_000,
            max_upstream_body_bytes: 64 * 1024 * 1024,
        }
    }
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
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Deadline for the upstream's first response byte.
    #[serde(default = "default_first_byte_timeout")]
    pub first_byte_timeout_ms: u64,
    /// Longest silence between streamed bytes once the answer started.
    #[serde(default = "default_idle_gap")]
    pub stream_idle_timeout_ms: u64,
    /// Pooled keep-alive connections per worker.
    #[serde(default = "default_max_idle")]
    pub max_idle_per_worker: usize,
    /// `anthropic-version` sent to Anthropic providers when the client sent none.
    #[serde(default = "default_anthropic_version")]
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
    pub headers: std::collections::BTreeMap<String, String>,
}

impl ProviderConfig {
    /// Whether `/v1/responses` may be sent to this provider as is.
    pub fn serves_responses(&self) -> bool {
        self.responses
            .unwrap_or(matches!(self.kind, ProviderKind::Openai | ProviderKind::Mock))
    }
}

fn default_connect_timeout() -> u64 {
    5_000
}
fn default_first_byte_timeout() -> u64 {
    60_000
}
fn default_idle_gap() -> u64 {
    120_000
}
fn default_max_idle() -> usize {
    64
}
fn default_anthropic_version() -> String {
    "2023-06-01".into()
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
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            ttft_ms: 0,
            tokens_per_s: 0.0,
            reply_tokens: 16,
            fail_rate: 0.0,
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
    /// `tools`, `vision`, `json`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Spend and call limits for this model.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

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
    pub policies: Vec<String>,
    /// Trace event form.
    #[serde(default)]
    pub trace: TraceMode,
    /// Spend and call limits over a rolling window; exhausted -> 429.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

/// A spend and/or call limit over a rolling window (`budget = { ... }` on a project or model).
/// Spend is counted from each request's `costEstimate` when it is sent upstream.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Rolling window length.
    #[serde(default = "default_budget_window")]
    pub window_ms: u64,
    /// Requests allowed per window (0 = unlimited).
    #[serde(default)]
    pub max_calls: u64,
    /// USD allowed per window (0 = unlimited).
    #[serde(default)]
    pub max_spend_usd: f64,
}

fn default_budget_window() -> u64 {
    60_000
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

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            health_window_ms: 30_000,
            health_min_requests: 5,
            health_error_rate: 0.5,
            health_cooldown_ms: 10_000,
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `embedded` or `redis`.
    pub backend: String,
    /// Directory of the embedded store.
    pub path: String,
    /// `redis://host:port/db`.
    pub redis_url: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: "embedded".into(),
            path: "switchyard-state".into(),
            redis_url: String::new(),
        }
    }
}

/// The policies the routing engine knows.
pub const KNOWN_POLICIES: &[&str] = &[
    "health",
    "cheapest",
    "fastest",
    "context",
    "capability",
    "budget",
];

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
        let cfg: Config = toml::from_str(text).map_err(|e| {
            // toml reports the first syntax or type error with its line and column.
            let msg = e.to_string().replace('\n', " ").replace("  ", " ");
            ConfigErrors(vec![format!("{origin}: {}", msg.trim())])
        })?;
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

    /// Every semantic problem, with its place. Empty means valid.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let s = &self.server;
        if s.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!(
                "server.listen: {:?} is not an address like 0.0.0.0:3000",
                s.listen
            ));
        }
        if !s.admin_listen.is_empty() && s.admin_listen.parse::<SocketAddr>().is_err() {
            errs.push(format!(
                "server.admin_listen: {:?} is not an address like 127.0.0.1:9090",
                s.admin_listen
            ));
        }
        if s.workers > 1024 {
            errs.push("server.workers: at most 1024".into());
        }
        if !(1024..=1 << 20).contains(&s.max_header_bytes) {
            errs.push("server.max_header_bytes: must be between 1024 and 1048576".into());
        }
        if s.max_body_bytes == 0 || s.max_body_bytes > 1 << 30 {
            errs.push("server.max_body_bytes: must be between 1 and 1073741824".into());
        }
        for (name, v) in [
            ("header_timeout_ms", s.header_timeout_ms),
            ("idle_timeout_ms", s.idle_timeout_ms),
            ("drain_timeout_ms", s.drain_timeout_ms),
        ] {
            if v == 0 {
                errs.push(format!("server.{name}: must be greater than 0"));
            }
        }

        for (i, p) in self.providers.iter().enumerate() {
            let place = format!("providers[{i}]");
            if p.id.is_empty() {
                errs.push(format!("{place}.id: must not be empty"));
            }
            if self.providers[..i].iter().any(|q| q.id == p.id) {
                errs.push(format!("{place}.id: duplicate provider id {:?}", p.id));
            }
            if p.kind == ProviderKind::Mock {
                if !p.base_url.is_empty() {
                    errs.push(format!("{place}.base_url: a mock provider has no base_url"));
                }
                if !(0.0..=1.0).contains(&p.mock.fail_rate) {
                    errs.push(format!("{place}.mock.fail_rate: must be within 0..1"));
                }
                if p.mock.tokens_per_s < 0.0 || !p.mock.tokens_per_s.is_finite() {
                    errs.push(format!("{place}.mock.tokens_per_s: must be >= 0"));
                }
            } else {
                if let Err(e) = UpstreamUrl::parse(&p.base_url) {
                    errs.push(format!("{place}.base_url: {e}"));
                }
                if !p.api_key_env.is_empty() && !p.api_key_file.is_empty() {
                    errs.push(format!(
                        "{place}: api_key_env and api_key_file are exclusive"
                    ));
                }
            }
            if p.connect_timeout_ms == 0 || p.first_byte_timeout_ms == 0 {
                errs.push(format!("{place}: timeouts must be greater than 0"));
            }
        }

        for (i, m) in self.models.iter().enumerate() {
            let place = format!("models[{i}]");
            if m.id.is_empty() {
                errs.push(format!("{place}.id: must not be empty"));
            }
            if self.models[..i].iter().any(|q| q.id == m.id) {
                errs.push(format!("{place}.id: duplicate model id {:?}", m.id));
            }
            if !self.providers.iter().any(|p| p.id == m.provider) {
                errs.push(format!(
                    "{place}.provider: no provider with id {:?}",
                    m.provider
                ));
            }
            if m.input_per_million < 0.0 || m.output_per_million < 0.0 {
                errs.push(format!("{place}: prices must be >= 0"));
            }
            for c in &m.capabilities {
                if !["tools", "vision", "json"].contains(&c.as_str()) {
                    errs.push(format!(
                        "{place}.capabilities: unknown capability {c:?} (tools, vision, json)"
                    ));
                }
            }
        }

        if self.projects.is_empty() {
            errs.push("projects: at least one project is needed".into());
        }
        for (i, p) in self.projects.iter().enumerate() {
            let place = format!("projects[{i}]");
            if p.slug.is_empty()
                || !p
                    .slug
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errs.push(format!(
                    "{place}.slug: {:?} must be non-empty [A-Za-z0-9_-]",
                    p.slug
                ));
            }
            if self.projects[..i].iter().any(|q| q.slug == p.slug) {
                errs.push(format!("{place}.slug: duplicate project {:?}", p.slug));
            }
            if p.models.is_empty() {
                errs.push(format!("{place}.models: at least one model is needed"));
            }
            if p.models.len() > crate::route::policy::MAX_CANDIDATES {
                errs.push(format!(
                    "{place}.models: at most {} models per project",
                    crate::route::policy::MAX_CANDIDATES
                ));
            }
            for (j, m) in p.models.iter().enumerate() {
                if !self.models.iter().any(|q| &q.id == m) {
                    errs.push(format!("{place}.models[{j}]: no model with id {m:?}"));
                }
            }
            for (j, t) in p.tokens.iter().enumerate() {
                if let Some(hex) = t.strip_prefix("sha256:") {
                    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        errs.push(format!(
                            "{place}.tokens[{j}]: a sha256 digest is 64 hex digits"
                        ));
                    }
                } else if t.is_empty() {
                    errs.push(format!("{place}.tokens[{j}]: empty token"));
                }
            }
            for (j, pol) in p.policies.iter().enumerate() {
                if !KNOWN_POLICIES.contains(&pol.as_str()) {
                    errs.push(format!(
                        "{place}.policies[{j}]: unknown policy {pol:?} (known: {})",
                        KNOWN_POLICIES.join(", ")
                    ));
                }
            }
        }

        let r = &self.routing;
        if r.health_window_ms == 0 || r.health_cooldown_ms == 0 {
            errs.push(
                "routing: health_window_ms and health_cooldown_ms must be greater than 0".into(),
            );
        }
        if !(r.health_error_rate > 0.0 && r.health_error_rate <= 1.0) {
            errs.push("routing.health_error_rate: must be within (0, 1]".into());
        }
        let budgets = self
            .projects
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("projects[{i}].budget"), &p.budget))
            .chain(
                self.models
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (format!("models[{i}].budget"), &m.budget)),
            );
        for (place, b) in budgets {
            if let Some(b) = b {
                if b.window_ms == 0 {
                    errs.push(format!("{place}.window_ms: must be greater than 0"));
                }
                if b.max_spend_usd < 0.0 || !b.max_spend_usd.is_finite() {
                    errs.push(format!("{place}.max_spend_usd: must be >= 0"));
                }
                if b.max_calls == 0 && b.max_spend_usd == 0.0 {
                    errs.push(format!("{place}: set max_calls or max_spend_usd"));
                }
            }
        }

        match self.state.backend.as_str() {
            "embedded" => {}
            "redis" => {
                if !self.state.redis_url.starts_with("redis://") {
                    errs.push("state.redis_url: must be redis://host:port".into());
                }
            }
            other => errs.push(format!(
                "state.backend: {other:?} is not one of embedded, redis"
            )),
        }
        errs
    }

    /// Reads every provider's key (environment or file). Problems are reported like config
    /// errors; a provider without a key configured gets an empty key.
    pub fn load_keys(&self) -> Result<Vec<String>, ConfigErrors> {
        let mut keys = Vec::with_capacity(self.providers.len());
        let mut errs = Vec::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = if !p.api_key_env.is_empty() {
                match std::env::var(&p.api_key_env) {
                    Ok(k) => k,
                    Err(_) => {
                        errs.push(format!(
                            "providers[{i}].api_key_env: environment variable {} is not set",
                            p.api_key_env
                        ));
                        String::new()
                    }
                }
            } else if !p.api_key_file.is_empty() {
                match std::fs::read_to_string(&p.api_key_file) {
                    Ok(k) => k.lines().next().unwrap_or("").trim().to_string(),
                    Err(e) => {
                        errs.push(format!(
                            "providers[{i}].api_key_file: cannot read {}: {e}",
                            p.api_key_file
                        ));
                        String::new()
                    }
                }
            } else {
                String::new()
            };
            if key.bytes().any(|b| b < 0x20 || b == 0x7f) {
                errs.push(format!(
                    "providers[{i}]: the key contains control characters"
                ));
            }
            keys.push(key);
        }
        if errs.is_empty() {
            Ok(keys)
        } else {
            Err(ConfigErrors(errs))
        }
    }
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
