//! Request and token rate limits (`limits = { rpm, tpm }` of a project, `token_limits` of each
//! of its tokens), checked in the decide phase before any upstream is called.
//!
//! Window: a sliding-window estimate over two fixed windows of `window_ms` (one minute): the
//! previous window's count weighed by the fraction of it still inside the last `window_ms`,
//! plus the current one's. It never under-counts a steady rate; a burst at the end of one
//! window and the start of the next is seen as such, so the most a client gets through in any
//! minute is bounded by the limit plus what the weighing forgives of the previous window (at
//! most 2× the limit for a burst straddling the boundary exactly, as any two-window limiter).
//!
//! Local counting ([`Limiter`]): one cache-line-padded slot per worker, written only by its
//! worker (relaxed load + store, no read-modify-write), summed by the checker. A worker's check
//! and its add run without an `.await` between them, so within a worker admission is exact;
//! across N workers, each may admit against a sum that lacks the others' in-flight adds: the
//! over-admission is at most N−1 requests (and their tokens) per window.
//!
//! Shared counting (`[state] backend = "redis"`), by `[state] limits_sync`:
//! - `exact` ([`shared`]): one script call per request checks every limit that applies and
//!   counts the request in one atomic step, so the gateways sharing the Redis never
//!   over-admit; when Redis does not answer the request is served and counted locally (fail
//!   open), logged once per outage. Costs a Redis round trip per limited request.
//! - `batched` ([`sync`]): the workers check and count locally as above, against their own
//!   gateway's counts plus the other gateways' (`remote`), which one thread per gateway trades
//!   with Redis every `limits_sync_ms`. No round trip on the request path; over-admission per
//!   window of at most `(gateways − 1) × (admissions per gateway in two sync intervals) +
//!   (workers − 1)` (derivation in [`sync`]).

pub mod shared;
pub mod sync;

use crate::config::RateLimitConfig;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one window: [requests, tokens].
type Counts = [u64; 2];

/// One worker's counts, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    start_ms: AtomicU64,
    cur: [AtomicU64; 2],
    prev: [AtomicU64; 2],
}

impl Slot {
    /// (current, previous) window counts as of the window that starts at `ws`.
    fn read(&self, ws: u64, window: u64) -> (Counts, Counts) {
        let start = self.start_ms.load(Relaxed);
        let load = |a: &[AtomicU64; 2]| [a[0].load(Relaxed), a[1].load(Relaxed)];
        if start == ws {
            (load(&self.cur), load(&self.prev))
        } else if start + window == ws {
            ([0, 0], load(&self.cur))
        } else {
            ([0, 0], [0, 0])
        }
    }

    /// Sets the counts of the window starting at `ws` (owner only: the sync thread).
    fn set(&self, ws: u64, cur: Counts, prev: Counts) {
        for (a, v) in self.cur.iter().zip(cur).chain(self.prev.iter().zip(prev)) {
            a.store(v, Relaxed);
        }
        self.start_ms.store(ws, Relaxed);
    }

    /// Adds `v` (owner only), rotating first.
    fn add(&self, ws: u64, window: u64, v: Counts) {
        let start = self.start_ms.load(Relaxed);
        if start != ws {
            let carried = if start + window == ws {
                [self.cur[0].load(Relaxed), self.cur[1].load(Relaxed)]
            } else {
                [0, 0]
            };
            for ((p, c), v) in self.prev.iter().zip(&self.cur).zip(carried) {
                p.store(v, Relaxed);
                c.store(0, Relaxed);
            }
            self.start_ms.store(ws, Relaxed);
        }
        for (c, x) in self.cur.iter().zip(v) {
            c.store(c.load(Relaxed).wrapping_add(x), Relaxed);
        }
    }
}

/// A refusal: which limit and how long until the window frees enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `"rpm"` or `"tpm"`.
    pub limit: &'static str,
    /// The configured value of that limit.
    pub value: u64,
    /// Milliseconds until a request of this cost would fit (the window when it never can).
    pub retry_after_ms: u64,
    /// The request alone is past the limit: it can never fit.
    pub never: bool,
    /// Which of the limiters handed to the admit call refused (its index there).
    pub which: usize,
}

impl Refusal {
    /// `retry-after` in whole seconds, at least 1 (RFC 9110 §10.2.3 takes delay-seconds).
    pub fn retry_after_s(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000).max(1)
    }
}

/// The start of the window holding `now`.
pub fn window_start(now: u64, window: u64) -> u64 {
    now - now % window.max(1)
}

/// Checks a request of `tokens` estimated tokens against `cfg`, given the current and previous
/// windows' counts (all gateways' or this one's) and `now`.
pub fn check(
    cfg: &RateLimitConfig,
    now: u64,
    cur: Counts,
    prev: Counts,
    tokens: u64,
) -> Result<(), Refusal> {
    let w = cfg.window_ms.max(1);
    let into = now - window_start(now, w);
    for (i, (limit, cost, name)) in [(cfg.rpm, 1, "rpm"), (cfg.tpm, tokens, "tpm")]
        .into_iter()
        .enumerate()
    {
        if limit == 0 {
            continue;
        }
        let est = cur[i] as f64 + prev[i] as f64 * (1.0 - into as f64 / w as f64);
        if est + cost as f64 <= limit as f64 {
            continue;
        }
        return Err(Refusal {
            limit: name,
            value: limit,
            retry_after_ms: wait_ms(w, into, cur[i], prev[i], limit, cost),
            never: cost > limit,
            which: 0,
        });
    }
    Ok(())
}

/// How long until `est + cost <= limit`, with no other request counted meanwhile.
fn wait_ms(w: u64, into: u64, cur: u64, prev: u64, limit: u64, cost: u64) -> u64 {
    if cost > limit {
        return w;
    }
    let free = (limit - cost) as f64;
    let (w_f, cur_f, prev_f) = (w as f64, cur as f64, prev as f64);
    if cur_f <= free && prev > 0 {
        // Still in this window: the previous window's weight must fall far enough.
        let at = w_f * (1.0 - (free - cur_f) / prev_f);
        return (at.ceil() as u64).saturating_sub(into).max(1);
    }
    // In the next window this one is the previous, fading from whole.
    let x = if cur > 0 {
        (w_f * (1.0 - free / cur_f)).max(0.0)
    } else {
        0.0
    };
    (w - into) + x.ceil() as u64
}

/// The local counters of one limit (a project's, or one token's), shared by the workers.
pub struct Limiter {
    /// The limit.
    pub cfg: RateLimitConfig,
    /// Its Redis key prefix when shared (`sy:l:{project}` or `sy:l:{project}:t:{digest}`).
    pub key: Vec<u8>,
    slots: Box<[Slot]>,
    /// The other gateways' counts as of the last batched sync (zero without one).
    remote: Slot,
    /// What the batched sync has added to Redis of this gateway's counts: the window it
    /// was for, and [requests, tokens]. Written by the sync thread only.
    pushed: Slot,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("cfg", &self.cfg).finish()
    }
}

impl Limiter {
    /// Counters for `workers` workers.
    pub fn new(cfg: RateLimitConfig, key: Vec<u8>, workers: usize) -> Limiter {
        Limiter {
            cfg,
            key,
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
            remote: Slot::default(),
            pushed: Slot::default(),
        }
    }

    /// The (current, previous) counts this gateway checks against: its own, all workers, plus
    /// the other gateways' as of the last batched sync.
    pub fn counts(&self, now: u64) -> (Counts, Counts) {
        let w = self.cfg.window_ms.max(1);
        let ws = window_start(now, w);
        let (mut cur, mut prev) = self.remote.read(ws, w);
        for s in self.slots.iter() {
            let (c, p) = s.read(ws, w);
            for i in 0..2 {
                cur[i] += c[i];
                prev[i] += p[i];
            }
        }
        (cur, prev)
    }

    /// This gateway's own (current, previous) counts, all workers.
    pub fn local_counts(&self, now: u64) -> (Counts, Counts) {
        let w = self.cfg.window_ms.max(1);
        let ws = window_start(now, w);
        let (mut cur, mut prev) = ([0u64; 2], [0u64; 2]);
        for s in self.slots.iter() {
            let (c, p) = s.read(ws, w);
            for i in 0..2 {
                cur[i] += c[i];
                prev[i] += p[i];
            }
        }
        (cur, prev)
    }

    /// Checks a request of `tokens` against this gateway's counts.
    pub fn check_local(&self, now: u64, tokens: u64) -> Result<(), Refusal> {
        let (cur, prev) = self.counts(now);
        check(&self.cfg, now, cur, prev, tokens)
    }

    /// Counts an admitted request on `worker`'s slot.
    pub fn add(&self, worker: usize, now: u64, tokens: u64) {
        let w = self.cfg.window_ms.max(1);
        self.slots[worker % self.slots.len()].add(window_start(now, w), w, [1, tokens]);
    }
}

/// Checks a request against every limiter that applies (none counted unless all admit) and
/// counts it on `worker`'s slots when admitted.
pub fn admit_local(
    limiters: &[Option<&Limiter>],
    worker: usize,
    now: u64,
    tokens: u64,
) -> Result<(), Refusal> {
    for (i, l) in limiters.iter().enumerate() {
        if let Some(l) = l {
            l.check_local(now, tokens)
                .map_err(|r| Refusal { which: i, ..r })?;
        }
    }
    for l in limiters.iter().flatten() {
        l.add(worker, now, tokens);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rpm: u64, tpm: u64) -> RateLimitConfig {
        RateLimitConfig {
            rpm,
            tpm,
            window_ms: 60_000,
        }
    }

    #[test]
    fn rpm_trips_and_slides() {
        let l = Limiter::new(cfg(3, 0), Vec::new(), 2);
        let t = 6_000_000; // a window start
        for k in 0..3 {
            assert_eq!(admit_local(&[Some(&l)], k % 2, t + k as u64, 1), Ok(()));
        }
        let r = admit_local(&[Some(&l)], 0, t + 10, 1).unwrap_err();
        assert_eq!(r.limit, "rpm");
        // The next window starts 59_990 ms later; then 3 fade until one fits: at 1/3 in.
        // Within a millisecond: the fade is computed in floating point.
        assert!((79_990..=79_991).contains(&r.retry_after_ms), "{r:?}");
        assert_eq!(r.retry_after_s(), 80);
        assert!(admit_local(&[Some(&l)], 1, t + 60_000 + 19_999, 1).is_err());
        assert_eq!(admit_local(&[Some(&l)], 1, t + 60_000 + 20_000, 1), Ok(()));
        // Two windows later nothing is left.
        assert_eq!(l.counts(t + 180_000), ([0, 0], [0, 0]));
    }

    #[test]
    fn tpm_counts_tokens_and_never_fits() {
        let l = Limiter::new(cfg(0, 1000), Vec::new(), 1);
        let t = 6_000_000;
        assert_eq!(admit_local(&[Some(&l)], 0, t, 600), Ok(()));
        let r = admit_local(&[Some(&l)], 0, t, 600).unwrap_err();
        assert_eq!((r.limit, r.never), ("tpm", false));
        assert_eq!(admit_local(&[Some(&l)], 0, t, 400), Ok(()));
        let r = admit_local(&[Some(&l)], 0, t, 5000).unwrap_err();
        assert!(r.never);
        assert_eq!(r.retry_after_ms, 60_000);
    }

    #[test]
    fn refused_by_one_counts_on_none() {
        let a = Limiter::new(cfg(10, 0), Vec::new(), 1);
        let b = Limiter::new(cfg(1, 0), Vec::new(), 1);
        let t = 6_000_000;
        assert_eq!(admit_local(&[Some(&a), Some(&b)], 0, t, 1), Ok(()));
        assert_eq!(
            admit_local(&[Some(&a), Some(&b)], 0, t, 1)
                .unwrap_err()
                .which,
            1
        );
        assert_eq!(a.counts(t).0, [1, 1]);
    }

    #[test]
    fn previous_window_weighs_by_overlap() {
        let c = cfg(10, 0);
        let t = 6_000_000;
        // Half-way into a window after a full one: 10 * 0.5 = 5 counted, 5 free.
        assert!(check(&c, t + 30_000, [4, 0], [10, 0], 0).is_ok());
        let r = check(&c, t + 30_000, [5, 0], [10, 0], 0).unwrap_err();
        // 5 + 10 * (1 - x) <= 9 -> x = 0.6: 6 s later.
        assert_eq!(r.retry_after_ms, 6_000);
    }
}
