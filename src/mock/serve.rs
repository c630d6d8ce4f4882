//! `switchyard mock-upstream`: the built-in mock provider served over HTTP by the same workers
//! and connection loop as the gateway, for load tests of the gateway and of other clients.
//!
//! It answers the providers' own paths (`/v1/chat/completions`, `/v1/responses`,
//! `/v1/messages`, `/v1/messages/count_tokens`) in their exact shapes; see `mock` for timing,
//! faults and test hooks. The bytes are [`MockWire`]'s, the same the in-process mock hands the
//! gateway's relay. No auth is checked: it is a test double. A stream the mock cuts (`cut-`
//! models, injected faults) ends by closing the connection without the terminating chunk, as a
//! provider dying mid-answer does.

use super::wire::MockWire;
use super::{Mock, MockOptions};
use crate::metrics::Counter;
use crate::netio::{self, IoFail};
use crate::server::conn::{Bufs, Incoming, Outcome, Request};
use crate::server::worker::Worker;
use crate::server::{Refusal, Service};
use monoio::net::TcpStream;

/// The mock provider as a service.
pub struct MockServer {
    opts: MockOptions,
    /// Requests answered by this worker's server, mixed into a set seed.
    answered: std::cell::Cell<u64>,
}

impl MockServer {
    /// A mock server with these options (the seed of the draws is fresh per request unless
    /// `opts.seed` is set).
    pub fn new(opts: MockOptions) -> MockServer {
        MockServer {
            opts,
            answered: std::cell::Cell::new(0),
        }
    }
}

impl Service for MockServer {
    const NAME: &'static str = "mock provider";

    type Admitted = ();

    /// A test double: every request is let in.
    fn admit(&self, _w: &Worker, _req: &Incoming<'_>, _bufs: &mut Bufs) -> Result<(), Refusal> {
        Ok(())
    }

    async fn handle(
        &self,
        w: &Worker,
        req: &Request<'_>,
        _admitted: (),
        client: &mut TcpStream,
        bufs: &mut Bufs,
    ) -> Outcome {
        let timeout = req.table.limits.idle_timeout;
        // A set seed makes the run reproducible (per worker, request by request); without one
        // every request draws a fresh seed.
        let n = self.answered.get();
        self.answered.set(n + 1);
        let mut seed = if self.opts.seed == 0 {
            crate::trace::rand_u64()
        } else {
            self.opts
                .seed
                .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        };
        if seed == 0 {
            seed = 1;
        }
        let m = Mock::new(MockOptions {
            seed,
            ..self.opts.clone()
        });
        let method = req.head.method.as_str().unwrap_or("OTHER");
        let reply = m.handle(method.as_bytes(), req.path(), req.body);
        let stats = w.stats();
        stats.inc(Counter::MockReplies);
        stats.add(Counter::MockOutputTokens, reply.output_tokens);
        if reply.injected {
            stats.inc(Counter::MockInjectedFailures);
        }
        if let Some(s) = &reply.stream {
            if s.ends_abruptly() {
                stats.inc(Counter::MockCutStreams);
            }
            if s.stalls() {
                stats.inc(Counter::MockStalls);
            }
        }
        let status = reply.status;
        let mut wire = MockWire::new(reply);
        let mut out = std::mem::take(&mut bufs.wbuf);
        // The mock paces itself; the deadline only bounds a stalled client.
        let far = netio::after(std::time::Duration::from_secs(24 * 3600));
        let complete = loop {
            out.clear();
            match wire.read_more(&mut out, far).await {
                Ok(_) => {}
                Err(IoFail::Closed) => break true,
                Err(_) => break false,
            }
            let (r, b) = netio::write_vec(client, out, netio::after(timeout)).await;
            out = b;
            if r.is_err() {
                break false;
            }
        };
        bufs.wbuf = out;
        // A cut stream ended without its last chunk: only closing the connection ends it.
        let cut = complete && !wire.ended_cleanly();
        Outcome {
            status,
            keep_alive: complete && !cut,
        }
    }
}
