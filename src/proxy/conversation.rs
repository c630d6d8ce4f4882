//! Responses conversations the gateway owns: a turn's input as items, a stored conversation
//! expanded into the upstream request, and the record kept of an answer.
//!
//! `previous_response_id` never reaches a provider: the stored items of every earlier turn (each
//! turn's input items, then its output items, oldest first) are put in front of this turn's
//! `input`, and the member is dropped. Every provider then sees a plain, whole conversation, in
//! the Responses shape it is relayed or translated from, so a conversation may move between
//! providers turn by turn. Everything here works on the raw JSON with the in-place scanner: a
//! member is copied as it came, never re-serialized.

use crate::error::{Error, ErrorKind};
use crate::scan::members::{elements, get, members, str_content};

/// Appends this turn's `input` (its raw JSON value) as a JSON array of items: a string is one
/// user message, as the Responses API reads it; an array is taken as it is.
pub fn turn_items(input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let v = input.trim_ascii();
    match v.first() {
        Some(b'"') => {
            out.extend_from_slice(br#"[{"type":"message","role":"user","content":"#);
            out.extend_from_slice(v);
            out.extend_from_slice(b"}]");
            Ok(())
        }
        Some(b'[') => {
            out.extend_from_slice(v);
            Ok(())
        }
        _ => Err(Error::client(
            ErrorKind::InvalidRequest,
            "`input` must be a string or an array of items",
        )),
    }
}

/// Appends the concatenation of two JSON arrays.
pub fn concat(a: &[u8], b: &[u8], out: &mut Vec<u8>) {
    let a = inner(a);
    let b = inner(b);
    out.push(b'[');
    out.extend_from_slice(a);
    if !a.is_empty() && !b.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b);
    out.push(b']');
}

/// The upstream body of a turn that continues a stored conversation: the client's members in
/// their order, less `previous_response_id`, with `input` = `history` (a JSON array) followed
/// by this turn's items (`turn`, a JSON array).
pub fn expand(body: &[u8], history: &[u8], turn: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let bad = || Error::client(ErrorKind::InvalidRequest, "the body is not a JSON object");
    let ms = members(body).ok_or_else(bad)?;
    out.push(b'{');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::replace(&mut first, false) {
            out.push(b',');
        }
    };
    for m in ms {
        let (k, v) = m.map_err(|_| bad())?;
        if k == b"previous_response_id" || k == b"input" {
            continue;
        }
        sep(out);
        out.push(b'"');
        out.extend_from_slice(k);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    sep(out);
    out.extend_from_slice(b"\"input\":");
    concat(history, turn, out);
    out.push(b'}');
    Ok(())
}

/// What is kept of an answered turn, read from the response object the client got.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered<'a> {
    /// `id`, unescaped content (response ids are plain ASCII).
    pub id: &'a str,
    /// `status`: `completed`, `incomplete`, `failed`.
    pub status: &'a str,
    /// `created_at`, when the answer has one.
    pub created_at: Option<u64>,
    /// `output`: the raw JSON array of output items.
    pub output: &'a [u8],
}

/// Reads the parts of a response object a record needs; `None` when it is not one (no string
/// `id`, no `output` array).
pub fn answered(response: &[u8]) -> Option<Answered<'_>> {
    let id = str_content(get(response, b"id")?)?;
    let id = std::str::from_utf8(id).ok().filter(|s| !s.contains('\\'))?;
    let status = get(response, b"status")
        .and_then(str_content)
        .and_then(|s| std::str::from_utf8(s).ok())
        .unwrap_or("completed");
    let output = get(response, b"output")?;
    elements(output)?;
    let created_at = get(response, b"created_at").and_then(crate::scan::members::as_u64);
    Some(Answered {
        id,
        status,
        created_at,
        output,
    })
}

/// A response id as clients may send it: 1 to 128 bytes of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

/// The inside of a JSON array, trimmed (empty for `[]`).
fn inner(a: &[u8]) -> &[u8] {
    let a = a.trim_ascii();
    match a {
        [b'[', rest @ .., b']'] => rest.trim_ascii(),
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn a_string_input_is_one_user_message() {
        let mut out = Vec::new();
        turn_items(br#" "Hi \"there\"" "#, &mut out).unwrap();
        assert_eq!(
            s(&out),
            r#"[{"type":"message","role":"user","content":"Hi \"there\""}]"#
        );
        out.clear();
        turn_items(br#"[{"role":"user","content":"a"}]"#, &mut out).unwrap();
        assert_eq!(s(&out), r#"[{"role":"user","content":"a"}]"#);
        assert!(turn_items(b"42", &mut out).is_err());
    }

    #[test]
    fn expansion_drops_the_id_and_puts_history_first() {
        let body = br#"{"model":"m","previous_response_id":"resp_1","input":"next","stream":true}"#;
        let mut turn = Vec::new();
        turn_items(br#""next""#, &mut turn).unwrap();
        let mut out = Vec::new();
        expand(body, br#"[{"a":1}, {"b":2}]"#, &turn, &mut out).unwrap();
        assert_eq!(
            s(&out),
            r#"{"model":"m","stream":true,"input":[{"a":1}, {"b":2},{"type":"message","role":"user","content":"next"}]}"#
        );
        crate::scan::members::validate(&out).unwrap();
        out.clear();
        expand(br#"{"input":[]}"#, b"[]", b"[]", &mut out).unwrap();
        assert_eq!(s(&out), r#"{"input":[]}"#);
    }

    #[test]
    fn a_response_object_gives_its_record_parts() {
        let r = br#"{"id":"resp_9","object":"response","created_at":17,"status":"completed","output":[{"type":"message"}]}"#;
        let a = answered(r).unwrap();
        assert_eq!(a.id, "resp_9");
        assert_eq!(a.status, "completed");
        assert_eq!(a.created_at, Some(17));
        assert_eq!(s(a.output), r#"[{"type":"message"}]"#);
        assert!(answered(br#"{"id":"x"}"#).is_none());
        assert!(answered(br#"{"id":1,"output":[]}"#).is_none());
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id(b"resp_abc-1"));
        assert!(!valid_id(b""));
        assert!(!valid_id(b"resp/../x"));
        assert!(!valid_id(&[b'a'; 129]));
    }
}
