//! `switchyard bench`: a load driver for any OpenAI- or Anthropic-speaking endpoint (this
//! gateway, another gateway, a provider, vLLM, the mock).
//!
//! It offers load closed-loop (`--concurrency N` requests in flight) or open-loop (`--rate R`
//! arrivals per second, Poisson or constant, latency from each intended send time: no
//! coordinated omission), for a duration or a number of requests after a warm-up, and reports
//! what LLM users care about: time to first token, inter-token latency, end-to-end latency
//! (p50/p90/p99/p99.9/max), requests/s, output tokens/s, goodput under a TTFT objective and
//! errors by kind. `--rate sweep` steps the rate up until p99 TTFT or the error rate breaks
//! the objective and reports the highest rate that held.
//!
//! Modules, in the order a run uses them: `args` (options), `request` (the one request, with
//! a synthetic prompt of an exact token count), `driver` (the loops, on one monoio runtime),
//! `conn` (connection, response reading, SSE event kinds), `stats` and `hist` (what was
//! measured, in log-bucket histograms with no allocation per sample), `report` (table, JSON,
//! HTML). The client code is the gateway's own: `upstream` connections (plain or rustls),
//! `http1` response parsing and chunked decoding, the `translate::sse` framer.

pub mod args;
pub mod conn;
pub mod driver;
pub mod hist;
pub mod report;
pub mod request;
pub mod stats;

use args::{BenchOptions, Load};
use conn::{Conn, Target};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

/// Exit code for bad arguments.
const EXIT_USAGE: i32 = 2;
/// Exit code for a failure to run (unreachable endpoint, unwritable report).
const EXIT_RUNTIME: i32 = 1;
/// How long the check before the run waits for a connection.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);
/// Sweep: rate steps doubling from `--sweep-start`, then bisections between the last rate
/// that held and the first that did not.
const SWEEP_MAX_DOUBLINGS: usize = 16;
const SWEEP_BISECTIONS: usize = 3;

/// Runs `switchyard bench` with its `(flag, value)` pairs; returns the exit code.
pub fn run(pairs: &[(&str, String)]) -> i32 {
    let o = match BenchOptions::parse(pairs, &|k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("switchyard bench: {e} (see switchyard bench --help)");
            return EXIT_USAGE;
        }
    };
    match run_options(&o) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("switchyard bench: {e}");
            EXIT_RUNTIME
        }
    }
}

/// Resolves the URL's host and makes the TLS config (once, before the run).
fn target(o: &BenchOptions) -> Result<Target, String> {
    let addr = (o.url.host.as_str(), o.url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", o.url.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", o.url.host))?;
    let tls = if o.url.tls {
        let roots = crate::upstream::tls::roots("")?;
        Some((
            crate::upstream::tls::client_config(roots),
            o.url.host.clone(),
        ))
    } else {
        None
    };
    Ok(Target { addr, tls })
}

/// Creates the report files before the run: a path that cannot be written is one line now,
/// not an error after the whole load.
fn check_reports(o: &BenchOptions) -> Result<(), String> {
    for (flag, path) in [("--json", &o.json), ("--html", &o.html)] {
        if let Some(p) = path {
            std::fs::File::create(p).map_err(|e| format!("{flag} {p}: {e}"))?;
        }
    }
    Ok(())
}

fn run_options(o: &BenchOptions) -> Result<(), String> {
    check_reports(o)?;
    let target = target(o)?;
    // One connection first: an endpoint that cannot be reached is one line, not a run of
    // connect errors.
    let t = target.clone();
    let reached = driver::block_on(async move {
        Conn::open(&t, Instant::now() + PREFLIGHT_TIMEOUT)
            .await
            .map(drop)
    })?;
    if let Err(kind) = reached {
        return Err(format!(
            "cannot reach {}:{} ({}): {}",
            o.url.host,
            o.url.port,
            target.addr,
            kind.name().replace('_', " ")
        ));
    }
    let req = request::build(o);
    if o.load == Load::Sweep {
        return sweep(o, &target, &req);
    }
    let r = driver::run(o, &target, &req, o.load, "")?;
    print!("{}", report::table(o, &r));
    let json = report::json(o, &r);
    write_reports(o, &r, &json)
}

fn write_reports(o: &BenchOptions, r: &driver::RunResult, json: &str) -> Result<(), String> {
    if let Some(p) = &o.json {
        std::fs::write(p, json).map_err(|e| format!("--json {p}: {e}"))?;
    }
    if let Some(p) = &o.html {
        std::fs::write(p, report::html(o, r, json)).map_err(|e| format!("--html {p}: {e}"))?;
    }
    Ok(())
}

/// Whether a step met the objectives: p99 TTFT and error rate. A backlog needs no check of
/// its own: every arrival of the step is sent and finishes (queued ones after the step's end),
/// and its TTFT counts from its intended send time, so queueing shows in p99 TTFT. (Comparing
/// completions with rate x duration instead measured the arrival process's own noise: a
/// Poisson step of 10 expected arrivals has fewer than 9 a third of the time.)
fn held(o: &BenchOptions, r: &driver::RunResult) -> bool {
    let s = &r.stats;
    let slo_us = o.slo_ttft_ms.unwrap_or(f64::INFINITY) * 1000.0;
    s.ok > 0 && s.ttft.quantile(0.99) <= slo_us && s.error_rate() <= o.slo_error_rate
}

fn sweep(o: &BenchOptions, target: &Target, req: &[u8]) -> Result<(), String> {
    let mut steps: Vec<report::Step> = Vec::new();
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    let mut rate = o.sweep_start;
    let step = |rate: f64, steps: &mut Vec<report::Step>| -> Result<bool, String> {
        let label = format!("rate {rate:.2}/s: ");
        let r = driver::run(o, target, req, Load::Open { rate }, &label)?;
        let ok = held(o, &r);
        println!(
            "{label}{} (p99 ttft {:.1} ms, errors {:.2}%, {:.1} req/s)",
            if ok { "held" } else { "broke the SLO" },
            r.stats.ttft.quantile(0.99) / 1000.0,
            r.stats.error_rate() * 100.0,
            r.stats.ok as f64 / r.elapsed.as_secs_f64().max(1e-9)
        );
        steps.push(report::Step {
            result: r,
            held: ok,
        });
        Ok(ok)
    };
    for _ in 0..SWEEP_MAX_DOUBLINGS {
        if step(rate, &mut steps)? {
            good = Some(rate);
            rate *= 2.0;
        } else {
            bad = Some(rate);
            break;
        }
    }
    if let (Some(mut lo), Some(mut hi)) = (good, bad) {
        for _ in 0..SWEEP_BISECTIONS {
            let mid = (lo + hi) / 2.0;
            if step(mid, &mut steps)? {
                lo = mid;
                good = Some(mid);
            } else {
                hi = mid;
            }
        }
    }
    match good {
        Some(g) => println!("highest rate that held the SLO: {g:.2} req/s"),
        None => println!("no rate held the SLO (from {:.2} req/s)", o.sweep_start),
    }
    let json = report::sweep_json(o, &steps, good);
    if let Some(p) = &o.json {
        std::fs::write(p, &json).map_err(|e| format!("--json {p}: {e}"))?;
    }
    if let Some(p) = &o.html {
        // The page charts the step at the highest rate that held, else the first step.
        let pick = steps
            .iter()
            .filter(|s| s.held)
            .max_by(|a, b| {
                a.result
                    .rate
                    .partial_cmp(&b.result.rate)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .or(steps.first());
        if let Some(s) = pick {
            let one = report::json(o, &s.result);
            std::fs::write(p, report::html(o, &s.result, &one))
                .map_err(|e| format!("--html {p}: {e}"))?;
        }
    }
    Ok(())
}
