//! The embedded backend: one redb file, `responses.redb` under `[state] path`, served by its own
//! threads.
//!
//! Why redb: pure Rust (nothing to link), ACID with copy-on-write B-trees and checksummed
//! commits, a versioned file format (the v3 format has not changed since redb 3.0; the one change
//! since 1.0, v2 to v3, came with an upgrade path), and `Durability::Immediate` commits that fsync
//! before returning, so an acknowledged `put` survives a crash or `kill -9`. Writing a log-structured store of our
//! own would mean owning its recovery, compaction and fsync ordering.
//!
//! Threads: one writer (`switchyard-state-w`) owns every write transaction: puts, deletes,
//! sweeps and evictions. It takes the first queued command, then whatever else is queued (up to
//! [`Options::write_batch`]), applies them in one transaction and commits once, so a burst of
//! puts shares one fsync (group commit); nobody is answered before that commit. Readers
//! (`switchyard-state-r{i}`, [`Options::readers`]) share one queue and serve `get` and
//! `conversation` from MVCC read transactions, so a read never waits behind a write's fsync.
//! The two sides are `write` and `read`; this file opens the store and holds the handle.
//!
//! Tables:
//! - `records`: (project, id) -> the record's bytes (`record` layout). The project is part of the
//!   key, so a lookup in another project's namespace cannot find it.
//! - `ages`: seq -> (stored_at, size, project, id): the records in the order they were stored,
//!   which is the order the sweep and the eviction take them in.
//! - `meta`: `schema` (this layout's number; a file with another is refused) and `live_bytes`.
//!
//! `max_bytes` counts, per record, its project, id and stored bytes (`live_bytes`, kept in the
//! same transactions as the records). The file is larger: B-tree pages, the `ages` index, and
//! freed pages kept for reuse (redb reuses them; the file does not shrink). Once a put takes
//! `live_bytes` past `max_bytes`, the oldest stored records are evicted in that same transaction
//! until it fits again; the record just written is never evicted (a record larger than
//! `max_bytes` was refused as `TooLarge` before it was queued).
//!
//! Expiry counts `ttl_s` from `stored_at` (the store clock at put), with the `ttl_s` in force
//! now, so shortening it applies to records already stored. Reads treat an expired record as
//! absent at once; the writer removes expired records every [`Options::sweep_every`], oldest
//! first, [`Options::sweep_batch`] per transaction, and another batch right after the queued
//! commands when a batch was full. A clock set back may leave a younger-seq record expired behind
//! an older one that is not; it is invisible all the same and swept once those before it are.
//!
//! Shutdown: the threads stop when every handle is dropped (their queues disconnect), after
//! answering what was queued; the last one closes the file. [`Embedded::close`] waits for that.
//! A process killed instead loses nothing acknowledged: redb checks and repairs the file on the
//! next open.

mod read;
mod write;

use super::record::{self, View};
use super::{
    ask, check, Answer, Limits, Options, Record, Reply, StateError, StateErrorKind, Usage,
};
use crate::config::StateConfig;
use read::Reader;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use write::Writer;

/// The file under `[state] path`.
pub const FILE: &str = "responses.redb";
/// This layout of tables; a file stamped with another is refused rather than misread.
const SCHEMA: u64 = 1;

const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
const AGES: TableDefinition<u64, (u64, u64, &str, &str)> = TableDefinition::new("ages");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A handle on the running store; clones share it.
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    writes: flume::Sender<Write>,
    reads: flume::Sender<Read>,
    limits: Limits,
    shared: Arc<Shared>,
}

/// What the store threads publish and the handles read.
struct Shared {
    /// Every thread runs and the last commit succeeded.
    up: AtomicBool,
    records: AtomicU64,
    live_bytes: AtomicU64,
    expired: AtomicU64,
    evicted: AtomicU64,
    /// Store threads still running; `stopped` is signalled as each ends.
    running: Mutex<usize>,
    stopped: Condvar,
}

enum Write {
    Put {
        project: String,
        rec: Record,
        answer: Answer<()>,
    },
    Delete {
        project: String,
        id: String,
        answer: Answer<bool>,
    },
    Sweep {
        answer: Answer<usize>,
    },
    /// Blocks the writer until released, to fill its queue in tests.
    #[cfg(test)]
    Hold(super::tests::Hold),
}

enum Read {
    Get {
        project: String,
        id: String,
        answer: Answer<Option<Record>>,
    },
    Conversation {
        project: String,
        id: String,
        answer: Answer<Option<Vec<u8>>>,
    },
}

impl Embedded {
    /// Creates the directory, opens the file and starts the threads (see the module doc).
    pub fn open(cfg: &StateConfig, opts: Options) -> Result<Embedded, StateError> {
        let dir = Path::new(&cfg.path);
        std::fs::create_dir_all(dir).map_err(|e| {
            StateError::new(
                StateErrorKind::Unavailable,
                format!("state.path {}: cannot create: {e}", dir.display()),
            )
        })?;
        let file = dir.join(FILE);
        let db = open_file(&file, &opts)?;
        let (tally, next_seq) = prepare(&db).map_err(|e| at_file(&file, e))?;
        let shared = Arc::new(Shared {
            up: AtomicBool::new(true),
            records: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            running: Mutex::new(0),
            stopped: Condvar::new(),
        });
        tally.publish(&shared);
        let db = Arc::new(db);
        let depth = opts.queue_depth.max(1);
        let (writes, write_rx) = flume::bounded(depth);
        let (reads, read_rx) = flume::bounded(depth);
        let ttl = cfg.ttl_s;
        let writer = Writer {
            db: db.clone(),
            clock: opts.clock.clone(),
            ttl,
            max_bytes: cfg.max_bytes,
            write_batch: opts.write_batch.max(1),
            sweep_every: opts.sweep_every,
            sweep_batch: opts.sweep_batch.max(1),
            next_seq,
            tally,
            buf: Vec::new(),
            shared: shared.clone(),
        };
        spawn(&shared, "switchyard-state-w".into(), move || {
            writer.run(write_rx)
        })?;
        for i in 0..opts.readers.max(1) {
            let reader = Reader {
                db: db.clone(),
                clock: opts.clock.clone(),
                ttl,
                max_conversation_bytes: opts.max_conversation_bytes,
            };
            let rx = read_rx.clone();
            spawn(&shared, format!("switchyard-state-r{i}"), move || {
                reader.run(rx)
            })?;
        }
        Ok(Embedded {
            inner: Arc::new(Inner {
                writes,
                reads,
                limits: Limits {
                    max_record_bytes: opts.max_record_bytes.min(u32::MAX as u64),
                    max_bytes: cfg.max_bytes,
                },
                shared,
            }),
        })
    }

    /// See [`super::State::put`].
    pub fn put(&self, project: &str, rec: Record) -> Reply<()> {
        if let Err(e) = check(project, &rec, &self.inner.limits) {
            return Reply::now(Err(e));
        }
        let project = project.to_string();
        ask(&self.inner.writes, |answer| Write::Put {
            project,
            rec,
            answer,
        })
    }

    /// See [`super::State::get`].
    pub fn get(&self, project: &str, id: &str) -> Reply<Option<Record>> {
        ask(&self.inner.reads, |answer| Read::Get {
            project: project.to_string(),
            id: id.to_string(),
            answer,
        })
    }

    /// See [`super::State::delete`].
    pub fn delete(&self, project: &str, id: &str) -> Reply<bool> {
        ask(&self.inner.writes, |answer| Write::Delete {
            project: project.to_string(),
            id: id.to_string(),
            answer,
        })
    }

    /// See [`super::State::conversation`].
    pub fn conversation(&self, project: &str, id: &str) -> Reply<Option<Vec<u8>>> {
        ask(&self.inner.reads, |answer| Read::Conversation {
            project: project.to_string(),
            id: id.to_string(),
            answer,
        })
    }

    /// See [`super::State::sweep`].
    pub fn sweep(&self) -> Reply<usize> {
        ask(&self.inner.writes, |answer| Write::Sweep { answer })
    }

    /// See [`super::State::ready`].
    pub fn ready(&self) -> bool {
        self.inner.shared.up.load(Ordering::Relaxed)
    }

    /// See [`super::State::usage`].
    pub fn usage(&self) -> Usage {
        let s = &self.inner.shared;
        Usage {
            records: s.records.load(Ordering::Relaxed),
            live_bytes: s.live_bytes.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
            evicted: s.evicted.load(Ordering::Relaxed),
        }
    }

    /// See [`super::State::close`].
    pub fn close(self, timeout: Duration) -> bool {
        let shared = self.inner.shared.clone();
        drop(self);
        let deadline = Instant::now() + timeout;
        let Ok(mut running) = shared.running.lock() else {
            return false;
        };
        while *running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            running = match shared.stopped.wait_timeout(running, left) {
                Ok((r, _)) => r,
                Err(_) => return false,
            };
        }
        true
    }

    /// Queues a command that blocks the writer until released (tests fill its queue with it).
    #[cfg(test)]
    pub(super) fn hold_writer(&self, hold: super::tests::Hold) {
        let _ = self.inner.writes.try_send(Write::Hold(hold));
    }
}

/// Opens (or creates) the file, mapping redb's refusals to what an operator should do.
fn open_file(file: &Path, opts: &Options) -> Result<Database, StateError> {
    let mut b = redb::Builder::new();
    b.set_cache_size(opts.cache_bytes)
        .set_check_integrity_on_open(opts.verify_on_open);
    let name = file.display().to_string();
    let told = std::cell::Cell::new(false);
    let verify = opts.verify_on_open;
    // redb calls this when it walks the file: on every open that verifies, and after an
    // unclean stop; either can take a while on a large file, so say so once.
    b.set_repair_callback(move |_| {
        if !told.replace(true) {
            if verify {
                crate::info!("state: checking every page of {name} before serving");
            } else {
                crate::info!("state: {name} was not closed cleanly; repairing it");
            }
        }
    });
    // redb reads the file's own structures at open; a damaged file may panic where a check
    // does not reach: that is a corrupt store too, never a crashed start.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.create(file)));
    let corrupt = |why: String| {
        StateError::new(
            StateErrorKind::Corrupt,
            format!(
                "{} is damaged ({why}); move it aside to start with an empty store",
                file.display()
            ),
        )
    };
    match opened {
        Err(_) => Err(corrupt("reading it panicked".into())),
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(match e {
            redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
                StateError::new(
                    StateErrorKind::Locked,
                    format!(
                        "{} is in use by another process (another switchyard with the same state.path?)",
                        file.display()
                    ),
                )
            }
            redb::DatabaseError::UpgradeRequired(v) => StateError::new(
                StateErrorKind::Corrupt,
                format!(
                    "{} has redb file format v{v}, which this build cannot read",
                    file.display()
                ),
            ),
            redb::DatabaseError::RepairAborted => corrupt("its repair was aborted".into()),
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(m)) => corrupt(m),
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::InvalidData =>
            {
                corrupt(io.to_string())
            }
            other => StateError::new(
                StateErrorKind::Unavailable,
                format!("{}: {other}", file.display()),
            ),
        }),
    }
}

/// Creates the tables on a new file, checks the schema of an old one, and reads what the writer
/// starts from: the counts and the next insertion number.
fn prepare(db: &Database) -> Result<(Tally, u64), StateError> {
    let txn = db.begin_write()?;
    let found = {
        let records = txn.open_table(RECORDS)?;
        let ages = txn.open_table(AGES)?;
        let mut meta = txn.open_table(META)?;
        let schema = meta.get("schema")?.map(|g| g.value());
        match schema {
            None => {
                meta.insert("schema", SCHEMA)?;
            }
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(StateError::new(
                    StateErrorKind::Corrupt,
                    format!(
                        "its schema {other} is not {SCHEMA}: written by another switchyard version"
                    ),
                ))
            }
        }
        let live = meta.get("live_bytes")?.map_or(0, |g| g.value());
        let next_seq = ages.last()?.map_or(0, |(k, _)| k.value() + 1);
        let tally = Tally {
            records: records.len()?,
            live_bytes: live,
            expired: 0,
            evicted: 0,
        };
        (tally, next_seq)
    };
    txn.commit()?;
    Ok(found)
}

fn at_file(file: &Path, e: StateError) -> StateError {
    StateError::new(e.kind, format!("{}: {}", file.display(), e.message))
}

/// Starts a store thread, counted in `running` until it returns (or panics); any thread ending
/// marks the store not ready.
fn spawn(
    shared: &Arc<Shared>,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<(), StateError> {
    struct Running(Arc<Shared>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.up.store(false, Ordering::Relaxed);
            if let Ok(mut n) = self.0.running.lock() {
                *n -= 1;
            }
            self.0.stopped.notify_all();
        }
    }
    if let Ok(mut n) = shared.running.lock() {
        *n += 1;
    }
    let guard = Running(shared.clone());
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _running = guard;
            body();
        })
        .map(|_| ())
        .map_err(|e| {
            StateError::new(
                StateErrorKind::Unavailable,
                format!("cannot start a store thread: {e}"),
            )
        })
}

/// Counts kept by the writer, published after each commit.
#[derive(Clone, Copy, Debug)]
struct Tally {
    records: u64,
    live_bytes: u64,
    expired: u64,
    evicted: u64,
}

impl Tally {
    fn publish(&self, s: &Shared) {
        s.records.store(self.records, Ordering::Relaxed);
        s.live_bytes.store(self.live_bytes, Ordering::Relaxed);
        s.expired.store(self.expired, Ordering::Relaxed);
        s.evicted.store(self.evicted, Ordering::Relaxed);
    }
}

fn expired(stored_at: u64, now: u64, ttl: u64) -> bool {
    now >= stored_at.saturating_add(ttl)
}

fn decoded(bytes: &[u8]) -> Result<View<'_>, StateError> {
    record::decode(bytes).map_err(|e| {
        StateError::new(
            StateErrorKind::Corrupt,
            format!("a stored record cannot be read: {e:?}"),
        )
    })
}

impl From<redb::Error> for StateError {
    fn from(e: redb::Error) -> StateError {
        let kind = match e {
            redb::Error::Corrupted(_) => StateErrorKind::Corrupt,
            redb::Error::ValueTooLarge(_) => StateErrorKind::TooLarge,
            _ => StateErrorKind::Unavailable,
        };
        StateError::new(kind, e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> StateError {
                redb::Error::from(e).into()
            }
        }
    )*};
}

from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError
);
