//! The Responses API state: every `/v1/responses` answer stored under its id in its project's
//! namespace, so `previous_response_id` can be expanded for whichever provider serves the next
//! turn, and `GET`/`DELETE /v1/responses/{id}` (and `/input_items`) can be answered.
//!
//! [`State`] is the one API; a backend sits behind it (`[state] backend`): only the embedded one
//! ([`embedded`], a redb file under `[state] path`) exists now. A backend runs on its own
//! threads, never on a worker: a worker hands it a command through a bounded queue and awaits a
//! [`Reply`], a future woken from the store thread (monoio is built with `sync`, so a waker may be
//! woken from another thread). A full queue fails at once with [`StateErrorKind::Busy`]; a worker
//! never waits for room.
//!
//! Invariants, whatever the backend:
//! - Keys are namespaced by project slug: a project never sees, deletes or continues another's id
//!   (it gets `None`, as for an unknown id).
//! - [`State::put`] answers `Ok` only once the record is durable (committed and fsynced).
//! - A record expires `ttl_s` after it was stored: from then on it is invisible (checked on every
//!   read) and is removed by a background sweep.
//! - `max_bytes` bounds the live records (see [`embedded`] for exactly what is counted): past it
//!   the oldest stored records are evicted, on the write that passed it.
//! - Deleting, expiring or evicting a response leaves its ancestors and descendants alone; a
//!   conversation any of whose turns is gone is `None` (the client must start again, as with an
//!   unknown `previous_response_id`).
//! - A record past [`Options::max_record_bytes`] (or one that could never fit `max_bytes`) is
//!   refused with [`StateErrorKind::TooLarge`] before it reaches the queue.

mod embedded;
mod record;
mod redis;
#[cfg(test)]
mod tests;

use crate::config::{StateBackend, StateConfig};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest record (its fields, the project and the id) stored: 64 MiB. The response object
/// repeats the output, so this admits a turn with tens of MiB of items, and keeps one write from
/// holding the store thread (and the fsync every other put waits on) for long.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Largest conversation [`State::conversation`] assembles: 64 MiB, far past any provider's
/// context, so the store thread never builds an expansion no upstream would take.
pub const MAX_CONVERSATION_BYTES: u64 = 64 << 20;
/// Commands waiting for the store, per queue (writes; reads): past it callers get `Busy`. At a
/// few ms per group commit, 1024 queued writes is seconds of backlog: a store that far behind
/// should shed load, not grow memory.
pub const QUEUE_DEPTH: usize = 1024;
/// Reader threads: reads never wait behind a write's fsync, and two of them overlap a slow page
/// read with the next lookup.
pub const READERS: usize = 2;
/// Most writes committed (and fsynced) together: a burst of puts shares one fsync.
pub const WRITE_BATCH: usize = 128;
/// How often the store looks for expired records.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Most expired records removed in one transaction, so a sweep holds up queued commands for at
/// most one batch; a full batch schedules the next one right after the waiting commands.
pub const SWEEP_BATCH: usize = 256;
/// The embedded store's page cache: recent conversations are read from memory.
pub const CACHE_BYTES: usize = 64 << 20;

/// One turn of a Responses conversation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The response id, `resp_…`.
    pub id: String,
    /// The `previous_response_id` this turn continued.
    pub previous: Option<String>,
    /// The gateway model id that answered.
    pub model: String,
    /// Unix seconds, as the client saw it.
    pub created_at: u64,
    /// `completed` | `failed` | `incomplete`.
    pub status: String,
    /// This turn's input items only, a JSON array (already item-shaped).
    pub input: Vec<u8>,
    /// This turn's output items, a JSON array.
    pub output: Vec<u8>,
    /// The whole response object as the client got it (for `GET`).
    pub response: Vec<u8>,
}

/// What went wrong with the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateErrorKind {
    /// The command queue is full: the store is behind. Nothing was queued.
    Busy,
    /// The record (or the conversation asked for) is past its cap.
    TooLarge,
    /// A record the caller built wrongly: an empty id or project, an empty `previous`, input or
    /// output that is not a JSON array. A gateway bug, never the client's.
    Invalid,
    /// Another process holds the store (at open).
    Locked,
    /// The store's file, or a record in it, is damaged.
    Corrupt,
    /// The store cannot serve: its thread stopped, the disk failed, or the backend is not built.
    Unavailable,
}

/// A store error: its kind and a message for the operator's log (never for a client: it may name
/// paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    /// What happened.
    pub kind: StateErrorKind,
    /// Why, with the file or the record concerned.
    pub message: String,
}

impl StateError {
    /// An error of `kind`.
    pub fn new(kind: StateErrorKind, message: impl Into<String>) -> StateError {
        StateError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state store: {}", self.message)
    }
}

impl std::error::Error for StateError {}

/// Where "now" comes from for expiry: the system clock, or one a test sets.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Unix seconds from the system clock.
    #[default]
    System,
    /// A clock that reads this cell, so tests move time without sleeping.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }
}

/// Tuning past what the config file says; [`Options::default`] is what `serve` uses, tests
/// shrink it.
#[derive(Clone, Debug)]
pub struct Options {
    /// See [`MAX_RECORD_BYTES`].
    pub max_record_bytes: u64,
    /// See [`MAX_CONVERSATION_BYTES`].
    pub max_conversation_bytes: u64,
    /// See [`QUEUE_DEPTH`].
    pub queue_depth: usize,
    /// See [`READERS`] (at least 1).
    pub readers: usize,
    /// See [`WRITE_BATCH`].
    pub write_batch: usize,
    /// See [`SWEEP_EVERY`].
    pub sweep_every: Duration,
    /// See [`SWEEP_BATCH`].
    pub sweep_batch: usize,
    /// See [`CACHE_BYTES`].
    pub cache_bytes: usize,
    /// Verify every page of the file at open (reads the whole file once), so a damaged file is
    /// refused at start instead of failing, or worse, being trusted, later.
    pub verify_on_open: bool,
    /// What expiry reads as now.
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_record_bytes: MAX_RECORD_BYTES,
            max_conversation_bytes: MAX_CONVERSATION_BYTES,
            queue_depth: QUEUE_DEPTH,
            readers: READERS,
            write_batch: WRITE_BATCH,
            sweep_every: SWEEP_EVERY,
            sweep_batch: SWEEP_BATCH,
            cache_bytes: CACHE_BYTES,
            verify_on_open: true,
            clock: Clock::System,
        }
    }
}

/// Counters of what the store holds and has dropped, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Records held, expired ones not yet swept included.
    pub records: u64,
    /// Their bytes, as `max_bytes` counts them.
    pub live_bytes: u64,
    /// Removed by the sweep since open.
    pub expired: u64,
    /// Evicted for `max_bytes` since open.
    pub evicted: u64,
}

/// The handle every worker holds: `Clone + Send + Sync`, cloning is one atomic increment.
#[derive(Clone)]
pub struct State {
    backend: Backend,
}

/// The backends, one per `[state] backend`.
#[derive(Clone)]
enum Backend {
    Embedded(embedded::Embedded),
    Redis(redis::RedisStore),
}

impl State {
    /// Opens the configured backend with the default [`Options`]: for `embedded`, creates the
    /// `path` directory, opens (or creates) the file and starts the store threads. Refuses a
    /// store another process holds ([`StateErrorKind::Locked`]) or a damaged one
    /// ([`StateErrorKind::Corrupt`]) with a message saying what to do.
    pub fn open(cfg: &StateConfig) -> Result<State, StateError> {
        State::open_with(cfg, Options::default())
    }

    /// [`State::open`] with tuning.
    pub fn open_with(cfg: &StateConfig, opts: Options) -> Result<State, StateError> {
        match cfg.backend.get() {
            StateBackend::Embedded => Ok(State {
                backend: Backend::Embedded(embedded::Embedded::open(cfg, opts)?),
            }),
            StateBackend::Redis => Ok(State {
                backend: Backend::Redis(redis::RedisStore::open(&cfg.redis_url, cfg.ttl_s)?),
            }),
        }
    }

    /// Stores `rec` under (`project`, `rec.id`), replacing a record of the same id. The command
    /// is queued when this is called (or refused: `Busy`, `TooLarge`, `Invalid`, in the returned
    /// reply); the reply is `Ok` once the record is committed and fsynced. Dropping the reply does
    /// not cancel the write.
    pub fn put(&self, project: &str, rec: Record) -> Reply<()> {
        match &self.backend {
            Backend::Embedded(s) => s.put(project, rec),
            Backend::Redis(r) => {
                let (r, project) = (r.clone(), project.to_owned());
                Reply::boxed(async move { r.put(&project, rec).await })
            }
        }
    }

    /// The record `id` of `project`; `None` when unknown, expired, deleted or another project's.
    pub fn get(&self, project: &str, id: &str) -> Reply<Option<Record>> {
        match &self.backend {
            Backend::Embedded(s) => s.get(project, id),
            Backend::Redis(r) => {
                let (r, project, id) = (r.clone(), project.to_owned(), id.to_owned());
                Reply::boxed(async move { r.get(&project, &id).await })
            }
        }
    }

    /// Deletes `id` of `project`; `true` when a visible record was deleted. Its ancestors stay.
    pub fn delete(&self, project: &str, id: &str) -> Reply<bool> {
        match &self.backend {
            Backend::Embedded(s) => s.delete(project, id),
            Backend::Redis(r) => {
                let (r, project, id) = (r.clone(), project.to_owned(), id.to_owned());
                Reply::boxed(async move { r.delete(&project, &id).await })
            }
        }
    }

    /// The whole conversation up to and including `id`, oldest turn first, each turn's input
    /// items then its output items, as ONE JSON array. `None` when `id` or any ancestor is
    /// unknown, expired or deleted. One store round trip, walking the chain on the store thread
    /// (one lookup per turn); `TooLarge` past [`Options::max_conversation_bytes`].
    pub fn conversation(&self, project: &str, id: &str) -> Reply<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Embedded(s) => s.conversation(project, id),
            Backend::Redis(r) => {
                let (r, project, id) = (r.clone(), project.to_owned(), id.to_owned());
                Reply::boxed(async move { r.conversation(&project, &id).await })
            }
        }
    }

    /// Runs one sweep batch now (the background sweep does the same every
    /// [`Options::sweep_every`]); the reply is how many expired records it removed.
    pub fn sweep(&self) -> Reply<usize> {
        match &self.backend {
            Backend::Embedded(s) => s.sweep(),
            Backend::Redis(_) => Reply::now(Ok(0)),
        }
    }

    /// Whether the store serves (for `/ready`): its threads run and its last commit succeeded.
    pub fn ready(&self) -> bool {
        match &self.backend {
            Backend::Embedded(s) => s.ready(),
            Backend::Redis(r) => r.ready(),
        }
    }

    /// The backend's name as configured: `embedded` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Redis(_) => "redis",
        }
    }

    /// What the store holds, as of its last commit.
    pub fn usage(&self) -> Usage {
        match &self.backend {
            Backend::Embedded(s) => s.usage(),
            Backend::Redis(r) => {
                let _ = r;
                Usage::default()
            }
        }
    }

    /// This worker's Redis client when the store is shared (`backend = "redis"`): the limits
    /// count on it too.
    pub fn shared_client(&self) -> Option<std::rc::Rc<crate::redis::Redis>> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Redis(r) => Some(r.worker_client()),
        }
    }

    /// Called on each worker's thread as it starts, inside its runtime: a shared store opens the
    /// worker's own connection there.
    pub fn start_worker(&self) {
        match &self.backend {
            Backend::Embedded(_) => {}
            Backend::Redis(r) => r.start_worker(),
        }
    }

    /// Drops this handle and waits up to `timeout` for the store to finish the commands queued
    /// and close its file, which happens once every clone is dropped. `true` when it closed. A
    /// store left unclosed loses nothing acknowledged; redb only checks the file at next open.
    pub fn close(self, timeout: Duration) -> bool {
        match self.backend {
            Backend::Embedded(s) => s.close(timeout),
            Backend::Redis(r) => {
                drop(r);
                true
            }
        }
    }
}

/// Checks a record before it is queued: the fields the store relies on, and its size against
/// both caps. Returns its size as `max_bytes` counts it.
fn check(project: &str, rec: &Record, opts: &Limits) -> Result<u64, StateError> {
    let invalid = |m: &str| Err(StateError::new(StateErrorKind::Invalid, m));
    if project.is_empty() || rec.id.is_empty() {
        return invalid("a record needs a project and an id");
    }
    if rec.previous.as_deref() == Some("") {
        return invalid("previous is empty (use None)");
    }
    if record::array_items(&rec.input).is_none() || record::array_items(&rec.output).is_none() {
        return invalid("input and output must be JSON arrays");
    }
    let size = stored_size(project, &rec.id, record::encoded_len(rec));
    let cap = match opts.max_bytes {
        0 => opts.max_record_bytes,
        m => m.min(opts.max_record_bytes),
    };
    if size > cap {
        return Err(StateError::new(
            StateErrorKind::TooLarge,
            format!("record {} is {size} bytes, past the cap of {cap}", rec.id),
        ));
    }
    Ok(size)
}

/// The caps [`check`] applies.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_record_bytes: u64,
    /// `[state] max_bytes`, 0 = none.
    max_bytes: u64,
}

/// A record's size as `max_bytes` counts it: its key and its stored value.
fn stored_size(project: &str, id: &str, encoded: usize) -> u64 {
    (project.len() + id.len() + encoded) as u64
}

/// The answer to one command: a future resolved by the store thread, or at once when the command
/// was refused before it was queued.
#[must_use = "a reply does nothing unless awaited (the command itself is already queued)"]
pub struct Reply<T: 'static>(ReplyState<T>);

enum ReplyState<T: 'static> {
    Now(Option<Result<T, StateError>>),
    Wait(flume::r#async::RecvFut<'static, Result<T, StateError>>),
    /// The Redis backend's call on the worker's own connection (not `Send`: it stays on the
    /// worker that made it).
    Call(Pin<Box<dyn Future<Output = Result<T, StateError>>>>),
}

// Nothing is pinned in place: the answer is moved out whole, and flume's future is `Unpin`.
impl<T> Unpin for Reply<T> {}

impl<T> Reply<T> {
    fn now(r: Result<T, StateError>) -> Reply<T> {
        Reply(ReplyState::Now(Some(r)))
    }

    fn boxed(f: impl Future<Output = Result<T, StateError>> + 'static) -> Reply<T> {
        Reply(ReplyState::Call(Box::pin(f)))
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, StateError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            ReplyState::Now(r) => Poll::Ready(r.take().unwrap_or_else(|| {
                Err(StateError::new(
                    StateErrorKind::Unavailable,
                    "reply polled after it completed",
                ))
            })),
            ReplyState::Call(f) => f.as_mut().poll(cx),
            ReplyState::Wait(f) => Pin::new(f).poll(cx).map(|r| {
                r.unwrap_or_else(|_| {
                    Err(StateError::new(
                        StateErrorKind::Unavailable,
                        "the store thread stopped before answering",
                    ))
                })
            }),
        }
    }
}

/// The store thread's end of a [`Reply`].
struct Answer<T>(flume::Sender<Result<T, StateError>>);

impl<T> Answer<T> {
    /// Answers; a caller that stopped waiting is not an error.
    fn send(self, r: Result<T, StateError>) {
        let _ = self.0.send(r);
    }
}

/// Queues the command `make` builds around a fresh answer channel, without waiting: a full
/// queue is `Busy`, a stopped store `Unavailable`, both answered at once.
fn ask<C, T: 'static>(queue: &flume::Sender<C>, make: impl FnOnce(Answer<T>) -> C) -> Reply<T> {
    let (tx, rx) = flume::bounded(1);
    match queue.try_send(make(Answer(tx))) {
        Ok(()) => Reply(ReplyState::Wait(rx.into_recv_async())),
        Err(flume::TrySendError::Full(_)) => Reply::now(Err(StateError::new(
            StateErrorKind::Busy,
            "the store's queue is full",
        ))),
        Err(flume::TrySendError::Disconnected(_)) => Reply::now(Err(StateError::new(
            StateErrorKind::Unavailable,
            "the store has stopped",
        ))),
    }
}
