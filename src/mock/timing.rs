//! The mock's realism, all opt-in (every spread and rate 0 by default, which keeps the mock
//! fully deterministic): time to first token and gaps between tokens drawn from log-normal
//! distributions of a given mean and spread, with an optional heavy tail (a draw multiplied by
//! `tail_factor` with probability `tail_rate`); reply lengths drawn around `reply_tokens`
//! (a request's own bound still caps them); a stall (one long pause mid-stream) injected at
//! `stall_rate`. Draws come from the per-request generator of [`super::Mock`], seeded, so a
//! seeded run is reproducible.

use crate::trace::xorshift;
use std::cell::Cell;
use std::time::Duration;

/// How draws are spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Standard deviation of the TTFT, ms.
    pub ttft_spread_ms: f64,
    /// Standard deviation of the gap between tokens, as a fraction of the mean gap.
    pub gap_spread: f64,
    /// Probability that a TTFT or gap draw lands in the tail.
    pub tail_rate: f64,
    /// What a tail draw is multiplied by.
    pub tail_factor: f64,
    /// Standard deviation of the reply length, tokens.
    pub reply_spread: f64,
    /// Probability that a stream stalls once, midway.
    pub stall_rate: f64,
    /// How long a stall lasts.
    pub stall: Duration,
}

impl Default for Spread {
    fn default() -> Self {
        Spread {
            ttft_spread_ms: 0.0,
            gap_spread: 0.0,
            tail_rate: 0.0,
            tail_factor: 10.0,
            reply_spread: 0.0,
            stall_rate: 0.0,
            stall: Duration::from_secs(5),
        }
    }
}

/// A uniform draw in `(0, 1]`.
pub fn uniform(rng: &Cell<u64>) -> f64 {
    ((xorshift(rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &Cell<u64>) -> f64 {
    let (u1, u2) = (uniform(rng), uniform(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw of this mean and standard deviation (positive, skewed right as service
/// times are); the mean itself when `sd` is 0.
pub fn lognormal(rng: &Cell<u64>, mean: f64, sd: f64) -> f64 {
    if mean <= 0.0 || sd <= 0.0 || !sd.is_finite() {
        return mean.max(0.0);
    }
    let sigma2 = (1.0 + (sd * sd) / (mean * mean)).ln();
    let mu = mean.ln() - sigma2 / 2.0;
    (mu + sigma2.sqrt() * normal(rng)).exp()
}

/// Per-stream timing draws.
#[derive(Debug)]
pub struct Timing {
    rng: Cell<u64>,
    ttft: Duration,
    gap: Duration,
    spread: Spread,
    /// The piece before which the stream stalls, if it does.
    pub stall_before: Option<u32>,
}

impl Timing {
    /// Timing for one stream of `pieces` content events.
    pub fn new(seed: u64, ttft: Duration, gap: Duration, spread: Spread, pieces: u32) -> Timing {
        let rng = Cell::new(seed | 1);
        let stall_before =
            (spread.stall_rate > 0.0 && pieces >= 2 && uniform(&rng) <= spread.stall_rate)
                .then_some(pieces / 2);
        Timing {
            rng,
            ttft,
            gap,
            spread,
            stall_before,
        }
    }

    fn tail(&self, v: f64) -> f64 {
        if self.spread.tail_rate > 0.0 && uniform(&self.rng) <= self.spread.tail_rate {
            v * self.spread.tail_factor
        } else {
            v
        }
    }

    /// The wait before the first piece.
    pub fn ttft(&self) -> Duration {
        let mean = self.ttft.as_secs_f64() * 1000.0;
        let ms = self.tail(lognormal(&self.rng, mean, self.spread.ttft_spread_ms));
        Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(self.ttft)
    }

    /// The wait before piece `i` (1-based after the first).
    pub fn gap(&self, i: u32) -> Duration {
        let mean = self.gap.as_secs_f64();
        let s = self.tail(lognormal(&self.rng, mean, mean * self.spread.gap_spread));
        let d = Duration::try_from_secs_f64(s).unwrap_or(self.gap);
        if self.stall_before == Some(i) {
            d + self.spread.stall
        } else {
            d
        }
    }

    /// Whether any draw varies (otherwise the plain fixed delays are used).
    pub fn varies(spread: &Spread) -> bool {
        spread.ttft_spread_ms > 0.0
            || spread.gap_spread > 0.0
            || spread.tail_rate > 0.0
            || spread.stall_rate > 0.0
    }
}

/// A reply length drawn around `mean` (at least 1).
pub fn reply_tokens(rng: &Cell<u64>, mean: u32, sd: f64) -> u32 {
    if sd <= 0.0 {
        return mean;
    }
    lognormal(rng, f64::from(mean.max(1)), sd)
        .round()
        .clamp(1.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_has_the_asked_mean_and_spread() {
        let rng = Cell::new(12345);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| lognormal(&rng, 50.0, 20.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!((mean - 50.0).abs() < 0.5, "mean {mean}");
        assert!((sd - 20.0).abs() < 0.8, "sd {sd}");
        assert!(xs.iter().all(|x| *x > 0.0));
        assert_eq!(lognormal(&rng, 50.0, 0.0), 50.0);
    }

    #[test]
    fn fixed_by_default_and_tails_and_stalls_when_asked() {
        let t = Timing::new(
            7,
            Duration::from_millis(40),
            Duration::from_millis(10),
            Spread::default(),
            20,
        );
        assert_eq!(t.ttft(), Duration::from_millis(40));
        assert_eq!(t.gap(5), Duration::from_millis(10));
        assert!(!Timing::varies(&Spread::default()));
        let spread = Spread {
            tail_rate: 1.0,
            tail_factor: 3.0,
            stall_rate: 1.0,
            stall: Duration::from_millis(500),
            ..Spread::default()
        };
        let t = Timing::new(
            7,
            Duration::from_millis(40),
            Duration::from_millis(10),
            spread,
            20,
        );
        assert_eq!(t.ttft(), Duration::from_millis(120));
        assert_eq!(t.stall_before, Some(10));
        assert_eq!(t.gap(10), Duration::from_millis(530));
        assert_eq!(t.gap(11), Duration::from_millis(30));
    }
}
