//! Port sharing between processes: a second gateway on a port another one listens on is refused
//! unless it asks to share (`serve --share-port`), and a shared port hands over without a
//! refused request when the first gateway drains on SIGTERM (the zero-downtime upgrade).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

const LISTENING: &str = "switchyard gateway listening on http://";
const ADMIN: &str = "switchyard admin listening on http://";

/// A `switchyard serve` child, killed if a test ends while it runs.
struct Gateway {
    child: Child,
    /// Kept open: the gateway's stdout must stay writable while it runs.
    _stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `switchyard serve` with the embedded config on `listen` and `admin`, and `extra` arguments.
fn serve(listen: &str, admin: &str, extra: &[&str], stderr: Stdio) -> Child {
    // Each its own working directory: two gateways cannot open one embedded store.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cwd = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("listen-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(cwd)
        .args(["serve", "--listen", listen, "--admin-listen", admin])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env_remove("SWITCHYARD_LOG")
        .spawn()
        .unwrap()
}

/// Reads stdout up to the line starting with `prefix`: the address it names, or `None` when
/// stdout ended (the process exited) without one.
fn listening(out: &mut BufReader<ChildStdout>, prefix: &str) -> Option<SocketAddr> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(rest.split_whitespace().next()?.parse().unwrap());
        }
    }
}

/// Starts a gateway and waits for its listening lines (the admin one comes second).
fn start(listen: &str, admin: &str, extra: &[&str]) -> Gateway {
    // stderr is not read while it runs: a chatty gateway must never block on a full pipe.
    let mut child = serve(listen, admin, extra, Stdio::null());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (Some(addr), Some(admin)) = (
        listening(&mut stdout, LISTENING),
        listening(&mut stdout, ADMIN),
    ) else {
        let _ = child.kill();
        panic!("switchyard serve {listen} {extra:?} did not start");
    };
    Gateway {
        child,
        _stdout: stdout,
        addr,
        admin,
    }
}

/// `GET path` with the embedded dev token on a new connection: the status line.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    // A bound on a broken gateway, not synchronisation.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-lr-dev\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_string()
}

#[test]
fn a_second_gateway_on_a_taken_port_is_refused_unless_it_shares_and_takes_over_on_sigterm() {
    // Two workers: the sockets of one process still share the port among themselves.
    let mut first = start("127.0.0.1:0", "127.0.0.1:0", &["--workers", "2"]);
    let (addr, admin) = (first.addr, first.admin);
    assert!(get(addr, "/v1/models").starts_with("HTTP/1.1 200"));

    // A second gateway on the same port: refused, exit 1, one line naming the address and
    // the opt-in. Its stdout is read to its end; a listening line there means it started.
    let mut second = serve(&addr.to_string(), "", &["--workers", "1"], Stdio::piped());
    let mut out = BufReader::new(second.stdout.take().unwrap());
    if let Some(a) = listening(&mut out, LISTENING) {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second gateway started on {a}, which another one listens on");
    }
    let status = second.wait().unwrap();
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on {addr}: another process is listening there"
        )) && err.contains("--share-port"),
        "{err}"
    );

    // The same for the admin listener alone.
    let mut third = serve("127.0.0.1:0", &admin.to_string(), &[], Stdio::piped());
    let mut out = BufReader::new(third.stdout.take().unwrap());
    if let Some(a) = listening(&mut out, ADMIN) {
        let _ = third.kill();
        let _ = third.wait();
        panic!("a second admin listener started on {a}, which another one listens on");
    }
    let status = third.wait().unwrap();
    let mut err = String::new();
    let mut pipe = third.stderr.take().unwrap();
    pipe.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "admin listener: cannot listen on {admin}: another process"
        )),
        "{err}"
    );

    // With --share-port it starts on the same addresses, the admin one included.
    let shared = start(
        &addr.to_string(),
        &admin.to_string(),
        &["--workers", "1", "--share-port"],
    );
    assert_eq!((shared.addr, shared.admin), (addr, admin));

    // SIGTERM to the first: it drains and exits 0; every request after is the second's.
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(
        unsafe { libc::kill(first.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(first.child.wait().unwrap().success());
    for i in 0..20 {
        let status = get(addr, "/v1/models");
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "request {i}: {status:?}"
        );
    }
    assert!(get(admin, "/health").starts_with("HTTP/1.1 200"));
}
