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
    buf: Vec<u8>,
    min_spare: usize,
    deadline: Instant,
) -> (Result<usize, IoFail>, Vec<u8>) {
    match monoio::time::timeout_at(deadline, read_some(s, buf, min_spare)).await {
        Ok(r) => r,
        Err(_) => (Err(IoFail::Timeout), Vec::new()),
    }
}

/// [`read_more`] with no deadline of its own, for a caller whose own timer bounds the wait
/// (dropping this future cancels the read; its buffer then stays with the driver).
pub async fn read_some<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
) -> (Result<usize, IoFail>, Vec<u8>) {
    if buf.capacity() - buf.len() < min_spare {
        buf.reserve(min_spare);
    }
    let len = buf.len();
    match s.read(buf.slice_mut(len..)).await {
        (Ok(0), slice) => (Err(IoFail::Closed), slice.into_inner()),
        (Ok(n), slice) => (Ok(n), slice.into_inner()),
        (Err(e), slice) => (Err(classify(&e)), slice.into_inner()),
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

/// Room for the two iovecs of a [`write_pair`], kept with a request's buffers and reused: the
/// kernel reads the iovec array itself, so it must sit on the heap (the op holding it moves
/// after the submission entry is built), and allocating it per write would break the
/// steady state's no-allocation-per-request rule.
#[derive(Default)]
pub struct IoVecs(Vec<libc::iovec>);

/// `first` whole, then `second[start..end]`, as one `writev`; `iov` points at what is left.
struct Pair {
    first: Vec<u8>,
    second: Vec<u8>,
    start: usize,
    end: usize,
    iov: Vec<libc::iovec>,
}

impl Pair {
    fn len(&self) -> usize {
        self.first.len() + (self.end - self.start)
    }

    /// Points the iovecs at the bytes not yet written, `done` being written.
    fn aim(&mut self, done: usize) {
        self.iov.clear();
        let a = &self.first[done.min(self.first.len())..];
        let b = &self.second[self.start + done.saturating_sub(self.first.len())..self.end];
        for s in [a, b] {
            if !s.is_empty() {
                self.iov.push(libc::iovec {
                    iov_base: s.as_ptr() as *mut libc::c_void,
                    iov_len: s.len(),
                });
            }
        }
    }
}

// SAFETY: the iovecs point into `first` and `second`, heap storage this value owns and leaves
// untouched while the runtime holds it; the iovec array is itself on the heap (`iov`), so
// moving the value moves none of what the pointers reach, and `aim` keeps every iovec inside
// its buffer's initialized bytes.
unsafe impl monoio::buf::IoVecBuf for Pair {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iov.len()
    }
}

/// Writes all of `first`, then `second[start..end]`, in one `writev` (more only if the socket
/// takes part of it), so a response head built apart from a relayed body leaves in the same
/// segment as the body's first bytes without copying them. `first` comes back cleared and
/// `second` untouched; both (and `iov`) empty after a timeout.
pub async fn write_pair<S: AsyncWriteRent>(
    s: &mut S,
    first: &mut Vec<u8>,
    iov: &mut IoVecs,
    second: Vec<u8>,
    start: usize,
    end: usize,
    deadline: Instant,
) -> (Result<(), IoFail>, Vec<u8>) {
    let mut pair = Pair {
        first: std::mem::take(first),
        second,
        start,
        end,
        iov: std::mem::take(&mut iov.0),
    };
    let all = async move {
        let mut done = 0;
        loop {
            pair.aim(done);
            if done == pair.len() {
                return (Ok(()), pair);
            }
            let (r, p) = s.writev(pair).await;
            pair = p;
            match r {
                Ok(0) => return (Err(IoFail::Closed), pair),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(classify(&e)), pair),
            }
        }
    };
    match monoio::time::timeout_at(deadline, all).await {
        Ok((r, mut pair)) => {
            pair.iov.clear();
            pair.first.clear();
            *first = pair.first;
            iov.0 = pair.iov;
            (r, pair.second)
        }
        Err(_) => (Err(IoFail::Timeout), Vec::new()),
    }
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

/// [`client_gone`] for the whole of a stream, armed once, where [`client_gone_later`] would be
/// armed (and cancelled) at every wait for the upstream: a paced stream waits once per event,
/// and a poll submitted and cancelled per event cost a quarter of the relay's CPU per event
/// (bench/streams.sh). Made once per stream and polled at each wait; after [`WATCH_AFTER`] it
/// polls a duplicate of the client's descriptor, so the relay keeps writing through its own
/// handle meanwhile. A stream shorter than that costs one timer and no descriptor; if the
/// duplicate cannot be made the client is noticed at the next write instead.
pub async fn client_gone_watch(fd: std::os::fd::RawFd) {
    monoio::time::sleep(WATCH_AFTER).await;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open while this future lives
    // gives a new descriptor this function alone owns (handed to `from_raw_fd` just below).
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return std::future::pending().await;
    }
    // SAFETY: `dup` is a fresh descriptor owned by nothing else.
    let std = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    match monoio::net::TcpStream::from_std(std) {
        Ok(watched) => client_gone(&watched).await,
        Err(_) => std::future::pending().await,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use monoio::io::AsyncReadRentExt;
    use monoio::net::{TcpListener, TcpStream};

    /// The head, then exactly the asked range of the body, whatever the socket takes per call:
    /// a body far larger than a socket buffer makes the kernel accept it in parts, which must
    /// resume inside the right iovec.
    #[monoio::test_all(timer_enabled = true)]
    async fn write_pair_sends_head_then_range_across_partial_writes() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let head: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let body: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let (start, end) = (17, body.len() - 5);
        let want: Vec<u8> = [&head[..], &body[start..end]].concat();
        let total = want.len();
        let reader = monoio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let (r, got) = c.read_exact(vec![0u8; total]).await;
            r.unwrap();
            got
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut first = head.clone();
        let mut iov = IoVecs::default();
        let deadline = after(std::time::Duration::from_secs(30));
        let (r, back) = write_pair(&mut s, &mut first, &mut iov, body, start, end, deadline).await;
        assert_eq!(r, Ok(()));
        assert!(
            first.is_empty() && first.capacity() >= head.len(),
            "head buffer kept"
        );
        assert_eq!(back.len(), 8 << 20, "body handed back whole");
        let got = reader.await;
        assert!(got == want, "bytes differ from head + body[start..end]");
    }

    /// An empty range writes the head alone.
    #[monoio::test_all(timer_enabled = true)]
    async fn write_pair_with_empty_range_writes_the_head() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let reader = monoio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let (r, got) = c.read_exact(vec![0u8; 5]).await;
            r.unwrap();
            got
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut first = b"hello".to_vec();
        let mut iov = IoVecs::default();
        let deadline = after(std::time::Duration::from_secs(30));
        let (r, _) = write_pair(&mut s, &mut first, &mut iov, vec![1, 2], 1, 1, deadline).await;
        assert_eq!(r, Ok(()));
        assert_eq!(reader.await, b"hello");
    }
}
