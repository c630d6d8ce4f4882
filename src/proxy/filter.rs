//! Request filter and auth: the route, the method it takes, the client's token (by its
//! SHA-256 digest, cached per connection), and the project it acts for. All of it is decided
//! on the head alone ([`admit`] is the gateway's `Service::admit`), before a byte of the body
//! is read: a request refused here costs its head, never its body's memory.
//!
//! Rules: `Authorization: Bearer` on every route; `x-api-key` too on Anthropic routes and
//! whenever `anthropic-version` is sent (the Anthropic SDK's way). Without a slug the token
//! acts for the first project that lists it; `/projects/{slug}/v1/...` must name one of its
//! projects, and an unknown slug is the same 403 (no project enumeration).

use crate::endpoint::{guess_protocol, parse_target, Endpoint, Protocol};
use crate::error::{Error, ErrorKind};
use crate::http1::Method;
use crate::server::conn::{Incoming, TokenCache};
use crate::server::Refusal;

/// What the head check let in, handed to the phases.
#[derive(Clone, Copy, Debug)]
pub enum Admission {
    /// A stored-response route (`/v1/responses/{id}...`), for this project (index in the
    /// request's snapshot).
    Stored {
        /// Project index.
        project: u16,
    },
    /// An API endpoint.
    Api(Admitted),
}

/// A request let in: its endpoint and project.
#[derive(Clone, Copy, Debug)]
pub struct Admitted {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Project index in the request's snapshot.
    pub project: u16,
    /// SHA-256 of the client's token (per-token limits are keyed by it).
    pub digest: [u8; 32],
}

/// Whether a request carries the Anthropic SDK's headers (`x-api-key`, `anthropic-version`).
pub fn anthropic_headers(req: &Incoming<'_>) -> bool {
    req.header(b"x-api-key").is_some() || req.header(b"anthropic-version").is_some()
}

/// Checks route, method and token on the head, and picks the project. Refusals are in the
/// shape the route's clients read: OpenAI on the stored-response routes, the route's
/// protocol on an endpoint (the client's dialect on `/v1/models`), a guess on an unknown one.
pub fn admit(req: &Incoming<'_>, cache: &mut TokenCache) -> Result<Admission, Refusal> {
    let anthropic_hdr = anthropic_headers(req);
    let target = parse_target(req.path());
    if let Some(route) = target.stored {
        let refuse = |err| Refusal {
            err,
            protocol: Protocol::OpenAi,
        };
        let method = req.head.method;
        let allowed = method == Method::Get || (method == Method::Delete && !route.input_items);
        if !allowed {
            let takes = if route.input_items {
                "GET"
            } else {
                "GET or DELETE"
            };
            return Err(refuse(Error::client(
                ErrorKind::MethodNotAllowed,
                format!("this route takes {takes}"),
            )));
        }
        let (project, _) = authorize(req, Protocol::OpenAi, target.slug, cache).map_err(refuse)?;
        return Ok(Admission::Stored { project });
    }
    let Some(endpoint) = target.endpoint else {
        return Err(Refusal {
            protocol: guess_protocol(req.path(), anthropic_hdr),
            err: Error::client(
                ErrorKind::NotFound,
                "no such route; see /v1/chat/completions, /v1/messages, /v1/responses",
            ),
        });
    };
    let protocol = if endpoint == Endpoint::Models && anthropic_hdr {
        Protocol::Anthropic
    } else {
        endpoint.protocol()
    };
    let refuse = |err| Refusal { err, protocol };
    let want = if endpoint.takes_body() {
        Method::Post
    } else {
        Method::Get
    };
    if req.head.method != want {
        let name = if endpoint.takes_body() { "POST" } else { "GET" };
        return Err(refuse(Error::client(
            ErrorKind::MethodNotAllowed,
            format!("this route takes {name}"),
        )));
    }
    let (project, digest) =
        authorize(req, endpoint.protocol(), target.slug, cache).map_err(refuse)?;
    Ok(Admission::Api(Admitted {
        endpoint,
        project,
        digest,
    }))
}

/// The project a request's token acts for (the rules are in the module doc), and the token's
/// digest.
pub(super) fn authorize(
    req: &Incoming<'_>,
    protocol: Protocol,
    slug: Option<&[u8]>,
    cache: &mut TokenCache,
) -> Result<(u16, [u8; 32]), Error> {
    let table = req.table;
    let bearer = req.header(b"authorization").and_then(|v| {
        let v = trim(v);
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            Some(trim(&v[7..]))
        } else {
            None
        }
    });
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
        None => Ok((projects[0], digest)),
        Some(s) => match table.project_by_slug(s) {
            Some(p) if projects.contains(&p) => Ok((p, digest)),
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
