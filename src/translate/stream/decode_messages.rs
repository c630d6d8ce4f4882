//! Anthropic messages stream events into pivot events.
//!
//! The events (Anthropic "Streaming Messages"): `message_start` (the message with its
//! `usage`: input and cache tokens), `content_block_start` (`text`, `thinking`, `tool_use`
//! with `id` and `name`; others such as `server_tool_use` or `redacted_thinking` are skipped
//! with their deltas), `content_block_delta` (`text_delta`, `thinking_delta`,
//! `signature_delta`, `input_json_delta`), `content_block_stop`, `message_delta`
//! (`stop_reason` and cumulative `usage`), `message_stop`, `ping`, `error`. The event is
//! told by the data's `type` (the `event:` line repeats it; it is used when `type` is
//! missing). Usage counts are running totals: `message_delta` replaces what `message_start`
//! said, it is never added to it.

use super::{BadEvent, Ev};
use crate::scan::members::{get, members, str_content};
use crate::translate::wire::{parse_messages_stop, read_error_object, MessagesUsage};

/// The messages decoder's state.
#[derive(Debug, Default)]
pub(super) struct MessagesDecoder {
    usage: MessagesUsage,
    /// The open upstream block is one whose deltas are translated.
    block_kept: bool,
}

impl MessagesDecoder {
    /// Decodes one event (its SSE `event` name and data).
    pub(super) fn decode(
        &mut self,
        name: &[u8],
        data: &[u8],
        emit: &mut impl FnMut(Ev<'_>),
    ) -> Result<(), BadEvent> {
        let (mut ty, mut message, mut block, mut delta, mut usage, mut error) =
            (None, None, None, None, None, None);
        for m in members(data).ok_or(BadEvent)? {
            let (k, v) = m.map_err(|_| BadEvent)?;
            match k {
                b"type" => ty = str_content(v),
                b"message" => message = Some(v),
                b"content_block" => block = Some(v),
                b"delta" => delta = Some(v),
                b"usage" => usage = Some(v),
                b"error" => error = Some(v),
                _ => {}
            }
        }
        match ty.unwrap_or(name) {
            b"message_start" => {
                if let Some(u) = message.and_then(|m| get(m, b"usage")) {
                    self.usage.read(u);
                    emit(Ev::Usage(self.usage.usage()));
                }
                emit(Ev::Start);
            }
            b"content_block_start" => {
                let block = block.ok_or(BadEvent)?;
                let (mut kind, mut id, mut name, mut text) = (None, None, None, None);
                for m in members(block).ok_or(BadEvent)? {
                    let (k, v) = m.map_err(|_| BadEvent)?;
                    match k {
                        b"type" => kind = str_content(v),
                        b"id" => id = str_content(v),
                        b"name" => name = str_content(v),
                        b"text" | b"thinking" => text = str_content(v),
                        _ => {}
                    }
                }
                self.block_kept = true;
                match kind {
                    Some(b"text") => {
                        if let Some(t) = text.filter(|t| !t.is_empty()) {
                            emit(Ev::Text(t));
                        }
                    }
                    Some(b"thinking") => {
                        if let Some(t) = text.filter(|t| !t.is_empty()) {
                            emit(Ev::Thinking(t));
                        }
                    }
                    Some(b"tool_use") => emit(Ev::ToolStart {
                        id: id.unwrap_or(b""),
                        name: name.unwrap_or(b""),
                    }),
                    _ => self.block_kept = false,
                }
            }
            b"content_block_delta" => {
                if !self.block_kept {
                    return Ok(());
                }
                let delta = delta.ok_or(BadEvent)?;
                let (mut kind, mut value) = (None, None);
                for m in members(delta).ok_or(BadEvent)? {
                    let (k, v) = m.map_err(|_| BadEvent)?;
                    match k {
                        b"type" => kind = str_content(v),
                        b"text" | b"thinking" | b"signature" | b"partial_json" => {
                            value = str_content(v)
                        }
                        _ => {}
                    }
                }
                let Some(v) = value.filter(|v| !v.is_empty()) else {
                    return Ok(());
                };
                match kind {
                    Some(b"text_delta") => emit(Ev::Text(v)),
                    Some(b"thinking_delta") => emit(Ev::Thinking(v)),
                    Some(b"signature_delta") => emit(Ev::Signature(v)),
                    Some(b"input_json_delta") => emit(Ev::ToolArgs(v)),
                    _ => {}
                }
            }
            b"content_block_stop" => {
                if self.block_kept {
                    emit(Ev::BlockEnd);
                }
                self.block_kept = false;
            }
            b"message_delta" => {
                if let Some(u) = usage {
                    self.usage.read(u);
                    emit(Ev::Usage(self.usage.usage()));
                }
                if let Some(r) = delta
                    .and_then(|d| get(d, b"stop_reason"))
                    .and_then(str_content)
                {
                    emit(Ev::Stop(parse_messages_stop(r)));
                }
            }
            b"message_stop" => emit(Ev::End),
            b"error" => {
                let (kind, message) = error.map(read_error_object).unwrap_or((None, None));
                emit(Ev::Error {
                    kind: kind.unwrap_or(b"api_error"),
                    message: message.unwrap_or(b"the upstream reported an error"),
                });
            }
            // `ping` and event types added later are skipped, as Anthropic's versioning
            // policy asks of clients.
            _ => {}
        }
        Ok(())
    }
}
