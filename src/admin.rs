//! The admin listener: `/metrics` (Prometheus text), `/health`, `/ready`.
//!
//! Served by its own plain thread with blocking sockets, off the workers, so a slow scraper can
//! never stall request traffic. One request per connection, 2 s deadlines.

use crate::http1::Method;
use crate::server::worker::Shared;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Admin requests must fit in this.
pub const MAX_ADMIN_REQUEST: usize = 8192;

/// Serves the admin endpoints until the process exits.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        answer(&mut s, &shared);
    }
}

fn answer(s: &mut TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; MAX_ADMIN_REQUEST];
    let mut n = 0;
    let head = loop {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
        match crate::http1::parse_request_head(&buf[..n], MAX_ADMIN_REQUEST) {
            Ok(Some(h)) => break h,
            Ok(None) if n < buf.len() => continue,
            _ => return,
        }
    };
    let path = head.path(&buf[..n]);
    let path = path.split(|b| *b == b'?').next().unwrap_or(b"");
    let post = head.method == Method::Post;
    let (status, ctype, body) = match (path, post) {
        (b"/metrics", false) => (200, "text/plain; version=0.0.4", metrics(shared)),
        (b"/health", false) => (200, "text/plain", "ok\n".to_string()),
        (b"/ready", false) => ready(shared),
        (b"/admin/reload", true) => reload(shared),
        (b"/admin/reload", false) => (405, "text/plain", "POST only\n".to_string()),
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    let reason = crate::http1::write::status_reason(status);
    let _ = write!(
        s,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `/metrics`: the process counters, the labelled request series of the current snapshot, and
/// the operator's gauges (ledger, reloads, build).
fn metrics(shared: &Shared) -> String {
    let mut text = String::with_capacity(16 * 1024);
    crate::metrics::render(&shared.stats, &mut text);
    crate::metrics::series::render(&shared.routes.load(), &mut text);
    let r = &shared.reloads;
    let _ = write!(
        text,
        "# HELP switchyard_ledger_dropped_total Usage ledger and access log lines dropped because the writer fell behind.\n# TYPE switchyard_ledger_dropped_total counter\nswitchyard_ledger_dropped_total {}\n\
         # HELP switchyard_ledger_queue_depth Usage ledger and access log lines waiting for the writer.\n# TYPE switchyard_ledger_queue_depth gauge\nswitchyard_ledger_queue_depth {}\n\
         # HELP switchyard_config_reloads_total Config reloads (SIGHUP or POST /admin/reload) by result.\n# TYPE switchyard_config_reloads_total counter\nswitchyard_config_reloads_total{{result=\"ok\"}} {}\nswitchyard_config_reloads_total{{result=\"refused\"}} {}\n\
         # HELP switchyard_config_generation Route snapshots published since start (1 = the first).\n# TYPE switchyard_config_generation gauge\nswitchyard_config_generation {}\n\
         # HELP switchyard_build_info The running build.\n# TYPE switchyard_build_info gauge\nswitchyard_build_info{{version=\"{}\"}} 1\n\
         # HELP switchyard_otlp_spans_exported_total Request spans the OTLP collector accepted.\n# TYPE switchyard_otlp_spans_exported_total counter\nswitchyard_otlp_spans_exported_total {}\n\
         # HELP switchyard_otlp_spans_dropped_total Request spans dropped: the exporter's queue was full, or the collector refused, rejected or never answered their export.\n# TYPE switchyard_otlp_spans_dropped_total counter\nswitchyard_otlp_spans_dropped_total {}\n\
         # HELP switchyard_limits_sync_passes_total Batched rate-limit sync passes with Redis that completed.\n# TYPE switchyard_limits_sync_passes_total counter\nswitchyard_limits_sync_passes_total {}\n\
         # HELP switchyard_limits_sync_failures_total Batched rate-limit sync passes that failed (Redis down, slow or refusing).\n# TYPE switchyard_limits_sync_failures_total counter\nswitchyard_limits_sync_failures_total {}\n",
        crate::usage::ledger::dropped(),
        crate::usage::ledger::depth(),
        r.ok.load(Ordering::Relaxed),
        r.failed.load(Ordering::Relaxed),
        shared.routes.generation(),
        env!("CARGO_PKG_VERSION"),
        crate::otlp::exported(),
        crate::otlp::dropped(),
        crate::limits::sync::passes(),
        crate::limits::sync::failures(),
    );
    text
}

/// `/ready`: 200 when every worker accepts, the process is not draining and the state
/// backend serves; 503 otherwise. The body says which part is not, as JSON.
fn ready(shared: &Shared) -> (u16, &'static str, String) {
    let workers = shared.stats.len();
    let running = shared.running.load(Ordering::Relaxed);
    let draining = shared.shutdown.load(Ordering::Relaxed);
    let (backend, state_ok) = match &shared.state {
        None => ("none", true),
        Some(s) => (s.backend_name(), s.ready()),
    };
    let ok = !draining && running == workers && state_ok;
    let r = &shared.reloads;
    let last_error = r.last_error.lock().map(|e| e.clone()).unwrap_or_default();
    let mut body = String::with_capacity(256);
    let _ = write!(
        body,
        "{{\"ready\":{ok},\"draining\":{draining},\"workers\":{{\"configured\":{workers},\"running\":{running}}},\"state\":{{\"backend\":\"{backend}\",\"ready\":{state_ok}}},\"config\":{{\"source\":",
    );
    match &shared.config_path {
        Some(p) => json_str(&mut body, p),
        None => body.push_str("\"embedded\""),
    }
    let _ = write!(
        body,
        ",\"generation\":{},\"reloads_ok\":{},\"reloads_refused\":{},\"last_reload_error\":",
        shared.routes.generation(),
        r.ok.load(Ordering::Relaxed),
        r.failed.load(Ordering::Relaxed),
    );
    if last_error.is_empty() {
        body.push_str("null");
    } else {
        json_str(&mut body, &last_error);
    }
    body.push_str("}}\n");
    (if ok { 200 } else { 503 }, "application/json", body)
}

/// `POST /admin/reload`: what `SIGHUP` does, answered with the outcome: 200 with the new
/// generation, 422 with every problem of a refused file, 409 on the embedded config.
fn reload(shared: &Shared) -> (u16, &'static str, String) {
    let mut body = String::with_capacity(128);
    let status = match crate::cli::reload(shared) {
        Ok(_) => {
            let _ = writeln!(
                body,
                "{{\"reloaded\":true,\"generation\":{}}}",
                shared.routes.generation()
            );
            200
        }
        Err(e) => {
            let (status, why) = match e {
                crate::cli::Reload::Embedded => (
                    409,
                    "the gateway runs on the embedded config: there is no file to reload"
                        .to_string(),
                ),
                crate::cli::Reload::Refused(why) => (422, why),
            };
            body.push_str("{\"reloaded\":false,\"error\":");
            json_str(&mut body, &why);
            body.push_str("}\n");
            status
        }
    };
    (status, "application/json", body)
}

/// Appends `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    let mut v = Vec::with_capacity(s.len() + 2);
    crate::scan::push_json_string(&mut v, s);
    out.push_str(&String::from_utf8_lossy(&v));
}
