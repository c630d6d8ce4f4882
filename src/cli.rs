//! The command line of `../shared/spec/gateway.md`: `serve`, `mock-upstream`, `check`,
//! `token`. Exit codes: 0 ok, 2 bad config or arguments (one clear line each), 1 runtime
//! failure.
//!
//! `serve` and `mock-upstream` print one line `switchyard listening on http://ADDR ...` on
//! stdout once every listener is bound (the real port when 0 was asked for), which scripts and
//! tests wait for instead of sleeping.

use crate::config::{Config, DEV_TOKEN};
use crate::metrics::{self, Counter};
use crate::route::{RouteTable, Routes};
use crate::server::worker::{self, Shared};
use crate::server::Service;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit code for a bad config or bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// How often provider host names are resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(30);

/// Exit code for a runtime failure.
pub const EXIT_RUNTIME: i32 = 1;

const USAGE: &str = "usage:
  switchyard serve [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--workers N]
  switchyard mock-upstream [--listen ADDR] [--workers N] [--ttft-ms N] [--tokens-per-s N]
                           [--reply-tokens N] [--fail-rate F]
  switchyard check --config FILE
  switchyard token";

/// Runs a command line (without the program name); returns the exit code.
pub fn run(args: &[String]) -> i32 {
    crate::log::init_from_env();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return EXIT_USAGE;
    };
    let flags = match Flags::parse(&args[1..]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("switchyard: {e}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    match cmd.as_str() {
        "serve" => serve(&flags),
        "mock-upstream" => mock_upstream(&flags),
        "check" => check(&flags),
        "token" => token(),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        other => {
            eprintln!("switchyard: unknown command {other:?}\n{USAGE}");
            EXIT_USAGE
        }
    }
}

#[derive(Default)]
struct Flags {
    config: Option<String>,
    listen: Option<String>,
    admin_listen: Option<String>,
    workers: Option<usize>,
    ttft_ms: Option<u64>,
    tokens_per_s: Option<f64>,
    reply_tokens: Option<u32>,
    fail_rate: Option<f64>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("{name} needs a value")),
                }
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a valid number"))
            }
            match name {
                "--config" => f.config = Some(value()?),
                "--listen" => f.listen = Some(value()?),
                "--admin-listen" => f.admin_listen = Some(value()?),
                "--workers" => f.workers = Some(num(name, value()?)?),
                "--ttft-ms" => f.ttft_ms = Some(num(name, value()?)?),
                "--tokens-per-s" => f.tokens_per_s = Some(num(name, value()?)?),
                "--reply-tokens" => f.reply_tokens = Some(num(name, value()?)?),
                "--fail-rate" => {
                    let r: f64 = num(name, value()?)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err("--fail-rate: must be within 0..1".into());
                    }
                    f.fail_rate = Some(r);
                }
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(f)
    }
}

fn print_errors(e: &crate::config::ConfigErrors) {
    let mut err = std::io::stderr().lock();
    for line in &e.0 {
        let _ = writeln!(err, "{line}");
    }
}

fn check(flags: &Flags) -> i32 {
    let Some(path) = &flags.config else {
        eprintln!("switchyard check: --config FILE is required");
        return EXIT_USAGE;
    };
    match Config::load(path) {
        Ok(cfg) => {
            println!(
                "{path}: ok ({} providers, {} models, {} projects)",
                cfg.providers.len(),
                cfg.models.len(),
                cfg.projects.len()
            );
            0
        }
        Err(e) => {
            print_errors(&e);
            EXIT_USAGE
        }
    }
}

fn token() -> i32 {
    let mut raw = [0u8; 24];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut raw)
    }) {
        eprintln!("switchyard token: cannot read /dev/urandom: {e}");
        return EXIT_RUNTIME;
    }
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut tok = String::from("sk-lr-");
    for chunk in raw.chunks(3) {
        let v = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for i in 0..4 {
            tok.push(ALPHABET[((v >> (i * 6)) & 63) as usize % ALPHABET.len()] as char);
        }
    }
    let digest = crate::route::token_digest(tok.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("token:  {tok}\ndigest: sha256:{hex}");
    0
}

fn workers_for(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        n
    }
}

fn serve(flags: &Flags) -> i32 {
    let embedded = flags.config.is_none();
    let mut cfg = match &flags.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                print_errors(&e);
                return EXIT_USAGE;
            }
        },
        None => Config::embedded(),
    };
    if let Some(l) = &flags.listen {
        cfg.server.listen = l.clone();
    }
    if let Some(l) = &flags.admin_listen {
        cfg.server.admin_listen = l.clone();
    }
    if let Some(n) = flags.workers {
        cfg.server.workers = n;
    }
    let errs = cfg.validate();
    if !errs.is_empty() {
        for e in errs {
            eprintln!("{e}");
        }
        return EXIT_USAGE;
    }
    let listen: SocketAddr = match cfg.server.listen.parse() {
        Ok(a) => a,
        Err(_) => return EXIT_USAGE,
    };
    if embedded && !listen.ip().is_loopback() {
        eprintln!(
            "--listen {listen}: the embedded config and its dev token serve loopback only; pass --config to listen on {}",
            listen.ip()
        );
        return EXIT_USAGE;
    }
    let table = match build_table(&cfg, None) {
        Ok(t) => t,
        Err(e) => {
            print_errors(&e);
            return EXIT_USAGE;
        }
    };
    let routes = Routes::new(table);
    let code = run_server(
        &cfg,
        listen,
        routes,
        crate::proxy::Gateway::new,
        flags.config.clone(),
    );
    if embedded && code == 0 {
        // nothing else to say
    }
    code
}

fn build_table(
    cfg: &Config,
    prev: Option<&RouteTable>,
) -> Result<RouteTable, crate::config::ConfigErrors> {
    let keys = cfg.load_keys()?;
    let workers = workers_for(cfg.server.workers);
    RouteTable::build(cfg, &keys, workers, prev, &mut |w| crate::warn!("{w}"))
}

fn mock_upstream(flags: &Flags) -> i32 {
    let mut cfg = Config::embedded();
    cfg.server.listen = flags
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    cfg.server.admin_listen = flags.admin_listen.clone().unwrap_or_default();
    cfg.server.workers = flags.workers.unwrap_or(0);
    let listen: SocketAddr = match cfg.server.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!(
                "--listen: {:?} is not an address like 127.0.0.1:8000",
                cfg.server.listen
            );
            return EXIT_USAGE;
        }
    };
    let opts = crate::mock::MockOptions {
        ttft_ms: flags.ttft_ms.unwrap_or(0),
        tokens_per_s: flags.tokens_per_s.unwrap_or(0.0),
        reply_tokens: flags.reply_tokens.unwrap_or(16),
        fail_rate: flags.fail_rate.unwrap_or(0.0),
        seed: 1,
    };
    let table = match build_table(&cfg, None) {
        Ok(t) => t,
        Err(e) => {
            print_errors(&e);
            return EXIT_USAGE;
        }
    };
    run_server(
        &cfg,
        listen,
        Routes::new(table),
        move || crate::mock::serve::MockServer::new(opts.clone()),
        None,
    )
}

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

fn run_server<S: Service>(
    cfg: &Config,
    listen: SocketAddr,
    routes: Routes,
    make: impl Fn() -> S + Send + Clone + 'static,
    config_path: Option<String>,
) -> i32 {
    let what = make().name();
    let sigset = block_signals();
    crate::log::start_sink();
    let n = workers_for(cfg.server.workers);
    let (listeners, bound) = match worker::bind_listeners(listen, n) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return EXIT_RUNTIME;
        }
    };
    use std::os::fd::AsRawFd;
    let shared = Arc::new(Shared {
        routes,
        stats: (0..n).map(|_| Default::default()).collect(),
        shutdown: AtomicBool::new(false),
        listener_fds: listeners.iter().map(|l| l.as_raw_fd()).collect(),
        listen: cfg.server.listen.clone(),
    });
    let admin = if cfg.server.admin_listen.is_empty() {
        None
    } else {
        match std::net::TcpListener::bind(&cfg.server.admin_listen) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "cannot listen on admin address {}: {e}",
                    cfg.server.admin_listen
                );
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
        if what == "gateway" && config_path.is_none() {
            let _ = writeln!(
                out,
                "embedded config: built-in mock provider, project \"default\"; dev token: {DEV_TOKEN}"
            );
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
            libc::SIGHUP => reload(&shared, config_path.as_deref()),
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
    crate::log::finish(Duration::from_secs(1));
    0
}

fn reload(shared: &Shared, path: Option<&str>) {
    let Some(path) = path else {
        crate::info!("SIGHUP: the embedded config has nothing to reload");
        return;
    };
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            crate::error!(
                "reload refused, keeping the running config: {}",
                e.to_string().replace('\n', "; ")
            );
            return;
        }
    };
    let current = shared.routes.load();
    if workers_for(cfg.server.workers) != shared.stats.len()
        || cfg.server.listen != current_listen(shared)
    {
        crate::warn!("reload: listen address and worker count take effect only at restart");
    }
    let mut cfg = cfg;
    cfg.server.workers = shared.stats.len();
    match build_table(&cfg, Some(&current)) {
        Ok(t) => {
            shared.routes.publish(t);
            crate::info!("reloaded {path}");
        }
        Err(e) => crate::error!(
            "reload refused, keeping the running config: {}",
            e.to_string().replace('\n', "; ")
        ),
    }
}

fn current_listen(shared: &Shared) -> String {
    shared.listen.clone()
}

/// Whether the process is shutting down (for the admin `/ready`).
pub fn ready(shared: &Shared) -> bool {
    !shared.shutdown.load(Ordering::Relaxed)
}
