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
pub mod worker;

use conn::{Bufs, Outcome, Request};
use monoio::net::TcpStream;
use std::future::Future;
use worker::Worker;

/// What a worker serves: one framed request in, one answer out on `stream`.
pub trait Service: 'static {
    /// Serves one request. `req.table` is the snapshot loaded for this request; `bufs` are the
    /// request's borrowed buffers, returned to the worker's pool afterwards.
    fn handle<'a>(
        &'a self,
        w: &'a Worker,
        req: &'a Request<'a>,
        stream: &'a mut TcpStream,
        bufs: &'a mut Bufs,
    ) -> impl Future<Output = Outcome> + 'a;

    /// Housekeeping, about once a second on the worker (off the request path): evicting
    /// stale pooled connections and the like.
    fn tick(&self) {}

    /// The name printed in the `listening on` line.
    const NAME: &'static str;
}
