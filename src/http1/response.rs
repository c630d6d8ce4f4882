//! Strict upstream response head parsing (RFC 9112 §4, §6.3), for the upstream client.
//!
//! Same shape and strictness as the request side (`head`): offsets, not borrows; bare LF,
//! obs-fold and versions other than 1.0/1.1 rejected; the body length decided by the rules
//! of RFC 9112 §6.3 but with every ambiguity an error (a 502), not a guess:
//! - `Content-Length` with `Transfer-Encoding` is an error (§6.3 rule 3 would let TE win);
//! - a `Transfer-Encoding` whose final coding is not `chunked` is an error, although §6.3
//!   rule 4 would read it until close: we would have to forward an encoded body we cannot
//!   re-frame, and it is never what an LLM provider sends;
//! - `Transfer-Encoding` on an HTTP/1.0 response is an error (§6.1).
//!
//! A 1xx response is returned as is (framing `None`) so the caller can skip `head_len`
//! bytes and parse again; 101 is refused since we never send `Upgrade`.

use std::mem::MaybeUninit;

use super::framing::{self, BodyFraming};
use super::head::{self, HeadError, HeaderSpans, Span, DEFAULT_MAX_HEADERS};

/// How an upstream response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: response to HEAD, 1xx, 204 or 304 (§6.3 rules 1 and 2).
    None,
    /// Exactly this many bytes (§6.3 rule 6).
    Length(u64),
    /// Chunked transfer coding (§6.3 rule 4); decode with `ChunkedDecoder`.
    Chunked,
    /// No length: the body runs until the upstream closes (§6.3 rule 8). The connection
    /// cannot be reused, so `keep_alive` is false.
    CloseDelimited,
}

/// A parsed response head: offsets into the buffer it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=599 and never 101.
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Bytes of the head including the final CRLFCRLF; the body starts at `buf[head_len..]`.
    pub head_len: usize,
    /// Every `(name, value)` field in order; values have surrounding OWS removed.
    pub headers: HeaderSpans,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// Whether the upstream connection may be reused after this response (RFC 9112 §9.3):
    /// false on `Connection: close`, on HTTP/1.0 without `keep-alive`, on a close-delimited
    /// body, and on a 204/304 that carries `Transfer-Encoding` (its framing is suspect).
    pub keep_alive: bool,
}

impl ResponseHead {
    /// First header value with this name (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        head::find_header(&self.headers, buf, name)
    }

    /// True for an interim 1xx response: skip `head_len` bytes and parse again.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Parses an upstream response head at the start of `buf`.
///
/// `Ok(None)` means incomplete. No complete head within `max_head_bytes` is
/// [`HeadError::TooLarge`]. `request_was_head` makes the body empty whatever the
/// headers say (RFC 9112 §6.3 rule 1).
pub fn parse_response_head(
    buf: &[u8],
    max_head_bytes: usize,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let (window, full) = head::window(buf, max_head_bytes);
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); DEFAULT_MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, window, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return head::partial(full),
        Err(e) => return Err(head::refine_error(window, e)),
    };
    head::check_line_endings(&window[..head_len])?;

    let (Some(status), Some(minor_version)) = (res.code, res.version) else {
        return Err(HeadError::Malformed);
    };
    if minor_version > 1 {
        return Err(HeadError::BadVersion);
    }
    if !(100..=599).contains(&status) || status == 101 {
        return Err(HeadError::BadStatus);
    }

    let mut headers = HeaderSpans::new();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut has_te = false;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        headers.push((Span::of(buf, name), Span::of(buf, h.value)));
        if name.eq_ignore_ascii_case(b"connection") {
            head::scan_connection(h.value, &mut close, &mut keep_alive_token);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_te = true;
        }
    }
    let mut keep_alive = head::keep_alive(minor_version, close, keep_alive_token);

    let no_body = request_was_head || status < 200 || status == 204 || status == 304;
    let framing = if no_body {
        // Content-Length / Transfer-Encoding describe the would-be body and are ignored
        // (§6.3 rules 1-2); but a 204/304 with TE is a sign the upstream may send one anyway.
        if has_te && (status == 204 || status == 304) {
            keep_alive = false;
        }
        ResponseFraming::None
    } else {
        match framing::decide(
            res.headers.iter().map(|h| (h.name.as_bytes(), h.value)),
            minor_version,
        )? {
            BodyFraming::Chunked => ResponseFraming::Chunked,
            BodyFraming::Length(n) => ResponseFraming::Length(n),
            BodyFraming::None => {
                keep_alive = false;
                ResponseFraming::CloseDelimited
            }
        }
    };

    Ok(Some(ResponseHead {
        status,
        minor_version,
        head_len,
        headers,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::framing::FramingError as F;
    use ResponseFraming as R;

    const MAX: usize = 8192;

    fn framing_of(buf: &[u8], was_head: bool) -> Result<Option<(u16, R, bool)>, HeadError> {
        parse_response_head(buf, MAX, was_head)
            .map(|r| r.map(|h| (h.status, h.framing, h.keep_alive)))
    }

    #[test]
    fn response_table() {
        use HeadError as H;
        // (input, request was HEAD, expected (status, framing, keep_alive))
        type Case<'a> = (&'a [u8], bool, Result<Option<(u16, R, bool)>, HeadError>);
        let cases: &[Case] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                false,
                Ok(Some((200, R::Length(5), true))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, R::Chunked, true))),
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n",
                false,
                Ok(Some((200, R::CloseDelimited, false))),
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\n",
                false,
                Ok(Some((200, R::CloseDelimited, false))),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, R::Length(1), false))),
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, R::Length(1), true))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, R::Length(1), false))),
            ),
            // No body whatever the headers say (RFC 9112 §6.3 rules 1-2).
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                Ok(Some((200, R::None, true))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                true,
                Ok(Some((200, R::None, true))),
            ),
            (
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok(Some((204, R::None, true))),
            ),
            (
                b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((204, R::None, false))),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok(Some((304, R::None, true))),
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                false,
                Ok(Some((100, R::None, true))),
            ),
            (
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                false,
                Ok(Some((103, R::None, true))),
            ),
            // Reason phrase is optional.
            (
                b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok(Some((200, R::Length(0), true))),
            ),
            (
                b"HTTP/1.1 529 \r\nContent-Length: 0\r\n\r\n",
                false,
                Ok(Some((529, R::Length(0), true))),
            ),
            // Framing errors.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Err(H::Framing(F::LengthAndChunked)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                false,
                Err(H::Framing(F::DuplicateLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                false,
                Err(H::Framing(F::BadLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            (
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            // Head syntax.
            (
                b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
                false,
                Err(H::BareLf),
            ),
            (
                b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
                false,
                Err(H::ObsFold),
            ),
            (
                b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
                false,
                Err(H::Malformed),
            ),
            (b"HTTP/2.0 200 OK\r\n\r\n", false, Err(H::BadVersion)),
            (b"HTTP/1.1 20 OK\r\n\r\n", false, Err(H::BadStatus)),
            (b"HTTP/1.1 099 X\r\n\r\n", false, Err(H::BadStatus)),
            (b"HTTP/1.1 600 X\r\n\r\n", false, Err(H::BadStatus)),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                false,
                Err(H::BadStatus),
            ),
            (b"HTTP/1.1 200 OK\r\n", false, Ok(None)),
            (b"HTTP/1.1 2", false, Ok(None)),
        ];
        for (input, was_head, want) in cases {
            assert_eq!(
                framing_of(input, *was_head),
                *want,
                "{:?} head={was_head}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn continue_then_final() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        let first = parse_response_head(buf, MAX, false).unwrap().unwrap();
        assert!(first.is_informational());
        let rest = &buf[first.head_len..];
        let second = parse_response_head(rest, MAX, false).unwrap().unwrap();
        assert!(!second.is_informational());
        assert_eq!((second.status, second.framing), (200, R::Chunked));
        assert_eq!(
            second.header(rest, b"content-type"),
            Some(&b"text/event-stream"[..])
        );
        assert_eq!(&rest[second.head_len..], b"5\r\n");
    }

    #[test]
    fn response_size_limit() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_response_head(buf, buf.len(), false)
            .unwrap()
            .is_some());
        assert_eq!(
            parse_response_head(buf, buf.len() - 1, false),
            Err(HeadError::TooLarge)
        );
    }
}
