//! The policy engine: which candidates may serve a request, and in which order to try them.
//!
//! Rule (the README's "Routing" decision): each policy scores every candidate in [0,1]
//! and may exclude some; the policy at position i of N (0-based) weighs N−i; a policy whose
//! scores over the remaining candidates are all equal abstains; the combined score is the
//! weighted mean over the policies that voted (1 when none did). Candidates are tried in score
//! order, ties keeping the project's order; a model the request names that the project has
//! goes first whatever its score (unless excluded).
//!
//! Policies: `health` (circuit breaker: open → excluded, half-open → one probe; score 1 − error
//! rate), `cheapest` (input + output price per million), `fastest` (recent time to first
//! byte; models without a sample score as the mean of those with one), `context` (estimated
//! input + `max_tokens` must fit `context_window`; exclusion only), `capability` (tools,
//! images, JSON mode the request uses; exclusion only), `budget` (a model whose budget is
//! spent is excluded; score = remaining headroom). A project's own budget, when spent, refuses
//! the request (429) whatever its policies.
//!
//! Health exclusion fails open: when it would exclude every candidate left, it is ignored for
//! that request (Envoy's panic mode), because trying a model that may have recovered beats
//! refusing the request outright.
//!
//! Everything here reads per-worker-sharded atomics; nothing locks. A decision over 20
//! candidates with every policy on is benchmarked in `benches/`.

use super::stats::{headroom, Health};
use super::{caps, RouteTable};
use smallvec::SmallVec;

/// Up to this many candidates stay on the stack.
pub const INLINE_CANDIDATES: usize = 8;
/// Most candidates a project may list (config validation enforces it), so per-request score
/// arrays live on the stack.
pub const MAX_CANDIDATES: usize = 64;

/// The policies the engine knows: the config's enum, whose names are listed there once.
pub use crate::config::Policy;

/// What the request needs, read once from its scanned body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// [`caps`] bits the request uses.
    pub caps: u8,
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// Requested output tokens (`max_tokens` and kin; 0 when absent).
    pub max_output: u64,
}

/// One candidate in try order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Model index.
    pub model: u16,
    /// Combined score in [0,1].
    pub score: f64,
    /// This request holds the model's half-open probe slot.
    pub probe: bool,
}

/// The order to try candidates in.
pub type Decision = SmallVec<[Ranked; INLINE_CANDIDATES]>;

/// Why no candidate is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// The project lists no model.
    NoModels,
    /// The project's budget is spent.
    ProjectBudget,
    /// Every candidate's budget is spent.
    ModelBudget,
    /// No candidate supports a feature the request uses.
    Capability,
    /// The request does not fit any candidate's context window.
    Context,
}

/// Decides the try order for one request. `worker` and `now_ms` locate the caller's shard and
/// the instant; `requested` is the client's `model` value.
pub fn decide(
    table: &RouteTable,
    project: u16,
    requested: Option<&str>,
    feats: &Features,
    now_ms: u64,
) -> Result<Decision, NoRoute> {
    let p = &table.projects[project as usize];
    let cfg = &table.routing;
    if let Some(b) = &p.budget {
        let (calls, spend) = p.stats.usage(now_ms, b.window_ms);
        if headroom(b, calls, spend) <= 0.0 {
            return Err(NoRoute::ProjectBudget);
        }
    }

    // Every model of the project, whatever protocol its provider speaks (a request of the
    // other protocol is translated), in project order.
    let mut cands: SmallVec<[u16; INLINE_CANDIDATES]> = p.models.iter().copied().collect();
    if cands.is_empty() {
        return Err(NoRoute::NoModels);
    }

    // Hard exclusions first (capability, context, budget), each only when the policy is on.
    let mut why = None;
    for &pol in &p.policies {
        let before = cands.len();
        match pol {
            Policy::Capability => cands.retain(|&mut m| {
                let have = table.models[m as usize].caps;
                feats.caps & !have == 0
            }),
            Policy::Context => cands.retain(|&mut m| {
                let w = table.models[m as usize].context_window;
                w == 0 || feats.input_tokens + feats.max_output <= w
            }),
            Policy::Budget => cands.retain(|&mut m| {
                let model = &table.models[m as usize];
                match &model.budget {
                    Some(b) => {
                        let (c, s) = model.stats.usage(now_ms, b.window_ms);
                        headroom(b, c, s) > 0.0
                    }
                    None => true,
                }
            }),
            _ => {}
        }
        if cands.is_empty() && before > 0 {
            why = Some(match pol {
                Policy::Capability => NoRoute::Capability,
                Policy::Context => NoRoute::Context,
                _ => NoRoute::ModelBudget,
            });
            break;
        }
    }
    if let Some(w) = why {
        return Err(w);
    }

    // Health: open circuits out, half-open ones only with the probe slot; fail open.
    let health_on = p.policies.contains(&Policy::Health);
    let mut health: SmallVec<[(Health, bool); INLINE_CANDIDATES]> = SmallVec::new();
    for &m in &cands {
        let h = if health_on {
            table.models[m as usize].stats.health(now_ms, cfg)
        } else {
            Health::Closed(0.0)
        };
        health.push((h, false));
    }
    if health_on {
        let any_usable = health
            .iter()
            .any(|(h, _)| matches!(h, Health::Closed(_) | Health::HalfOpen));
        if any_usable {
            let mut keep: SmallVec<[bool; INLINE_CANDIDATES]> = SmallVec::new();
            for (i, &m) in cands.iter().enumerate() {
                let k = match health[i].0 {
                    Health::Closed(_) => true,
                    Health::Open => false,
                    Health::HalfOpen => {
                        let got = table.models[m as usize].stats.try_probe(now_ms, cfg);
                        health[i].1 = got;
                        got
                    }
                };
                keep.push(k);
            }
            let mut i = 0;
            cands.retain(|_| {
                let k = keep[i];
                i += 1;
                k
            });
            let mut i = 0;
            health.retain(|_| {
                let k = keep[i];
                i += 1;
                k
            });
        }
        if cands.is_empty() {
            // Every usable one was a half-open model whose probe slot is taken: fail open.
            cands = p.models.iter().copied().collect();
            health = cands.iter().map(|_| (Health::Closed(0.0), false)).collect();
        }
    }

    // Scores.
    let n = cands.len();
    let npol = p.policies.len();
    let mut total = [0.0f64; MAX_CANDIDATES];
    let total = &mut total[..n.min(MAX_CANDIDATES)];
    let mut weight_sum = 0.0;
    let mut scores = [0.0f64; MAX_CANDIDATES];
    for (i, &pol) in p.policies.iter().enumerate() {
        let s = &mut scores[..total.len()];
        let voted = match pol {
            Policy::Health => {
                for (j, (h, _)) in health.iter().take(s.len()).enumerate() {
                    s[j] = match h {
                        Health::Closed(rate) => 1.0 - rate,
                        _ => 0.0,
                    };
                }
                true
            }
            Policy::Cheapest => {
                let prices = cands.iter().take(s.len()).map(|&m| {
                    let md = &table.models[m as usize];
                    md.input_per_million + md.output_per_million
                });
                lower_is_better(prices, s)
            }
            Policy::Fastest => {
                let known: SmallVec<[Option<u64>; INLINE_CANDIDATES]> = cands
                    .iter()
                    .take(s.len())
                    .map(|&m| table.models[m as usize].stats.ttfb_us())
                    .collect();
                let (sum, k) = known
                    .iter()
                    .flatten()
                    .fold((0u64, 0u64), |(a, k), v| (a + v, k + 1));
                let mean = sum.checked_div(k).unwrap_or(0);
                lower_is_better(known.iter().map(|v| v.unwrap_or(mean) as f64), s)
            }
            Policy::Budget => {
                for (j, &m) in cands.iter().take(s.len()).enumerate() {
                    let model = &table.models[m as usize];
                    s[j] = match &model.budget {
                        Some(b) => {
                            let (c, sp) = model.stats.usage(now_ms, b.window_ms);
                            headroom(b, c, sp)
                        }
                        None => 1.0,
                    };
                }
                true
            }
            Policy::Context | Policy::Capability => false,
        };
        if !voted || all_equal(s) {
            continue; // abstains
        }
        let w = (npol - i) as f64;
        weight_sum += w;
        for (t, v) in total.iter_mut().zip(s.iter()) {
            *t += w * v;
        }
    }

    let named = requested
        .and_then(|r| table.model_by_id(r))
        .and_then(|m| cands.iter().position(|&c| c == m));
    let mut out: Decision = cands
        .iter()
        .enumerate()
        .map(|(j, &m)| Ranked {
            model: m,
            score: if weight_sum > 0.0 {
                total.get(j).map_or(0.0, |t| t / weight_sum)
            } else {
                1.0
            },
            probe: health.get(j).is_some_and(|h| h.1),
        })
        .collect();
    // Stable: ties keep the project's order.
    out.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if let Some(j) = named {
        let m = cands[j];
        if let Some(pos) = out.iter().position(|r| r.model == m) {
            let r = out.remove(pos);
            out.insert(0, r);
        }
    }
    Ok(out)
}

/// Scores values where lower is better onto [0,1]: min → 1, max → 0. Returns false (abstain)
/// when they are all equal.
fn lower_is_better(values: impl Iterator<Item = f64> + Clone, out: &mut [f64]) -> bool {
    let (lo, hi) = values
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    // NaN-safe: equal, empty or incomparable values all abstain.
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return false;
    }
    for (o, v) in out.iter_mut().zip(values) {
        *o = (hi - v) / (hi - lo);
    }
    true
}

fn all_equal(s: &[f64]) -> bool {
    s.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-12)
}

/// Whether a content array holds an image block: a `"type"` member whose value is
/// `"image_url"` (OpenAI chat), `"input_image"` (Responses) or `"image"` (Anthropic). Raw
/// quotes cannot occur inside a JSON string, so the pattern only matches real members.
fn has_image_block(m: &[u8]) -> bool {
    memchr::memmem::find_iter(m, b"\"type\"").any(|at| {
        let rest = &m[at + 6..];
        let rest = rest.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let rest = rest.trim_ascii_start();
        [&b"\"image_url\""[..], b"\"input_image\"", b"\"image\""]
            .iter()
            .any(|v| rest.starts_with(v))
    })
}

/// The capability bits a request uses, from its scanned body: `tools` (non-empty), images
/// (`image_url`, `input_image`, or an Anthropic `"type":"image"` block in the messages or
/// input), JSON mode (`response_format` of type `json_object` / `json_schema`).
pub fn request_caps(body: &[u8], top: &crate::scan::TopLevel) -> u8 {
    use crate::scan::Key;
    use memchr::memmem;
    let mut bits = 0;
    if let Some(t) = top.get(Key::Tools).and_then(|s| s.bytes(body)) {
        if t.first() == Some(&b'[')
            && t.iter()
                .skip(1)
                .any(|b| !b.is_ascii_whitespace() && *b != b']')
        {
            bits |= caps::TOOLS;
        }
    }
    for k in [Key::Messages, Key::Input] {
        if let Some(m) = top.get(k).and_then(|s| s.bytes(body)) {
            if has_image_block(m) {
                bits |= caps::VISION;
            }
        }
    }
    if let Some(r) = top.get(Key::ResponseFormat).and_then(|s| s.bytes(body)) {
        if memmem::find(r, b"json_object").is_some() || memmem::find(r, b"json_schema").is_some() {
            bits |= caps::JSON;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CFG: &str = r#"
[routing]
health_min_requests = 4
health_error_rate = 0.5
health_cooldown_ms = 1000
health_window_ms = 60000
[[providers]]
id = "m"
kind = "mock"
[[models]]
id = "a"
provider = "m"
input_per_million = 1.0
output_per_million = 1.0
context_window = 100
capabilities = ["tools"]
[[models]]
id = "b"
provider = "m"
input_per_million = 1.0
output_per_million = 3.0
context_window = 1000
capabilities = ["tools", "vision"]
[[models]]
id = "c"
provider = "m"
input_per_million = 4.0
output_per_million = 6.0
budget = { window_ms = 60000, max_calls = 2 }
[[projects]]
slug = "cheap"
models = ["a", "b", "c"]
policies = ["cheapest"]
[[projects]]
slug = "hc"
models = ["a", "b", "c"]
policies = ["health", "cheapest"]
[[projects]]
slug = "fast"
models = ["a", "b", "c"]
policies = ["fastest"]
[[projects]]
slug = "fit"
models = ["a", "b", "c"]
policies = ["context", "capability", "budget"]
[[projects]]
slug = "capped"
models = ["a"]
policies = []
budget = { window_ms = 60000, max_spend_usd = 0.5 }
"#;

    const T: u64 = 10_000_000;

    fn table() -> RouteTable {
        let cfg = Config::parse(CFG, "t").unwrap();
        RouteTable::build(&cfg, &["".into()], 2, None, &mut |_| {}).unwrap()
    }

    fn run(
        t: &RouteTable,
        slug: &str,
        named: Option<&str>,
        f: &Features,
    ) -> Result<Vec<(String, f64)>, NoRoute> {
        let p = t.project_by_slug(slug.as_bytes()).unwrap();
        decide(t, p, named, f, T).map(|d| {
            d.iter()
                .map(|r| (t.models[r.model as usize].id.clone(), r.score))
                .collect()
        })
    }

    fn close(got: &[(String, f64)], want: &[(&str, f64)]) {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((gm, gs), (wm, ws)) in got.iter().zip(want) {
            assert_eq!(gm, wm, "{got:?}");
            assert!((gs - ws).abs() < 1e-9, "{gm}: {gs} != {ws} in {got:?}");
        }
    }

    #[test]
    fn cheapest_scores_by_total_price() {
        // Prices 2, 4, 10: (10-p)/(10-2) = 1, 0.75, 0.
        let t = table();
        close(
            &run(&t, "cheap", None, &Features::default()).unwrap(),
            &[("a", 1.0), ("b", 0.75), ("c", 0.0)],
        );
    }

    #[test]
    fn named_model_goes_first_whatever_its_score() {
        let t = table();
        close(
            &run(&t, "cheap", Some("c"), &Features::default()).unwrap(),
            &[("c", 0.0), ("a", 1.0), ("b", 0.75)],
        );
        // An unknown name routes by policy.
        close(
            &run(&t, "cheap", Some("gpt-4o"), &Features::default()).unwrap(),
            &[("a", 1.0), ("b", 0.75), ("c", 0.0)],
        );
    }

    #[test]
    fn weights_abstention_and_ties() {
        let t = table();
        // All healthy: health's scores are all 1, it abstains; cheapest alone decides.
        close(
            &run(&t, "hc", None, &Features::default()).unwrap(),
            &[("a", 1.0), ("b", 0.75), ("c", 0.0)],
        );
        // a: one ok, one error (below min_requests: still closed, error rate 0.5).
        let a = &t.models[0].stats;
        a.record_ok(0, T, 1000, &t.routing);
        a.record_err(1, T, &t.routing);
        // health (weight 2): a 0.5, b 1, c 1; cheapest (weight 1): 1, 0.75, 0.
        // a = (2*0.5 + 1)/3 = 2/3, b = (2 + 0.75)/3 = 11/12, c = (2 + 0)/3 = 2/3;
        // a and c tie, so the project's order keeps a before c.
        close(
            &run(&t, "hc", None, &Features::default()).unwrap(),
            &[("b", 11.0 / 12.0), ("a", 2.0 / 3.0), ("c", 2.0 / 3.0)],
        );
    }

    #[test]
    fn open_circuit_excludes_then_probes_then_fails_open() {
        let t = table();
        let a = &t.models[0].stats;
        for w in 0..4 {
            a.record_err(w % 2, T, &t.routing);
        }
        let got = run(&t, "hc", None, &Features::default()).unwrap();
        assert_eq!(
            got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        // After the cool-down one request gets the probe, the next does not.
        let p = t.project_by_slug(b"hc").unwrap();
        let d = decide(&t, p, None, &Features::default(), T + 1000).unwrap();
        assert!(d
            .iter()
            .any(|r| t.models[r.model as usize].id == "a" && r.probe));
        let d = decide(&t, p, None, &Features::default(), T + 1001).unwrap();
        assert!(d.iter().all(|r| t.models[r.model as usize].id != "a"));
        // Every circuit open: health is ignored rather than refusing the request.
        for m in &t.models[1..] {
            for w in 0..4 {
                m.stats.record_err(w % 2, T, &t.routing);
            }
        }
        let d = decide(&t, p, None, &Features::default(), T + 10).unwrap();
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn fastest_uses_ttfb_and_the_mean_for_unknowns() {
        let t = table();
        t.models[0].stats.record_ok(0, T, 1000, &t.routing);
        t.models[1].stats.record_ok(0, T, 3000, &t.routing);
        // a 1000 → 1, b 3000 → 0, c unknown → mean 2000 → 0.5.
        close(
            &run(&t, "fast", None, &Features::default()).unwrap(),
            &[("a", 1.0), ("c", 0.5), ("b", 0.0)],
        );
    }

    #[test]
    fn context_capability_and_budget_exclude() {
        let t = table();
        // 150 tokens: a (window 100) is out; c has no window (0 = unknown) and stays.
        let f = Features {
            input_tokens: 120,
            max_output: 30,
            caps: 0,
        };
        let got = run(&t, "fit", None, &f).unwrap();
        assert_eq!(
            got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        // Images: only b declares vision.
        let f = Features {
            caps: caps::VISION,
            ..Features::default()
        };
        let got = run(&t, "fit", None, &f).unwrap();
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["b"]);
        // JSON mode: nobody declares it.
        let f = Features {
            caps: caps::JSON,
            ..Features::default()
        };
        assert_eq!(run(&t, "fit", None, &f), Err(NoRoute::Capability));
        // c's budget: 2 calls per window; one used leaves headroom 0.5, two exclude it.
        let c = &t.models[2].stats;
        c.record_usage(0, T, 60_000, 0.0);
        let got = run(&t, "fit", None, &Features::default()).unwrap();
        assert!(got.contains(&("c".to_string(), 0.5)), "{got:?}");
        c.record_usage(1, T, 60_000, 0.0);
        let got = run(&t, "fit", None, &Features::default()).unwrap();
        assert!(got.iter().all(|g| g.0 != "c"), "{got:?}");
    }

    #[test]
    fn project_budget_refuses() {
        let t = table();
        assert!(run(&t, "capped", None, &Features::default()).is_ok());
        let p = t.project_by_slug(b"capped").unwrap();
        t.projects[p as usize].stats.record_usage(0, T, 60_000, 0.5);
        assert_eq!(
            run(&t, "capped", None, &Features::default()),
            Err(NoRoute::ProjectBudget)
        );
    }

    #[test]
    fn request_caps_are_read_from_the_body() {
        let body = br#"{"model":"x","tools":[{"type":"function"}],"response_format":{"type":"json_object"},"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:"}}]}]}"#;
        let top = crate::scan::scan_top_level(body).unwrap();
        assert_eq!(
            request_caps(body, &top),
            caps::TOOLS | caps::JSON | caps::VISION
        );
        let body = br#"{"model":"x","tools":[],"messages":[{"role":"user","content":"\"type\":\"image\" image_url"}]}"#;
        let top = crate::scan::scan_top_level(body).unwrap();
        assert_eq!(request_caps(body, &top), 0);
    }
}
