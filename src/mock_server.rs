//! `switchyard mock-upstream`: the built-in mock provider served over HTTP by the same workers
//! and connection loop as the gateway, for load tests of the gateway and of other clients.
//!
//! It answers the providers' own paths (`/v1/chat/completions`, `/v1/responses`,
//! `/v1/messages`, `/v1/messages/count_tokens`) in their exact shapes; see `mock` for timing,
//! faults and test hooks. No auth is checked: it is a test double. A stream the mock cuts
//! (`cut-` models, injected faults) ends by closing the connection without the terminating
//! chunk, as a provider dying mid-answer does.

use crate::conn::{Bufs, Outcome, Request};
use crate::http1::write::{
    status_reason, write_chunk_header, write_header, write_header_usize, LAST_CHUNK,
};
use crate::mock::{Mock, MockOptions};
use crate::netio;
use crate::worker::Worker;
use monoio::net::TcpStream;

/// Serves one request from the mock.
pub async fn handle(
    w: &Worker,
    opts: &MockOptions,
    req: &Request<'_>,
    client: &mut TcpStream,
    bufs: &mut Bufs,
) -> Outcome {
    let timeout = w.routes().limits.idle_timeout;
    let mut o = MockOptions {
        seed: crate::trace::rand_u64(),
        ..opts.clone()
    };
    if o.seed == 0 {
        o.seed = 1;
    }
    let m = Mock::new(o);
    let method = req.head.method.as_str().unwrap_or("OTHER");
    let reply = m.handle(method.as_bytes(), req.path(), req.body);
    if !reply.first_byte_delay.is_zero() {
        monoio::time::sleep(reply.first_byte_delay).await;
    }
    let status = reply.status;
    let mut out = std::mem::take(&mut bufs.wbuf);
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::http1::write::push_usize(&mut out, status as usize);
    out.push(b' ');
    out.extend_from_slice(status_reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    write_header(&mut out, b"content-type", reply.content_type.as_bytes());
    write_header(&mut out, b"x-request-id", req.trace_id.as_bytes());
    let Some(mut s) = reply.stream else {
        write_header_usize(&mut out, b"content-length", reply.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&reply.body);
        let (r, b) = netio::write_vec(client, out, netio::after(timeout)).await;
        bufs.wbuf = b;
        return Outcome {
            status,
            keep_alive: r.is_ok(),
        };
    };
    write_header(&mut out, b"transfer-encoding", b"chunked");
    write_header(&mut out, b"cache-control", b"no-cache");
    out.extend_from_slice(b"\r\n");
    let mut ev = std::mem::take(&mut bufs.scratch);
    let mut ok = true;
    loop {
        ev.clear();
        let Some(delay) = s.next_event(&mut ev) else {
            break;
        };
        if !delay.is_zero() {
            // Flush what is pending (the head, earlier events) before waiting.
            if !out.is_empty() {
                let (r, b) = netio::write_vec(client, out, netio::after(timeout)).await;
                out = b;
                if r.is_err() {
                    ok = false;
                    break;
                }
            }
            monoio::time::sleep(delay).await;
        }
        write_chunk_header(&mut out, ev.len());
        out.extend_from_slice(&ev);
        out.extend_from_slice(b"\r\n");
        // Without pacing, batch events up to 16 KiB per write, as a provider's TLS records do.
        if out.len() >= 16 * 1024 {
            let (r, b) = netio::write_vec(client, out, netio::after(timeout)).await;
            out = b;
            if r.is_err() {
                ok = false;
                break;
            }
        }
    }
    bufs.scratch = ev;
    let abrupt = s.ends_abruptly();
    if ok && !abrupt {
        out.extend_from_slice(LAST_CHUNK);
    }
    if ok && !out.is_empty() {
        let (r, b) = netio::write_vec(client, out, netio::after(timeout)).await;
        out = b;
        ok = r.is_ok();
    }
    bufs.wbuf = out;
    Outcome {
        status,
        keep_alive: ok && !abrupt,
    }
}
