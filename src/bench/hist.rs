//! A log-bucket latency histogram in the manner of HdrHistogram: values (microseconds) below
//! `2^(SUB_BITS+1)` are counted exactly, larger ones in buckets `2^-SUB_BITS` of their
//! magnitude wide, so every quantile is within 0.4 % of the true value (at 100 ms: 0.4 ms,
//! and half that once the bucket midpoint is reported). Recording is an index computation and
//! an increment: no allocation per sample. Min, max and sum are kept exactly.

/// Sub-buckets per power of two, as a power of two: 256 per octave.
pub const SUB_BITS: u32 = 8;
/// Largest value recorded exactly; larger ones are clamped (2^40 µs is 12.7 days).
pub const MAX_VALUE: u64 = (1 << 40) - 1;
/// Buckets for values up to [`MAX_VALUE`].
const BUCKETS: usize = ((40 - SUB_BITS as usize) + 1) << SUB_BITS;

/// The bucket of `v`.
pub fn index_of(v: u64, sub_bits: u32) -> usize {
    let v = v.min(MAX_VALUE);
    let msb = 63 - (v | 1).leading_zeros();
    if msb <= sub_bits {
        return v as usize;
    }
    let shift = msb - sub_bits;
    (((shift + 1) << sub_bits) as u64 + ((v >> shift) - (1 << sub_bits))) as usize
}

/// The lowest value of bucket `i` and its width.
pub fn bucket_range(i: usize, sub_bits: u32) -> (u64, u64) {
    let i = i as u64;
    if i < 2 << sub_bits {
        return (i, 1);
    }
    let shift = (i >> sub_bits) - 1;
    let low = ((i & ((1 << sub_bits) - 1)) + (1 << sub_bits)) << shift;
    (low, 1 << shift)
}

/// One latency distribution, in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram (one allocation, ~70 KB, here and never again).
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, us: u64) {
        let v = us.min(MAX_VALUE);
        self.counts[index_of(v, SUB_BITS)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact mean, or 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The exact largest value, or 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The exact smallest value, or 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket holding the
    /// `ceil(q * count)`-th value, kept within the exact min and max. 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if q >= 1.0 {
            return self.max as f64;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(i, SUB_BITS);
                let mid = low as f64 + (width as f64 - 1.0) / 2.0;
                return mid.clamp(self.min as f64, self.max as f64);
            }
        }
        self.max as f64
    }

    /// Non-empty buckets as (lowest value, width, count), in order: for the report's charts.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let (low, w) = bucket_range(i, SUB_BITS);
                (low, w, c)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut prev_end = 0;
        for i in 0..BUCKETS {
            let (low, w) = bucket_range(i, SUB_BITS);
            assert_eq!(low, prev_end, "bucket {i}");
            assert_eq!(index_of(low, SUB_BITS), i);
            assert_eq!(index_of(low + w - 1, SUB_BITS), i);
            prev_end = low + w;
        }
        assert_eq!(prev_end, MAX_VALUE + 1);
    }

    #[test]
    fn quantiles_within_precision() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q);
            assert!((got - want).abs() / want < 0.004, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.min(), 1);
        assert!((h.mean() - 50_000.5).abs() < 1e-6);
        assert_eq!(h.quantile(1.0), 100_000.0);
    }

    #[test]
    fn exact_below_the_first_octave() {
        let mut h = Histogram::new();
        h.record(7);
        h.record(300);
        assert_eq!(h.quantile(0.5), 7.0);
        assert_eq!(h.quantile(1.0), 300.0);
        let mut g = Histogram::new();
        g.record(5);
        h.merge(&g);
        assert_eq!(h.count(), 3);
        assert_eq!(h.min(), 5);
    }
}
