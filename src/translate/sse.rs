//! The incremental SSE framer: bytes split anywhere in, whole events out.
//!
//! Follows the WHATWG HTML "server-sent events" parsing rules (§9.2.6): lines end in CRLF, LF
//! or CR (a CR at the end of one read and an LF at the start of the next are one line end); a
//! line starting with `:` is a comment; `field: value` with one optional space after the
//! colon; `data` lines of one event are joined with LF; a blank line dispatches the event if
//! it has data; a UTF-8 BOM opening the stream is skipped; `id` and `retry` are ignored (a
//! translator does not reconnect). One deliberate leniency: an event whose last line was
//! complete when the body ended is still dispatched by [`Framer::finish`] (an upstream that
//! closes right after `data: [DONE]\n` lost nothing), where the spec would drop it.
//!
//! Invariants: the output does not depend on how the input was split; the framer's buffers
//! are reused from event to event, so a running stream allocates only when an event is larger
//! than any before it. An event (its partial line plus data) past [`MAX_EVENT`] is refused.

use memchr::memchr2;

/// Largest event accepted, data and pending line together. Upstream events are a few hundred
/// bytes; a whole tool-call argument in one event stays far below this.
pub const MAX_EVENT: usize = 4 << 20;

/// Why framing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseError {
    /// An event grew past [`MAX_EVENT`].
    TooLarge,
}

/// The incremental framer of one stream.
#[derive(Debug, Default)]
pub struct Framer {
    /// The current line, when it started in an earlier read.
    line: Vec<u8>,
    /// The current event's `data`, lines joined with LF.
    data: Vec<u8>,
    /// The current event's `event` field.
    event: Vec<u8>,
    has_data: bool,
    /// The last line ended with CR: an LF opening the next read belongs to it.
    cr_pending: bool,
    /// Lines seen so far (the first one may open with a BOM).
    started: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Framer {
    /// A framer at the start of a stream.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Frames `input`, calling `on_event(event_name, data)` for each complete event in order.
    /// `on_event` returns false to stop framing (the rest of the input is dropped).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        on_event: &mut impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), SseError> {
        loop {
            if self.cr_pending {
                match input.first() {
                    None => return Ok(()),
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                }
                self.cr_pending = false;
            }
            let Some(k) = memchr2(b'\n', b'\r', input) else {
                if self.line.len() + input.len() + self.data.len() > MAX_EVENT {
                    return Err(SseError::TooLarge);
                }
                self.line.extend_from_slice(input);
                return Ok(());
            };
            self.cr_pending = input[k] == b'\r';
            let go = if self.line.is_empty() {
                self.on_line(&input[..k], on_event)
            } else {
                self.line.extend_from_slice(&input[..k]);
                let line = std::mem::take(&mut self.line);
                let go = self.on_line(&line, on_event);
                self.line = line;
                self.line.clear();
                go
            };
            if self.data.len() > MAX_EVENT {
                return Err(SseError::TooLarge);
            }
            input = &input[k + 1..];
            if !go {
                return Ok(());
            }
        }
    }

    /// Forgets the stream framed so far, keeping the buffers' capacity: the framer can then
    /// serve the next stream without allocating.
    pub fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.cr_pending = false;
        self.started = false;
    }

    /// The body ended: dispatches an event whose lines were all complete (see the module's
    /// note on leniency). A partial last line is dropped.
    pub fn finish(&mut self, on_event: &mut impl FnMut(&[u8], &[u8]) -> bool) {
        if self.line.is_empty() && self.has_data {
            self.has_data = false;
            on_event(&self.event, &self.data);
        }
        self.line.clear();
        self.data.clear();
        self.event.clear();
    }

    fn on_line(
        &mut self,
        mut line: &[u8],
        on_event: &mut impl FnMut(&[u8], &[u8]) -> bool,
    ) -> bool {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            let go = !self.has_data || on_event(&self.event, &self.data);
            self.has_data = false;
            self.data.clear();
            self.event.clear();
            return go;
        }
        if line[0] == b':' {
            return true;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_split(input: &[u8], at: &[usize]) -> Vec<(String, String)> {
        let mut f = Framer::new();
        let mut got = Vec::new();
        let mut cb = |e: &[u8], d: &[u8]| {
            got.push((
                String::from_utf8_lossy(e).into_owned(),
                String::from_utf8_lossy(d).into_owned(),
            ));
            true
        };
        let mut last = 0;
        for &a in at {
            f.feed(&input[last..a], &mut cb).unwrap();
            last = a;
        }
        f.feed(&input[last..], &mut cb).unwrap();
        f.finish(&mut cb);
        got
    }

    #[test]
    fn the_spec_rules_at_every_split() {
        let input = b"\xEF\xBB\xBF: comment\r\nevent: a\r\ndata: x\r\ndata:y\r\n\r\nid: 3\nretry: 5\n\ndata\n\ndata: z\r\revent: b\nevent: c\ndata: {\"k\":1}\n\ndata: tail\n";
        let want = vec![
            ("a".to_string(), "x\ny".to_string()),
            (String::new(), String::new()),
            (String::new(), "z".to_string()),
            ("c".to_string(), "{\"k\":1}".to_string()),
            (String::new(), "tail".to_string()),
        ];
        assert_eq!(frame_split(input, &[]), want);
        for i in 0..=input.len() {
            assert_eq!(frame_split(input, &[i]), want, "split at {i}");
        }
        let ones: Vec<usize> = (1..input.len()).collect();
        assert_eq!(frame_split(input, &ones), want);
    }

    #[test]
    fn a_partial_last_line_is_dropped_and_huge_events_refused() {
        assert!(frame_split(b"data: a\n\ndata: cut", &[]).len() == 1);
        let mut f = Framer::new();
        let big = vec![b'x'; MAX_EVENT + 1];
        assert_eq!(
            f.feed(&big, &mut |_: &[u8], _: &[u8]| true),
            Err(SseError::TooLarge)
        );
    }
}
