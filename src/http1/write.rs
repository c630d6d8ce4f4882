//! HTTP/1.1 head and chunk framing writers into a reused `Vec<u8>` (RFC 9112 §3, §4, §5, §7.1).
//!
//! No `format!` and no allocation beyond the output buffer's growth: integers are formatted
//! by hand on the stack. The writers trust their input: names must be tokens and values must
//! not contain CR, LF or NUL (RFC 9110 §5.5). Values copied from a parsed head satisfy this
//! (httparse refuses them); anything built from untrusted data must be checked by the caller,
//! or response splitting follows. Debug builds assert it.

/// The last-chunk and the empty trailer section that end a chunked body (RFC 9112 §7.1).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Longest chunk header: 16 hex digits of a 64-bit `usize` and CRLF.
pub const MAX_CHUNK_HEADER: usize = 18;

/// The reason phrase we send for `code`; empty for codes we do not name (RFC 9112 §4
/// makes the reason-phrase optional, and clients must ignore it).
pub fn status_reason(code: u16) -> &'static str {
    // RFC 9110 §15, plus 429 (RFC 6585) and 529 (used by Anthropic for "overloaded").
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        529 => "Overloaded",
        _ => "",
    }
}

/// Appends `HTTP/1.1 {code} {reason}\r\n` (RFC 9112 §4). `code` should be 100..=599; it is
/// written as three digits, so a larger value is written modulo 1000 (a caller bug).
pub fn write_status_line(out: &mut Vec<u8>, code: u16) {
    debug_assert!((100..=599).contains(&code), "status {code}");
    let code3 = code % 1000;
    let digits = [
        b'0' + (code3 / 100) as u8,
        b'0' + (code3 / 10 % 10) as u8,
        b'0' + (code3 % 10) as u8,
    ];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(status_reason(code).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `{method} {target} HTTP/1.1\r\n` (RFC 9112 §3), for requests to upstreams.
pub fn write_request_line(out: &mut Vec<u8>, method: &[u8], target: &[u8]) {
    debug_assert!(is_clean(method) && is_clean(target) && !target.contains(&b' '));
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Appends `{name}: {value}\r\n` (RFC 9112 §5). See the module docs on trusted input.
pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(is_clean(name) && is_clean(value), "header {name:?}");
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `{name}: {decimal value}\r\n`, e.g. `Content-Length`.
pub fn write_header_usize(out: &mut Vec<u8>, name: &[u8], value: usize) {
    debug_assert!(is_clean(name));
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    push_usize(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a chunk-size line `{hex len}\r\n` (RFC 9112 §7.1). `len` 0 starts the last chunk;
/// to end a body write [`LAST_CHUNK`] instead.
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    let (bytes, n) = chunk_header(len);
    out.extend_from_slice(&bytes[..n]);
}

/// The chunk-size line `{hex len}\r\n` on the stack, for a vectored write:
/// the line is `bytes[..n]`.
pub fn chunk_header(len: usize) -> ([u8; MAX_CHUNK_HEADER], usize) {
    use crate::digits::HEX;
    let mut out = [0u8; MAX_CHUNK_HEADER];
    // Hex digits needed: at least one, even for 0.
    let bits = usize::BITS - len.leading_zeros();
    let digits = (bits.div_ceil(4)).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *slot = HEX[(len >> shift) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    (out, digits + 2)
}

/// Appends `v` in decimal.
pub fn push_usize(out: &mut Vec<u8>, v: usize) {
    push_u64(out, v as u64);
}

pub use crate::digits::push_u64;

/// No CR, LF or NUL: the bytes cannot end a line early (RFC 9110 §5.5).
fn is_clean(v: &[u8]) -> bool {
    !v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{
        parse_request_head, parse_response_head, BodyFraming, ChunkedDecoder, ResponseFraming,
    };

    #[test]
    fn integers() {
        for v in [0u64, 1, 9, 10, 99, 100, 12345, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        let mut out = b"x".to_vec();
        push_usize(&mut out, 4096);
        assert_eq!(out, b"x4096");
        for v in [0usize, 1, 15, 16, 255, 4096, 0xdead_beef, usize::MAX] {
            let (bytes, n) = chunk_header(v);
            assert_eq!(&bytes[..n], format!("{v:x}\r\n").as_bytes());
            let mut out = Vec::new();
            write_chunk_header(&mut out, v);
            assert_eq!(out, &bytes[..n]);
        }
    }

    #[test]
    fn status_lines() {
        for (code, line) in [
            (200, "HTTP/1.1 200 OK\r\n"),
            (404, "HTTP/1.1 404 Not Found\r\n"),
            (431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            (599, "HTTP/1.1 599 \r\n"),
        ] {
            let mut out = Vec::new();
            write_status_line(&mut out, code);
            assert_eq!(out, line.as_bytes());
        }
    }

    #[test]
    fn response_round_trip() {
        let mut out = Vec::new();
        for (code, body) in [(200u16, &b"hello world"[..]), (529, b""), (404, b"{}")] {
            out.clear();
            write_status_line(&mut out, code);
            write_header(&mut out, b"Content-Type", b"application/json");
            write_header_usize(&mut out, b"Content-Length", body.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            let head = parse_response_head(&out, 8192, false).unwrap().unwrap();
            assert_eq!(head.status, code);
            assert_eq!(head.framing, ResponseFraming::Length(body.len() as u64));
            assert_eq!(
                head.header(&out, b"content-type"),
                Some(&b"application/json"[..])
            );
            assert_eq!(&out[head.head_len..], body);
        }
    }

    #[test]
    fn chunked_round_trip() {
        let mut out = Vec::new();
        write_status_line(&mut out, 200);
        write_header(&mut out, b"Transfer-Encoding", b"chunked");
        out.extend_from_slice(b"\r\n");
        let pieces: [&[u8]; 4] = [b"data: {}\n\n", &[b'x'; 300], b"a", b""];
        let mut want = Vec::new();
        for p in pieces.iter().filter(|p| !p.is_empty()) {
            write_chunk_header(&mut out, p.len());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
            want.extend_from_slice(p);
        }
        out.extend_from_slice(LAST_CHUNK);
        let head = parse_response_head(&out, 8192, false).unwrap().unwrap();
        assert_eq!(head.framing, ResponseFraming::Chunked);
        let mut body = out[head.head_len..].to_vec();
        let d = ChunkedDecoder::new().decode_in_place(&mut body).unwrap();
        assert!(d.done);
        assert_eq!(d.consumed, body.len());
        assert_eq!(&body[..d.payload], &want[..]);
    }

    #[test]
    fn request_round_trip() {
        let mut out = Vec::new();
        write_request_line(&mut out, b"POST", b"/v1/messages?beta=true");
        write_header(&mut out, b"Host", b"api.anthropic.com");
        write_header_usize(&mut out, b"Content-Length", 2);
        out.extend_from_slice(b"\r\n{}");
        let head = parse_request_head(&out, 8192).unwrap().unwrap();
        assert_eq!(head.path(&out), b"/v1/messages?beta=true");
        assert_eq!(head.framing, BodyFraming::Length(2));
        assert_eq!(head.header(&out, b"host"), Some(&b"api.anthropic.com"[..]));
    }
}
