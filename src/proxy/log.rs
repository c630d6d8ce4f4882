//! Logging: what the attempts did is recorded once the request is over. Each model's
//! health and latency (`route::stats`), the failover counters, one warning per failed
//! attempt, and the decision line, logged once per request at info level (refusals too):
//! `route trace_id=… project=… chosen=… status=… candidates=[model:score,…] failed=[model:code,…]`.
//! No keys, no tokens, no bodies.

use super::attempt::{self, Attempts};
use super::filter::Admitted;
use crate::error::{Error, Side};
use crate::metrics::series::{Observed, Route};
use crate::metrics::Counter;
use crate::relay::End;
use crate::route::policy::{Decision, NoRoute};
use crate::route::{stats, RouteTable};
use crate::server::conn::{Outcome, Request};
use crate::server::worker::Worker;

/// What the ledger line says of a request beyond its status: filled as the phases learn it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Served {
    /// The project the token acts for.
    pub project: Option<u16>,
    /// The token's digest.
    pub token: Option<[u8; 32]>,
    /// The model that answered, or the last one tried.
    pub model: Option<u16>,
    /// Upstream attempts.
    pub attempts: u32,
    /// Tokens the upstream reported.
    pub usage: Option<crate::relay::Usage>,
    /// Real cost (USD) from `usage`.
    pub cost: f64,
    /// Upstream time to first byte, µs.
    pub ttfb_us: Option<u64>,
    /// Gaps between the relayed reads of a stream.
    pub gaps: crate::metrics::hist::Gaps,
    /// Why the answer stopped, as the upstream said.
    pub finish: Option<crate::usage::Finish>,
    /// The client's `model` value (a JSON string) in the request body as read.
    pub requested_model: Option<crate::scan::ValueSpan>,
}

/// Everything one answered request leaves behind, refusals included: its labelled metrics,
/// its ledger and access-log line, its span.
pub fn record(
    w: &Worker,
    req: &Request<'_>,
    served: &Served,
    status: u16,
    started: std::time::Instant,
) {
    observe(w, req, served, status, started);
    ledger(req, served, status, started);
    span(req, served, status, started);
}

/// Adds one answered request to its labelled metrics series (this worker's shard).
fn observe(
    w: &Worker,
    req: &Request<'_>,
    served: &Served,
    status: u16,
    started: std::time::Instant,
) {
    let table = req.table;
    let series = match served.project {
        Some(p) => table.projects[p as usize].series(served.model),
        None => &table.unattributed,
    };
    let o = Observed {
        route: Route::of(req.path()),
        status,
        latency_us: started.elapsed().as_micros() as u64,
        ttfb_us: served.ttfb_us,
        gaps: &served.gaps,
        tokens: served.usage.map(|u| (u.input, u.output, u.cache_read)),
        cost: served.cost,
    };
    series.record(w.index, &o);
}

/// Records one answered request in the usage ledger and the access log (off the worker:
/// `usage::ledger`).
fn ledger(req: &Request<'_>, served: &Served, status: u16, started: std::time::Instant) {
    if !crate::usage::ledger::enabled() {
        return;
    }
    let table = req.table;
    let path = req.path();
    let path = &path[..memchr::memchr(b'?', path).unwrap_or(path.len())];
    let model = served.model.map(|m| &table.models[m as usize]);
    let e = crate::usage::ledger::Entry {
        ts_ms: stats::now_ms(),
        trace_id: req.trace_id.as_str(),
        project: served
            .project
            .map(|p| table.projects[p as usize].slug.as_str()),
        token_digest: served.token.as_ref(),
        route: std::str::from_utf8(path).unwrap_or("-"),
        model: model.map(|m| m.id.as_str()),
        provider: served.model.map(|m| table.provider_of(m).id.as_str()),
        status,
        attempts: served.attempts,
        usage: served.usage,
        cost_usd: served.cost,
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        ttfb_ms: served.ttfb_us.map(|t| t as f64 / 1e3),
    };
    crate::usage::ledger::record(&e);
}

/// Records the request's span for the OTLP exporter (off the worker: `otlp`).
fn span(req: &Request<'_>, served: &Served, status: u16, started: std::time::Instant) {
    if !crate::otlp::enabled() {
        return;
    }
    let table = req.table;
    let path = req.path();
    let path = &path[..memchr::memchr(b'?', path).unwrap_or(path.len())];
    let model = served.model.map(|m| &table.models[m as usize]);
    let provider = served.model.map(|m| table.provider_of(m));
    let s = crate::otlp::Span {
        trace_id: &req.trace_id,
        parent: req.header(b"traceparent"),
        started,
        method: req.head.method.as_str().unwrap_or("_OTHER"),
        route: std::str::from_utf8(path).unwrap_or("-"),
        endpoint: crate::endpoint::parse_target(path).endpoint,
        status,
        project: served
            .project
            .map(|p| table.projects[p as usize].slug.as_str()),
        requested_model: served.requested_model.and_then(|v| v.bytes(req.body)),
        model: model.map(|m| m.upstream_id.as_str()),
        provider: provider.map(|p| p.id.as_str()),
        provider_kind: provider.map(|p| p.kind),
        attempts: served.attempts,
        usage: served.usage,
        finish: served.finish,
        cost_usd: served.cost,
    };
    crate::otlp::record(&s);
}

/// Records the attempts and logs the decision; gives the request's result.
pub fn finish(
    w: &Worker,
    req: &Request<'_>,
    a: &Admitted,
    cands: &Decision,
    at: &mut Attempts,
    served: &mut Served,
) -> Result<Outcome, Error> {
    let table = req.table;
    let now = stats::now_ms();
    let project = &table.projects[a.project as usize];
    for (m, e) in &at.failed {
        let model = &table.models[*m as usize];
        model.stats.record_err(w.index, now, &table.routing);
        w.stats().inc(Counter::UpstreamErrors);
        let series = project.series(Some(*m));
        series.attempt(w.index, false);
        series.failover(w.index);
        crate::warn!(
            "trace_id={} model={} provider={} failed before the first byte: {}",
            req.trace_id.as_str(),
            model.id,
            table.provider_of(*m).id,
            e.message
        );
    }
    let tried = at.tried;
    let last_model = at.last.as_ref().map(|(m, _)| *m);
    served.attempts = tried as u32;
    served.model = last_model.or(at.failed.last().map(|(m, _)| *m));
    let result = match at.last.take() {
        Some((m, Ok(r))) => {
            let model = &table.models[m as usize];
            served.ttfb_us = Some(r.first_byte_us);
            served.usage = r.usage;
            served.gaps = r.gaps;
            project.series(Some(m)).attempt(w.index, r.end != End::Cut);
            served.finish = r.finish;
            if let Some(u) = &r.usage {
                served.cost = crate::usage::cost(model, u);
                attempt::settle(w, req, a.project, model, served.cost - at.estimate);
            }
            let stats = &model.stats;
            if r.end == End::Cut {
                stats.record_err(w.index, now, &table.routing);
            } else {
                stats.record_ok(w.index, now, r.first_byte_us, &table.routing);
            }
            Ok(Outcome {
                status: r.status,
                keep_alive: r.keep_alive,
            })
        }
        Some((m, Err(e))) => {
            if e.side == Side::Upstream {
                project.series(Some(m)).attempt(w.index, false);
                table.models[m as usize]
                    .stats
                    .record_err(w.index, now, &table.routing);
            }
            Err(e)
        }
        None => Err(attempt::all_failed(req, &at.failed, tried)),
    };
    // Probe slots taken for candidates never tried go back.
    for c in cands.iter().skip(tried).filter(|c| c.probe) {
        table.models[c.model as usize].stats.release_probe();
    }
    let chosen = match (last_model, &result) {
        (Some(m), Ok(_)) => table.models[m as usize].id.as_str(),
        _ => "-",
    };
    let status = match &result {
        Ok(o) => o.status,
        Err(e) => e.status(),
    };
    line(
        table, req, a.project, cands, &at.failed, chosen, status, None,
    );
    result
}

/// Logs a refused request: every model of the project with score 0, and the reason.
pub fn refusal(req: &Request<'_>, project: u16, err: &Error, why: NoRoute) {
    let table = req.table;
    let excluded: Decision = table.projects[project as usize]
        .models
        .iter()
        .map(|&model| crate::route::policy::Ranked {
            model,
            score: 0.0,
            probe: false,
        })
        .collect();
    line(
        table,
        req,
        project,
        &excluded,
        &[],
        "-",
        err.status(),
        Some(why),
    );
}

#[allow(clippy::too_many_arguments)]
fn line(
    table: &RouteTable,
    req: &Request<'_>,
    project: u16,
    cands: &Decision,
    failed: &[(u16, Error)],
    chosen: &str,
    status: u16,
    refused: Option<NoRoute>,
) {
    if !crate::log::enabled(crate::log::Level::Info) {
        return;
    }
    struct Cands<'a>(&'a RouteTable, &'a Decision);
    impl std::fmt::Display for Cands<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            for (i, c) in self.1.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}:{:.3}", self.0.models[c.model as usize].id, c.score)?;
            }
            Ok(())
        }
    }
    struct Tries<'a>(&'a RouteTable, &'a [(u16, Error)]);
    impl std::fmt::Display for Tries<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            for (i, (m, e)) in self.1.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}:{}", self.0.models[*m as usize].id, e.code())?;
            }
            Ok(())
        }
    }
    let refused = match refused {
        None => "",
        Some(NoRoute::NoModels) => " refused=no_models",
        Some(NoRoute::ProjectBudget) => " refused=project_budget",
        Some(NoRoute::ModelBudget) => " refused=model_budget",
        Some(NoRoute::Capability) => " refused=capability",
        Some(NoRoute::Context) => " refused=context",
    };
    crate::info!(
        "route trace_id={} project={} chosen={chosen} status={status} candidates=[{}] failed=[{}]{refused}",
        req.trace_id.as_str(),
        table.projects[project as usize].slug,
        Cands(table, cands),
        Tries(table, failed)
    );
}
