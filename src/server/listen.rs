//! The gateway's listening sockets: one per worker on the same address, so the kernel spreads
//! connections over the workers (`SO_REUSEPORT`), and never silently on a port another process
//! already serves.
//!
//! `SO_REUSEPORT` alone would let a second `switchyard serve` on a busy port start without a
//! word, and the kernel would then split new connections between the two processes. So before
//! binding, the address is probed with a socket that has `SO_REUSEADDR` but not
//! `SO_REUSEPORT`: Linux refuses that bind (`EADDRINUSE`) while any socket listens on the port,
//! and allows it over connections left in `TIME_WAIT` by a process that exited. A refused
//! probe refuses the start ([`BindError::PortTaken`]). The probe is closed before the workers'
//! sockets bind; port 0 needs none (the first worker socket picks a free port, the others join
//! it).
//!
//! # Zero-downtime upgrade
//!
//! Sharing on purpose is how a running gateway is replaced without refusing a connection:
//!
//! 1. start the new process on the same address with `--share-port`
//!    (`switchyard serve --config FILE --share-port`);
//! 2. wait for its `switchyard gateway listening on http://ADDR` line: both now accept;
//! 3. send `SIGTERM` to the old process: it stops accepting, finishes its in-flight requests
//!    (up to `drain_timeout_ms`) and exits, and the new process takes every new connection.
//!
//! Connections the kernel queued on the old process's sockets but that it had not yet accepted
//! when it closed them are reset; clients retry them as they would any reset connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

/// Pending connections queued per listening socket (the kernel caps it at `somaxconn`).
pub const BACKLOG: libc::c_int = 4096;

/// Why the listeners could not be bound.
#[derive(Debug)]
pub enum BindError {
    /// Another process listens on the address, and sharing was not asked for.
    PortTaken(SocketAddr),
    /// Any other failure of socket, bind or listen.
    Io(SocketAddr, io::Error),
    /// Not an `IP:port` address.
    NotAnAddress(String),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::PortTaken(a) => write!(
                f,
                "cannot listen on {a}: another process is listening there; to share the port with it on purpose (a zero-downtime upgrade), pass --share-port"
            ),
            BindError::Io(a, e) => write!(f, "cannot listen on {a}: {e}"),
            BindError::NotAnAddress(a) => {
                write!(f, "cannot listen on {a:?}: not an address like 127.0.0.1:9464")
            }
        }
    }
}

impl std::error::Error for BindError {}

/// Creates `n` listening sockets on `addr` with `SO_REUSEPORT`, so the kernel spreads
/// connections over the workers. With port 0 the first socket picks the port and the others
/// join it. Unless `share` is set, refuses an address another process already listens on (see
/// the module docs). Returns the sockets and the address actually bound.
pub fn bind_listeners(
    addr: SocketAddr,
    n: usize,
    share: bool,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), BindError> {
    if !share && addr.port() != 0 {
        probe(addr)?;
    }
    let mut out = Vec::with_capacity(n);
    let mut bound = addr;
    for _ in 0..n.max(1) {
        let l = bind_one(bound).map_err(|e| BindError::Io(bound, e))?;
        bound = l.local_addr().map_err(|e| BindError::Io(bound, e))?;
        out.push(l);
    }
    Ok((out, bound))
}

/// The admin listener (`/metrics`, `/health`, `/ready`): one blocking socket, probed and shared
/// like the workers' (an upgrade with `share` shares it with the old process too).
pub fn bind_admin(addr: &str, share: bool) -> Result<std::net::TcpListener, BindError> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| BindError::NotAnAddress(addr.to_string()))?;
    let (ls, bound) = bind_listeners(parsed, 1, share)?;
    let l = ls
        .into_iter()
        .next()
        .ok_or_else(|| BindError::Io(bound, io::Error::other("no listener was bound")))?;
    l.set_nonblocking(false)
        .map_err(|e| BindError::Io(bound, e))?;
    Ok(l)
}

/// Binds (without listening) a socket with `SO_REUSEADDR` only: `EADDRINUSE` means a socket
/// of another process listens on `addr` (or is bound there without sharing).
pub fn probe(addr: SocketAddr) -> Result<(), BindError> {
    let io = |e| BindError::Io(addr, e);
    let fd = socket(addr).map_err(io)?;
    set_flag(&fd, libc::SO_REUSEADDR).map_err(io)?;
    match bind(&fd, addr) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Err(BindError::PortTaken(addr)),
        Err(e) => Err(io(e)),
    }
    // `fd` closes here, before the workers' sockets bind.
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let fd = socket(addr)?;
    set_flag(&fd, libc::SO_REUSEADDR)?;
    set_flag(&fd, libc::SO_REUSEPORT)?;
    bind(&fd, addr)?;
    let listener = std::net::TcpListener::from(fd);
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on our bound socket, which `listener` owns.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// A fresh non-blocking, close-on-exec TCP socket of `addr`'s family.
fn socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); a valid fd is owned by the OwnedFd built below.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nothing else owns; OwnedFd closes it on drop.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_flag(fd: &OwnedFd, opt: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a valid fd and a c_int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a sockaddr of `len` bytes for this family.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &storage as *const _ as *const libc::sockaddr,
            len,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; zeroed is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn workers_of_one_process_share_the_port() {
        let (ls, bound) = bind_listeners(loopback(), 3, false).unwrap();
        assert_ne!(bound.port(), 0);
        assert_eq!(ls.len(), 3);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap(), bound);
        }
    }

    #[test]
    fn a_port_someone_listens_on_is_refused_unless_shared() {
        // Our own earlier listeners stand in for another process: the probe cannot tell.
        let (_first, bound) = bind_listeners(loopback(), 2, false).unwrap();
        match bind_listeners(bound, 1, false) {
            Err(BindError::PortTaken(a)) => assert_eq!(a, bound),
            other => panic!("expected PortTaken, got {other:?}"),
        }
        let msg = BindError::PortTaken(bound).to_string();
        assert!(
            msg.contains(&bound.to_string()) && msg.contains("--share-port"),
            "{msg}"
        );
        let (second, again) = bind_listeners(bound, 2, true).unwrap();
        assert_eq!((second.len(), again), (2, bound));
    }

    #[test]
    fn a_plain_listener_without_reuseport_is_refused_too() {
        let other = std::net::TcpListener::bind(loopback()).unwrap();
        let addr = other.local_addr().unwrap();
        assert!(matches!(
            bind_listeners(addr, 1, false),
            Err(BindError::PortTaken(_))
        ));
        // And sharing cannot force its way in: the kernel needs SO_REUSEPORT on both.
        assert!(matches!(
            bind_listeners(addr, 1, true),
            Err(BindError::Io(..))
        ));
    }

    #[test]
    fn a_free_port_passes_the_probe() {
        let addr = {
            let l = std::net::TcpListener::bind(loopback()).unwrap();
            l.local_addr().unwrap()
        };
        // Closed again: free (a port taken again in between would fail this test, not pass it).
        let (ls, bound) = bind_listeners(addr, 2, false).unwrap();
        assert_eq!((ls.len(), bound), (2, addr));
    }
}
