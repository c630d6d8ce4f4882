//! Relaying a stream of another API: each upstream read decoded from its HTTP framing in
//! place, fed to the stream's [`Translator`], and what it wrote for the client sent as one HTTP
//! chunk. The translator knows its protocol's end event: an upstream that closes without it,
//! stalls, or sends its own error event ends the client's stream with the client protocol's
//! error event (the translator writes it), never a clean end. So does a stream still running
//! at the drain deadline, and one whose upstream bytes hold a fragment of the provider key
//! (scanned before the translator sees them, so none of it reaches the client's events).

use super::keep::Keep;
use super::scrub::{KeySet, KeyTail};
use super::{drain, Opening, StreamEnd, Wait, Waits, RESERVE, SHUTTING_DOWN, WITHHELD};
use crate::endpoint::Protocol;
use crate::error::{Error, ErrorKind};
use crate::http1::write::{chunk_header, LAST_CHUNK};
use crate::http1::{ChunkedDecoder, ResponseFraming};
use crate::netio::{self, IoFail};
use crate::translate::stream::{Progress, Translator};
use crate::upstream::Exchange;
use monoio::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How one step of the loop ends the stream, if it does.
enum Step {
    /// Keep reading.
    More,
    /// Over: how, and whether the upstream connection may be reused.
    End(StreamEnd),
}

/// The deadlines and the key of one translated stream.
pub(super) struct Limits<'a> {
    /// Longest upstream silence.
    pub gap: Duration,
    /// Deadline of each client write.
    pub client_timeout: Duration,
    /// The provider key's fragments, which no upstream read may hold.
    pub keys: &'a KeySet,
}

/// Relays the body of `ex` (whose head is parsed) through `tr`. `out` is the reused buffer
/// the client's chunks are built in; `opening` (our head and trace) goes out in the same write
/// as the first of them. Returns how the stream ended and the upstream payload
/// bytes read.
pub(super) async fn relay(
    ex: &mut Exchange,
    client: &mut TcpStream,
    tr: &mut Translator,
    limits: Limits<'_>,
    out: &mut Vec<u8>,
    mut keep: Option<&mut Keep<'_>>,
    mut opening: Opening<'_>,
) -> (StreamEnd, usize) {
    let Limits {
        gap,
        client_timeout,
        keys,
    } = limits;
    let mut key_tail = KeyTail::default();
    let framing = ex.head.framing;
    let keep_alive = ex.head.keep_alive;
    let mut dec = ChunkedDecoder::new();
    let mut remaining: u64 = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let mut data_start = ex.head.head_len;
    let mut buf = std::mem::take(&mut ex.buf);
    let mut o = std::mem::take(out);
    let mut relayed = 0usize;
    let gone = std::pin::pin!(netio::client_gone_watch(client.as_raw_fd()));
    let stall = std::pin::pin!(monoio::time::sleep(gap));
    let mut waits = Waits::new(gone, stall, gap);
    let result = loop {
        let filled = buf.len();
        let decoded = match framing {
            ResponseFraming::Chunked => dec
                .decode_in_place(&mut buf[data_start..filled])
                .map(|d| {
                    (
                        d.payload,
                        d.done,
                        !d.done || data_start + d.consumed == filled,
                    )
                })
                .map_err(|_| "upstream sent a malformed chunk"),
            ResponseFraming::Length(_) => {
                let avail = (filled - data_start) as u64;
                let n = avail.min(remaining);
                remaining -= n;
                Ok((n as usize, remaining == 0, avail == n))
            }
            ResponseFraming::CloseDelimited => Ok((filled - data_start, false, true)),
            ResponseFraming::None => Ok((0, true, filled == data_start)),
        };
        o.clear();
        o.resize(RESERVE, 0);
        let step = match decoded {
            Err(why) => fail(tr, why, &mut o),
            Ok((payload, done, clean)) => {
                relayed += payload;
                let p = &buf[data_start..data_start + payload];
                if key_tail.feed(keys, p) {
                    fail(tr, WITHHELD, &mut o)
                } else {
                    match tr.feed(p, &mut o) {
                        Progress::Done => Step::End(StreamEnd::Complete {
                            reusable: done && clean && keep_alive,
                        }),
                        Progress::Failed => Step::End(cut("the upstream sent an error event")),
                        Progress::Open if done => ended(tr, clean && keep_alive, &mut o),
                        Progress::Open => Step::More,
                    }
                }
            }
        };
        // The chunk holding the final event waits until the answer is stored.
        let mut step = step;
        if let Some(k) = keep.as_deref_mut() {
            if o.len() > RESERVE && k.saw_end(&o[RESERVE..]) {
                if let Err(e) = k.store_stream().await {
                    step = unkept(e, &mut o);
                }
            }
        }
        let (r, b) = send(client, o, &step, client_timeout, &mut opening).await;
        o = b;
        if r.is_err() {
            break StreamEnd::ClientGone;
        }
        if let Step::End(end) = step {
            break end;
        }
        buf.clear();
        data_start = 0;
        let r = match waits.next_read(&mut ex.conn, buf).await {
            Wait::Read(r, b) => {
                buf = b;
                r
            }
            Wait::ClientGone => {
                buf = Vec::new();
                break StreamEnd::ClientGone;
            }
            Wait::Cut => {
                buf = Vec::new();
                Err(IoFail::Error)
            }
        };
        let step = match r {
            Ok(_) => {
                ex.gaps.tick();
                continue;
            }
            Err(IoFail::Error) if drain::is_cut() => {
                o.clear();
                o.resize(RESERVE, 0);
                fail(tr, SHUTTING_DOWN, &mut o)
            }
            Err(IoFail::Closed) if framing == ResponseFraming::CloseDelimited => {
                o.clear();
                o.resize(RESERVE, 0);
                ended(tr, false, &mut o)
            }
            Err(IoFail::Timeout) => {
                o.clear();
                o.resize(RESERVE, 0);
                fail(tr, "upstream stream stalled", &mut o)
            }
            Err(_) => {
                o.clear();
                o.resize(RESERVE, 0);
                fail(tr, "upstream closed the stream early", &mut o)
            }
        };
        let (r, b) = send(client, o, &step, client_timeout, &mut opening).await;
        o = b;
        if r.is_err() {
            break StreamEnd::ClientGone;
        }
        if let Step::End(end) = step {
            break end;
        }
    };
    ex.buf = buf;
    *out = o;
    (result, relayed)
}

/// The answer could not be stored: what the translator wrote (the final event with it) is
/// replaced by the client's error event, so the client never sees an unkept end.
fn unkept(e: Error, o: &mut Vec<u8>) -> Step {
    o.truncate(RESERVE);
    crate::error::write_stream_event(o, Protocol::OpenAi, &e, true);
    Step::End(StreamEnd::UpstreamFailed(e))
}

fn cut(why: &'static str) -> StreamEnd {
    StreamEnd::UpstreamFailed(Error::upstream(ErrorKind::UpstreamFailed, why))
}

/// The upstream failed: the translator writes the client's error event.
fn fail(tr: &mut Translator, why: &'static str, o: &mut Vec<u8>) -> Step {
    tr.finish(Some(why), o);
    Step::End(cut(why))
}

/// The upstream body ended by its framing: whole only if the protocol's end event came.
fn ended(tr: &mut Translator, reusable: bool, o: &mut Vec<u8>) -> Step {
    if tr.finish(None, o) {
        Step::End(StreamEnd::Complete { reusable })
    } else {
        Step::End(cut("the upstream stream ended without its end event"))
    }
}

/// Frames what the translator wrote after the first [`RESERVE`] bytes of `o` as one chunk
/// (the size line written into the reserve) and, when the stream is over, the last chunk,
/// and writes it, behind our head if that is still unsent.
async fn send(
    client: &mut TcpStream,
    mut o: Vec<u8>,
    step: &Step,
    client_timeout: Duration,
    opening: &mut Opening<'_>,
) -> (Result<(), ()>, Vec<u8>) {
    let n = o.len() - RESERVE;
    let mut start = RESERVE;
    if n > 0 {
        let (hdr, hl) = chunk_header(n);
        start = RESERVE - hl;
        o[start..RESERVE].copy_from_slice(&hdr[..hl]);
        o.extend_from_slice(b"\r\n");
    }
    if matches!(step, Step::End(_)) {
        o.extend_from_slice(LAST_CHUNK);
    }
    let end = o.len();
    let (r, b) = opening
        .write(client, o, start, end, netio::after(client_timeout))
        .await;
    (r.map_err(|_| ()), b)
}
