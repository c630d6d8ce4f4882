//! `ChunkedDecoder`: the answer must not depend on how the input is split. The whole input
//! in one `decode_into` call is the reference; byte-by-byte feeding, pseudo-random split
//! points derived from the input, and `decode_in_place` (whole and split) must agree on
//! payload, bytes consumed, done, and the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::http1::{ChunkError, ChunkedDecoder};

/// (payload, consumed, done) or the error.
type Outcome = Result<(Vec<u8>, usize, bool), ChunkError>;

fuzz_target!(|data: &[u8]| {
    let want = whole_into(data);
    if let Ok((_, consumed, done)) = &want {
        assert!(*consumed <= data.len());
        assert!(
            *done || *consumed == data.len(),
            "not done but input left over"
        );
    }

    let ones = vec![1; data.len()];
    assert_eq!(split_into(data, &ones), want, "decode_into byte by byte");
    assert_eq!(
        split_in_place(data, &ones),
        want,
        "decode_in_place byte by byte"
    );
    assert_eq!(whole_in_place(data), want, "decode_in_place whole");

    let mut rng = Rng(fnv(data));
    for _ in 0..3 {
        let mut sizes = Vec::new();
        let mut total = 0;
        while total < data.len() {
            sizes.push(rng.size());
            total += sizes.last().unwrap();
        }
        assert_eq!(
            split_into(data, &sizes),
            want,
            "decode_into split {sizes:?}"
        );
        assert_eq!(
            split_in_place(data, &sizes),
            want,
            "decode_in_place split {sizes:?}"
        );
    }
});

fn whole_into(data: &[u8]) -> Outcome {
    let mut out = Vec::new();
    let (consumed, done) = ChunkedDecoder::new().decode_into(data, &mut out)?;
    Ok((out, consumed, done))
}

fn whole_in_place(data: &[u8]) -> Outcome {
    let mut buf = data.to_vec();
    let d = ChunkedDecoder::new().decode_in_place(&mut buf)?;
    assert!(
        d.payload <= d.consumed,
        "payload {} > consumed {}",
        d.payload,
        d.consumed
    );
    assert_eq!(
        &buf[d.consumed..],
        &data[d.consumed..],
        "bytes past the body touched"
    );
    buf.truncate(d.payload);
    Ok((buf, d.consumed, d.done))
}

/// Pieces of `data` of the given sizes (empty ones included), then whatever is left.
fn pieces<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut pos = 0;
    sizes
        .iter()
        .copied()
        .chain(std::iter::once(usize::MAX))
        .map_while(move |size| {
            if pos == data.len() && size == usize::MAX {
                return None;
            }
            let start = pos;
            pos = pos.saturating_add(size).min(data.len());
            Some((start, pos))
        })
}

/// Feeds `data` in pieces of `sizes` to `decode_into`.
fn split_into(data: &[u8], sizes: &[usize]) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    for (start, end) in pieces(data, sizes) {
        debug_assert_eq!(start, pos);
        let (consumed, done) = dec.decode_into(&data[pos..end], &mut out)?;
        assert_eq!(done, dec.is_done());
        if done {
            return Ok((out, pos + consumed, true));
        }
        assert_eq!(consumed, end - pos, "not done but a piece was not consumed");
        pos = end;
    }
    Ok((out, pos, false))
}

/// Feeds `data` in pieces of `sizes` to `decode_in_place`, each copied to a scratch buffer.
fn split_in_place(data: &[u8], sizes: &[usize]) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut buf = Vec::new();
    for (start, end) in pieces(data, sizes) {
        debug_assert_eq!(start, pos);
        buf.clear();
        buf.extend_from_slice(&data[pos..end]);
        let d = dec.decode_in_place(&mut buf)?;
        assert!(d.payload <= d.consumed);
        out.extend_from_slice(&buf[..d.payload]);
        if d.done {
            assert_eq!(&buf[d.consumed..], &data[pos + d.consumed..end]);
            return Ok((out, pos + d.consumed, true));
        }
        assert_eq!(
            d.consumed,
            end - pos,
            "not done but a piece was not consumed"
        );
        pos = end;
    }
    Ok((out, pos, false))
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*, seeded from the input so a crash reproduces from the input alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly short pieces (they cut framing lines), sometimes empty or long.
    fn size(&mut self) -> usize {
        match self.next() % 8 {
            0 => 0,
            1 => 64 + (self.next() % 256) as usize,
            _ => 1 + (self.next() % 8) as usize,
        }
    }
}
