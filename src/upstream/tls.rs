//! Upstream TLS: rustls over monoio's owned-buffer IO.
//!
//! Trust: webpki-roots always, plus the provider's `ca_file` for private CAs. Certificate and
//! hostname verification are always on; nothing turns them off. SNI is the `base_url` host,
//! ALPN offers only `http/1.1`, TLS 1.2 and 1.3. Each worker builds one `ClientConfig` per
//! provider on first use (from trust roots parsed when the snapshot was built, so no file IO
//! on a worker) and keeps it, so session resumption works and its cache is never shared
//! between cores.
//!
//! [`TlsStream`] pumps records between the socket and a rustls `ClientConnection`: ciphertext
//! is read into a reused buffer and fed to rustls; plaintext is copied out of rustls straight
//! into the caller's buffer (rustls's buffered API costs this one copy; see the closing notes
//! of the TLS issue for why the unbuffered API was not worth it yet).

use crate::netio::{self, IoFail};
use monoio::net::TcpStream;
use monoio::time::Instant;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, BufRead, Write};
use std::sync::Arc;

/// Ciphertext read per socket read: one full TLS record plus overhead.
pub const TLS_READ: usize = 16 * 1024 + 512;

/// Trust roots for one provider: webpki-roots plus its `ca_file`.
pub fn roots(ca_file: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !ca_file.is_empty() {
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        let iter = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("cannot read {ca_file}: {e}"))?;
        for cert in iter {
            let cert = cert.map_err(|e| format!("{ca_file}: bad PEM: {e}"))?;
            store
                .add(cert)
                .map_err(|e| format!("{ca_file}: unusable certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{ca_file}: no certificates found"));
        }
    }
    Ok(Arc::new(store))
}

/// A client config: TLS 1.2 and 1.3, ALPN http/1.1, default in-memory session resumption.
pub fn client_config(roots: Arc<RootCertStore>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    {
        Ok(b) => b,
        // The ring provider supports both versions; this cannot fail with it.
        Err(e) => panic!("rustls ring provider rejected TLS 1.2/1.3: {e}"),
    };
    let mut cfg = builder.with_root_certificates(roots).with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Why a TLS session failed.
#[derive(Debug)]
pub enum TlsFail {
    /// Socket-level failure.
    Io(IoFail),
    /// The peer's certificate or the handshake was refused; the text says why.
    Handshake(String),
}

/// A TLS client session over a monoio TCP stream.
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    /// Ciphertext read but not yet consumed by rustls: `cin[cin_pos..]`.
    cin: Vec<u8>,
    cin_pos: usize,
    /// Ciphertext to send.
    cout: Vec<u8>,
    eof: bool,
}

impl TlsStream {
    /// Runs the handshake before `deadline`.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
        deadline: Instant,
    ) -> Result<TlsStream, TlsFail> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsFail::Handshake(format!("{host:?} is not a valid TLS server name")))?;
        let conn =
            ClientConnection::new(config, name).map_err(|e| TlsFail::Handshake(e.to_string()))?;
        let mut s = TlsStream {
            tcp,
            conn,
            cin: Vec::with_capacity(TLS_READ),
            cin_pos: 0,
            cout: Vec::with_capacity(4096),
            eof: false,
        };
        while s.conn.is_handshaking() {
            s.flush(deadline).await.map_err(TlsFail::Io)?;
            if s.conn.is_handshaking() && s.conn.wants_read() {
                s.fill(deadline).await?;
            }
        }
        s.flush(deadline).await.map_err(TlsFail::Io)?;
        Ok(s)
    }

    /// The TCP stream (for readiness checks and the fd).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Writes whatever ciphertext rustls has queued.
    async fn flush(&mut self, deadline: Instant) -> Result<(), IoFail> {
        while self.conn.wants_write() {
            let mut out = std::mem::take(&mut self.cout);
            out.clear();
            while self.conn.wants_write() {
                if self.conn.write_tls(&mut out).is_err() {
                    return Err(IoFail::Error);
                }
            }
            let (r, b) = netio::write_vec(&mut self.tcp, out, deadline).await;
            self.cout = b;
            r?;
        }
        Ok(())
    }

    /// Reads ciphertext from the socket and feeds it to rustls.
    async fn fill(&mut self, deadline: Instant) -> Result<(), TlsFail> {
        if self.cin_pos >= self.cin.len() {
            self.cin.clear();
            self.cin_pos = 0;
            let buf = std::mem::take(&mut self.cin);
            let (r, b) = netio::read_more(&mut self.tcp, buf, TLS_READ, deadline).await;
            self.cin = b;
            match r {
                Ok(_) => {}
                Err(IoFail::Closed) => {
                    self.eof = true;
                    // Tell rustls about EOF so an unclean close is reported as such.
                    let _ = self.conn.read_tls(&mut io::empty());
                    return self.process();
                }
                Err(f) => return Err(TlsFail::Io(f)),
            }
        }
        while self.cin_pos < self.cin.len() {
            let mut rd = &self.cin[self.cin_pos..];
            match self.conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(n) => self.cin_pos += n,
                // rustls's plaintext buffer is full: let the caller drain it first.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(_) => return Err(TlsFail::Io(IoFail::Error)),
            }
            self.process()?;
        }
        Ok(())
    }

    fn process(&mut self) -> Result<(), TlsFail> {
        self.conn
            .process_new_packets()
            .map(|_| ())
            .map_err(|e| TlsFail::Handshake(e.to_string()))
    }

    /// Appends decrypted bytes to `buf` (at least `min_spare` bytes of room are made).
    /// Returns how many, never 0: a clean or unclean end is `Err(Closed)`.
    pub async fn read_more(
        &mut self,
        mut buf: Vec<u8>,
        min_spare: usize,
        deadline: Instant,
    ) -> (Result<usize, IoFail>, Vec<u8>) {
        if buf.capacity() - buf.len() < min_spare {
            buf.reserve(min_spare);
        }
        loop {
            // Copy plaintext out of rustls's buffer without zero-filling ours first.
            let mut reader = self.conn.reader();
            let r = reader.fill_buf().map(|chunk| {
                let n = chunk.len().min(buf.capacity() - buf.len());
                buf.extend_from_slice(&chunk[..n]);
                n
            });
            match r {
                Ok(0) => return (Err(IoFail::Closed), buf),
                Ok(n) => {
                    reader.consume(n);
                    return (Ok(n), buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return (Err(IoFail::Closed), buf),
            }
            if self.eof {
                return (Err(IoFail::Closed), buf);
            }
            if let Err(f) = self.fill(deadline).await {
                return (Err(fail_io(f)), buf);
            }
            if let Err(f) = self.flush(deadline).await {
                return (Err(f), buf);
            }
        }
    }

    /// Encrypts and sends all of `data`.
    pub async fn write_all(&mut self, data: &[u8], deadline: Instant) -> Result<(), IoFail> {
        let mut off = 0;
        while off < data.len() {
            match self.conn.writer().write(&data[off..]) {
                Ok(n) => off += n,
                Err(_) => return Err(IoFail::Error),
            }
            self.flush(deadline).await?;
        }
        Ok(())
    }
}

fn fail_io(f: TlsFail) -> IoFail {
    match f {
        TlsFail::Io(f) => f,
        TlsFail::Handshake(_) => IoFail::Error,
    }
}
