//! Upstream request, send and relay, candidate after candidate until one answers or a failure
//! may not fail over. Failover happens only while nothing has reached the client.
//!
//! Per attempt: the budget is charged the candidate's `costEstimate` (when sent, so that
//! concurrent requests see spend in flight); the provider's adapter gives the path and writes
//! the auth and protocol headers into the upstream request, whose body is the client's with
//! the model's `upstream_id` spliced over `model`; the request goes out (`upstream::send`);
//! the trace is rendered for the candidate that answered and handed to the relay, which
//! returns how the answer ended. Each attempt's outcome is kept for the logging phase.

use super::body::{cost_estimate, Scanned};
use super::filter::Admitted;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};
use crate::provider::ClientHeaders;
use crate::relay::{self, End, Plan, Relayed};
use crate::route::policy::Decision;
use crate::route::{stats, Model, Provider};
use crate::scan;
use crate::server::conn::{Bufs, Request};
use crate::server::respond;
use crate::server::worker::Worker;
use crate::trace::{Score, TraceForm, TraceInfo};
use crate::upstream::{self, Upstream};
use monoio::net::TcpStream;
use smallvec::SmallVec;
use std::time::Instant;

/// Every attempt's outcome, in order.
pub struct Attempts {
    /// Candidates that failed before the first byte and were failed over from.
    pub failed: SmallVec<[(u16, Error); 4]>,
    /// The attempt that ended the request: its answer, or an error that may not fail over.
    /// `None` when every candidate failed over.
    pub last: Option<(u16, Result<Relayed, Error>)>,
    /// Candidates tried.
    pub tried: usize,
}

/// What the earlier phases established, read by every attempt.
pub struct Ctx<'a> {
    /// The worker's upstream client.
    pub up: &'a Upstream,
    /// The worker (its index and counters).
    pub w: &'a Worker,
    /// The request.
    pub req: &'a Request<'a>,
    /// Endpoint and project.
    pub a: &'a Admitted,
    /// The scanned body.
    pub s: &'a Scanned<'a>,
    /// The candidates in try order.
    pub cands: &'a Decision,
}

/// Tries the candidates in order.
pub async fn run(cx: &Ctx<'_>, client: &mut TcpStream, bufs: &mut Bufs) -> Attempts {
    let Ctx {
        w,
        req,
        a,
        s,
        cands,
        ..
    } = *cx;
    let table = req.table;
    let proj = &table.projects[a.project as usize];
    let form = TraceForm::choose(a.endpoint, proj.trace, trace_opted_out(req));
    let mut at = Attempts {
        failed: SmallVec::new(),
        last: None,
        tried: 0,
    };
    for cand in cands.iter() {
        let m = cand.model;
        let model = &table.models[m as usize];
        let provider = table.provider_of(m);
        at.tried += 1;
        let cost = cost_estimate(model, s.feats.input_tokens, s.feats.max_output);
        charge(w, req, a, model, cost);
        let started = Instant::now();
        let result = match provider.adapter.path(a.endpoint) {
            None if a.endpoint == Endpoint::CountTokens => {
                Ok(local_count(req, s, started, client, bufs).await)
            }
            None => Err(Error::internal(format!(
                "provider {} has no path for this endpoint",
                provider.id
            ))),
            Some(path) => {
                let ctx = Candidate {
                    model,
                    provider,
                    path,
                    cost,
                };
                one(cx, &at.failed, &ctx, form, started, client, bufs).await
            }
        };
        match result {
            Err(e) if e.may_fail_over() => at.failed.push((m, e)),
            r => {
                at.last = Some((m, r));
                break;
            }
        }
    }
    at
}

/// The candidate being tried.
struct Candidate<'a> {
    model: &'a Model,
    provider: &'a Provider,
    path: &'static str,
    cost: f64,
}

/// One attempt against one provider: request, send, trace, relay.
async fn one(
    cx: &Ctx<'_>,
    failed: &[(u16, Error)],
    c: &Candidate<'_>,
    form: TraceForm,
    started: Instant,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Relayed, Error> {
    let Ctx {
        up, w, req, a, s, ..
    } = *cx;
    let mut out = std::mem::take(&mut bufs.scratch);
    out.clear();
    write_request(req, s, c, &mut out);
    let ubuf = std::mem::take(&mut bufs.ubuf);
    let sent = upstream::send(up, w.stats(), c.provider, &mut out, ubuf, client).await;
    let ex = match sent {
        Ok(ex) => ex,
        Err((e, b)) => {
            bufs.ubuf = b;
            bufs.scratch = out;
            return Err(e);
        }
    };
    // The request buffer is free again: the trace for this candidate goes there.
    out.clear();
    if s.streaming && form != TraceForm::Off {
        write_trace(cx, failed, c, form, &mut out);
    }
    let plan = Plan {
        provider: c.provider,
        protocol: a.endpoint.protocol(),
        trace_id: &req.trace_id,
        trace: &out,
        limits: &req.table.limits,
        started,
    };
    let r = relay::answer(&plan, up, w.stats(), ex, client, bufs).await;
    bufs.scratch = out;
    r
}

/// Charges the candidate's estimate to the model's and the project's budgets.
fn charge(w: &Worker, req: &Request<'_>, a: &Admitted, model: &Model, cost: f64) {
    let now = stats::now_ms();
    if let Some(b) = &model.budget {
        model.stats.record_usage(w.index, now, b.window_ms, cost);
    }
    let proj = &req.table.projects[a.project as usize];
    if let Some(b) = &proj.budget {
        proj.stats.record_usage(w.index, now, b.window_ms, cost);
    }
}

/// `x-routerly-trace: off` or `x-routerly-no-trace: 1|true`.
fn trace_opted_out(req: &Request<'_>) -> bool {
    matches!(req.header(b"x-routerly-trace"), Some(v) if v.eq_ignore_ascii_case(b"off"))
        || matches!(req.header(b"x-routerly-no-trace"), Some(v) if v == b"1" || v.eq_ignore_ascii_case(b"true"))
}

/// `count_tokens` for a provider without a count endpoint: the documented local estimate.
async fn local_count(
    req: &Request<'_>,
    s: &Scanned<'_>,
    started: Instant,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Relayed {
    let mut out = std::mem::take(&mut bufs.scratch);
    out.clear();
    out.extend_from_slice(b"{\"input_tokens\":");
    crate::http1::write::push_u64(&mut out, s.feats.input_tokens);
    out.push(b'}');
    let idle = req.table.limits.idle_timeout;
    let o = respond::json(idle, client, 200, &req.trace_id, &out, true, bufs).await;
    let bytes = out.len() as u64;
    bufs.scratch = out;
    Relayed {
        status: o.status,
        first_byte_us: started.elapsed().as_micros() as u64,
        end: if o.keep_alive {
            End::Complete
        } else {
            End::ClientGone
        },
        bytes,
        keep_alive: o.keep_alive,
        usage: None,
    }
}

/// Appends the trace of this attempt in `form`.
fn write_trace(
    cx: &Ctx<'_>,
    failed: &[(u16, Error)],
    c: &Candidate<'_>,
    form: TraceForm,
    out: &mut Vec<u8>,
) {
    let Ctx { req, a, cands, .. } = *cx;
    let table = req.table;
    let scores: SmallVec<[Score<'_>; 8]> = cands
        .iter()
        .map(|r| Score {
            model: &table.models[r.model as usize].id,
            score: r.score,
        })
        .collect();
    let attempts: SmallVec<[(&str, &str); 4]> = failed
        .iter()
        .map(|(m, e)| (table.models[*m as usize].id.as_str(), e.code()))
        .collect();
    let info = TraceInfo {
        id: &req.trace_id,
        model: &c.model.id,
        provider: &c.provider.id,
        policies_json: &table.projects[a.project as usize].policies_json,
        scores: &scores,
        attempts: &attempts,
        cost_estimate: c.cost,
    };
    crate::trace::write_trace_sse(out, form, &info);
}

/// Writes the upstream request: head with the provider's headers (never the client's
/// credentials), then the body with the model spliced.
fn write_request(req: &Request<'_>, s: &Scanned<'_>, c: &Candidate<'_>, out: &mut Vec<u8>) {
    let p = c.provider;
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(p.prefix.as_bytes());
    out.extend_from_slice(c.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(&p.host_line);
    p.adapter.write_auth(&p.key, out);
    let client = ClientHeaders {
        anthropic_version: req.header(b"anthropic-version"),
        anthropic_beta: req.header(b"anthropic-beta"),
    };
    p.adapter
        .write_protocol_headers(&p.anthropic_version, &client, out);
    out.extend_from_slice(&p.extra_headers);
    out.extend_from_slice(b"content-type: application/json\r\nuser-agent: switchyard/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(if s.streaming {
        b"accept: text/event-stream\r\n"
    } else {
        b"accept: application/json\r\n"
    });
    out.extend_from_slice(b"content-length: ");
    crate::http1::write::push_usize(out, spliced_len(req.body, s, c.model));
    out.extend_from_slice(b"\r\n\r\n");
    let at = out.len();
    splice_body(req.body, s, c.model, out);
    debug_assert_eq!(out.len() - at, spliced_len(req.body, s, c.model));
}

/// The length [`splice_body`] will write, known before writing it so the upstream head and
/// body go into one buffer without a second copy.
fn spliced_len(body: &[u8], s: &Scanned<'_>, model: &Model) -> usize {
    let id = model.upstream_json.len();
    match s.top.model {
        Some(span) => body.len() - (span.end - span.start) as usize + id,
        None => body.len() + b"\"model\":".len() + id + usize::from(s.top.key_count > 0),
    }
}

/// The body with the model's `upstream_id` in place of the client's `model` (added when the
/// client sent none), written into `out`.
fn splice_body(body: &[u8], s: &Scanned<'_>, model: &Model, out: &mut Vec<u8>) {
    match s.top.model {
        Some(span) => scan::splice(body, span, &model.upstream_json, out),
        None => {
            // Insert `"model":"<id>",` right after the opening brace.
            let brace = memchr::memchr(b'{', body).unwrap_or(0);
            out.extend_from_slice(&body[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(&model.upstream_json);
            if s.top.key_count > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&body[brace + 1..]);
        }
    }
}

/// Every failure of the attempts fell over: 504 when the last was a timeout, else 502.
pub fn all_failed(req: &Request<'_>, failed: &[(u16, Error)], tried: usize) -> Error {
    let Some((last_model, last)) = failed.last() else {
        return Error::internal("no candidate was tried");
    };
    let kind = if last.kind == ErrorKind::UpstreamTimeout {
        ErrorKind::UpstreamTimeout
    } else {
        ErrorKind::UpstreamFailed
    };
    Error::upstream(
        kind,
        format!(
            "every candidate model failed ({} tried); last: {} ({})",
            tried, req.table.models[*last_model as usize].id, last.message
        ),
    )
}
