//! Route decision: the rate limits admit the request (`limits`), then the policies order the
//! project's candidates (`route::policy`), or refuse the request with the error its reason
//! calls for. A refusal is logged like any decision.

use super::body::Scanned;
use super::filter::Admitted;
use crate::error::{Error, ErrorKind};
use crate::limits::{self, Refusal};
use crate::route::policy::{self, Decision, Features, NoRoute};
use crate::route::{caps, stats, RouteTable};
use crate::server::conn::Request;
use crate::server::worker::Worker;

/// Admits the request under the project's `limits` and its token's `token_limits`, counting
/// it, or refuses it with 429 and `retry-after`. Shared through Redis when the state backend
/// is: one script call per request (`limits_sync = "exact"`; when Redis does not answer,
/// counted and checked locally: fail open), or local counts that the sync thread trades with
/// Redis (`"batched"`, no round trip here).
pub async fn limits(
    w: &Worker,
    req: &Request<'_>,
    a: &Admitted,
    s: &Scanned<'_>,
) -> Result<(), Error> {
    let p = &req.table.projects[a.project as usize];
    let token = if p.token_limiters.is_empty() {
        None
    } else {
        p.token_limiters.get(&a.digest).map(|l| &**l)
    };
    let ls = [p.limiter.as_deref(), token];
    if ls.iter().all(Option::is_none) {
        return Ok(());
    }
    let tokens = s.feats.input_tokens + s.feats.max_output;
    let now = stats::now_ms();
    // Batched sync: the local counts hold the other gateways' as of the last sync pass.
    let exact = if w.shared.limits_batched {
        None
    } else {
        w.shared.state.as_ref().and_then(|st| st.shared_client())
    };
    let shared = match exact {
        Some(redis) => limits::shared::admit(&redis, &ls, now, tokens).await.ok(),
        None => None,
    };
    let verdict = match shared {
        Some(v) => {
            if v.is_ok() {
                // Kept locally too, so a Redis outage starts from this gateway's recent count.
                ls.iter()
                    .flatten()
                    .for_each(|l| l.add(w.index, now, tokens));
            }
            v
        }
        None => limits::admit_local(&ls, w.index, now, tokens),
    };
    verdict.map_err(|r| refused(p.slug.as_str(), r))
}

fn refused(slug: &str, r: Refusal) -> Error {
    // `which` indexes [project, token] as `limits` passed them.
    let whose = if r.which == 1 {
        "this API key"
    } else {
        "project"
    };
    let msg = if r.never {
        format!(
            "the request's estimated tokens are more than the {} limit of {} ({whose} in {slug}): it can never be admitted",
            r.limit, r.value
        )
    } else {
        format!(
            "rate limit reached: {} {} ({whose} in {slug}); retry after {} s",
            r.limit,
            r.value,
            r.retry_after_s()
        )
    };
    Error::client(ErrorKind::RateLimited, msg).with_retry_after(r.retry_after_s())
}

/// The candidates in try order.
pub fn candidates(req: &Request<'_>, a: &Admitted, s: &Scanned<'_>) -> Result<Decision, Error> {
    let table = req.table;
    match policy::decide(
        table,
        a.project,
        s.model.as_deref(),
        &s.feats,
        stats::now_ms(),
    ) {
        Ok(d) => Ok(d),
        Err(e) => {
            let err = no_route(table, a, &s.feats, e);
            super::log::refusal(req, a.project, &err, e);
            Err(err)
        }
    }
}

/// The error for a request no candidate may serve.
fn no_route(table: &RouteTable, a: &Admitted, feats: &Features, e: NoRoute) -> Error {
    let slug = &table.projects[a.project as usize].slug;
    match e {
        NoRoute::NoModels => Error::client(
            ErrorKind::NoCandidate,
            format!("project {slug} lists no model"),
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
