//! The server side: the listening sockets (`listen`), one pinned monoio runtime per core
//! (`worker`), the keep-alive loop that frames requests (`conn`), and the writers of whole
//! answers and errors (`respond`).
//!
//! The worker runs a [`Service`] and knows nothing of what it serves: the gateway (`proxy`)
//! and the mock provider's own server (`mock::serve`) are both services. A service instance
//! is made per worker, so whatever it keeps (an upstream pool, TLS configs) is the core's own
//! and needs no lock.

pub mod conn;
pub mod listen;
pub mod respond;
pub mod slot;
pub mod worker;

use crate::endpoint::Protocol;
use crate::error::Error;
use conn::{Bufs, Incoming, Outcome, Request};
use monoio::net::TcpStream;
use std::future::Future;
use std::time::Instant;
use worker::Worker;

/// A request refused on its head: the error, and the protocol whose shape it is answered in.
#[derive(Debug)]
pub struct Refusal {
    /// What is wrong.
    pub err: Error,
    /// The shape of the answer.
    pub protocol: Protocol,
}

/// What a worker serves: one framed request in, one answer out on `stream`.
///
/// Two phases, because a body is the expensive part of a request: [`Service::admit`] sees the
/// head alone, before a byte of the body is read or any memory is set aside for it, so a
/// request that will be refused anyway (no token, unknown route) costs a head, not a body.
pub trait Service: 'static {
    /// What [`Service::admit`] found out and [`Service::handle`] needs (the gateway: endpoint
    /// and project).
    type Admitted;

    /// Checks a request on its head alone. A refusal is answered by the connection, which
    /// closes unless the request's body was already wholly buffered (it is never read).
    fn admit(
        &self,
        w: &Worker,
        req: &Incoming<'_>,
        bufs: &mut Bufs,
    ) -> Result<Self::Admitted, Refusal>;

    /// A request the connection answered with `status` itself, so [`Service::handle`] never
    /// saw it: [`Service::admit`] refused it (or it was a POST without a length), and
    /// `admitted` is None; or it was let in and its body failed (413, 408, 503 shed), and
    /// `admitted` is its admission. For the service's own accounting (the gateway's metrics
    /// and usage ledger). `started` is when its head was complete.
    fn refused(
        &self,
        _w: &Worker,
        _req: &Incoming<'_>,
        _admitted: Option<&Self::Admitted>,
        _status: u16,
        _started: Instant,
    ) {
    }

    /// Serves one admitted request. `req.table` is the snapshot loaded for this request;
    /// `bufs` are the request's borrowed buffers, returned to the worker's pool afterwards.
    fn handle<'a>(
        &'a self,
        w: &'a Worker,
        req: &'a Request<'a>,
        admitted: Self::Admitted,
        stream: &'a mut TcpStream,
        bufs: &'a mut Bufs,
    ) -> impl Future<Output = Outcome> + 'a;

    /// Housekeeping, about once a second on the worker (off the request path) while
    /// [`Service::wants_tick`] says so: evicting stale pooled connections and the like.
    fn tick(&self) {}

    /// Whether [`Service::tick`] has work (the gateway: its upstream pool holds connections).
    /// The service rings [`crate::chores::ring`] when this turns true, so an idle worker keeps
    /// no periodic timer.
    fn wants_tick(&self) -> bool {
        false
    }

    /// The name printed in the `listening on` line.
    const NAME: &'static str;
}
