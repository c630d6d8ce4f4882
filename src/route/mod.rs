//! The routing table: an immutable snapshot built from a validated config, read by workers
//! without locks.
//!
//! A [`RouteTable`] is built off the hot path (start, `SIGHUP`), published through
//! [`Routes`] (an `ArcSwap` plus a generation counter), and cached per worker: a worker only
//! reads the generation (a plain atomic load, no read-modify-write) on each request and takes a
//! new `Arc` when it changed. Nothing in a snapshot changes after it is built.
//!
//! Which candidates serve a request, in which order, is `policy`'s; the runtime state the
//! policies read (health, latency, spend) is `stats`'s, and survives snapshot swaps for models
//! and projects that still exist. Every model of a project is a candidate whatever protocol its
//! provider speaks: the request path translates when the route's protocol is another.

pub mod policy;
pub mod stats;

use crate::config::{
    BudgetConfig, Capability, Config, ProviderKind, RoutingConfig, TraceMode, UpstreamUrl,
};
use crate::endpoint::Protocol;
use crate::limits::Limiter;
use crate::metrics::series::Series;
use crate::provider::Adapter;
use arc_swap::ArcSwap;
use policy::Policy;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;
use stats::ModelStats;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A provider, ready for the upstream client.
pub struct Provider {
    /// Config id, shown in traces.
    pub id: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Parsed `base_url` (`None` for the mock).
    pub url: Option<UpstreamUrl>,
    /// Resolved addresses of `url`'s host: resolved when the snapshot is built, refreshed by
    /// the resolver thread (`cli`), read by workers without blocking.
    pub addrs: ArcSwap<Vec<SocketAddr>>,
    /// Trust roots for `https://` (webpki-roots plus `ca_file`); `None` for plain HTTP.
    pub tls_roots: Option<Arc<rustls::RootCertStore>>,
    /// Pool key: connections are interchangeable when scheme, host, port and trust roots match.
    pub pool_key: u64,
    /// What differs between provider kinds: protocol, paths, auth headers, status rule.
    pub adapter: &'static dyn Adapter,
    /// Serves `/v1/responses` itself (config `responses`).
    pub responses: bool,
    /// The configured static `headers`, as `name: value\r\n` lines, built once.
    pub extra_headers: Vec<u8>,
    /// The key: the adapter writes it into each request, and upstream error bodies are
    /// scrubbed for it. Never logged, never shown (see the `Debug` impl).
    pub key: String,
    /// The key's fragments, which every body and stream relayed from this provider is
    /// scanned for (`relay::scrub`).
    pub key_set: crate::relay::scrub::KeySet,
    /// `Host: ...\r\n`.
    pub host_line: Vec<u8>,
    /// Path prefix of `base_url`.
    pub prefix: String,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// Deadline for the first response byte.
    pub first_byte_timeout: Duration,
    /// Longest silence between streamed bytes.
    pub stream_idle_timeout: Duration,
    /// Pooled connections per worker.
    pub max_idle: usize,
    /// Default `anthropic-version`.
    pub anthropic_version: String,
    /// The in-process mock's options: `Some` exactly for `kind = "mock"` providers, which the
    /// upstream client answers in process instead of connecting.
    pub mock: Option<crate::mock::MockOptions>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Provider {
    /// An address to connect to (the first resolved), if the host resolved.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addrs.load().first().copied()
    }

    /// Re-resolves the host (blocking: call off the workers) and publishes the result when
    /// it resolved and changed. Returns whether it changed.
    pub fn refresh_addrs(&self) -> bool {
        let Some(u) = &self.url else { return false };
        match (u.host.as_str(), u.port).to_socket_addrs() {
            Ok(a) => {
                let fresh: Vec<SocketAddr> = a.collect();
                if !fresh.is_empty() && **self.addrs.load() != fresh {
                    self.addrs.store(Arc::new(fresh));
                    return true;
                }
                false
            }
            Err(_) => false, // keep the last good answer
        }
    }

    /// Whether this provider can serve a route of `protocol` without translation.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.adapter.speaks(protocol)
    }
}

/// Capability bits of a model.
pub mod caps {
    /// Tool / function calling.
    pub const TOOLS: u8 = 1;
    /// Image input.
    pub const VISION: u8 = 2;
    /// JSON mode / structured output.
    pub const JSON: u8 = 4;
}

/// A model clients may name.
#[derive(Debug)]
pub struct Model {
    /// What clients name.
    pub id: String,
    /// Index into [`RouteTable::providers`].
    pub provider: u16,
    /// What the provider is sent.
    pub upstream_id: String,
    /// `upstream_id` as a JSON string literal, quotes included, for splicing.
    pub upstream_json: Vec<u8>,
    /// USD per million input tokens.
    pub input_per_million: f64,
    /// USD per million output tokens.
    pub output_per_million: f64,
    /// USD per million cache-read input tokens.
    pub cached_input_per_million: f64,
    /// Context window in tokens (0 = unknown).
    pub context_window: u64,
    /// The output bound sent to an Anthropic-protocol provider when the client gave none.
    pub max_output_tokens: u64,
    /// [`caps`] bits.
    pub caps: u8,
    /// Spend and call limits.
    pub budget: Option<BudgetConfig>,
    /// Health, latency and usage, shared by workers, kept across reloads.
    pub stats: Arc<ModelStats>,
}

/// A project.
#[derive(Debug)]
pub struct Project {
    /// URL name.
    pub slug: String,
    /// Candidate model indices in preference order.
    pub models: Vec<u16>,
    /// Policies in priority order.
    pub policies: Vec<Policy>,
    /// `"policies":[...]` JSON array, built once for the trace event.
    pub policies_json: Vec<u8>,
    /// Trace form.
    pub trace: TraceMode,
    /// Spend and call limits of the whole project.
    pub budget: Option<BudgetConfig>,
    /// The project's usage (only the usage counters are used), kept across reloads.
    pub stats: Arc<ModelStats>,
    /// `limits`: the whole project's request and token rate, kept across reloads.
    pub limiter: Option<Arc<Limiter>>,
    /// `token_limits`: one limiter per token digest (empty without `token_limits`).
    pub token_limiters: HashMap<[u8; 32], Arc<Limiter>>,
    /// Labelled metrics: `[0]` for requests no model was chosen for, then one per entry of
    /// `models`, in its order. Kept across reloads by model id.
    pub series: Box<[Arc<Series>]>,
}

impl Project {
    /// The metrics series of this project and `model` (one of its candidates, or none).
    pub fn series(&self, model: Option<u16>) -> &Series {
        let i = model
            .and_then(|m| self.models.iter().position(|&x| x == m))
            .map_or(0, |i| i + 1);
        &self.series[i]
    }
}

/// Server limits, copied from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// 431 past it.
    pub max_header_bytes: usize,
    /// 413 past it.
    pub max_body_bytes: usize,
    /// 431 past it.
    pub max_headers: usize,
    /// Whole body deadline, from the end of the head (408 past it).
    pub body_timeout: Duration,
    /// Bytes of request bodies one worker may hold; 503 past it.
    pub max_body_memory_per_worker: usize,
    /// Whole head deadline.
    pub header_timeout: Duration,
    /// Keep-alive idle deadline, and the deadline of each client write.
    pub idle_timeout: Duration,
    /// Largest buffered upstream body.
    pub max_upstream_body_bytes: usize,
    /// Past it (or unknown), a non-streaming upstream body is large (`relay::held`).
    pub hold_body_bytes: usize,
    /// Large upstream bodies a worker holds at once.
    pub max_held_bodies: usize,
    /// How long a shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

/// The immutable snapshot.
pub struct RouteTable {
    /// Providers in config order.
    pub providers: Vec<Provider>,
    /// Models in config order.
    pub models: Vec<Model>,
    /// Projects in config order.
    pub projects: Vec<Project>,
    /// Limits of `[server]`.
    pub limits: Limits,
    /// Health-check tuning.
    pub routing: RoutingConfig,
    /// Labelled metrics of requests no project was found for (bad token, unknown route).
    pub unattributed: Arc<Series>,
    tokens: HashMap<[u8; 32], SmallVec<[u16; 4]>>,
    model_ids: HashMap<String, u16>,
    slugs: HashMap<Vec<u8>, u16>,
}

/// SHA-256 of a token, the form configs store.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let h = (pair[0] as char).to_digit(16)?;
        let l = (pair[1] as char).to_digit(16)?;
        out[i] = (h * 16 + l) as u8;
    }
    Some(out)
}

impl RouteTable {
    /// Builds a snapshot: resolves provider hosts (blocking DNS, so never on a worker), reads
    /// keys, indexes tokens. `keys` are the providers' keys in config order. Warnings (plain
    /// tokens in the config) go to `warn`.
    ///
    /// `workers` sizes the per-worker stat shards; `prev` is the snapshot being replaced, whose
    /// per-model and per-project runtime state carries over by id.
    pub fn build(
        cfg: &Config,
        keys: &[String],
        workers: usize,
        prev: Option<&RouteTable>,
        warn: &mut dyn FnMut(String),
    ) -> Result<RouteTable, crate::config::ConfigErrors> {
        cfg.warnings().into_iter().for_each(&mut *warn);
        let mut errs = Vec::new();
        let mut providers = Vec::with_capacity(cfg.providers.len());
        for (i, p) in cfg.providers.iter().enumerate() {
            let key = keys.get(i).cloned().unwrap_or_default();
            let url = if p.kind == ProviderKind::Mock {
                None
            } else {
                UpstreamUrl::parse(&p.base_url).ok()
            };
            let mut addrs = Vec::new();
            if let Some(u) = &url {
                match (u.host.as_str(), u.port).to_socket_addrs() {
                    Ok(a) => addrs.extend(a),
                    Err(e) => errs.push(format!(
                        "providers[{i}].base_url: cannot resolve {}: {e}",
                        u.host
                    )),
                }
            }
            let mut extra_headers = Vec::new();
            for (name, value) in &p.headers {
                extra_headers.extend_from_slice(name.as_bytes());
                extra_headers.extend_from_slice(b": ");
                extra_headers.extend_from_slice(value.as_bytes());
                extra_headers.extend_from_slice(b"\r\n");
            }
            let mut tls_roots = None;
            if url.as_ref().is_some_and(|u| u.tls) {
                match crate::upstream::tls::roots(&p.ca_file) {
                    Ok(r) => tls_roots = Some(r),
                    Err(e) => errs.push(format!("providers[{i}].ca_file: {e}")),
                }
            } else if !p.ca_file.is_empty() {
                errs.push(format!(
                    "providers[{i}].ca_file: only used with an https:// base_url"
                ));
            }
            let pool_key = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                // The trust roots are part of the identity: a connection verified against one
                // provider's ca_file must never serve a provider that does not trust that CA.
                url.as_ref()
                    .map(|u| (u.tls, u.host.as_str(), u.port))
                    .hash(&mut h);
                p.ca_file.hash(&mut h);
                h.finish()
            };
            let host_line = match &url {
                Some(u) => format!("Host: {}\r\n", u.host_header()).into_bytes(),
                None => Vec::new(),
            };
            providers.push(Provider {
                id: p.id.clone(),
                kind: p.kind,
                prefix: url.as_ref().map(|u| u.prefix.clone()).unwrap_or_default(),
                url,
                addrs: ArcSwap::from_pointee(addrs),
                tls_roots,
                pool_key,
                adapter: crate::provider::adapter(p.kind),
                responses: p.serves_responses(),
                extra_headers,
                key_set: crate::relay::scrub::KeySet::new(key.as_bytes()),
                key,
                host_line,
                connect_timeout: Duration::from_millis(p.connect_timeout_ms),
                first_byte_timeout: Duration::from_millis(p.first_byte_timeout_ms),
                stream_idle_timeout: Duration::from_millis(p.stream_idle_timeout_ms),
                max_idle: p.max_idle_per_worker,
                anthropic_version: p.anthropic_version.clone(),
                mock: (p.kind == ProviderKind::Mock).then_some(crate::mock::MockOptions {
                    ttft_ms: p.mock.ttft_ms,
                    tokens_per_s: p.mock.tokens_per_s,
                    reply_tokens: p.mock.reply_tokens,
                    fail_rate: p.mock.fail_rate,
                    seed: 0,
                    spread: p.mock.spread(),
                }),
            });
        }

        let mut models = Vec::with_capacity(cfg.models.len());
        let mut model_ids = HashMap::new();
        for (i, m) in cfg.models.iter().enumerate() {
            let provider = cfg
                .providers
                .iter()
                .position(|p| p.id == m.provider)
                .unwrap_or(0) as u16;
            let upstream_id = if m.upstream_id.is_empty() {
                m.id.clone()
            } else {
                m.upstream_id.clone()
            };
            let mut upstream_json = Vec::new();
            crate::scan::push_json_string(&mut upstream_json, &upstream_id);
            let mut bits = 0;
            for c in m.capabilities.iter() {
                bits |= match c {
                    Capability::Tools => caps::TOOLS,
                    Capability::Vision => caps::VISION,
                    Capability::Json => caps::JSON,
                };
            }
            model_ids.insert(m.id.clone(), i as u16);
            let stats = prev
                .and_then(|t| {
                    t.model_by_id(&m.id)
                        .map(|j| t.models[j as usize].stats.clone())
                })
                .unwrap_or_else(|| Arc::new(ModelStats::new(workers)));
            models.push(Model {
                id: m.id.clone(),
                provider,
                upstream_id,
                upstream_json,
                input_per_million: m.input_per_million,
                output_per_million: m.output_per_million,
                cached_input_per_million: m.cached_input_per_million.unwrap_or(m.input_per_million),
                context_window: m.context_window,
                max_output_tokens: match m.max_output_tokens {
                    0 => crate::config::DEFAULT_MAX_OUTPUT_TOKENS,
                    n => n,
                },
                caps: bits,
                budget: m.budget.clone(),
                stats,
            });
        }

        let mut projects = Vec::with_capacity(cfg.projects.len());
        let mut tokens: HashMap<[u8; 32], SmallVec<[u16; 4]>> = HashMap::new();
        let mut slugs = HashMap::new();
        for (i, p) in cfg.projects.iter().enumerate() {
            for t in &p.tokens {
                let digest = match t.strip_prefix("sha256:") {
                    Some(hex) => match hex32(&hex.to_ascii_lowercase()) {
                        Some(d) => d,
                        None => continue, // validate() reported it
                    },
                    None => token_digest(t.as_bytes()), // cfg.warnings() names it
                };
                let list = tokens.entry(digest).or_default();
                if !list.contains(&(i as u16)) {
                    list.push(i as u16);
                }
            }
            let models_idx: Vec<u16> = p
                .models
                .iter()
                .filter_map(|m| model_ids.get(m).copied())
                .collect();
            let mut policies_json = b"[".to_vec();
            for (k, pol) in p.policies.iter().enumerate() {
                if k > 0 {
                    policies_json.push(b',');
                }
                crate::scan::push_json_string(&mut policies_json, pol.name());
            }
            policies_json.push(b']');
            slugs.insert(p.slug.as_bytes().to_vec(), i as u16);
            let stats = prev
                .and_then(|t| {
                    t.project_by_slug(p.slug.as_bytes())
                        .map(|j| t.projects[j as usize].stats.clone())
                })
                .unwrap_or_else(|| Arc::new(ModelStats::new(workers)));
            let prev_project = prev.and_then(|t| {
                t.project_by_slug(p.slug.as_bytes())
                    .map(|j| &t.projects[j as usize])
            });
            // Counters carry over a reload when the limit is unchanged.
            let limiter = p.limits.map(|cfg| {
                prev_project
                    .and_then(|q| q.limiter.clone())
                    .filter(|l| l.cfg == cfg)
                    .unwrap_or_else(|| {
                        let key = format!("sy:l:{}", p.slug).into_bytes();
                        Arc::new(Limiter::new(cfg, key, workers))
                    })
            });
            let mut token_limiters = HashMap::new();
            if let Some(cfg) = p.token_limits {
                for t in &p.tokens {
                    let digest = match t.strip_prefix("sha256:") {
                        Some(hex) => match hex32(&hex.to_ascii_lowercase()) {
                            Some(d) => d,
                            None => continue,
                        },
                        None => token_digest(t.as_bytes()),
                    };
                    let l = prev_project
                        .and_then(|q| q.token_limiters.get(&digest).cloned())
                        .filter(|l| l.cfg == cfg)
                        .unwrap_or_else(|| {
                            // A digest prefix names the token in Redis; never the token.
                            let hex: String =
                                digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                            let key = format!("sy:l:{}:t:{hex}", p.slug).into_bytes();
                            Arc::new(Limiter::new(cfg, key, workers))
                        });
                    token_limiters.insert(digest, l);
                }
            }
            let series = std::iter::once(None)
                .chain(
                    models_idx
                        .iter()
                        .map(|&m: &u16| Some(models[m as usize].id.as_str())),
                )
                .map(|model| {
                    prev_project
                        .and_then(|q| {
                            let at = match model {
                                None => Some(0),
                                Some(id) => prev?
                                    .model_by_id(id)
                                    .and_then(|j| q.models.iter().position(|&x| x == j))
                                    .map(|i| i + 1),
                            };
                            at.map(|i| q.series[i].clone())
                        })
                        .unwrap_or_else(|| Arc::new(Series::new(workers)))
                })
                .collect();
            projects.push(Project {
                slug: p.slug.clone(),
                models: models_idx,
                policies: p.policies.to_vec(),
                policies_json,
                trace: p.trace,
                budget: p.budget.clone(),
                stats,
                limiter,
                token_limiters,
                series,
            });
        }

        if !errs.is_empty() {
            return Err(crate::config::ConfigErrors(errs));
        }
        let s = &cfg.server;
        Ok(RouteTable {
            providers,
            models,
            projects,
            limits: Limits {
                max_header_bytes: s.max_header_bytes,
                max_body_bytes: s.max_body_bytes,
                max_headers: s.max_headers,
                body_timeout: Duration::from_millis(s.body_timeout_ms),
                max_body_memory_per_worker: s.max_body_memory_per_worker,
                header_timeout: Duration::from_millis(s.header_timeout_ms),
                idle_timeout: Duration::from_millis(s.idle_timeout_ms),
                max_upstream_body_bytes: s.max_upstream_body_bytes,
                hold_body_bytes: s.hold_body_bytes,
                max_held_bodies: s.max_held_bodies,
                drain_timeout: Duration::from_millis(s.drain_timeout_ms),
            },
            routing: cfg.routing.clone(),
            unattributed: prev
                .map(|t| t.unattributed.clone())
                .unwrap_or_else(|| Arc::new(Series::new(workers))),
            tokens,
            model_ids,
            slugs,
        })
    }

    /// The projects a token may act for, in config order (empty: unknown token).
    pub fn projects_for_token(&self, token: &[u8]) -> &[u16] {
        self.projects_for_digest(&token_digest(token))
    }

    /// The projects a token digest may act for.
    pub fn projects_for_digest(&self, digest: &[u8; 32]) -> &[u16] {
        match self.tokens.get(digest) {
            Some(list) => list,
            None => &[],
        }
    }

    /// A project by slug.
    pub fn project_by_slug(&self, slug: &[u8]) -> Option<u16> {
        self.slugs.get(slug).copied()
    }

    /// A model by id.
    pub fn model_by_id(&self, id: &str) -> Option<u16> {
        self.model_ids.get(id).copied()
    }

    /// Re-resolves every provider host (resolver thread).
    pub fn refresh_addrs(&self) {
        for p in &self.providers {
            if p.refresh_addrs() {
                crate::info!(
                    "provider {}: addresses changed to {:?}",
                    p.id,
                    p.addrs.load()
                );
            }
        }
    }

    /// The provider of a model.
    pub fn provider_of(&self, model: u16) -> &Provider {
        &self.providers[self.models[model as usize].provider as usize]
    }
}

/// The published snapshot and its generation.
pub struct Routes {
    current: ArcSwap<RouteTable>,
    generation: AtomicU64,
}

impl Routes {
    /// Publishes the first snapshot.
    pub fn new(table: RouteTable) -> Routes {
        Routes {
            current: ArcSwap::from_pointee(table),
            generation: AtomicU64::new(1),
        }
    }

    /// Swaps in a new snapshot (reload). In-flight requests finish on the one they loaded.
    pub fn publish(&self, table: RouteTable) {
        self.current.store(Arc::new(table));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The generation; changes on every publish.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current snapshot (takes a reference count; callers cache it per worker).
    pub fn load(&self) -> Arc<RouteTable> {
        self.current.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> RouteTable {
        let cfg = Config::parse(text, "t").unwrap();
        let keys = vec![String::new(); cfg.providers.len()];
        RouteTable::build(&cfg, &keys, 2, None, &mut |_| {}).unwrap()
    }

    const CFG: &str = r#"
[[providers]]
id = "oa"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
[[providers]]
id = "an"
kind = "anthropic"
base_url = "http://127.0.0.1:2"
[[models]]
id = "a"
provider = "oa"
[[models]]
id = "b"
provider = "an"
[[models]]
id = "c"
provider = "oa"
upstream_id = "c-2025"
[[projects]]
slug = "one"
tokens = ["sk-lr-x"]
models = ["a", "b", "c"]
[[projects]]
slug = "two"
tokens = ["sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"]
models = ["c"]
"#;

    #[test]
    fn candidates_named_first_then_in_project_order_whatever_the_protocol() {
        let t = table(CFG);
        let p = t.project_by_slug(b"one").unwrap();
        let f = policy::Features::default();
        let names = |r: Option<&str>| {
            policy::decide(&t, p, r, &f, 1)
                .unwrap()
                .iter()
                .map(|c| t.models[c.model as usize].id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some("c")), ["c", "a", "b"]);
        assert_eq!(names(Some("auto")), ["a", "b", "c"]);
        assert_eq!(names(Some("b")), ["b", "a", "c"]);
        assert_eq!(t.models[2].upstream_json, b"\"c-2025\"");
    }

    #[test]
    fn runtime_state_survives_a_reload_for_models_that_remain() {
        let old = table(CFG);
        old.models[0].stats.record_ok(0, 1, 500, &old.routing);
        // The new config drops model b and reorders the others.
        let text = CFG
            .replace("[[models]]\nid = \"b\"\nprovider = \"an\"\n", "")
            .replace("models = [\"a\", \"b\", \"c\"]", "models = [\"c\", \"a\"]");
        let cfg = Config::parse(&text, "t").unwrap();
        let keys = vec![String::new(); cfg.providers.len()];
        let new = RouteTable::build(&cfg, &keys, 2, Some(&old), &mut |_| {}).unwrap();
        let a_old = &old.models[old.model_by_id("a").unwrap() as usize];
        let a_new = &new.models[new.model_by_id("a").unwrap() as usize];
        assert!(
            Arc::ptr_eq(&a_old.stats, &a_new.stats),
            "a keeps its health and latency"
        );
        assert_eq!(a_new.stats.ttfb_us(), Some(500));
        let c_old = &old.models[old.model_by_id("c").unwrap() as usize];
        let c_new = &new.models[new.model_by_id("c").unwrap() as usize];
        assert!(Arc::ptr_eq(&c_old.stats, &c_new.stats));
        assert!(new.model_by_id("b").is_none());
        let p_old = &old.projects[old.project_by_slug(b"one").unwrap() as usize];
        let p_new = &new.projects[new.project_by_slug(b"one").unwrap() as usize];
        assert!(
            Arc::ptr_eq(&p_old.stats, &p_new.stats),
            "project budgets carry over"
        );
    }

    #[test]
    fn tokens_by_digest_and_plain() {
        let t = table(CFG);
        assert_eq!(t.projects_for_token(b"sk-lr-x"), &[0]);
        // sha256("x") is the digest listed for project two.
        assert_eq!(t.projects_for_token(b"x"), &[1]);
        assert!(t.projects_for_token(b"sk-lr-nope").is_empty());
    }
}
