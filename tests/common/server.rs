//! The `switchyard` binary as a child process: started with a config in a fresh temp dir (or
//! as `mock-upstream`), ready once it prints its `listening on http://ADDR` line, stderr kept
//! in a file, SIGTERM and reaped on drop.

use super::{Conn, START_TIMEOUT};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

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

// ---------------------------------------------------------------------------------------------
// The binary as a child process

/// A running `switchyard` child. SIGTERM and reaped on drop.
pub struct Server {
    child: Child,
    /// The gateway's (or mock provider's) address.
    pub addr: SocketAddr,
    /// The admin listener's address, when one was configured.
    pub admin: Option<SocketAddr>,
    /// Where the child's stderr (its log) goes.
    pub stderr_path: PathBuf,
    dir: PathBuf,
    _stdout: thread::JoinHandle<()>,
}

fn parse_listen_line(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(prefix)?;
    let addr = rest.split(" (").next()?;
    addr.parse().ok()
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
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .env_remove("SWITCHYARD_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchyard");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the child's whole life, so it never blocks on a full pipe.
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining.
                }
            }
        });
        let main_prefix = format!("switchyard {what} listening on http://");
        let admin_prefix = "switchyard admin listening on http://";
        let mut addr = None;
        let mut admin = None;
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
                    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
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
            dir,
            _stdout: reader,
        }
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A new raw client connection to the gateway.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// Sends `sig` to the child without waiting.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.wait().ok()
    }

    /// Stops the child (SIGTERM) and waits for it; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().ok()
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
