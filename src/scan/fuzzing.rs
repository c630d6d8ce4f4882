//! Differential check of [`scan_top_level`] against simd-json, shared by the unit tests and
//! the fuzz target.
//!
//! The scanner must accept exactly the bodies simd-json parses to an object, and agree on the
//! values it decodes. Intentional disagreements, each allowed explicitly below:
//!
//! 1. Duplicate tracked keys: simd-json keeps one; we reject (`DuplicateKey`).
//! 2. Nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH): simd-json has no limit we rely on; we reject.
//! 3. Lone surrogate escapes (`"\ud800"`): simd-json accepts a lone *high* surrogate (and
//!    decodes it to U+0000); we reject every lone surrogate (I-JSON, RFC 7493 §2.1).
//! 4. Numbers out of simd-json's range (integers beyond `i64`/`u64`, floats overflowing
//!    `f64` such as `1e400`, exponents past 2^32): RFC 8259 §6 allows them and we accept; simd-json reports
//!    `InvalidNumber`. Allowed only when the number at simd-json's error offset is
//!    well-formed and really out of range.
//! 5. Junk right after a number or literal: simd-json ignores everything up to the next
//!    structural byte when the junk starts with NUL (`{"a":1\0}`, `true\0x`), and after a
//!    19- or 20-digit integer almost any ASCII byte (`{"a":1844674407370955161x}`). We
//!    reject with `Syntax` at the first junk byte, as RFC 8259 §2 requires.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, ErrorType};

use super::{scan_top_level, Key, ScanError};

/// Compares [`scan_top_level`] with simd-json on `body`; `Err` describes a disagreement.
pub fn differential_check(body: &[u8]) -> Result<(), String> {
    let ours = scan_top_level(body);
    let mut copy = body.to_vec();
    let theirs = simd_json::to_borrowed_value(&mut copy);
    match (&ours, &theirs) {
        (Ok(top), Ok(value)) => {
            let Some(obj) = value.as_object() else {
                return Err(format!("we accepted a non-object: {value:?}"));
            };
            if (top.key_count as usize) < obj.len() {
                return Err(format!("key_count {} < {}", top.key_count, obj.len()));
            }
            for key in Key::ALL {
                let theirs = obj.get(key.json_name());
                if top.get(key).is_some() != theirs.is_some() {
                    return Err(format!("presence of {key:?} differs"));
                }
                if key == Key::MaxTokens {
                    let want = theirs.and_then(|v| v.as_u64());
                    let got = top.uint(body, key);
                    // simd-json stores integers up to u64::MAX; fractions are not uints.
                    if got != want && !(got.is_none() && theirs.is_some_and(|v| v.is_f64())) {
                        return Err(format!("max_tokens {got:?} vs {want:?}"));
                    }
                }
            }
            check_model(top.model_str(body), obj.get("model"))?;
            let want_stream = match obj.get("stream") {
                None => Ok(false),
                Some(v) if v.is_null() => Ok(false),
                Some(v) => v.as_bool().ok_or(ScanError::WrongType(Key::Stream)),
            };
            if top.stream_flag(body) != want_stream {
                return Err(format!(
                    "stream {:?} vs {want_stream:?}",
                    top.stream_flag(body)
                ));
            }
            Ok(())
        }
        // 1. simd-json keeps one of the duplicates.
        (Err(ScanError::DuplicateKey(_)), Ok(v)) if v.is_object() => Ok(()),
        // 2. Our depth limit.
        (Err(ScanError::TooDeep), Ok(_)) => Ok(()),
        // 3. Lone surrogates.
        (Err(ScanError::Syntax { offset }), Ok(_)) if surrogate_escape_at(body, *offset) => Ok(()),
        // 5. simd-json's leniency after scalars.
        (Err(ScanError::Syntax { offset }), Ok(_)) if junk_after_scalar(body, *offset) => Ok(()),
        (Err(ScanError::NotAnObject), Ok(v)) if !v.is_object() => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        // 4. Numbers simd-json cannot represent.
        (Ok(_), Err(e))
            if *e.error() == ErrorType::InvalidNumber && out_of_range_number(body, e.index()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "disagreement: ours {ours:?}, simd-json {:?}",
            theirs.as_ref().map(|_| "Ok").map_err(|e| e.to_string())
        )),
    }
}

fn check_model(
    ours: Result<Option<std::borrow::Cow<'_, str>>, ScanError>,
    theirs: Option<&BorrowedValue<'_>>,
) -> Result<(), String> {
    let want = match theirs {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or(ScanError::WrongType(Key::Model)),
    };
    if ours.as_ref().map(|o| o.as_deref()).map_err(|e| *e) != want {
        return Err(format!("model {ours:?} vs {want:?}"));
    }
    Ok(())
}

/// True when `body[offset]` directly follows a number or a literal.
fn junk_after_scalar(body: &[u8], offset: u32) -> bool {
    let before = body.get(..offset as usize).unwrap_or(&[]);
    matches!(before.last(), Some(b'0'..=b'9'))
        || [b"true".as_slice(), b"false", b"null"]
            .iter()
            .any(|lit| before.ends_with(lit))
}

/// True when `body[offset..]` is a `\u` escape of a surrogate code unit.
fn surrogate_escape_at(body: &[u8], offset: u32) -> bool {
    let Some(esc) = body.get(offset as usize..offset as usize + 6) else {
        return false;
    };
    let hex = std::str::from_utf8(&esc[2..]).ok();
    esc.starts_with(b"\\u")
        && hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .is_some_and(|cp| (0xD800..=0xDFFF).contains(&cp))
}

/// True when the number token around `index` is valid RFC 8259 yet outside what simd-json
/// represents. Written independently of the scanner's number lexer on purpose.
fn out_of_range_number(body: &[u8], index: usize) -> bool {
    let is_num = |c: &u8| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    let Some(rest) = body.get(index..) else {
        return false;
    };
    let start = body[..index]
        .iter()
        .rposition(|c| !is_num(c))
        .map_or(0, |p| p + 1);
    let end = index + rest.iter().position(|c| !is_num(c)).unwrap_or(rest.len());
    let Ok(tok) = std::str::from_utf8(&body[start..end]) else {
        return false;
    };
    let unsigned = tok.strip_prefix('-').unwrap_or(tok);
    let (mantissa, exp) = match unsigned.find(['e', 'E']) {
        Some(p) => (&unsigned[..p], Some(&unsigned[p + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let valid = digits(int)
        && (int == "0" || !int.starts_with('0'))
        && frac.is_none_or(digits)
        && exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !valid {
        return false;
    }
    // simd-json 0.14 (numberparse/correct.rs) gives up once the exponent passes 2^32 and
    // another digit follows: from 11 significant digits on (found by fuzz/json_scan; the rule
    // was checked against simd-json on 6 million generated exponents).
    let huge_exp = exp.is_some_and(|e| {
        let d = e.trim_start_matches(['+', '-']).trim_start_matches('0');
        d.len() > 11 || (d.len() == 11 && d[..10].parse::<u64>().is_ok_and(|v| v > 0x1_0000_0000))
    });
    if frac.is_none() && exp.is_none() {
        tok.parse::<i64>().is_err() && tok.parse::<u64>().is_err()
    } else {
        huge_exp || tok.parse::<f64>().is_ok_and(|f| f.is_infinite())
    }
}
