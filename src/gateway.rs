//! The proxy API: one request from route to answer.
//!
//! Path: target (`endpoint`) → method → auth and project (`route`) → body scan (`scan`, once,
//! in place) → candidates (`route`) → for each candidate until one answers: build the upstream
//! request (model spliced, provider auth in place of the client's) and send it (`upstream`), or
//! ask the in-process mock → answer: whole JSON, or the trace event then the stream relayed
//! (`relay`). Failover happens only while nothing has reached the client.

use crate::config::ProviderKind;
use crate::conn::{Bufs, Outcome, Request};
use crate::endpoint::{parse_target, Endpoint, Protocol};
use crate::error::Side;
use crate::error::{Error, ErrorKind};
use crate::http1::Method;
use crate::metrics::Counter;
use crate::relay::{self, Relayed};
use crate::respond;
use crate::route::policy::{self, Decision, Features, NoRoute};
use crate::route::{caps, stats, Model, Provider, RouteTable};
use crate::scan::{self, Key, TopLevel};
use crate::trace::{Score, TraceForm, TraceInfo};
use crate::upstream;
use crate::worker::Worker;
use monoio::net::TcpStream;
use smallvec::SmallVec;
use std::cell::Cell;

/// Tokens estimated per byte of request text: ~4 bytes a token for English BPE vocabularies.
/// Used for `costEstimate` and the local `count_tokens` estimate.
pub const BYTES_PER_TOKEN: usize = 4;

/// Serves one proxy API request.
pub async fn handle(
    w: &Worker,
    req: &Request<'_>,
    stream: &mut TcpStream,
    bufs: &mut Bufs,
) -> Outcome {
    let target = parse_target(req.path());
    let anthropic_hdr =
        req.header(b"x-api-key").is_some() || req.header(b"anthropic-version").is_some();
    let Some(endpoint) = target.endpoint else {
        let protocol = crate::endpoint::guess_protocol(req.path(), anthropic_hdr);
        let err = Error::client(
            ErrorKind::NotFound,
            "no such route; see /v1/chat/completions, /v1/messages, /v1/responses",
        );
        return respond::error(w, stream, protocol, &req.trace_id, &err, bufs).await;
    };
    let protocol = endpoint.protocol();
    match run(w, req, endpoint, target.slug, anthropic_hdr, stream, bufs).await {
        Ok(o) => o,
        Err(err) if err.kind == ErrorKind::ClientClosed => Outcome {
            status: err.status(),
            keep_alive: false,
        },
        Err(err) => {
            // /v1/models answers in the client's dialect; everything else in the route's.
            let protocol = if endpoint == Endpoint::Models && anthropic_hdr {
                Protocol::Anthropic
            } else {
                protocol
            };
            if err.side == crate::error::Side::Upstream {
                crate::warn!(
                    "trace_id={} upstream error: {}",
                    req.trace_id.as_str(),
                    err.message
                );
            }
            respond::error(w, stream, protocol, &req.trace_id, &err, bufs).await
        }
    }
}

async fn run(
    w: &Worker,
    req: &Request<'_>,
    endpoint: Endpoint,
    slug: Option<&[u8]>,
    anthropic_hdr: bool,
    stream: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Outcome, Error> {
    let method = req.head.method;
    let method_ok = if endpoint.takes_body() {
        method == Method::Post
    } else {
        method == Method::Get
    };
    if !method_ok {
        let want = if endpoint.takes_body() { "POST" } else { "GET" };
        return Err(Error::client(
            ErrorKind::MethodNotAllowed,
            format!("this route takes {want}"),
        ));
    }
    let table = w.routes();
    let project = authorize(&table, req, endpoint.protocol(), slug, &mut bufs.auth)?;

    if endpoint == Endpoint::Models {
        let mut body = std::mem::take(&mut bufs.scratch);
        body.clear();
        models_list(&table, project, anthropic_hdr, &mut body);
        let out = respond::json(w, stream, 200, &req.trace_id, &body, true, bufs).await;
        bufs.scratch = body;
        return Ok(out);
    }

    let body = req.body;
    let top = scan::scan_top_level(body)
        .map_err(|e| Error::client(ErrorKind::InvalidRequest, e.message()))?;
    require_fields(endpoint, &top)?;
    let model_name = top
        .model_str(body)
        .map_err(|_| Error::client(ErrorKind::InvalidRequest, "`model` must be a string"))?;
    let streaming = top
        .stream_flag(body)
        .map_err(|_| Error::client(ErrorKind::InvalidRequest, "`stream` must be a boolean"))?;

    let protocol = endpoint.protocol();
    let est_input = estimate_input_tokens(&top);
    let max_out = [
        Key::MaxTokens,
        Key::MaxCompletionTokens,
        Key::MaxOutputTokens,
    ]
    .iter()
    .find_map(|k| top.uint(body, *k))
    .unwrap_or(0);
    let feats = Features {
        caps: policy::request_caps(body, &top),
        input_tokens: est_input,
        max_output: max_out,
    };
    let now = stats::now_ms();
    let cands = match policy::decide(
        &table,
        project,
        model_name.as_deref(),
        protocol,
        &feats,
        now,
    ) {
        Ok(d) => d,
        Err(e) => {
            // A refusal is a decision too: logged like the others, with no candidate chosen.
            let err = no_route(&table, project, protocol, &feats, e);
            let excluded: Decision = table.projects[project as usize]
                .models
                .iter()
                .map(|&model| policy::Ranked {
                    model,
                    score: 0.0,
                    probe: false,
                })
                .collect();
            let refused = Some(Err(err.clone()));
            log_decision(&table, req, project, &excluded, &[], 0, &refused, Some(e));
            return Err(err);
        }
    };

    let opted_out = matches!(req.header(b"x-routerly-trace"), Some(v) if v.eq_ignore_ascii_case(b"off"))
        || matches!(req.header(b"x-routerly-no-trace"), Some(v) if v == b"1" || v.eq_ignore_ascii_case(b"true"));
    let proj = &table.projects[project as usize];
    let form = TraceForm::choose(endpoint, proj.trace, opted_out);

    let mut attempts: SmallVec<[(u16, Error); 4]> = SmallVec::new();
    let mut tried = 0;
    let mut result_out = None;
    for (i, cand) in cands.iter().enumerate() {
        let m = cand.model;
        let model = &table.models[m as usize];
        let provider = table.provider_of(m);
        tried = i + 1;
        let ctx = Attempt {
            table: &table,
            project,
            endpoint,
            model,
            provider,
            cands: &cands,
            attempts: &attempts,
            top: &top,
            streaming,
            form,
            cost: cost_estimate(model, est_input, max_out),
            started: std::time::Instant::now(),
            first_byte_us: Cell::new(None),
            cut: Cell::new(false),
        };
        let now = stats::now_ms();
        if let Some(b) = &model.budget {
            model
                .stats
                .record_usage(w.index, now, b.window_ms, ctx.cost);
        }
        if let Some(b) = &proj.budget {
            proj.stats.record_usage(w.index, now, b.window_ms, ctx.cost);
        }
        let result = if endpoint == Endpoint::CountTokens && provider.kind == ProviderKind::Openai {
            // No count endpoint on OpenAI-protocol providers: a local estimate (documented).
            let mut out = std::mem::take(&mut bufs.scratch);
            out.clear();
            out.extend_from_slice(b"{\"input_tokens\":");
            crate::http1::write::push_u64(&mut out, est_input);
            out.push(b'}');
            let o = respond::json(w, stream, 200, &req.trace_id, &out, true, bufs).await;
            bufs.scratch = out;
            Ok(o)
        } else if provider.kind == ProviderKind::Mock {
            relay::mock(w, req, &ctx, stream, bufs).await
        } else {
            proxy(w, req, &ctx, stream, bufs).await
        };
        let now = stats::now_ms();
        let ok = |ctx: &Attempt<'_>| {
            let ttfb = ctx
                .first_byte_us
                .get()
                .unwrap_or_else(|| ctx.started.elapsed().as_micros() as u64);
            model.stats.record_ok(w.index, now, ttfb, &table.routing);
        };
        match result {
            Ok(o) => {
                ok(&ctx);
                result_out = Some(Ok(o));
                break;
            }
            Err(Relayed::Before(e)) if e.may_fail_over() => {
                model.stats.record_err(w.index, now, &table.routing);
                w.stats().inc(Counter::UpstreamErrors);
                w.stats().inc(Counter::Failovers);
                crate::warn!(
                    "trace_id={} model={} provider={} failed before the first byte: {}",
                    req.trace_id.as_str(),
                    model.id,
                    provider.id,
                    e.message
                );
                attempts.push((m, e));
            }
            Err(Relayed::Before(e)) => {
                if e.side == Side::Upstream {
                    model.stats.record_err(w.index, now, &table.routing);
                }
                result_out = Some(Err(e));
                break;
            }
            Err(Relayed::After(o)) => {
                if ctx.cut.get() {
                    model.stats.record_err(w.index, now, &table.routing);
                } else {
                    ok(&ctx);
                }
                result_out = Some(Ok(o));
                break;
            }
        }
    }
    // Probe slots taken for candidates never tried go back.
    for c in cands.iter().skip(tried).filter(|c| c.probe) {
        table.models[c.model as usize].stats.release_probe();
    }
    log_decision(
        &table,
        req,
        project,
        &cands,
        &attempts,
        tried,
        &result_out,
        None,
    );
    if let Some(r) = result_out {
        return r;
    }
    // Every candidate failed: 504 when the last failure was a timeout, else 502.
    let (last_model, last) = attempts
        .pop()
        .expect("the loop ran at least once and only falls through on failures");
    let kind = if last.kind == ErrorKind::UpstreamTimeout {
        ErrorKind::UpstreamTimeout
    } else {
        ErrorKind::UpstreamFailed
    };
    Err(Error::upstream(
        kind,
        format!(
            "every candidate model failed ({tried} tried); last: {} ({})",
            table.models[last_model as usize].id, last.message
        ),
    ))
}

/// The error for a request no candidate may serve.
fn no_route(
    table: &RouteTable,
    project: u16,
    protocol: Protocol,
    feats: &Features,
    e: NoRoute,
) -> Error {
    let slug = &table.projects[project as usize].slug;
    match e {
        NoRoute::Protocol => Error::client(
            ErrorKind::NoCandidate,
            format!(
                "project {slug} has no model speaking the {} protocol",
                if protocol == Protocol::OpenAi { "OpenAI" } else { "Anthropic" }
            ),
        ),
        NoRoute::ProjectBudget => Error::client(
            ErrorKind::RateLimited,
            format!("project {slug} has spent its budget for the current window"),
        ),
        NoRoute::ModelBudget => Error::client(
            ErrorKind::RateLimited,
            format!("every model of project {slug} has spent its budget for the current window"),
        ),
        NoRoute::Capability => Error::client(
            ErrorKind::NoCandidate,
            format!(
                "no model of project {slug} supports what the request uses ({})",
                caps_names(feats.caps)
            ),
        ),
        NoRoute::Context => Error::client(
            ErrorKind::NoCandidate,
            format!(
                "the request (~{} input + {} output tokens) fits no model's context window in project {slug}",
                feats.input_tokens, feats.max_output
            ),
        ),
    }
}

fn caps_names(bits: u8) -> String {
    let mut v = Vec::new();
    for (b, n) in [
        (caps::TOOLS, "tools"),
        (caps::VISION, "images"),
        (caps::JSON, "JSON mode"),
    ] {
        if bits & b != 0 {
            v.push(n);
        }
    }
    v.join(", ")
}

/// The routing decision, logged once per request: candidates with scores, failed attempts,
/// the outcome, and for a refusal its reason (every candidate then shows score 0). No keys,
/// no tokens, no bodies.
#[allow(clippy::too_many_arguments)]
fn log_decision(
    table: &RouteTable,
    req: &Request<'_>,
    project: u16,
    cands: &Decision,
    attempts: &[(u16, Error)],
    tried: usize,
    result: &Option<Result<Outcome, Error>>,
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
    let chosen = if result.as_ref().is_some_and(|r| r.is_ok()) && tried > 0 {
        table.models[cands[tried - 1].model as usize].id.as_str()
    } else {
        "-"
    };
    let status = match result {
        Some(Ok(o)) => o.status,
        Some(Err(e)) => e.status(),
        None => 502,
    };
    let refused = match refused {
        None => "",
        Some(NoRoute::Protocol) => " refused=protocol",
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
        Tries(table, attempts)
    );
}

/// What one attempt at one candidate needs to know.
pub struct Attempt<'a> {
    /// The snapshot.
    pub table: &'a RouteTable,
    /// Project index.
    pub project: u16,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The candidate.
    pub model: &'a Model,
    /// Its provider.
    pub provider: &'a Provider,
    /// All candidates in try order, with their scores.
    pub cands: &'a Decision,
    /// Failed attempts so far.
    pub attempts: &'a [(u16, Error)],
    /// The scanned body.
    pub top: &'a TopLevel,
    /// The client asked for a stream.
    pub streaming: bool,
    /// How the trace goes out.
    pub form: TraceForm,
    /// USD estimate for this candidate.
    pub cost: f64,
    /// When the attempt started.
    pub started: std::time::Instant,
    /// Set by the relay when the upstream's first byte arrived (µs after `started`).
    pub first_byte_us: Cell<Option<u64>>,
    /// Set by the relay when the upstream failed after the first byte.
    pub cut: Cell<bool>,
}

impl Attempt<'_> {
    /// Appends the trace (as the SSE form chosen) for this attempt.
    pub fn write_trace(&self, trace_id: &crate::trace::TraceId, out: &mut Vec<u8>) {
        if self.form == TraceForm::Off {
            return;
        }
        let scores: SmallVec<[Score<'_>; 8]> = self
            .cands
            .iter()
            .map(|c| Score {
                model: &self.table.models[c.model as usize].id,
                score: c.score,
            })
            .collect();
        let attempts: SmallVec<[(&str, &str); 4]> = self
            .attempts
            .iter()
            .map(|(m, e)| (self.table.models[*m as usize].id.as_str(), e.code()))
            .collect();
        let info = TraceInfo {
            id: trace_id,
            model: &self.model.id,
            provider: &self.provider.id,
            policies_json: &self.table.projects[self.project as usize].policies_json,
            scores: &scores,
            attempts: &attempts,
            cost_estimate: self.cost,
        };
        crate::trace::write_trace_sse(out, self.form, &info);
    }

    /// The length [`Attempt::splice_body`] will write, known before writing it so the
    /// upstream head and body go into one buffer without a second copy.
    pub fn spliced_len(&self, body: &[u8]) -> usize {
        let id = self.model.upstream_json.len();
        match self.top.model {
            Some(span) => body.len() - (span.end - span.start) as usize + id,
            None => body.len() + b"\"model\":".len() + id + usize::from(self.top.key_count > 0),
        }
    }

    /// The body with this candidate's `upstream_id` in place of the client's `model` (added
    /// when the client sent none), written into `out`.
    pub fn splice_body(&self, body: &[u8], out: &mut Vec<u8>) {
        match self.top.model {
            Some(span) => scan::splice(body, span, &self.model.upstream_json, out),
            None => {
                // Insert `"model":"<id>",` right after the opening brace.
                let brace = memchr::memchr(b'{', body).unwrap_or(0);
                out.extend_from_slice(&body[..=brace]);
                out.extend_from_slice(b"\"model\":");
                out.extend_from_slice(&self.model.upstream_json);
                if self.top.key_count > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&body[brace + 1..]);
            }
        }
    }
}

/// One attempt against a real provider.
async fn proxy(
    w: &Worker,
    req: &Request<'_>,
    a: &Attempt<'_>,
    stream: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Outcome, Relayed> {
    let p = a.provider;
    let mut out = std::mem::take(&mut bufs.scratch);
    out.clear();
    build_request(req, a, &mut out);
    let ubuf = std::mem::take(&mut bufs.ubuf);
    let sent = upstream::send(w, p, &mut out, ubuf, stream).await;
    bufs.scratch = out;
    let ex = match sent {
        Ok(ex) => ex,
        Err((e, b)) => {
            bufs.ubuf = b;
            return Err(Relayed::Before(e));
        }
    };
    relay::upstream(w, req, a, ex, stream, bufs).await
}

/// Writes the upstream request: head with the provider's auth (never the client's), then the
/// body with the model spliced.
fn build_request(req: &Request<'_>, a: &Attempt<'_>, out: &mut Vec<u8>) {
    let p = a.provider;
    let path: &str = match (p.kind, a.endpoint) {
        (ProviderKind::Anthropic, e) => match e {
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            _ => "/v1/messages",
        },
        (_, e) => e.suffix(),
    };
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(p.prefix.as_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(&p.host_line);
    out.extend_from_slice(&p.auth_lines);
    out.extend_from_slice(b"content-type: application/json\r\nuser-agent: switchyard/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(if a.streaming {
        b"accept: text/event-stream\r\n"
    } else {
        b"accept: application/json\r\n"
    });
    if p.kind == ProviderKind::Anthropic {
        out.extend_from_slice(b"anthropic-version: ");
        match req
            .header(b"anthropic-version")
            .filter(|v| is_token_value(v))
        {
            Some(v) => out.extend_from_slice(v),
            None => out.extend_from_slice(p.anthropic_version.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        if let Some(v) = req.header(b"anthropic-beta").filter(|v| is_token_value(v)) {
            out.extend_from_slice(b"anthropic-beta: ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"content-length: ");
    crate::http1::write::push_usize(out, a.spliced_len(req.body));
    out.extend_from_slice(b"\r\n\r\n");
    let at = out.len();
    a.splice_body(req.body, out);
    debug_assert_eq!(out.len() - at, a.spliced_len(req.body));
}

/// Header values forwarded verbatim must be plain visible ASCII (no CR/LF smuggling).
fn is_token_value(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 256 && v.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// The last token a connection presented and its digest.
pub type AuthCache = Option<(Vec<u8>, [u8; 32])>;

/// Checks the token and picks the project: the slug's when given (and the token may use it),
/// else the first project that lists the token.
fn authorize(
    table: &RouteTable,
    req: &Request<'_>,
    protocol: Protocol,
    slug: Option<&[u8]>,
    cache: &mut AuthCache,
) -> Result<u16, Error> {
    let bearer = req.header(b"authorization").and_then(|v| {
        let v = trim(v);
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            Some(trim(&v[7..]))
        } else {
            None
        }
    });
    // x-api-key is how the Anthropic SDK sends its key; accept it on Anthropic routes (and on
    // /v1/models, which both SDKs call).
    let token = bearer.or_else(|| {
        if protocol == Protocol::Anthropic || req.header(b"anthropic-version").is_some() {
            req.header(b"x-api-key").map(trim)
        } else {
            None
        }
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Error::client(
            ErrorKind::Unauthorized,
            "missing API key: send Authorization: Bearer sk-lr-...",
        ));
    };
    // Keep-alive clients send the same token on every request: hash it once per connection.
    let digest = match cache {
        Some((t, d)) if t.as_slice() == token => *d,
        _ => {
            let d = crate::route::token_digest(token);
            let mut t = cache.take().map(|(t, _)| t).unwrap_or_default();
            t.clear();
            t.extend_from_slice(token);
            *cache = Some((t, d));
            d
        }
    };
    let projects = table.projects_for_digest(&digest);
    if projects.is_empty() {
        return Err(Error::client(ErrorKind::Unauthorized, "invalid API key"));
    }
    match slug {
        None => Ok(projects[0]),
        Some(s) => match table.project_by_slug(s) {
            Some(p) if projects.contains(&p) => Ok(p),
            _ => Err(Error::client(
                ErrorKind::Forbidden,
                "this API key may not use that project",
            )),
        },
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn require_fields(endpoint: Endpoint, top: &TopLevel) -> Result<(), Error> {
    let missing = match endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens => {
            top.get(Key::Messages).is_none().then_some("messages")
        }
        Endpoint::Responses => (top.get(Key::Input).is_none()
            && top.get(Key::PreviousResponseId).is_none())
        .then_some("input"),
        Endpoint::Models => None,
    };
    match missing {
        Some(f) => Err(Error::client(
            ErrorKind::InvalidRequest,
            format!("missing required field `{f}`"),
        )),
        None => Ok(()),
    }
}

/// Input tokens estimated from the bytes of the prompt-bearing fields (`messages`, `input`,
/// `system`, `instructions`, `tools`) at [`BYTES_PER_TOKEN`]; documented in the README.
pub fn estimate_input_tokens(top: &TopLevel) -> u64 {
    let bytes: usize = [
        Key::Messages,
        Key::Input,
        Key::System,
        Key::Instructions,
        Key::Tools,
    ]
    .iter()
    .filter_map(|k| top.get(*k))
    .map(|s| (s.end - s.start) as usize)
    .sum();
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// `costEstimate` in USD: estimated input tokens at the input price plus the requested
/// `max_tokens` (or `max_completion_tokens` / `max_output_tokens`, 0 if absent) at the
/// output price.
pub fn cost_estimate(model: &Model, input_tokens: u64, max_output: u64) -> f64 {
    (input_tokens as f64 * model.input_per_million + max_output as f64 * model.output_per_million)
        / 1e6
}

fn models_list(table: &RouteTable, project: u16, anthropic: bool, out: &mut Vec<u8>) {
    let p = &table.projects[project as usize];
    if anthropic {
        out.extend_from_slice(b"{\"data\":[");
        for (i, &m) in p.models.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let id = &table.models[m as usize].id;
            out.extend_from_slice(b"{\"type\":\"model\",\"id\":");
            scan::push_json_string(out, id);
            out.extend_from_slice(b",\"display_name\":");
            scan::push_json_string(out, id);
            out.extend_from_slice(b",\"created_at\":\"1970-01-01T00:00:00Z\"}");
        }
        let first = p
            .models
            .first()
            .map(|&m| table.models[m as usize].id.as_str());
        let last = p
            .models
            .last()
            .map(|&m| table.models[m as usize].id.as_str());
        out.extend_from_slice(b"],\"has_more\":false,\"first_id\":");
        push_opt(out, first);
        out.extend_from_slice(b",\"last_id\":");
        push_opt(out, last);
        out.push(b'}');
    } else {
        out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
        for (i, &m) in p.models.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let model = &table.models[m as usize];
            out.extend_from_slice(b"{\"id\":");
            scan::push_json_string(out, &model.id);
            out.extend_from_slice(b",\"object\":\"model\",\"created\":0,\"owned_by\":");
            scan::push_json_string(out, &table.providers[model.provider as usize].id);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
}

fn push_opt(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => scan::push_json_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}
