//! The admin listener: `/metrics` (Prometheus text), `/health`, `/ready`.
//!
//! Served by its own plain thread with blocking sockets, off the workers, so a slow scraper can
//! never stall request traffic. One request per connection, 2 s deadlines.

use crate::server::worker::Shared;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
    let (status, ctype, body) = match path {
        b"/metrics" => {
            let mut text = String::with_capacity(4096);
            crate::metrics::render(&shared.stats, &mut text);
            let _ = std::fmt::Write::write_fmt(
                &mut text,
                format_args!(
                    "# HELP switchyard_ledger_dropped_total Usage ledger and access log lines dropped because the writer fell behind.\n# TYPE switchyard_ledger_dropped_total counter\nswitchyard_ledger_dropped_total {}\n",
                    crate::usage::ledger::dropped()
                ),
            );
            let _ = std::fmt::Write::write_fmt(
                &mut text,
                format_args!(
                    "# HELP switchyard_otlp_spans_exported_total Request spans the OTLP collector accepted.\n# TYPE switchyard_otlp_spans_exported_total counter\nswitchyard_otlp_spans_exported_total {}\n# HELP switchyard_otlp_spans_dropped_total Request spans dropped: the exporter's queue was full, or the collector refused, rejected or never answered their export.\n# TYPE switchyard_otlp_spans_dropped_total counter\nswitchyard_otlp_spans_dropped_total {}\n",
                    crate::otlp::exported(),
                    crate::otlp::dropped()
                ),
            );
            (200, "text/plain; version=0.0.4", text)
        }
        b"/health" => (200, "text/plain", "ok\n".to_string()),
        b"/ready" if crate::cli::ready(shared) => (200, "text/plain", "ready\n".to_string()),
        b"/ready" if shared.shutdown.load(std::sync::atomic::Ordering::Relaxed) => {
            (503, "text/plain", "draining\n".to_string())
        }
        b"/ready" => (503, "text/plain", "state unavailable\n".to_string()),
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    let reason = crate::http1::write::status_reason(status);
    let _ = write!(
        s,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
