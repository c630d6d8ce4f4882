//! RESP2, the Redis serialization protocol: commands out ([`write_command`]), replies in
//! ([`parse_reply`]). Pure and synchronous; the client in `redis::client` does the IO.
//!
//! A command is an array of bulk strings (`*N\r\n` then `$len\r\narg\r\n` per argument), the
//! only form Redis accepts from clients besides inline commands. A reply is one of five types:
//! `+simple`, `-error`, `:integer`, `$bulk` (`$-1` is nil) and `*array` (`*-1` is nil), each
//! header line ending in CRLF (the RESP2 specification, "RESP protocol description").
//!
//! Parsing is two passes over a buffer that may end anywhere: [`reply_len`] walks the headers
//! without allocating or recursing (a stack of counts, at most [`MAX_DEPTH`] deep) and says
//! whether a whole reply is there; only then are values built, by a recursion that the first
//! pass has bounded. A truncated reply costs a walk of its headers, never an allocation, so a
//! large reply arriving in many reads is not rebuilt at each one.
//!
//! Strictness: every line ends in CRLF (a bare LF is an error), a simple string or error holds
//! no CR, integers are `[-]digits` that fit `i64`, lengths are digits or `-1`, a bulk string
//! is followed by CRLF. Anything else is a [`RespError`], after which the stream's reply
//! boundaries are lost and the connection must be closed.

use memchr::memchr;

/// Deepest nesting of arrays accepted. Redis's replies to the commands the gateway sends
/// nest at most 4 deep (`EXEC` of `XRANGE`); the bound keeps a broken or hostile server from
/// driving the value builder's recursion into a stack overflow, which would abort the
/// process rather than fail one call.
pub const MAX_DEPTH: usize = 32;

/// Longest header line (type byte to CRLF) accepted: error messages are short and every
/// length fits in 20 digits, so only a broken stream gets near it.
pub const MAX_LINE: usize = 64 * 1024;

/// Largest bulk string accepted: Redis's own `proto-max-bulk-len` default (512 MiB). The
/// client bounds a whole reply further (`client::MAX_REPLY_BYTES`).
pub const MAX_BULK: usize = 512 * 1024 * 1024;

/// Most elements announced by one array header (Redis caps an aggregate at `2^32 - 1`).
pub const MAX_ARRAY: usize = u32::MAX as usize;

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `$-1` or `*-1`: no such key, a `GET` miss, a timed-out blocking pop.
    Nil,
    /// `+OK`, the commonest simple string, decoded without allocating.
    Ok,
    /// Any other simple string (`+PONG`, `+QUEUED`).
    Simple(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$len` and that many bytes.
    Bulk(Vec<u8>),
    /// `*n` and `n` replies.
    Array(Vec<Value>),
    /// `-ERR ...`: an error reply, kept as a value inside arrays (`EXEC`) and pipelines.
    Error(Vec<u8>),
}

impl Value {
    /// The bytes of a bulk or simple string (`OK` for [`Value::Ok`]).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Simple(b) => Some(b),
            Value::Ok => Some(b"OK"),
            _ => None,
        }
    }

    /// The integer of an `:n` reply, or of a bulk string holding one (`GET` of a counter).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bulk(b) => parse_i64(b).ok(),
            _ => None,
        }
    }
}

/// Why a reply did not parse. The connection's framing is lost after any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// The type byte is none of `+ - : $ *`.
    BadType,
    /// A line not ending in CRLF (bare LF, a CR inside a simple string or error), or a bulk
    /// string not followed by CRLF.
    BadLine,
    /// A length that is neither digits nor `-1`, or an integer that is not `[-]digits`
    /// within `i64`.
    BadNumber,
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A header line past [`MAX_LINE`], a bulk string past [`MAX_BULK`] or an array past
    /// [`MAX_ARRAY`].
    TooLarge,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RespError::BadType => "unknown reply type",
            RespError::BadLine => "line not ending in CRLF",
            RespError::BadNumber => "malformed number",
            RespError::TooDeep => "arrays nested too deep",
            RespError::TooLarge => "reply element too large",
        })
    }
}

/// Appends `args` as one command (an array of bulk strings). `args` must not be empty: Redis
/// answers nothing to an empty array, which would shift every later reply.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    crate::digits::push_u64(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        crate::digits::push_u64(out, a.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses the reply at the front of `buf`: the value and the bytes it took, `Ok(None)` while
/// it is incomplete.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    let Some(len) = reply_len(buf)? else {
        return Ok(None);
    };
    let mut pos = 0;
    let v = build(&buf[..len], &mut pos, 0)?;
    Ok(Some((v, len)))
}

/// The length of the complete reply at the front of `buf`, `Ok(None)` while it is incomplete.
/// Walks headers only: no allocation, no recursion.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, RespError> {
    let mut pos = 0;
    // Elements still due in each open array, outermost first.
    let mut due = [0usize; MAX_DEPTH];
    let mut depth = 0;
    loop {
        let Some((head, next)) = parse_head(buf, pos)? else {
            return Ok(None);
        };
        pos = next;
        match head {
            Head::Bulk(Some(n)) => {
                if buf.len() < pos + n + 2 {
                    return Ok(None);
                }
                if &buf[pos + n..pos + n + 2] != b"\r\n" {
                    return Err(RespError::BadLine);
                }
                pos += n + 2;
            }
            Head::Array(Some(n)) if n > 0 => {
                if depth == MAX_DEPTH {
                    return Err(RespError::TooDeep);
                }
                due[depth] = n;
                depth += 1;
                continue;
            }
            _ => {}
        }
        // One element ended: close every array it completes.
        loop {
            if depth == 0 {
                return Ok(Some(pos));
            }
            due[depth - 1] -= 1;
            if due[depth - 1] > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// A header line.
enum Head {
    /// `+`: the bytes' range.
    Simple(usize, usize),
    /// `-`: the message's range.
    Error(usize, usize),
    /// `:`
    Int(i64),
    /// `$`: the length, `None` for nil.
    Bulk(Option<usize>),
    /// `*`: the count, `None` for nil.
    Array(Option<usize>),
}

/// Parses the header line at `buf[pos..]` and returns it with the position after its CRLF;
/// `Ok(None)` while the line is incomplete.
fn parse_head(buf: &[u8], pos: usize) -> Result<Option<(Head, usize)>, RespError> {
    let Some(&ty) = buf.get(pos) else {
        return Ok(None);
    };
    let start = pos + 1;
    let rest = &buf[start..];
    let window = &rest[..rest.len().min(MAX_LINE + 1)];
    let Some(lf) = memchr(b'\n', window) else {
        return if rest.len() > MAX_LINE {
            Err(RespError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return Err(RespError::BadLine);
    }
    let text = &rest[..lf - 1];
    if memchr(b'\r', text).is_some() {
        return Err(RespError::BadLine);
    }
    let end = start + text.len();
    let head = match ty {
        b'+' => Head::Simple(start, end),
        b'-' => Head::Error(start, end),
        b':' => Head::Int(parse_i64(text)?),
        b'$' => Head::Bulk(parse_len(text, MAX_BULK)?),
        b'*' => Head::Array(parse_len(text, MAX_ARRAY)?),
        _ => return Err(RespError::BadType),
    };
    Ok(Some((head, end + 2)))
}

/// `-1` (nil) or digits no larger than `max`.
fn parse_len(text: &[u8], max: usize) -> Result<Option<usize>, RespError> {
    if text == b"-1" {
        return Ok(None);
    }
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if n > max as u64 {
        return Err(RespError::TooLarge);
    }
    Ok(Some(n as usize))
}

/// `[-]digits` within `i64`.
fn parse_i64(text: &[u8]) -> Result<i64, RespError> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    let mut n: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if neg {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(RespError::BadNumber)?;
    }
    Ok(n)
}

/// Builds the value at `buf[*pos..]`, which [`reply_len`] found complete and at most
/// [`MAX_DEPTH`] deep (checked again, so a mismatch is an error, not a panic).
fn build(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Value, RespError> {
    let Some((head, next)) = parse_head(buf, *pos)? else {
        return Err(RespError::BadLine);
    };
    *pos = next;
    Ok(match head {
        Head::Simple(s, e) if &buf[s..e] == b"OK" => Value::Ok,
        Head::Simple(s, e) => Value::Simple(buf[s..e].to_vec()),
        Head::Error(s, e) => Value::Error(buf[s..e].to_vec()),
        Head::Int(n) => Value::Int(n),
        Head::Bulk(None) | Head::Array(None) => Value::Nil,
        Head::Bulk(Some(n)) => {
            let data = buf.get(next..next + n).ok_or(RespError::BadLine)?;
            *pos = next + n + 2;
            Value::Bulk(data.to_vec())
        }
        Head::Array(Some(n)) => {
            if depth == MAX_DEPTH {
                return Err(RespError::TooDeep);
            }
            // `reply_len` saw all `n` elements, each at least 3 bytes: `n` is real.
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(build(buf, pos, depth + 1)?);
            }
            Value::Array(items)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(b: &[u8]) -> Value {
        Value::Bulk(b.to_vec())
    }

    /// Replies and what they parse to.
    fn replies() -> Vec<(&'static [u8], Value)> {
        vec![
            (b"+OK\r\n", Value::Ok),
            (b"+PONG\r\n", Value::Simple(b"PONG".to_vec())),
            (b"+\r\n", Value::Simple(Vec::new())),
            (
                b"-ERR unknown command 'FOO'\r\n",
                Value::Error(b"ERR unknown command 'FOO'".to_vec()),
            ),
            (b":0\r\n", Value::Int(0)),
            (b":-42\r\n", Value::Int(-42)),
            (b":9223372036854775807\r\n", Value::Int(i64::MAX)),
            (b":-9223372036854775808\r\n", Value::Int(i64::MIN)),
            (b"$-1\r\n", Value::Nil),
            (b"*-1\r\n", Value::Nil),
            (b"$0\r\n\r\n", bulk(b"")),
            (b"$5\r\nhello\r\n", bulk(b"hello")),
            // Binary-safe: CR, LF and NUL inside a bulk string are data.
            (b"$6\r\na\r\nb\0c\r\n", bulk(b"a\r\nb\0c")),
            (b"*0\r\n", Value::Array(Vec::new())),
            (
                b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n",
                Value::Array(vec![bulk(b"a"), Value::Nil, Value::Int(7)]),
            ),
            (
                b"*2\r\n*2\r\n+OK\r\n-WRONGTYPE x\r\n*0\r\n",
                Value::Array(vec![
                    Value::Array(vec![Value::Ok, Value::Error(b"WRONGTYPE x".to_vec())]),
                    Value::Array(Vec::new()),
                ]),
            ),
        ]
    }

    #[test]
    fn parses_each_reply_type() {
        for (wire, want) in replies() {
            let got = parse_reply(wire);
            assert_eq!(
                got,
                Ok(Some((want, wire.len()))),
                "{:?}",
                wire.escape_ascii()
            );
        }
    }

    /// Malformed replies and the error each gives.
    #[test]
    fn refuses_malformed_replies() {
        let table: &[(&[u8], RespError)] = &[
            (b"!3\r\nabc\r\n", RespError::BadType),
            (b"OK\r\n", RespError::BadType),
            (b"+OK\n", RespError::BadLine),
            (b"+O\rK\r\n", RespError::BadLine),
            (b"-ERR\n", RespError::BadLine),
            (b"$5\r\nhello!!", RespError::BadLine),
            (b"*1\r\n$1\r\nab\r\n", RespError::BadLine),
            (b":\r\n", RespError::BadNumber),
            (b":+1\r\n", RespError::BadNumber),
            (b": 1\r\n", RespError::BadNumber),
            (b":1.5\r\n", RespError::BadNumber),
            (b":9223372036854775808\r\n", RespError::BadNumber),
            (b":-9223372036854775809\r\n", RespError::BadNumber),
            (b"$-2\r\n", RespError::BadNumber),
            (b"$\r\n", RespError::BadNumber),
            (b"$0x10\r\n", RespError::BadNumber),
            (b"*-0\r\n", RespError::BadNumber),
            (b"$536870913\r\n", RespError::TooLarge),
            (b"*4294967296\r\n", RespError::TooLarge),
        ];
        for (wire, want) in table {
            assert_eq!(parse_reply(wire), Err(*want), "{:?}", wire.escape_ascii());
        }
    }

    #[test]
    fn a_header_line_without_end_is_refused_past_the_limit() {
        let mut wire = b"+".to_vec();
        wire.resize(MAX_LINE, b'a');
        assert_eq!(parse_reply(&wire), Ok(None));
        wire.resize(MAX_LINE + 2, b'a');
        assert_eq!(parse_reply(&wire), Err(RespError::TooLarge));
    }

    #[test]
    fn nesting_is_bounded_without_recursing_on_incomplete_input() {
        let nested = |levels: usize| {
            let mut w = b"*1\r\n".repeat(levels);
            w.extend_from_slice(b":1\r\n");
            w
        };
        let ok = nested(MAX_DEPTH);
        let (v, n) = parse_reply(&ok).unwrap().unwrap();
        assert_eq!(n, ok.len());
        let mut depth = 0;
        let mut v = &v;
        while let Value::Array(items) = v {
            depth += 1;
            v = &items[0];
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(parse_reply(&nested(MAX_DEPTH + 1)), Err(RespError::TooDeep));
        // A hostile depth fails at the bound instead of overflowing the stack.
        assert_eq!(parse_reply(&nested(1_000_000)), Err(RespError::TooDeep));
    }

    /// Every proper prefix of a reply is incomplete, and a stream of replies split at every
    /// byte gives the same values in the same order, whatever the split.
    #[test]
    fn every_split_point_gives_the_same_replies() {
        let all = replies();
        let mut stream = Vec::new();
        for (wire, _) in &all {
            for cut in 0..wire.len() {
                assert_eq!(
                    parse_reply(&wire[..cut]),
                    Ok(None),
                    "{:?} cut at {cut}",
                    wire
                );
            }
            stream.extend_from_slice(wire);
        }
        let want: Vec<Value> = all.into_iter().map(|(_, v)| v).collect();
        for cut in 0..=stream.len() {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(piece);
                while let Some((v, n)) = parse_reply(&buf).unwrap() {
                    got.push(v);
                    buf.drain(..n);
                }
            }
            assert!(buf.is_empty(), "cut at {cut}: bytes left over");
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"SET", b"k", b"a\r\nb"]);
        write_command(&mut out, &[b"GET", b""]);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n"
        );
        let mut long = Vec::new();
        write_command(&mut long, &[&[b'x'; 1234]]);
        assert!(long.starts_with(b"*1\r\n$1234\r\nxxx"));
    }

    #[test]
    fn values_read_as_bytes_and_integers() {
        assert_eq!(Value::Ok.as_bytes(), Some(&b"OK"[..]));
        assert_eq!(bulk(b"12").as_int(), Some(12));
        assert_eq!(Value::Int(-3).as_int(), Some(-3));
        assert_eq!(Value::Nil.as_bytes(), None);
        assert_eq!(bulk(b"x").as_int(), None);
    }
}
