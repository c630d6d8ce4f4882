//! Labelled request metrics: one [`Series`] per (project, model) pair, plus one for requests
//! no project was found for, each sharded per worker and summed when scraped.
//!
//! The series hang off the route snapshot (`Project::series`, `RouteTable::unattributed`), so
//! a request reaches its counters by index, with no map lookup and no lock; a reload hands
//! the same `Arc`s to the new snapshot by project slug and model id, so counters never go
//! back. Labels: `route` (the endpoint's path pattern), `project`, `model`, `provider`, and
//! `code` (the status class) on request counts.

use super::hist::{Gaps, Hist, Summed, BOUNDS_US, BUCKETS};
use crate::endpoint::{parse_target, Endpoint};
use crate::route::stats::Health;
use crate::route::RouteTable;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The routes metrics tell apart, as their `route` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Route {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/messages`
    Messages,
    /// `/v1/responses`
    Responses,
    /// `/v1/messages/count_tokens`
    CountTokens,
    /// `/v1/models`
    Models,
    /// `/v1/responses/{id}` and its `input_items`
    Stored,
    /// Anything else (answered 404).
    Other,
}

/// Routes, for array sizes.
pub const ROUTES: usize = Route::Other as usize + 1;

const ROUTE_LABELS: [&str; ROUTES] = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/responses/{id}",
    "other",
];

/// Status classes 1xx..5xx.
const CLASSES: usize = 5;
const CLASS_LABELS: [&str; CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Route {
    /// The route of a request path (with or without the `/projects/{slug}` prefix).
    pub fn of(path: &[u8]) -> Route {
        let t = parse_target(path);
        if t.stored.is_some() {
            return Route::Stored;
        }
        match t.endpoint {
            Some(Endpoint::ChatCompletions) => Route::Chat,
            Some(Endpoint::Messages) => Route::Messages,
            Some(Endpoint::Responses) => Route::Responses,
            Some(Endpoint::CountTokens) => Route::CountTokens,
            Some(Endpoint::Models) => Route::Models,
            None => Route::Other,
        }
    }
}

#[inline]
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
}

/// One worker's counters of one series.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; CLASSES]; ROUTES],
    latency: [Hist; ROUTES],
    ttfb: [Hist; ROUTES],
    gaps: [Hist; ROUTES],
    input: AtomicU64,
    output: AtomicU64,
    cached: AtomicU64,
    /// USD, as `f64` bits (one writer, so load-add-store is exact).
    cost: AtomicU64,
    attempts_ok: AtomicU64,
    attempts_err: AtomicU64,
    failovers: AtomicU64,
}

/// What one finished request adds to its series.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// Its route.
    pub route: Route,
    /// The status answered.
    pub status: u16,
    /// From the head being read to the answer's end, µs.
    pub latency_us: u64,
    /// Upstream time to first byte, µs, when an upstream answered.
    pub ttfb_us: Option<u64>,
    /// Gaps between the relayed reads of a stream.
    pub gaps: &'a Gaps,
    /// Tokens the upstream reported: input (all prompt tokens), output, cache-read.
    pub tokens: Option<(u64, u64, u64)>,
    /// Cost, USD.
    pub cost: f64,
}

/// The counters of one (project, model) pair, one shard per worker.
pub struct Series {
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("workers", &self.shards.len())
            .finish()
    }
}

impl Series {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> Series {
        Series {
            shards: (0..workers.max(1)).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self, worker: usize) -> &Shard {
        &self.shards[worker % self.shards.len()]
    }

    /// Records a finished request. Only worker `worker` calls this with its index.
    pub fn record(&self, worker: usize, o: &Observed<'_>) {
        let s = self.shard(worker);
        let r = o.route as usize;
        let class = (o.status / 100).clamp(1, 5) as usize - 1;
        bump(&s.requests[r][class], 1);
        s.latency[r].observe(o.latency_us);
        if let Some(t) = o.ttfb_us {
            s.ttfb[r].observe(t);
        }
        s.gaps[r].add(o.gaps);
        if let Some((i, out, c)) = o.tokens {
            bump(&s.input, i);
            bump(&s.output, out);
            bump(&s.cached, c);
        }
        if o.cost != 0.0 {
            let was = f64::from_bits(s.cost.load(Relaxed));
            s.cost.store((was + o.cost).to_bits(), Relaxed);
        }
    }

    /// Records one upstream attempt of this pair's model.
    pub fn attempt(&self, worker: usize, ok: bool) {
        let s = self.shard(worker);
        bump(if ok { &s.attempts_ok } else { &s.attempts_err }, 1);
    }

    /// Records a failover away from this pair's model.
    pub fn failover(&self, worker: usize) {
        bump(&self.shard(worker).failovers, 1);
    }

    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(f(s).load(Relaxed)))
    }

    fn cost(&self) -> f64 {
        self.shards
            .iter()
            .map(|s| f64::from_bits(s.cost.load(Relaxed)))
            .sum()
    }

    fn hist(&self, f: impl Fn(&Shard) -> &Hist) -> Summed {
        let mut out = Summed::default();
        for s in self.shards.iter() {
            f(s).sum_into(&mut out);
        }
        out
    }
}

/// Label values of one series.
struct Labels<'a> {
    project: &'a str,
    model: &'a str,
    provider: &'a str,
}

impl std::fmt::Display for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "project=\"{}\",model=\"{}\",provider=\"{}\"",
            Esc(self.project),
            Esc(self.model),
            Esc(self.provider)
        )
    }
}

/// A label value escaped per the text format (config names are already plain; this keeps a
/// surprise from breaking the scrape).
struct Esc<'a>(&'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Every series of `table` with its labels.
fn each(table: &RouteTable) -> Vec<(Labels<'_>, &Series)> {
    let mut out = vec![(
        Labels {
            project: "",
            model: "",
            provider: "",
        },
        &*table.unattributed,
    )];
    for p in &table.projects {
        out.push((
            Labels {
                project: &p.slug,
                model: "",
                provider: "",
            },
            &*p.series[0],
        ));
        for (i, &m) in p.models.iter().enumerate() {
            out.push((
                Labels {
                    project: &p.slug,
                    model: &table.models[m as usize].id,
                    provider: &table.provider_of(m).id,
                },
                &*p.series[i + 1],
            ));
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    all: &[(Labels<'_>, &Series)],
    f: fn(&Shard, usize) -> &Hist,
) {
    header(out, name, "histogram", help);
    for (l, s) in all {
        for (r, route) in ROUTE_LABELS.iter().enumerate() {
            let h = s.hist(|sh| f(sh, r));
            let count = h.count();
            if count == 0 {
                continue;
            }
            let mut cum = 0;
            for (b, n) in h.counts[..BUCKETS - 1].iter().enumerate() {
                cum += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",{l},le=\"{}\"}} {cum}",
                    BOUNDS_US[b] as f64 / 1e6
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",{l},le=\"+Inf\"}} {count}\n{name}_sum{{route=\"{route}\",{l}}} {}\n{name}_count{{route=\"{route}\",{l}}} {count}",
                h.sum_us as f64 / 1e6
            );
        }
    }
}

/// Renders every labelled family of `table`'s series, summed over workers. Series with
/// nothing counted are left out.
pub fn render(table: &RouteTable, out: &mut String) {
    let all = each(table);

    header(
        out,
        "switchyard_requests_total",
        "counter",
        "Requests answered by the gateway, by route, project, model, provider and status class.",
    );
    for (l, s) in &all {
        for (r, route) in ROUTE_LABELS.iter().enumerate() {
            for (c, code) in CLASS_LABELS.iter().enumerate() {
                let n = s.sum(|sh| &sh.requests[r][c]);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "switchyard_requests_total{{route=\"{route}\",{l},code=\"{code}\"}} {n}"
                    );
                }
            }
        }
    }
    histogram(
        out,
        "switchyard_request_duration_seconds",
        "Time from the request head to the answer's last byte.",
        &all,
        |s, r| &s.latency[r],
    );
    histogram(
        out,
        "switchyard_upstream_first_byte_seconds",
        "Time from sending to the upstream to its first byte (time to first token of a stream).",
        &all,
        |s, r| &s.ttfb[r],
    );
    histogram(
        out,
        "switchyard_stream_gap_seconds",
        "Gaps between the upstream reads relayed in a stream.",
        &all,
        |s, r| &s.gaps[r],
    );

    header(
        out,
        "switchyard_tokens_total",
        "counter",
        "Tokens the upstreams reported, by kind: input (every prompt token), output, cached_input (the part of input read from the provider's cache).",
    );
    for (l, s) in &all {
        for (kind, n) in [
            ("input", s.sum(|sh| &sh.input)),
            ("output", s.sum(|sh| &sh.output)),
            ("cached_input", s.sum(|sh| &sh.cached)),
        ] {
            if n > 0 {
                let _ = writeln!(out, "switchyard_tokens_total{{{l},kind=\"{kind}\"}} {n}");
            }
        }
    }
    header(
        out,
        "switchyard_cost_usd_total",
        "counter",
        "Cost of the answered requests at the models' prices, USD.",
    );
    for (l, s) in &all {
        let c = s.cost();
        if c != 0.0 {
            let _ = writeln!(out, "switchyard_cost_usd_total{{{l}}} {c}");
        }
    }
    header(
        out,
        "switchyard_upstream_attempts_total",
        "counter",
        "Upstream attempts by outcome: ok (an answer was relayed) or error (failed, timed out, or cut).",
    );
    for (l, s) in &all {
        for (outcome, n) in [
            ("ok", s.sum(|sh| &sh.attempts_ok)),
            ("error", s.sum(|sh| &sh.attempts_err)),
        ] {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "switchyard_upstream_attempts_total{{{l},outcome=\"{outcome}\"}} {n}"
                );
            }
        }
    }
    header(
        out,
        "switchyard_failovers_total",
        "counter",
        "Failovers away from a model that failed before its first byte.",
    );
    for (l, s) in &all {
        let n = s.sum(|sh| &sh.failovers);
        if n > 0 {
            let _ = writeln!(out, "switchyard_failovers_total{{{l}}} {n}");
        }
    }

    header(
        out,
        "switchyard_circuit_state",
        "gauge",
        "Each model's circuit breaker: 0 closed, 1 half-open (one probe may go), 2 open.",
    );
    let now = crate::route::stats::now_ms();
    for (i, m) in table.models.iter().enumerate() {
        let v = match m.stats.health(now, &table.routing) {
            Health::Closed(_) => 0,
            Health::HalfOpen => 1,
            Health::Open => 2,
        };
        let _ = writeln!(
            out,
            "switchyard_circuit_state{{model=\"{}\",provider=\"{}\"}} {v}",
            Esc(&m.id),
            Esc(&table.provider_of(i as u16).id)
        );
    }
}
