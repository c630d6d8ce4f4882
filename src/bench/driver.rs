//! The load loops, on one monoio runtime on the calling thread (the gateway's runtime and
//! client code, so the driver is as fast as what it measures).
//!
//! - Closed loop: `concurrency` tasks, each with its own connection, each sending its next
//!   request when its last one ended. The send time is the intended time.
//! - Open loop: a dispatcher computes each request's intended send time (Poisson or constant
//!   gaps from the start, never from when the last one went out) and queues it; idle senders
//!   take them, and a new sender (with its own connection) is started while none is idle, up
//!   to `connections`. Latency counts from the intended time, so a server that falls behind
//!   shows its queueing in the numbers instead of slowing the driver down (no coordinated
//!   omission). How late the driver itself sent is measured too (`send_lag`).
//!
//! Requests intended during the warm-up run but are not measured. The run ends at the
//! duration (nothing new is sent; requests in flight finish) or once the asked number of
//! measured requests went out.

use super::args::{Arrival, BenchOptions, Load, Stop};
use super::conn::{exchange, Conn, Target};
use super::stats::{FailKind, Stats};
use crate::trace::xorshift;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often the progress line is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What one run measured.
pub struct RunResult {
    /// The measurements.
    pub stats: Stats,
    /// From the end of the warm-up to the last measured request's end.
    pub elapsed: Duration,
    /// The offered rate of an open loop.
    pub rate: Option<f64>,
}

/// State shared by a run's tasks (one thread; cells, no locks).
struct Run {
    stats: RefCell<Stats>,
    measure_start: Instant,
    measure_end: Option<Instant>,
    limit: Option<u64>,
    admitted: Cell<u64>,
    stopping: Cell<bool>,
    last_end: Cell<Instant>,
    timeout: Duration,
    target: Target,
    request: Vec<u8>,
    api: super::args::Api,
    /// Open loop: intended send times not yet taken.
    queue: RefCell<VecDeque<Instant>>,
    /// Open loop: senders waiting for the queue.
    idle: RefCell<Vec<Waker>>,
    senders: Cell<usize>,
    max_senders: usize,
    tasks: RefCell<Vec<monoio::task::JoinHandle<()>>>,
}

fn to_monoio(at: Instant) -> monoio::time::Instant {
    monoio::time::Instant::now() + at.saturating_duration_since(Instant::now())
}

impl Run {
    /// Whether a request intended at `at` may go, and whether it is measured.
    fn admit(&self, at: Instant) -> Option<bool> {
        if self.stopping.get() {
            return None;
        }
        if self.measure_end.is_some_and(|end| at >= end) {
            self.stop();
            return None;
        }
        let measured = at >= self.measure_start;
        if measured {
            if let Some(limit) = self.limit {
                if self.admitted.get() >= limit {
                    self.stop();
                    return None;
                }
            }
            self.admitted.set(self.admitted.get() + 1);
        }
        Some(measured)
    }

    fn stop(&self) {
        self.stopping.set(true);
        for w in self.idle.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Sends one request intended at `intended` and records it.
    async fn one(
        &self,
        conn: &mut Option<Conn>,
        req: &mut Vec<u8>,
        intended: Instant,
        measured: bool,
    ) {
        let sent = Instant::now();
        let deadline = sent + self.timeout;
        if measured {
            let lag = sent.saturating_duration_since(intended);
            self.stats
                .borrow_mut()
                .send_lag
                .record(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
        }
        let c = match conn.take() {
            Some(c) => c,
            None => {
                self.stats.borrow_mut().connects += 1;
                match Conn::open(&self.target, deadline).await {
                    Ok(c) => c,
                    Err(kind) => {
                        self.finish(Err(kind), measured);
                        return;
                    }
                }
            }
        };
        let ex = exchange(c, req, self.api, intended, deadline, &self.stats, measured).await;
        *conn = ex.conn;
        self.finish(ex.result, measured);
    }

    fn finish(&self, r: Result<super::stats::Done, FailKind>, measured: bool) {
        if !measured {
            return;
        }
        let end = Instant::now();
        self.last_end.set(self.last_end.get().max(end));
        let at = end.saturating_duration_since(self.measure_start);
        let mut s = self.stats.borrow_mut();
        match r {
            Ok(d) => s.record_ok(d, at),
            Err(k) => s.record_fail(k, at),
        }
    }
}

/// Waits until the open loop's queue has work or the run stops.
struct WaitWork<'a>(&'a Run);

impl Future for WaitWork<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.stopping.get() || !self.0.queue.borrow().is_empty() {
            Poll::Ready(())
        } else {
            self.0.idle.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    }
}

async fn closed_sender(run: Rc<Run>) {
    let mut req = run.request.clone();
    let mut conn = None;
    loop {
        let now = Instant::now();
        let Some(measured) = run.admit(now) else {
            break;
        };
        run.one(&mut conn, &mut req, now, measured).await;
    }
}

async fn open_sender(run: Rc<Run>) {
    let mut req = run.request.clone();
    let mut conn = None;
    loop {
        let next = run.queue.borrow_mut().pop_front();
        match next {
            Some(intended) => {
                let measured = intended >= run.measure_start;
                run.one(&mut conn, &mut req, intended, measured).await;
            }
            None if run.stopping.get() => break,
            None => WaitWork(&run).await,
        }
    }
}

/// Queues arrivals at their intended times until the run stops.
async fn dispatch(run: Rc<Run>, rate: f64, arrival: Arrival, seed: u64, start: Instant) {
    // Any non-zero state works for xorshift; spread small seeds over the bits.
    let rng = Cell::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut t = start;
    loop {
        let gap = match arrival {
            Arrival::Constant => 1.0 / rate,
            Arrival::Poisson => {
                // U in (0, 1]: -ln(U) / rate is an exponential gap of mean 1 / rate.
                let u = ((xorshift(&rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                -u.ln() / rate
            }
        };
        t += Duration::from_secs_f64(gap);
        if t > Instant::now() {
            crate::netio::sleep_until_precise(to_monoio(t)).await;
        }
        if run.admit(t).is_none() {
            break;
        }
        run.queue.borrow_mut().push_back(t);
        let waiter = run.idle.borrow_mut().pop();
        match waiter {
            Some(w) => w.wake(),
            None if run.senders.get() < run.max_senders => {
                run.senders.set(run.senders.get() + 1);
                let h = monoio::spawn(open_sender(run.clone()));
                run.tasks.borrow_mut().push(h);
            }
            None => {}
        }
    }
}

async fn progress(run: std::rc::Weak<Run>, label: String) {
    let tty = std::io::stderr().is_terminal();
    loop {
        monoio::time::sleep(PROGRESS_EVERY).await;
        // The run is over once its last strong reference went.
        let Some(run) = run.upgrade() else { return };
        let now = Instant::now();
        let line = {
            let s = run.stats.borrow();
            let done = s.ok + s.error_count();
            let secs = now
                .saturating_duration_since(run.measure_start)
                .as_secs_f64();
            if secs <= 0.0 {
                format!("{label}warming up")
            } else {
                format!(
                    "{label}done {done}  rate {:.1}/s  errors {}  ttft p50 {:.1} ms",
                    done as f64 / secs,
                    s.error_count(),
                    s.ttft.quantile(0.5) / 1000.0
                )
            }
        };
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
    }
}

/// Runs `load` (closed or open) once and returns what it measured.
pub fn run(
    o: &BenchOptions,
    target: &Target,
    request: &[u8],
    load: Load,
    label: &str,
) -> Result<RunResult, String> {
    let start = Instant::now();
    let measure_start = start + o.warmup;
    let (measure_end, limit) = match o.stop {
        Stop::Duration(d) => (Some(measure_start + d), None),
        Stop::Requests(n) => (None, Some(n)),
    };
    let (senders, rate) = match load {
        Load::Closed { concurrency } => (concurrency, None),
        Load::Open { rate } => (o.connections, Some(rate)),
        Load::Sweep => return Err("a sweep is run step by step".into()),
    };
    let run = Rc::new(Run {
        stats: RefCell::new(Stats::new(o.slo_ttft_ms)),
        measure_start,
        measure_end,
        limit,
        admitted: Cell::new(0),
        stopping: Cell::new(false),
        last_end: Cell::new(measure_start),
        timeout: o.timeout,
        target: target.clone(),
        request: request.to_vec(),
        api: o.api,
        queue: RefCell::new(VecDeque::new()),
        idle: RefCell::new(Vec::new()),
        senders: Cell::new(0),
        max_senders: senders,
        tasks: RefCell::new(Vec::new()),
    });
    let quiet = o.quiet;
    let (arrival, seed) = (o.arrival, o.seed);
    let label = label.to_string();
    let main = {
        let run = run.clone();
        async move {
            let p = (!quiet).then(|| monoio::spawn(progress(Rc::downgrade(&run), label)));
            match rate {
                None => {
                    for _ in 0..senders {
                        let h = monoio::spawn(closed_sender(run.clone()));
                        run.tasks.borrow_mut().push(h);
                    }
                }
                Some(r) => dispatch(run.clone(), r, arrival, seed, start).await,
            }
            loop {
                let next = run.tasks.borrow_mut().pop();
                match next {
                    Some(h) => h.await,
                    None => break,
                }
            }
            if p.is_some() && std::io::stderr().is_terminal() {
                eprintln!();
            }
        }
    };
    block_on(main)?;
    let run = Rc::try_unwrap(run).map_err(|_| "a bench task outlived its run".to_string())?;
    let elapsed = run.last_end.get().saturating_duration_since(measure_start);
    Ok(RunResult {
        stats: run.stats.into_inner(),
        elapsed,
        rate,
    })
}

/// Runs `fut` on a fresh monoio runtime on this thread: io_uring, or epoll where io_uring is
/// unavailable (or `MONOIO_FORCE_LEGACY_DRIVER=1`).
pub fn block_on<F: Future>(fut: F) -> Result<F::Output, String> {
    match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => Ok(rt.block_on(fut)),
        Err(e) => Err(format!("cannot start a runtime: {e}")),
    }
}
