//! Owned-buffer IO with deadlines, over monoio's rent-style traits.
//!
//! monoio reads write from a buffer's start, so appending goes through `slice_mut(len..)`
//! (STYLE.md). Every read and write here has a deadline; on a timeout the in-flight operation
//! is cancelled and its buffer stays with the driver, so the caller gets an empty buffer back
//! and must close the connection (it always does: a timed-out stream is never reused).

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::time::Instant;
use std::io;

/// Why an IO call ended without data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFail {
    /// The deadline passed.
    Timeout,
    /// The peer closed (read returned 0, or a write hit EPIPE/ECONNRESET).
    Closed,
    /// Another socket error.
    Error,
}

fn classify(e: &io::Error) -> IoFail {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => IoFail::Closed,
        io::ErrorKind::TimedOut => IoFail::Timeout,
        _ => IoFail::Error,
    }
}

/// Reads more bytes, appending after `buf.len()`. Grows the buffer so at least `min_spare`
/// bytes are free. Returns the number read (never 0: end of stream is `Err(Closed)`).
pub async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
    deadline: Instant,
) -> (Result<usize, IoFail>, Vec<u8>) {
    if buf.capacity() - buf.len() < min_spare {
        buf.reserve(min_spare);
    }
    let len = buf.len();
    let fut = s.read(buf.slice_mut(len..));
    match monoio::time::timeout_at(deadline, fut).await {
        Ok((Ok(0), slice)) => (Err(IoFail::Closed), slice.into_inner()),
        Ok((Ok(n), slice)) => (Ok(n), slice.into_inner()),
        Ok((Err(e), slice)) => (Err(classify(&e)), slice.into_inner()),
        Err(_) => (Err(IoFail::Timeout), Vec::new()),
    }
}

/// Writes all of `buf` (any owned buffer or slice of one) before `deadline`.
pub async fn write_all<S: AsyncWriteRent, B: IoBuf + 'static>(
    s: &mut S,
    buf: B,
    deadline: Instant,
) -> (Result<(), IoFail>, Option<B>) {
    match monoio::time::timeout_at(deadline, s.write_all(buf)).await {
        Ok((Ok(_), b)) => (Ok(()), Some(b)),
        Ok((Err(e), b)) => (Err(classify(&e)), Some(b)),
        Err(_) => (Err(IoFail::Timeout), None),
    }
}

/// Writes `buf[..]` and hands the (cleared) buffer back for reuse; an empty one after a
/// timeout.
pub async fn write_vec<S: AsyncWriteRent>(
    s: &mut S,
    buf: Vec<u8>,
    deadline: Instant,
) -> (Result<(), IoFail>, Vec<u8>) {
    let (r, b) = write_all(s, buf, deadline).await;
    let mut b = b.unwrap_or_default();
    b.clear();
    (r, b)
}

/// Writes `buf[range]` and hands the whole buffer back untouched (for relaying from the
/// middle of a read buffer without copying).
pub async fn write_range<S: AsyncWriteRent>(
    s: &mut S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    deadline: Instant,
) -> (Result<(), IoFail>, Vec<u8>) {
    let (r, b) = write_all(s, buf.slice(start..end), deadline).await;
    (r, b.map(|s| s.into_inner()).unwrap_or_default())
}

/// What a non-blocking one-byte peek at a socket found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// Bytes are waiting to be read.
    Data,
    /// Nothing to read yet: the connection is open and quiet.
    Empty,
    /// The peer closed (end of stream) or the socket failed.
    Closed,
}

/// Peeks at `fd` without blocking and without consuming anything (`recv` with
/// `MSG_PEEK | MSG_DONTWAIT`).
pub fn peek(fd: std::os::fd::RawFd) -> Peek {
    let mut b = [0u8; 1];
    // SAFETY: recv(2) with MSG_PEEK|MSG_DONTWAIT on a caller-owned fd into a 1-byte stack buffer.
    let r = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr() as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match r {
        0 => Peek::Closed,
        n if n > 0 => Peek::Data,
        _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => Peek::Empty,
        _ => Peek::Closed,
    }
}

/// Resolves when the client has closed its connection (EOF or error), so work on its behalf
/// can stop at once. Bytes the client sends meanwhile (a pipelined next request) are left
/// unread, and after seeing them this future never resolves: a half-closed keep-alive client
/// is then noticed at the next write instead.
pub async fn client_gone(client: &monoio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    loop {
        if client.readable(false).await.is_err() {
            return;
        }
        match peek(client.as_raw_fd()) {
            Peek::Closed => return,
            Peek::Empty => continue,
            Peek::Data => std::future::pending::<()>().await,
        }
    }
}

/// How long a wait on the upstream goes before the client socket is watched too. Arming the
/// watch is an io_uring poll that is cancelled when the upstream answers first, and monoio
/// boxes a cancelled op's state: waits shorter than this (a fast upstream, each read of a
/// flowing stream) skip it and so allocate nothing; a client leaving is still noticed this
/// soon after it left.
pub const WATCH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// [`client_gone`], armed only after [`WATCH_AFTER`].
pub async fn client_gone_later(client: &monoio::net::TcpStream) {
    monoio::time::sleep(WATCH_AFTER).await;
    client_gone(client).await
}

/// A deadline `d` from now.
pub fn after(d: std::time::Duration) -> Instant {
    Instant::now() + d
}

/// How much of a [`sleep_until_precise`] is spent yielding instead of on the timer: monoio's
/// timer wheel ticks in milliseconds and rounds every deadline up to the next tick, so a
/// plain sleep ends 0-1 ms late (1.2 ms on average, measured against the mock's pacing).
pub const TIMER_SLACK: std::time::Duration = std::time::Duration::from_millis(1);

/// Sleeps until `at` to within microseconds: on the timer until [`TIMER_SLACK`] before it,
/// then by yielding to the runtime (other tasks run meanwhile) until the clock passes it.
/// For pacing that is measured (the mock's token timing, the bench driver's arrivals); the
/// cost is a runtime that polls instead of parking for at most the slack per wait.
pub async fn sleep_until_precise(at: Instant) {
    if let Some(early) = at.checked_sub(TIMER_SLACK) {
        if early > Instant::now() {
            monoio::time::sleep_until(early).await;
        }
    }
    while Instant::now() < at {
        YieldNow(false).await;
    }
}

/// Gives the other tasks of the runtime a turn.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
