//! OpenAI chat completion chunks (`data: {chat.completion.chunk}` ... `data: [DONE]`) into
//! pivot events.
//!
//! Reads `choices[0].delta` (`content`, `refusal`, `reasoning_content` as DeepSeek and vLLM
//! send it, or `reasoning` as vLLM's newer releases and OpenRouter do, `tool_calls`),
//! `choices[0].finish_reason`, `usage` (the chunk with `choices: []` that
//! `stream_options.include_usage` asks for) and `error` (an upstream failure mid-stream).
//! Within a chunk, content comes before the finish reason and the usage last, whatever the key
//! order. Interleaved parallel tool calls are serialised as the module above describes.

use smallvec::SmallVec;

use super::{BadEvent, Ev};
use crate::scan::members::{as_u64, elements, members, str_content};
use crate::translate::wire::{parse_chat_finish, read_chat_usage};
use crate::translate::Usage;

/// A tool call not streamed live yet: what has arrived of it.
#[derive(Debug, Default)]
struct Held {
    active: bool,
    index: u32,
    id: Vec<u8>,
    name: Vec<u8>,
    args: Vec<u8>,
}

/// The chat decoder's state.
#[derive(Debug, Default)]
pub(super) struct ChatDecoder {
    started: bool,
    stopped: bool,
    /// The upstream `tool_calls[].index` whose block is open and streaming.
    live: Option<u32>,
    /// Held tool calls; inactive slots keep their buffers for reuse.
    held: SmallVec<[Held; 2]>,
    usage: Usage,
}

fn non_empty_str(v: Option<&[u8]>) -> Option<&[u8]> {
    v.and_then(str_content).filter(|s| !s.is_empty())
}

impl ChatDecoder {
    /// Decodes one event's data.
    pub(super) fn decode(
        &mut self,
        data: &[u8],
        emit: &mut impl FnMut(Ev<'_>),
    ) -> Result<(), BadEvent> {
        if data.trim_ascii() == b"[DONE]" {
            self.flush(emit);
            emit(Ev::End);
            return Ok(());
        }
        let (mut choices, mut usage, mut error) = (None, None, None);
        for m in members(data).ok_or(BadEvent)? {
            let (k, v) = m.map_err(|_| BadEvent)?;
            match k {
                b"choices" => choices = Some(v),
                b"usage" => usage = Some(v),
                b"error" if v != b"null" => error = Some(v),
                _ => {}
            }
        }
        if let Some(err) = error {
            let (kind, message) = crate::translate::wire::read_error_object(err);
            emit(Ev::Error {
                kind: kind.unwrap_or(b"api_error"),
                message: message.unwrap_or(b"the upstream reported an error"),
            });
            return Ok(());
        }
        if !self.started {
            self.started = true;
            emit(Ev::Start);
        }
        if let Some(els) = choices.and_then(elements) {
            for choice in els {
                let choice = choice.map_err(|_| BadEvent)?;
                self.choice(choice, emit)?;
            }
        }
        if let Some(u) = usage.filter(|u| u.first() == Some(&b'{')) {
            read_chat_usage(u, &mut self.usage);
            emit(Ev::Usage(self.usage));
        }
        Ok(())
    }

    fn choice(&mut self, choice: &[u8], emit: &mut impl FnMut(Ev<'_>)) -> Result<(), BadEvent> {
        let (mut delta, mut finish) = (None, None);
        for m in members(choice).ok_or(BadEvent)? {
            let (k, v) = m.map_err(|_| BadEvent)?;
            match k {
                // `n` > 1 is refused when the request is translated: only choice 0 is read.
                b"index" if as_u64(v) != Some(0) => return Ok(()),
                b"delta" => delta = Some(v),
                b"finish_reason" => finish = str_content(v),
                _ => {}
            }
        }
        if let Some(delta) = delta.and_then(members) {
            let (mut text, mut refusal, mut rc, mut reasoning, mut tools) =
                (None, None, None, None, None);
            for m in delta {
                let (k, v) = m.map_err(|_| BadEvent)?;
                match k {
                    b"content" => text = non_empty_str(Some(v)),
                    b"refusal" => refusal = non_empty_str(Some(v)),
                    b"reasoning_content" => rc = non_empty_str(Some(v)),
                    b"reasoning" => reasoning = non_empty_str(Some(v)),
                    b"tool_calls" => tools = Some(v),
                    _ => {}
                }
            }
            // Some servers send the same text as both `reasoning_content` and `reasoning`.
            if let Some(t) = rc.or(reasoning) {
                self.close_live();
                emit(Ev::Thinking(t));
            }
            for t in [text, refusal].into_iter().flatten() {
                self.close_live();
                emit(Ev::Text(t));
            }
            if let Some(els) = tools.and_then(elements) {
                for (pos, call) in els.enumerate() {
                    self.tool_call(pos, call.map_err(|_| BadEvent)?, emit)?;
                }
            }
        }
        if let Some(f) = finish.filter(|f| !f.is_empty()) {
            if !self.stopped {
                self.flush(emit);
                self.stopped = true;
                emit(Ev::Stop(parse_chat_finish(f)));
            }
        }
        Ok(())
    }

    /// Text after a tool call closes it (the pivot keeps one block open).
    fn close_live(&mut self) {
        self.live = None;
    }

    fn tool_call(
        &mut self,
        pos: usize,
        call: &[u8],
        emit: &mut impl FnMut(Ev<'_>),
    ) -> Result<(), BadEvent> {
        let (mut index, mut id, mut name, mut args) = (pos as u32, None, None, None);
        for m in members(call).ok_or(BadEvent)? {
            let (k, v) = m.map_err(|_| BadEvent)?;
            match k {
                b"index" => index = as_u64(v).ok_or(BadEvent)?.min(u32::MAX as u64) as u32,
                b"id" => id = non_empty_str(Some(v)),
                b"function" => {
                    for f in members(v).ok_or(BadEvent)? {
                        let (k, v) = f.map_err(|_| BadEvent)?;
                        match k {
                            b"name" => name = non_empty_str(Some(v)),
                            b"arguments" => args = non_empty_str(Some(v)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if self.live == Some(index) {
            if let Some(a) = args {
                emit(Ev::ToolArgs(a));
            }
            return Ok(());
        }
        let slot = match self.held.iter().position(|h| h.active && h.index == index) {
            Some(s) => s,
            None => {
                let s = match self.held.iter().position(|h| !h.active) {
                    Some(s) => s,
                    None => {
                        self.held.push(Held::default());
                        self.held.len() - 1
                    }
                };
                let h = &mut self.held[s];
                h.active = true;
                h.index = index;
                h.id.clear();
                h.name.clear();
                h.args.clear();
                s
            }
        };
        let h = &mut self.held[slot];
        if let Some(id) = id.filter(|_| h.id.is_empty()) {
            h.id.extend_from_slice(id);
        }
        if let Some(name) = name.filter(|_| h.name.is_empty()) {
            h.name.extend_from_slice(name);
        }
        if let Some(a) = args {
            h.args.extend_from_slice(a);
        }
        if self.live.is_none() && !self.stopped && !h.name.is_empty() {
            self.live = Some(index);
            Self::open(h, emit);
        }
        Ok(())
    }

    fn open(h: &mut Held, emit: &mut impl FnMut(Ev<'_>)) {
        h.active = false;
        emit(Ev::ToolStart {
            id: &h.id,
            name: &h.name,
        });
        if !h.args.is_empty() {
            emit(Ev::ToolArgs(&h.args));
        }
    }

    /// The choice finished: the held tool calls, in index order.
    fn flush(&mut self, emit: &mut impl FnMut(Ev<'_>)) {
        self.live = None;
        while let Some(s) = (0..self.held.len())
            .filter(|&s| self.held[s].active)
            .min_by_key(|&s| self.held[s].index)
        {
            Self::open(&mut self.held[s], emit);
        }
    }
}
