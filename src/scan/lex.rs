//! Byte-level lexing for the scanner: whitespace, strings, numbers, literals, and a
//! non-recursive skipper for whole values.
//!
//! Every function takes the full body and an index into it, and returns the index just past
//! what it consumed; offsets in errors are body offsets. Callers guarantee `body.len()` fits
//! in `u32` (checked once in `scan_top_level`), so `as u32` on an index is lossless.

use memchr::memchr;

use super::{ScanError, MAX_DEPTH};

/// A syntax error at body offset `i`.
#[inline]
pub(super) fn syntax(i: usize) -> ScanError {
    ScanError::Syntax { offset: i as u32 }
}

/// Skips insignificant whitespace: space, tab, LF, CR only (RFC 8259 §2).
#[inline(always)]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that ends a run of plain string content: `"`,
/// `\` or a control byte below 0x20 (forbidden unescaped, RFC 8259 §7); `b.len()` if none.
///
/// One pass finds all three, 16 bytes at a time with SSE2 (baseline on x86_64). This replaced
/// `memchr2` plus a control-byte pass: real message text has an escape every few dozen bytes
/// (`\n`, `\"`), and the per-call cost of `memchr2` dominated at that spacing.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn find_string_special(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    while i + 16 <= b.len() {
        // SAFETY: `i + 16 <= b.len()`, so the unaligned 16-byte load stays inside `b`; SSE2
        // is part of the x86_64 baseline, so the intrinsics are always available.
        let mask = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `v <= 0x1f` as `min(v, 0x1f) == v`.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    find_string_special_scalar(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
use find_string_special_swar as find_string_special;

/// Portable form of [`find_string_special`]: SWAR over 8-byte words.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
pub(super) fn find_string_special_swar(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        // Per byte: high bit set where the byte is zero (after xor) or below 0x20. False
        // positives only sit above a true hit, so the lowest set bit is exact.
        let zero = |y: u64| y.wrapping_sub(ONES) & !y;
        let quote = zero(x ^ (ONES * u64::from(b'"')));
        let backslash = zero(x ^ (ONES * u64::from(b'\\')));
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let mask = (quote | backslash | control) & HIGH;
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    find_string_special_scalar(b, i)
}

#[inline(always)]
pub(super) fn find_string_special_scalar(b: &[u8], i: usize) -> usize {
    let rest = b.get(i..).unwrap_or(&[]);
    i + rest
        .iter()
        .position(|&c| matches!(c, b'"' | b'\\' | 0x00..=0x1f))
        .unwrap_or(rest.len())
}

/// Four hex digits at `b[i..i + 4]` as a code unit.
#[inline]
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(i..i + 4)? {
        v = (v << 4) | (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Validates the escape whose backslash is at `j` and returns the index after it.
///
/// `\uXXXX` must be a scalar value or a high surrogate followed by `\u` and a low surrogate:
/// lone surrogates are rejected, as I-JSON (RFC 7493 §2.1) requires, because they cannot be
/// decoded to UTF-8. The error offset is the backslash of the offending escape.
fn skip_escape(b: &[u8], j: usize) -> Result<usize, ScanError> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => {
            let hi = hex4(b, j + 2).ok_or(syntax(j))?;
            match hi {
                0xD800..=0xDBFF => {
                    if b.get(j + 6) == Some(&b'\\') && b.get(j + 7) == Some(&b'u') {
                        let lo = hex4(b, j + 8).ok_or(syntax(j + 6))?;
                        if (0xDC00..=0xDFFF).contains(&lo) {
                            return Ok(j + 12);
                        }
                    }
                    Err(syntax(j))
                }
                0xDC00..=0xDFFF => Err(syntax(j)),
                _ => Ok(j + 6),
            }
        }
        _ => Err(syntax(j)),
    }
}

/// Skips the string whose opening quote is at `open`.
///
/// Returns the index after the closing quote and whether the string holds any escape.
#[inline]
pub(super) fn skip_string(b: &[u8], open: usize) -> Result<(usize, bool), ScanError> {
    let mut i = open + 1;
    let mut escaped = false;
    loop {
        let j = find_string_special(b, i);
        match b.get(j) {
            Some(b'"') => return Ok((j + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                i = skip_escape(b, j)?;
            }
            Some(_) => return Err(ScanError::ControlCharInString { offset: j as u32 }),
            None => return Err(syntax(b.len())),
        }
    }
}

#[inline(always)]
fn is_digit(b: &[u8], i: usize) -> bool {
    matches!(b.get(i), Some(b'0'..=b'9'))
}

#[inline(always)]
fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while is_digit(b, i) {
        i += 1;
    }
    i
}

/// Skips a number starting at `i` per the RFC 8259 §6 grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. Any magnitude is accepted.
/// What follows is checked by the caller (a delimiter must come next, so `01` fails there).
#[inline]
pub(super) fn skip_number(b: &[u8], mut i: usize) -> Result<usize, ScanError> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = skip_digits(b, i + 1),
        _ => return Err(syntax(i)),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !is_digit(b, i) {
            return Err(syntax(i));
        }
        i = skip_digits(b, i);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !is_digit(b, i) {
            return Err(syntax(i));
        }
        i = skip_digits(b, i);
    }
    Ok(i)
}

/// Skips the literal `lit` (`true`, `false` or `null`) at `i`.
#[inline]
fn skip_literal(b: &[u8], i: usize, lit: &[u8]) -> Result<usize, ScanError> {
    if b.get(i..i + lit.len()) == Some(lit) {
        Ok(i + lit.len())
    } else {
        Err(syntax(i))
    }
}

/// Skips `"key" ws : ws` at `i` and returns the index of the member's value.
#[inline]
fn skip_member_key(b: &[u8], i: usize) -> Result<usize, ScanError> {
    if b.get(i) != Some(&b'"') {
        return Err(syntax(i));
    }
    let (end, _) = skip_string(b, i)?;
    let i = skip_ws(b, end);
    if b.get(i) != Some(&b':') {
        return Err(syntax(i));
    }
    Ok(skip_ws(b, i + 1))
}

/// Skips and validates one value of a top-level member, starting at its first byte.
///
/// Non-recursive: nesting is tracked with a counter and a bit stack (`objs` bit `d` set when
/// the container at nested depth `d + 1` is an object), so hostile nesting costs no call
/// stack. The top-level object counts as depth 1; deeper than `MAX_DEPTH` fails `TooDeep`.
pub(super) fn skip_value(b: &[u8], mut i: usize) -> Result<usize, ScanError> {
    // Containers opened inside this value; the top-level object adds one more.
    let mut depth: u32 = 0;
    let mut objs: u128 = 0;
    const _: () = assert!(MAX_DEPTH as usize - 1 <= u128::BITS as usize);
    'value: loop {
        match b.get(i) {
            Some(b'"') => i = skip_string(b, i)?.0,
            Some(&open @ (b'{' | b'[')) => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(ScanError::TooDeep);
                }
                depth += 1;
                let bit = 1u128 << (depth - 1);
                i = skip_ws(b, i + 1);
                if open == b'{' {
                    objs |= bit;
                    if b.get(i) == Some(&b'}') {
                        i += 1;
                        depth -= 1;
                    } else {
                        i = skip_member_key(b, i)?;
                        continue 'value;
                    }
                } else {
                    objs &= !bit;
                    if b.get(i) == Some(&b']') {
                        i += 1;
                        depth -= 1;
                    } else {
                        continue 'value;
                    }
                }
            }
            Some(b't') => i = skip_literal(b, i, b"true")?,
            Some(b'f') => i = skip_literal(b, i, b"false")?,
            Some(b'n') => i = skip_literal(b, i, b"null")?,
            Some(b'-' | b'0'..=b'9') => i = skip_number(b, i)?,
            _ => return Err(syntax(i)),
        }
        // A value just ended: close containers until the next value or the end of this one.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            i = skip_ws(b, i);
            let in_obj = (objs >> (depth - 1)) & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i = skip_ws(b, i + 1);
                    if in_obj {
                        i = skip_member_key(b, i)?;
                    }
                    continue 'value;
                }
                Some(b'}') if in_obj => {
                    i += 1;
                    depth -= 1;
                }
                Some(b']') if !in_obj => {
                    i += 1;
                    depth -= 1;
                }
                _ => return Err(syntax(i)),
            }
        }
    }
}

/// Decodes the inside of a JSON string (between the quotes), handing each decoded piece to
/// `emit` in order. Returns false when `emit` does, or when an escape is malformed or a lone
/// surrogate (possible only if the bytes were not validated by the scanner first).
pub(super) fn unescape(inner: &[u8], mut emit: impl FnMut(&[u8]) -> bool) -> bool {
    let mut i = 0;
    loop {
        let rest = inner.get(i..).unwrap_or(&[]);
        let Some(k) = memchr(b'\\', rest) else {
            return emit(rest);
        };
        if !emit(&rest[..k]) {
            return false;
        }
        let j = i + k;
        let (c, next) = match inner.get(j + 1) {
            Some(b'"') => ('"', j + 2),
            Some(b'\\') => ('\\', j + 2),
            Some(b'/') => ('/', j + 2),
            Some(b'b') => ('\u{8}', j + 2),
            Some(b'f') => ('\u{c}', j + 2),
            Some(b'n') => ('\n', j + 2),
            Some(b'r') => ('\r', j + 2),
            Some(b't') => ('\t', j + 2),
            Some(b'u') => {
                let Some(hi) = hex4(inner, j + 2) else {
                    return false;
                };
                let (cp, next) = if (0xD800..=0xDBFF).contains(&hi) {
                    if inner.get(j + 6..j + 8) != Some(b"\\u") {
                        return false;
                    }
                    match hex4(inner, j + 8) {
                        Some(lo @ 0xDC00..=0xDFFF) => {
                            (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), j + 12)
                        }
                        _ => return false,
                    }
                } else {
                    (hi, j + 6)
                };
                match char::from_u32(cp) {
                    Some(c) => (c, next),
                    None => return false,
                }
            }
            _ => return false,
        };
        let mut buf = [0u8; 4];
        if !emit(c.encode_utf8(&mut buf).as_bytes()) {
            return false;
        }
        i = next;
    }
}
