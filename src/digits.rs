//! Decimal and hex digits written straight into a byte buffer: the wire and log formats that
//! run per request (HTTP heads and chunk sizes, JSON numbers, RESP lengths, ledger lines, span
//! ids) skip `core::fmt`, whose machinery costs more than the digits. The one home of these
//! writers: the modules that write such formats call or re-export them.

/// Lowercase hex digits.
pub const HEX: &[u8; 16] = b"0123456789abcdef";

/// `n` in decimal, on the stack: the digits are `buf[start..]` of the returned `(buf, start)`
/// (u64::MAX has 20).
pub fn decimal(mut n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (digits, i)
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let (digits, start) = decimal(n);
    out.extend_from_slice(&digits[start..]);
}

/// Appends the last `width` (at most 20) decimal digits of `n`, zero-padded.
pub fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Appends `b` as two lowercase hex digits.
pub fn push_hex(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_as_fmt_writes_them() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            out.clear();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            out.clear();
            push_padded(&mut out, n % 1000, 3);
            assert_eq!(out, format!("{:03}", n % 1000).as_bytes());
        }
        out.clear();
        push_hex(&mut out, 0xa5);
        push_hex(&mut out, 0x0f);
        assert_eq!(out, b"a50f");
    }
}
