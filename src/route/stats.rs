//! Per-model and per-project runtime state behind the policies: outcome windows and the
//! circuit breaker (`health`), time to first byte (`fastest`), calls and spend (`budget`).
//!
//! Shared across workers without locks: every counter lives in a per-worker, cache-line-padded
//! [`Shard`] that only its worker writes (relaxed load + store, no read-modify-write); readers
//! sum the shards. The breaker's state is three atomics written only on transitions (open,
//! probe, close), which are rare. The state outlives route snapshots: a reload hands a model's
//! `Arc<ModelStats>` to the new table when the model id still exists.
//!
//! Windows are two buckets of half the window each; the older bucket is weighed by how much of
//! it still lies inside the window (a sliding-window estimate, as rate limiters use).

use crate::config::{BudgetConfig, RoutingConfig};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Weight of the newest sample in the time-to-first-byte moving average (1/8).
pub const TTFB_EWMA_SHIFT: u32 = 3;

/// A two-bucket sliding window of a few counters, written by one worker.
struct Window<const N: usize> {
    start_ms: AtomicU64,
    cur: [AtomicU64; N],
    prev: [AtomicU64; N],
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Window {
            start_ms: AtomicU64::new(0),
            cur: std::array::from_fn(|_| AtomicU64::new(0)),
            prev: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const N: usize> Window<N> {
    /// Adds `v` to the counters (owner only), rotating buckets first.
    fn add(&self, now: u64, bucket: u64, v: [u64; N]) {
        let start = self.start_ms.load(Relaxed);
        if now >= start + 2 * bucket {
            for i in 0..N {
                self.prev[i].store(0, Relaxed);
                self.cur[i].store(0, Relaxed);
            }
            self.start_ms.store(now - now % bucket.max(1), Relaxed);
        } else if now >= start + bucket {
            for i in 0..N {
                self.prev[i].store(self.cur[i].load(Relaxed), Relaxed);
                self.cur[i].store(0, Relaxed);
            }
            self.start_ms.store(start + bucket, Relaxed);
        }
        for (i, x) in v.iter().enumerate() {
            let c = &self.cur[i];
            c.store(c.load(Relaxed).wrapping_add(*x), Relaxed);
        }
    }

    /// Takes `v` from counter `i` of the current bucket (owner only), never below zero: a
    /// correction of something added earlier, maybe into a bucket that has since rotated.
    fn sub(&self, now: u64, bucket: u64, i: usize, v: u64) {
        self.add(now, bucket, [0; N]);
        let c = &self.cur[i];
        c.store(c.load(Relaxed).saturating_sub(v), Relaxed);
    }

    /// The sliding-window estimate of each counter at `now` (any thread).
    fn read(&self, now: u64, bucket: u64) -> [f64; N] {
        let start = self.start_ms.load(Relaxed);
        let mut out = [0.0; N];
        if bucket == 0 || now >= start + 2 * bucket {
            return out;
        }
        let (cur_w, prev_w, cur_idx_is_prev) = if now >= start + bucket {
            // The current bucket is already the previous one; nothing newer yet.
            (
                0.0,
                1.0 - (now - start - bucket) as f64 / bucket as f64,
                true,
            )
        } else {
            (1.0, 1.0 - (now - start) as f64 / bucket as f64, false)
        };
        for (i, o) in out.iter_mut().enumerate() {
            let cur = self.cur[i].load(Relaxed) as f64;
            let prev = self.prev[i].load(Relaxed) as f64;
            *o = if cur_idx_is_prev {
                cur * prev_w.max(0.0)
            } else {
                cur * cur_w + prev * prev_w.max(0.0)
            };
        }
        out
    }
}

/// One worker's counters for one model, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub struct Shard {
    epoch: AtomicU32,
    /// [ok, errors]
    outcomes: Window<2>,
    /// Time to first byte, µs, moving average; 0 = no sample yet.
    ttfb_us: AtomicU64,
    /// [calls, spend in micro-USD]
    usage: Window<2>,
}

/// The circuit breaker's view of a model at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Health {
    /// Serving; the error rate over the window.
    Closed(f64),
    /// Excluded until the cool-down ends.
    Open,
    /// Cool-down over: one probe may go.
    HalfOpen,
}

/// Runtime state of one model, shared by all workers.
pub struct ModelStats {
    shards: Box<[Shard]>,
    /// 0 = closed; otherwise the open circuit's end (ms since the Unix epoch).
    open_until_ms: AtomicU64,
    /// When the current half-open probe started (0 = none in flight).
    probe_since_ms: AtomicU64,
    /// Bumped when the circuit closes, so outcomes from before are forgotten.
    epoch: AtomicU32,
    /// The breaker was tripped at least once (for tests and metrics).
    pub tripped: AtomicBool,
}

impl std::fmt::Debug for ModelStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStats")
            .field("open_until_ms", &self.open_until_ms.load(Relaxed))
            .field("ttfb_us", &self.ttfb_us())
            .finish()
    }
}

impl ModelStats {
    /// State for `workers` workers.
    pub fn new(workers: usize) -> ModelStats {
        ModelStats {
            shards: (0..workers.max(1)).map(|_| Shard::default()).collect(),
            open_until_ms: AtomicU64::new(0),
            probe_since_ms: AtomicU64::new(0),
            epoch: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    fn shard(&self, worker: usize) -> &Shard {
        &self.shards[worker % self.shards.len()]
    }

    /// Outcome counts [ok, errors] over the window, all workers, current epoch only.
    fn outcomes(&self, now: u64, cfg: &RoutingConfig) -> (f64, f64) {
        let epoch = self.epoch.load(Relaxed);
        let bucket = cfg.health_window_ms / 2;
        let mut ok = 0.0;
        let mut err = 0.0;
        for s in self.shards.iter() {
            if s.epoch.load(Relaxed) != epoch {
                continue;
            }
            let [o, e] = s.outcomes.read(now, bucket);
            ok += o;
            err += e;
        }
        (ok, err)
    }

    /// The breaker's state at `now`.
    pub fn health(&self, now: u64, cfg: &RoutingConfig) -> Health {
        let until = self.open_until_ms.load(Relaxed);
        if until == 0 {
            let (ok, err) = self.outcomes(now, cfg);
            let total = ok + err;
            return Health::Closed(if total > 0.0 { err / total } else { 0.0 });
        }
        if now < until {
            Health::Open
        } else {
            Health::HalfOpen
        }
    }

    /// Takes the half-open probe slot; false if another probe is in flight (and not stale:
    /// a probe that never reported within a cool-down is presumed lost).
    pub fn try_probe(&self, now: u64, cfg: &RoutingConfig) -> bool {
        let since = self.probe_since_ms.load(Relaxed);
        if since != 0 && now < since + cfg.health_cooldown_ms {
            return false;
        }
        self.probe_since_ms
            .compare_exchange(since, now.max(1), Relaxed, Relaxed)
            .is_ok()
    }

    /// Gives back a probe slot that was taken but not used.
    pub fn release_probe(&self) {
        self.probe_since_ms.store(0, Relaxed);
    }

    /// Records a success, with the upstream's time to first byte. Closes a half-open circuit.
    pub fn record_ok(&self, worker: usize, now: u64, ttfb_us: u64, cfg: &RoutingConfig) {
        if self.open_until_ms.load(Relaxed) != 0 {
            if now < self.open_until_ms.load(Relaxed) {
                // A request started before the circuit opened; it says nothing new.
            } else {
                // The probe succeeded: close, and forget the failures that opened it.
                self.epoch.fetch_add(1, Relaxed);
                self.open_until_ms.store(0, Relaxed);
                self.probe_since_ms.store(0, Relaxed);
            }
        }
        let s = self.sync_epoch(worker);
        s.outcomes.add(now, cfg.health_window_ms / 2, [1, 0]);
        let old = s.ttfb_us.load(Relaxed);
        let new = if old == 0 {
            ttfb_us.max(1)
        } else {
            (old - (old >> TTFB_EWMA_SHIFT) + (ttfb_us >> TTFB_EWMA_SHIFT)).max(1)
        };
        s.ttfb_us.store(new, Relaxed);
    }

    /// Records a failure (connect error, timeout, 429, 5xx, a cut stream). Opens the circuit
    /// when the window's error rate reaches the threshold, or re-opens it after a failed probe.
    pub fn record_err(&self, worker: usize, now: u64, cfg: &RoutingConfig) {
        let until = self.open_until_ms.load(Relaxed);
        if until != 0 {
            if now >= until {
                // The probe failed: another cool-down.
                self.open_until_ms
                    .store(now + cfg.health_cooldown_ms, Relaxed);
                self.probe_since_ms.store(0, Relaxed);
            }
            return;
        }
        let s = self.sync_epoch(worker);
        s.outcomes.add(now, cfg.health_window_ms / 2, [0, 1]);
        let (ok, err) = self.outcomes(now, cfg);
        let total = ok + err;
        if total >= f64::from(cfg.health_min_requests) && err / total >= cfg.health_error_rate {
            self.open_until_ms
                .store(now + cfg.health_cooldown_ms, Relaxed);
            self.probe_since_ms.store(0, Relaxed);
            self.tripped.store(true, Relaxed);
        }
    }

    fn sync_epoch(&self, worker: usize) -> &Shard {
        let s = self.shard(worker);
        let epoch = self.epoch.load(Relaxed);
        if s.epoch.load(Relaxed) != epoch {
            s.outcomes.start_ms.store(0, Relaxed);
            for i in 0..2 {
                s.outcomes.cur[i].store(0, Relaxed);
                s.outcomes.prev[i].store(0, Relaxed);
            }
            s.epoch.store(epoch, Relaxed);
        }
        s
    }

    /// Mean time to first byte over the workers that have a sample, µs; `None` without data.
    pub fn ttfb_us(&self) -> Option<u64> {
        let (sum, n) = self.shards.iter().fold((0u64, 0u64), |(s, n), sh| {
            let v = sh.ttfb_us.load(Relaxed);
            if v == 0 {
                (s, n)
            } else {
                (s + v, n + 1)
            }
        });
        (n > 0).then(|| sum / n)
    }

    /// Counts one call and its estimated spend against this model's budget window.
    pub fn record_usage(&self, worker: usize, now: u64, window_ms: u64, spend_usd: f64) {
        self.shard(worker)
            .usage
            .add(now, window_ms / 2, [1, (spend_usd * 1e6).round() as u64]);
    }

    /// Corrects the spend counted at send time by `delta_usd` (real cost minus the
    /// estimate charged; negative when the estimate was high), without counting a call.
    pub fn adjust_spend(&self, worker: usize, now: u64, window_ms: u64, delta_usd: f64) {
        let micro = (delta_usd.abs() * 1e6).round() as u64;
        let w = &self.shard(worker).usage;
        if delta_usd >= 0.0 {
            w.add(now, window_ms / 2, [0, micro]);
        } else {
            w.sub(now, window_ms / 2, 1, micro);
        }
    }

    /// Calls and spend (USD) over the window, all workers.
    pub fn usage(&self, now: u64, window_ms: u64) -> (f64, f64) {
        let (mut calls, mut micro) = (0.0, 0.0);
        for s in self.shards.iter() {
            let [c, m] = s.usage.read(now, window_ms / 2);
            calls += c;
            micro += m;
        }
        (calls, micro / 1e6)
    }
}

/// The fraction of a budget still available, in [0,1]; 0 means exhausted.
pub fn headroom(b: &BudgetConfig, calls: f64, spend: f64) -> f64 {
    let mut h: f64 = 1.0;
    if b.max_calls > 0 {
        h = h.min(1.0 - calls / b.max_calls as f64);
    }
    if b.max_spend_usd > 0.0 {
        h = h.min(1.0 - spend / b.max_spend_usd);
    }
    h.clamp(0.0, 1.0)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_is_settled_up_and_down_never_below_zero() {
        let m = ModelStats::new(1);
        let (now, win) = (1_000_000, 60_000);
        m.record_usage(0, now, win, 0.5);
        m.adjust_spend(0, now, win, 0.25);
        assert_eq!(m.usage(now, win), (1.0, 0.75));
        m.adjust_spend(0, now, win, -0.5);
        assert_eq!(m.usage(now, win), (1.0, 0.25));
        // A correction larger than what the bucket holds (it rotated since) stops at zero.
        m.adjust_spend(0, now + win / 2, win, -1.0);
        let (_, spend) = m.usage(now + win / 2, win);
        assert!((0.0..=0.25).contains(&spend), "{spend}");
    }

    fn cfg() -> RoutingConfig {
        RoutingConfig {
            health_window_ms: 10_000,
            health_min_requests: 4,
            health_error_rate: 0.5,
            health_cooldown_ms: 1_000,
        }
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let c = cfg();
        let m = ModelStats::new(2);
        let t = 1_000_000;
        m.record_ok(0, t, 100, &c);
        m.record_err(1, t, &c);
        m.record_err(0, t, &c);
        // 2 errors of 3: below min_requests, still closed.
        assert!(matches!(m.health(t, &c), Health::Closed(r) if (r - 2.0 / 3.0).abs() < 1e-9));
        m.record_err(1, t + 1, &c);
        // 3 of 4 >= 0.5: open.
        assert_eq!(m.health(t + 2, &c), Health::Open);
        assert_eq!(m.health(t + 1 + 999, &c), Health::Open);
        assert_eq!(m.health(t + 1 + 1000, &c), Health::HalfOpen);
        assert!(m.try_probe(t + 1001, &c));
        assert!(!m.try_probe(t + 1002, &c), "one probe at a time");
        m.record_err(0, t + 1003, &c);
        assert_eq!(
            m.health(t + 1004, &c),
            Health::Open,
            "failed probe re-opens"
        );
        assert_eq!(m.health(t + 2003, &c), Health::HalfOpen);
        assert!(m.try_probe(t + 2003, &c));
        m.record_ok(1, t + 2004, 50, &c);
        assert_eq!(
            m.health(t + 2005, &c),
            Health::Closed(0.0),
            "a good probe closes and forgets"
        );
    }

    #[test]
    fn windows_slide() {
        let w: Window<1> = Window::default();
        let b = 1000;
        w.add(10_000, b, [10]);
        assert_eq!(w.read(10_000, b), [10.0]);
        // Half a bucket later the current bucket still counts whole.
        assert_eq!(w.read(10_500, b), [10.0]);
        // One and a half buckets later it is the previous bucket, weighed by half.
        assert_eq!(w.read(11_500, b), [5.0]);
        w.add(11_500, b, [4]);
        assert_eq!(w.read(11_500, b), [4.0 + 5.0]);
        // Two buckets after the last write, all gone.
        assert_eq!(w.read(13_000, b), [0.0]);
    }

    #[test]
    fn ttfb_average_and_usage() {
        let c = cfg();
        let m = ModelStats::new(2);
        assert_eq!(m.ttfb_us(), None);
        m.record_ok(0, 1, 800, &c);
        m.record_ok(1, 1, 400, &c);
        assert_eq!(m.ttfb_us(), Some(600));
        m.record_usage(0, 5_000, 60_000, 0.25);
        m.record_usage(1, 5_000, 60_000, 0.5);
        let (calls, spend) = m.usage(5_000, 60_000);
        assert_eq!(calls, 2.0);
        assert!((spend - 0.75).abs() < 1e-9);
        let b = BudgetConfig {
            window_ms: 60_000,
            max_calls: 4,
            max_spend_usd: 1.0,
        };
        assert!((headroom(&b, calls, spend) - 0.25).abs() < 1e-9);
    }
}
