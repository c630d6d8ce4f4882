//! The command line: `serve` (the gateway), `mock-upstream` (the built-in mock provider as its
//! own server), `bench` (the load driver, `crate::bench`), `check` (validate a config) and
//! `token` (mint a client token). Every command
//! answers `--help` (usage and every flag, on stdout) and `--version`. Exit codes: 0 ok, 2 bad
//! config or arguments (one clear line each), 1 runtime failure (a port that cannot be bound).
//!
//! Each command's flags are declared once, in `COMMANDS`: parsing refuses any other, and the
//! help text is written from the same table.
//!
//! `serve` and `mock-upstream` print one line `switchyard listening on http://ADDR ...` on
//! stdout once every listener is bound (the real port when 0 was asked for), which scripts and
//! tests wait for instead of sleeping.

mod args;
mod run;

use args::{command_help, top_help, version, Flags, Parsed, COMMANDS};
use run::run_server;
pub use run::{ready, reload, Reload};

use crate::config::Config;
use crate::route::{RouteTable, Routes};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// Exit code for a bad config or bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// How often provider host names are resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(30);

/// Exit code for a runtime failure.
pub const EXIT_RUNTIME: i32 = 1;

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
        "bench" => crate::bench::run(&flags.bench),
        _ => token(),
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
    // The conversation store opens before the listeners bind: a locked or corrupt store stops
    // the start with its reason, rather than failing every stateful request later.
    let state = match crate::state::State::open(&cfg.state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchyard: the conversation store ([state]): {e}");
            return EXIT_RUNTIME;
        }
    };
    // Files the operator named that cannot be opened stop the start, as the store does.
    if let Err(e) = crate::usage::ledger::start(&cfg.usage) {
        eprintln!("switchyard: the usage ledger or access log ([usage]): {e}");
        return EXIT_RUNTIME;
    }
    if let Err(e) = crate::otlp::start(&cfg.telemetry) {
        eprintln!("switchyard: the OTLP exporter ([telemetry]): {e}");
        return EXIT_RUNTIME;
    }
    let notice = format!(
        "embedded config: built-in mock provider, project \"default\"; dev token: {}",
        crate::config::DEV_TOKEN
    );
    run_server(
        &cfg,
        listen,
        routes,
        crate::proxy::Gateway::new,
        flags.config.clone(),
        embedded.then_some(notice.as_str()),
        Some(state),
    )
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
        seed: flags.seed.unwrap_or(0),
        spread: flags.spread,
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
        None,
        None,
    )
}
