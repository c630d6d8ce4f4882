//! The upstream HTTP/1.1 client: one per worker, pooled keep-alive connections to each
//! provider, deadlines on connect and first byte, strict response parsing.
//!
//! An [`Exchange`] is one request on one connection. It is sent whole (head and body in one
//! write), the response head is read within `first_byte_timeout` (1xx skipped), and the body
//! is then either read whole ([`Exchange::read_body`]) or relayed piece by piece by `relay`.
//! A request on a pooled connection that fails before any response byte arrived is retried
//! once on a fresh connection: the provider closed the idle connection, not the request.
//!
//! [`Upstream`] is what one worker's gateway keeps for it: the pool and the TLS client
//! configs. Requests take it, the provider and the counters they bump, never the worker.
//! A `kind = "mock"` provider is connected to in process ([`MockConn`]): its answer is read
//! through the same [`Exchange`] and relay as a socket's.

pub mod pool;
pub mod tls;

use crate::error::{Error, ErrorKind};
use crate::http1::{self, ChunkedDecoder, ResponseFraming, ResponseHead};
use crate::metrics::{CoreStats, Counter};
use crate::mock::wire::MockConn;
use crate::netio::{self, IoFail};
use crate::route::Provider;
use monoio::net::TcpStream;
use pool::Pool;
use std::cell::RefCell;
use std::sync::Arc;

/// Largest upstream response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Largest error body read from a non-2xx upstream answer (the rest is not read and the
/// connection is dropped).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// One worker's upstream client state.
#[derive(Default)]
pub struct Upstream {
    /// Idle keep-alive connections.
    pub pool: Pool,
    /// TLS client configs, one per provider trust store, built on first use and kept so
    /// session resumption works without sharing a cache between cores.
    tls: RefCell<Vec<(usize, Arc<rustls::ClientConfig>)>>,
}

/// TLS configs kept per worker; configs of replaced snapshots are dropped past this (reloads).
const MAX_TLS_CONFIGS: usize = 64;

impl Upstream {
    /// The TLS client config for a provider's trust roots.
    pub fn tls_config(&self, roots: &Arc<rustls::RootCertStore>) -> Arc<rustls::ClientConfig> {
        let key = Arc::as_ptr(roots) as usize;
        let mut cache = self.tls.borrow_mut();
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let c = tls::client_config(roots.clone());
        if cache.len() >= MAX_TLS_CONFIGS {
            cache.remove(0);
        }
        cache.push((key, c.clone()));
        c
    }
}

/// An upstream connection: plain, TLS, or the in-process mock.
pub enum UpstreamStream {
    /// `http://`
    Plain(TcpStream),
    /// `https://`
    Tls(Box<tls::TlsStream>),
    /// `kind = "mock"`: answered in process.
    Mock(Box<MockConn>),
}

impl UpstreamStream {
    /// Appends response bytes (decrypted) to `buf`; see [`netio::read_more`].
    pub async fn read_more(
        &mut self,
        buf: Vec<u8>,
        min_spare: usize,
        deadline: monoio::time::Instant,
    ) -> (Result<usize, IoFail>, Vec<u8>) {
        match self {
            UpstreamStream::Plain(s) => netio::read_more(s, buf, min_spare, deadline).await,
            UpstreamStream::Tls(s) => s.read_more(buf, min_spare, deadline).await,
            UpstreamStream::Mock(m) => {
                let mut buf = buf;
                let r = m.read_more(&mut buf, deadline).await;
                (r, buf)
            }
        }
    }

    /// [`read_more`](Self::read_more) for a caller that also waits on its own timer for
    /// `deadline` (a stream's one stall timer): a plain socket reads with no timer of its own
    /// (one per event is what the caller's saves); TLS and the mock keep theirs.
    pub async fn read_more_watched(
        &mut self,
        buf: Vec<u8>,
        min_spare: usize,
        deadline: monoio::time::Instant,
    ) -> (Result<usize, IoFail>, Vec<u8>) {
        match self {
            UpstreamStream::Plain(s) => netio::read_some(s, buf, min_spare).await,
            _ => self.read_more(buf, min_spare, deadline).await,
        }
    }

    /// Sends all of `buf` (encrypted when TLS); hands the buffer back.
    pub async fn write_vec(
        &mut self,
        buf: Vec<u8>,
        deadline: monoio::time::Instant,
    ) -> (Result<(), IoFail>, Vec<u8>) {
        match self {
            UpstreamStream::Plain(s) => {
                let (r, b) = netio::write_all(s, buf, deadline).await;
                (r, b.unwrap_or_default())
            }
            UpstreamStream::Tls(s) => {
                let r = s.write_all(&buf, deadline).await;
                (r, buf)
            }
            UpstreamStream::Mock(m) => {
                m.write_request(&buf);
                (Ok(()), buf)
            }
        }
    }

    /// The TCP socket underneath (none for the mock).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            UpstreamStream::Plain(s) => Some(s),
            UpstreamStream::Tls(s) => Some(s.tcp()),
            UpstreamStream::Mock(_) => None,
        }
    }

    /// Whether this is a TLS session.
    pub fn is_tls(&self) -> bool {
        matches!(self, UpstreamStream::Tls(_))
    }
}

/// One request/response on one upstream connection.
pub struct Exchange {
    /// The connection.
    pub conn: UpstreamStream,
    /// Its pool key.
    pub key: u64,
    /// The parsed response head; spans point into `buf`.
    pub head: ResponseHead,
    /// Response bytes read so far: the head at `buf[..head.head_len]`, then body bytes.
    pub buf: Vec<u8>,
    /// Gaps between the reads of a relayed stream, for the metrics.
    pub gaps: crate::metrics::hist::Gaps,
}

/// Sends `req` (a whole request: head and body) to `provider` and reads the response head,
/// giving up at once when the client closes its connection meanwhile. `ubuf` is the
/// connection's reused upstream buffer; on error it is returned for reuse.
pub async fn send(
    up: &Upstream,
    stats: &CoreStats,
    provider: &Provider,
    req: &mut Vec<u8>,
    ubuf: Vec<u8>,
    client: &TcpStream,
) -> Result<Exchange, (Error, Vec<u8>)> {
    let mut ubuf = ubuf;
    let key = provider.pool_key;
    // One retry, only for a pooled connection that turned out dead before answering.
    for attempt in 0..2 {
        let pooled = provider.mock.is_none().then(|| up.pool.take(key)).flatten();
        let (conn, reused) = match pooled {
            Some(c) if attempt == 0 => (c, true),
            _ => {
                let connecting = connect(up, stats, provider);
                let res = monoio::select! {
                    r = connecting => r,
                    _ = netio::client_gone_later(client) => Err(client_closed()),
                };
                match res {
                    Ok(c) => (c, false),
                    Err(e) => return Err((e, ubuf)),
                }
            }
        };
        if reused {
            stats.inc(Counter::UpstreamReused);
        }
        let mut conn = conn;
        let deadline = netio::after(provider.first_byte_timeout);
        let body = std::mem::take(req);
        let (r, b) = conn.write_vec(body, deadline).await;
        *req = b;
        if let Err(f) = r {
            if reused && f != IoFail::Timeout {
                continue;
            }
            return Err((io_error(provider, f, "sending the request"), ubuf));
        }
        ubuf.clear();
        let waiting = read_head(&mut conn, ubuf, deadline);
        let res = monoio::select! {
            r = waiting => r,
            _ = netio::client_gone_later(client) => Err((HeadFail::ClientGone, Vec::new())),
        };
        match res {
            Ok((head, buf)) => {
                return Ok(Exchange {
                    conn,
                    key,
                    head,
                    buf,
                    gaps: Default::default(),
                })
            }
            Err((HeadFail::ClosedBeforeAnswer, b)) if reused => {
                ubuf = b;
                continue;
            }
            Err((f, b)) => return Err((f.into_error(provider), b)),
        }
    }
    Err((
        Error::upstream(
            ErrorKind::UpstreamConnect,
            format!("provider {} closed the connection", provider.id),
        ),
        ubuf,
    ))
}

fn client_closed() -> Error {
    Error::client(ErrorKind::ClientClosed, "client closed the connection")
}

/// Opens a connection to the provider within `connect_timeout` (TCP and, for `https://`,
/// the TLS handshake).
async fn connect(
    up: &Upstream,
    stats: &CoreStats,
    provider: &Provider,
) -> Result<UpstreamStream, Error> {
    if let Some(opts) = &provider.mock {
        return Ok(UpstreamStream::Mock(Box::new(MockConn::new(opts.clone()))));
    }
    stats.inc(Counter::UpstreamConnects);
    let Some(addr) = provider.addr() else {
        return Err(Error::upstream(
            ErrorKind::UpstreamConnect,
            format!("provider {}: its host did not resolve", provider.id),
        ));
    };
    let deadline = netio::after(provider.connect_timeout);
    let tcp = match monoio::time::timeout_at(deadline, TcpStream::connect_addr(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            s
        }
        Ok(Err(e)) => {
            return Err(Error::upstream(
                ErrorKind::UpstreamConnect,
                format!(
                    "cannot connect to provider {} at {addr}: {}",
                    provider.id,
                    e.kind()
                ),
            ))
        }
        Err(_) => {
            return Err(Error::upstream(
                ErrorKind::UpstreamTimeout,
                format!("connecting to provider {} at {addr} timed out", provider.id),
            ))
        }
    };
    let Some(roots) = &provider.tls_roots else {
        return Ok(UpstreamStream::Plain(tcp));
    };
    let config = up.tls_config(roots);
    let host = provider.url.as_ref().map_or("", |u| u.host.as_str());
    match tls::TlsStream::connect(tcp, config, host, deadline).await {
        Ok(s) => Ok(UpstreamStream::Tls(Box::new(s))),
        Err(tls::TlsFail::Io(IoFail::Timeout)) => Err(Error::upstream(
            ErrorKind::UpstreamTimeout,
            format!("TLS handshake with provider {} timed out", provider.id),
        )),
        Err(tls::TlsFail::Io(_)) => Err(Error::upstream(
            ErrorKind::UpstreamConnect,
            format!(
                "provider {} closed the connection during the TLS handshake",
                provider.id
            ),
        )),
        Err(tls::TlsFail::Handshake(why)) => {
            crate::warn!(
                "provider {}: TLS handshake with {host} failed: {why}",
                provider.id
            );
            Err(Error::upstream(
                ErrorKind::UpstreamConnect,
                format!("TLS handshake with provider {} failed: {why}", provider.id),
            ))
        }
    }
}

fn io_error(provider: &Provider, f: IoFail, doing: &str) -> Error {
    match f {
        IoFail::Timeout => Error::upstream(
            ErrorKind::UpstreamTimeout,
            format!("provider {} timed out {doing}", provider.id),
        ),
        _ => Error::upstream(
            ErrorKind::UpstreamFailed,
            format!("provider {} failed {doing}", provider.id),
        ),
    }
}

enum HeadFail {
    ClientGone,
    ClosedBeforeAnswer,
    Io(IoFail),
    Malformed,
}

impl HeadFail {
    fn into_error(self, provider: &Provider) -> Error {
        match self {
            HeadFail::ClientGone => client_closed(),
            HeadFail::ClosedBeforeAnswer => Error::upstream(
                ErrorKind::UpstreamFailed,
                format!(
                    "provider {} closed the connection without answering",
                    provider.id
                ),
            ),
            HeadFail::Io(f) => io_error(provider, f, "before its first byte"),
            HeadFail::Malformed => Error::upstream(
                ErrorKind::UpstreamFailed,
                format!("provider {} sent a malformed response", provider.id),
            ),
        }
    }
}

async fn read_head(
    conn: &mut UpstreamStream,
    mut buf: Vec<u8>,
    deadline: monoio::time::Instant,
) -> Result<(ResponseHead, Vec<u8>), (HeadFail, Vec<u8>)> {
    loop {
        if !buf.is_empty() {
            match http1::parse_response_head(&buf, MAX_RESPONSE_HEAD, false) {
                Ok(Some(h)) if (100..200).contains(&h.status) => {
                    // 1xx: informational, skip it and parse what follows (RFC 9110 §15.2).
                    buf.drain(..h.head_len);
                    continue;
                }
                Ok(Some(h)) => return Ok((h, buf)),
                Ok(None) => {}
                Err(_) => return Err((HeadFail::Malformed, buf)),
            }
        }
        let (r, b) = conn.read_more(buf, 8192, deadline).await;
        buf = b;
        match r {
            Ok(_) => {}
            Err(IoFail::Closed) if buf.is_empty() => {
                return Err((HeadFail::ClosedBeforeAnswer, buf))
            }
            Err(f) => return Err((HeadFail::Io(f), buf)),
        }
    }
}

impl Exchange {
    /// Reads the whole body (at most `max` bytes) and decodes it. Returns the body range in
    /// `self.buf` and whether the connection may go back to the pool.
    pub async fn read_body(
        &mut self,
        max: usize,
        deadline: monoio::time::Instant,
    ) -> Result<(usize, usize, bool), Error> {
        let start = self.head.head_len;
        let too_big = || Error::upstream(ErrorKind::UpstreamFailed, TOO_LARGE);
        match self.head.framing {
            ResponseFraming::None => Ok((
                start,
                start,
                self.head.keep_alive && self.buf.len() == start,
            )),
            ResponseFraming::Length(n) => {
                let n = n as usize;
                if n > max {
                    return Err(too_big());
                }
                while self.buf.len() < start + n {
                    let need = start + n - self.buf.len();
                    let buf = std::mem::take(&mut self.buf);
                    let (r, b) = self.conn.read_more(buf, need, deadline).await;
                    self.buf = b;
                    r.map_err(body_error)?;
                }
                if self.buf.len() != start + n {
                    return Err(extra_bytes());
                }
                Ok((start, start + n, self.head.keep_alive))
            }
            ResponseFraming::Chunked => {
                let mut dec = ChunkedDecoder::new();
                let mut pos = start; // next undecoded byte
                let mut out = start; // end of decoded payload, compacted in place
                loop {
                    let d = dec.decode_in_place(&mut self.buf[pos..]).map_err(|_| {
                        Error::upstream(
                            ErrorKind::UpstreamFailed,
                            "upstream sent a malformed chunked body",
                        )
                    })?;
                    // Payload now sits at buf[pos..pos+d.payload]; move it down to `out`.
                    self.buf.copy_within(pos..pos + d.payload, out);
                    out += d.payload;
                    pos += d.consumed;
                    if out - start > max {
                        return Err(too_big());
                    }
                    if d.done {
                        if pos != self.buf.len() {
                            return Err(extra_bytes());
                        }
                        return Ok((start, out, self.head.keep_alive));
                    }
                    // Keep the undecoded tail right after the payload, then read more.
                    let tail = self.buf.len() - pos;
                    self.buf.copy_within(pos..pos + tail, out);
                    self.buf.truncate(out + tail);
                    pos = out;
                    let buf = std::mem::take(&mut self.buf);
                    let (r, b) = self.conn.read_more(buf, 16384, deadline).await;
                    self.buf = b;
                    r.map_err(body_error)?;
                }
            }
            ResponseFraming::CloseDelimited => loop {
                if self.buf.len() - start > max {
                    return Err(too_big());
                }
                let buf = std::mem::take(&mut self.buf);
                let (r, b) = self.conn.read_more(buf, 16384, deadline).await;
                self.buf = b;
                match r {
                    Ok(_) => {}
                    Err(IoFail::Closed) => return Ok((start, self.buf.len(), false)),
                    Err(f) => return Err(body_error(f)),
                }
            },
        }
    }

    /// Returns the connection to the worker's pool when `reusable` (never the mock's), else
    /// closes it. Hands back the buffer.
    pub fn finish(self, up: &Upstream, provider: &Provider, reusable: bool) -> Vec<u8> {
        if reusable && !matches!(self.conn, UpstreamStream::Mock(_)) {
            up.pool.put(self.key, self.conn, provider.max_idle);
        }
        self.buf
    }
}

/// Why [`Exchange::read_body`] refused a body past its limit.
const TOO_LARGE: &str = "upstream response body too large";

/// Whether `e` is [`Exchange::read_body`]'s refusal of a body past its limit (the relay then
/// knows a body it could not hold was large, not broken).
pub fn is_too_large(e: &Error) -> bool {
    e.kind == ErrorKind::UpstreamFailed && e.message == TOO_LARGE
}

/// Bytes after a complete response we did not ask for: the upstream's framing cannot be
/// trusted (response splitting), so the answer is refused and the connection dropped.
fn extra_bytes() -> Error {
    Error::upstream(
        ErrorKind::UpstreamFailed,
        "upstream sent bytes after the response body",
    )
}

fn body_error(f: IoFail) -> Error {
    match f {
        IoFail::Timeout => Error::upstream(
            ErrorKind::UpstreamTimeout,
            "upstream response body timed out",
        ),
        _ => Error::upstream(
            ErrorKind::UpstreamFailed,
            "upstream closed the connection mid-body",
        ),
    }
}
