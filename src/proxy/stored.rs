//! The stored-response routes: `GET` and `DELETE /v1/responses/{id}`, and
//! `GET /v1/responses/{id}/input_items`, answered from the conversation store without any
//! provider, in OpenAI's shapes.
//!
//! Ids live in the project's namespace: another project's id, like an unknown, expired or
//! deleted one, is a 404 `not_found_error`. `input_items` lists the items the response was
//! generated from, earlier turns' inputs and outputs included (a chained conversation is one
//! list), with OpenAI's cursor pagination: `limit` (1 to 100, default 20), `order` (`desc` by
//! default), `after` and `before` (item ids, exclusive). An item the client sent without an
//! `id` is listed with one made from its response and position (`<response id>_in_<n>`), stable
//! for that response; a message's string `content` is listed as one text part, as OpenAI does.

use super::conversation::{concat, valid_id};
use crate::endpoint::StoredRoute;
use crate::error::{Error, ErrorKind};
use crate::http1::Method;
use crate::scan::members::{elements, get, members, str_content};
use crate::server::conn::{Bufs, Outcome, Request};
use crate::server::respond;
use crate::server::worker::Worker;
use crate::state::StateError;
use monoio::net::TcpStream;

/// Largest `limit` of one page.
const MAX_LIMIT: usize = 100;
/// `limit` when the client gives none.
const DEFAULT_LIMIT: usize = 20;

/// Answers one stored-response route.
pub async fn answer(
    w: &Worker,
    req: &Request<'_>,
    route: StoredRoute<'_>,
    project: u16,
    stream: &mut TcpStream,
    bufs: &mut Bufs,
) -> Result<Outcome, Error> {
    // Method and token were checked on the head (`filter::admit`).
    let method = req.head.method;
    let project = req.table.projects[project as usize].slug.as_str();
    let id = std::str::from_utf8(route.id)
        .ok()
        .filter(|id| valid_id(id.as_bytes()))
        .ok_or_else(|| not_found(route.id))?;
    let state = w.shared.state.as_ref().ok_or_else(no_state)?;
    let idle = req.table.limits.idle_timeout;
    let mut out = std::mem::take(&mut bufs.scratch);
    out.clear();
    if method == Method::Delete {
        if !state.delete(project, id).await.map_err(unavailable)? {
            bufs.scratch = out;
            return Err(not_found(route.id));
        }
        out.extend_from_slice(br#"{"id":"#);
        crate::scan::push_json_string(&mut out, id);
        out.extend_from_slice(br#","object":"response","deleted":true}"#);
    } else {
        let Some(rec) = state.get(project, id).await.map_err(unavailable)? else {
            bufs.scratch = out;
            return Err(not_found(route.id));
        };
        if route.input_items {
            // Earlier turns first: the conversation this one continued (gone ancestors leave
            // only this turn's own input).
            let earlier = match &rec.previous {
                Some(prev) => state
                    .conversation(project, prev)
                    .await
                    .map_err(unavailable)?,
                None => None,
            };
            let mut all = Vec::new();
            concat(earlier.as_deref().unwrap_or(b"[]"), &rec.input, &mut all);
            let page = Page::from_query(req.path());
            list(&all, id, &page, &mut out);
        } else {
            out.extend_from_slice(&rec.response);
        }
    }
    let o = respond::json(idle, stream, 200, &req.trace_id, &out, true, bufs).await;
    bufs.scratch = out;
    Ok(o)
}

/// The 404 of an id this project has no response under.
pub(super) fn not_found(id: &[u8]) -> Error {
    Error::client(
        ErrorKind::NoSuchResponse,
        format!(
            "no response with id '{}' in this project",
            String::from_utf8_lossy(&id[..id.len().min(128)])
        ),
    )
}

/// A gateway started without a store (not `serve`) has no stored responses to offer.
pub(super) fn no_state() -> Error {
    Error::gateway(
        ErrorKind::StateUnavailable,
        "this process keeps no conversation state",
    )
}

/// The 503 of a store that could not answer.
pub(super) fn unavailable(e: StateError) -> Error {
    Error::gateway(
        ErrorKind::StateUnavailable,
        format!("the conversation store is unavailable: {e}"),
    )
}

/// The pagination parameters of `input_items`.
#[derive(Debug, PartialEq, Eq)]
struct Page<'a> {
    limit: usize,
    asc: bool,
    after: Option<&'a [u8]>,
    before: Option<&'a [u8]>,
}

impl<'a> Page<'a> {
    /// Reads the query string of `path`; unknown or malformed parameters take their defaults.
    fn from_query(path: &'a [u8]) -> Page<'a> {
        let mut p = Page {
            limit: DEFAULT_LIMIT,
            asc: false,
            after: None,
            before: None,
        };
        let Some(q) = memchr::memchr(b'?', path).map(|i| &path[i + 1..]) else {
            return p;
        };
        for pair in q.split(|&c| c == b'&') {
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            match k {
                b"limit" => {
                    if let Some(n) = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                        p.limit = usize::clamp(n, 1, MAX_LIMIT);
                    }
                }
                b"order" => p.asc = v == b"asc",
                b"after" if !v.is_empty() => p.after = Some(v),
                b"before" if !v.is_empty() => p.before = Some(v),
                _ => {}
            }
        }
        p
    }
}

/// Writes the list object of `items` (a JSON array) for response `id`.
fn list(items: &[u8], id: &str, page: &Page<'_>, out: &mut Vec<u8>) {
    let all: Vec<&[u8]> = elements(items)
        .map(|e| e.map_while(Result::ok).collect())
        .unwrap_or_default();
    let mut ids: Vec<Vec<u8>> = Vec::with_capacity(all.len());
    for (n, item) in all.iter().enumerate() {
        match get(item, b"id").and_then(str_content) {
            Some(own) => ids.push(own.to_vec()),
            None => ids.push(format!("{id}_in_{n}").into_bytes()),
        }
    }
    let mut order: Vec<usize> = (0..all.len()).collect();
    if !page.asc {
        order.reverse();
    }
    let pos = |cursor: &[u8]| order.iter().position(|&i| ids[i] == cursor);
    let start = page.after.and_then(pos).map_or(0, |p| p + 1);
    let end = page.before.and_then(pos).unwrap_or(order.len());
    let window = order.get(start..end.max(start)).unwrap_or(&[]);
    let shown = &window[..window.len().min(page.limit)];
    out.extend_from_slice(br#"{"object":"list","data":["#);
    for (k, &i) in shown.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_item(all[i], &ids[i], out);
    }
    out.extend_from_slice(b"],\"first_id\":");
    id_or_null(shown.first().map(|&i| &ids[i][..]), out);
    out.extend_from_slice(b",\"last_id\":");
    id_or_null(shown.last().map(|&i| &ids[i][..]), out);
    out.extend_from_slice(b",\"has_more\":");
    out.extend_from_slice(if window.len() > shown.len() {
        b"true"
    } else {
        b"false"
    });
    out.push(b'}');
}

fn id_or_null(id: Option<&[u8]>, out: &mut Vec<u8>) {
    match id {
        Some(id) => {
            out.push(b'"');
            out.extend_from_slice(id);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// One listed item: its members as stored, with an `id` first when it had none, `type`
/// `message` when a role-bearing item left it out, and a string `content` as one text part.
fn write_item(item: &[u8], item_id: &[u8], out: &mut Vec<u8>) {
    let Some(ms) = members(item) else {
        out.extend_from_slice(item);
        return;
    };
    let has = |k: &[u8]| get(item, k).is_some();
    let role = get(item, b"role").and_then(str_content);
    out.push(b'{');
    let mut first = true;
    if !has(b"id") {
        out.extend_from_slice(b"\"id\":\"");
        out.extend_from_slice(item_id);
        out.push(b'"');
        first = false;
    }
    if role.is_some() && !has(b"type") {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(br#""type":"message""#);
        first = false;
    }
    for (k, v) in ms.map_while(Result::ok) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(k);
        out.extend_from_slice(b"\":");
        if k == b"content" && v.first() == Some(&b'"') {
            let part = if role == Some(b"assistant") {
                "output_text"
            } else {
                "input_text"
            };
            out.extend_from_slice(b"[{\"type\":\"");
            out.extend_from_slice(part.as_bytes());
            out.extend_from_slice(b"\",\"text\":");
            out.extend_from_slice(v);
            out.extend_from_slice(b"}]");
        } else {
            out.extend_from_slice(v);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(items: &str, query: &str) -> simd_json::OwnedValue {
        let path = format!("/v1/responses/r/input_items{query}");
        let mut out = Vec::new();
        list(
            items.as_bytes(),
            "resp_r",
            &Page::from_query(path.as_bytes()),
            &mut out,
        );
        simd_json::to_owned_value(&mut out).unwrap()
    }

    #[test]
    fn items_get_ids_types_and_text_parts() {
        use simd_json::prelude::*;
        let v = listed(
            r#"[{"role":"user","content":"hi"},{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"yo"}]}]"#,
            "?order=asc",
        );
        let data = v["data"].as_array().unwrap();
        assert_eq!(data[0]["id"].as_str(), Some("resp_r_in_0"));
        assert_eq!(data[0]["type"].as_str(), Some("message"));
        assert_eq!(data[0]["content"][0]["type"].as_str(), Some("input_text"));
        assert_eq!(data[0]["content"][0]["text"].as_str(), Some("hi"));
        assert_eq!(data[1]["id"].as_str(), Some("msg_1"));
        assert_eq!(v["first_id"].as_str(), Some("resp_r_in_0"));
        assert_eq!(v["last_id"].as_str(), Some("msg_1"));
        assert_eq!(v["has_more"].as_bool(), Some(false));
    }

    #[test]
    fn cursor_pages_in_both_orders() {
        use simd_json::prelude::*;
        let items = r#"[{"id":"a"},{"id":"b"},{"id":"c"},{"id":"d"}]"#;
        let ids = |v: &simd_json::OwnedValue| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect()
        };
        let v = listed(items, "?limit=2");
        assert_eq!(ids(&v), ["d", "c"]);
        assert_eq!(v["has_more"].as_bool(), Some(true));
        let v = listed(items, "?limit=2&after=c");
        assert_eq!(ids(&v), ["b", "a"]);
        assert_eq!(v["has_more"].as_bool(), Some(false));
        let v = listed(items, "?order=asc&after=a&before=d");
        assert_eq!(ids(&v), ["b", "c"]);
        let v = listed(items, "?limit=0");
        assert_eq!(ids(&v), ["d"], "limit is clamped to 1..=100");
        let v = listed("[]", "");
        assert_eq!(
            v["first_id"],
            simd_json::OwnedValue::Static(simd_json::StaticNode::Null)
        );
    }
}
