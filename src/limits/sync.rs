//! Batched sharing of the rate limits (`[state] backend = "redis"`, `limits_sync = "batched"`):
//! the workers check and count locally, as without Redis, and one thread per gateway trades
//! the counts with Redis every `limits_sync_ms`. No Redis round trip is on the request path.
//!
//! One pass, for every limiter of the current route snapshot (each project's and each token's),
//! pipelined into one write and one read on a plain blocking socket (this thread is not a
//! worker, so blocking here stalls no request):
//!
//! 1. push what this gateway admitted since its last push: `HINCRBY {key}:{ws} r n`, `t n` and
//!    `PEXPIRE` of two windows on the current window's hash; after a window rollover, what was
//!    admitted in the previous window after its last push goes to that window's hash too;
//! 2. read the global counts of the current and previous window (`HMGET ... r t`);
//! 3. set the limiter's `remote` counts to global − what this gateway has pushed, so each
//!    worker's check sees its own gateway's counts live and the others' as of this pass.
//!
//! Keys: `sy:lb:{project}:{window start ms}` and `sy:lb:{project}:t:{digest}:{window start ms}`,
//! the exact mode's layout under `sy:lb:` instead of `sy:l:`, so the two modes never write each
//! other's hashes (gateways must agree on the mode to share a limit).
//!
//! ## Over-admission bound
//!
//! A gateway's check lacks the other gateways' admissions it has not seen yet: those made after
//! their owner's last push that came before this gateway's last pull. Passes are not aligned
//! across gateways, so that is at most two sync intervals (plus a pass's round trip) of each
//! other gateway's admissions. With `g` gateways, `W` workers per gateway and `a` the most one
//! gateway admits in two sync intervals, the most admitted in one window is
//!
//! ```text
//! limit + (g − 1) × a + (W − 1)
//! ```
//!
//! (the `W − 1` is the workers' race of local counting, see the parent module). At a steady
//! rate of `r` admitted requests per second per gateway and an interval of `i` seconds,
//! `a ≈ 2 r i`: e.g. 2 gateways at 500 req/s each with the default 100 ms may over-admit about
//! 100 requests in the window. Exact mode never over-admits (0) but puts a Redis round trip on
//! every limited request. Tokens (`tpm`) are bounded alike, in tokens.
//!
//! Redis down or slow: the workers never notice (they only read local counters); passes fail,
//! the outage is logged once, the thread reconnects with capped exponential backoff, and what
//! was admitted meanwhile is pushed on the first pass that succeeds (the other gateways'
//! counts stay as last read, and fade with the windows). A pass that failed after its write
//! may have been applied: it is pushed again, so an outage can over-count, never under-count.

use super::{window_start, Counts, Limiter};
use crate::redis::resp::{parse_reply, write_command};
use crate::redis::{RedisConfig, Value};
use crate::server::worker::Shared;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Passes that completed (pushed and read every limiter of the snapshot).
static PASSES: AtomicU64 = AtomicU64::new(0);
/// Passes that failed (Redis down, slow, or answering with an error).
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Completed sync passes since start (for `/metrics`).
pub fn passes() -> u64 {
    PASSES.load(Relaxed)
}

/// Failed sync passes since start (for `/metrics`).
pub fn failures() -> u64 {
    FAILURES.load(Relaxed)
}

/// Largest reply buffer a pass accepts (a snapshot with very many token limiters).
const MAX_REPLY: usize = 64 << 20;

/// The running sync thread.
pub struct SyncThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl SyncThread {
    /// Stops the thread after one last pass (so this gateway's last admissions reach Redis),
    /// and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Starts the sync thread for `shared`'s route snapshots, trading with the Redis of `redis`
/// every `every`.
pub fn start(
    shared: Arc<Shared>,
    redis: RedisConfig,
    every: Duration,
) -> std::io::Result<SyncThread> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("switchyard-limits".into())
        .spawn(move || run(&shared, &redis, every, &s))?;
    Ok(SyncThread { stop, thread })
}

fn run(shared: &Shared, redis: &RedisConfig, every: Duration, stop: &AtomicBool) {
    let mut conn: Option<Conn> = None;
    let mut backoff = redis.backoff_min;
    let mut failing = false;
    loop {
        let started = Instant::now();
        let last = stop.load(Relaxed);
        let outcome = match conn.as_mut() {
            Some(c) => Ok(c),
            None => Conn::open(redis).map(|c| conn.insert(c)),
        }
        .and_then(|c| {
            let table = shared.routes.load();
            pass(c, &limiters(&table), now_ms())
        });
        let wait = match outcome {
            Ok(()) => {
                PASSES.fetch_add(1, Relaxed);
                if failing {
                    failing = false;
                    crate::info!("rate limits: batched sync reaches redis again");
                }
                backoff = redis.backoff_min;
                every
            }
            Err(e) => {
                FAILURES.fetch_add(1, Relaxed);
                conn = None;
                if !failing {
                    failing = true;
                    crate::warn!(
                        "rate limits: batched sync cannot reach redis at {} ({e}); each gateway counts locally until it can",
                        redis.target
                    );
                }
                let b = backoff;
                backoff = (backoff * 2).min(redis.backoff_max);
                every.max(b)
            }
        };
        if last {
            return;
        }
        let until = started + wait;
        while !stop.load(Relaxed) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
    }
}

/// Every limiter of `table`: each project's and each of its tokens'.
fn limiters(table: &crate::route::RouteTable) -> Vec<&Limiter> {
    table
        .projects
        .iter()
        .flat_map(|p| {
            p.limiter
                .as_deref()
                .into_iter()
                .chain(p.token_limiters.values().map(|l| &**l))
        })
        .collect()
}

fn now_ms() -> u64 {
    crate::route::stats::now_ms()
}

/// The batched-mode key prefix of a limiter: `sy:l:...` becomes `sy:lb:...`.
fn batched_key(key: &[u8]) -> Vec<u8> {
    match key.strip_prefix(b"sy:l:") {
        Some(rest) => [b"sy:lb:".as_slice(), rest].concat(),
        None => [b"sy:lb:".as_slice(), key].concat(),
    }
}

/// What one limiter's part of a pass pushes, and where its reads are in the replies.
struct Plan<'a> {
    l: &'a Limiter,
    ws: u64,
    /// What will have been pushed of the (current, previous) window once this pass applies.
    pushed: (Counts, Counts),
    /// Index of the current window's `HMGET` reply (the previous window's follows it).
    read_at: usize,
}

/// One pass over `limiters` at `now`: see the module doc.
pub fn pass(c: &mut Conn, limiters: &[&Limiter], now: u64) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 * limiters.len().max(1));
    let mut n = 0usize;
    let mut plans = Vec::with_capacity(limiters.len());
    for &l in limiters {
        let w = l.cfg.window_ms.max(1);
        let ws = window_start(now, w);
        let (own_cur, own_prev) = l.local_counts(now);
        let (was_cur, was_prev) = l.pushed.read(ws, w);
        let key = batched_key(&l.key);
        let pexpire = (2 * w).to_string();
        let mut pushed = (was_cur, was_prev);
        for (at, own, was, total) in [
            (ws, own_cur, was_cur, &mut pushed.0),
            (ws.saturating_sub(w), own_prev, was_prev, &mut pushed.1),
        ] {
            let delta = [own[0].saturating_sub(was[0]), own[1].saturating_sub(was[1])];
            if delta == [0, 0] {
                continue;
            }
            let hash = [key.as_slice(), b":", at.to_string().as_bytes()].concat();
            for (field, d) in [(b"r", delta[0]), (b"t", delta[1])] {
                if d > 0 {
                    let d = d.to_string();
                    write_command(&mut out, &[b"HINCRBY", &hash, field, d.as_bytes()]);
                    n += 1;
                }
            }
            write_command(&mut out, &[b"PEXPIRE", &hash, pexpire.as_bytes()]);
            n += 1;
            *total = [was[0] + delta[0], was[1] + delta[1]];
        }
        let read_at = n;
        for at in [ws, ws.saturating_sub(w)] {
            let hash = [key.as_slice(), b":", at.to_string().as_bytes()].concat();
            write_command(&mut out, &[b"HMGET", &hash, b"r", b"t"]);
            n += 1;
        }
        plans.push(Plan {
            l,
            ws,
            pushed,
            read_at,
        });
    }
    if n == 0 {
        return Ok(());
    }
    let replies = c.round_trip(&out, n)?;
    let counts = |v: &Value| -> std::io::Result<Counts> {
        let bad = || std::io::Error::other("unexpected HMGET reply");
        let Value::Array(items) = v else {
            return Err(bad());
        };
        let get = |i: usize| match items.get(i) {
            Some(Value::Nil) | None => Ok(0),
            Some(v) => v.as_int().map(|n| n.max(0) as u64).ok_or_else(bad),
        };
        Ok([get(0)?, get(1)?])
    };
    // Check every reply before applying any, so a failed pass changes nothing.
    if let Some(Value::Error(e)) = replies.iter().find(|v| matches!(v, Value::Error(_))) {
        return Err(std::io::Error::other(format!(
            "redis error: {}",
            String::from_utf8_lossy(e)
        )));
    }
    let mut globals = Vec::with_capacity(plans.len());
    for p in &plans {
        globals.push((
            counts(&replies[p.read_at])?,
            counts(&replies[p.read_at + 1])?,
        ));
    }
    for (p, (g_cur, g_prev)) in plans.iter().zip(globals) {
        let (mine_cur, mine_prev) = p.pushed;
        p.l.pushed.set(p.ws, mine_cur, mine_prev);
        let others =
            |g: Counts, mine: Counts| [g[0].saturating_sub(mine[0]), g[1].saturating_sub(mine[1])];
        p.l.remote
            .set(p.ws, others(g_cur, mine_cur), others(g_prev, mine_prev));
    }
    Ok(())
}

/// The sync thread's connection: blocking, with deadlines on every call.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, authenticates and selects the database of `cfg`.
    pub fn open(cfg: &RedisConfig) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&cfg.addr, cfg.connect_timeout)?;
        stream.set_nodelay(true)?;
        // A pass carries every limiter at once: give it more than one command's deadline.
        let io = cfg.command_timeout.max(Duration::from_millis(500));
        stream.set_read_timeout(Some(io))?;
        stream.set_write_timeout(Some(io))?;
        let mut c = Conn {
            stream,
            buf: Vec::with_capacity(4096),
        };
        let mut out = Vec::new();
        let mut n = 0;
        if let Some(pw) = &cfg.password {
            match &cfg.user {
                Some(u) => write_command(&mut out, &[b"AUTH", u.as_bytes(), pw.as_bytes()]),
                None => write_command(&mut out, &[b"AUTH", pw.as_bytes()]),
            }
            n += 1;
        }
        if cfg.db != 0 {
            let db = cfg.db.to_string();
            write_command(&mut out, &[b"SELECT", db.as_bytes()]);
            n += 1;
        }
        if n > 0 {
            let replies = c.round_trip(&out, n)?;
            if let Some(Value::Error(e)) = replies.iter().find(|v| matches!(v, Value::Error(_))) {
                // The server's text (e.g. WRONGPASS ...) never holds the password.
                return Err(std::io::Error::other(format!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(e)
                )));
            }
        }
        Ok(c)
    }

    /// Writes `out` (`n` pipelined commands) and reads their `n` replies.
    fn round_trip(&mut self, out: &[u8], n: usize) -> std::io::Result<Vec<Value>> {
        self.stream.write_all(out)?;
        self.buf.clear();
        let mut replies = Vec::with_capacity(n);
        let mut pos = 0;
        let mut chunk = [0u8; 16 * 1024];
        while replies.len() < n {
            match parse_reply(&self.buf[pos..]) {
                Ok(Some((v, used))) => {
                    replies.push(v);
                    pos += used;
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(format!("bad reply: {e}"))),
            }
            if self.buf.len() > MAX_REPLY {
                return Err(std::io::Error::other("reply too large"));
            }
            let got = self.stream.read(&mut chunk)?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitConfig;

    #[test]
    fn batched_keys_never_meet_exact_keys() {
        assert_eq!(batched_key(b"sy:l:team"), b"sy:lb:team".to_vec());
        assert_eq!(
            batched_key(b"sy:l:team:t:0011aabb"),
            b"sy:lb:team:t:0011aabb".to_vec()
        );
        assert!(!batched_key(b"sy:l:x").starts_with(b"sy:l:"));
    }

    #[test]
    fn remote_counts_are_checked_but_not_pushed() {
        let cfg = RateLimitConfig {
            rpm: 10,
            tpm: 0,
            window_ms: 60_000,
        };
        let l = Limiter::new(cfg, b"sy:l:p".to_vec(), 2);
        let t = 6_000_000;
        l.add(0, t, 5);
        l.add(1, t + 1, 5);
        l.remote.set(t, [7, 70], [3, 30]);
        assert_eq!(l.local_counts(t + 2), ([2, 10], [0, 0]));
        assert_eq!(l.counts(t + 2), ([9, 80], [3, 30]));
        // 9 + 3 × (1 − 2/60000) + 1 > 10: the other gateways' counts refuse it.
        assert!(l.check_local(t + 2, 1).is_err());
        // Next window: what was current is now the previous window, for remote as for local.
        assert_eq!(l.counts(t + 60_000), ([0, 0], [9, 80]));
    }
}
