//! Where Redis is and how long to wait for it: the `redis://` URL, parsed and resolved once,
//! off the workers, and the client's deadlines and bounds.
//!
//! URL form (the IANA `redis` URI scheme, as redis-cli and the common clients read it):
//! `redis://[[user]:password@]host[:port][/db]`. The user and password are percent-decoded;
//! a password alone authenticates the `default` user (`AUTH password`), a user with it an ACL
//! user (`AUTH user password`, Redis 6+). The port defaults to 6379, the database to 0.
//! `host` is a name, an IPv4 literal or a bracketed IPv6 literal. Refused: `rediss://` (TLS),
//! `unix://`, query parameters, a user without a password.
//!
//! A host name is resolved by [`RedisConfig::from_url`], a blocking call made once at start,
//! before the workers run (an IP literal needs no DNS). The first address is kept: a Redis
//! that moves to another address needs a restart or a reload that builds a new config.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The port when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;
/// Deadline for TCP connect plus the handshake (`AUTH`, `SELECT`, `PING`). Redis sits next to
/// the gateways; a connection that takes longer is not one to queue requests behind.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Deadline for a reply. Redis answers the gateway's commands in well under a millisecond;
/// past this the server or the path to it is stalled, and the request is better served by
/// the caller's fallback than by waiting.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Commands awaiting their reply on one worker's connection before new ones are refused
/// (`RedisError::Busy`): bounds the memory a stalled Redis can pin per worker.
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// A connection that has answered nothing for this long is sent a `PING`, so a Redis that
/// hangs or vanishes without a reset is noticed without traffic.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(1);
/// First pause after a failed connect; doubled at each failure up to [`DEFAULT_BACKOFF_MAX`].
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause between reconnect attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A parsed `redis://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP literal (IPv6 without its brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database index for `SELECT`.
    pub db: u32,
    /// ACL user, when the URL names one.
    pub user: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses a `redis://` URL (see the module doc). The error says what is wrong, never the
/// password.
pub fn parse_url(url: &str) -> Result<RedisUrl, String> {
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(match url.split_once("://") {
            Some(("rediss", _)) => "rediss:// (TLS) is not supported; use redis://".into(),
            Some((scheme, _)) => format!("unsupported scheme {scheme:?}; use redis://"),
            None => "not a redis:// URL".into(),
        });
    };
    if rest.contains(['?', '#']) {
        return Err("query parameters and fragments are not supported".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let Some((u, p)) = info.split_once(':') else {
                return Err("a user needs a password (redis://user:password@host)".into());
            };
            let user = (!u.is_empty()).then(|| percent_decode(u)).transpose()?;
            (user, Some(percent_decode(p)?))
        }
    };
    let (host, port) = split_host_port(hostport)?;
    let db = match path {
        "" => 0,
        d if d.bytes().all(|b| b.is_ascii_digit()) && d.len() <= 9 => {
            d.parse().map_err(|_| format!("bad database {d:?}"))?
        }
        d => return Err(format!("bad database {d:?}: expected /N")),
    };
    Ok(RedisUrl {
        host,
        port,
        db,
        user,
        password,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err("unclosed [ in the host".into());
        };
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err(format!("bad port after [{h}]")),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    Ok((host.to_string(), port))
}

/// `%XX` escapes to bytes (RFC 3986 §2.1); the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => out.push(v),
                None => return Err("bad %-escape in the user or password".into()),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user or password is not UTF-8".into())
}

/// Everything a worker's client needs, shared by all workers.
#[derive(Clone)]
pub struct RedisConfig {
    /// The server's address (resolved once).
    pub addr: SocketAddr,
    /// `host:port/db` for log lines: no credentials.
    pub target: String,
    /// ACL user for `AUTH`.
    pub user: Option<String>,
    /// Password for `AUTH`; never logged.
    pub password: Option<String>,
    /// Database for `SELECT` (0: none sent).
    pub db: u32,
    /// See [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`DEFAULT_COMMAND_TIMEOUT`].
    pub command_timeout: Duration,
    /// See [`DEFAULT_MAX_PENDING`].
    pub max_pending: usize,
    /// See [`DEFAULT_PING_INTERVAL`]; zero turns the pings off.
    pub ping_interval: Duration,
    /// See [`DEFAULT_BACKOFF_MIN`].
    pub backoff_min: Duration,
    /// See [`DEFAULT_BACKOFF_MAX`].
    pub backoff_max: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("addr", &self.addr)
            .field("target", &self.target)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl RedisConfig {
    /// Parses `url` and resolves its host. Blocking when the host is a name (DNS): call it
    /// at start or from a thread that may block, never on a worker.
    pub fn from_url(url: &str) -> Result<RedisConfig, String> {
        let u = parse_url(url)?;
        let addr = match u.host.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, u.port),
            Err(_) => (u.host.as_str(), u.port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {}: {e}", u.host))?
                .next()
                .ok_or_else(|| format!("{} resolved to no address", u.host))?,
        };
        Ok(RedisConfig::new(&u, addr))
    }

    /// A config for `url` at the already-resolved `addr`, with the default deadlines.
    pub fn new(url: &RedisUrl, addr: SocketAddr) -> RedisConfig {
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        RedisConfig {
            addr,
            target: format!("{host}:{}/{}", url.port, url.db),
            user: url.user.clone(),
            password: url.password.clone(),
            db: url.db,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_pending: DEFAULT_MAX_PENDING,
            ping_interval: DEFAULT_PING_INTERVAL,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, db: u32, user: Option<&str>, pw: Option<&str>) -> RedisUrl {
        RedisUrl {
            host: host.into(),
            port,
            db,
            user: user.map(Into::into),
            password: pw.map(Into::into),
        }
    }

    #[test]
    fn parses_urls() {
        let table = [
            ("redis://127.0.0.1", url("127.0.0.1", 6379, 0, None, None)),
            (
                "redis://127.0.0.1:6380/3",
                url("127.0.0.1", 6380, 3, None, None),
            ),
            ("redis://cache:7000/", url("cache", 7000, 0, None, None)),
            ("redis://[::1]:6381/2", url("::1", 6381, 2, None, None)),
            ("redis://[::1]", url("::1", 6379, 0, None, None)),
            (
                "redis://:s3cret@h:1/0",
                url("h", 1, 0, None, Some("s3cret")),
            ),
            (
                "redis://alice:p%40ss%3Aw%2Fd@h/15",
                url("h", 6379, 15, Some("alice"), Some("p@ss:w/d")),
            ),
            // The last @ ends the userinfo (an unescaped @ in a password).
            ("redis://:a@b@h", url("h", 6379, 0, None, Some("a@b"))),
        ];
        for (s, want) in table {
            assert_eq!(parse_url(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refuses_bad_urls() {
        for s in [
            "rediss://h",
            "unix:///tmp/redis.sock",
            "http://h",
            "127.0.0.1:6379",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:65536",
            "redis://h:+1",
            "redis://h:x",
            "redis://h/db1",
            "redis://h/-1",
            "redis://h/1?protocol=resp3",
            "redis://alice@h",
            "redis://:bad%zz@h",
            "redis://[::1",
            "redis://[::1]x",
        ] {
            assert!(parse_url(s).is_err(), "{s} parsed");
        }
    }

    #[test]
    fn the_password_stays_out_of_errors_and_debug() {
        let e = parse_url("redis://u:hunter2@h:99999").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let u = parse_url("redis://u:hunter2@127.0.0.1/1").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        let c = RedisConfig::from_url("redis://u:hunter2@127.0.0.1/1").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.target, "127.0.0.1:6379/1");
        assert_eq!(c.addr, "127.0.0.1:6379".parse().unwrap());
    }
}
