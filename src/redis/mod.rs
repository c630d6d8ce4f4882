//! The Redis connection layer: what the shared Responses store and the shared limit and
//! budget counters (`[state] backend = "redis"`) are built on.
//!
//! - [`resp`]: the RESP2 codec, pure (commands out, replies in, split anywhere).
//! - [`config`]: the `redis://` URL, resolved once at start, and the deadlines and bounds.
//! - [`client`]: [`Redis`], one per worker, made with the worker's service and started inside
//!   its runtime: a single connection shared by the worker's tasks, commands pipelined on it,
//!   every call bounded by `command_timeout`, reconnecting in the background with capped
//!   exponential backoff.
//! - [`health`]: [`Health`], shared by the workers' clients, readable from any thread.
//!
//! Calls never wait on a Redis that is known to be down: they fail with a [`RedisError`] at
//! once, or within `command_timeout` when it turns slow, and the caller decides what a missing
//! Redis means for its request. See `docs/architecture.md` ("Redis") for why the client runs
//! on the workers rather than on a thread of its own.

pub mod client;
pub mod config;
pub mod health;
pub mod resp;

pub use client::{Redis, RedisStats};
pub use config::{RedisConfig, RedisUrl};
pub use health::Health;
pub use resp::Value;

/// Why a call got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisError {
    /// Not connected (Redis is down or refusing the handshake; retried in the background),
    /// or the connection was lost before the reply: the command may or may not have run.
    Unavailable,
    /// No reply within `command_timeout`. The command may still run. The connection is
    /// replaced, and the calls queued behind this one fail the same way.
    Timeout,
    /// `max_pending` replies are already due on this worker's connection.
    Busy,
    /// The server's reply did not parse; the connection was closed.
    Protocol,
    /// The server answered with an error reply (`ERR ...`, `WRONGTYPE ...`): its text.
    Server(String),
    /// A command with no arguments (Redis answers nothing to one, so it is never sent).
    EmptyCommand,
}

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisError::Unavailable => f.write_str("redis unavailable"),
            RedisError::Timeout => f.write_str("redis timed out"),
            RedisError::Busy => f.write_str("too many redis commands pending"),
            RedisError::Protocol => f.write_str("malformed redis reply"),
            RedisError::Server(m) => write!(f, "redis error: {m}"),
            RedisError::EmptyCommand => f.write_str("empty redis command"),
        }
    }
}

impl std::error::Error for RedisError {}
