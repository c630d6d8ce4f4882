//! The mock's answers as HTTP/1.1 bytes, paced: the one form in which the mock reaches anyone.
//!
//! [`MockWire`] turns a [`MockReply`] into the response bytes a provider would send (status
//! line, headers, then a `Content-Length` body or the stream's events as chunks), each part at
//! the time the mock's timing says. Two readers take those bytes: [`MockConn`], the in-process
//! upstream connection of `kind = "mock"` providers, which the gateway's upstream client and
//! relay read exactly as they read a socket; and `mock::serve`, which writes them to a client
//! socket for `switchyard mock-upstream`. So the in-process mock exercises the same relay code
//! as a real provider, and both servers answer byte for byte alike.
//!
//! A cut stream ends without the terminating chunk: the reader then sees the connection close
//! (`IoFail::Closed`), as from a provider that died mid-answer.

use super::{Mock, MockOptions, MockReply, MockStream};
use crate::http1::write::{
    status_reason, write_chunk_header, write_header, write_header_usize, LAST_CHUNK,
};
use crate::netio::IoFail;
use monoio::time::Instant;
use std::time::Duration;

/// Unpaced events are batched into one read up to this many bytes, as a provider's TLS
/// records batch them.
pub const BATCH: usize = 16 * 1024;

/// One reply being turned into bytes.
pub struct MockWire {
    state: State,
    /// An event already drawn from the stream, waiting for its delay to pass.
    pending: Vec<u8>,
    pending_delay: Option<Duration>,
    /// When the pending event is due: paced events are scheduled from the previous one's due
    /// time (the first from `first_byte_at`), not from when it was written, so the time the
    /// writes take does not add up over a stream and `tokens_per_s` holds end to end.
    pending_at: Option<Instant>,
    /// When the last paced event was due.
    paced_at: Option<Instant>,
    /// When the first byte may go out (the reply's `first_byte_delay` after creation).
    first_byte_at: Instant,
}

enum State {
    /// Nothing sent yet.
    Head(MockReply),
    /// The head went out; events follow.
    Streaming(MockStream),
    /// Every byte went out; false when the stream was cut (no terminating chunk).
    Done { clean: bool },
}

impl MockWire {
    /// Starts answering `reply`.
    pub fn new(reply: MockReply) -> MockWire {
        MockWire {
            first_byte_at: Instant::now() + reply.first_byte_delay,
            state: State::Head(reply),
            pending: Vec::new(),
            pending_delay: None,
            pending_at: None,
            paced_at: None,
        }
    }

    /// Appends the next bytes to `buf`, waiting as the mock's timing says, but never past
    /// `deadline` (then `Err(Timeout)`). `Err(Closed)` once every byte went out. Returns the
    /// number of bytes appended.
    pub async fn read_more(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, IoFail> {
        let at = buf.len();
        loop {
            match &mut self.state {
                State::Done { .. } => {
                    return if buf.len() > at {
                        Ok(buf.len() - at)
                    } else {
                        Err(IoFail::Closed)
                    };
                }
                State::Head(_) => {
                    wait_until(self.first_byte_at, deadline).await?;
                    let State::Head(reply) =
                        std::mem::replace(&mut self.state, State::Done { clean: true })
                    else {
                        unreachable!("matched above")
                    };
                    write_head(&reply, buf);
                    match reply.stream {
                        Some(s) => self.state = State::Streaming(s),
                        None => {
                            buf.extend_from_slice(&reply.body);
                            return Ok(buf.len() - at);
                        }
                    }
                }
                State::Streaming(s) => {
                    if self.pending_delay.is_none() {
                        self.pending.clear();
                        match s.next_event(&mut self.pending) {
                            Some(d) => {
                                self.pending_delay = Some(d);
                                if !d.is_zero() {
                                    let due = self.paced_at.unwrap_or(self.first_byte_at) + d;
                                    self.paced_at = Some(due);
                                    self.pending_at = Some(due);
                                }
                            }
                            None => {
                                let clean = !s.ends_abruptly();
                                if clean {
                                    buf.extend_from_slice(LAST_CHUNK);
                                }
                                self.state = State::Done { clean };
                                continue;
                            }
                        }
                    }
                    if let Some(due) = self.pending_at {
                        if buf.len() > at {
                            // Hand over what is ready before waiting.
                            return Ok(buf.len() - at);
                        }
                        wait_until(due, deadline).await?;
                        self.pending_at = None;
                    }
                    write_chunk_header(buf, self.pending.len());
                    buf.extend_from_slice(&self.pending);
                    buf.extend_from_slice(b"\r\n");
                    self.pending_delay = None;
                    if buf.len() - at >= BATCH {
                        return Ok(buf.len() - at);
                    }
                }
            }
        }
    }
}

impl MockWire {
    /// Whether the answer went out whole (false for a cut stream, or one not finished yet).
    pub fn ended_cleanly(&self) -> bool {
        matches!(self.state, State::Done { clean: true })
    }
}

/// Sleeps until `at`, or fails with `Timeout` when `deadline` comes first.
async fn wait_until(at: Instant, deadline: Instant) -> Result<(), IoFail> {
    if at > deadline {
        monoio::time::sleep_until(deadline).await;
        return Err(IoFail::Timeout);
    }
    if at > Instant::now() {
        // Precise: the timing a bench measures against must be the timing configured.
        crate::netio::sleep_until_precise(at).await;
    }
    Ok(())
}

fn write_head(reply: &MockReply, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::http1::write::push_usize(out, reply.status as usize);
    out.push(b' ');
    out.extend_from_slice(status_reason(reply.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    write_header(out, b"content-type", reply.content_type.as_bytes());
    if reply.stream.is_some() {
        write_header(out, b"transfer-encoding", b"chunked");
        write_header(out, b"cache-control", b"no-cache");
    } else {
        write_header_usize(out, b"content-length", reply.body.len());
    }
    out.extend_from_slice(b"\r\n");
}

/// The in-process upstream connection of a `kind = "mock"` provider: the request written to
/// it is answered by the mock, and its answer is read back as bytes. Never pooled: a fresh
/// one per request costs no socket.
pub struct MockConn {
    opts: MockOptions,
    wire: Option<MockWire>,
}

impl MockConn {
    /// A connection to a mock with these options (the seed is drawn per request).
    pub fn new(opts: MockOptions) -> MockConn {
        MockConn { opts, wire: None }
    }

    /// Takes a whole request (head and body) and starts its answer.
    pub fn write_request(&mut self, req: &[u8]) {
        let head_end = memchr::memmem::find(req, b"\r\n\r\n").map_or(req.len(), |i| i + 4);
        let line_end = memchr::memchr(b'\r', req).unwrap_or(0);
        let mut parts = req[..line_end].split(|&b| b == b' ');
        let method = parts.next().unwrap_or(b"");
        let path = parts.next().unwrap_or(b"");
        let mock = Mock::new(MockOptions {
            seed: crate::trace::rand_u64(),
            ..self.opts.clone()
        });
        self.wire = Some(MockWire::new(mock.handle(method, path, &req[head_end..])));
    }

    /// Appends answer bytes; see [`MockWire::read_more`]. Before a request: `Closed`.
    pub async fn read_more(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, IoFail> {
        match &mut self.wire {
            Some(w) => w.read_more(buf, deadline).await,
            None => Err(IoFail::Closed),
        }
    }
}
