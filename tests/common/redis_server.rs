//! A real `redis-server` as a child process, for the Redis client's tests and bench (which
//! includes this file, so it stands alone): on a free loopback port, without persistence
//! unless asked, ready once it answers `PING` (polled until a deadline, never a fixed sleep),
//! killed and reaped on drop.
//!
//! When `redis-server` is not on `PATH` it is installed first (`apt-get install redis-server`,
//! once per process; the tests run as root on a fresh machine, as CI does), with service
//! starts denied for the install, so no system-wide server is left running: every test starts
//! its own. [`RedisServer::query`] is a plain blocking client for assertions (`INFO`,
//! `CLIENT LIST`), independent of the client under test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchyard::redis::resp::{self, Value};

/// How long a server may take to answer its first `PING`.
pub const REDIS_START_TIMEOUT: Duration = Duration::from_secs(15);
/// Read timeout of [`RawConn`].
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs redis-server from Debian's packages without starting its service: a
/// `policy-rc.d` that denies starts is put in place for the install when none exists.
const INSTALL: &str = r#"set -e
export DEBIAN_FRONTEND=noninteractive
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends redis-server
if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
"#;

fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure `redis-server` runs, installing it when missing (once per process).
pub fn ensure_redis_server() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        if installed() {
            return Ok(());
        }
        eprintln!("redis-server is not on PATH: installing it with apt-get");
        let out = Command::new("sh")
            .arg("-c")
            .arg(INSTALL)
            .output()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        if !out.status.success() || !installed() {
            return Err(format!(
                "installing redis-server failed ({}); install it by hand \
                 (apt-get install redis-server)\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// How to run the server.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Append-only file with `fsync` on every write, in the server's own directory, so data
    /// survives [`RedisServer::restart`].
    pub persist: bool,
    /// `requirepass` (the `default` user's password).
    pub password: Option<String>,
    /// An ACL user with all permissions: (name, password).
    pub user: Option<(String, String)>,
}

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    opts: RedisOptions,
    dir: PathBuf,
}

/// A fresh directory for one server's files (its log, its append-only file).
fn temp_dir() -> PathBuf {
    static UNIQUE: AtomicUsize = AtomicUsize::new(0);
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-redis-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create a temp dir for redis-server");
    dir
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// A server without persistence or passwords.
    pub fn start() -> RedisServer {
        RedisServer::start_with(RedisOptions::default())
    }

    /// A server run as `opts` say, on a free port.
    pub fn start_with(opts: RedisOptions) -> RedisServer {
        ensure_redis_server();
        let dir = temp_dir();
        let mut last = String::new();
        // The port was free when picked; another process may take it before the server binds
        // it, so a failed start is retried on a fresh one.
        for _ in 0..5 {
            let mut s = RedisServer {
                child: None,
                port: free_port(),
                opts: opts.clone(),
                dir: dir.clone(),
            };
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .map_err(|e| format!("redis log: {e}"))?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            // DEBUG SLEEP makes a slow server for the timeout tests.
            .args(["--enable-debug-command", "local"]);
        if self.opts.persist {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(pw) = &self.opts.password {
            cmd.args(["--requirepass", pw]);
        }
        if let Some((user, pw)) = &self.opts.user {
            cmd.args(["--user", user, "on", &format!(">{pw}"), "~*", "&*", "+@all"]);
        }
        let log2 = log.try_clone().map_err(|e| format!("redis log: {e}"))?;
        let child = cmd
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls `PING` until the server answers or the deadline passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("exited with {status}; log:\n{}", self.log()));
                }
            }
            if let Ok(mut c) = self.try_connect() {
                if c.call(&[b"PING"])
                    .is_ok_and(|v| v.as_bytes() == Some(b"PONG"))
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "no PONG within {REDIS_START_TIMEOUT:?}; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT` with the options' credentials, if any, and `/db`.
    pub fn url(&self, db: u32) -> String {
        let auth = match (&self.opts.user, &self.opts.password) {
            (Some((u, p)), _) => format!("{u}:{p}@"),
            (None, Some(p)) => format!(":{p}@"),
            _ => String::new(),
        };
        format!("redis://{auth}127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on port {}: {e}", self.port);
        }
    }

    fn try_connect(&self) -> std::io::Result<RawConn> {
        let s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(RAW_TIMEOUT))?;
        let mut c = RawConn { s, buf: Vec::new() };
        if let Some(pw) = &self.opts.password {
            c.call(&[b"AUTH", pw.as_bytes()])?;
        }
        Ok(c)
    }

    /// A plain blocking connection, authenticated when the server wants a password.
    pub fn connect(&self) -> RawConn {
        self.try_connect()
            .unwrap_or_else(|e| panic!("connect to redis-server: {e}"))
    }

    /// One command on a fresh plain connection.
    pub fn query(&self, args: &[&[u8]]) -> Value {
        self.connect()
            .call(args)
            .unwrap_or_else(|e| panic!("redis query: {e}"))
    }

    /// A field of `INFO` (`connected_clients`, `total_connections_received`), as a number.
    pub fn info(&self, field: &str) -> u64 {
        let v = self.query(&[b"INFO"]);
        let text = String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO:\n{text}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking connection speaking RESP through the library's codec.
pub struct RawConn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// Sends a command without waiting for its reply.
    pub fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut out = Vec::new();
        resp::write_command(&mut out, args);
        self.s.write_all(&out)
    }

    /// Reads the next reply.
    pub fn read_reply(&mut self) -> std::io::Result<Value> {
        loop {
            match resp::parse_reply(&self.buf) {
                Ok(Some((v, n))) => {
                    self.buf.drain(..n);
                    return Ok(v);
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(format!("bad reply: {e}"))),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        self.send(args)?;
        self.read_reply()
    }
}
