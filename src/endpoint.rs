//! The routes we serve and the protocol each speaks.
//!
//! Paths (documented in `docs/api.md`): `/v1/<endpoint>` and `/projects/{slug}/v1/<endpoint>`.
//! A query string is ignored. Matching is exact (no trailing-slash or case folding) because the
//! official SDKs send exactly these paths.

/// The wire protocol of a route, which decides the shape of its errors and stream events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI: `{"error":{...}}`, `data: {"error":...}` mid-stream.
    OpenAi,
    /// Anthropic: `{"type":"error","error":{...}}`, `event: error` mid-stream.
    Anthropic,
}

/// An endpoint of the proxy API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
    /// `GET /v1/models`
    Models,
}

impl Endpoint {
    /// The protocol clients of this endpoint speak.
    pub fn protocol(self) -> Protocol {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Protocol::Anthropic,
            _ => Protocol::OpenAi,
        }
    }

    /// Whether the endpoint takes a JSON body (POST) rather than none (GET).
    pub fn takes_body(self) -> bool {
        !matches!(self, Endpoint::Models)
    }
}

/// A parsed request target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The endpoint, or `None` for an unknown route (404).
    pub endpoint: Option<Endpoint>,
    /// The `{slug}` of `/projects/{slug}/v1/...`.
    pub slug: Option<&'a [u8]>,
    /// `/v1/responses/{id}` or `/v1/responses/{id}/input_items`: a stored response.
    pub stored: Option<StoredRoute<'a>>,
}

/// A route to one stored response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRoute<'a> {
    /// The response id as sent (checked by the handler).
    pub id: &'a [u8],
    /// `/input_items` (GET only).
    pub input_items: bool,
}

/// Splits a request target into endpoint and project slug.
pub fn parse_target(path: &[u8]) -> Target<'_> {
    let path = match memchr::memchr(b'?', path) {
        Some(i) => &path[..i],
        None => path,
    };
    let (slug, rest) = match path.strip_prefix(b"/projects/") {
        Some(r) => match memchr::memchr(b'/', r) {
            Some(i) if i > 0 => (Some(&r[..i]), &r[i..]),
            _ => {
                return Target {
                    endpoint: None,
                    slug: None,
                    stored: None,
                }
            }
        },
        None => (None, path),
    };
    let endpoint = match rest {
        b"/v1/chat/completions" => Some(Endpoint::ChatCompletions),
        b"/v1/responses" => Some(Endpoint::Responses),
        b"/v1/messages" => Some(Endpoint::Messages),
        b"/v1/messages/count_tokens" => Some(Endpoint::CountTokens),
        b"/v1/models" => Some(Endpoint::Models),
        _ => None,
    };
    let stored = rest.strip_prefix(b"/v1/responses/").and_then(|r| {
        let (id, input_items) = match memchr::memchr(b'/', r) {
            None => (r, false),
            Some(i) if &r[i..] == b"/input_items" => (&r[..i], true),
            Some(_) => return None,
        };
        (!id.is_empty()).then_some(StoredRoute { id, input_items })
    });
    Target {
        endpoint,
        slug,
        stored,
    }
}

/// The protocol to answer an unknown or unparseable request in: Anthropic when the path or the
/// headers look like an Anthropic client (`/messages`, `x-api-key`, `anthropic-version`), else
/// OpenAI.
pub fn guess_protocol(path: &[u8], anthropic_headers: bool) -> Protocol {
    if anthropic_headers || memchr::memmem::find(path, b"/messages").is_some() {
        Protocol::Anthropic
    } else {
        Protocol::OpenAi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_response_routes() {
        let t = parse_target(b"/projects/acme/v1/responses/resp_1/input_items?limit=2");
        assert_eq!(t.slug, Some(&b"acme"[..]));
        assert_eq!(
            t.stored,
            Some(StoredRoute {
                id: b"resp_1",
                input_items: true
            })
        );
        let t = parse_target(b"/v1/responses/resp_1");
        assert_eq!(
            t.stored.map(|s| (s.id, s.input_items)),
            Some((&b"resp_1"[..], false))
        );
        assert_eq!(parse_target(b"/v1/responses/").stored, None);
        assert_eq!(parse_target(b"/v1/responses/a/b").stored, None);
        assert_eq!(parse_target(b"/v1/responses").stored, None);
    }

    #[test]
    fn targets() {
        type Case<'a> = (&'a [u8], Option<Endpoint>, Option<&'a [u8]>);
        let cases: &[Case] = &[
            (
                b"/v1/chat/completions",
                Some(Endpoint::ChatCompletions),
                None,
            ),
            (
                b"/v1/chat/completions?x=1",
                Some(Endpoint::ChatCompletions),
                None,
            ),
            (b"/v1/messages", Some(Endpoint::Messages), None),
            (
                b"/v1/messages/count_tokens",
                Some(Endpoint::CountTokens),
                None,
            ),
            (b"/v1/responses", Some(Endpoint::Responses), None),
            (b"/v1/models", Some(Endpoint::Models), None),
            (
                b"/projects/acme/v1/messages",
                Some(Endpoint::Messages),
                Some(b"acme"),
            ),
            (b"/projects/acme/v1/nope", None, Some(b"acme")),
            (b"/projects//v1/messages", None, None),
            (b"/projects/acme", None, None),
            (b"/v1/chat/completions/", None, None),
            (b"/v1/responses/resp_1", None, None),
            (b"/", None, None),
        ];
        for (path, ep, slug) in cases {
            let t = parse_target(path);
            assert_eq!(t.stored.is_some(), path.starts_with(b"/v1/responses/"));
            assert_eq!(
                (t.endpoint, t.slug),
                (*ep, *slug),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
    }
}
