//! Upstream request, send and relay, candidate after candidate until one answers or a failure
//! may not fail over. Failover happens only while nothing has reached the client.
//!
//! Per attempt: the provider's adapter gives the path and writes the auth and protocol headers
//! into the upstream request, whose body is the client's with the model's `upstream_id`
//! spliced over `model`, or, when the provider speaks another API, the client's body
//! translated (`translate::request`; a field the provider cannot honour is a 400 here, before
//! anything is sent); the budget is charged the candidate's `costEstimate` (when sent, so that
//! concurrent requests see spend in flight); the request goes out (`upstream::send`);
//! the trace is rendered for the candidate that answered and handed to the relay, which
//! returns how the answer ended. Each attempt's outcome is kept for the logging phase.

use super::body::{cost_estimate, Scanned};
use super::filter::Admitted;
use crate::endpoint::{Endpoint, Protocol};
use crate::error::{Error, ErrorKind};
use crate::provider::ClientHeaders;
use crate::relay::keep::{Keep, Turn};
use crate::relay::{self, End, Plan, Relayed};
use crate::route::policy::Decision;
use crate::route::{stats, Model, Provider};
use crate::scan;
use crate::server::conn::{Bufs, Request};
use crate::server::respond;
use crate::server::worker::Worker;
use crate::trace::{Score, TraceForm, TraceInfo};
use crate::translate::{self, Api, Session};
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
    /// The cost estimate charged for the last attempt (USD), corrected to the real cost once
    /// the answer's usage is known.
    pub estimate: f64,
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
    /// A Responses turn whose answer is kept in the conversation store.
    pub keep: Option<&'a Turn<'a>>,
}

/// Tries the candidates in order.
pub async fn run(cx: &Ctx<'_>, client: &mut TcpStream, bufs: &mut Bufs) -> Attempts {
    let Ctx {
        req, a, s, cands, ..
    } = *cx;
    let table = req.table;
    let proj = &table.projects[a.project as usize];
    let form = TraceForm::choose(a.endpoint, proj.trace, trace_opted_out(req));
    let mut at = Attempts {
        failed: SmallVec::new(),
        last: None,
        tried: 0,
        estimate: 0.0,
    };
    for cand in cands.iter() {
        let m = cand.model;
        let model = &table.models[m as usize];
        let provider = table.provider_of(m);
        at.tried += 1;
        let cost = cost_estimate(model, s.feats.input_tokens, s.feats.max_output);
        let started = Instant::now();
        let result = match reach(a.endpoint, provider) {
            Reach::LocalCount => local_count(req, model, provider, started, client, bufs).await,
            reach => {
                let (endpoint, xlate) = match reach {
                    Reach::Translate(api) => (endpoint_of(api), Some(api)),
                    _ => (a.endpoint, None),
                };
                match provider.adapter.path(endpoint) {
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
                            xlate,
                        };
                        one(cx, &at.failed, &ctx, form, started, client, bufs).await
                    }
                }
            }
        };
        match result {
            Err(e) if e.may_fail_over() => at.failed.push((m, e)),
            r => {
                at.estimate = cost;
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
    /// The provider's API when the request is translated into it.
    xlate: Option<Api>,
}

/// How a route reaches a candidate's provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// The provider speaks the route's API: the body goes as is (model spliced).
    Pass,
    /// The request is translated into the provider's API, and the answer back.
    Translate(Api),
    /// `count_tokens` answered by the gateway (the provider has no count endpoint, or no key
    /// for it).
    LocalCount,
}

/// The client's API on a translating route.
fn api_of(endpoint: Endpoint) -> Api {
    match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => Api::Messages,
        Endpoint::Responses => Api::Responses,
        Endpoint::ChatCompletions | Endpoint::Models => Api::Chat,
    }
}

/// The provider endpoint of a translated request.
fn endpoint_of(api: Api) -> Endpoint {
    match api {
        Api::Chat => Endpoint::ChatCompletions,
        Api::Messages => Endpoint::Messages,
        Api::Responses => Endpoint::Responses,
    }
}

/// The translation table: the route's API against what the provider speaks (and, for
/// `/v1/responses`, whether it serves Responses itself).
fn reach(endpoint: Endpoint, p: &Provider) -> Reach {
    let openai = p.speaks(Protocol::OpenAi);
    let anthropic = p.speaks(Protocol::Anthropic);
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Models if openai => Reach::Pass,
        Endpoint::ChatCompletions | Endpoint::Models => Reach::Translate(Api::Messages),
        Endpoint::Messages if anthropic => Reach::Pass,
        Endpoint::Messages => Reach::Translate(Api::Chat),
        Endpoint::Responses if openai && p.responses => Reach::Pass,
        Endpoint::Responses if openai => Reach::Translate(Api::Chat),
        Endpoint::Responses => Reach::Translate(Api::Messages),
        Endpoint::CountTokens if anthropic && p.adapter.path(endpoint).is_some() => {
            if p.key.is_empty() && p.mock.is_none() {
                Reach::LocalCount
            } else {
                Reach::Pass
            }
        }
        Endpoint::CountTokens => Reach::LocalCount,
    }
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
    let mut strip_usage = false;
    let session = match c.xlate {
        None => {
            strip_usage = write_request(req, s, c, &mut out);
            None
        }
        Some(api) => match write_translated(req, a, c, api, s.streaming, &mut out, bufs) {
            Ok(session) => Some(session),
            Err(e) => {
                bufs.scratch = out;
                return Err(e);
            }
        },
    };
    // Charged when sent (a refused translation spends nothing), so that concurrent requests
    // see spend in flight.
    charge(w, req, a, c.model, c.cost);
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
    let dropped: &[&str] = session.as_ref().map_or(&[], |s| &s.dropped[..]);
    if s.streaming && form != TraceForm::Off {
        write_trace(cx, failed, c, form, dropped, &mut out);
    }
    let mut extra = Vec::new();
    if !dropped.is_empty() {
        extra.extend_from_slice(b"x-routerly-dropped: ");
        extra.extend_from_slice(dropped.join(", ").as_bytes());
        extra.extend_from_slice(b"\r\n");
    }
    let plan = Plan {
        provider: c.provider,
        protocol: a.endpoint.protocol(),
        api: api_of(a.endpoint),
        trace_id: &req.trace_id,
        strip_usage,
        trace: &out,
        limits: &req.table.limits,
        started,
        xlate: session.as_ref(),
        extra_headers: &extra,
    };
    let mut keep = cx.keep.map(|t| Keep::new(t, &c.model.id));
    let r = relay::answer(&plan, up, w.stats(), ex, client, bufs, keep.as_mut()).await;
    bufs.scratch = out;
    r
}

/// Corrects the budgets charged [`charge`]'s estimate to the real cost (`delta` = real -
/// estimate, negative when the estimate was high).
pub fn settle(w: &Worker, req: &Request<'_>, project: u16, model: &Model, delta: f64) {
    let now = stats::now_ms();
    if let Some(b) = &model.budget {
        model.stats.adjust_spend(w.index, now, b.window_ms, delta);
    }
    let proj = &req.table.projects[project as usize];
    if let Some(b) = &proj.budget {
        proj.stats.adjust_spend(w.index, now, b.window_ms, delta);
    }
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

/// `count_tokens` answered here, for a model whose provider cannot be asked: an OpenAI-protocol
/// model's count is exact (its BPE encoding over the conversation as chat completions would
/// frame it); an Anthropic model without a key gets the documented estimate. The tokenizer is
/// pure CPU, linear in the body (which `max_body_bytes` bounds); its vocabulary is built on
/// first use, off the worker (`tokens::built`).
async fn local_count(
    req: &Request<'_>,
    model: &Model,
    provider: &Provider,
    started: Instant,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Relayed, Error> {
    let counted = if provider.speaks(Protocol::OpenAi) {
        let enc = crate::tokens::encoding_for(&model.upstream_id);
        crate::tokens::built(enc).await;
        crate::tokens::count_request(req.body, enc, &mut bufs.json)
    } else {
        crate::tokens::built(crate::tokens::Encoding::O200k).await;
        crate::tokens::estimate_anthropic(req.body, &mut bufs.json)
    };
    let tokens = counted.map_err(|why| Error::client(ErrorKind::InvalidRequest, why))?;
    let mut out = std::mem::take(&mut bufs.scratch);
    out.clear();
    out.extend_from_slice(b"{\"input_tokens\":");
    crate::http1::write::push_u64(&mut out, tokens);
    out.push(b'}');
    let idle = req.table.limits.idle_timeout;
    let o = respond::json(idle, client, 200, &req.trace_id, &out, true, bufs).await;
    let bytes = out.len() as u64;
    bufs.scratch = out;
    Ok(Relayed {
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
        gaps: Default::default(),
        finish: None,
    })
}

/// Appends the trace of this attempt in `form`.
fn write_trace(
    cx: &Ctx<'_>,
    failed: &[(u16, Error)],
    c: &Candidate<'_>,
    form: TraceForm,
    dropped: &[&str],
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
        dropped,
    };
    crate::trace::write_trace_sse(out, form, &info);
}

/// Writes the upstream request: head with the provider's headers (never the client's
/// credentials), then the body with the model spliced and, on an OpenAI chat stream, usage
/// asked for (see [`usage_options`]). True when usage was asked for on the client's behalf:
/// the relay then leaves that chunk out.
fn write_request(req: &Request<'_>, s: &Scanned<'_>, c: &Candidate<'_>, out: &mut Vec<u8>) -> bool {
    let client = ClientHeaders {
        anthropic_version: req.header(b"anthropic-version"),
        anthropic_beta: req.header(b"anthropic-beta"),
    };
    let mut opts = SmallVec::<[u8; 96]>::new();
    let ask = asks_usage(s, c) && usage_options(req.body, s, &mut opts);
    let parts = body_parts(req.body, s, c.model, ask.then_some(&opts[..]));
    let len = parts.iter().map(|p| p.len()).sum();
    write_head(c, &client, s.streaming, len, out);
    for p in &parts {
        out.extend_from_slice(p);
    }
    ask
}

/// Whether this attempt relays an OpenAI chat stream: the one answer whose usage comes only
/// when asked for (`stream_options.include_usage`). The gateway asks, so that the ledger,
/// budgets and metrics count real tokens; the relay drops that extra chunk again for a
/// client that did not ask ([`Plan::strip_usage`]).
fn asks_usage(s: &Scanned<'_>, c: &Candidate<'_>) -> bool {
    s.streaming
        && c.xlate.is_none()
        && c.path.ends_with("/chat/completions")
        && c.provider.speaks(Protocol::OpenAi)
}

/// Whether the client itself asked for stream usage.
fn client_asked_usage(body: &[u8], s: &Scanned<'_>) -> bool {
    s.top
        .stream_options
        .and_then(|v| v.bytes(body))
        .and_then(|o| scan::members::get(o, b"include_usage"))
        == Some(&b"true"[..])
}

/// The `stream_options` to send when the client did not ask for usage: its own options with
/// `include_usage` set to true. False when there is nothing to change (the client asked) or
/// its `stream_options` is not an object (the provider will refuse it as sent).
fn usage_options(body: &[u8], s: &Scanned<'_>, out: &mut SmallVec<[u8; 96]>) -> bool {
    if client_asked_usage(body, s) {
        return false;
    }
    out.extend_from_slice(b"{\"include_usage\":true");
    if let Some(v) = s.top.stream_options.and_then(|v| v.bytes(body)) {
        let Some(members) = scan::members::members(v) else {
            return v.trim_ascii() == b"null" && {
                out.push(b'}');
                true
            };
        };
        for m in members {
            let Ok((k, v)) = m else { return false };
            if k != b"include_usage" {
                out.push(b',');
                out.push(b'"');
                out.extend_from_slice(k);
                out.extend_from_slice(b"\":");
                out.extend_from_slice(v);
            }
        }
    }
    out.push(b'}');
    true
}

/// The upstream body as slices of the client's body and the replacements, in order: `model`
/// set to the model's upstream id, `stream_options` to `opts` when given. A member the
/// client did not send goes first, after the opening brace. No copy of the body is made here;
/// the caller knows the length before writing the head.
fn body_parts<'a>(
    body: &'a [u8],
    s: &Scanned<'_>,
    model: &'a Model,
    opts: Option<&'a [u8]>,
) -> SmallVec<[&'a [u8]; 12]> {
    let mut parts = SmallVec::new();
    let brace = memchr::memchr(b'{', body).unwrap_or(0);
    let mut edits: SmallVec<[(usize, usize, &'a [u8]); 2]> = SmallVec::new();
    let mut inserted: SmallVec<[(&'static [u8], &'a [u8]); 2]> = SmallVec::new();
    match s.top.model {
        Some(span) => edits.push((
            span.start as usize,
            span.end as usize,
            &model.upstream_json[..],
        )),
        None => inserted.push((b"\"model\":", &model.upstream_json[..])),
    }
    if let Some(opts) = opts {
        match s.top.stream_options {
            Some(span) => edits.push((span.start as usize, span.end as usize, opts)),
            None => inserted.push((b"\"stream_options\":", opts)),
        }
    }
    edits.sort_unstable_by_key(|e| e.0);
    let mut at = 0;
    if !inserted.is_empty() {
        parts.push(&body[..=brace.min(body.len().saturating_sub(1))]);
        for (i, (key, value)) in inserted.iter().enumerate() {
            if i > 0 {
                parts.push(&b","[..]);
            }
            parts.push(*key);
            parts.push(*value);
        }
        if s.top.key_count > 0 {
            parts.push(&b","[..]);
        }
        at = brace + 1;
    }
    for (start, end, with) in edits {
        let (start, end) = (start.min(body.len()), end.min(body.len()));
        parts.push(&body[at..start]);
        parts.push(with);
        at = end;
    }
    parts.push(&body[at.min(body.len())..]);
    parts
}

/// Writes the upstream request of a translated route: the client's body in the provider's
/// API (`translate::request`), under the provider's head. The client's protocol headers are
/// not the provider's: `anthropic-beta` from a Messages client is dropped (and named).
fn write_translated(
    req: &Request<'_>,
    a: &Admitted,
    c: &Candidate<'_>,
    api: Api,
    streaming: bool,
    out: &mut Vec<u8>,
    bufs: &mut Bufs,
) -> Result<Session, Error> {
    let target = translate::request::Target {
        upstream: api,
        model_json: &c.model.upstream_json,
        client_model: &c.model.id,
        max_output_tokens: c.model.max_output_tokens,
    };
    bufs.xlate.clear();
    let mut session = translate::request::translate(
        req.body,
        api_of(a.endpoint),
        &target,
        &mut bufs.json,
        &mut bufs.xlate,
    )
    .map_err(|r| {
        Error::client(
            ErrorKind::UnsupportedField,
            format!(
                "`{}` cannot be sent to model {} (provider {}): {}",
                r.field, c.model.id, c.provider.id, r.message
            ),
        )
    })?;
    if api == Api::Chat && req.header(b"anthropic-beta").is_some() {
        session.dropped.push("anthropic-beta");
    }
    write_head(
        c,
        &ClientHeaders::default(),
        streaming,
        bufs.xlate.len(),
        out,
    );
    out.extend_from_slice(&bufs.xlate);
    Ok(session)
}

/// The upstream request head: path, host, the provider's auth and protocol headers (never the
/// client's credentials), the configured extra headers, and the body's length.
fn write_head(
    c: &Candidate<'_>,
    client: &ClientHeaders<'_>,
    streaming: bool,
    body_len: usize,
    out: &mut Vec<u8>,
) {
    let p = c.provider;
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(p.prefix.as_bytes());
    out.extend_from_slice(c.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(&p.host_line);
    p.adapter.write_auth(&p.key, out);
    p.adapter
        .write_protocol_headers(&p.anthropic_version, client, out);
    out.extend_from_slice(&p.extra_headers);
    out.extend_from_slice(b"content-type: application/json\r\nuser-agent: switchyard/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(if streaming {
        b"accept: text/event-stream\r\n"
    } else {
        b"accept: application/json\r\n"
    });
    out.extend_from_slice(b"content-length: ");
    crate::http1::write::push_usize(out, body_len);
    out.extend_from_slice(b"\r\n\r\n");
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
