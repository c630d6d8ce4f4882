//! Pivot events as Anthropic messages stream events.
//!
//! `message_start` (id `msg_<trace hex>`, the usage known so far: a chat upstream reports
//! none before its end, so `input_tokens` is 0 there and the real counts come in
//! `message_delta`), then per block `content_block_start` / `content_block_delta` /
//! `content_block_stop` with block indices counted over every block (text, thinking and
//! tool_use alike), then `message_delta` with `stop_reason` and `usage`, then `message_stop`.
//! The stop reason is held until the end: Anthropic writes it in the same event as the final
//! usage, which a chat upstream sends after its `finish_reason`. A `tool_use` block whose
//! arguments never came gets an `input_json_delta` of `{}`. No `ping`: the gateway writes
//! its trace as a ping before these bytes. An upstream error is `event: error`.

use super::{Ev, Ids};
use crate::scan::push_json_string;
use crate::translate::names::ToolNames;
use crate::translate::wire::{
    client_tool_name, messages_error_type, messages_stop, push_messages_usage, push_u64,
};
use crate::translate::{Session, Stop, Usage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    None,
    Text,
    Thinking,
    Tool,
}

/// The messages encoder's state.
pub(super) struct MessagesEncoder {
    id: String,
    model: String,
    names: ToolNames,
    started: bool,
    block: Block,
    /// The next block's index.
    next: u64,
    tool_args: bool,
    stop: Option<Stop>,
    usage: Usage,
}

impl MessagesEncoder {
    pub(super) fn new(session: &Session, ids: &Ids<'_>) -> MessagesEncoder {
        MessagesEncoder {
            id: format!("msg_{}", crate::translate::wire::id_hex(ids.trace_id)),
            model: session.model.clone(),
            names: session.tools.clone(),
            started: false,
            block: Block::None,
            next: 0,
            tool_args: false,
            stop: None,
            usage: Usage::default(),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        out.extend_from_slice(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"",
        );
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_json_string(out, &self.model);
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
        );
        let mut u = self.usage;
        u.output = u.output.min(1);
        push_messages_usage(out, &u);
        out.extend_from_slice(b"}}\n\n");
    }

    fn delta_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        push_u64(out, self.next - 1);
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
    }

    fn delta(&self, kind: &[u8], field: &[u8], v: &[u8], out: &mut Vec<u8>) {
        self.delta_head(out);
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field);
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\"}}\n\n");
    }

    fn open(&mut self, block: Block, out: &mut Vec<u8>) {
        self.start(out);
        self.end_block(out);
        self.block = block;
        out.extend_from_slice(
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":",
        );
        push_u64(out, self.next);
        self.next += 1;
        out.extend_from_slice(b",\"content_block\":");
        match block {
            Block::Text => out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}"),
            Block::Thinking => out
                .extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"),
            Block::Tool | Block::None => {}
        }
        if block != Block::Tool {
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn end_block(&mut self, out: &mut Vec<u8>) {
        if self.block == Block::None {
            return;
        }
        if self.block == Block::Tool && !self.tool_args {
            self.delta(b"input_json_delta", b"partial_json", b"{}", out);
        }
        out.extend_from_slice(
            b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
        );
        push_u64(out, self.next - 1);
        out.extend_from_slice(b"}\n\n");
        self.block = Block::None;
    }

    pub(super) fn on(&mut self, ev: Ev<'_>, out: &mut Vec<u8>) {
        match ev {
            Ev::Start => self.start(out),
            Ev::Text(t) => {
                if self.block != Block::Text {
                    self.open(Block::Text, out);
                }
                self.delta(b"text_delta", b"text", t, out);
            }
            Ev::Thinking(t) => {
                if self.block != Block::Thinking {
                    self.open(Block::Thinking, out);
                }
                self.delta(b"thinking_delta", b"thinking", t, out);
            }
            Ev::Signature(s) => {
                if self.block != Block::Thinking {
                    self.open(Block::Thinking, out);
                }
                self.delta(b"signature_delta", b"signature", s, out);
            }
            Ev::ToolStart { id, name } => {
                self.open(Block::Tool, out);
                self.tool_args = false;
                out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
                out.extend_from_slice(id);
                out.extend_from_slice(b"\",\"name\":\"");
                client_tool_name(&self.names, name).1.push(out);
                out.extend_from_slice(b"\",\"input\":{}}}\n\n");
            }
            Ev::ToolArgs(a) => {
                if self.block == Block::Tool {
                    self.tool_args = true;
                    self.delta(b"input_json_delta", b"partial_json", a, out);
                }
            }
            Ev::BlockEnd => self.end_block(out),
            Ev::Stop(s) => {
                self.end_block(out);
                self.stop = Some(s);
            }
            Ev::Usage(u) => self.usage = u,
            Ev::Error { kind, message } => {
                out.extend_from_slice(
                    b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"",
                );
                out.extend_from_slice(messages_error_type(kind).as_bytes());
                out.extend_from_slice(b"\",\"message\":\"");
                out.extend_from_slice(message);
                out.extend_from_slice(b"\"}}\n\n");
            }
            Ev::End => {
                self.start(out);
                self.end_block(out);
                out.extend_from_slice(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
                out.extend_from_slice(messages_stop(self.stop.unwrap_or(Stop::End)).as_bytes());
                out.extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":");
                push_messages_usage(out, &self.usage);
                out.extend_from_slice(
                    b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                );
            }
        }
    }
}
