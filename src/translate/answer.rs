//! Whole answers and upstream error bodies in the client's API.
//!
//! A 2xx body (OpenAI `chat.completion` or Anthropic `message`) is read in place with
//! [`crate::scan::members`] into its parts (text, thinking with signatures, tool calls, stop
//! reason, usage) and written as the client's object: `chat.completion`, Anthropic `message`,
//! or a Responses `Response` (`reasoning`, `message` and `function_call` output items; status
//! `incomplete` with `incomplete_details.reason` `max_output_tokens` or `content_filter`).
//! Text is carried as escaped JSON bytes; tool arguments are a JSON string on the OpenAI side
//! and a JSON object on Anthropic's, so they are escaped or unescaped (into `scratch`) once.
//! Anthropic thinking in a chat answer is `reasoning_content` plus LiteLLM's `thinking_blocks`
//! (text and signature), which come back as thinking blocks. Usage maps as
//! [`Usage`] says: Anthropic `input_tokens` 11 + `cache_read_input_tokens` 40 is
//! `prompt_tokens` 51 with `prompt_tokens_details.cached_tokens` 40.

use smallvec::SmallVec;

use super::stream::Ids;
use super::wire::{
    chat_finish, client_tool_name, id_hex, messages_stop, parse_chat_finish, parse_messages_stop,
    push_chat_usage, push_echo, push_messages_usage, push_responses_usage, push_u64,
    read_chat_usage, read_error, status_error_type, MessagesUsage,
};
use super::{Api, Session, Stop, Usage};
use crate::scan::members::{elements, get, members, str_content, unescape_into, validate};
use crate::scan::{push_json_escaped, push_json_string};

/// Why a 2xx upstream body could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// A tool call's arguments as the upstream wrote them.
#[derive(Clone, Copy, Debug)]
enum Args<'a> {
    /// OpenAI: the escaped content of a JSON string holding JSON.
    Str(&'a [u8]),
    /// Anthropic: a raw JSON value.
    Raw(&'a [u8]),
}

#[derive(Debug)]
struct Tool<'a> {
    id: &'a [u8],
    name: &'a [u8],
    args: Args<'a>,
}

/// A thinking block: its escaped text and signature.
type Thinking<'a> = (&'a [u8], &'a [u8]);

/// An upstream answer's parts, borrowed from its body.
#[derive(Debug, Default)]
struct Parts<'a> {
    text: SmallVec<[&'a [u8]; 2]>,
    thinking: SmallVec<[Thinking<'a>; 1]>,
    tools: SmallVec<[Tool<'a>; 2]>,
    stop: Option<Stop>,
    usage: Option<Usage>,
}

fn bad(what: &str) -> Malformed {
    Malformed(format!("the upstream answer is malformed: {what}"))
}

fn read_chat(body: &[u8]) -> Result<Parts<'_>, Malformed> {
    let mut p = Parts::default();
    let choice = get(body, b"choices")
        .and_then(elements)
        .and_then(|mut e| e.next())
        .and_then(Result::ok)
        .ok_or_else(|| bad("no choices"))?;
    p.stop = get(choice, b"finish_reason")
        .and_then(str_content)
        .map(parse_chat_finish);
    let msg = get(choice, b"message").ok_or_else(|| bad("no message"))?;
    let mut reasoning = None;
    for (k, v) in members(msg)
        .ok_or_else(|| bad("message"))?
        .map_while(Result::ok)
    {
        match k {
            b"content" | b"refusal" => p.text.extend(str_content(v).filter(|t| !t.is_empty())),
            b"reasoning_content" => reasoning = str_content(v).or(reasoning),
            b"reasoning" if reasoning.is_none() => reasoning = str_content(v),
            b"thinking_blocks" => {
                for b in elements(v).into_iter().flatten().map_while(Result::ok) {
                    let text = get(b, b"thinking").and_then(str_content).unwrap_or(b"");
                    let sig = get(b, b"signature").and_then(str_content).unwrap_or(b"");
                    p.thinking.push((text, sig));
                }
            }
            b"tool_calls" => {
                for c in elements(v).into_iter().flatten().map_while(Result::ok) {
                    let f = get(c, b"function").unwrap_or(b"{}");
                    p.tools.push(Tool {
                        id: get(c, b"id").and_then(str_content).unwrap_or(b""),
                        name: get(f, b"name").and_then(str_content).unwrap_or(b""),
                        args: Args::Str(get(f, b"arguments").and_then(str_content).unwrap_or(b"")),
                    });
                }
            }
            _ => {}
        }
    }
    if p.thinking.is_empty() {
        if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
            p.thinking.push((r, b""));
        }
    }
    if let Some(u) = get(body, b"usage").filter(|u| u.first() == Some(&b'{')) {
        let mut usage = Usage::default();
        read_chat_usage(u, &mut usage);
        p.usage = Some(usage);
    }
    Ok(p)
}

fn read_messages(body: &[u8]) -> Result<Parts<'_>, Malformed> {
    let mut p = Parts::default();
    let content = get(body, b"content")
        .and_then(elements)
        .ok_or_else(|| bad("no content"))?;
    for b in content.map_while(Result::ok) {
        match get(b, b"type").and_then(str_content) {
            Some(b"text") => p.text.extend(get(b, b"text").and_then(str_content)),
            Some(b"thinking") => p.thinking.push((
                get(b, b"thinking").and_then(str_content).unwrap_or(b""),
                get(b, b"signature").and_then(str_content).unwrap_or(b""),
            )),
            Some(b"tool_use") => p.tools.push(Tool {
                id: get(b, b"id").and_then(str_content).unwrap_or(b""),
                name: get(b, b"name").and_then(str_content).unwrap_or(b""),
                args: Args::Raw(get(b, b"input").unwrap_or(b"{}")),
            }),
            _ => {}
        }
    }
    p.stop = get(body, b"stop_reason")
        .and_then(str_content)
        .map(parse_messages_stop);
    if let Some(u) = get(body, b"usage") {
        let mut mu = MessagesUsage::default();
        mu.read(u);
        p.usage = Some(mu.usage());
    }
    Ok(p)
}

/// Appends arguments as the content of a JSON string (OpenAI `arguments`).
fn push_args_str(args: Args<'_>, out: &mut Vec<u8>) {
    match args {
        Args::Str(b"") => out.extend_from_slice(b"{}"),
        Args::Str(s) => out.extend_from_slice(s),
        // Valid UTF-8: the whole body was checked.
        Args::Raw(v) => push_json_escaped(out, std::str::from_utf8(v).unwrap_or("{}")),
    }
}

/// Appends arguments as a JSON value (Anthropic `input`).
fn push_args_value(
    args: Args<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    match args {
        Args::Raw(v) => out.extend_from_slice(v),
        Args::Str(s) => {
            if !unescape_into(s, scratch) {
                return Err(bad("tool call arguments"));
            }
            if scratch.iter().all(u8::is_ascii_whitespace) {
                out.extend_from_slice(b"{}");
            } else if validate(scratch).is_ok() && members(scratch).is_some() {
                out.extend_from_slice(scratch.trim_ascii());
            } else {
                return Err(bad("tool call arguments are not a JSON object"));
            }
        }
    }
    Ok(())
}

fn push_joined(parts: &[&[u8]], out: &mut Vec<u8>) {
    for t in parts {
        out.extend_from_slice(t);
    }
}

fn write_chat(p: &Parts<'_>, s: &Session, ids: &Ids<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":\"chatcmpl-");
    push_json_escaped(out, ids.trace_id);
    out.extend_from_slice(b"\",\"object\":\"chat.completion\",\"created\":");
    push_u64(out, ids.created);
    out.extend_from_slice(b",\"model\":");
    push_json_string(out, &s.model);
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    if p.text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'"');
        push_joined(&p.text, out);
        out.push(b'"');
    }
    if !p.thinking.is_empty() {
        out.extend_from_slice(b",\"reasoning_content\":\"");
        for (t, _) in &p.thinking {
            out.extend_from_slice(t);
        }
        out.extend_from_slice(b"\",\"thinking_blocks\":[");
        for (i, (t, sig)) in p.thinking.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"");
            out.extend_from_slice(t);
            out.extend_from_slice(b"\",\"signature\":\"");
            out.extend_from_slice(sig);
            out.extend_from_slice(b"\"}");
        }
        out.push(b']');
    }
    if !p.tools.is_empty() {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (i, t) in p.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_slice(t.id);
            out.extend_from_slice(b"\",\"type\":\"function\",\"function\":{\"name\":\"");
            client_tool_name(&s.tools, t.name).1.push(out);
            out.extend_from_slice(b"\",\"arguments\":\"");
            push_args_str(t.args, out);
            out.extend_from_slice(b"\"}}");
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(chat_finish(p.stop.unwrap_or(Stop::End)).as_bytes());
    out.extend_from_slice(b"\"}],\"usage\":");
    push_chat_usage(out, &p.usage.unwrap_or_default());
    out.push(b'}');
}

fn write_messages(
    p: &Parts<'_>,
    s: &Session,
    ids: &Ids<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    out.extend_from_slice(b"{\"id\":\"msg_");
    out.extend_from_slice(id_hex(ids.trace_id).as_bytes());
    out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_json_string(out, &s.model);
    out.extend_from_slice(b",\"content\":[");
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::replace(&mut first, false) {
            out.push(b',');
        }
    };
    for (t, sig) in &p.thinking {
        sep(out);
        out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"");
        out.extend_from_slice(t);
        out.extend_from_slice(b"\",\"signature\":\"");
        out.extend_from_slice(sig);
        out.extend_from_slice(b"\"}");
    }
    if !p.text.is_empty() {
        sep(out);
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"");
        push_joined(&p.text, out);
        out.extend_from_slice(b"\"}");
    }
    for t in &p.tools {
        sep(out);
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
        out.extend_from_slice(t.id);
        out.extend_from_slice(b"\",\"name\":\"");
        client_tool_name(&s.tools, t.name).1.push(out);
        out.extend_from_slice(b"\",\"input\":");
        push_args_value(t.args, scratch, out)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"stop_reason\":\"");
    out.extend_from_slice(messages_stop(p.stop.unwrap_or(Stop::End)).as_bytes());
    out.extend_from_slice(b"\",\"stop_sequence\":null,\"usage\":");
    push_messages_usage(out, &p.usage.unwrap_or_default());
    out.push(b'}');
    Ok(())
}

fn write_response(p: &Parts<'_>, s: &Session, ids: &Ids<'_>, out: &mut Vec<u8>) {
    let hex = id_hex(ids.trace_id);
    let incomplete: Option<&[u8]> = match p.stop {
        Some(Stop::Length) => Some(b"max_output_tokens"),
        Some(Stop::Filtered) => Some(b"content_filter"),
        _ => None,
    };
    out.extend_from_slice(b"{\"id\":\"resp_");
    out.extend_from_slice(hex.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"response\",\"created_at\":");
    push_u64(out, ids.created);
    out.extend_from_slice(if incomplete.is_some() {
        b",\"status\":\"incomplete\",\"model\":"
    } else {
        b",\"status\":\"completed\",\"model\":"
    });
    push_json_string(out, &s.model);
    out.extend_from_slice(b",\"output\":[");
    let mut n = 0u64;
    let mut item = |out: &mut Vec<u8>, prefix: &[u8]| {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(prefix);
        out.extend_from_slice(hex.as_bytes());
        out.push(b'_');
        push_u64(out, n);
        out.push(b'"');
        n += 1;
    };
    for (t, sig) in &p.thinking {
        item(out, b"rs_");
        out.extend_from_slice(
            b",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"",
        );
        out.extend_from_slice(t);
        out.extend_from_slice(b"\"}]");
        if !sig.is_empty() {
            out.extend_from_slice(b",\"encrypted_content\":\"");
            out.extend_from_slice(sig);
            out.push(b'"');
        }
        out.push(b'}');
    }
    if !p.text.is_empty() {
        item(out, b"msg_");
        out.extend_from_slice(b",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"");
        push_joined(&p.text, out);
        out.extend_from_slice(b"\",\"annotations\":[],\"logprobs\":[]}]}");
    }
    for t in &p.tools {
        item(out, b"fc_");
        out.extend_from_slice(
            b",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"",
        );
        push_args_str(t.args, out);
        out.extend_from_slice(b"\",\"call_id\":\"");
        out.extend_from_slice(t.id);
        out.extend_from_slice(b"\",\"name\":\"");
        let (ns, name) = client_tool_name(&s.tools, t.name);
        name.push(out);
        out.push(b'"');
        if let Some(ns) = ns {
            out.extend_from_slice(b",\"namespace\":");
            push_json_string(out, ns);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"usage\":");
    push_responses_usage(out, &p.usage.unwrap_or_default());
    out.extend_from_slice(b",\"error\":null,\"incomplete_details\":");
    match incomplete {
        Some(r) => {
            out.extend_from_slice(b"{\"reason\":\"");
            out.extend_from_slice(r);
            out.extend_from_slice(b"\"}");
        }
        None => out.extend_from_slice(b"null"),
    }
    push_echo(out, &s.echo);
    out.push(b'}');
}

/// Translates a whole 2xx upstream body into the client's API, appending it to `out`.
pub fn translate(
    body: &[u8],
    session: &Session,
    ids: &Ids<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<Answered, Malformed> {
    if simdutf8::basic::from_utf8(body).is_err() || validate(body).is_err() {
        return Err(bad("not JSON"));
    }
    let parts = match session.upstream {
        Api::Messages => read_messages(body)?,
        Api::Chat | Api::Responses => read_chat(body)?,
    };
    let start = out.len();
    let r = match session.client {
        Api::Chat => {
            write_chat(&parts, session, ids, out);
            Ok(())
        }
        Api::Messages => write_messages(&parts, session, ids, scratch, out),
        Api::Responses => {
            write_response(&parts, session, ids, out);
            Ok(())
        }
    };
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    Ok(Answered {
        usage: parts.usage,
        stop: parts.stop,
    })
}

/// What a translated answer reported, for the request's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The upstream's usage, when it reported one.
    pub usage: Option<Usage>,
    /// Why the upstream's answer stopped, when it said.
    pub stop: Option<Stop>,
}

/// An upstream error body (a status the client is answered with, 4xx) in the client's
/// protocol shape, appended to `out`: the provider's message kept, its type mapped.
///
/// The type follows the status (the contract's error table); the message is the provider's
/// (OpenAI `error.message`, Anthropic `error.message`, a bare `error` or `message` string),
/// or, for a body of another shape, a generic one naming the status: an unknown body is not
/// relayed, as it could echo a provider key.
pub fn error(status: u16, body: &[u8], client: Api, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    let _ = scratch;
    let parsed = simdutf8::basic::from_utf8(body).is_ok() && validate(body).is_ok();
    let (_, message) = if parsed {
        read_error(body)
    } else {
        (None, None)
    };
    let code = if parsed {
        get(body, b"error")
            .and_then(|e| get(e, b"code"))
            .and_then(str_content)
    } else {
        None
    };
    let anthropic = client == Api::Messages;
    let ty = status_error_type(status, anthropic);
    let push_message = |out: &mut Vec<u8>| match message {
        Some(m) => {
            out.push(b'"');
            out.extend_from_slice(m);
            out.push(b'"');
        }
        None => {
            out.extend_from_slice(b"\"the upstream answered with status ");
            push_u64(out, u64::from(status));
            out.push(b'"');
        }
    };
    if anthropic {
        out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        push_message(out);
        out.extend_from_slice(b"}}");
    } else {
        out.extend_from_slice(b"{\"error\":{\"message\":");
        push_message(out);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"param\":null,\"code\":");
        match code {
            Some(c) => {
                out.push(b'"');
                out.extend_from_slice(c);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests;
