//! A whole upstream response as the upstream client frames it: interim 1xx heads skipped,
//! the final head parsed (`parse_response_head`), then its body delimited by the framing that
//! head chose (Content-Length, chunked via `ChunkedDecoder::decode_in_place`, or until close),
//! leaving any bytes after the message untouched for the next response on a reused connection.
//!
//! Checked: nothing panics; the message end and payload are the same whether the body arrives
//! whole or split at points derived from the input (a socket may cut it anywhere); a
//! Content-Length body is its bytes verbatim and never runs past its length; a message
//! followed by more bytes is only reusable when its framing says where it ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::http1::{parse_response_head, ChunkedDecoder, ResponseFraming};

/// Head window, as small as the target's inputs.
const MAX_HEAD: usize = 2048;
/// Interim responses skipped before giving up (a provider sends at most one or two).
const MAX_INTERIM: usize = 8;

/// Where the message ended (if it did within the input), its payload, and whether the
/// connection may be reused.
#[derive(Debug, PartialEq, Eq)]
enum Framed {
    /// The head is refused (a 502) or still incomplete.
    NoHead,
    /// The body could not be delimited: malformed chunk.
    BadBody,
    /// The message: payload, bytes it took, whether complete within the input.
    Message {
        payload: Vec<u8>,
        end: usize,
        complete: bool,
        keep_alive: bool,
    },
}

fuzz_target!(|data: &[u8]| {
    let (head_end, framing, keep_alive) = match final_head(data) {
        Some(h) => h,
        None => return,
    };
    let whole = body(data, head_end, framing, keep_alive, &[]);
    // Split points derived from the input: a few cuts, and every byte.
    let seed = data.iter().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(*b as usize));
    let cuts: Vec<usize> = (0..4).map(|i| 1 + (seed >> (i * 8)) % 61).collect();
    assert_eq!(body(data, head_end, framing, keep_alive, &cuts), whole, "split {cuts:?}");
    assert_eq!(body(data, head_end, framing, keep_alive, &[1]), whole, "byte by byte");
    if let Framed::Message {
        payload,
        end,
        complete,
        keep_alive,
    } = &whole
    {
        assert!(*end <= data.len() && *end >= head_end);
        match framing {
            ResponseFraming::Length(n) => {
                assert!(payload.len() as u64 <= n);
                assert_eq!(&payload[..], &data[head_end..head_end + payload.len()]);
                assert_eq!(*complete, payload.len() as u64 == n);
            }
            ResponseFraming::None => assert!(payload.is_empty() && *complete),
            ResponseFraming::CloseDelimited => {
                assert!(!keep_alive, "a close-delimited body on a reusable connection");
                assert_eq!(*end, data.len());
            }
            ResponseFraming::Chunked => assert!(payload.len() <= end - head_end),
        }
    }
});

/// Skips interim 1xx heads; the final head's end, framing and keep-alive.
fn final_head(data: &[u8]) -> Option<(usize, ResponseFraming, bool)> {
    let mut at = 0;
    for _ in 0..MAX_INTERIM {
        let h = parse_response_head(&data[at..], MAX_HEAD, false).ok()??;
        assert!(h.head_len > 0 && at + h.head_len <= data.len());
        if h.is_informational() {
            assert_eq!(h.framing, ResponseFraming::None, "a 1xx with a body");
            at += h.head_len;
            continue;
        }
        return Some((at + h.head_len, h.framing, h.keep_alive));
    }
    None
}

/// Delimits the body after `head_end`, fed in pieces of the sizes in `cuts` (cycled; empty
/// means all at once), the way the relay reads: each piece decoded in place as it arrives.
fn body(
    data: &[u8],
    head_end: usize,
    framing: ResponseFraming,
    keep_alive: bool,
    cuts: &[usize],
) -> Framed {
    let rest = &data[head_end..];
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < rest.len() {
        let n = if cuts.is_empty() { rest.len() } else { cuts[i % cuts.len()] };
        let n = n.min(rest.len() - at);
        pieces.push(&rest[at..at + n]);
        at += n;
        i += 1;
    }
    match framing {
        ResponseFraming::None => Framed::Message {
            payload: Vec::new(),
            end: head_end,
            complete: true,
            keep_alive,
        },
        ResponseFraming::Length(n) => {
            let mut payload = Vec::new();
            for p in pieces {
                let want = (n - payload.len() as u64).min(p.len() as u64) as usize;
                payload.extend_from_slice(&p[..want]);
                if payload.len() as u64 == n {
                    break;
                }
            }
            Framed::Message {
                end: head_end + payload.len(),
                complete: payload.len() as u64 == n,
                payload,
                keep_alive,
            }
        }
        ResponseFraming::CloseDelimited => Framed::Message {
            payload: rest.to_vec(),
            end: data.len(),
            complete: true,
            keep_alive,
        },
        ResponseFraming::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut payload = Vec::new();
            let mut end = head_end;
            let mut buf = Vec::new();
            for p in pieces {
                buf.clear();
                buf.extend_from_slice(p);
                let d = match dec.decode_in_place(&mut buf) {
                    Ok(d) => d,
                    Err(_) => return Framed::BadBody,
                };
                payload.extend_from_slice(&buf[..d.payload]);
                end += d.consumed;
                // Bytes after a finished body belong to the next response, untouched.
                assert_eq!(&buf[d.consumed..], &p[d.consumed..]);
                if d.done {
                    return Framed::Message {
                        payload,
                        end,
                        complete: true,
                        keep_alive,
                    };
                }
                assert_eq!(d.consumed, p.len(), "not done but input left over");
            }
            Framed::Message {
                payload,
                end,
                complete: false,
                keep_alive,
            }
        }
    }
}
