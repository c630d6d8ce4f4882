//! Pivot events as OpenAI chat completion chunks.
//!
//! Every chunk is `data: {"id":"chatcmpl-<trace id>","object":"chat.completion.chunk",
//! "created":..,"model":..,"choices":[{"index":0,"delta":{..},"finish_reason":..}]}`; the
//! prefix is written once per stream and copied. The first delta carries `"role":"assistant"`;
//! text is `content`, reasoning `reasoning_content` (DeepSeek's field, which the OpenAI SDKs
//! pass through and LiteLLM and most agents read), a thinking signature a LiteLLM-style
//! `thinking_blocks` delta; tool calls are numbered from 0 on their own (`tool_calls[].index`
//! counts tool calls only, whatever Anthropic block index they had), the first chunk of each
//! carries `id`, `type` and `function.name`, later ones argument fragments; a call whose
//! arguments never came gets `"{}"`. The usage chunk (`choices: []`) is written only when the
//! client asked for it (`stream_options.include_usage`), then `data: [DONE]`. An upstream
//! error is `data: {"error":{..}}` and no `[DONE]` follows.

use super::Ev;
use crate::scan::push_json_string;
use crate::translate::names::ToolNames;
use crate::translate::wire::{
    chat_finish, client_tool_name, openai_error_type, push_chat_usage, push_u64,
};
use crate::translate::{Session, Stop, Usage};

use super::Ids;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    None,
    Text,
    Tool,
}

/// The chat encoder's state.
pub(super) struct ChatEncoder {
    /// `data: {"id":..,"object":..,"created":..,"model":..,"choices":[` written once.
    prefix: Vec<u8>,
    names: ToolNames,
    include_usage: bool,
    role_sent: bool,
    block: Block,
    /// Tool calls opened so far (the next one's `index`).
    tools: u32,
    tool_args: bool,
    stopped: bool,
    usage: Option<Usage>,
}

impl ChatEncoder {
    pub(super) fn new(session: &Session, ids: &Ids<'_>) -> ChatEncoder {
        let mut prefix = Vec::with_capacity(128 + session.model.len());
        prefix.extend_from_slice(b"data: {\"id\":\"chatcmpl-");
        crate::scan::push_json_escaped(&mut prefix, ids.trace_id);
        prefix.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
        push_u64(&mut prefix, ids.created);
        prefix.extend_from_slice(b",\"model\":");
        push_json_string(&mut prefix, &session.model);
        prefix.extend_from_slice(b",\"choices\":[");
        ChatEncoder {
            prefix,
            names: session.tools.clone(),
            include_usage: session.include_usage,
            role_sent: false,
            block: Block::None,
            tools: 0,
            tool_args: false,
            stopped: false,
            usage: None,
        }
    }

    /// Opens a chunk up to the inside of its `delta` object.
    fn open(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{");
        if !self.role_sent {
            self.role_sent = true;
            out.extend_from_slice(b"\"role\":\"assistant\",");
        }
    }

    fn close(out: &mut Vec<u8>, finish: Option<&str>) {
        out.extend_from_slice(b"},\"finish_reason\":");
        match finish {
            Some(f) => {
                out.push(b'"');
                out.extend_from_slice(f.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    fn string_delta(&mut self, field: &[u8], v: &[u8], out: &mut Vec<u8>) {
        self.open(out);
        out.push(b'"');
        out.extend_from_slice(field);
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(v);
        out.push(b'"');
        Self::close(out, None);
    }

    fn args_delta(&mut self, v: &[u8], out: &mut Vec<u8>) {
        self.tool_args = true;
        self.open(out);
        out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
        push_u64(out, u64::from(self.tools - 1));
        out.extend_from_slice(b",\"function\":{\"arguments\":\"");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\"}}]");
        Self::close(out, None);
    }

    /// Ends the current block: a tool call without arguments gets `{}`.
    fn end_block(&mut self, out: &mut Vec<u8>) {
        if self.block == Block::Tool && !self.tool_args {
            self.args_delta(b"{}", out);
        }
        self.block = Block::None;
    }

    pub(super) fn on(&mut self, ev: Ev<'_>, out: &mut Vec<u8>) {
        match ev {
            Ev::Start => {
                if !self.role_sent {
                    self.open(out);
                    out.extend_from_slice(b"\"content\":\"\"");
                    Self::close(out, None);
                }
            }
            Ev::Text(t) => {
                if self.block == Block::Tool {
                    self.end_block(out);
                }
                self.block = Block::Text;
                self.string_delta(b"content", t, out);
            }
            Ev::Thinking(t) => {
                if self.block == Block::Tool {
                    self.end_block(out);
                }
                self.block = Block::Text;
                self.string_delta(b"reasoning_content", t, out);
            }
            Ev::Signature(s) => {
                self.open(out);
                out.extend_from_slice(
                    b"\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"",
                );
                out.extend_from_slice(s);
                out.extend_from_slice(b"\"}]");
                Self::close(out, None);
            }
            Ev::ToolStart { id, name } => {
                self.end_block(out);
                self.block = Block::Tool;
                self.tool_args = false;
                self.tools += 1;
                self.open(out);
                out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
                push_u64(out, u64::from(self.tools - 1));
                out.extend_from_slice(b",\"id\":\"");
                out.extend_from_slice(id);
                out.extend_from_slice(b"\",\"type\":\"function\",\"function\":{\"name\":\"");
                client_tool_name(&self.names, name).1.push(out);
                out.extend_from_slice(b"\",\"arguments\":\"\"}}]");
                Self::close(out, None);
            }
            Ev::ToolArgs(a) => {
                if self.block == Block::Tool {
                    self.args_delta(a, out);
                }
            }
            Ev::BlockEnd => self.end_block(out),
            Ev::Stop(stop) => self.stop(stop, out),
            Ev::Usage(u) => self.usage = Some(u),
            Ev::Error { kind, message } => {
                out.extend_from_slice(b"data: {\"error\":{\"message\":\"");
                out.extend_from_slice(message);
                out.extend_from_slice(b"\",\"type\":\"");
                out.extend_from_slice(openai_error_type(kind).as_bytes());
                out.extend_from_slice(b"\",\"param\":null,\"code\":null}}\n\n");
            }
            Ev::End => {
                if !self.stopped {
                    self.stop(Stop::End, out);
                }
                if let (true, Some(u)) = (self.include_usage, self.usage) {
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(b"],\"usage\":");
                    push_chat_usage(out, &u);
                    out.extend_from_slice(b"}\n\n");
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
        }
    }

    fn stop(&mut self, stop: Stop, out: &mut Vec<u8>) {
        if self.stopped {
            return;
        }
        self.end_block(out);
        self.stopped = true;
        self.open(out);
        if out.last() == Some(&b',') {
            out.pop();
        }
        Self::close(out, Some(chat_finish(stop)));
    }
}
