//! The message body length decision (RFC 9112 §6.3), strict enough for a proxy at the edge.
//!
//! Everything that could let two parsers disagree about where a message ends is an error,
//! never a guess: `Content-Length` together with `Transfer-Encoding` is rejected (RFC 9112
//! §6.3 rule 3 lets a server "process" such a message, we do not — request smuggling), any
//! repeated or malformed `Content-Length` is rejected (§6.3 rule 5), and the only transfer
//! coding we decode is a single `chunked` (§6.1, §7).
//!
//! Which error maps to which status (the caller's mapping, RFC 9112 §6.1 and §6.3):
//! [`FramingError::UnknownTransferCoding`] is 501 Not Implemented (a coding we do not
//! implement, before a final `chunked`); every other variant is 400 Bad Request and the
//! connection must be closed after the response, since the body boundary is unknown.
//!
//! The same rules apply to upstream responses (see `response`), where every error is a 502.

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: no `Content-Length` and no `Transfer-Encoding` on a request (§6.3 rule 7).
    None,
    /// Exactly this many body bytes follow the head (§6.3 rule 6). `Length(0)` is possible.
    Length(u64),
    /// The body uses the chunked transfer coding (§7.1); decode with `ChunkedDecoder`.
    Chunked,
}

/// Why the body length of a message could not be decided safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// Both `Content-Length` and `Transfer-Encoding` are present (RFC 9112 §6.3 rule 3, §6.1).
    LengthAndChunked,
    /// More than one `Content-Length` field, or a list value such as `5, 5` (RFC 9110 §8.6
    /// allows a recipient to reject these; a proxy must, or it disagrees with its neighbours).
    DuplicateLength,
    /// A `Content-Length` that is not `1*DIGIT` (RFC 9110 §8.6): empty, signed (`+5`, `-1`),
    /// hex (`0x5`), embedded junk, or larger than `u64`.
    BadLength,
    /// The final transfer coding is not `chunked`, `chunked` is applied more than once,
    /// the list is empty, or `Transfer-Encoding` appears on an HTTP/1.0 message
    /// (RFC 9112 §6.1, §6.3 rule 4). Status 400.
    TransferCodingNotChunked,
    /// The list ends in `chunked` but an earlier coding (`gzip, chunked`) is one we do not
    /// decode (RFC 9112 §6.1). Status 501.
    UnknownTransferCoding,
}

/// Decides request body framing per RFC 9112 §6.3, strict for a proxy.
///
/// `headers` yields every `(name, value)` field of the head in order; names are matched ASCII
/// case-insensitively and values may carry surrounding OWS (it is trimmed, RFC 9110 §5.5).
/// Several `Transfer-Encoding` fields are combined into one list (RFC 9110 §5.3).
///
/// Rules, in order:
/// 1. `Transfer-Encoding` on HTTP/1.0 -> [`FramingError::TransferCodingNotChunked`] (§6.1:
///    the framing of such a message is faulty).
/// 2. `Transfer-Encoding` and `Content-Length` together -> [`FramingError::LengthAndChunked`].
/// 3. `Transfer-Encoding`: exactly one `chunked` (case-insensitive), last, and nothing before
///    it -> [`BodyFraming::Chunked`]. A last coding other than `chunked` (`gzip`, `identity`,
///    `chunked, gzip`) or a repeated `chunked` -> [`FramingError::TransferCodingNotChunked`];
///    `gzip, chunked` -> [`FramingError::UnknownTransferCoding`]. Empty list elements
///    (`chunked,`) are ignored (RFC 9110 §5.6.1).
/// 4. One `Content-Length` of 1*DIGIT fitting `u64` -> [`BodyFraming::Length`]; a second
///    field or a comma -> [`FramingError::DuplicateLength`], anything else -> `BadLength`.
/// 5. Neither -> [`BodyFraming::None`] (§6.3 rule 7).
pub fn decide<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    minor_version: u8,
) -> Result<BodyFraming, FramingError> {
    let mut length: Option<Result<u64, FramingError>> = None;
    let mut te = TeList::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(match length {
                None => parse_content_length(value),
                Some(_) => Err(FramingError::DuplicateLength),
            });
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te.push(value);
        }
    }
    if te.present {
        if minor_version == 0 {
            return Err(FramingError::TransferCodingNotChunked);
        }
        if length.is_some() {
            return Err(FramingError::LengthAndChunked);
        }
        return te.finish().map(|()| BodyFraming::Chunked);
    }
    match length {
        None => Ok(BodyFraming::None),
        Some(Ok(n)) => Ok(BodyFraming::Length(n)),
        Some(Err(e)) => Err(e),
    }
}

/// Parses one `Content-Length` field value: OWS, 1*DIGIT, OWS (RFC 9110 §8.6).
///
/// A comma means a list (`5, 5` or `5,`) and is reported as [`FramingError::DuplicateLength`].
pub fn parse_content_length(value: &[u8]) -> Result<u64, FramingError> {
    let value = trim_ows(value);
    if value.is_empty() {
        return Err(FramingError::BadLength);
    }
    if memchr::memchr(b',', value).is_some() {
        return Err(FramingError::DuplicateLength);
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(FramingError::BadLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(FramingError::BadLength)?;
    }
    Ok(n)
}

/// Running state over every `Transfer-Encoding` element seen so far, in order.
#[derive(Default)]
struct TeList {
    /// At least one `Transfer-Encoding` field was seen (even an empty one).
    present: bool,
    /// The last non-empty element was `chunked`.
    last_chunked: bool,
    /// A `chunked` appeared before the last element.
    chunked_before_last: bool,
    /// A coding other than `chunked` appeared before the last element.
    other_before_last: bool,
}

impl TeList {
    fn push(&mut self, value: &[u8]) {
        self.present = true;
        for element in value.split(|&b| b == b',') {
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            // The previous "last" element is no longer last.
            if self.last_chunked {
                self.chunked_before_last = true;
            }
            self.last_chunked = element.eq_ignore_ascii_case(b"chunked");
            if !self.last_chunked {
                self.other_before_last = true;
            }
        }
    }

    fn finish(&self) -> Result<(), FramingError> {
        // `other_before_last` also counts a non-chunked last element; that case is caught by
        // the first test, so it only decides between the two errors when the last is chunked.
        if !self.last_chunked || self.chunked_before_last {
            Err(FramingError::TransferCodingNotChunked)
        } else if self.other_before_last {
            Err(FramingError::UnknownTransferCoding)
        } else {
            Ok(())
        }
    }
}

/// Strips leading and trailing OWS (SP / HTAB, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Iterates the non-empty, OWS-trimmed elements of a comma-separated list (RFC 9110 §5.6.1).
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(headers: &[(&str, &str)], minor: u8) -> Result<BodyFraming, FramingError> {
        decide(
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            minor,
        )
    }

    #[test]
    fn decide_table() {
        use BodyFraming as B;
        use FramingError as E;
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            u8,
            Result<BodyFraming, FramingError>,
        );
        let cases: &[Case] = &[
            (&[], 1, Ok(B::None)),
            (&[("Content-Length", "0")], 1, Ok(B::Length(0))),
            (&[("content-length", " 42\t")], 1, Ok(B::Length(42))),
            (&[("Content-Length", "007")], 1, Ok(B::Length(7))),
            (
                &[("Content-Length", "18446744073709551615")],
                1,
                Ok(B::Length(u64::MAX)),
            ),
            (
                &[("Content-Length", "18446744073709551616")],
                1,
                Err(E::BadLength),
            ),
            (&[("Content-Length", "")], 1, Err(E::BadLength)),
            (&[("Content-Length", "5 5")], 1, Err(E::BadLength)),
            (&[("Content-Length", "5,5")], 1, Err(E::DuplicateLength)),
            (&[("Content-Length", "5,")], 1, Err(E::DuplicateLength)),
            (
                &[("Content-Length", "5"), ("Content-Length", "5")],
                1,
                Err(E::DuplicateLength),
            ),
            (&[("Transfer-Encoding", "chunked")], 1, Ok(B::Chunked)),
            (&[("Transfer-Encoding", "CHUNKED")], 1, Ok(B::Chunked)),
            (&[("Transfer-Encoding", "chunked,")], 1, Ok(B::Chunked)),
            (
                &[("Transfer-Encoding", "chunked")],
                0,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "gzip")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "identity")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "chunked, gzip")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "chunked, chunked")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked"),
                ],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "gzip, chunked")],
                1,
                Err(E::UnknownTransferCoding),
            ),
            (
                &[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked"),
                ],
                1,
                Err(E::UnknownTransferCoding),
            ),
            (
                &[("Transfer-Encoding", "chunked;x=1")],
                1,
                Err(E::TransferCodingNotChunked),
            ),
            (
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                1,
                Err(E::LengthAndChunked),
            ),
            (
                &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                1,
                Err(E::LengthAndChunked),
            ),
            (
                &[("Content-Length", "x"), ("Transfer-Encoding", "chunked")],
                1,
                Err(E::LengthAndChunked),
            ),
        ];
        for (headers, minor, want) in cases {
            assert_eq!(run(headers, *minor), *want, "{headers:?} HTTP/1.{minor}");
        }
    }

    #[test]
    fn trim_and_list() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        let v: Vec<&[u8]> = list_elements(b" close ,, keep-alive,").collect();
        assert_eq!(v, [&b"close"[..], &b"keep-alive"[..]]);
    }
}
