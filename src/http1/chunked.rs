//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), for request bodies
//! and upstream response bodies alike.
//!
//! The decoder is a byte-level state machine that never buffers: every input byte is
//! consumed as soon as it is seen (partial size lines, CRLFs and trailers live in the
//! state), so input may be split anywhere. It allocates nothing. Two entry points:
//! - [`ChunkedDecoder::decode_in_place`] compacts payload to the front of the caller's
//!   buffer (the relay: read, decode, write `buf[..payload]`, repeat);
//! - [`ChunkedDecoder::decode_into`] appends payload to a caller's `Vec` (the request body
//!   reader that collects a whole body).
//!
//! Strictness, RFC 9112 §7.1: `chunk-size = 1*HEXDIG`, nothing before it (no whitespace,
//! `+`, `-`, `0x`); after it only BWS followed by `;` and a chunk extension, which is
//! checked for control characters and otherwise ignored (§7.1.1); every line ends in CRLF,
//! a bare LF is an error; chunk data must be followed by CRLF. Trailer fields (§7.1.2) are
//! checked for shape (`token ":" value`, no obs-fold) and discarded: RFC 9110 §6.5.1 lets a
//! recipient drop them, and forwarding them would need a second parser to police them.
//!
//! Limits: [`MAX_CHUNK_LINE`] bytes per size line, [`MAX_TRAILER_BYTES`] for the whole
//! trailer section, chunk sizes must fit `u64`. The total body size is the caller's limit.

use std::ops::Range;

/// Longest chunk-size line accepted, extensions included, CRLF excluded. RFC 9112 §7.1.1
/// expects a server to bound chunk extensions; real clients send a few hex digits.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Largest trailer section accepted, final CRLF included (RFC 9112 §7.1.2).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a chunked body was refused. After an error the body boundary is lost: close the
/// connection (400 for a request, 502 for an upstream response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// The size line is not `1*HEXDIG [BWS ";" chunk-ext] CRLF`: empty, non-hex, `0x`,
    /// a sign, whitespace before the size or not followed by `;`, a control byte in the
    /// extension, or a bare LF.
    BadSizeLine,
    /// The size line is longer than [`MAX_CHUNK_LINE`].
    LineTooLong,
    /// The chunk size does not fit `u64`.
    SizeOverflow,
    /// Chunk data is not followed by CRLF.
    MissingCrlf,
    /// The trailer section is longer than [`MAX_TRAILER_BYTES`].
    TrailerTooLarge,
    /// A trailer line is not `token ":" value CRLF`, folds, or ends in a bare LF; or the
    /// final CRLF is malformed.
    BadTrailer,
}

/// The outcome of one decode call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Decoded {
    /// Payload bytes produced: at `buf[..payload]` for `decode_in_place`, or appended
    /// to the output for `decode_into`.
    pub payload: usize,
    /// Input bytes consumed. Equal to the input length unless `done`; when `done`, the
    /// bytes after `consumed` belong to the next message and are not touched.
    pub consumed: usize,
    /// The last chunk, trailers and final CRLF have been seen: the body is complete.
    pub done: bool,
}

/// Where in the chunked grammar the next byte belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading `chunk-size` hex digits (none yet when `digits == 0`).
    Size,
    /// BWS after the size; only `;` or more whitespace may follow.
    SizeWs,
    /// Inside a chunk extension, until CR.
    Ext,
    /// CR of the size line seen, LF must follow.
    SizeLf,
    /// Inside chunk data, `remaining > 0` bytes to go.
    Data,
    /// Chunk data done, CR must follow.
    DataCr,
    /// CR after chunk data seen, LF must follow.
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value, until CR.
    TrailerValue,
    /// CR of a trailer line seen, LF must follow.
    TrailerLf,
    /// CR of the final empty line seen, LF must follow.
    EndLf,
    /// Body complete.
    Done,
    /// An error was returned; every later call returns it again.
    Failed(ChunkError),
}

/// Incremental chunked-body decoder. Create one per body; see the module docs.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being parsed in `Size`, data bytes left in `Data`.
    size: u64,
    /// Hex digits seen in the current size line.
    digits: u32,
    /// Bytes of the current size line so far (for [`MAX_CHUNK_LINE`]).
    line_len: usize,
    /// Bytes of the trailer section so far (for [`MAX_TRAILER_BYTES`]).
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder positioned at the first chunk-size line.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            line_len: 0,
            trailer_len: 0,
        }
    }

    /// True once the whole body, trailers and final CRLF included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `buf` in place, moving payload bytes to the front (memmove, no second buffer).
    ///
    /// After the call `buf[..payload]` is payload and, if `done`, `buf[consumed..]` is the
    /// start of the next message (pipelined bytes), untouched. If not `done`, every byte was
    /// consumed (`consumed == buf.len()`), the decoder keeps any partial line in its state,
    /// and the whole buffer may be reused. A relay loop therefore reads:
    ///
    /// ```
    /// # use switchyard::http1::ChunkedDecoder;
    /// let mut dec = ChunkedDecoder::new();
    /// let mut buf = b"3\r\nabc\r\n0\r\n\r\nNEXT".to_vec();
    /// let d = dec.decode_in_place(&mut buf).unwrap();
    /// assert_eq!(&buf[..d.payload], b"abc"); // forward these
    /// assert!(d.done);
    /// buf.drain(..d.consumed); // keep the pipelined tail at the front
    /// assert_eq!(buf, b"NEXT");
    /// ```
    pub fn decode_in_place(&mut self, buf: &mut [u8]) -> Result<Decoded, ChunkError> {
        let mut pos = 0;
        let mut out = 0;
        while let Some(data) = self.advance(buf, &mut pos)? {
            let n = data.len();
            buf.copy_within(data, out);
            out += n;
        }
        Ok(Decoded {
            payload: out,
            consumed: pos,
            done: self.is_done(),
        })
    }

    /// Decodes `input`, appending payload to `out` (which grows only as the caller's
    /// capacity requires; reserve ahead to avoid reallocation). Returns `(consumed, done)`
    /// with the same meaning as [`Decoded`]: `consumed == input.len()` unless `done`.
    pub fn decode_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), ChunkError> {
        let mut pos = 0;
        while let Some(data) = self.advance(input, &mut pos)? {
            out.extend_from_slice(&input[data]);
        }
        Ok((pos, self.is_done()))
    }

    /// Consumes framing bytes from `buf[*pos..]` until it reaches chunk data, which it
    /// returns as a range (and consumes), or runs out of input, or the body ends (`None`).
    fn advance(&mut self, buf: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>, ChunkError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        match self.step(buf, pos) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn step(&mut self, buf: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>, ChunkError> {
        while *pos < buf.len() {
            if self.state == State::Data {
                let start = *pos;
                let avail = (buf.len() - start) as u64;
                let n = self.size.min(avail) as usize;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                *pos += n;
                return Ok(Some(start..start + n));
            }
            if self.state == State::Done {
                return Ok(None);
            }
            let b = buf[*pos];
            *pos += 1;
            self.byte(b)?;
        }
        Ok(None)
    }

    /// Feeds one framing byte (any state but `Data`, `Done`, `Failed`).
    fn byte(&mut self, b: u8) -> Result<(), ChunkError> {
        use ChunkError as E;
        match self.state {
            State::Size | State::SizeWs | State::Ext => {
                self.line_len += 1;
                if self.line_len > MAX_CHUNK_LINE && b != b'\r' {
                    return Err(E::LineTooLong);
                }
                self.size_line_byte(b)
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(E::BadSizeLine);
                }
                self.line_len = 0;
                self.digits = 0;
                self.state = if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
                Ok(())
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(E::MissingCrlf);
                }
                self.state = State::DataLf;
                Ok(())
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(E::MissingCrlf);
                }
                self.state = State::Size;
                Ok(())
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILER_BYTES {
                    return Err(E::TrailerTooLarge);
                }
                self.trailer_byte(b)
            }
            // `step` handles these without calling us.
            State::Data | State::Done => Ok(()),
            State::Failed(e) => Err(e),
        }
    }

    fn size_line_byte(&mut self, b: u8) -> Result<(), ChunkError> {
        use ChunkError as E;
        match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                if self.size > u64::MAX >> 4 {
                    return Err(E::SizeOverflow);
                }
                self.size = (self.size << 4) | u64::from(hex_value(b));
                self.digits += 1;
            }
            // Everything else needs at least one digit first (no leading BWS, sign or 0x).
            (State::Size, _) if self.digits == 0 => return Err(E::BadSizeLine),
            (State::Size, b'\r') | (State::Ext, b'\r') => self.state = State::SizeLf,
            (State::Size | State::SizeWs, b';') => self.state = State::Ext,
            (State::Size | State::SizeWs, b' ' | b'\t') => self.state = State::SizeWs,
            // chunk-ext bytes: anything but controls (HTAB allowed), §7.1.1 / RFC 9110 §5.6.
            (State::Ext, _) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {}
            _ => return Err(E::BadSizeLine),
        }
        Ok(())
    }

    fn trailer_byte(&mut self, b: u8) -> Result<(), ChunkError> {
        let next = match (self.state, b) {
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                State::TrailerValue
            }
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            // Bare LF, obs-fold (a line starting with SP/HTAB), empty name, whitespace
            // before the colon, controls in the value (RFC 9112 §5, §7.1.2).
            _ => return Err(ChunkError::BadTrailer),
        };
        self.state = next;
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in one call with `decode_into`.
    fn whole(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut out = Vec::new();
        let (consumed, done) = ChunkedDecoder::new().decode_into(input, &mut out)?;
        Ok((out, consumed, done))
    }

    /// Decodes `input` one byte per `decode_in_place` call.
    fn bytewise(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut consumed = 0;
        for &b in input {
            let mut one = [b];
            let d = dec.decode_in_place(&mut one)?;
            out.extend_from_slice(&one[..d.payload]);
            consumed += d.consumed;
            if d.done {
                break;
            }
        }
        Ok((out, consumed, dec.is_done()))
    }

    #[test]
    fn valid_bodies() {
        // (input, payload, consumed)
        let cases: &[(&[u8], &[u8], usize)] = &[
            (b"0\r\n\r\n", b"", 5),
            (b"3\r\nabc\r\n0\r\n\r\n", b"abc", 13),
            (b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", b"abcdefg", 22),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 20),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 20),
            (b"0003\r\nabc\r\n0\r\n\r\n", b"abc", 16),
            // Extensions, with and without BWS and values (RFC 9112 §7.1.1).
            (b"3;name=val\r\nabc\r\n0;last\r\n\r\n", b"abc", 27),
            (b"3 ;x=\"q v\"\r\nabc\r\n0\r\n\r\n", b"abc", 22),
            (b"3\t; a ; b=c\r\nabc\r\n0\r\n\r\n", b"abc", 23),
            // Trailers are checked and dropped.
            (b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-B:\r\n\r\n", b"abc", 29),
            // Pipelined bytes after the end are left alone.
            (b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", b"abc", 13),
            (b"0\r\nT: v\r\n\r\n0\r\n\r\n", b"", 11),
            // Payload bytes that look like framing.
            (b"5\r\n0\r\n\r\n\r\n0\r\n\r\n", b"0\r\n\r\n", 15),
        ];
        for (input, payload, consumed) in cases {
            let name = String::from_utf8_lossy(input);
            let want = Ok((payload.to_vec(), *consumed, true));
            assert_eq!(whole(input), want, "whole {name:?}");
            assert_eq!(bytewise(input), want, "bytewise {name:?}");
            // In place, all at once.
            let mut buf = input.to_vec();
            let d = ChunkedDecoder::new().decode_in_place(&mut buf).unwrap();
            assert_eq!(&buf[..d.payload], *payload, "in place {name:?}");
            assert_eq!((d.consumed, d.done), (*consumed, true));
            assert_eq!(&buf[d.consumed..], &input[*consumed..]);
        }
    }

    #[test]
    fn every_split_point_agrees() {
        let input: &[u8] =
            b"5;e=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nNEXT";
        let want = whole(input).unwrap();
        for cut in 0..=input.len() {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            let (c1, d1) = dec.decode_into(&input[..cut], &mut out).unwrap();
            assert!(d1 || c1 == cut, "not done must consume everything");
            let (c2, _) = dec.decode_into(&input[c1..], &mut out).unwrap();
            assert_eq!((out.clone(), c1 + c2, dec.is_done()), want, "cut {cut}");
        }
    }

    #[test]
    fn incomplete_is_not_done() {
        for input in [
            &b""[..],
            b"3",
            b"3\r",
            b"3\r\nab",
            b"3\r\nabc\r",
            b"0\r\n",
            b"0\r\nT: v\r\n",
        ] {
            let (_, consumed, done) = whole(input).unwrap();
            assert_eq!((consumed, done), (input.len(), false), "{input:?}");
        }
    }

    #[test]
    fn bad_bodies() {
        use ChunkError as E;
        let long_ext = {
            let mut v = b"1;".to_vec();
            v.resize(MAX_CHUNK_LINE, b'x');
            v.extend_from_slice(b"y\r\na\r\n0\r\n\r\n");
            v
        };
        let big_trailer = {
            let mut v = b"0\r\nX: ".to_vec();
            v.resize(MAX_TRAILER_BYTES + 10, b'v');
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        let cases: Vec<(&[u8], ChunkError)> = vec![
            (b"xyz\r\n", E::BadSizeLine),
            (b"-1\r\n", E::BadSizeLine),
            (b"+1\r\n", E::BadSizeLine),
            (b"\r\n", E::BadSizeLine),
            (b"0x10\r\n", E::BadSizeLine),
            (b" 5\r\nhello\r\n", E::BadSizeLine),
            (b"5 \r\nhello\r\n", E::BadSizeLine),
            (b"5 5\r\n", E::BadSizeLine),
            (b"5\nhello\r\n", E::BadSizeLine),
            (b"5;x\nhello\r\n", E::BadSizeLine),
            (b"5\rhello", E::BadSizeLine),
            (b"5;a\0b\r\n", E::BadSizeLine),
            (b"3\r\nabc\r\n;x\r\n", E::BadSizeLine),
            (b"3\r\nabcd\r\n", E::MissingCrlf),
            (b"3\r\nabc\n0\r\n\r\n", E::MissingCrlf),
            (b"3\r\nabc\rX", E::MissingCrlf),
            (b"10000000000000000\r\n", E::SizeOverflow),
            (b"ffffffffffffffff0\r\n", E::SizeOverflow),
            (&long_ext, E::LineTooLong),
            (&big_trailer, E::TrailerTooLarge),
            (b"0\r\n\n", E::BadTrailer),
            (b"0\r\nX: v\n\r\n", E::BadTrailer),
            (b"0\r\nX: v\r\n folded\r\n\r\n", E::BadTrailer),
            (b"0\r\nX : v\r\n\r\n", E::BadTrailer),
            (b"0\r\n: v\r\n\r\n", E::BadTrailer),
            (b"0\r\nnocolon\r\n\r\n", E::BadTrailer),
            (b"0\r\n\rX", E::BadTrailer),
        ];
        for (input, want) in &cases {
            let name = String::from_utf8_lossy(input);
            assert_eq!(whole(input), Err(*want), "whole {name:?}");
            assert_eq!(bytewise(input), Err(*want), "bytewise {name:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        // A size line of exactly MAX_CHUNK_LINE bytes, and the largest size, are fine.
        let mut line = b"1;".to_vec();
        line.resize(MAX_CHUNK_LINE, b'x');
        line.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
        assert_eq!(whole(&line).unwrap().0, b"a");
        let mut dec = ChunkedDecoder::new();
        let d = dec
            .decode_in_place(&mut b"ffffffffffffffff\r\nab".to_vec())
            .unwrap();
        assert_eq!((d.payload, d.done), (2, false));
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        assert_eq!(
            dec.decode_into(b"z", &mut out),
            Err(ChunkError::BadSizeLine)
        );
        assert_eq!(
            dec.decode_into(b"0\r\n\r\n", &mut out),
            Err(ChunkError::BadSizeLine)
        );
        assert!(!dec.is_done());
    }

    #[test]
    fn done_consumes_nothing_more() {
        let mut dec = ChunkedDecoder::new();
        let mut buf = b"0\r\n\r\n".to_vec();
        assert!(dec.decode_in_place(&mut buf).unwrap().done);
        let mut next = b"1\r\na\r\n".to_vec();
        let d = dec.decode_in_place(&mut next).unwrap();
        assert_eq!(
            d,
            Decoded {
                payload: 0,
                consumed: 0,
                done: true
            }
        );
    }

    #[test]
    fn relay_loop_with_reused_buffer() {
        // What the relay does: read into a fixed buffer, decode in place, forward, repeat.
        let body: &[u8] =
            b"4\r\nWiki\r\n6;x=y\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nA: b\r\n\r\nTAIL";
        for read_size in 1..=body.len() {
            let mut dec = ChunkedDecoder::new();
            let mut buf = vec![0u8; read_size];
            let mut forwarded = Vec::new();
            let mut tail = Vec::new();
            for piece in body.chunks(read_size) {
                if dec.is_done() {
                    tail.extend_from_slice(piece);
                    continue;
                }
                buf[..piece.len()].copy_from_slice(piece);
                let d = dec.decode_in_place(&mut buf[..piece.len()]).unwrap();
                forwarded.extend_from_slice(&buf[..d.payload]);
                if d.done {
                    tail.extend_from_slice(&buf[d.consumed..piece.len()]);
                } else {
                    assert_eq!(d.consumed, piece.len());
                }
            }
            assert_eq!(
                forwarded, b"Wikipedia in \r\n\r\nchunks.",
                "read {read_size}"
            );
            assert_eq!(tail, b"TAIL", "read {read_size}");
        }
    }
}
