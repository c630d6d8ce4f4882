//! Running a server: bind, start the workers with their service, print the `listening on`
//! line, then take signals on the main thread (`SIGHUP` reloads, `SIGTERM`/`SIGINT` drain).

use super::{build_table, workers_for, DNS_REFRESH, EXIT_RUNTIME};
use crate::config::{Config, LimitsSync, StateBackend};
use crate::metrics::{self, Counter};
use crate::route::Routes;
use crate::server::worker::{self, Shared};
use crate::server::Service;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and so in every worker spawned after),
/// so the main thread can take them synchronously with `sigwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set, then pthread_sigmask for this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

pub(super) fn run_server<S: Service>(
    cfg: &Config,
    listen: SocketAddr,
    routes: Routes,
    make: impl Fn() -> S + Send + Clone + 'static,
    config_path: Option<String>,
    notice: Option<&str>,
    state: Option<crate::state::State>,
) -> i32 {
    let what = S::NAME;
    let sigset = block_signals();
    crate::log::start_sink();
    let n = workers_for(cfg.server.workers);
    let (listeners, bound) =
        match crate::server::listen::bind_listeners(listen, n, cfg.server.share_port) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("switchyard: {e}");
                return EXIT_RUNTIME;
            }
        };
    // Batched limits: the sync thread's Redis, resolved here (it may block on DNS).
    let limits_sync = match &state {
        Some(_)
            if cfg.state.backend.get() == StateBackend::Redis
                && cfg.state.limits_sync.get() == LimitsSync::Batched =>
        {
            match crate::redis::RedisConfig::from_url(&cfg.state.redis_url) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("switchyard: state.redis_url: {e}");
                    return EXIT_RUNTIME;
                }
            }
        }
        _ => None,
    };
    use std::os::fd::AsRawFd;
    let shared = Arc::new(Shared {
        routes,
        stats: (0..n).map(|_| Default::default()).collect(),
        shutdown: AtomicBool::new(false),
        listener_fds: listeners.iter().map(|l| l.as_raw_fd()).collect(),
        listen: cfg.server.listen.clone(),
        state,
        config_path,
        reloads: Default::default(),
        running: Default::default(),
        limits_batched: limits_sync.is_some(),
    });
    let admin = if cfg.server.admin_listen.is_empty() {
        None
    } else {
        // Bound like the proxy listeners, so an upgrade with --share-port shares it too.
        match crate::server::listen::bind_admin(&cfg.server.admin_listen, cfg.server.share_port) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("switchyard: admin listener: {e}");
                return EXIT_RUNTIME;
            }
        }
    };
    let driver = match worker::driver() {
        worker::Driver::IoUring => "io_uring",
        worker::Driver::Legacy => {
            "legacy (epoll) driver: io_uring unavailable or MONOIO_FORCE_LEGACY_DRIVER set"
        }
    };
    let sync = match limits_sync {
        Some(r) => {
            let every = Duration::from_millis(cfg.state.limits_sync_ms);
            match crate::limits::sync::start(shared.clone(), r, every) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("switchyard: cannot start the rate limits' sync thread: {e}");
                    return EXIT_RUNTIME;
                }
            }
        }
        None => None,
    };
    let handles = worker::start(shared.clone(), listeners, make);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "switchyard {what} listening on http://{bound} ({n} workers, {driver})"
        );
        if let Some(a) = &admin {
            if let Ok(addr) = a.local_addr() {
                let _ = writeln!(
                    out,
                    "switchyard admin listening on http://{addr} (/metrics /health /ready)"
                );
            }
        }
        if let Some(n) = notice {
            let _ = writeln!(out, "{n}");
        }
        let _ = out.flush();
    }
    if let Some(a) = admin {
        let s = shared.clone();
        let _ = std::thread::Builder::new()
            .name("switchyard-admin".into())
            .spawn(move || crate::admin::serve(a, s));
    }
    {
        // DNS off the workers: re-resolve provider hosts periodically; workers read the last
        // good answer without blocking.
        let s = shared.clone();
        let _ = std::thread::Builder::new()
            .name("switchyard-dns".into())
            .spawn(move || loop {
                std::thread::sleep(DNS_REFRESH);
                if s.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                s.routes.load().refresh_addrs();
            });
    }
    let drain = Duration::from_millis(cfg.server.drain_timeout_ms);
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on the set blocked above, into a local.
        let r = unsafe { libc::sigwait(&sigset, &mut sig) };
        if r != 0 {
            continue;
        }
        match sig {
            libc::SIGHUP => {
                let _ = reload(&shared);
            }
            _ => break,
        }
    }
    crate::info!("signal received: draining (up to {} ms)", drain.as_millis());
    worker::begin_shutdown(&shared);
    let start = Instant::now();
    while metrics::total(&shared.stats, Counter::InFlight) > 0 && start.elapsed() < drain {
        std::thread::sleep(Duration::from_millis(5));
    }
    let left = metrics::total(&shared.stats, Counter::InFlight);
    if left > 0 {
        crate::warn!("drain timeout: {left} requests still in flight");
    }
    // Workers return once their own in-flight requests are done (or the drain deadline
    // passed), after handing their last log batch over.
    for h in handles {
        let _ = h.join();
    }
    // One last pass, so the other gateways count what this one admitted last.
    if let Some(t) = sync {
        t.stop();
    }
    if crate::usage::ledger::enabled() {
        crate::info!(
            "stopped; writing out the usage ledger and access log ({} lines queued)",
            crate::usage::ledger::depth()
        );
    }
    if !crate::usage::ledger::finish(Duration::from_secs(5)) {
        crate::warn!("usage ledger: not every line was written before exit");
    }
    // The spans of the last requests are still waiting for their batch.
    crate::otlp::finish(Duration::from_secs(2));
    crate::log::finish(Duration::from_secs(1));
    0
}

/// Reloads the config file (`SIGHUP`, `POST /admin/reload`): a good one is published as the
/// new snapshot, a bad one is refused and the running snapshot kept. Gives what happened, for
/// the admin API; logs it either way.
pub fn reload(shared: &Shared) -> Result<String, Reload> {
    let Some(path) = shared.config_path.as_deref() else {
        crate::info!("reload: the embedded config has nothing to reload");
        return Err(Reload::Embedded);
    };
    let _one = shared
        .reloads
        .lock
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let outcome = Config::load(path).and_then(|cfg| {
        let current = shared.routes.load();
        if workers_for(cfg.server.workers) != shared.stats.len()
            || cfg.server.listen != current_listen(shared)
        {
            crate::warn!("reload: listen address and worker count take effect only at restart");
        }
        let mut cfg = cfg;
        cfg.server.workers = shared.stats.len();
        build_table(&cfg, Some(&current))
    });
    let r = &shared.reloads;
    let mut last = r.last_error.lock().unwrap_or_else(|e| e.into_inner());
    match outcome {
        Ok(t) => {
            shared.routes.publish(t);
            r.ok.fetch_add(1, Ordering::Relaxed);
            last.clear();
            crate::info!("reloaded {path}");
            Ok(path.to_string())
        }
        Err(e) => {
            let why = e.to_string().replace('\n', "; ");
            r.failed.fetch_add(1, Ordering::Relaxed);
            crate::error!("reload refused, keeping the running config: {why}");
            last.clone_from(&why);
            Err(Reload::Refused(why))
        }
    }
}

/// Why a reload did not publish a new snapshot.
#[derive(Debug)]
pub enum Reload {
    /// The gateway runs on the embedded config: there is no file to read.
    Embedded,
    /// The file is not a valid config (every problem, `; `-separated); the running one stays.
    Refused(String),
}

fn current_listen(shared: &Shared) -> String {
    shared.listen.clone()
}

/// Whether the process is shutting down (for the admin `/ready`).
pub fn ready(shared: &Shared) -> bool {
    !shared.shutdown.load(Ordering::Relaxed) && shared.state.as_ref().is_none_or(|s| s.ready())
}
