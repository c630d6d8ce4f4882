//! Request filter and auth: the method the endpoint takes, the client's token (by its
//! SHA-256 digest, cached per connection), and the project it acts for.
//!
//! Rules: `Authorization: Bearer` on every route; `x-api-key` too on Anthropic routes and
//! whenever `anthropic-version` is sent (the Anthropic SDK's way). Without a slug the token
//! acts for the first project that lists it; `/projects/{slug}/v1/...` must name one of its
//! projects, and an unknown slug is the same 403 (no project enumeration).

use crate::endpoint::{Endpoint, Protocol};
use crate::error::{Error, ErrorKind};
use crate::http1::{BodyFraming, Method};
use crate::server::conn::{Request, TokenCache};

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

/// Checks method and token and picks the project.
pub fn admit(
    req: &Request<'_>,
    endpoint: Endpoint,
    slug: Option<&[u8]>,
    cache: &mut TokenCache,
) -> Result<Admitted, Error> {
    let want = if endpoint.takes_body() {
        Method::Post
    } else {
        Method::Get
    };
    if req.head.method != want {
        let name = if endpoint.takes_body() { "POST" } else { "GET" };
        return Err(Error::client(
            ErrorKind::MethodNotAllowed,
            format!("this route takes {name}"),
        ));
    }
    let (project, digest) = authorize(req, endpoint.protocol(), slug, cache)?;
    if endpoint.takes_body() && req.head.framing == BodyFraming::None {
        // RFC 9112 §6.3 would read it as an empty body; the API needs one and says so.
        return Err(Error::client(
            ErrorKind::LengthRequired,
            "a POST needs a body framed by Content-Length or chunked transfer coding",
        ));
    }
    Ok(Admitted {
        endpoint,
        project,
        digest,
    })
}

/// The project a request's token acts for (the rules are in the module doc), and the token's
/// digest.
pub(super) fn authorize(
    req: &Request<'_>,
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
