//! Workers: one monoio runtime per core, each pinned to its core with its own `SO_REUSEPORT`
//! listener, io_uring where the kernel allows it and the legacy (epoll) driver where it does
//! not.
//!
//! Workers share only [`Shared`]: the published route snapshot (read through a generation
//! counter, see `route`), per-core counter slots, and the shutdown flag. Everything a request
//! touches mutably (buffer pools, the cached snapshot, and whatever the worker's own
//! [`Service`] instance keeps, such as the gateway's upstream pool) is the worker's own.
//!
//! A panic while serving one connection ends that connection only: each connection task runs
//! inside [`CatchUnwind`], because monoio does not catch task panics and a panicking task would
//! otherwise unwind through the runtime and take every connection of the worker with it.

use super::conn::{self, Bufs};
use super::Service;
use crate::metrics::{CoreStats, Counter};
use crate::route::{RouteTable, Routes};
use std::cell::RefCell;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// A worker's handle on the published snapshot. The `Rc` around the `Arc` is deliberate (so
/// clippy's `redundant_allocation` is allowed): cloning it per request is a plain increment,
/// where cloning the `Arc` would be an atomic one on a cache line every core shares.
#[allow(clippy::redundant_allocation)]
pub type Snapshot = Rc<Arc<RouteTable>>;

/// State all workers share.
pub struct Shared {
    /// The published route snapshot.
    pub routes: Routes,
    /// One counter slot per worker.
    pub stats: Vec<CoreStats>,
    /// Set on SIGTERM/SIGINT: finish in-flight requests, accept nothing new.
    pub shutdown: AtomicBool,
    /// Listener fds, so the signal thread can stop accepting.
    pub listener_fds: Vec<RawFd>,
    /// The configured listen address (a reload cannot change it).
    pub listen: String,
    /// The Responses conversation store (the gateway's; `None` for the mock upstream). Opened
    /// once at start: a reload does not move it.
    pub state: Option<crate::state::State>,
    /// The config file a reload reads (`None`: the embedded config, nothing to reload).
    pub config_path: Option<String>,
    /// Reload outcomes, for `/metrics`, `/ready` and `POST /admin/reload`.
    pub reloads: Reloads,
    /// Workers whose ring is up and accepting (for `/ready`).
    pub running: AtomicUsize,
    /// `[state] limits_sync = "batched"` on Redis: the workers check and count rate limits
    /// locally and the sync thread trades the counts with Redis (fixed at start).
    pub limits_batched: bool,
}

/// What config reloads did. Touched only by reloads and the admin thread, never by a request.
#[derive(Default)]
pub struct Reloads {
    /// Reloads that published a new snapshot.
    pub ok: AtomicU64,
    /// Reloads refused (the running snapshot kept).
    pub failed: AtomicU64,
    /// Why the last reload was refused ("" once one succeeds).
    pub last_error: std::sync::Mutex<String>,
    /// Serializes reloads: `SIGHUP` and `POST /admin/reload` may race.
    pub lock: std::sync::Mutex<()>,
}

/// One worker's own state.
pub struct Worker {
    /// Its index, also its counter slot.
    pub index: usize,
    /// What all workers share.
    pub shared: Arc<Shared>,
    /// The snapshot this worker uses, behind an `Rc` so handing it to a request is a
    /// non-atomic increment: cloning the shared `Arc` per request would bounce its reference
    /// count's cache line between cores.
    cached: RefCell<(u64, Snapshot)>,
    /// Request buffers lent to requests being served (see `conn`).
    bufs: RefCell<Vec<Bufs>>,
    /// Large read buffers lent to connections whose request outgrew their own.
    rbufs: RefCell<Vec<Vec<u8>>>,
    /// Blocks the connections' request futures run in (see `slot`).
    pub slots: super::slot::Slots,
}

/// Buffer sets kept per worker; past this, returned ones are freed (a burst of concurrency
/// does not pin its peak memory forever).
pub const MAX_POOLED_BUFS: usize = 256;

impl Worker {
    /// The route snapshot, refreshed when a reload published a new one. Callers hold the
    /// returned `Arc` for one request and never keep a borrow across an await.
    pub fn routes(&self) -> Snapshot {
        let gen = self.shared.routes.generation();
        let mut c = self.cached.borrow_mut();
        if c.0 != gen {
            *c = (gen, Rc::new(self.shared.routes.load()));
        }
        c.1.clone()
    }

    /// Buffers for one request: pooled, or fresh at working size.
    pub fn take_bufs(&self) -> Bufs {
        self.bufs.borrow_mut().pop().unwrap_or_else(|| Bufs {
            wbuf: Vec::with_capacity(conn::SMALL_BUF),
            ubuf: Vec::with_capacity(conn::READ_BUF),
            scratch: Vec::with_capacity(conn::SMALL_BUF),
            xlate: Vec::new(),
            json: Vec::new(),
            sse: Default::default(),
            iov: Default::default(),
            auth: None,
        })
    }

    /// Gives a request's buffers back; oversized ones (a huge body) are freed instead.
    pub fn put_bufs(&self, mut b: Bufs) {
        let sane = |v: &Vec<u8>| v.capacity() <= conn::SHRINK_ABOVE;
        if !(sane(&b.wbuf) && sane(&b.ubuf) && sane(&b.scratch)) {
            return;
        }
        for v in [&mut b.xlate, &mut b.json] {
            if !sane(v) {
                *v = Vec::new();
            }
        }
        let mut pool = self.bufs.borrow_mut();
        if pool.len() < MAX_POOLED_BUFS {
            b.wbuf.clear();
            b.ubuf.clear();
            b.scratch.clear();
            pool.push(b);
        }
    }

    /// A large read buffer.
    pub fn take_rbuf(&self) -> Vec<u8> {
        self.rbufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(conn::READ_BUF))
    }

    /// Gives a large read buffer back.
    pub fn put_rbuf(&self, mut b: Vec<u8>) {
        let mut pool = self.rbufs.borrow_mut();
        if b.capacity() <= conn::SHRINK_ABOVE && pool.len() < MAX_POOLED_BUFS {
            b.clear();
            pool.push(b);
        }
    }

    /// This worker's counters.
    pub fn stats(&self) -> &CoreStats {
        &self.shared.stats[self.index]
    }

    /// Whether the process is draining.
    pub fn shutting_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::Relaxed)
    }
}

/// Which driver a worker runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring.
    IoUring,
    /// epoll (legacy), when io_uring is unavailable or `MONOIO_FORCE_LEGACY_DRIVER=1`.
    Legacy,
}

/// The driver workers will get on this machine.
pub fn driver() -> Driver {
    if monoio::utils::detect_uring() {
        Driver::IoUring
    } else {
        Driver::Legacy
    }
}

/// Starts one thread per listener; each pins itself to a core, makes its own service with
/// `make` and runs its accept loop until shutdown.
pub fn start<S, F>(
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    make: F,
) -> Vec<std::thread::JoinHandle<()>>
where
    S: Service,
    F: Fn() -> S + Send + Clone + 'static,
{
    let cpus = allowed_cpus();
    listeners
        .into_iter()
        .enumerate()
        .map(|(index, l)| {
            let shared = shared.clone();
            let make = make.clone();
            let cpu = (!cpus.is_empty()).then(|| cpus[index % cpus.len()]);
            std::thread::Builder::new()
                .name(format!("switchyard-w{index}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = monoio::utils::bind_to_cpu_set([cpu]);
                    }
                    run_worker(index, shared, l, make);
                })
                .unwrap_or_else(|e| panic!("cannot spawn worker thread: {e}"))
        })
        .collect()
}

/// The CPUs this process may run on (its affinity mask, as `taskset` or a cgroup set it), so
/// worker i is pinned to the i-th allowed CPU rather than to CPU i.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a cpu_set_t we own; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn run_worker<S: Service>(
    index: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    make: impl Fn() -> S,
) {
    let fut = accept_loop(index, shared, listener, make());
    // The ring is only ever used by this thread: let the kernel defer completion work to our
    // own io_uring_enter calls instead of interrupting the worker for it (COOP/DEFER_TASKRUN,
    // SINGLE_ISSUER; Linux 6.1+). Older kernels refuse the flags and get a default ring.
    let mut tuned = io_uring::IoUring::builder();
    tuned.setup_coop_taskrun().setup_single_issuer();
    let built = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .uring_builder(tuned)
        .enable_timer()
        .build()
        .or_else(|_| {
            monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build()
        });
    match built {
        Ok(mut rt) => rt.block_on(fut),
        Err(e) => {
            // io_uring was detected but the ring could not be set up (memlock limits, seccomp):
            // fall back to epoll rather than refuse to serve.
            crate::warn!("worker {index}: io_uring runtime failed ({e}); using the legacy driver");
            match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(mut rt) => rt.block_on(fut),
                Err(e) => crate::error!("worker {index}: cannot build a runtime: {e}"),
            }
        }
    }
}

async fn accept_loop<S: Service>(
    index: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    service: S,
) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::error!("worker {index}: cannot register listener: {e}");
            return;
        }
    };
    crate::log::init_worker();
    crate::usage::ledger::init_worker();
    shared.running.fetch_add(1, Ordering::Relaxed);
    let _running = Running(shared.clone());
    if let Some(state) = &shared.state {
        // A shared store's per-worker connection starts now, so it (and `/ready`) is up before
        // the first request needs it.
        state.start_worker();
    }
    let table = shared.routes.load();
    let worker = Rc::new(Worker {
        index,
        cached: RefCell::new((shared.routes.generation(), Rc::new(table))),
        bufs: RefCell::new(Vec::new()),
        rbufs: RefCell::new(Vec::new()),
        slots: super::slot::Slots::new(MAX_POOLED_BUFS),
        shared,
    });
    let service = Rc::new(service);
    monoio::spawn(housekeeping(service.clone()));
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                let w = worker.clone();
                let svc = service.clone();
                w.stats().inc(Counter::ConnectionsAccepted);
                monoio::spawn(async move {
                    w.stats().inc(Counter::ConnectionsOpen);
                    let guard = OpenGuard(w.clone());
                    if CatchUnwind(conn::serve(w.clone(), svc, stream))
                        .await
                        .is_err()
                    {
                        w.stats().inc(Counter::Panics);
                        crate::error!(
                            "worker {}: a connection task panicked; connection closed",
                            w.index
                        );
                    }
                    drop(guard);
                });
            }
            Err(e) => {
                if worker.shutting_down() {
                    break;
                }
                // EMFILE/ENFILE: back off briefly instead of spinning on accept.
                crate::warn!("worker {index}: accept failed: {e}");
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    drain(&worker).await;
    crate::log::flush_worker();
    crate::usage::ledger::flush_worker();
}

/// Housekeeping off the request path: handing log batches and usage ledger lines over, the
/// service's own (evicting stale upstream connections). It holds a timer only for work that is
/// waiting (a batch to flush within [`crate::log::FLUSH_INTERVAL`] of its first line, a [`TICK_EVERY`] tick
/// while the service wants one) and otherwise sleeps until [`crate::chores::ring`]: an idle
/// worker wakes for nothing. Shutdown needs no timer here: it shuts the listeners down, which
/// ends the accept loop's wait.
async fn housekeeping<S: Service>(svc: Rc<S>) {
    use monoio::time::Instant;
    let mut flush_at: Option<Instant> = None;
    let mut tick_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if crate::log::pending() || crate::usage::ledger::pending() {
            flush_at.get_or_insert(now + crate::log::FLUSH_INTERVAL);
        }
        if svc.wants_tick() {
            tick_at.get_or_insert(now + TICK_EVERY);
        }
        let due = match (flush_at, tick_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match due {
            None => crate::chores::rung().await,
            Some(at) => {
                monoio::select! {
                    _ = monoio::time::sleep_until(at) => {},
                    _ = crate::chores::rung() => {},
                }
            }
        }
        let now = Instant::now();
        if flush_at.is_some_and(|t| t <= now) {
            flush_at = None;
            crate::log::flush_worker();
            crate::usage::ledger::flush_worker();
        }
        if tick_at.is_some_and(|t| t <= now) {
            tick_at = None;
            svc.tick();
        }
    }
}

/// How often [`Service::tick`] runs while the service wants it.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// After accepting stopped: keep the runtime (and so the connection tasks) alive until this
/// worker's in-flight requests have finished or the drain deadline passed. Streams still
/// running at the deadline are cut with their protocol's error event (`relay::drain`), given
/// up to [`CUT_GRACE`] to write it. Idle keep-alive connections are then closed with the
/// runtime.
async fn drain(worker: &Worker) {
    let deadline = std::time::Instant::now() + worker.routes().limits.drain_timeout;
    while worker.stats().get(Counter::InFlight) > 0 && std::time::Instant::now() < deadline {
        monoio::time::sleep(DRAIN_POLL).await;
    }
    if worker.stats().get(Counter::InFlight) == 0 {
        return;
    }
    crate::relay::drain::cut_streams();
    let grace = std::time::Instant::now() + CUT_GRACE;
    while worker.stats().get(Counter::InFlight) > 0 && std::time::Instant::now() < grace {
        monoio::time::sleep(DRAIN_POLL).await;
    }
}

/// How long streams cut at the drain deadline get to write their error event: one small write
/// each, to clients that were reading a moment ago.
pub const CUT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How often a draining worker checks its in-flight count.
pub const DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(5);

struct OpenGuard(Rc<Worker>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.stats().dec(Counter::ConnectionsOpen);
    }
}

/// Runs a future, turning a panic inside its `poll` into `Err(())`.
pub struct CatchUnwind<F>(pub F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out of `self`.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Stops accepting on every listener (wakes blocked accepts) and marks the shutdown.
pub fn begin_shutdown(shared: &Shared) {
    shared.shutdown.store(true, Ordering::SeqCst);
    for &fd in &shared.listener_fds {
        // SAFETY: shutdown(2) on a listening fd we created; it stays open until the workers exit.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
}

/// Counts a worker as running until its accept loop returns.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::CatchUnwind;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A panicking connection task ends alone: the runtime and its other tasks go on.
    #[monoio::test_all(timer_enabled = true)]
    async fn a_panicking_task_does_not_take_the_worker_down() {
        let survivor = Rc::new(Cell::new(0));
        let s = survivor.clone();
        let other = monoio::spawn(async move {
            for _ in 0..3 {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                s.set(s.get() + 1);
            }
        });
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let crashed = monoio::spawn(CatchUnwind(async {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            panic!("a bug while serving one connection");
        }))
        .await;
        std::panic::set_hook(hook);
        assert!(crashed.is_err());
        other.await;
        assert_eq!(survivor.get(), 3);
    }
}
