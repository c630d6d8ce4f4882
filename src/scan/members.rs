//! Reading into one JSON value in place: the members of an object, the elements of an array,
//! a string's escaped content, an unsigned integer.
//!
//! Built for small documents read once (an SSE event's `data`, an upstream answer): values
//! come back as raw byte slices of the input (strings with their quotes), nothing is copied
//! or unescaped, nothing allocates. Each value handed out has been validated by the scanner's
//! skipper (strings: escapes and control bytes; numbers: the RFC 8259 §6 grammar; nesting:
//! [`MAX_DEPTH`](super::MAX_DEPTH)), so a string's raw content can be copied into another JSON
//! string literal as is. UTF-8 is the caller's to check, once per document. Keys are compared
//! raw: providers never escape the member names they write.

use super::lex::{skip_string, skip_value, skip_ws};
use super::ScanError;

/// The members of a JSON object, in order: `(raw key without quotes, raw value)`.
///
/// Stops (yielding an error once) at the first syntax error.
#[derive(Clone, Debug)]
pub struct Members<'a> {
    b: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

/// The elements of a JSON array, in order, as raw values.
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    b: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

fn err(i: usize) -> ScanError {
    ScanError::Syntax { offset: i as u32 }
}

/// The members of `value`, which must be an object (leading whitespace allowed); `None` if it
/// is not one.
pub fn members(value: &[u8]) -> Option<Members<'_>> {
    let i = skip_ws(value, 0);
    (value.get(i) == Some(&b'{')).then_some(Members {
        b: value,
        i: i + 1,
        first: true,
        done: false,
    })
}

/// The elements of `value`, which must be an array; `None` if it is not one.
pub fn elements(value: &[u8]) -> Option<Elements<'_>> {
    let i = skip_ws(value, 0);
    (value.get(i) == Some(&b'[')).then_some(Elements {
        b: value,
        i: i + 1,
        first: true,
        done: false,
    })
}

/// Skips `,` (or nothing before the first item) and reports whether `close` ends the container.
fn next_item(b: &[u8], i: &mut usize, first: &mut bool, close: u8) -> Result<bool, ScanError> {
    let mut j = skip_ws(b, *i);
    if b.get(j) == Some(&close) {
        *i = j + 1;
        return Ok(false);
    }
    if !*first {
        if b.get(j) != Some(&b',') {
            return Err(err(j));
        }
        j = skip_ws(b, j + 1);
    }
    *first = false;
    *i = j;
    Ok(true)
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = (|| {
            if !next_item(self.b, &mut self.i, &mut self.first, b'}')? {
                return Ok(None);
            }
            let k = self.i;
            if self.b.get(k) != Some(&b'"') {
                return Err(err(k));
            }
            let (kend, _) = skip_string(self.b, k)?;
            let c = skip_ws(self.b, kend);
            if self.b.get(c) != Some(&b':') {
                return Err(err(c));
            }
            let v = skip_ws(self.b, c + 1);
            let vend = skip_value(self.b, v)?;
            self.i = vend;
            Ok(Some((&self.b[k + 1..kend - 1], &self.b[v..vend])))
        })();
        match r {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<&'a [u8], ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = (|| {
            if !next_item(self.b, &mut self.i, &mut self.first, b']')? {
                return Ok(None);
            }
            let v = self.i;
            let vend = skip_value(self.b, v)?;
            self.i = vend;
            Ok(Some(&self.b[v..vend]))
        })();
        match r {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates `value` as exactly one JSON value with optional whitespace around it.
pub fn validate(value: &[u8]) -> Result<(), ScanError> {
    let i = skip_ws(value, 0);
    let end = skip_ws(value, skip_value(value, i)?);
    if end == value.len() {
        Ok(())
    } else {
        Err(err(end))
    }
}

/// The value of member `key` of object `value`, if present (the first one).
pub fn get<'a>(value: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    members(value)?
        .map_while(Result::ok)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The escaped content of a raw string value (between its quotes), or `None` for any other
/// value.
pub fn str_content(value: &[u8]) -> Option<&[u8]> {
    match value {
        [b'"', inner @ .., b'"'] => Some(inner),
        _ => None,
    }
}

/// A raw number value as `u64`: non-negative integers only (a fraction or exponent, as some
/// providers write token counts, is truncated toward zero); `None` otherwise.
pub fn as_u64(value: &[u8]) -> Option<u64> {
    let digits = value.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let rest = &value[digits..];
    if !rest.is_empty() && !matches!(rest[0], b'.' | b'e' | b'E') {
        return None;
    }
    if matches!(rest.first(), Some(b'e' | b'E')) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in &value[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// Decodes a string's escaped content into `out` (cleared first); false if malformed.
pub fn unescape_into(content: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    super::lex::unescape(content, |piece| {
        out.extend_from_slice(piece);
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_elements_and_scalars() {
        let doc = br#" {"a" : 1, "b":[1, {"c":"x\"y"}, []], "d":null ,"e":"\u00e9"} "#;
        let ms: Vec<_> = members(doc).unwrap().map(Result::unwrap).collect();
        assert_eq!(ms.len(), 4);
        assert_eq!(ms[0], (&b"a"[..], &b"1"[..]));
        let b = get(doc, b"b").unwrap();
        let els: Vec<_> = elements(b).unwrap().map(Result::unwrap).collect();
        assert_eq!(els.len(), 3);
        assert_eq!(
            str_content(get(els[1], b"c").unwrap()),
            Some(&br#"x\"y"#[..])
        );
        assert_eq!(get(doc, b"d"), Some(&b"null"[..]));
        assert_eq!(get(doc, b"z"), None);
        assert_eq!(as_u64(b"42"), Some(42));
        assert_eq!(as_u64(b"42.0"), Some(42));
        assert_eq!(as_u64(b"-1"), None);
        assert_eq!(as_u64(b"1e3"), None);
        let mut s = Vec::new();
        assert!(unescape_into(
            str_content(get(doc, b"e").unwrap()).unwrap(),
            &mut s
        ));
        assert_eq!(s, "é".as_bytes());
        assert!(validate(doc).is_ok());
    }

    #[test]
    fn broken_documents_stop_with_an_error() {
        for doc in [
            &br#"{"a":1 "b":2}"#[..],
            br#"{"a":}"#,
            br#"{"a":1,"#,
            br#"{"a":"x"#,
            b"{1:2}",
        ] {
            let r: Vec<_> = members(doc).unwrap().collect();
            assert!(
                r.last().unwrap().is_err(),
                "{:?}",
                String::from_utf8_lossy(doc)
            );
        }
        assert!(members(b"[1]").is_none());
        assert!(elements(b"{}").is_none());
        assert!(validate(b"{} x").is_err());
        let r: Vec<_> = elements(b"[1,,2]").unwrap().collect();
        assert!(r.last().unwrap().is_err());
    }
}
