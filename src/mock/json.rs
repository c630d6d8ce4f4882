//! Append-only JSON writing into a caller's reused buffer.
//!
//! The mock writes every body and SSE event with these helpers instead of a serializer so that a
//! streamed event costs no allocation: bytes go straight into the caller's `Vec<u8>`. Strings are
//! escaped per RFC 8259 §7 (quote, backslash and the C0 controls; everything else is copied as
//! UTF-8, which JSON allows).

/// Appends raw bytes, already valid JSON (or SSE framing).
#[inline]
pub(crate) fn raw(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escaped(out, s);
    out.push(b'"');
}

/// Appends `s` as a quoted JSON string, or `null`.
pub(crate) fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => raw(out, "null"),
    }
}

/// Appends the escaped content of `s` without quotes (the gateway's own JSON escaper).
pub(crate) fn escaped(out: &mut Vec<u8>, s: &str) {
    crate::scan::push_json_escaped(out, s);
}

/// Appends `n` in decimal.
pub(crate) use crate::digits::push_u64 as uint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "\"plain\""),
            ("a\"b", "\"a\\\"b\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("line\nfeed\r\t", "\"line\\nfeed\\r\\t\""),
            ("\u{1}\u{1f}\u{8}\u{c}", "\"\\u0001\\u001f\\b\\f\""),
            ("héllo ✓", "\"héllo ✓\""),
            ("", "\"\""),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            string(&mut out, input);
            assert_eq!(std::str::from_utf8(&out).unwrap(), *want, "input {input:?}");
        }
    }

    #[test]
    fn uints() {
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            uint(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
