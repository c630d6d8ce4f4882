//! Latency histograms with fixed buckets, in the shape Prometheus renders: cumulative counts
//! per upper bound, a sum and a count.
//!
//! A [`Hist`] lives in one worker's shard and has one writer (that worker), so an observation
//! is two relaxed load/store pairs, never a read-modify-write on a shared line. A stream's
//! gaps are first counted on the stack ([`Gaps`]: the relay owns it, no atomics per read) and
//! folded into the worker's histogram once, when the request ends.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Bucket upper bounds in µs: 0.5 ms to 2 min, roughly ×2.5 apart, wide enough for a time
/// to first token and narrow enough at the bottom for the gateway's own overhead.
pub const BOUNDS_US: [u64; 17] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];
/// Buckets, the last one past every bound (`+Inf`).
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The bucket of `us`: the first whose bound is at least `us` (`le` semantics).
#[inline]
pub fn bucket(us: u64) -> usize {
    BOUNDS_US.partition_point(|&b| b < us)
}

#[inline]
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
}

/// One worker's histogram.
#[derive(Default)]
pub struct Hist {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Hist {
    /// Records one observation. Only the owning worker calls this.
    #[inline]
    pub fn observe(&self, us: u64) {
        bump(&self.counts[bucket(us)], 1);
        bump(&self.sum_us, us);
    }

    /// Folds a stream's gaps in. Only the owning worker calls this.
    pub fn add(&self, g: &Gaps) {
        if g.n == 0 {
            return;
        }
        for (c, &n) in self.counts.iter().zip(g.counts.iter()) {
            if n > 0 {
                bump(c, n as u64);
            }
        }
        bump(&self.sum_us, g.sum_us);
    }

    /// Adds this shard's counts to `into` (the scrape's sum over workers).
    pub fn sum_into(&self, into: &mut Summed) {
        for (o, c) in into.counts.iter_mut().zip(self.counts.iter()) {
            *o += c.load(Relaxed);
        }
        into.sum_us += self.sum_us.load(Relaxed);
    }
}

/// A histogram summed over workers, as the scrape renders it.
#[derive(Clone, Copy, Default, Debug)]
pub struct Summed {
    /// Per bucket (not cumulative).
    pub counts: [u64; BUCKETS],
    /// Sum of observations, µs.
    pub sum_us: u64,
}

impl Summed {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The gaps between the reads of one stream, counted by the relay on its own stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gaps {
    last: Option<Instant>,
    counts: [u32; BUCKETS],
    sum_us: u64,
    n: u32,
}

impl Gaps {
    /// Marks one upstream read relayed now; from the second on, the time since the previous
    /// one is a gap.
    #[inline]
    pub fn tick(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last {
            let us = now.saturating_duration_since(last).as_micros() as u64;
            self.counts[bucket(us)] = self.counts[bucket(us)].saturating_add(1);
            self.sum_us += us;
            self.n += 1;
        }
        self.last = Some(now);
    }

    /// Gaps counted.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether no gap was counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_le_bounds() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(500), 0);
        assert_eq!(bucket(501), 1);
        assert_eq!(bucket(120_000_000), BOUNDS_US.len() - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn observations_and_gaps_sum() {
        let h = Hist::default();
        h.observe(700);
        h.observe(3_000_000);
        let mut g = Gaps::default();
        g.tick();
        g.tick();
        g.tick();
        assert_eq!(g.len(), 2);
        h.add(&g);
        let mut s = Summed::default();
        h.sum_into(&mut s);
        assert_eq!(s.count(), 4);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[bucket(3_000_000)], 1);
        assert!(s.sum_us >= 3_000_700);
    }
}
