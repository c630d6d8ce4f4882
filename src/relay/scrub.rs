//! Finding fragments of the provider's key in bytes the gateway is about to relay, so a key an
//! upstream echoes (in an error body, a 2xx body, a mid-stream error event, split across any
//! number of reads) never reaches a client.
//!
//! A hit is any [`FRAGMENT`] consecutive bytes of the key. A key shorter than that is not
//! looked for: it is no secret (local servers such as vLLM take `EMPTY` or `none`), and a
//! short word matches ordinary text, so every answer that contains it would be withheld.
//! The search is one pass over the relayed bytes, reading them in place (nothing is copied):
//! every fragment of 8 bytes, wherever it sits, contains a 4-byte block of the input that
//! starts at a multiple of 4, so only those blocks are looked up, in a 32768-bit set (4 KiB)
//! of the key's 4-byte windows; a block in the set is then extended byte by byte against each
//! place it occurs in the key. Random keys make a set hit on ordinary text rare (tens of
//! windows in 32768 bits: 0.2% of blocks; with 4096 bits it was 2.4% of chat SSE's blocks, and
//! extending those hits was two thirds of the scan's time), so the cost is one load, one
//! multiply and one bit test per 4 input bytes.
//!
//! Across reads the scanner keeps the last `FRAGMENT - 1` bytes it saw: a fragment that
//! straddles two reads lies whole in that tail plus the next read's first `FRAGMENT - 1` bytes,
//! which are checked together. The client may so have received fewer than [`FRAGMENT`] bytes of
//! a key before the hit; that many do not identify it.

/// Shortest run of key bytes that counts as the key (the length the gateway already refused
/// upstream error bodies on).
pub const FRAGMENT: usize = 8;

const BLOCK: usize = 4;
const SET_BITS: usize = 1 << SET_LOG2;
const SET_LOG2: u32 = 15;

/// The fragments of one key, built once per provider in the route snapshot (so a request
/// allocates nothing to scan), shared by every body and stream the provider answers.
#[derive(Clone)]
pub struct KeySet {
    key: Box<[u8]>,
    /// Bit `h(w)` set for every 4-byte window `w` of the key (per provider, in the snapshot).
    set: Box<[u64; SET_BITS / 64]>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.write_str("KeySet(..)")
    }
}

/// The state of one scan across reads: the last bytes seen, for fragments split between
/// reads. Small and `Copy`, kept on the relay's stack.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyTail {
    tail: [u8; FRAGMENT - 1],
    len: usize,
}

#[inline(always)]
fn hash(w: u32) -> usize {
    (w.wrapping_mul(0x9E37_79B1) >> (32 - SET_LOG2)) as usize
}

fn block(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl KeyTail {
    /// Whether `bytes`, read after everything fed before, hold a fragment of `keys`'s key
    /// (also one that began in earlier reads). Remembers the end of `bytes` for the next call.
    pub fn feed(&mut self, keys: &KeySet, bytes: &[u8]) -> bool {
        if keys.key.is_empty() {
            return false;
        }
        let keep = keys.need() - 1;
        let mut joint = [0u8; 2 * (FRAGMENT - 1)];
        let head = bytes.len().min(keep);
        joint[..self.len].copy_from_slice(&self.tail[..self.len]);
        joint[self.len..self.len + head].copy_from_slice(&bytes[..head]);
        let hit =
            (self.len > 0 && keys.contains(&joint[..self.len + head])) || keys.contains(bytes);
        // Keep the last `keep` bytes of everything seen.
        if bytes.len() >= keep {
            self.tail[..keep].copy_from_slice(&bytes[bytes.len() - keep..]);
            self.len = keep;
        } else {
            let total = (self.len + bytes.len()).min(keep);
            let from_old = total - bytes.len();
            self.tail.copy_within(self.len - from_old..self.len, 0);
            self.tail[from_old..total].copy_from_slice(bytes);
            self.len = total;
        }
        hit
    }
}

impl KeySet {
    /// The fragments of `key`. A key shorter than [`FRAGMENT`] matches nothing.
    pub fn new(key: &[u8]) -> KeySet {
        let key = if key.len() < FRAGMENT { &[][..] } else { key };
        let mut set = Box::new([0u64; SET_BITS / 64]);
        if key.len() >= BLOCK {
            for i in 0..=key.len() - BLOCK {
                let h = hash(block(key, i));
                set[h / 64] |= 1 << (h % 64);
            }
        }
        KeySet {
            key: key.into(),
            set,
        }
    }

    /// Bytes of the key that make a hit.
    fn need(&self) -> usize {
        self.key.len().min(FRAGMENT)
    }

    /// Whether `hay` alone holds a fragment.
    pub fn contains(&self, hay: &[u8]) -> bool {
        let k = &self.key[..];
        if k.len() < FRAGMENT {
            return !k.is_empty() && memchr::memmem::find(hay, k).is_some();
        }
        // Four blocks a turn, their set bits tested together: a hit on ordinary text is rare,
        // so the common turn is four loads, four multiplies and one branch.
        let mut base = 0;
        for q in hay.chunks_exact(4 * BLOCK) {
            let q: &[u8; 4 * BLOCK] = q.try_into().unwrap_or(&[0; 4 * BLOCK]);
            let at = |j: usize| {
                let h = hash(u32::from_le_bytes([q[j], q[j + 1], q[j + 2], q[j + 3]]));
                self.set[h >> 6] >> (h & 63)
            };
            if (at(0) | at(4) | at(8) | at(12)) & 1 != 0 {
                for j in (0..4 * BLOCK).step_by(BLOCK) {
                    if at(j) & 1 != 0 && self.extends(hay, base + j) {
                        return true;
                    }
                }
            }
            base += 4 * BLOCK;
        }
        let mut i = base;
        while i + BLOCK <= hay.len() {
            let h = hash(block(hay, i));
            if self.set[h >> 6] & (1 << (h & 63)) != 0 && self.extends(hay, i) {
                return true;
            }
            i += BLOCK;
        }
        false
    }

    /// Whether the block at `hay[i..i + 4]` is part of a run of [`FRAGMENT`] key bytes.
    fn extends(&self, hay: &[u8], i: usize) -> bool {
        let k = &self.key[..];
        let w = block(hay, i);
        // Keys are short: comparing the block at each offset beats building a searcher.
        for o in 0..=k.len() - BLOCK {
            if block(k, o) != w {
                continue;
            }
            let left = (1..=o.min(i))
                .take_while(|&d| hay[i - d] == k[o - d])
                .count();
            let right = (0..(k.len() - o - BLOCK).min(hay.len() - i - BLOCK))
                .take_while(|&d| hay[i + BLOCK + d] == k[o + BLOCK + d])
                .count();
            if left + BLOCK + right >= FRAGMENT {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"sk-provider-SECRET123-openai-0123456789abcdef";

    /// The naive rule: any `FRAGMENT` bytes of the key.
    fn naive(hay: &[u8], key: &[u8]) -> bool {
        key.windows(FRAGMENT.min(key.len()))
            .any(|w| memchr::memmem::find(hay, w).is_some())
    }

    #[test]
    fn every_fragment_at_every_offset_is_found() {
        for start in 0..=KEY.len() - FRAGMENT {
            for pad in 0..9 {
                let mut hay = vec![b' '; pad];
                hay.extend_from_slice(&KEY[start..start + FRAGMENT]);
                hay.extend_from_slice(b"  tail");
                assert!(KeySet::new(KEY).contains(&hay), "start {start} pad {pad}");
            }
        }
    }

    #[test]
    fn seven_bytes_and_lookalikes_are_not_hits() {
        let s = KeySet::new(KEY);
        for start in 0..=KEY.len() - 7 {
            let mut hay = b"xx".to_vec();
            hay.extend_from_slice(&KEY[start..start + 7]);
            hay.extend_from_slice(b"~~");
            assert!(!s.contains(&hay), "start {start}");
        }
        assert!(!s.contains(b"the upstream said: sk-other-key-entirely-different"));
        // The key's windows glued out of order are no run of 8.
        assert!(!s.contains(b"0123SECRabcdSECR"));
    }

    #[test]
    fn agrees_with_the_naive_rule_on_mixed_text() {
        let s = KeySet::new(KEY);
        let mut hay = Vec::new();
        for i in 0..KEY.len() {
            hay.clear();
            hay.extend_from_slice(b"{\"error\":{\"message\":\"bad key ");
            hay.extend_from_slice(&KEY[i..(i + 3 + i % 9).min(KEY.len())]);
            hay.extend_from_slice(b"\"}}");
            assert_eq!(s.contains(&hay), naive(&hay, KEY), "{i}");
        }
    }

    #[test]
    fn a_key_split_anywhere_across_reads_is_found() {
        let keys = KeySet::new(KEY);
        let mut body = b"data: {\"error\":{\"message\":\"Incorrect API key provided: ".to_vec();
        body.extend_from_slice(KEY);
        body.extend_from_slice(b"\"}}\n\n");
        for a in 0..body.len() {
            for b in a..body.len() {
                let mut t = KeyTail::default();
                let hit = t.feed(&keys, &body[..a])
                    | t.feed(&keys, &body[a..b])
                    | t.feed(&keys, &body[b..]);
                assert!(hit, "split at {a}, {b}");
            }
        }
        // Split in single bytes: only the tail can see it.
        let mut t = KeyTail::default();
        assert!(body.iter().any(|c| t.feed(&keys, std::slice::from_ref(c))));
    }

    #[test]
    fn keys_shorter_than_a_fragment_are_not_looked_for() {
        // vLLM's conventional key, in ordinary text: never a reason to withhold an answer.
        let keys = KeySet::new(b"EMPTY");
        let mut t = KeyTail::default();
        assert!(!t.feed(&keys, b"the queue is EMP"));
        assert!(!t.feed(&keys, b"TY now"));
        assert!(!keys.contains(b"EMPTY"));
        assert!(!KeySet::new(b"").contains(b"anything"));
        // From FRAGMENT bytes on, the key is looked for, across reads too.
        let keys = KeySet::new(b"abcdefgh");
        let mut t = KeyTail::default();
        assert!(!t.feed(&keys, b"xxabcd"));
        assert!(t.feed(&keys, b"efghyy"));
    }
}
