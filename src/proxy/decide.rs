//! Route decision: the policies order the project's candidates (`route::policy`), or refuse
//! the request with the error its reason calls for. A refusal is logged like any decision.

use super::body::Scanned;
use super::filter::Admitted;
use crate::error::{Error, ErrorKind};
use crate::route::policy::{self, Decision, Features, NoRoute};
use crate::route::{caps, stats, RouteTable};
use crate::server::conn::Request;

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
