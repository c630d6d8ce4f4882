//! Strict request head parsing around httparse (RFC 9112 §2, §3, §5).
//!
//! [`parse_request_head`] is pure: it reads the connection buffer and returns offsets
//! ([`Span`]s) into it, never borrows, so the buffer can move into the next IO call.
//!
//! What we add on top of httparse, because a proxy that is laxer than its upstream is a
//! request smuggling vector:
//! - bare LF line endings are rejected (RFC 9112 §2.2 allows a recipient to accept them;
//!   httparse does, we do not), checked with memchr over the head only;
//! - obs-fold is rejected (RFC 9112 §5.2; httparse rejects it too, we name the error);
//! - only HTTP/1.0 and HTTP/1.1 (RFC 9112 §2.3);
//! - HTTP/1.1 needs exactly one `Host`, any version at most one (RFC 9112 §3.2), and its
//!   value must be `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2): an empty or
//!   malformed one is refused rather than forwarded into logs and routing decisions;
//! - body framing is decided strictly by [`crate::http1::framing::decide`] (RFC 9112 §6.3).
//!
//! Limits: the head must complete within the caller's `max_head_bytes` and hold at most the
//! caller's `max_headers` fields (default [`DEFAULT_MAX_HEADERS`], never more than
//! [`MAX_HEADERS_LIMIT`]). Header spans live on the stack for up to 24 fields.
//!
//! Leading empty lines before the request-line are skipped (RFC 9112 §2.2), and are counted
//! in `head_len`. Whitespace between a field name and its colon is rejected by httparse
//! (RFC 9112 §5.1) and reported as [`HeadError::Malformed`].

use std::mem::MaybeUninit;

use smallvec::SmallVec;

use super::framing::{self, BodyFraming, FramingError};

/// Header fields accepted in one head unless `[server] max_headers` says otherwise; more is
/// [`HeadError::TooManyHeaders`] (431).
///
/// Real SDKs send well under 30, but browsers behind a few proxies and tracing layers
/// (`x-forwarded-*`, `traceparent`, `baggage`, cookies) reach 60-80: 100 leaves room.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// The largest `max_headers` a config may set: the httparse slot array lives on the stack
/// (32 bytes a slot, 16 KiB at this bound), and a 16 KiB head holds at most a few thousand
/// fields anyway.
pub const MAX_HEADERS_LIMIT: usize = 512;

/// Header fields kept inline before the list spills to the heap.
pub const INLINE_HEADERS: usize = 24;

/// `(name, value)` spans of every header field, in order, as sent (value without OWS).
pub type HeaderSpans = SmallVec<[(Span, Span); INLINE_HEADERS]>;

/// A byte range into the connection buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The bytes this span covers in `buf`; empty if the span is out of range for `buf`
    /// (a span is only meaningful for the buffer it was parsed from).
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// True when the span covers no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The span of `sub`, which must be a subslice of `buf` (as httparse hands out).
    /// Offsets fit `u32` because callers bound the parse window to `u32::MAX` bytes.
    #[inline]
    pub(crate) fn of(buf: &[u8], sub: &[u8]) -> Span {
        let start = (sub.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        debug_assert!(start + sub.len() <= buf.len());
        Span {
            start: start as u32,
            end: (start + sub.len()) as u32,
        }
    }
}

/// The request method (RFC 9110 §9). Methods are case-sensitive: `get` is [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// Any other token (`CONNECT`, `TRACE`, extension methods, lowercase spellings).
    Other,
}

impl Method {
    /// Maps a method token, case-sensitively (RFC 9110 §9.1).
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// The method token, or `None` for [`Method::Other`].
    pub fn as_str(&self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other => return None,
        })
    }
}

/// Why a head was refused. Every variant means the connection cannot continue.
///
/// Suggested statuses: `TooLarge` 431 (or 400 if the request-line alone is too long),
/// `TooManyHeaders` 431, `Framing(UnknownTransferCoding)` 501, everything else 400.
/// On an upstream response head, every variant is a 502.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// No complete head within `max_head_bytes`.
    TooLarge,
    /// More header fields than the caller's `max_headers`.
    TooManyHeaders,
    /// httparse refused the bytes: bad token, bad request-target, whitespace before a colon,
    /// NUL / CR / LF inside a value, missing status reason separator.
    Malformed,
    /// A line ended in LF without CR (RFC 9112 §2.2).
    BareLf,
    /// A field line started with SP or HTAB: obs-fold (RFC 9112 §5.2).
    ObsFold,
    /// A version other than HTTP/1.0 or HTTP/1.1 (RFC 9112 §2.3).
    BadVersion,
    /// HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    MissingHost,
    /// More than one `Host` field (RFC 9112 §3.2).
    DuplicateHost,
    /// A `Host` value that is not `uri-host [":" port]`, or empty (RFC 9110 §7.2).
    BadHost,
    /// A response status outside 100..=599, or 101 (we never ask to switch protocols).
    BadStatus,
    /// The body length could not be decided safely (RFC 9112 §6.3).
    Framing(FramingError),
}

impl From<FramingError> for HeadError {
    fn from(e: FramingError) -> Self {
        HeadError::Framing(e)
    }
}

/// A parsed request head: offsets into the buffer it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request-target as sent, query included. Usually origin-form (`/v1/chat?x`);
    /// absolute-form and `*` are passed through unchanged (httparse accepts them).
    pub path: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Bytes of the head, including leading empty lines and the final CRLFCRLF;
    /// the body (or the next request) starts at `buf[head_len..]`.
    pub head_len: usize,
    /// Every `(name, value)` field in order; values have surrounding OWS removed.
    pub headers: HeaderSpans,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// HTTP/1.1: true unless a `Connection` list holds `close`; HTTP/1.0: true only with
    /// `keep-alive` and no `close` (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// HTTP/1.1 request with `Expect: 100-continue` (case-insensitive). The expectation is
    /// ignored on HTTP/1.0 (RFC 9110 §10.1.1); other expectations are ignored.
    pub expect_continue: bool,
}

impl RequestHead {
    /// First header value with this name (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        find_header(&self.headers, buf, name)
    }

    /// The request-target bytes.
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.path.get(buf)
    }
}

/// Parses a request head at the start of `buf`.
///
/// `Ok(None)` means incomplete: read more bytes and call again with the whole buffer. If no
/// complete head fits within `max_head_bytes` bytes of `buf` the result is
/// [`HeadError::TooLarge`], so a caller may stop reading at that size.
///
/// A bare LF is only detected once the head is complete (or httparse fails), so an
/// incomplete head full of bare LFs waits for more bytes or `TooLarge` like any other.
pub fn parse_request_head(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<RequestHead>, HeadError> {
    parse_request_head_with(buf, max_head_bytes, DEFAULT_MAX_HEADERS)
}

/// [`parse_request_head`] with at most `max_headers` fields (clamped to
/// [`MAX_HEADERS_LIMIT`]); one more is [`HeadError::TooManyHeaders`].
pub fn parse_request_head_with(
    buf: &[u8],
    max_head_bytes: usize,
    max_headers: usize,
) -> Result<Option<RequestHead>, HeadError> {
    let (window, full) = window(buf, max_head_bytes);
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_LIMIT];
    let slots = &mut slots[..max_headers.clamp(1, MAX_HEADERS_LIMIT)];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, window, slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(full),
        Err(e) => return Err(refine_error(window, e)),
    };
    check_line_ends(&window[..head_len], req.headers.iter().map(|h| h.value))?;

    // httparse sets these once the request-line is parsed, which it is when complete.
    let (Some(method), Some(path), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HeadError::Malformed);
    };
    if minor_version > 1 {
        return Err(HeadError::BadVersion);
    }

    let mut headers = HeaderSpans::new();
    let mut hosts = 0u32;
    let mut bad_host = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    // The framing headers, gathered in the same pass for `framing::decide`.
    let mut framing_headers: SmallVec<[(&[u8], &[u8]); 4]> = SmallVec::new();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        headers.push((Span::of(buf, name), Span::of(buf, h.value)));
        // Dispatch on the length first: most headers match none of these, and a length
        // compare rejects them without a case-insensitive byte loop.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                if !valid_host(h.value) {
                    bad_host = true;
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                scan_connection(h.value, &mut close, &mut keep_alive_token);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                framing_headers.push((name, h.value));
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                framing_headers.push((name, h.value));
            }
            _ => {}
        }
    }
    if hosts > 1 {
        return Err(HeadError::DuplicateHost);
    }
    if hosts == 0 && minor_version == 1 {
        return Err(HeadError::MissingHost);
    }
    if bad_host {
        return Err(HeadError::BadHost);
    }
    let framing = framing::decide(framing_headers.iter().copied(), minor_version)?;

    Ok(Some(RequestHead {
        method: Method::from_bytes(method.as_bytes()),
        path: Span::of(buf, path.as_bytes()),
        minor_version,
        head_len,
        headers,
        framing,
        keep_alive: keep_alive(minor_version, close, keep_alive_token),
        expect_continue: expect_continue && minor_version == 1,
    }))
}

/// Whether a `Host` value is `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2-3):
/// a bracketed IPv6 literal, or a non-empty reg-name / IPv4 address (unreserved,
/// pct-encoded and sub-delims characters), then optionally `:` and 1 to 5 digits up to
/// 65535. An empty value is refused: every target we serve has an authority.
pub fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', v) else {
            return false;
        };
        let literal = &v[1..close];
        let ok = std::str::from_utf8(literal)
            .ok()
            .is_some_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok());
        if !ok {
            return false;
        }
        match &v[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&v[..=close], Some(port)),
            _ => return false,
        }
    } else {
        match memchr::memrchr(b':', v) {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        }
    };
    if host.is_empty() {
        return false;
    }
    if host[0] != b'[' && !reg_name(host) {
        return false;
    }
    match port {
        None => true,
        Some(p) => {
            (1..=5).contains(&p.len())
                && p.iter().all(u8::is_ascii_digit)
                && p.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')) <= 65535
        }
    }
}

/// RFC 3986 §3.2.2 `reg-name` (which covers IPv4 addresses): unreserved, sub-delims and
/// well-formed `%XX`.
fn reg_name(h: &[u8]) -> bool {
    let mut i = 0;
    while i < h.len() {
        match h[i] {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            b'%' if h.len() > i + 2
                && h[i + 1].is_ascii_hexdigit()
                && h[i + 2].is_ascii_hexdigit() =>
            {
                i += 2;
            }
            _ => return false,
        }
        i += 1;
    }
    true
}

/// First value of header `name` (ASCII case-insensitive) among `headers`.
pub(crate) fn find_header<'a>(
    headers: &HeaderSpans,
    buf: &'a [u8],
    name: &[u8],
) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.get(buf).eq_ignore_ascii_case(name))
        .map(|(_, v)| v.get(buf))
}

/// The part of `buf` a head may occupy, bounded by `u32::MAX` so spans fit, and whether
/// that bound (rather than the end of the data) cut it.
pub(crate) fn window(buf: &[u8], max_head_bytes: usize) -> (&[u8], bool) {
    let limit = max_head_bytes.min(u32::MAX as usize);
    if buf.len() >= limit {
        (&buf[..limit], true)
    } else {
        (buf, false)
    }
}

/// httparse wants more bytes: fine unless the window is already full.
pub(crate) fn partial<T>(full: bool) -> Result<Option<T>, HeadError> {
    if full {
        Err(HeadError::TooLarge)
    } else {
        Ok(None)
    }
}

/// [`check_line_endings`] without a search per line: the end of each header line is known
/// from httparse's value slices, so each is checked where it is (after optional trailing
/// whitespace, `\r\n` must follow), plus the request line and the final empty line. Anything
/// unexpected falls back to the full scan.
pub(crate) fn check_line_ends<'a>(
    head: &'a [u8],
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<(), HeadError> {
    let base = head.as_ptr() as usize;
    let crlf_at = |i: usize| head.get(i..i + 2) == Some(b"\r\n");
    let first_nl = memchr::memchr(b'\n', head);
    let mut ok =
        first_nl.is_some_and(|n| n > 0 && head[n - 1] == b'\r') && head.ends_with(b"\r\n\r\n");
    if ok {
        for v in values {
            let mut end = (v.as_ptr() as usize).wrapping_sub(base) + v.len();
            while matches!(head.get(end), Some(b' ' | b'\t')) {
                end += 1;
            }
            if !crlf_at(end) {
                ok = false;
                break;
            }
        }
    }
    if ok {
        Ok(())
    } else {
        check_line_endings(head)
    }
}

/// Rejects bare LF line endings in a complete head (RFC 9112 §2.2). httparse already refused
/// a lone CR, and obs-fold, so this is the only line-ending check left.
pub(crate) fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    for nl in memchr::memchr_iter(b'\n', head) {
        if nl == 0 || head[nl - 1] != b'\r' {
            return Err(HeadError::BareLf);
        }
    }
    Ok(())
}

/// httparse failed: name the failure more precisely when it was a bare LF or obs-fold (both
/// show up as generic httparse errors), scanning only up to the end of the head.
pub(crate) fn refine_error(window: &[u8], e: httparse::Error) -> HeadError {
    let mut line_start = 0;
    let mut seen_start_line = false;
    for nl in memchr::memchr_iter(b'\n', window) {
        if nl == 0 || window[nl - 1] != b'\r' {
            return HeadError::BareLf;
        }
        let line = &window[line_start..nl - 1];
        match line.first() {
            // An empty line ends the head, unless it precedes the start-line (§2.2).
            None if seen_start_line => break,
            None => {}
            Some(b' ' | b'\t') if seen_start_line => return HeadError::ObsFold,
            Some(_) => seen_start_line = true,
        }
        line_start = nl + 1;
    }
    if seen_start_line && matches!(window.get(line_start), Some(b' ' | b'\t')) {
        // A line still being received already starts with whitespace.
        return HeadError::ObsFold;
    }
    match e {
        httparse::Error::Version => HeadError::BadVersion,
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Status => HeadError::BadStatus,
        _ => HeadError::Malformed,
    }
}

/// Folds one `Connection` field value into the close / keep-alive flags (RFC 9110 §7.6.1).
pub(crate) fn scan_connection(value: &[u8], close: &mut bool, keep_alive: &mut bool) {
    for token in framing::list_elements(value) {
        if token.eq_ignore_ascii_case(b"close") {
            *close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            *keep_alive = true;
        }
    }
}

/// Persistence per RFC 9112 §9.3: `close` always wins; HTTP/1.0 needs `keep-alive`.
pub(crate) fn keep_alive(minor_version: u8, close: bool, keep_alive_token: bool) -> bool {
    !close && (minor_version >= 1 || keep_alive_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::framing::{BodyFraming as B, FramingError as F};

    const MAX: usize = 8192;

    /// Parses `head` and reduces the result to what the table checks.
    fn framing_of(head: &[u8]) -> Result<Option<B>, HeadError> {
        parse_request_head(head, MAX).map(|r| r.map(|h| h.framing))
    }

    fn req(headers: &str) -> Vec<u8> {
        format!("POST /v1/chat HTTP/1.1\r\nHost: gw\r\n{headers}\r\n").into_bytes()
    }

    #[test]
    fn smuggling_table() {
        use HeadError as H;
        type Case = (Vec<u8>, Result<Option<B>, HeadError>);
        let cases: Vec<Case> = vec![
            (req(""), Ok(Some(B::None))),
            (req("Content-Length: 5\r\n"), Ok(Some(B::Length(5)))),
            // CL + TE in either order: reject, never "TE wins".
            (
                req("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
                Err(H::Framing(F::LengthAndChunked)),
            ),
            (
                req("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
                Err(H::Framing(F::LengthAndChunked)),
            ),
            (
                req("Content-Length: 5\r\nContent-Length: 5\r\n"),
                Err(H::Framing(F::DuplicateLength)),
            ),
            (
                req("Content-Length: 5\r\nContent-Length: 6\r\n"),
                Err(H::Framing(F::DuplicateLength)),
            ),
            (req("Content-Length: +5\r\n"), Err(H::Framing(F::BadLength))),
            (req("Content-Length: -1\r\n"), Err(H::Framing(F::BadLength))),
            // Surrounding OWS is field syntax (RFC 9110 §5.5), not part of the value.
            (req("Content-Length: 5 \r\n"), Ok(Some(B::Length(5)))),
            (req("Content-Length:  5\r\n"), Ok(Some(B::Length(5)))),
            (req("Content-Length: 5x\r\n"), Err(H::Framing(F::BadLength))),
            (
                req("Content-Length: 0x5\r\n"),
                Err(H::Framing(F::BadLength)),
            ),
            (
                req("Content-Length: 5,5\r\n"),
                Err(H::Framing(F::DuplicateLength)),
            ),
            (
                req("Content-Length: 5, 5\r\n"),
                Err(H::Framing(F::DuplicateLength)),
            ),
            (req("Content-Length: \r\n"), Err(H::Framing(F::BadLength))),
            (
                req("Content-Length: 99999999999999999999999\r\n"),
                Err(H::Framing(F::BadLength)),
            ),
            (req("Transfer-Encoding: chunked\r\n"), Ok(Some(B::Chunked))),
            (req("Transfer-Encoding: Chunked\r\n"), Ok(Some(B::Chunked))),
            (
                req("Transfer-Encoding: gzip\r\n"),
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            (
                req("Transfer-Encoding: chunked, gzip\r\n"),
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            (
                req("Transfer-Encoding: chunked, chunked\r\n"),
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            (
                req("Transfer-Encoding: identity\r\n"),
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            (
                req("Transfer-Encoding: gzip, chunked\r\n"),
                Err(H::Framing(F::UnknownTransferCoding)),
            ),
            (
                req("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                Err(H::Framing(F::UnknownTransferCoding)),
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                Err(H::Framing(F::TransferCodingNotChunked)),
            ),
            // Bare LF anywhere in the head, including as the final empty line.
            (b"GET / HTTP/1.1\nHost: a\n\n".to_vec(), Err(H::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n".to_vec(), Err(H::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n".to_vec(), Err(H::BareLf)),
            (
                b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                Err(H::BareLf),
            ),
            // A bare LF in the body after a good head is none of our business.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nx\ny".to_vec(),
                Ok(Some(B::None)),
            ),
            // Lone CR, NUL in a value.
            (
                b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n".to_vec(),
                Err(H::Malformed),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n".to_vec(),
                Err(H::Malformed),
            ),
            // obs-fold, complete and still arriving.
            (req("X-A: b\r\n c\r\n"), Err(H::ObsFold)),
            (req("X-A: b\r\n\tc\r\n"), Err(H::ObsFold)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n c".to_vec(), Err(H::ObsFold)),
            (
                b"GET / HTTP/1.1\r\n Host: a\r\n\r\n".to_vec(),
                Err(H::ObsFold),
            ),
            // Whitespace between name and colon (RFC 9112 §5.1).
            (req("Content-Length : 5\r\n"), Err(H::Malformed)),
            (req("Content-Length\t: 5\r\n"), Err(H::Malformed)),
            // Versions.
            (
                b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(),
                Err(H::BadVersion),
            ),
            (
                b"GET / HTTP/1.2\r\nHost: a\r\n\r\n".to_vec(),
                Err(H::BadVersion),
            ),
            (b"GET / HTTP/0.9\r\n\r\n".to_vec(), Err(H::BadVersion)),
            (b"GET / HTTP/2".to_vec(), Err(H::BadVersion)),
            // Host (RFC 9112 §3.2).
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), Err(H::MissingHost)),
            (b"GET / HTTP/1.0\r\n\r\n".to_vec(), Ok(Some(B::None))),
            (req("host: b\r\n"), Err(H::DuplicateHost)),
            (
                b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
                Err(H::DuplicateHost),
            ),
            // Request-line shape.
            (
                b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                Err(H::Malformed),
            ),
            (
                b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n".to_vec(),
                Err(H::Malformed),
            ),
            // Incomplete.
            (b"".to_vec(), Ok(None)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec(), Ok(None)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r".to_vec(), Ok(None)),
            // Leading empty lines are skipped (RFC 9112 §2.2).
            (
                b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                Ok(Some(B::None)),
            ),
        ];
        for (input, want) in &cases {
            assert_eq!(
                framing_of(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn head_size_limit() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let n = head.len();
        // Complete within the limit, exactly at it, one byte over.
        assert!(parse_request_head(head, n + 1).unwrap().is_some());
        assert!(parse_request_head(head, n).unwrap().is_some());
        assert_eq!(parse_request_head(head, n - 1), Err(HeadError::TooLarge));
        // Incomplete: waits while below the limit, fails once the limit is filled.
        assert_eq!(parse_request_head(&head[..10], n), Ok(None));
        assert_eq!(
            parse_request_head(&head[..10], 10),
            Err(HeadError::TooLarge)
        );
        // A long header line with no end in sight.
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX + 100, b'a');
        assert_eq!(parse_request_head(&big, MAX), Err(HeadError::TooLarge));
        // Pipelined bytes beyond the limit do not count against the head.
        let mut pipelined = head.to_vec();
        pipelined.extend_from_slice(&[b'x'; 100]);
        assert_eq!(
            parse_request_head(&pipelined, n).unwrap().unwrap().head_len,
            n
        );
    }

    #[test]
    fn header_count_limit() {
        let build = |count: usize| {
            let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
            for i in 1..count {
                s.push_str(&format!("X-{i}: v\r\n"));
            }
            s.push_str("\r\n");
            s.into_bytes()
        };
        let ok = build(DEFAULT_MAX_HEADERS);
        let head = parse_request_head(&ok, MAX).unwrap().unwrap();
        assert_eq!(head.headers.len(), DEFAULT_MAX_HEADERS);
        assert_eq!(head.header(&ok, b"x-99"), Some(&b"v"[..]));
        assert_eq!(
            parse_request_head(&build(DEFAULT_MAX_HEADERS + 1), MAX),
            Err(HeadError::TooManyHeaders)
        );
        // The limit is the caller's.
        assert_eq!(
            parse_request_head_with(&build(11), MAX, 10),
            Err(HeadError::TooManyHeaders)
        );
        assert!(parse_request_head_with(&build(10), MAX, 10)
            .unwrap()
            .is_some());
        let many = build(MAX_HEADERS_LIMIT);
        assert!(parse_request_head_with(&many, 1 << 20, MAX_HEADERS_LIMIT)
            .unwrap()
            .is_some());
        assert_eq!(
            parse_request_head_with(&build(MAX_HEADERS_LIMIT + 1), 1 << 20, usize::MAX),
            Err(HeadError::TooManyHeaders)
        );
    }

    #[test]
    fn host_values() {
        let good: &[&[u8]] = &[
            b"gw",
            b"api.example.com",
            b"api.example.com:443",
            b"127.0.0.1:3000",
            b"[::1]",
            b"[::1]:8080",
            b"[2001:db8::7]:1",
            b"a-b_c~d.e",
            b"xn--bcher-kva.example",
            b"h%41st",
            b"gw:65535",
        ];
        let bad: &[&[u8]] = &[
            b"",
            b":80",
            b"gw:",
            b"gw:65536",
            b"gw:123456",
            b"gw:8o",
            b"gw:80:80",
            b"g w",
            b"gw/path",
            b"user@gw",
            b"[::1",
            b"[::1]x",
            b"[nope]",
            b"::1",
            b"h%4",
            b"h%zz",
            b"gw\x7f",
        ];
        for h in good {
            assert!(valid_host(h), "{:?}", String::from_utf8_lossy(h));
        }
        for h in bad {
            assert!(!valid_host(h), "{:?}", String::from_utf8_lossy(h));
        }
        let req = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            parse_request_head(req("").as_bytes(), MAX),
            Err(HeadError::BadHost)
        );
        assert_eq!(
            parse_request_head(req("a b").as_bytes(), MAX),
            Err(HeadError::BadHost)
        );
        assert!(parse_request_head(req("gw:3000").as_bytes(), MAX)
            .unwrap()
            .is_some());
    }

    #[test]
    fn fields_and_spans() {
        let buf = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\n\
            content-type: application/json\r\nX-Empty:\r\nContent-Length: 2\r\n\r\n{}";
        let h = parse_request_head(buf, MAX).unwrap().unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path(buf), b"/v1/chat/completions?x=1");
        assert_eq!(h.minor_version, 1);
        assert_eq!(&buf[h.head_len..], b"{}");
        assert_eq!(
            h.header(buf, b"Content-Type"),
            Some(&b"application/json"[..])
        );
        assert_eq!(h.header(buf, b"x-empty"), Some(&b""[..]));
        assert_eq!(h.header(buf, b"missing"), None);
        assert_eq!(h.headers[0].0.get(buf), b"Host");
        assert_eq!(h.framing, BodyFraming::Length(2));
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        // Spans outlive the borrow: the buffer can move.
        let moved = buf.to_vec();
        assert_eq!(h.path(&moved), b"/v1/chat/completions?x=1");
        assert_eq!(Span::default().get(&moved), b"");
        assert_eq!(Span { start: 5, end: 999 }.get(&moved), b"");
    }

    #[test]
    fn methods() {
        for (m, want) in [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("DELETE", Method::Delete),
            ("OPTIONS", Method::Options),
            ("PATCH", Method::Patch),
            ("get", Method::Other),
            ("PROPFIND", Method::Other),
        ] {
            let buf = format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n");
            let h = parse_request_head(buf.as_bytes(), MAX).unwrap().unwrap();
            assert_eq!(h.method, want, "{m}");
            if let Some(s) = want.as_str() {
                assert_eq!(s, m);
            }
        }
    }

    #[test]
    fn keep_alive_and_expect() {
        // (version, extra headers, keep_alive, expect_continue)
        let cases = [
            ("1.1", "", true, false),
            ("1.1", "Connection: close\r\n", false, false),
            ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false, false),
            (
                "1.1",
                "Connection: upgrade\r\nConnection: close\r\n",
                false,
                false,
            ),
            ("1.1", "Connection: keep-alive\r\n", true, false),
            ("1.0", "", false, false),
            ("1.0", "Connection: keep-alive\r\n", true, false),
            ("1.0", "Connection: te, Keep-Alive\r\n", true, false),
            ("1.1", "Expect: 100-Continue\r\n", true, true),
            ("1.1", "Expect: something-else\r\n", true, false),
            // RFC 9110 §10.1.1: ignored on HTTP/1.0.
            ("1.0", "Expect: 100-continue\r\n", false, false),
        ];
        for (version, extra, keep_alive, expect) in cases {
            let buf = format!("POST / HTTP/{version}\r\nHost: a\r\n{extra}\r\n");
            let h = parse_request_head(buf.as_bytes(), MAX).unwrap().unwrap();
            assert_eq!(h.keep_alive, keep_alive, "{buf:?}");
            assert_eq!(h.expect_continue, expect, "{buf:?}");
        }
    }

    #[test]
    fn byte_at_a_time_agrees() {
        let buf = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse_request_head(&buf[..cut], MAX), Ok(None), "cut {cut}");
        }
        let h = parse_request_head(buf, MAX).unwrap().unwrap();
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.framing, BodyFraming::Chunked);
    }
}
