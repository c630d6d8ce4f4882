//! `GET /v1/models`: the project's models, in Anthropic's list shape when the client speaks
//! Anthropic (`anthropic-version` or `x-api-key` sent), else OpenAI's.

use crate::route::RouteTable;
use crate::scan;
use crate::server::conn::{Bufs, Outcome, Request};
use crate::server::respond;
use monoio::net::TcpStream;

/// Answers the list.
pub async fn answer(
    req: &Request<'_>,
    project: u16,
    anthropic: bool,
    stream: &mut TcpStream,
    bufs: &mut Bufs,
) -> Outcome {
    let mut body = std::mem::take(&mut bufs.scratch);
    body.clear();
    models_list(req.table, project, anthropic, &mut body);
    let idle = req.table.limits.idle_timeout;
    let out = respond::json(idle, stream, 200, &req.trace_id, &body, true, bufs).await;
    bufs.scratch = body;
    out
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
