//! The gateway: the proxy API as a [`Service`], one request through its phases in order.
//!
//! | phase | module | hands the next one |
//! |---|---|---|
//! | request filter and auth (on the head, before the body is read) | `filter` | [`filter::Admission`]: route, project |
//! | body scan | `body` | [`body::Scanned`]: located keys, model, stream flag, features |
//! | rate limits, route decision | `decide` | the candidates in try order, or a refusal |
//! | upstream request, send, relay | `attempt` | [`attempt::Attempts`]: each attempt's outcome |
//! | logging | `log` | stats, the decision line; the final status |
//!
//! Each phase takes what the previous one returned, by value or shared reference, and the
//! request (whose route snapshot was loaded once, by the connection). Nothing below calls back
//! up. Errors are [`Error`]s answered in the route's protocol shape.

mod attempt;
mod body;
pub mod conversation;
mod decide;
mod filter;
mod log;
mod models;
mod stored;

use crate::endpoint::{parse_target, Endpoint, Protocol};
use crate::error::{Error, ErrorKind, Side};
use crate::server::conn::{Bufs, Incoming, Outcome, Request};
use crate::server::respond;
use crate::server::worker::Worker;
use crate::server::{Refusal, Service};
use crate::upstream::Upstream;
use monoio::net::TcpStream;

pub use body::{cost_estimate, estimate_input_tokens, BYTES_PER_TOKEN};

/// The gateway service of one worker: its upstream client (pool, TLS configs) is the
/// worker's own.
#[derive(Default)]
pub struct Gateway {
    upstream: Upstream,
}

impl Gateway {
    /// A gateway with an empty upstream pool.
    pub fn new() -> Gateway {
        Gateway::default()
    }
}

impl Service for Gateway {
    const NAME: &'static str = "gateway";

    type Admitted = filter::Admission;

    fn tick(&self) {
        self.upstream.pool.evict_idle();
    }

    fn wants_tick(&self) -> bool {
        self.upstream.pool.wants_sweep()
    }

    fn admit(
        &self,
        _w: &Worker,
        req: &Incoming<'_>,
        bufs: &mut Bufs,
    ) -> Result<filter::Admission, Refusal> {
        filter::admit(req, &mut bufs.auth)
    }

    /// Refusals on the head are answered requests too: counted and in the ledger, as those
    /// that reach the phases (with no project: none was let in).
    fn refused(
        &self,
        w: &Worker,
        inc: &Incoming<'_>,
        admitted: Option<&filter::Admission>,
        status: u16,
        started: std::time::Instant,
    ) {
        let req = Request {
            head: inc.head,
            raw: inc.raw,
            body: &[],
            trace_id: inc.trace_id,
            table: inc.table,
        };
        let mut served = log::Served::default();
        match admitted {
            Some(filter::Admission::Api(a)) => {
                served.project = Some(a.project);
                served.token = Some(a.digest);
            }
            Some(filter::Admission::Stored { project }) => served.project = Some(*project),
            None => {}
        }
        log::record(w, &req, &served, status, started);
    }

    async fn handle(
        &self,
        w: &Worker,
        req: &Request<'_>,
        admission: filter::Admission,
        stream: &mut TcpStream,
        bufs: &mut Bufs,
    ) -> Outcome {
        let started = std::time::Instant::now();
        let mut served = log::Served::default();
        let o = self
            .answer(w, req, admission, stream, bufs, &mut served)
            .await;
        log::record(w, req, &served, o.status, started);
        o
    }
}

impl Gateway {
    /// Answers one request; what the ledger line needs beyond the status goes in `served`.
    async fn answer(
        &self,
        w: &Worker,
        req: &Request<'_>,
        admission: filter::Admission,
        stream: &mut TcpStream,
        bufs: &mut Bufs,
        served: &mut log::Served,
    ) -> Outcome {
        let idle = req.table.limits.idle_timeout;
        let anthropic_hdr =
            req.header(b"x-api-key").is_some() || req.header(b"anthropic-version").is_some();
        let admitted = match (admission, parse_target(req.path()).stored) {
            (filter::Admission::Api(a), _) => a,
            (filter::Admission::Stored { project }, Some(route)) => {
                return match stored::answer(w, req, route, project, stream, bufs).await {
                    Ok(o) => o,
                    Err(err) => {
                        let p = Protocol::OpenAi;
                        respond::error(idle, stream, p, &req.trace_id, &err, bufs).await
                    }
                };
            }
            (filter::Admission::Stored { .. }, None) => {
                let err = Error::internal("a stored-response admission for another route");
                return respond::error(idle, stream, Protocol::OpenAi, &req.trace_id, &err, bufs)
                    .await;
            }
        };
        let endpoint = admitted.endpoint;
        match self
            .phases(w, req, admitted, anthropic_hdr, stream, bufs, served)
            .await
        {
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
                    endpoint.protocol()
                };
                if err.side == Side::Upstream {
                    crate::warn!(
                        "trace_id={} upstream error: {}",
                        req.trace_id.as_str(),
                        err.message
                    );
                }
                respond::error(idle, stream, protocol, &req.trace_id, &err, bufs).await
            }
        }
    }
}

impl Gateway {
    /// The phases, in order.
    #[allow(clippy::too_many_arguments)]
    async fn phases(
        &self,
        w: &Worker,
        req: &Request<'_>,
        admitted: filter::Admitted,
        anthropic_hdr: bool,
        stream: &mut TcpStream,
        bufs: &mut Bufs,
        served: &mut log::Served,
    ) -> Result<Outcome, Error> {
        let endpoint = admitted.endpoint;
        served.project = Some(admitted.project);
        served.token = Some(admitted.digest);
        if endpoint == Endpoint::Models {
            return Ok(models::answer(req, admitted.project, anthropic_hdr, stream, bufs).await);
        }
        let scanned = body::scan(req, endpoint)?;
        served.requested_model = scanned.top.model;
        if endpoint == Endpoint::Responses {
            return self
                .responses(w, req, &admitted, scanned, stream, bufs, served)
                .await;
        }
        self.attempts(w, req, &admitted, &scanned, None, stream, bufs, served)
            .await
    }

    /// A `/v1/responses` turn: the stored conversation it continues put in front of its input,
    /// and the answer kept unless `store: false` (see `conversation`).
    #[allow(clippy::too_many_arguments)]
    async fn responses(
        &self,
        w: &Worker,
        req: &Request<'_>,
        admitted: &filter::Admitted,
        scanned: body::Scanned<'_>,
        stream: &mut TcpStream,
        bufs: &mut Bufs,
        served: &mut log::Served,
    ) -> Result<Outcome, Error> {
        let body = req.body;
        let top = &scanned.top;
        let store = top.store.and_then(|v| v.bytes(body)) != Some(&b"false"[..]);
        let previous = match top.previous_response_id.and_then(|v| v.bytes(body)) {
            None | Some(b"null") => None,
            Some(v) => Some(
                crate::scan::members::str_content(v)
                    .filter(|id| conversation::valid_id(id))
                    .and_then(|id| std::str::from_utf8(id).ok())
                    .ok_or_else(|| {
                        Error::client(
                            ErrorKind::NoSuchResponse,
                            "`previous_response_id` names no response of this project",
                        )
                    })?,
            ),
        };
        if !store && previous.is_none() {
            return self
                .attempts(w, req, admitted, &scanned, None, stream, bufs, served)
                .await;
        }
        let mut turn = Vec::new();
        let input = top.input.and_then(|v| v.bytes(body)).unwrap_or(b"[]");
        conversation::turn_items(input, &mut turn)?;
        let state = w.shared.state.as_ref().ok_or_else(stored::no_state)?;
        let project = req.table.projects[admitted.project as usize].slug.as_str();
        let keep = crate::relay::keep::Turn {
            state,
            project,
            previous,
            input: &turn,
        };
        let keep = store.then_some(&keep);
        let Some(prev) = previous else {
            return self
                .attempts(w, req, admitted, &scanned, keep, stream, bufs, served)
                .await;
        };
        let history = state
            .conversation(project, prev)
            .await
            .map_err(stored::unavailable)?
            .ok_or_else(|| stored::not_found(prev.as_bytes()))?;
        let mut expanded = Vec::with_capacity(body.len() + history.len() + 16);
        conversation::expand(body, &history, &turn, &mut expanded)?;
        let req = Request {
            body: &expanded,
            ..*req
        };
        let scanned = body::scan(&req, Endpoint::Responses)?;
        self.attempts(w, &req, admitted, &scanned, keep, stream, bufs, served)
            .await
    }

    /// Route decision, attempts, and the log line.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        w: &Worker,
        req: &Request<'_>,
        admitted: &filter::Admitted,
        scanned: &body::Scanned<'_>,
        keep: Option<&crate::relay::keep::Turn<'_>>,
        stream: &mut TcpStream,
        bufs: &mut Bufs,
        served: &mut log::Served,
    ) -> Result<Outcome, Error> {
        decide::limits(w, req, admitted, scanned).await?;
        let cands = decide::candidates(req, admitted, scanned)?;
        let cx = attempt::Ctx {
            up: &self.upstream,
            w,
            req,
            a: admitted,
            s: scanned,
            cands: &cands,
            keep,
        };
        let mut attempts = attempt::run(&cx, stream, bufs).await;
        log::finish(w, req, admitted, &cands, &mut attempts, served)
    }
}
