//! Small JSON writers shared by the provider writers: numbers, strings, values re-encoded
//! from the client's parse, and the check that an OpenAI arguments text is an object.

use std::io::Write as _;

use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

pub use crate::scan::{push_json_escaped as escaped, push_json_string as string};

/// Appends a JSON number for an integer.
pub fn u64(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}");
}

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
    string(out, &v.encode());
}

/// Appends an OpenAI arguments text as an object: itself when it parses as a JSON object,
/// `{}` when it is empty or anything else (Anthropic's `input` must be an object; a model
/// cut short by `max_tokens` leaves a truncated text in history).
pub fn args_object(out: &mut Vec<u8>, text: &str, scratch: &mut Vec<u8>) {
    let t = text.trim();
    if t.starts_with('{') {
        scratch.clear();
        scratch.extend_from_slice(t.as_bytes());
        if let Ok(v) = simd_json::to_borrowed_value(scratch) {
            if v.is_object() {
                out.extend_from_slice(t.as_bytes());
                return;
            }
        }
    }
    out.extend_from_slice(b"{}");
}
