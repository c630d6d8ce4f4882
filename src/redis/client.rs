//! One worker's Redis client: one connection, shared by every task of the worker, with
//! commands pipelined on it.
//!
//! A call encodes its command(s) into the connection's write buffer and queues one reply
//! slot, in the same step, so the order of slots is the order of commands on the wire and
//! replies (which Redis sends in command order) are matched by position. A writer task sends
//! whatever accumulated while its previous write was in flight, in one write; a reader task
//! parses replies as they arrive and hands each to the slot at the front of the queue. A call
//! that is dropped before its reply leaves its slot in the queue: the reply is read and
//! discarded, so the order holds.
//!
//! Failing fast: every call waits at most `command_timeout`, and at most `max_pending`
//! replies may be due on the connection. A reply that misses its deadline means the server or
//! the path is stalled: the connection is closed and its other calls fail with
//! [`RedisError::Timeout`], rather than left behind an unknown backlog. A lost connection
//! fails its calls with [`RedisError::Unavailable`] (they may or may not have run).
//!
//! The connection task connects (`connect_timeout` covers TCP and the `AUTH` / `SELECT` /
//! `PING` handshake), serves, and when the connection ends, reconnects: at once after a lost
//! connection, then with exponential backoff (`backoff_min` doubling to `backoff_max`, with
//! jitter so the workers of many gateways do not reconnect in step). While the first connect
//! or an immediate reconnect is under way, calls queue (bounded by their deadline); once a
//! connect has failed, calls fail at once with `Unavailable` until one succeeds. A connection
//! quiet for `ping_interval` is sent a `PING`, so a dead server is noticed without traffic.
//! Each client reports to the shared [`Health`].

use super::resp::{self, RespError, Value};
use super::{Health, RedisConfig, RedisError};
use crate::netio::{self, IoFail};
use monoio::io::Splitable;
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Largest reply accepted; a larger one closes the connection (`RedisError::Protocol`).
/// Bounds what one reply can make a worker hold; the gateway's values (a stored response, a
/// counter) are far smaller.
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// Read buffer kept per connection, and the least free space asked of each read.
const READ_BUF: usize = 16 * 1024;
/// A buffer grown past this by one large reply or command is freed once empty.
const SHRINK_ABOVE: usize = 1024 * 1024;
/// Read deadline of a connection with pings off: only bounds how long a silent socket lives.
const IDLE_READ: Duration = Duration::from_secs(3600);

/// A worker's client. Not `Send`: each worker makes its own, inside its runtime, and shares it
/// between its tasks (`Rc<Redis>`).
pub struct Redis {
    inner: Rc<Inner>,
}

/// Counters of one client, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Commands queued.
    pub commands: u64,
    /// Writes to the socket (pipelining: fewer than commands under concurrency).
    pub writes: u64,
    /// Replies read.
    pub replies: u64,
    /// Connections established.
    pub connects: u64,
    /// Connect attempts that failed (refused, timed out, handshake refused).
    pub connect_failures: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// First connect, or reconnecting right after a lost connection: calls queue.
    Connecting,
    /// Connected: calls are sent.
    Up,
    /// A connect failed; retrying with backoff: calls fail at once.
    Down,
    /// The client was dropped.
    Closed,
}

struct Inner {
    cfg: Arc<RedisConfig>,
    health: Arc<Health>,
    state: Cell<State>,
    queue: RefCell<Queue>,
    /// Wakes the writer: bytes were queued.
    queued: Signal,
    /// Wakes the connection task: a reply missed its deadline, or the client was dropped.
    attention: Signal,
    /// Whether this client is counted down in `health`.
    counted_down: Cell<bool>,
    /// Whether the connection task was spawned.
    started: Cell<bool>,
    stats: Cell<RedisStats>,
}

struct Queue {
    /// Encoded commands not yet handed to the socket.
    wbuf: Vec<u8>,
    /// Calls awaiting replies, in the order of their commands on the wire.
    waiting: VecDeque<Rc<Slot>>,
    /// Replies due (the sum of the waiting calls' outstanding commands).
    due: usize,
}

/// Why a connection ended.
#[derive(Debug)]
enum Lost {
    /// The server closed it.
    Closed,
    /// A socket error or a write past its deadline.
    Io(IoFail),
    /// A reply missed its deadline, or the socket was silent past the ping interval.
    Stalled,
    /// A reply did not parse, or was larger than [`MAX_REPLY_BYTES`].
    Protocol(RespError),
    /// A reply arrived with no command waiting for it.
    Unsolicited,
    /// The client was dropped.
    Dropped,
}

impl Lost {
    fn error(&self) -> RedisError {
        match self {
            Lost::Stalled | Lost::Io(IoFail::Timeout) => RedisError::Timeout,
            Lost::Protocol(_) | Lost::Unsolicited => RedisError::Protocol,
            _ => RedisError::Unavailable,
        }
    }
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Closed => f.write_str("closed by the server"),
            Lost::Io(IoFail::Timeout) => f.write_str("write timed out"),
            Lost::Io(_) => f.write_str("socket error"),
            Lost::Stalled => f.write_str("no reply within the deadline"),
            Lost::Protocol(e) => write!(f, "bad reply: {e}"),
            Lost::Unsolicited => f.write_str("a reply nothing asked for"),
            Lost::Dropped => f.write_str("client dropped"),
        }
    }
}

impl Redis {
    /// A client for `cfg`, reporting to `health` (counted down until connected). Needs no
    /// runtime: a worker's service is made before its runtime runs. The connection task
    /// starts at [`Redis::start`] or the first call, on the runtime of that moment.
    pub fn new(cfg: Arc<RedisConfig>, health: Arc<Health>) -> Redis {
        health.register();
        let inner = Rc::new(Inner {
            queue: RefCell::new(Queue {
                wbuf: Vec::with_capacity(READ_BUF),
                waiting: VecDeque::new(),
                due: 0,
            }),
            cfg,
            health,
            state: Cell::new(State::Connecting),
            queued: Signal::default(),
            attention: Signal::default(),
            counted_down: Cell::new(true),
            started: Cell::new(false),
            stats: Cell::new(RedisStats::default()),
        });
        Redis { inner }
    }

    /// Starts connecting (and reconnecting, in the background) unless already started. Call
    /// it inside the worker's runtime, at start or from the service's housekeeping, so the
    /// connection (and [`Health`]) is up before the first request needs it.
    pub fn start(&self) {
        if !self.inner.started.replace(true) {
            monoio::spawn(run(self.inner.clone()));
        }
    }

    /// Sends one command and waits for its reply. An error reply is
    /// [`RedisError::Server`]; every other reply, nil included, is a [`Value`].
    pub async fn cmd(&self, args: &[&[u8]]) -> Result<Value, RedisError> {
        self.start();
        let slot = self.inner.enqueue(std::slice::from_ref(&args))?;
        match self.inner.wait(slot).await?.pop() {
            Some(Value::Error(msg)) => Err(RedisError::Server(
                String::from_utf8_lossy(&msg).into_owned(),
            )),
            Some(v) => Ok(v),
            None => Err(RedisError::Protocol),
        }
    }

    /// Sends the commands in one write and waits for all their replies, in order. Error
    /// replies stay [`Value::Error`] in the result: one failed command does not hide the
    /// others' replies. The deadline covers the whole pipeline.
    pub async fn pipeline(&self, cmds: &[&[&[u8]]]) -> Result<Vec<Value>, RedisError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        self.start();
        let slot = self.inner.enqueue(cmds)?;
        Ok(self.inner.wait(slot).await?.into_vec())
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.state.get() == State::Up
    }

    /// Replies due on the connection now.
    pub fn pending(&self) -> usize {
        self.inner.queue.borrow().due
    }

    /// This client's counters.
    pub fn stats(&self) -> RedisStats {
        self.inner.stats.get()
    }

    /// The config it was made with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.cfg
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.state.set(State::Closed);
        inner.fail_all(RedisError::Unavailable);
        inner.health.unregister(inner.counted_down.replace(false));
        inner.attention.notify();
    }
}

impl Inner {
    fn bump(&self, f: impl FnOnce(&mut RedisStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Queues `cmds` and the slot for their replies, or refuses at once.
    fn enqueue(&self, cmds: &[&[&[u8]]]) -> Result<Rc<Slot>, RedisError> {
        if matches!(self.state.get(), State::Down | State::Closed) {
            return Err(RedisError::Unavailable);
        }
        if cmds.iter().any(|c| c.is_empty()) {
            return Err(RedisError::EmptyCommand);
        }
        let slot = Rc::new(Slot::new(cmds.len()));
        {
            let mut q = self.queue.borrow_mut();
            if q.due + cmds.len() > self.cfg.max_pending {
                return Err(RedisError::Busy);
            }
            for c in cmds {
                resp::write_command(&mut q.wbuf, c);
            }
            q.due += cmds.len();
            q.waiting.push_back(slot.clone());
        }
        self.bump(|s| s.commands += cmds.len() as u64);
        self.queued.notify();
        Ok(slot)
    }

    /// Waits for a slot's replies within the command deadline. Missing it stalls the
    /// connection (see the module doc).
    async fn wait(&self, slot: Rc<Slot>) -> Result<SmallVec<[Value; 1]>, RedisError> {
        match monoio::time::timeout(self.cfg.command_timeout, SlotWait(&slot)).await {
            Ok(r) => r,
            Err(_) => {
                if self.state.get() == State::Up {
                    self.attention.notify();
                }
                Err(RedisError::Timeout)
            }
        }
    }

    /// Hands a reply to the call at the front. False when no call waits for one.
    fn deliver(&self, v: Value) -> bool {
        let mut q = self.queue.borrow_mut();
        let Some(front) = q.waiting.front() else {
            return false;
        };
        let done = front.push(v);
        q.due -= 1;
        if done {
            q.waiting.pop_front();
        }
        drop(q);
        self.bump(|s| s.replies += 1);
        true
    }

    /// Fails every waiting call with `err` and forgets unsent commands.
    fn fail_all(&self, err: RedisError) {
        let waiting = {
            let mut q = self.queue.borrow_mut();
            q.wbuf.clear();
            if q.wbuf.capacity() > SHRINK_ABOVE {
                q.wbuf = Vec::with_capacity(READ_BUF);
            }
            q.due = 0;
            std::mem::take(&mut q.waiting)
        };
        for slot in waiting {
            slot.fail(err.clone());
        }
    }

    fn closed(&self) -> bool {
        self.state.get() == State::Closed
    }

    fn connected(&self) {
        self.state.set(State::Up);
        self.bump(|s| s.connects += 1);
        let was_down = self.counted_down.replace(false);
        self.health.report(was_down, true, &self.cfg.target, "");
    }

    fn connect_failed(&self, why: &str) {
        self.state.set(State::Down);
        self.fail_all(RedisError::Unavailable);
        crate::debug!("redis {}: connect failed: {why}", self.cfg.target);
        let was_down = self.counted_down.replace(true);
        self.health.report(was_down, false, &self.cfg.target, why);
    }

    fn lost(&self, why: &Lost) {
        self.fail_all(why.error());
        self.state.set(State::Connecting);
        crate::warn!(
            "redis {}: connection lost ({why}); reconnecting",
            self.cfg.target
        );
    }
}

/// The connection task: connect, serve, reconnect, until the client is dropped.
async fn run(inner: Rc<Inner>) {
    let cfg = inner.cfg.clone();
    let mut backoff = cfg.backoff_min;
    let mut rng = Jitter::new();
    while !inner.closed() {
        inner.attention.clear();
        let attempt = monoio::select! {
            r = connect(&cfg) => Some(r),
            _ = inner.attention.wait() => None,
        };
        if inner.closed() {
            return;
        }
        match attempt {
            None => continue,
            Some(Ok(stream)) => {
                let since = std::time::Instant::now();
                inner.connected();
                let why = serve(&inner, stream).await;
                if inner.closed() {
                    return;
                }
                inner.lost(&why);
                if since.elapsed() >= cfg.backoff_max {
                    backoff = cfg.backoff_min;
                    continue;
                }
                // A connection that ends soon after it began counts as a failed connect, so
                // a server that accepts and drops connections is not hammered.
                inner.connect_failed(&format!("connection lost soon after connecting: {why}"));
            }
            Some(Err(why)) => {
                inner.bump(|s| s.connect_failures += 1);
                inner.connect_failed(&why);
            }
        }
        let pause = rng.spread(backoff);
        backoff = next_backoff(backoff, cfg.backoff_max);
        monoio::select! {
            _ = monoio::time::sleep(pause) => {},
            _ = inner.attention.wait() => {},
        }
    }
}

/// The pause after `d`: doubled, capped at `max`.
fn next_backoff(d: Duration, max: Duration) -> Duration {
    d.saturating_mul(2).min(max)
}

/// Connects and runs the handshake within `connect_timeout`. The error says why, for the log.
async fn connect(cfg: &RedisConfig) -> Result<TcpStream, String> {
    let deadline = netio::after(cfg.connect_timeout);
    let mut tcp = match monoio::time::timeout_at(deadline, TcpStream::connect_addr(cfg.addr)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect: {}", e.kind())),
        Err(_) => return Err("connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    let mut hello = Vec::with_capacity(256);
    let mut due = 1;
    match (&cfg.user, &cfg.password) {
        (Some(u), Some(p)) => {
            resp::write_command(&mut hello, &[b"AUTH", u.as_bytes(), p.as_bytes()])
        }
        (None, Some(p)) => resp::write_command(&mut hello, &[b"AUTH", p.as_bytes()]),
        _ => due = 0,
    }
    if cfg.db != 0 {
        let db = cfg.db.to_string();
        resp::write_command(&mut hello, &[b"SELECT", db.as_bytes()]);
        due += 1;
    }
    // Always last: a server that accepts TCP but does not answer (hung, or its backlog
    // accepting for it) is not up.
    resp::write_command(&mut hello, &[b"PING"]);
    due += 1;
    let (r, mut buf) = netio::write_vec(&mut tcp, hello, deadline).await;
    r.map_err(|f| format!("handshake write failed: {f:?}"))?;
    while due > 0 {
        match resp::parse_reply(&buf) {
            Ok(Some((v, n))) => {
                buf.drain(..n);
                due -= 1;
                if let Value::Error(msg) = v {
                    return Err(format!(
                        "handshake refused: {}",
                        String::from_utf8_lossy(&msg)
                    ));
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(format!("bad handshake reply: {e}")),
        }
        let (r, b) = netio::read_more(&mut tcp, buf, 512, deadline).await;
        buf = b;
        match r {
            Ok(_) => {}
            Err(IoFail::Timeout) => return Err("handshake timed out".into()),
            Err(_) => return Err("closed during the handshake".into()),
        }
    }
    if !buf.is_empty() {
        return Err("bytes after the handshake".into());
    }
    Ok(tcp)
}

/// Runs one connection until it ends, and says why.
async fn serve(inner: &Inner, stream: TcpStream) -> Lost {
    inner.attention.clear();
    let (mut rd, mut wr) = stream.into_split();
    monoio::select! {
        l = read_loop(inner, &mut rd) => l,
        l = write_loop(inner, &mut wr) => l,
        l = ping_loop(inner) => l,
        _ = inner.attention.wait() => if inner.closed() { Lost::Dropped } else { Lost::Stalled },
    }
}

async fn write_loop(inner: &Inner, wr: &mut TcpOwnedWriteHalf) -> Lost {
    let mut spare = Vec::with_capacity(READ_BUF);
    loop {
        let out = {
            let mut q = inner.queue.borrow_mut();
            if q.wbuf.is_empty() {
                None
            } else {
                Some(std::mem::replace(&mut q.wbuf, std::mem::take(&mut spare)))
            }
        };
        let Some(out) = out else {
            inner.queued.wait().await;
            continue;
        };
        inner.bump(|s| s.writes += 1);
        let (r, b) = netio::write_vec(wr, out, netio::after(inner.cfg.command_timeout)).await;
        if let Err(f) = r {
            return Lost::Io(f);
        }
        spare = if b.capacity() > SHRINK_ABOVE {
            Vec::with_capacity(READ_BUF)
        } else {
            b
        };
    }
}

async fn read_loop(inner: &Inner, rd: &mut TcpOwnedReadHalf) -> Lost {
    let mut buf = Vec::with_capacity(READ_BUF);
    // With pings on, some byte arrives at least every ping interval plus a reply's deadline.
    let silence = if inner.cfg.ping_interval.is_zero() {
        IDLE_READ
    } else {
        inner.cfg.ping_interval + inner.cfg.command_timeout * 2
    };
    loop {
        let mut used = 0;
        loop {
            match resp::parse_reply(&buf[used..]) {
                Ok(Some((v, n))) => {
                    used += n;
                    if !inner.deliver(v) {
                        return Lost::Unsolicited;
                    }
                }
                Ok(None) => break,
                Err(e) => return Lost::Protocol(e),
            }
        }
        if used == buf.len() {
            buf.clear();
            if buf.capacity() > SHRINK_ABOVE {
                buf = Vec::with_capacity(READ_BUF);
            }
        } else if used > 0 {
            buf.drain(..used);
        }
        if buf.len() > MAX_REPLY_BYTES {
            return Lost::Protocol(RespError::TooLarge);
        }
        let (r, b) = netio::read_more(rd, buf, READ_BUF, netio::after(silence)).await;
        buf = b;
        match r {
            Ok(_) => {}
            Err(IoFail::Closed) => return Lost::Closed,
            Err(IoFail::Timeout) => return Lost::Stalled,
            Err(f) => return Lost::Io(f),
        }
    }
}

/// Sends a `PING` whenever a ping interval passed without a reply; ends the connection when
/// one misses its deadline.
async fn ping_loop(inner: &Inner) -> Lost {
    let every = inner.cfg.ping_interval;
    if every.is_zero() {
        return std::future::pending().await;
    }
    let mut seen = inner.stats.get().replies;
    loop {
        monoio::time::sleep(every).await;
        let replies = inner.stats.get().replies;
        if replies != seen {
            seen = replies;
            continue;
        }
        // Busy (the queue is full) means traffic, which is its own liveness check.
        if let Ok(slot) = inner.enqueue(&[&[b"PING"]]) {
            if let Err(RedisError::Timeout) = inner.wait(slot).await {
                return Lost::Stalled;
            }
        }
        seen = inner.stats.get().replies;
    }
}

/// A call's reply slot.
struct Slot(RefCell<SlotState>);

struct SlotState {
    want: usize,
    got: usize,
    values: SmallVec<[Value; 1]>,
    outcome: Option<Result<(), RedisError>>,
    waker: Option<Waker>,
}

impl Slot {
    fn new(want: usize) -> Slot {
        Slot(RefCell::new(SlotState {
            want,
            got: 0,
            values: SmallVec::new(),
            outcome: None,
            waker: None,
        }))
    }

    /// Adds a reply; true when it was the last one due.
    fn push(self: &Rc<Slot>, v: Value) -> bool {
        // Only the queue holds it: the call was dropped, its replies are discarded.
        let abandoned = Rc::strong_count(self) == 1;
        let mut s = self.0.borrow_mut();
        s.got += 1;
        if !abandoned {
            s.values.push(v);
        }
        let done = s.got == s.want;
        if done {
            s.outcome = Some(Ok(()));
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        done
    }

    fn fail(&self, err: RedisError) {
        let mut s = self.0.borrow_mut();
        s.outcome = Some(Err(err));
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

struct SlotWait<'a>(&'a Rc<Slot>);

impl Future for SlotWait<'_> {
    type Output = Result<SmallVec<[Value; 1]>, RedisError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.0 .0.borrow_mut();
        match s.outcome.take() {
            Some(Ok(())) => Poll::Ready(Ok(std::mem::take(&mut s.values))),
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// A one-waiter wake-up flag for tasks of one thread.
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn clear(&self) {
        self.set.set(false);
    }

    /// Resolves once notified (at once if it was since the last wait or clear).
    fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

/// Spreads reconnect pauses over `[d/2, d)` (xorshift64, seeded per client).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        use std::hash::{BuildHasher, Hasher};
        // RandomState's keys are random per thread and stepped per instance.
        Jitter(
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1,
        )
    }

    fn spread(&mut self, d: Duration) -> Duration {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let half = d / 2;
        let nanos = half.as_nanos() as u64;
        half + Duration::from_nanos(if nanos == 0 { 0 } else { x % nanos })
    }
}

#[cfg(test)]
mod tests {
    use super::{next_backoff, Jitter};
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_is_spread_below_it() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        let mut d = min;
        let mut seen = vec![d];
        for _ in 0..10 {
            d = next_backoff(d, max);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(|d| d.as_millis()).collect();
        assert_eq!(
            ms,
            [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000]
        );
        let mut j = Jitter::new();
        let spread: Vec<Duration> = (0..1000).map(|_| j.spread(max)).collect();
        assert!(spread.iter().all(|p| *p >= max / 2 && *p < max));
        assert!(spread.iter().any(|p| *p != spread[0]), "no jitter");
        assert_eq!(j.spread(Duration::ZERO), Duration::ZERO);
    }
}
