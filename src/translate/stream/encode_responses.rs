//! Pivot events as an OpenAI Responses event stream.
//!
//! The sequence `responses.stream()` accepts (OpenAI "Streaming events"): `response.created`,
//! `response.in_progress`, then per output item `response.output_item.added`, its content
//! events and `response.output_item.done`, then `response.completed` (or
//! `response.incomplete` when the output bound was hit or the answer was filtered, or
//! `response.failed` on an upstream error). Every event carries `sequence_number`, counted from
//! 0. Items: a `message` with one `output_text` part (`response.content_part.added`,
//! `response.output_text.delta`/`.done`, `response.content_part.done`); a `reasoning` item
//! whose one summary part is the thinking text (`response.reasoning_summary_part.added`,
//! `response.reasoning_summary_text.delta`/`.done`, `response.reasoning_summary_part.done`)
//! and whose `encrypted_content` is Anthropic's signature, so a client can send it back; a
//! `function_call` (`response.function_call_arguments.delta`/`.done`) with the client's
//! `name` and, for a namespaced tool, its `namespace`.
//!
//! The `.done` events and the final Response repeat the whole text, so the current item's
//! text and every finished item are kept in buffers reused for the stream's life. The
//! Response object carries `id` (`resp_<trace hex>`), `object`, `created_at`, `status`,
//! `model`, `output`, `usage`, `error`, `incomplete_details`, and the request's echoed members
//! ([`Session::echo`]), with `tools: []`, `tool_choice: "auto"` and `parallel_tool_calls: true`
//! when the echo does not name them (the SDKs' types require them).

use super::{Ev, Ids};
use crate::scan::{push_json_escaped, push_json_string};
use crate::translate::names::ToolNames;
use crate::translate::wire::{
    client_tool_name, id_hex, push_responses_usage, push_u64, responses_error_code,
};
use crate::translate::{Session, Stop, Usage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    None,
    Message,
    Reasoning,
    Function,
}

/// The Responses encoder's state.
pub(super) struct ResponsesEncoder {
    hex: String,
    created: u64,
    model: String,
    /// The echoed members with the defaults the echo lacks, each preceded by a comma.
    echo: Vec<u8>,
    names: ToolNames,
    seq: u64,
    started: bool,
    item: Item,
    /// Output index of the current item; items so far.
    index: u64,
    /// The current item's text, summary or arguments (escaped).
    text: Vec<u8>,
    /// The current reasoning item's signature; the current call's id.
    extra: Vec<u8>,
    /// The current call's client name and namespace (escaped).
    name: Vec<u8>,
    namespace: Option<Vec<u8>>,
    /// Finished items, comma-separated JSON.
    done: Vec<u8>,
    stop: Option<Stop>,
    usage: Option<Usage>,
}

impl ResponsesEncoder {
    pub(super) fn new(session: &Session, ids: &Ids<'_>) -> ResponsesEncoder {
        let mut echo = Vec::new();
        crate::translate::wire::push_echo(&mut echo, &session.echo);
        ResponsesEncoder {
            hex: id_hex(ids.trace_id),
            created: ids.created,
            model: session.model.clone(),
            echo,
            names: session.tools.clone(),
            seq: 0,
            started: false,
            item: Item::None,
            index: 0,
            text: Vec::new(),
            extra: Vec::new(),
            name: Vec::new(),
            namespace: None,
            done: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    /// Writes `event: <ty>` and the data up to after `sequence_number` and a comma.
    fn event(&mut self, ty: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        push_u64(out, self.seq);
        self.seq += 1;
        out.push(b',');
    }

    fn push_item_id(&self, kind: Item, index: u64, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(match kind {
            Item::Reasoning => b"rs_",
            Item::Function => b"fc_",
            Item::Message | Item::None => b"msg_",
        });
        out.extend_from_slice(self.hex.as_bytes());
        out.push(b'_');
        push_u64(out, index);
        out.push(b'"');
    }

    /// `"item_id":..,"output_index":..` of the current item.
    fn item_ref(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"item_id\":");
        self.push_item_id(self.item, self.index, out);
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.index);
    }

    /// The Response object.
    fn response(&self, status: &str, tail: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":\"resp_");
        out.extend_from_slice(self.hex.as_bytes());
        out.extend_from_slice(b"\",\"object\":\"response\",\"created_at\":");
        push_u64(out, self.created);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\",\"model\":");
        push_json_string(out, &self.model);
        out.extend_from_slice(b",\"output\":[");
        if status != "in_progress" {
            out.extend_from_slice(&self.done);
        }
        out.extend_from_slice(b"],\"usage\":");
        match (status, self.usage) {
            ("in_progress", _) | (_, None) => out.extend_from_slice(b"null"),
            (_, Some(u)) => push_responses_usage(out, &u),
        }
        out.extend_from_slice(tail);
        out.extend_from_slice(&self.echo);
        out.push(b'}');
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        for ty in ["response.created", "response.in_progress"] {
            self.event(ty, out);
            out.extend_from_slice(b"\"response\":");
            self.response(
                "in_progress",
                b",\"error\":null,\"incomplete_details\":null",
                out,
            );
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn open(&mut self, item: Item, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.item = item;
        self.text.clear();
        if item != Item::Function {
            self.extra.clear();
        }
        self.event("response.output_item.added", out);
        out.extend_from_slice(b"\"output_index\":");
        push_u64(out, self.index);
        out.extend_from_slice(b",\"item\":");
        self.item_json(false, out);
        out.extend_from_slice(b"}\n\n");
        match item {
            Item::Message => {
                self.event("response.content_part.added", out);
                self.item_ref(out);
                out.extend_from_slice(b",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n");
            }
            Item::Reasoning => {
                self.event("response.reasoning_summary_part.added", out);
                self.item_ref(out);
                out.extend_from_slice(
                    b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}}\n\n",
                );
            }
            Item::Function | Item::None => {}
        }
    }

    /// The current item as JSON, in progress (empty text) or done.
    fn item_json(&self, done: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        self.push_item_id(self.item, self.index, out);
        let text: &[u8] = if done { &self.text } else { b"" };
        let status: &[u8] = if done { b"completed" } else { b"in_progress" };
        match self.item {
            Item::Message => {
                out.extend_from_slice(b",\"type\":\"message\",\"status\":\"");
                out.extend_from_slice(status);
                out.extend_from_slice(b"\",\"role\":\"assistant\",\"content\":[");
                if done {
                    out.extend_from_slice(b"{\"type\":\"output_text\",\"text\":\"");
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\",\"annotations\":[],\"logprobs\":[]}");
                }
                out.extend_from_slice(b"]}");
            }
            Item::Reasoning => {
                out.extend_from_slice(b",\"type\":\"reasoning\",\"summary\":[");
                if done {
                    out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":\"");
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\"}");
                }
                out.push(b']');
                if done && !self.extra.is_empty() {
                    out.extend_from_slice(b",\"encrypted_content\":\"");
                    out.extend_from_slice(&self.extra);
                    out.push(b'"');
                }
                out.push(b'}');
            }
            Item::Function | Item::None => {
                out.extend_from_slice(b",\"type\":\"function_call\",\"status\":\"");
                out.extend_from_slice(status);
                out.extend_from_slice(b"\",\"arguments\":\"");
                out.extend_from_slice(text);
                out.extend_from_slice(b"\",\"call_id\":\"");
                out.extend_from_slice(&self.extra);
                out.extend_from_slice(b"\",\"name\":\"");
                out.extend_from_slice(&self.name);
                out.push(b'"');
                if let Some(ns) = &self.namespace {
                    out.extend_from_slice(b",\"namespace\":\"");
                    out.extend_from_slice(ns);
                    out.push(b'"');
                }
                out.push(b'}');
            }
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        match self.item {
            Item::None => return,
            Item::Message => {
                self.event("response.output_text.done", out);
                self.item_ref(out);
                out.extend_from_slice(b",\"content_index\":0,\"text\":\"");
                out.extend_from_slice(&self.text);
                out.extend_from_slice(b"\",\"logprobs\":[]}\n\n");
                self.event("response.content_part.done", out);
                self.item_ref(out);
                out.extend_from_slice(
                    b",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"",
                );
                out.extend_from_slice(&self.text);
                out.extend_from_slice(b"\",\"annotations\":[],\"logprobs\":[]}}\n\n");
            }
            Item::Reasoning => {
                self.event("response.reasoning_summary_text.done", out);
                self.item_ref(out);
                out.extend_from_slice(b",\"summary_index\":0,\"text\":\"");
                out.extend_from_slice(&self.text);
                out.extend_from_slice(b"\"}\n\n");
                self.event("response.reasoning_summary_part.done", out);
                self.item_ref(out);
                out.extend_from_slice(
                    b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"",
                );
                out.extend_from_slice(&self.text);
                out.extend_from_slice(b"\"}}\n\n");
            }
            Item::Function => {
                if self.text.is_empty() {
                    self.text.extend_from_slice(b"{}");
                }
                self.event("response.function_call_arguments.done", out);
                self.item_ref(out);
                out.extend_from_slice(b",\"arguments\":\"");
                out.extend_from_slice(&self.text);
                out.extend_from_slice(b"\"}\n\n");
            }
        }
        let mut done = std::mem::take(&mut self.done);
        if !done.is_empty() {
            done.push(b',');
        }
        let at = done.len();
        self.item_json(true, &mut done);
        self.event("response.output_item.done", out);
        out.extend_from_slice(b"\"output_index\":");
        push_u64(out, self.index);
        out.extend_from_slice(b",\"item\":");
        out.extend_from_slice(&done[at..]);
        out.extend_from_slice(b"}\n\n");
        self.done = done;
        self.item = Item::None;
        self.index += 1;
    }

    fn delta(&mut self, ty: &str, v: &[u8], out: &mut Vec<u8>) {
        self.text.extend_from_slice(v);
        self.event(ty, out);
        self.item_ref(out);
        match self.item {
            Item::Message => out.extend_from_slice(b",\"content_index\":0"),
            Item::Reasoning => out.extend_from_slice(b",\"summary_index\":0"),
            Item::Function | Item::None => {}
        }
        out.extend_from_slice(b",\"delta\":\"");
        out.extend_from_slice(v);
        if self.item == Item::Message {
            out.extend_from_slice(b"\",\"logprobs\":[]}\n\n");
        } else {
            out.extend_from_slice(b"\"}\n\n");
        }
    }

    pub(super) fn on(&mut self, ev: Ev<'_>, out: &mut Vec<u8>) {
        match ev {
            Ev::Start => self.start(out),
            Ev::Text(t) => {
                if self.item != Item::Message {
                    self.open(Item::Message, out);
                }
                self.delta("response.output_text.delta", t, out);
            }
            Ev::Thinking(t) => {
                if self.item != Item::Reasoning {
                    self.open(Item::Reasoning, out);
                }
                self.delta("response.reasoning_summary_text.delta", t, out);
            }
            Ev::Signature(s) => {
                if self.item != Item::Reasoning {
                    self.open(Item::Reasoning, out);
                }
                self.extra.extend_from_slice(s);
            }
            Ev::ToolStart { id, name } => {
                self.start(out);
                self.close(out);
                let (ns, client) = client_tool_name(&self.names, name);
                self.name.clear();
                client.push(&mut self.name);
                self.namespace = ns.map(|n| {
                    let mut v = Vec::with_capacity(n.len());
                    push_json_escaped(&mut v, n);
                    v
                });
                self.extra.clear();
                self.extra.extend_from_slice(id);
                self.open(Item::Function, out);
            }
            Ev::ToolArgs(a) => {
                if self.item == Item::Function {
                    self.delta("response.function_call_arguments.delta", a, out);
                }
            }
            Ev::BlockEnd => self.close(out),
            Ev::Stop(s) => {
                self.close(out);
                self.stop = Some(s);
            }
            Ev::Usage(u) => self.usage = Some(u),
            Ev::Error { kind, message } => {
                self.start(out);
                self.event("response.failed", out);
                out.extend_from_slice(b"\"response\":");
                let mut tail = Vec::with_capacity(64 + message.len());
                tail.extend_from_slice(b",\"error\":{\"code\":\"");
                tail.extend_from_slice(responses_error_code(kind).as_bytes());
                tail.extend_from_slice(b"\",\"message\":\"");
                tail.extend_from_slice(message);
                tail.extend_from_slice(b"\"},\"incomplete_details\":null");
                self.response("failed", &tail, out);
                out.extend_from_slice(b"}\n\n");
            }
            Ev::End => {
                self.start(out);
                self.close(out);
                let (ty, status, tail): (&str, &str, &[u8]) = match self.stop {
                    Some(Stop::Length) => (
                        "response.incomplete",
                        "incomplete",
                        b",\"error\":null,\"incomplete_details\":{\"reason\":\"max_output_tokens\"}",
                    ),
                    Some(Stop::Filtered) => (
                        "response.incomplete",
                        "incomplete",
                        b",\"error\":null,\"incomplete_details\":{\"reason\":\"content_filter\"}",
                    ),
                    _ => (
                        "response.completed",
                        "completed",
                        b",\"error\":null,\"incomplete_details\":null",
                    ),
                };
                self.event(ty, out);
                out.extend_from_slice(b"\"response\":");
                self.response(status, tail, out);
                out.extend_from_slice(b"}\n\n");
            }
        }
    }
}
