//! A stored response's bytes: the record layout written to the store, read back without copying,
//! and the joining of JSON item arrays into one conversation. Pure and synchronous.
//!
//! Layout (little-endian; every length a `u32`, so a record is at most 4 GiB, far above
//! [`super::MAX_RECORD_BYTES`]):
//!
//! ```text
//! version u8 | seq u64 | stored_at u64 | created_at u64 | has_previous u8
//! | previous str | model str | status str | input bytes | output bytes | response bytes
//! ```
//!
//! `str`/`bytes` are a length then that many bytes (`previous` is empty when absent). `seq` is
//! the store's insertion number (its age index key), `stored_at` the store clock's reading at
//! `put` (what `ttl_s` counts from). The version byte lets a later layout be read beside this one;
//! a record of an unknown version, or one whose lengths do not add up, is [`Corrupt`], never a
//! panic: the bytes come from disk.
//!
//! [`Corrupt`]: super::StateErrorKind::Corrupt

use super::Record;

/// The layout written by this build.
pub const VERSION: u8 = 1;

/// Fixed part: version, seq, stored_at, created_at, has_previous, and six length prefixes.
const FIXED: usize = 1 + 8 + 8 + 8 + 1 + 6 * 4;

/// What the store keeps beside a record's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The store's insertion number: its age index key.
    pub seq: u64,
    /// The store clock at `put`, in unix seconds.
    pub stored_at: u64,
}

/// A stored record read in place: every field borrows the stored bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct View<'a> {
    /// Insertion number and store time.
    pub stamp: Stamp,
    /// Unix seconds, as the client saw it.
    pub created_at: u64,
    /// The turn this one continued.
    pub previous: Option<&'a str>,
    /// Gateway model id.
    pub model: &'a str,
    /// `completed` | `failed` | `incomplete`.
    pub status: &'a str,
    /// This turn's input items (a JSON array).
    pub input: &'a [u8],
    /// This turn's output items (a JSON array).
    pub output: &'a [u8],
    /// The whole response object.
    pub response: &'a [u8],
}

/// Why stored bytes could not be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A version byte this build does not know.
    Version(u8),
    /// Lengths that run past the end, or bytes left over.
    Truncated,
    /// A text field that is not UTF-8.
    Utf8,
}

/// Bytes `encode` will write for `rec` (without the key).
pub fn encoded_len(rec: &Record) -> usize {
    FIXED
        + rec.previous.as_deref().map_or(0, str::len)
        + rec.model.len()
        + rec.status.len()
        + rec.input.len()
        + rec.output.len()
        + rec.response.len()
}

/// Writes `rec` with its stamp into `out` (cleared first). The caller has checked the size
/// against [`super::MAX_RECORD_BYTES`], so every length fits its `u32`.
pub fn encode(rec: &Record, stamp: Stamp, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(encoded_len(rec));
    out.push(VERSION);
    out.extend_from_slice(&stamp.seq.to_le_bytes());
    out.extend_from_slice(&stamp.stored_at.to_le_bytes());
    out.extend_from_slice(&rec.created_at.to_le_bytes());
    out.push(rec.previous.is_some() as u8);
    for field in [
        rec.previous.as_deref().unwrap_or("").as_bytes(),
        rec.model.as_bytes(),
        rec.status.as_bytes(),
        &rec.input,
        &rec.output,
        &rec.response,
    ] {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
}

/// Reads a stored record in place.
pub fn decode(bytes: &[u8]) -> Result<View<'_>, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let seq = r.u64()?;
    let stored_at = r.u64()?;
    let created_at = r.u64()?;
    let has_previous = r.take(1)?[0] != 0;
    let previous = r.str()?;
    let model = r.str()?;
    let status = r.str()?;
    let input = r.bytes()?;
    let output = r.bytes()?;
    let response = r.bytes()?;
    if !r.0.is_empty() {
        return Err(DecodeError::Truncated);
    }
    Ok(View {
        stamp: Stamp { seq, stored_at },
        created_at,
        previous: has_previous.then_some(previous),
        model,
        status,
        input,
        output,
        response,
    })
}

impl View<'_> {
    /// An owned [`Record`] under `id`.
    pub fn to_record(&self, id: &str) -> Record {
        Record {
            id: id.to_string(),
            previous: self.previous.map(str::to_string),
            model: self.model.to_string(),
            created_at: self.created_at,
            status: self.status.to_string(),
            input: self.input.to_vec(),
            output: self.output.to_vec(),
            response: self.response.to_vec(),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| DecodeError::Truncated)?,
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().map_err(|_| DecodeError::Truncated)?);
        self.take(n as usize)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Utf8)
    }
}

/// The items of a JSON array: the bytes between its brackets, trimmed of JSON whitespace
/// (RFC 8259 §2); `None` when `array` is not bracketed. Only the brackets are checked: the
/// gateway wrote these arrays itself and validates what clients send before it gets here.
pub fn array_items(array: &[u8]) -> Option<&[u8]> {
    let inner = trim(array).strip_prefix(b"[")?.strip_suffix(b"]")?;
    Some(trim(inner))
}

fn trim(mut b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    while b.first().is_some_and(ws) {
        b = &b[1..];
    }
    while b.last().is_some_and(ws) {
        b = &b[..b.len() - 1];
    }
    b
}

/// Appends the items of `array` to the open array in `out` (which starts with `[`), with a comma
/// when both sides have items. `array` was checked by [`array_items`] at `put`; one that no longer
/// parses adds nothing.
pub fn push_items(out: &mut Vec<u8>, array: &[u8]) {
    let Some(items) = array_items(array) else {
        return;
    };
    if items.is_empty() {
        return;
    }
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(items);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            id: "resp_1".into(),
            previous: Some("resp_0".into()),
            model: "gpt-5-mini".into(),
            created_at: 1_700_000_000,
            status: "completed".into(),
            input: br#"[{"role":"user","content":"hi"}]"#.to_vec(),
            output: br#"[{"type":"message"}]"#.to_vec(),
            response: br#"{"id":"resp_1"}"#.to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let mut out = Vec::new();
        let stamp = Stamp {
            seq: 7,
            stored_at: 99,
        };
        for previous in [Some("resp_0".to_string()), Some(String::new()), None] {
            let r = Record { previous, ..rec() };
            encode(&r, stamp, &mut out);
            assert_eq!(out.len(), encoded_len(&r));
            let v = decode(&out).unwrap();
            assert_eq!(v.stamp, stamp);
            assert_eq!(v.to_record("resp_1"), r);
        }
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let mut out = Vec::new();
        encode(
            &rec(),
            Stamp {
                seq: 1,
                stored_at: 2,
            },
            &mut out,
        );
        // Every truncation, an extra byte, a wrong version, a length past the end, bad UTF-8.
        for n in 0..out.len() {
            assert!(decode(&out[..n]).is_err(), "truncated at {n}");
        }
        let mut long = out.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::Truncated));
        let mut v = out.clone();
        v[0] = 9;
        assert_eq!(decode(&v), Err(DecodeError::Version(9)));
        let mut len = out.clone();
        len[FIXED - 6 * 4..FIXED - 5 * 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&len), Err(DecodeError::Truncated));
        let mut utf = out.clone();
        let model_at = 1 + 8 + 8 + 8 + 1 + 4 + "resp_0".len() + 4;
        utf[model_at] = 0xff;
        assert_eq!(decode(&utf), Err(DecodeError::Utf8));
    }

    #[test]
    fn array_items_table() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"[]", Some(b"")),
            (b" [ ] ", Some(b"")),
            (b"[1]", Some(b"1")),
            (b"\n[ {\"a\":[1]} , 2 ]\r\n", Some(b"{\"a\":[1]} , 2")),
            (b"", None),
            (b"{}", None),
            (b"[1", None),
            (b"1]", None),
            (b"null", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                array_items(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn push_items_joins_with_commas() {
        let mut out = b"[".to_vec();
        for a in [&b"[]"[..], b"[1]", b" [ ] ", b"[2, 3]", b"[{\"x\":[]}]"] {
            push_items(&mut out, a);
        }
        out.push(b']');
        assert_eq!(out, b"[1,2, 3,{\"x\":[]}]");
    }
}
