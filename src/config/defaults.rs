//! Defaults: the config `serve` runs with when given none, and the value of every key a file
//! leaves out. Kept apart from the types so the numbers an operator asks about are in one place.

use super::*;

/// Where the admin listener (`/metrics`, `/health`, `/ready`) binds by default: loopback, on
/// 9464, the port OpenTelemetry's Prometheus exporters default to, not Prometheus's own 9090,
/// which a Prometheus server scraping this host may well hold already.
pub const ADMIN_LISTEN: &str = "127.0.0.1:9464";

/// The config `serve` runs with when no `--config` is given: the built-in mock provider, one
/// project `default`, the dev token `sk-lr-dev` (its digest below), loopback only; the admin
/// listener on [`ADMIN_LISTEN`].
pub const EMBEDDED_DEFAULT: &str = r#"
[server]
listen = "127.0.0.1:3000"
# admin_listen: the default, ADMIN_LISTEN

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

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:3000".into(),
            admin_listen: ADMIN_LISTEN.into(),
            workers: 0,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 32 * 1024 * 1024,
            max_headers: crate::http1::head::DEFAULT_MAX_HEADERS,
            body_timeout_ms: 30_000,
            max_body_memory_per_worker: 256 * 1024 * 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            drain_timeout_ms: 30_000,
            max_upstream_body_bytes: 64 * 1024 * 1024,
            hold_body_bytes: 1024 * 1024,
            max_held_bodies: 16,
            share_port: false,
        }
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            ttft_ms: 0,
            tokens_per_s: 0.0,
            reply_tokens: 16,
            fail_rate: 0.0,
            ttft_spread_ms: 0.0,
            gap_spread: 0.0,
            tail_rate: 0.0,
            tail_factor: 10.0,
            reply_spread: 0.0,
            stall_rate: 0.0,
            stall_ms: 5000,
        }
    }
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

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: Choice::from(StateBackend::Embedded),
            path: "switchyard-state".into(),
            redis_url: String::new(),
            ttl_s: 30 * 24 * 3600,
            max_bytes: 1 << 30,
            limits_sync: Choice::from(LimitsSync::Exact),
            limits_sync_ms: 100,
        }
    }
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            ledger: "usage.ndjson".into(),
            ledger_max_bytes: 100 << 20,
            ledger_keep: 5,
            access_log: "stderr".into(),
            queue_depth: 8192,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            service_name: "switchyard".into(),
            queue_depth: 4096,
            batch_max: 512,
            flush_ms: 1000,
            headers: BTreeMap::new(),
            timeout_ms: 5000,
        }
    }
}

pub(super) fn connect_timeout() -> u64 {
    5_000
}

pub(super) fn first_byte_timeout() -> u64 {
    60_000
}

pub(super) fn idle_gap() -> u64 {
    120_000
}

pub(super) fn max_idle() -> usize {
    64
}

pub(super) fn anthropic_version() -> String {
    "2023-06-01".into()
}

pub(super) fn budget_window() -> u64 {
    60_000
}

pub(super) fn limit_window() -> u64 {
    60_000
}
