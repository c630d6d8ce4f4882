//! Harness of the upstream-client tests (`tests/tls.rs`, `tests/upstream.rs`): the real
//! `switchyard` binary as a child process, a raw HTTP/1.1 client, and scripted upstreams
//! (plain TCP or rustls) that run a test-supplied handler per accepted connection, count the
//! connections they accept and record the requests they read.
//!
//! Nothing here sleeps to wait: the gateway is ready when it prints its listening line, every
//! socket read has a timeout, and upstream handlers report what they saw over channels that
//! the tests wait on with `recv_timeout`.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The client token every config here lists.
pub const TOKEN: &str = "sk-lr-test";
/// The environment variable the test provider reads its key from.
pub const KEY_ENV: &str = "SWITCHYARD_TEST_UPSTREAM_KEY";
/// The provider key the gateway sends upstream.
pub const PROVIDER_KEY: &str = "sk-upstream-test-key-0123456789";
/// Client read timeout: far above every gateway deadline the tests configure.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upstream handler waits for a request or for the gateway to close.
pub const UPSTREAM_WAIT: Duration = Duration::from_secs(10);
/// How long the gateway may take to print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Gateway::wait_log`] waits for a line. Workers hand log lines to a logger thread,
/// so a line about a request may reach stderr just after its response reached the client.
pub const LOG_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Temp files

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-up-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Configs

/// A config with one OpenAI-kind provider `up` (`provider_lines` appended to its table: at least
/// `base_url`), one model `m1` on it (sent upstream as `up-model`), one project `p` with
/// [`TOKEN`], one worker (so pooling is observable) and an admin listener for `/metrics`.
pub fn config(provider_lines: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1

[[providers]]
id = "up"
kind = "openai"
api_key_env = "{KEY_ENV}"
{provider_lines}

[[models]]
id = "m1"
provider = "up"
upstream_id = "up-model"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m1"]
"#
    )
}

/// A TOML basic string literal for a path.
pub fn toml_path(p: &Path) -> String {
    let s = p.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---------------------------------------------------------------------------------------------
// The gateway as a child process

/// A running `switchyard serve`. SIGTERM and reaped on drop.
pub struct Gateway {
    child: Child,
    /// The proxy API address.
    pub addr: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    log: Arc<Log>,
    dir: PathBuf,
    _stdout: thread::JoinHandle<()>,
    _stderr: thread::JoinHandle<()>,
}

/// The gateway's stderr as read so far; the condvar is signalled on every new line.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Condvar,
}

fn parse_listen_line(line: &str, prefix: &str) -> Option<SocketAddr> {
    line.strip_prefix(prefix)?.split(" (").next()?.parse().ok()
}

impl Gateway {
    /// `switchyard serve --config <file>` with `config` as the file and the provider key set.
    /// `config` must ask for an admin listener (see [`config`]).
    pub fn start(config: &str) -> Gateway {
        let dir = temp_dir("gw");
        let path = dir.join("switchyard.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env(KEY_ENV, PROVIDER_KEY)
            .env_remove("SWITCHYARD_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchyard");
        let stdout = child.stdout.take().expect("piped stdout");
        // Drains stderr into `log` (and a file beside the config, kept when a test fails).
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("piped stderr");
        let log_file = dir.join("stderr.log");
        let stderr_reader = {
            let log = log.clone();
            thread::spawn(move || {
                let mut file = std::fs::File::create(log_file).ok();
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    let mut text = log.text.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                    log.grew.notify_all();
                }
            })
        };
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the child's whole life so it never blocks on a full pipe.
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (mut addr, mut admin) = (None, None);
        let mut seen = Vec::new();
        while addr.is_none() || admin.is_none() {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    if let Some(a) =
                        parse_listen_line(&line, "switchyard gateway listening on http://")
                    {
                        addr = Some(a);
                    } else if let Some(a) =
                        parse_listen_line(&line, "switchyard admin listening on http://")
                    {
                        admin = Some(a);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = log.text.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    panic!("gateway did not start; stdout: {seen:?}; stderr:\n{text}");
                }
            }
        }
        Gateway {
            child,
            addr: addr.expect("loop ends with both addresses"),
            admin: admin.expect("loop ends with both addresses"),
            log,
            dir,
            _stdout: reader,
            _stderr: stderr_reader,
        }
    }

    /// Everything the gateway logged so far.
    pub fn stderr(&self) -> String {
        self.log
            .text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (at most [`LOG_WAIT`]) for a log line matching `pred` and returns it; panics with
    /// the whole log, saying what was awaited, when none comes.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LOG_WAIT;
        let mut text = self.log.text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(l) = text.lines().find(|l| pred(l)) {
                return l.to_string();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("no log line {what} within {LOG_WAIT:?}; the log:\n{text}");
            }
            text = self
                .log
                .grew
                .wait_timeout(text, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends one chat completion on a fresh connection and reads the response.
    pub fn chat(&self, stream: bool) -> Response {
        let mut c = self.connect();
        c.send(&chat_request(stream));
        c.response()
    }

    /// The value of an unlabelled counter or gauge from the admin `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let mut c = Client::connect(self.admin);
        c.send(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status, 200, "/metrics: {}", r.dump());
        let text = r.text();
        text.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse::<u64>().ok())?
            })
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// A minimal chat completion request for model `m1`.
pub fn chat_request(stream: bool) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"m1","messages":[{{"role":"user","content":"Hello"}}],"stream":{stream},"max_tokens":16}}"#
    );
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Head and body as received.
    pub raw: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The whole response as received, for failure messages.
    pub fn dump(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// `error.type` of an OpenAI-shaped error body (`{"error":{"message","type","code"}}`),
    /// after checking the message is a non-empty string.
    pub fn openai_error_type(&self) -> String {
        let mut copy = self.body.clone();
        let v = simd_json::to_owned_value(&mut copy)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", self.dump()));
        use simd_json::prelude::*;
        let err = v
            .get("error")
            .unwrap_or_else(|| panic!("no `error` object: {}", self.dump()));
        assert!(
            err.get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| !m.is_empty()),
            "no error.message: {}",
            self.dump()
        );
        err.get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("no error.type: {}", self.dump()))
            .to_string()
    }

    /// `error.message` of an OpenAI-shaped error body.
    pub fn openai_error_message(&self) -> String {
        let mut copy = self.body.clone();
        let v = simd_json::to_owned_value(&mut copy)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", self.dump()));
        use simd_json::prelude::*;
        v.get("error")
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or_else(|| panic!("no error.message: {}", self.dump()))
            .to_string()
    }
}

/// A raw client connection to the gateway.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Every byte received so far (for failure messages).
    pub received: Vec<u8>,
}

/// Why a read found nothing more.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// EOF or reset.
    Closed,
    /// Nothing within the read timeout.
    Timeout,
}

impl Client {
    /// Connects with [`READ_TIMEOUT`] on reads and writes.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to gateway");
    }

    /// Closes the socket both ways (the client goes away).
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn fill(&mut self) -> Result<(), Stop> {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) => Err(Stop::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                self.received.extend_from_slice(&tmp[..n]);
                Ok(())
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Err(Stop::Timeout)
            }
            Err(_) => Err(Stop::Closed),
        }
    }

    /// Reads until everything received contains `needle`; panics with what arrived if the
    /// connection ends or goes quiet first.
    pub fn read_until(&mut self, needle: &[u8]) {
        while !contains(&self.received, needle) {
            if let Err(stop) = self.fill() {
                panic!(
                    "{stop:?} before {:?} arrived; received {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.received)
                );
            }
        }
    }

    /// Reads one whole response (Content-Length, chunked or close-delimited body).
    pub fn read_response(&mut self) -> Result<Response, (Stop, Vec<u8>)> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().map_err(|s| (s, self.received.clone()))?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut raw: Vec<u8> = self.buf.drain(..head_end).collect();
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                match decode_chunked(&self.buf) {
                    Ok(Some((body, used))) => {
                        raw.extend(self.buf.drain(..used));
                        break body;
                    }
                    Ok(None) => {}
                    Err(()) => panic!(
                        "bad chunked framing: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                }
                self.fill().map_err(|s| (s, self.received.clone()))?;
            }
        } else if let Some(cl) = get("content-length") {
            let n: usize = cl.parse().expect("numeric content-length");
            while self.buf.len() < n {
                self.fill().map_err(|s| (s, self.received.clone()))?;
            }
            let body: Vec<u8> = self.buf.drain(..n).collect();
            raw.extend_from_slice(&body);
            body
        } else {
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(Stop::Closed) => break,
                    Err(s) => return Err((s, self.received.clone())),
                }
            }
            let body = std::mem::take(&mut self.buf);
            raw.extend_from_slice(&body);
            body
        };
        Ok(Response {
            status,
            headers,
            body,
            raw,
        })
    }

    /// Reads one response, panicking with what arrived if there is none.
    pub fn response(&mut self) -> Response {
        match self.read_response() {
            Ok(r) => r,
            Err((stop, got)) => panic!(
                "no whole response ({stop:?}); received {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Decodes a whole chunked body at the start of `buf`: `Ok(Some((body, bytes used)))`,
/// `Ok(None)` if incomplete, `Err` if malformed.
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(le) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + le]).map_err(|_| ())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ())?;
        pos += le + 2;
        if size == 0 {
            loop {
                let Some(le) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += le + 2;
                if le == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(());
        }
        pos += size + 2;
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted upstreams

/// A request the upstream read.
#[derive(Debug, Clone)]
pub struct UpRequest {
    /// `POST /v1/chat/completions HTTP/1.1`.
    pub request_line: String,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length framed; the gateway always sends one).
    pub body: Vec<u8>,
}

impl UpRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked for a stream.
    pub fn wants_stream(&self) -> bool {
        contains(&self.body, b"\"stream\":true")
    }
}

/// What an upstream handler saw when it waited for the gateway to close its connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Peer {
    /// A read returned end-of-stream or a reset: the gateway closed the connection.
    Closed,
    /// The connection stayed open, silent, for the whole wait.
    StillOpen,
    /// The gateway sent more bytes.
    SentData,
}

/// One accepted upstream connection, plain or TLS, handed to the test's handler.
pub struct UpConn<S: Read + Write> {
    stream: S,
    buf: Vec<u8>,
    /// Position of this connection in accept order, from 0.
    pub index: usize,
    requests: Arc<Mutex<Vec<UpRequest>>>,
}

impl<S: Read + Write> UpConn<S> {
    /// Reads one request; `None` if the gateway closed the connection (or went silent for
    /// [`UPSTREAM_WAIT`]) first. Each request read is recorded on the upstream.
    pub fn read_request(&mut self) -> Option<UpRequest> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            if !self.fill() {
                return None;
            }
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        let req = UpRequest {
            request_line,
            headers,
            body,
        };
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.clone());
        Some(req)
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Writes bytes (one `write_all`, then a flush). False if the gateway is gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok() && self.stream.flush().is_ok()
    }

    /// Waits (bounded by the socket's read timeout, [`UPSTREAM_WAIT`]) for the gateway to
    /// close this connection.
    pub fn wait_closed(&mut self) -> Peer {
        let mut tmp = [0u8; 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => Peer::Closed,
            Ok(_) => Peer::SentData,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Peer::StillOpen
            }
            // Reset, or (TLS) an unclean end of stream.
            Err(_) => Peer::Closed,
        }
    }

    /// The stream underneath (for TLS session details).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Answers requests as an OpenAI provider would until the gateway closes: a chat
    /// completion JSON with Content-Length, or (for `"stream":true`) an SSE stream, chunked.
    pub fn serve_openai(&mut self) {
        while let Some(req) = self.read_request() {
            let out = if req.wants_stream() {
                let mut o = sse_head();
                for ev in SSE_EVENTS {
                    o.extend_from_slice(&chunk(ev.as_bytes()));
                }
                o.extend_from_slice(b"0\r\n\r\n");
                o
            } else {
                json_response(CHAT_JSON)
            };
            if !self.write(&out) {
                return;
            }
        }
    }
}

/// The chat completion every well-behaved upstream answers.
pub const CHAT_JSON: &str = r#"{"id":"chatcmpl-up1","object":"chat.completion","created":1700000000,"model":"up-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hi from upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#;

/// The SSE events every well-behaved upstream streams, each its own HTTP chunk.
pub const SSE_EVENTS: [&str; 3] = [
    "data: {\"id\":\"chatcmpl-up1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-up1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

/// A 200 with a JSON body and Content-Length.
pub fn json_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The head of a chunked SSE response.
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()
}

/// `data` as one HTTP chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut o = format!("{:x}\r\n", data.len()).into_bytes();
    o.extend_from_slice(data);
    o.extend_from_slice(b"\r\n");
    o
}

/// A listening upstream: counts accepted connections and records requests; every accepted
/// connection runs the handler in its own thread.
pub struct Upstream {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<UpRequest>>>,
}

impl Upstream {
    /// A plain-TCP upstream on 127.0.0.1:0 running `handler` per connection.
    pub fn plain<F>(handler: F) -> Upstream
    where
        F: Fn(&mut UpConn<TcpStream>) + Send + Sync + 'static,
    {
        Upstream::start(move |tcp, index, requests| {
            let mut c = UpConn {
                stream: tcp,
                buf: Vec::new(),
                index,
                requests,
            };
            handler(&mut c);
        })
    }

    /// An upstream on 127.0.0.1:0 that hands each accepted socket (read and write timeouts
    /// set to [`UPSTREAM_WAIT`]) with its accept index to `serve`, in its own thread.
    pub fn start<F>(serve: F) -> Upstream
    where
        F: Fn(TcpStream, usize, Arc<Mutex<Vec<UpRequest>>>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let accepts = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let serve = Arc::new(serve);
        {
            let accepts = accepts.clone();
            let requests = requests.clone();
            // The accept loop lives as long as the test process; its threads end with it.
            thread::spawn(move || {
                for tcp in listener.incoming() {
                    let Ok(tcp) = tcp else { continue };
                    let index = accepts.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp.set_read_timeout(Some(UPSTREAM_WAIT));
                    let _ = tcp.set_write_timeout(Some(UPSTREAM_WAIT));
                    let _ = tcp.set_nodelay(true);
                    let serve = serve.clone();
                    let requests = requests.clone();
                    thread::spawn(move || serve(tcp, index, requests));
                }
            });
        }
        Upstream {
            addr,
            accepts,
            requests,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Requests read so far, in order.
    pub fn requests(&self) -> Vec<UpRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// Builds an [`UpConn`] over any stream (the TLS upstream wraps its sockets itself).
pub fn up_conn<S: Read + Write>(
    stream: S,
    index: usize,
    requests: Arc<Mutex<Vec<UpRequest>>>,
) -> UpConn<S> {
    UpConn {
        stream,
        buf: Vec::new(),
        index,
        requests,
    }
}

impl UpConn<TcpStream> {
    /// Half-closes the write side: the end of a close-delimited body.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}
