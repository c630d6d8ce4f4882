//! The `switchyard` binary as a child process: started with a config in a fresh temp dir (or
//! as `mock-upstream`), ready once it prints its `listening on http://ADDR` line, SIGTERM and
//! reaped on drop.
//!
//! Its stderr (the log) is read through a pipe as it is written, so a test can wait for a line
//! ([`Server::wait_log`]) instead of sleeping. Workers log asynchronously (batched, flushed
//! every 100 ms, at once on warnings, fully at exit), so a line about a request may reach
//! stderr after the response reached the client: wait for it, or [`Server::stop`] first.

use super::{chat_body, post, roundtrip, Conn, Response, CHAT, START_TIMEOUT, TOKEN};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long [`Server::wait_log`] waits for a line.
pub const LOG_WAIT: Duration = Duration::from_secs(10);

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-test-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The child's stderr as read so far; the condvar is signalled on every new line.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Condvar,
}

impl Log {
    fn text(&self) -> std::sync::MutexGuard<'_, String> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running `switchyard` child. SIGTERM and reaped on drop.
pub struct Server {
    child: Child,
    /// The gateway's (or mock provider's) address.
    pub addr: SocketAddr,
    /// The admin listener's address, when one was configured.
    pub admin: Option<SocketAddr>,
    /// A copy of the child's stderr, kept in the temp dir when a test fails.
    pub stderr_path: PathBuf,
    log: Arc<Log>,
    dir: PathBuf,
    _stdout: thread::JoinHandle<()>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

fn parse_listen_line(line: &str, prefix: &str) -> Option<SocketAddr> {
    line.strip_prefix(prefix)?.split(" (").next()?.parse().ok()
}

impl Server {
    /// `switchyard serve --config <file>` with `config` as the file and `envs` set.
    /// Waits for the gateway line, and for the admin line when `config` has `admin_listen`.
    pub fn serve(config: &str, envs: &[(&str, &str)]) -> Server {
        let dir = temp_dir("serve");
        let path = dir.join("switchyard.toml");
        std::fs::write(&path, config).expect("write config");
        let wants_admin = config
            .lines()
            .any(|l| l.trim_start().starts_with("admin_listen") && !l.contains("\"\""));
        let args = vec![
            "serve".to_string(),
            "--config".to_string(),
            path.display().to_string(),
        ];
        Server::start(dir, &args, envs, "gateway", wants_admin)
    }

    /// `switchyard serve` with the embedded config (built-in mock, token `sk-lr-dev`).
    pub fn serve_embedded() -> Server {
        let dir = temp_dir("embedded");
        let args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--workers",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Server::start(dir, &args, &[], "gateway", true)
    }

    /// `switchyard mock-upstream --listen 127.0.0.1:0`.
    pub fn mock_upstream() -> Server {
        let dir = temp_dir("mock");
        let args: Vec<String> = ["mock-upstream", "--listen", "127.0.0.1:0", "--workers", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Server::start(dir, &args, &[], "mock provider", false)
    }

    fn start(
        dir: PathBuf,
        args: &[String],
        envs: &[(&str, &str)],
        what: &str,
        wants_admin: bool,
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        // Its own working directory: the embedded conversation store (`switchyard-state`) is
        // relative to it, and two processes cannot open one store.
        cmd.args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("SWITCHYARD_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchyard");

        // Drains stderr into `log` and a file, for the child's whole life.
        let log = Arc::new(Log::default());
        let stderr_path = dir.join("stderr.log");
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_reader = {
            let (log, path) = (log.clone(), stderr_path.clone());
            thread::spawn(move || {
                let mut file = std::fs::File::create(path).ok();
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    let mut text = log.text();
                    text.push_str(&line);
                    text.push('\n');
                    log.grew.notify_all();
                }
            })
        };

        // Drains stdout for the child's whole life, so it never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Nobody listens once the server is up; keep draining.
                let _ = tx.send(line);
            }
        });

        let main_prefix = format!("switchyard {what} listening on http://");
        let admin_prefix = "switchyard admin listening on http://";
        let (mut addr, mut admin) = (None, None);
        let mut seen = Vec::new();
        while addr.is_none() || (wants_admin && admin.is_none()) {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    if let Some(a) = parse_listen_line(&line, &main_prefix) {
                        addr = Some(a);
                    } else if let Some(a) = parse_listen_line(&line, admin_prefix) {
                        admin = Some(a);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = stderr_reader.join();
                    let log = log.text().clone();
                    panic!(
                        "switchyard {args:?} did not print its listening line(s); stdout: {seen:?}; stderr:\n{log}"
                    );
                }
            }
        }
        Server {
            child,
            addr: addr.expect("loop ends with an address"),
            admin,
            stderr_path,
            log,
            dir,
            _stdout: stdout_reader,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Everything the child wrote to stderr so far (all of it once it was stopped).
    pub fn stderr(&self) -> String {
        self.log.text().clone()
    }

    /// Waits (at most [`LOG_WAIT`]) for a log line matching `pred` and returns it; panics with
    /// the whole log, saying what was awaited, when none comes.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LOG_WAIT;
        let mut text = self.log.text();
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

    /// The child's process id (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new raw client connection to the gateway.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// Sends one chat completion for `model` ([`chat_body`]) with [`TOKEN`] on a fresh
    /// connection and reads the response.
    pub fn chat(&self, model: &str, stream: bool) -> Response {
        roundtrip(self.addr, &post(CHAT, TOKEN, &chat_body(model, stream), ""))
    }

    /// The admin listener's address; panics when the config has none.
    pub fn admin(&self) -> SocketAddr {
        self.admin
            .expect("this server has no admin listener (set admin_listen)")
    }

    /// The value of an unlabelled counter or gauge from the admin `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text();
        metric_sum(&text, name).unwrap_or_else(|| panic!("no metric {name} in:\n{text}")) as u64
    }

    /// The admin listener's `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let mut c = Conn::connect(self.admin());
        c.send(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .expect("send to admin");
        let r = c.response();
        assert_eq!(r.status, 200, "/metrics: {}", r.dump());
        r.text()
    }

    /// The child's resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in:\n{status}"))
    }

    /// Sends `sig` to the child without waiting.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the child to exit, then for its stderr to be read to the end.
    pub fn wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.wait().ok();
        if let Some(t) = self.stderr_reader.take() {
            let _ = t.join();
        }
        status
    }

    /// Stops the child (SIGTERM) and waits for it; returns its exit status. Afterwards
    /// [`Server::stderr`] holds every line it wrote.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
        }
        self.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The sum of every sample of `selector` in Prometheus text: a bare name matches the sample of
/// that name and every labelled one; `name{a="b"}` matches the samples whose labels include
/// each `a="b"` given. `None` when nothing matches.
pub fn metric_sum(text: &str, selector: &str) -> Option<f64> {
    let (name, want) = match selector.split_once('{') {
        Some((n, rest)) => (n, rest.trim_end_matches('}')),
        None => (selector, ""),
    };
    let wanted: Vec<&str> = want.split(',').filter(|s| !s.is_empty()).collect();
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let have: Vec<&str> = labels.split(',').collect();
        if wanted.iter().all(|w| have.contains(w)) {
            if let Ok(v) = value.parse::<f64>() {
                *found.get_or_insert(0.0) += v;
            }
        }
    }
    // A family with no sample yet counts zero.
    let declared = text.lines().any(|l| {
        l.strip_prefix("# TYPE ")
            .and_then(|r| r.split(' ').next())
            .is_some_and(|n| n == name)
    });
    found.or(declared.then_some(0.0))
}
