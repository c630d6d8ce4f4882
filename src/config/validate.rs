//! Validation: every problem a config has, each with its place, and what `check` and `serve`
//! warn about. Nothing here fails fast: an operator fixing a file wants the whole list at once.

use super::*;
use crate::http1::head::MAX_HEADERS_LIMIT;
use std::net::SocketAddr;

/// Most extra headers one provider may be given: a handful is the use (an organisation or
/// project id, a gateway tag); hundreds would be a mistake, sent on every request.
pub const MAX_PROVIDER_HEADERS: usize = 64;

/// Most bytes a provider's extra headers may take on the wire (`name: value` and CRLF each).
/// Upstream servers cap a request head at 8-16 KiB in common setups (nginx's
/// `large_client_header_buffers`, many load balancers), and the request's own headers need room.
pub const MAX_PROVIDER_HEADER_BYTES: usize = 8 * 1024;

/// Headers the gateway writes itself for every upstream request: the target (`Host`), the
/// framing (RFC 9112 §6) and the hop-by-hop connection options (RFC 9110 §7.6.1). A configured
/// copy would contradict what is actually sent, or smuggle a second framing.
const OWNED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// Credential headers: a key comes from `api_key_env` / `api_key_file` only, so it never sits in
/// a config file that gets copied, committed and printed.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key"];

/// Smallest `[usage] ledger_max_bytes`: a few lines (one is ~400 bytes), so a file always
/// holds at least one whole line.
pub const MIN_LEDGER_BYTES: u64 = 4096;

/// Smallest nonzero `[state] max_bytes`: below a mebibyte the store would evict on nearly every
/// write and keep too few turns to continue a conversation; 0 is the way to say "no cap".
const MIN_STATE_BYTES: u64 = 1 << 20;

impl Config {
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
                "server.admin_listen: {:?} is not an address like {ADMIN_LISTEN}",
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
        if !(1..=MAX_HEADERS_LIMIT).contains(&s.max_headers) {
            errs.push(format!(
                "server.max_headers: must be between 1 and {MAX_HEADERS_LIMIT}"
            ));
        }
        if s.max_body_memory_per_worker < s.max_body_bytes {
            errs.push(
                "server.max_body_memory_per_worker: must be at least max_body_bytes (else every body that large is shed)".into(),
            );
        }
        if s.hold_body_bytes == 0 || s.hold_body_bytes > s.max_upstream_body_bytes {
            errs.push(
                "server.hold_body_bytes: must be between 1 and max_upstream_body_bytes".into(),
            );
        }
        if s.max_held_bodies == 0 {
            errs.push("server.max_held_bodies: must be greater than 0".into());
        }
        for (name, v) in [
            ("header_timeout_ms", s.header_timeout_ms),
            ("body_timeout_ms", s.body_timeout_ms),
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
                for (name, v) in [
                    ("tail_rate", p.mock.tail_rate),
                    ("stall_rate", p.mock.stall_rate),
                ] {
                    if !(0.0..=1.0).contains(&v) {
                        errs.push(format!("{place}.mock.{name}: must be within 0..1"));
                    }
                }
                for (name, v) in [
                    ("ttft_spread_ms", p.mock.ttft_spread_ms),
                    ("gap_spread", p.mock.gap_spread),
                    ("tail_factor", p.mock.tail_factor),
                    ("reply_spread", p.mock.reply_spread),
                ] {
                    if !v.is_finite() || v < 0.0 {
                        errs.push(format!("{place}.mock.{name}: must be >= 0"));
                    }
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
            if p.kind == ProviderKind::Anthropic && p.responses == Some(true) {
                errs.push(format!(
                    "{place}.responses: an anthropic provider does not serve /v1/responses; leave it unset (Responses requests are translated to Messages)"
                ));
            }
            check_headers(&place, &p.headers, false, &mut errs);
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
            if m.input_per_million < 0.0
                || m.output_per_million < 0.0
                || m.cached_input_per_million
                    .is_some_and(|c| c < 0.0 || !c.is_finite())
            {
                errs.push(format!("{place}: prices must be >= 0"));
            }
            for (j, c) in m.capabilities.unknown() {
                errs.push(format!(
                    "{place}.capabilities[{j}]: unknown capability {c:?} (known: {})",
                    known_names::<Capability>()
                ));
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
            for (j, pol) in p.policies.unknown() {
                errs.push(format!(
                    "{place}.policies[{j}]: unknown policy {pol:?} (known: {})",
                    known_names::<Policy>()
                ));
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

        for (i, p) in self.projects.iter().enumerate() {
            for (key, l) in [("limits", &p.limits), ("token_limits", &p.token_limits)] {
                let Some(l) = l else { continue };
                if l.rpm == 0 && l.tpm == 0 {
                    errs.push(format!(
                        "projects[{i}].{key}: set rpm or tpm to a positive number"
                    ));
                }
                if l.window_ms == 0 {
                    errs.push(format!(
                        "projects[{i}].{key}.window_ms: must be greater than 0"
                    ));
                }
            }
        }

        if let Some(other) = self.state.backend.unknown() {
            errs.push(format!(
                "state.backend: {other:?} is not one of {}",
                known_names::<StateBackend>()
            ));
        } else if self.state.backend.get() == StateBackend::Redis
            && !self.state.redis_url.starts_with("redis://")
        {
            errs.push("state.redis_url: must be redis://host:port".into());
        }
        if let Some(other) = self.state.limits_sync.unknown() {
            errs.push(format!(
                "state.limits_sync: {other:?} is not one of {}",
                known_names::<LimitsSync>()
            ));
        } else if self.state.limits_sync.get() == LimitsSync::Batched
            && self.state.backend.get() != StateBackend::Redis
        {
            // Said rather than ignored: without Redis there is nothing to sync with.
            errs.push(
                "state.limits_sync: \"batched\" trades counts through Redis; it needs backend = \"redis\""
                    .into(),
            );
        }
        if !(10..=60_000).contains(&self.state.limits_sync_ms) {
            errs.push("state.limits_sync_ms: must be between 10 and 60000".into());
        }
        if self.state.ttl_s == 0 {
            errs.push("state.ttl_s: must be greater than 0".into());
        }
        if self.state.max_bytes != 0 && self.state.max_bytes < MIN_STATE_BYTES {
            errs.push(format!(
                "state.max_bytes: must be 0 (unlimited) or at least {MIN_STATE_BYTES}"
            ));
        }
        if self.usage.ledger_max_bytes < MIN_LEDGER_BYTES {
            errs.push(format!(
                "usage.ledger_max_bytes: must be at least {MIN_LEDGER_BYTES}"
            ));
        }
        if self.usage.queue_depth == 0 {
            errs.push("usage.queue_depth: must be greater than 0".into());
        }
        if !self.usage.ledger.is_empty() && self.usage.ledger == self.usage.access_log {
            errs.push("usage.access_log: must not be the ledger's file".into());
        }
        self.telemetry.check(&mut errs);
        errs
    }

    /// What `serve` warns about in the file itself (`check` prints the same): plain-text tokens,
    /// each with its place.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in self.projects.iter().enumerate() {
            for (j, t) in p.tokens.iter().enumerate() {
                if !t.is_empty() && !t.starts_with("sha256:") {
                    out.push(format!(
                        "projects[{i}].tokens[{j}]: plain token in config; store its sha256 digest instead (switchyard token)"
                    ));
                }
            }
        }
        out
    }

    /// Reads every provider's key (environment or file) as `serve` does at start: the keys in
    /// provider order (empty where none is configured or it could not be read), and each
    /// problem with its place. `serve` refuses to start on any problem; `check` warns.
    pub fn read_keys(&self) -> (Vec<String>, Vec<String>) {
        let mut keys = Vec::with_capacity(self.providers.len());
        let mut problems = Vec::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = if !p.api_key_env.is_empty() {
                match std::env::var(&p.api_key_env) {
                    Ok(k) => k,
                    Err(_) => {
                        problems.push(format!(
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
                        problems.push(format!(
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
                problems.push(format!(
                    "providers[{i}]: the key contains control characters"
                ));
            }
            keys.push(key);
        }
        (keys, problems)
    }

    /// [`Config::read_keys`] for `serve`: any problem refuses the start.
    pub fn load_keys(&self) -> Result<Vec<String>, ConfigErrors> {
        match self.read_keys() {
            (keys, problems) if problems.is_empty() => Ok(keys),
            (_, problems) => Err(ConfigErrors(problems)),
        }
    }
}

/// A provider's extra headers: valid on the wire, few and small enough, and none of the names
/// the gateway owns.
/// `credentials`: whether `authorization` and `x-api-key` may be given (a collector's auth may;
/// a provider's key may not).
fn check_headers(
    place: &str,
    headers: &BTreeMap<String, String>,
    credentials: bool,
    errs: &mut Vec<String>,
) {
    if headers.len() > MAX_PROVIDER_HEADERS {
        errs.push(format!(
            "{place}.headers: {} headers; at most {MAX_PROVIDER_HEADERS}",
            headers.len()
        ));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    if bytes > MAX_PROVIDER_HEADER_BYTES {
        errs.push(format!(
            "{place}.headers: {bytes} bytes on the wire; at most {MAX_PROVIDER_HEADER_BYTES}"
        ));
    }
    let names: Vec<&String> = headers.keys().collect();
    for (k, (name, value)) in headers.iter().enumerate() {
        let here = format!("{place}.headers[{name:?}]");
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            errs.push(format!(
                "{here}: not a header name (letters, digits and !#$%&'*+-.^_`|~ only; RFC 9110 §5.6.2)"
            ));
        } else if !credentials && CREDENTIAL_HEADERS.contains(&lower.as_str()) {
            errs.push(format!(
                "{here}: keys come only from api_key_env or api_key_file, never from headers"
            ));
        } else if OWNED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            errs.push(format!(
                "{here}: the gateway sets {name} itself (target, framing and connection headers cannot be configured)"
            ));
        } else if names[..k].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            errs.push(format!(
                "{here}: given twice (header names are case-insensitive)"
            ));
        }
        if !value
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            errs.push(format!(
                "{here}: the value may hold visible ASCII, spaces and tabs only (no CR, LF or other control characters)"
            ));
        }
    }
}

impl TelemetryConfig {
    fn check(&self, errs: &mut Vec<String>) {
        let t = self;
        if !t.otlp_endpoint.is_empty() {
            match UpstreamUrl::parse(&t.otlp_endpoint) {
                Err(e) => errs.push(format!("telemetry.otlp_endpoint: {e}")),
                Ok(u) if u.tls => errs.push(format!(
                    "telemetry.otlp_endpoint: {:?}: only http:// is spoken; reach an https collector through a local one",
                    t.otlp_endpoint
                )),
                Ok(_) => {}
            }
        }
        if t.service_name.is_empty() {
            errs.push("telemetry.service_name: must not be empty".into());
        }
        if t.queue_depth == 0 {
            errs.push("telemetry.queue_depth: must be greater than 0".into());
        }
        if t.batch_max == 0 || t.batch_max > crate::otlp::MAX_BATCH {
            errs.push(format!(
                "telemetry.batch_max: must be 1 to {}",
                crate::otlp::MAX_BATCH
            ));
        }
        if t.flush_ms == 0 || t.timeout_ms == 0 {
            errs.push("telemetry: flush_ms and timeout_ms must be greater than 0".into());
        }
        check_headers("telemetry", &t.headers, true, errs);
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid file with one provider of `kind` carrying `extra` lines.
    fn with_provider(kind: &str, extra: &str) -> String {
        let url = if kind == "anthropic" {
            "https://api.anthropic.com"
        } else {
            "https://api.openai.com/v1"
        };
        format!(
            "[[providers]]\nid = \"p\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\n{extra}\n\
             [[models]]\nid = \"m\"\nprovider = \"p\"\n\
             [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\n"
        )
    }

    /// The problems of a file, without the origin prefix.
    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, "t") {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|l| l["t: ".len()..].to_string()).collect(),
        }
    }

    #[test]
    fn the_sample_provider_is_valid() {
        assert_eq!(problems(&with_provider("openai", "")), Vec::<String>::new());
        assert_eq!(
            problems(&with_provider(
                "openai",
                "responses = false\nheaders = { \"OpenAI-Organization\" = \"org-1\", \"X-Tag\" = \"a b\\tc\" }"
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn responses_on_an_anthropic_provider_is_refused() {
        let p = problems(&with_provider("anthropic", "responses = true"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("providers[0].responses: "), "{p:?}");
        assert!(problems(&with_provider("anthropic", "responses = false")).is_empty());
        assert!(problems(&with_provider("openai", "responses = true")).is_empty());
    }

    #[test]
    fn header_names_must_be_tokens() {
        for bad in ["X Tag", "X:Tag", "", "X\\u00e9", "X(1)", "X\\nY"] {
            let p = problems(&with_provider(
                "openai",
                &format!("headers = {{ \"{bad}\" = \"v\" }}"),
            ));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].starts_with("providers[0].headers["), "{p:?}");
            assert!(p[0].contains("RFC 9110 §5.6.2"), "{p:?}");
            assert_eq!(p[0].lines().count(), 1, "{p:?}");
        }
        for good in ["X-Tag", "x_tag", "a!#$%&'*+-.^_`|~9"] {
            let text = with_provider("openai", &format!("headers = {{ \"{good}\" = \"v\" }}"));
            assert!(problems(&text).is_empty(), "{good}");
        }
    }

    #[test]
    fn header_values_are_visible_ascii_space_or_tab() {
        for bad in [
            "a\\r\\nX-Injected: 1",
            "a\\nb",
            "a\\u0000",
            "\\u007f",
            "caf\\u00e9",
        ] {
            let p = problems(&with_provider(
                "openai",
                &format!("headers = {{ \"X-A\" = \"{bad}\" }}"),
            ));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(
                p[0].starts_with("providers[0].headers[\"X-A\"]: the value"),
                "{p:?}"
            );
        }
    }

    #[test]
    fn headers_the_gateway_owns_are_refused() {
        for owned in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "Keep-Alive",
            "upgrade",
            "TE",
            "trailer",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            let p = problems(&with_provider(
                "openai",
                &format!("headers = {{ \"{owned}\" = \"v\" }}"),
            ));
            assert_eq!(p.len(), 1, "{owned}: {p:?}");
            assert!(p[0].contains("the gateway sets"), "{p:?}");
        }
        for cred in ["Authorization", "x-api-key", "X-Api-Key"] {
            let p = problems(&with_provider(
                "openai",
                &format!("headers = {{ \"{cred}\" = \"sk-1\" }}"),
            ));
            assert_eq!(p.len(), 1, "{cred}: {p:?}");
            assert!(p[0].contains("api_key_env or api_key_file"), "{p:?}");
        }
    }

    #[test]
    fn a_header_named_twice_is_refused() {
        let p = problems(&with_provider(
            "openai",
            "headers = { \"X-A\" = \"1\", \"x-a\" = \"2\" }",
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("given twice"), "{p:?}");
    }

    #[test]
    fn headers_are_bounded_in_count_and_size() {
        let many: Vec<String> = (0..=MAX_PROVIDER_HEADERS)
            .map(|i| format!("\"X-{i}\" = \"v\""))
            .collect();
        let p = problems(&with_provider(
            "openai",
            &format!("headers = {{ {} }}", many.join(", ")),
        ));
        assert_eq!(
            p,
            vec![format!("providers[0].headers: 65 headers; at most 64")]
        );
        let exact: Vec<String> = (0..MAX_PROVIDER_HEADERS - 1)
            .map(|i| format!("\"X-{i}\" = \"v\""))
            .collect();
        assert!(problems(&with_provider(
            "openai",
            &format!("headers = {{ {} }}", exact.join(", "))
        ))
        .is_empty());

        // Two headers of 4 KiB: name, ": ", value and CRLF go past 8 KiB.
        let big = "v".repeat(4096);
        let p = problems(&with_provider(
            "openai",
            &format!("headers = {{ \"X-A\" = \"{big}\", \"X-B\" = \"{big}\" }}"),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("providers[0].headers: 8206 bytes"),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_names_are_reported_with_their_place() {
        let text = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                    [[models]]\nid = \"m\"\nprovider = \"p\"\ncapabilities = [\"tools\", \"telepathy\"]\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\npolicies = [\"psychic\", \"cheapest\"]\n\
                    [state]\nbackend = \"floppy\"\n";
        assert_eq!(
            problems(text),
            vec![
                "models[0].capabilities[1]: unknown capability \"telepathy\" (known: tools, vision, json)",
                "projects[0].policies[0]: unknown policy \"psychic\" (known: health, cheapest, fastest, context, capability, budget)",
                "state.backend: \"floppy\" is not one of embedded, redis",
            ]
        );
    }

    #[test]
    fn rate_limits_need_a_positive_number() {
        let project = |lines: &str| {
            format!(
                "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                 [[models]]\nid = \"m\"\nprovider = \"p\"\n\
                 [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\n{lines}\n"
            )
        };
        assert!(problems(&project("limits = { rpm = 600, tpm = 200000 }")).is_empty());
        assert!(problems(&project("token_limits = { tpm = 1000 }")).is_empty());
        assert_eq!(
            problems(&project("limits = {}\ntoken_limits = { rpm = 0, tpm = 0 }")),
            vec![
                "projects[0].limits: set rpm or tpm to a positive number",
                "projects[0].token_limits: set rpm or tpm to a positive number",
            ]
        );
        assert_eq!(
            problems(&project("limits = { rpm = 1, window_ms = 0 }")),
            vec!["projects[0].limits.window_ms: must be greater than 0"]
        );
        // Negative numbers and unknown keys do not parse.
        assert_eq!(problems(&project("limits = { rpm = -1 }")).len(), 1);
        assert_eq!(problems(&project("limits = { rps = 1 }")).len(), 1);
    }

    #[test]
    fn names_parse_once_in_order() {
        let text = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                    [[models]]\nid = \"m\"\nprovider = \"p\"\ncapabilities = [\"json\", \"vision\"]\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\npolicies = [\"budget\", \"health\"]\n\
                    [state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n";
        let c = Config::parse(text, "t").unwrap();
        assert_eq!(
            &*c.models[0].capabilities,
            &[Capability::Json, Capability::Vision]
        );
        assert_eq!(&*c.projects[0].policies, &[Policy::Budget, Policy::Health]);
        assert_eq!(c.state.backend.get(), StateBackend::Redis);
        for p in Policy::ALL {
            assert_eq!(Policy::from_name(p.name()), Some(*p));
        }
        assert_eq!(Policy::from_name("psychic"), None);
    }

    #[test]
    fn state_limits_are_checked() {
        let base = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                    [[models]]\nid = \"m\"\nprovider = \"p\"\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\n[state]\n";
        let c = Config::parse(base, "t").unwrap();
        assert_eq!((c.state.ttl_s, c.state.max_bytes), (2_592_000, 1 << 30));
        let c = Config::parse(&format!("{base}ttl_s = 60\nmax_bytes = 0\n"), "t").unwrap();
        assert_eq!((c.state.ttl_s, c.state.max_bytes), (60, 0));
        assert_eq!(
            problems(&format!("{base}ttl_s = 0\nmax_bytes = 1000\n")),
            vec![
                "state.ttl_s: must be greater than 0",
                "state.max_bytes: must be 0 (unlimited) or at least 1048576",
            ]
        );
        assert_eq!(c.state.limits_sync.get(), LimitsSync::Exact);
        assert_eq!(c.state.limits_sync_ms, 100);
        assert_eq!(
            problems(&format!("{base}limits_sync = \"batched\"\n")),
            ["state.limits_sync: \"batched\" trades counts through Redis; it needs backend = \"redis\""]
        );
        let c = Config::parse(
            &format!("{base}backend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\nlimits_sync = \"batched\"\nlimits_sync_ms = 10\n"),
            "t",
        )
        .unwrap();
        assert_eq!(
            (c.state.limits_sync.get(), c.state.limits_sync_ms),
            (LimitsSync::Batched, 10)
        );
        let p = problems(&format!(
            "{base}limits_sync = \"lazy\"\nlimits_sync_ms = 5\n"
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("state.limits_sync: \"lazy\" is not one of"),
            "{p:?}"
        );
        assert_eq!(p[1], "state.limits_sync_ms: must be between 10 and 60000");
    }

    #[test]
    fn usage_keys_have_defaults_and_are_checked() {
        let base = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                    [[models]]\nid = \"m\"\nprovider = \"p\"\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\n[usage]\n";
        let u = Config::parse(base, "t").unwrap().usage;
        assert_eq!(
            (u.ledger.as_str(), u.access_log.as_str()),
            ("usage.ndjson", "stderr")
        );
        assert_eq!((u.ledger_max_bytes, u.ledger_keep), (100 << 20, 5));
        assert_eq!(
            problems(&format!(
                "{base}ledger = \"x\"\naccess_log = \"x\"\nledger_max_bytes = 10\nqueue_depth = 0\n"
            )),
            vec![
                "usage.ledger_max_bytes: must be at least 4096",
                "usage.queue_depth: must be greater than 0",
                "usage.access_log: must not be the ledger's file",
            ]
        );
    }

    #[test]
    fn telemetry_keys_have_defaults_and_are_checked() {
        let base = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n\
                    [[models]]\nid = \"m\"\nprovider = \"p\"\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\n[telemetry]\n";
        let t = Config::parse(base, "t").unwrap().telemetry;
        assert_eq!(
            (t.otlp_endpoint.as_str(), t.service_name.as_str()),
            ("", "switchyard")
        );
        assert_eq!((t.queue_depth, t.batch_max, t.flush_ms), (4096, 512, 1000));
        let ok = format!(
            "{base}otlp_endpoint = \"http://127.0.0.1:4318\"\nheaders = {{ authorization = \"Bearer x\" }}\n"
        );
        assert!(Config::parse(&ok, "t").is_ok());
        assert_eq!(
            problems(&format!(
                "{base}otlp_endpoint = \"https://collector:4318\"\nservice_name = \"\"\nqueue_depth = 0\nbatch_max = 0\nflush_ms = 0\nheaders = {{ \"content-length\" = \"1\" }}\n"
            )),
            vec![
                "telemetry.otlp_endpoint: \"https://collector:4318\": only http:// is spoken; reach an https collector through a local one",
                "telemetry.service_name: must not be empty",
                "telemetry.queue_depth: must be greater than 0",
                "telemetry.batch_max: must be 1 to 8192",
                "telemetry: flush_ms and timeout_ms must be greater than 0",
                "telemetry.headers[\"content-length\"]: the gateway sets content-length itself (target, framing and connection headers cannot be configured)",
            ]
        );
        assert_eq!(
            problems(&format!("{base}otlp_endpoint = \"collector:4318\"\n")),
            vec!["telemetry.otlp_endpoint: \"collector:4318\" must start with http:// or https://"]
        );
    }

    #[test]
    fn plain_tokens_are_warnings() {
        let text = "[[providers]]\nid = \"p\"\nkind = \"mock\"\n[[models]]\nid = \"m\"\nprovider = \"p\"\n\
                    [[projects]]\nslug = \"a\"\nmodels = [\"m\"]\ntokens = [\"sha256:e1609e2925ce817b38987ec53546776448ff446514c057ab93514070f5dea24f\", \"sk-lr-plain\"]\n";
        let c = Config::parse(text, "t").unwrap();
        assert_eq!(
            c.warnings(),
            vec!["projects[0].tokens[1]: plain token in config; store its sha256 digest instead (switchyard token)"]
        );
        assert!(Config::embedded().warnings().is_empty());
    }

    #[test]
    fn missing_keys_are_problems_with_their_place() {
        let var = format!("SWITCHYARD_TEST_UNSET_{}", std::process::id());
        let text = with_provider("openai", &format!("api_key_env = \"{var}\""));
        let c = Config::parse(&text, "t").unwrap();
        let (keys, problems) = c.read_keys();
        assert_eq!(keys, vec![String::new()]);
        assert_eq!(
            problems,
            vec![format!(
                "providers[0].api_key_env: environment variable {var} is not set"
            )]
        );
        assert!(c.load_keys().is_err());

        let text = with_provider("openai", "api_key_file = \"/nonexistent/switchyard/key\"");
        let (_, problems) = Config::parse(&text, "t").unwrap().read_keys();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with(
                "providers[0].api_key_file: cannot read /nonexistent/switchyard/key: "
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn the_admin_listener_defaults_off_prometheus_port() {
        assert_eq!(ServerConfig::default().admin_listen, "127.0.0.1:9464");
        assert_eq!(Config::embedded().server.admin_listen, "127.0.0.1:9464");
    }
}
