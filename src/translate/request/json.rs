//! Small JSON writers shared by the provider writers: numbers, strings, values re-encoded
//! from the client's parse, and the check that an OpenAI arguments text is an object.

use std::io::Write as _;

use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

use crate::scan::{scan_top_level, ScanError};

/// Appends `s` as a JSON string literal (the gateway's one escaper, [`crate::scan`]).
pub use crate::scan::push_json_string as string;

/// Appends the escaped content of `s` without quotes.
pub use crate::scan::push_json_escaped as escaped;

/// Appends a JSON number for an integer.
pub use crate::digits::push_u64 as u64;

/// Appends a JSON number for a float (Rust's shortest round-trip form is valid JSON for every
/// finite value, and a parsed JSON number is always finite).
pub fn f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = write!(out, "{f}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a value as JSON (member order kept for objects of up to 32 members, which is
/// how simd-json stores them).
pub fn value(out: &mut Vec<u8>, v: &Value<'_>) {
    // Writing into a Vec cannot fail.
    let _ = v.write(out);
}

/// Appends a value re-encoded as a JSON string literal (Anthropic `input` -> OpenAI
/// `arguments`).
pub fn value_as_string(out: &mut Vec<u8>, v: &Value<'_>) {
    // Written in place, then escaped from a copy of the written bytes: one copy of the
    // value's text instead of an allocated string per call.
    let start = out.len();
    value(out, v);
    let raw = out.split_off(start);
    match std::str::from_utf8(&raw) {
        Ok(text) => string(out, text),
        Err(_) => out.extend_from_slice(b"\"{}\""),
    }
}

/// Appends an OpenAI arguments text as an object: itself when it parses as a JSON object,
/// `{}` when it is empty or anything else (Anthropic's `input` must be an object; a model
/// cut short by `max_tokens` leaves a truncated text in history).
///
/// The check is the gateway's own scanner, which validates a whole object without building
/// a tree (a second simd-json parse per call cost more than the rest of the call's
/// translation). A key the scanner tracks seen twice is still valid JSON.
///
/// The scanner follows RFC 8259's grammar, which takes any exponent (`11e400`); a provider's
/// parser rejects a number past `f64`'s range. So text with an exponent, rare in arguments, is
/// also parsed (on a copy) and sent only if that parse takes it.
pub fn args_object(out: &mut Vec<u8>, text: &str) {
    let t = text.trim();
    let ok = match scan_top_level(t.as_bytes()) {
        Ok(_) | Err(ScanError::DuplicateKey(_)) => {
            !has_exponent(t.as_bytes()) || simd_json::to_tape(&mut t.as_bytes().to_vec()).is_ok()
        }
        Err(_) => false,
    };
    if ok {
        out.extend_from_slice(t.as_bytes());
    } else {
        out.extend_from_slice(b"{}");
    }
}

/// Whether valid JSON `t` has a number with an exponent: an `e` or `E` right after a digit,
/// outside strings (`true` and `false` have theirs after letters).
fn has_exponent(t: &[u8]) -> bool {
    let (mut in_str, mut esc) = (false, false);
    for (i, &c) in t.iter().enumerate() {
        if in_str {
            match c {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
        } else if c == b'"' {
            in_str = true;
        } else if (c == b'e' || c == b'E') && i > 0 && t[i - 1].is_ascii_digit() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod args_tests {
    use super::args_object;

    fn args(text: &str) -> String {
        let mut out = Vec::new();
        args_object(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    /// Fuzz finding: `11e400` is RFC 8259 grammar but past `f64`; a provider's parser (and
    /// simd-json) rejects it, so it must never reach an Anthropic `input`.
    #[test]
    fn numbers_past_f64_are_not_sent_as_arguments() {
        assert_eq!(args(r#"{"a":11e400}"#), "{}");
        assert_eq!(
            args(r#"{"a":1.5e3,"b":true,"c":"1e999"}"#),
            r#"{"a":1.5e3,"b":true,"c":"1e999"}"#
        );
        assert_eq!(args(r#" {"a":false} "#), r#"{"a":false}"#);
    }
}
