//! The command line: `serve` (the gateway), `mock-upstream` (the built-in mock provider as its
//! own server), `check` (validate a config) and `token` (mint a client token). Every command
//! answers `--help` (usage and every flag, on stdout) and `--version`. Exit codes: 0 ok, 2 bad
//! config or arguments (one clear line each), 1 runtime failure (a port that cannot be bound).
//!
//! Each command's flags are declared once, in `COMMANDS`: parsing refuses any other, and the
//! help text is written from the same table.
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

/// One flag of a command.
struct Opt {
    /// `--name`.
    name: &'static str,
    /// What its value looks like (`FILE`); `None` for a switch.
    value: Option<&'static str>,
    /// Whether the command needs it.
    required: bool,
    /// What it does, for `--help`.
    help: &'static str,
}

/// A command and its flags.
struct Cmd {
    name: &'static str,
    /// What it does, for `--help`.
    summary: &'static str,
    opts: &'static [Opt],
}

const fn opt(name: &'static str, value: Option<&'static str>, help: &'static str) -> Opt {
    Opt {
        name,
        value,
        required: false,
        help,
    }
}

const SHARE_PORT: Opt = opt(
    "--share-port",
    None,
    "listen even though another process listens on the address, sharing its connections; for a zero-downtime upgrade: start the new process with it, wait for its \"listening on\" line, then SIGTERM the old one, which drains",
);

/// Every command and its flags: what is parsed and what `--help` prints.
const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "serve",
        summary: "runs the gateway",
        opts: &[
            opt(
                "--config",
                Some("FILE"),
                "the config file (default: the embedded config: built-in mock provider, project \"default\", dev token sk-lr-dev, loopback only)",
            ),
            opt(
                "--listen",
                Some("ADDR"),
                "the proxy API address, over [server] listen (embedded config: 127.0.0.1:3000)",
            ),
            opt(
                "--admin-listen",
                Some("ADDR"),
                "the /metrics, /health, /ready address, over [server] admin_listen (default 127.0.0.1:9464; \"\" = off)",
            ),
            opt(
                "--workers",
                Some("N"),
                "worker threads, each pinned to a core with its own io_uring ring, over [server] workers (0 = one per core)",
            ),
            SHARE_PORT,
        ],
    },
    Cmd {
        name: "mock-upstream",
        summary: "serves the built-in mock provider on its own (OpenAI and Anthropic shapes, streaming, timing and injected faults), for load tests",
        opts: &[
            opt("--listen", Some("ADDR"), "the address (default 127.0.0.1:8000)"),
            opt(
                "--admin-listen",
                Some("ADDR"),
                "the /metrics, /health, /ready address (default: off)",
            ),
            opt("--workers", Some("N"), "worker threads (0 = one per core, the default)"),
            opt("--ttft-ms", Some("N"), "time to first token in ms (default 0)"),
            opt(
                "--tokens-per-s",
                Some("N"),
                "streaming pace (default 0: as fast as possible)",
            ),
            opt(
                "--reply-tokens",
                Some("N"),
                "reply length when the request does not bound it (default 16)",
            ),
            opt(
                "--fail-rate",
                Some("F"),
                "probability of an injected failure, within 0..1 (default 0)",
            ),
            SHARE_PORT,
        ],
    },
    Cmd {
        name: "check",
        summary: "validates a config: prints every error with its place and exits 2 on any; warns (exit 0) about plain-text tokens and provider keys serve could not read here",
        opts: &[Opt {
            name: "--config",
            value: Some("FILE"),
            required: true,
            help: "the config file",
        }],
    },
    Cmd {
        name: "token",
        summary: "prints a fresh sk-lr- token and the sha256: digest to put in the config",
        opts: &[],
    },
];

/// What `-h`/`--help` and `-V`/`--version` say, for every command.
const COMMON_HELP: &str = "  -h, --help            print this help and exit
  -V, --version         print the version and exit";

/// Runs a command line (without the program name); returns the exit code.
pub fn run(args: &[String]) -> i32 {
    crate::log::init_from_env();
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    let Some(first) = args.first() else {
        eprintln!(
            "switchyard: a command is needed: {} (see switchyard --help)",
            names.join(", ")
        );
        return EXIT_USAGE;
    };
    let cmd = match first.as_str() {
        "-h" | "--help" | "help" => {
            match args
                .get(1)
                .and_then(|n| COMMANDS.iter().find(|c| c.name == n.as_str()))
            {
                Some(c) => print!("{}", command_help(c)),
                None => print!("{}", top_help()),
            }
            return 0;
        }
        "-V" | "--version" => {
            println!("{}", version());
            return 0;
        }
        name => match COMMANDS.iter().find(|c| c.name == name) {
            Some(c) => c,
            None => {
                eprintln!(
                    "switchyard: unknown command {name:?}; commands: {} (see switchyard --help)",
                    names.join(", ")
                );
                return EXIT_USAGE;
            }
        },
    };
    let flags = match Flags::parse(cmd, &args[1..]) {
        Ok(Parsed::Run(f)) => f,
        Ok(Parsed::Help) => {
            print!("{}", command_help(cmd));
            return 0;
        }
        Ok(Parsed::Version) => {
            println!("{}", version());
            return 0;
        }
        Err(e) => {
            eprintln!(
                "switchyard {}: {e} (see switchyard {} --help)",
                cmd.name, cmd.name
            );
            return EXIT_USAGE;
        }
    };
    match cmd.name {
        "serve" => serve(&flags),
        "mock-upstream" => mock_upstream(&flags),
        "check" => check(&flags),
        _ => token(),
    }
}

/// `switchyard 0.1.0`.
fn version() -> String {
    format!("switchyard {}", env!("CARGO_PKG_VERSION"))
}

/// `switchyard serve [--config FILE] ...`, wrapped under the command name.
fn usage_line(c: &Cmd) -> String {
    let lead = format!("switchyard {}", c.name);
    let indent = " ".repeat(lead.len());
    let mut out = lead;
    let mut width = out.len();
    for o in c.opts {
        let mut part = match o.value {
            Some(v) => format!("{} {v}", o.name),
            None => o.name.to_string(),
        };
        if !o.required {
            part = format!("[{part}]");
        }
        if width + 1 + part.len() > HELP_WIDTH {
            out.push('\n');
            out.push_str(&indent);
            width = indent.len();
        }
        out.push(' ');
        out.push_str(&part);
        width += 1 + part.len();
    }
    out
}

/// A command's `--help`: what it does, its usage, every flag.
fn command_help(c: &Cmd) -> String {
    let mut out = format!(
        "switchyard {}: {}\n\nusage:\n{}\n\noptions:\n",
        c.name,
        c.summary,
        indent(&usage_line(c), "  ")
    );
    for o in c.opts {
        let left = match o.value {
            Some(v) => format!("{} {v}", o.name),
            None => o.name.to_string(),
        };
        out.push_str(&wrap(&format!("  {left:<20}  {}", o.help), 24));
        out.push('\n');
    }
    out.push_str(COMMON_HELP);
    out.push('\n');
    out
}

/// `switchyard --help`: every command's usage with every flag, and what each does.
fn top_help() -> String {
    let mut out = format!(
        "{}: a thread-per-core io_uring LLM gateway\n\nusage:\n",
        version()
    );
    for c in COMMANDS {
        out.push_str(&indent(&usage_line(c), "  "));
        out.push('\n');
    }
    out.push_str("  switchyard [COMMAND] --help | --version\n\ncommands:\n");
    for c in COMMANDS {
        out.push_str(&wrap(&format!("  {:<15} {}", c.name, c.summary), 18));
        out.push('\n');
    }
    out.push_str(
        "\nswitchyard COMMAND --help describes each flag.\n\
         Exit codes: 0 ok, 2 bad config or arguments, 1 runtime failure.\n",
    );
    out
}

/// Help text lines are wrapped at this width.
const HELP_WIDTH: usize = 96;

/// Wraps one line at word boundaries; continuation lines are indented by `hang`.
fn wrap(line: &str, hang: usize) -> String {
    let mut out = String::new();
    let mut width = 0;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 && width + 1 + word.len() > HELP_WIDTH && width > hang {
            out.push('\n');
            out.push_str(&" ".repeat(hang));
            width = hang;
        } else if i > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.chars().count();
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    let lines: Vec<String> = text.lines().map(|l| format!("{by}{l}")).collect();
    lines.join("\n")
}

/// The flags of a command line, parsed against its command's table.
#[derive(Default)]
struct Flags {
    config: Option<String>,
    listen: Option<String>,
    admin_listen: Option<String>,
    workers: Option<usize>,
    share_port: bool,
    ttft_ms: Option<u64>,
    tokens_per_s: Option<f64>,
    reply_tokens: Option<u32>,
    fail_rate: Option<f64>,
}

/// What a command line asks for.
enum Parsed {
    Run(Flags),
    Help,
    Version,
}

impl Flags {
    fn parse(cmd: &Cmd, args: &[String]) -> Result<Parsed, String> {
        let mut f = Flags::default();
        let mut seen = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            match name {
                "-h" | "--help" => return Ok(Parsed::Help),
                "-V" | "--version" => return Ok(Parsed::Version),
                _ => {}
            }
            let Some(spec) = cmd.opts.iter().find(|o| o.name == name) else {
                return Err(if name.starts_with('-') {
                    format!("unknown option {name:?}")
                } else {
                    format!("unexpected argument {a:?}")
                });
            };
            seen.push(spec.name);
            if spec.value.is_none() {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                match name {
                    "--share-port" => f.share_port = true,
                    other => return Err(format!("unknown option {other:?}")),
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))?,
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a valid number"))
            }
            match name {
                "--config" => f.config = Some(value),
                "--listen" => f.listen = Some(value),
                "--admin-listen" => f.admin_listen = Some(value),
                "--workers" => f.workers = Some(num(name, value)?),
                "--ttft-ms" => f.ttft_ms = Some(num(name, value)?),
                "--tokens-per-s" => f.tokens_per_s = Some(num(name, value)?),
                "--reply-tokens" => f.reply_tokens = Some(num(name, value)?),
                "--fail-rate" => {
                    let r: f64 = num(name, value)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err("--fail-rate: must be within 0..1".into());
                    }
                    f.fail_rate = Some(r);
                }
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        if let Some(o) = cmd
            .opts
            .iter()
            .find(|o| o.required && !seen.contains(&o.name))
        {
            return Err(format!("{} {} is required", o.name, o.value.unwrap_or("")));
        }
        Ok(Parsed::Run(f))
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
            // What serve would warn about, and the keys it would refuse to start without.
            let (_, key_problems) = cfg.read_keys();
            let mut err = std::io::stderr().lock();
            for w in cfg.warnings() {
                let _ = writeln!(err, "warning: {path}: {w}");
            }
            for p in key_problems {
                let _ = writeln!(
                    err,
                    "warning: {path}: {p} (serve refuses to start without it)"
                );
            }
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
    cfg.server.share_port = flags.share_port;
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
    cfg.server.share_port = flags.share_port;
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
    let (listeners, bound) =
        match crate::server::listen::bind_listeners(listen, n, cfg.server.share_port) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("switchyard: {e}");
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
