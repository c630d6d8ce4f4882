//! What a run measured: latency histograms (time to first token, inter-token latency, end to
//! end), counters, errors by kind, and a per-second series for the report's charts. One
//! `Stats` per run, owned by the driver's thread; requests record into it between awaits.

use super::hist::{self, Histogram};
use std::time::Duration;

/// Why a request did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    /// The endpoint answered with a non-2xx status.
    Status(u16),
    /// The TCP (or TLS) connection could not be opened.
    Connect,
    /// The connection failed (reset, closed) before the response head.
    Socket,
    /// The request's deadline passed.
    Timeout,
    /// The response was not valid HTTP/1.1, or its stream was not valid SSE.
    Malformed,
    /// The stream ended before its end: the connection closed mid-body, or the body ended
    /// without the API's terminal event.
    Cut,
    /// The stream carried the API's error event.
    StreamError,
}

impl FailKind {
    /// Its name in the report (`status_429`, `socket`, ...).
    pub fn name(self) -> String {
        match self {
            FailKind::Status(s) => format!("status_{s}"),
            FailKind::Connect => "connect".into(),
            FailKind::Socket => "socket".into(),
            FailKind::Timeout => "timeout".into(),
            FailKind::Malformed => "malformed_stream".into(),
            FailKind::Cut => "cut_stream".into(),
            FailKind::StreamError => "stream_error_event".into(),
        }
    }
}

/// Sub-bucket bits of the per-second histograms: 4 per octave is plenty for a heat map.
pub const SERIES_SUB_BITS: u32 = 2;
/// Buckets of a per-second histogram.
pub const SERIES_BUCKETS: usize = (40 - SERIES_SUB_BITS as usize + 1) << SERIES_SUB_BITS;

/// One second of the run.
#[derive(Clone)]
pub struct Second {
    /// Requests that completed in this second.
    pub ok: u64,
    /// Requests that failed in this second.
    pub errors: u64,
    /// Output tokens of the requests completed in this second.
    pub output_tokens: u64,
    /// Coarse TTFT histogram (µs) of the requests completed in this second.
    pub ttft: Box<[u32; SERIES_BUCKETS]>,
}

impl Second {
    fn new() -> Second {
        Second {
            ok: 0,
            errors: 0,
            output_tokens: 0,
            ttft: Box::new([0; SERIES_BUCKETS]),
        }
    }
}

/// The measurements of one run (or one sweep step).
pub struct Stats {
    /// Time to first token (first content event; the response head for whole answers), µs.
    pub ttft: Histogram,
    /// Gaps between content events, µs.
    pub itl: Histogram,
    /// Intended send time to the last byte, µs.
    pub e2e: Histogram,
    /// How late the driver sent, after the intended time, µs (its own scheduling delay).
    pub send_lag: Histogram,
    /// Requests completed.
    pub ok: u64,
    /// Completed requests whose TTFT met the SLO.
    pub good: u64,
    /// Output tokens of completed requests.
    pub output_tokens: u64,
    /// Completed requests whose tokens came from the answer's usage (the rest were counted).
    pub usage_reported: u64,
    /// Failures by kind, in first-seen order.
    pub errors: Vec<(FailKind, u64)>,
    /// Connections opened.
    pub connects: u64,
    /// Per-second series, from the start of measurement.
    pub series: Vec<Second>,
    /// The SLO, µs.
    slo_ttft_us: Option<u64>,
}

/// One finished request, as the reader saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Done {
    /// µs from the intended send to the first token.
    pub ttft_us: u64,
    /// µs from the intended send to the last byte.
    pub e2e_us: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Whether they came from usage.
    pub from_usage: bool,
}

impl Stats {
    /// Empty stats; `slo_ttft_ms` decides goodput.
    pub fn new(slo_ttft_ms: Option<f64>) -> Stats {
        Stats {
            ttft: Histogram::new(),
            itl: Histogram::new(),
            e2e: Histogram::new(),
            send_lag: Histogram::new(),
            ok: 0,
            good: 0,
            output_tokens: 0,
            usage_reported: 0,
            errors: Vec::new(),
            connects: 0,
            series: Vec::new(),
            slo_ttft_us: slo_ttft_ms.map(|ms| (ms * 1000.0) as u64),
        }
    }

    fn second(&mut self, at: Duration) -> &mut Second {
        let i = at.as_secs() as usize;
        while self.series.len() <= i {
            self.series.push(Second::new());
        }
        &mut self.series[i]
    }

    /// Records a completed request; `at` is its end since the start of measurement.
    pub fn record_ok(&mut self, d: Done, at: Duration) {
        self.ok += 1;
        self.ttft.record(d.ttft_us);
        self.e2e.record(d.e2e_us);
        self.output_tokens += d.output_tokens;
        self.usage_reported += u64::from(d.from_usage);
        if self.slo_ttft_us.is_none_or(|slo| d.ttft_us <= slo) {
            self.good += 1;
        }
        let s = self.second(at);
        s.ok += 1;
        s.output_tokens += d.output_tokens;
        s.ttft[hist::index_of(d.ttft_us, SERIES_SUB_BITS).min(SERIES_BUCKETS - 1)] += 1;
    }

    /// Records a failed request.
    pub fn record_fail(&mut self, kind: FailKind, at: Duration) {
        match self.errors.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((kind, 1)),
        }
        self.second(at).errors += 1;
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    /// Failed over all measured requests, 0 when none.
    pub fn error_rate(&self) -> f64 {
        let all = self.ok + self.error_count();
        if all == 0 {
            0.0
        } else {
            self.error_count() as f64 / all as f64
        }
    }
}
