//! The embedded backend: one redb file, `responses.redb` under `[state] path`, served by its own
//! threads.
//!
//! Why redb: pure Rust (nothing to link), ACID with copy-on-write B-trees, a file format stable
//! since 1.0 (v3 since redb 3), and `Durability::Immediate` commits that fsync before returning,
//! so an acknowledged `put` survives a crash or `kill -9`. Writing a log-structured store of our
//! own would mean owning its recovery, compaction and fsync ordering.
//!
//! Threads: one writer (`switchyard-state-w`) owns every write transaction: puts, deletes,
//! sweeps and evictions. It takes the first queued command, then whatever else is queued (up to
//! [`Options::write_batch`]), applies them in one transaction and commits once, so a burst of
//! puts shares one fsync (group commit); nobody is answered before that commit. Readers
//! (`switchyard-state-r{i}`, [`Options::readers`]) share one queue and serve `get` and
//! `conversation` from MVCC read transactions, so a read never waits behind a write's fsync.
//!
//! Tables:
//! - `records`: (project, id) -> the record's bytes (`record` layout). The project is part of the
//!   key, so a lookup in another project's namespace cannot find it.
//! - `ages`: seq -> (stored_at, size, project, id): the records in the order they were stored,
//!   which is the order the sweep and the eviction take them in.
//! - `meta`: `schema` (this layout's number, refused if newer) and `live_bytes`.
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

use super::record::{self, Stamp, View};
use super::{
    ask, check, stored_size, Answer, Clock, Limits, Options, Record, Reply, StateError,
    StateErrorKind, Usage,
};
use crate::config::StateConfig;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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

/// The write side: the only thread that opens write transactions.
struct Writer {
    db: Arc<Database>,
    clock: Clock,
    ttl: u64,
    max_bytes: u64,
    write_batch: usize,
    sweep_every: Duration,
    sweep_batch: usize,
    next_seq: u64,
    /// As of the last commit.
    tally: Tally,
    /// The record being encoded, reused.
    buf: Vec<u8>,
    shared: Arc<Shared>,
}

/// What one command came to, answered after the commit.
enum Done {
    Put,
    Delete(bool),
    Sweep(usize),
}

/// The tables of one write transaction.
struct Tables<'t> {
    records: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    ages: redb::Table<'t, u64, (u64, u64, &'static str, &'static str)>,
}

impl Writer {
    fn run(mut self, rx: flume::Receiver<Write>) {
        let mut batch = Vec::with_capacity(self.write_batch);
        let mut next_sweep = Instant::now() + self.sweep_every;
        loop {
            if Instant::now() >= next_sweep {
                let full = self.background_sweep();
                next_sweep = if full {
                    Instant::now()
                } else {
                    Instant::now() + self.sweep_every
                };
            }
            let wait = next_sweep.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(cmd) => batch.push(cmd),
                Err(flume::RecvTimeoutError::Timeout) => continue,
                Err(flume::RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < self.write_batch {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            self.apply(&mut batch);
        }
    }

    /// One sweep batch of its own; `true` when it was full (more may be waiting).
    fn background_sweep(&mut self) -> bool {
        let mut batch = vec![];
        let (tx, _rx) = flume::bounded(1);
        batch.push(Write::Sweep { answer: Answer(tx) });
        let before = self.tally.expired;
        self.apply(&mut batch);
        self.tally.expired - before >= self.sweep_batch as u64
    }

    /// Applies `batch` in one transaction, commits, then answers each command: all with their
    /// outcome, or all with the error that stopped the transaction.
    fn apply(&mut self, batch: &mut Vec<Write>) {
        #[cfg(test)]
        batch.retain_mut(|c| match c {
            Write::Hold(h) => {
                h.wait();
                false
            }
            _ => true,
        });
        let now = self.clock.now();
        let mut tally = self.tally;
        let result = self.transact(batch, now, &mut tally);
        match result {
            Ok(done) => {
                self.tally = tally;
                tally.publish(&self.shared);
                self.shared.up.store(true, Ordering::Relaxed);
                for (cmd, d) in batch.drain(..).zip(done) {
                    match (cmd, d) {
                        (Write::Put { answer, .. }, Done::Put) => answer.send(Ok(())),
                        (Write::Delete { answer, .. }, Done::Delete(b)) => answer.send(Ok(b)),
                        (Write::Sweep { answer }, Done::Sweep(n)) => answer.send(Ok(n)),
                        _ => {}
                    }
                }
            }
            Err(e) => {
                // Insertion numbers handed out in the failed transaction are skipped: gaps are
                // harmless, the order is all that counts.
                if e.kind != StateErrorKind::Corrupt {
                    self.shared.up.store(false, Ordering::Relaxed);
                }
                crate::error!("state: a write failed: {}", e.message);
                for cmd in batch.drain(..) {
                    match cmd {
                        Write::Put { answer, .. } => answer.send(Err(e.clone())),
                        Write::Delete { answer, .. } => answer.send(Err(e.clone())),
                        Write::Sweep { answer } => answer.send(Err(e.clone())),
                        #[cfg(test)]
                        Write::Hold(_) => {}
                    }
                }
            }
        }
    }

    fn transact(
        &mut self,
        batch: &[Write],
        now: u64,
        tally: &mut Tally,
    ) -> Result<Vec<Done>, StateError> {
        let txn = self.db.begin_write()?;
        let mut done = Vec::with_capacity(batch.len());
        {
            let mut t = Tables {
                records: txn.open_table(RECORDS)?,
                ages: txn.open_table(AGES)?,
            };
            for cmd in batch {
                done.push(match cmd {
                    Write::Put { project, rec, .. } => {
                        self.put(&mut t, project, rec, now, tally)?;
                        Done::Put
                    }
                    Write::Delete { project, id, .. } => {
                        Done::Delete(self.delete(&mut t, project, id, now, tally)?)
                    }
                    Write::Sweep { .. } => Done::Sweep(self.sweep(&mut t, now, tally)?),
                    #[cfg(test)]
                    Write::Hold(_) => Done::Put,
                });
            }
            let mut meta = txn.open_table(META)?;
            meta.insert("live_bytes", tally.live_bytes)?;
        }
        txn.commit()?;
        Ok(done)
    }

    fn put(
        &mut self,
        t: &mut Tables,
        project: &str,
        rec: &Record,
        now: u64,
        tally: &mut Tally,
    ) -> Result<(), StateError> {
        let key = (project, rec.id.as_str());
        if let Some(old) = self.remove(t, key)? {
            tally.live_bytes = tally.live_bytes.saturating_sub(old);
            tally.records = tally.records.saturating_sub(1);
        }
        let stamp = Stamp {
            seq: self.next_seq,
            stored_at: now,
        };
        self.next_seq += 1;
        record::encode(rec, stamp, &mut self.buf);
        let size = stored_size(project, &rec.id, self.buf.len());
        t.records.insert(key, self.buf.as_slice())?;
        t.ages
            .insert(stamp.seq, (now, size, project, rec.id.as_str()))?;
        tally.live_bytes += size;
        tally.records += 1;
        if self.max_bytes == 0 {
            return Ok(());
        }
        while tally.live_bytes > self.max_bytes {
            let Some((seq, _, size, p, id)) = oldest(&t.ages)? else {
                break;
            };
            if seq == stamp.seq {
                break;
            }
            t.ages.remove(seq)?;
            t.records.remove((p.as_str(), id.as_str()))?;
            tally.live_bytes = tally.live_bytes.saturating_sub(size);
            tally.records = tally.records.saturating_sub(1);
            tally.evicted += 1;
        }
        Ok(())
    }

    /// Removes the record at `key` and its age entry; its size, if there was one.
    fn remove(&self, t: &mut Tables, key: (&str, &str)) -> Result<Option<u64>, StateError> {
        let Some(old) = t.records.remove(key)? else {
            return Ok(None);
        };
        let bytes = old.value();
        let seq = decoded(bytes)?.stamp.seq;
        let size = stored_size(key.0, key.1, bytes.len());
        drop(old);
        t.ages.remove(seq)?;
        Ok(Some(size))
    }

    fn delete(
        &mut self,
        t: &mut Tables,
        project: &str,
        id: &str,
        now: u64,
        tally: &mut Tally,
    ) -> Result<bool, StateError> {
        let visible = match t.records.get((project, id))? {
            Some(g) => !expired(decoded(g.value())?.stamp.stored_at, now, self.ttl),
            None => return Ok(false),
        };
        if let Some(size) = self.remove(t, (project, id))? {
            tally.live_bytes = tally.live_bytes.saturating_sub(size);
            tally.records = tally.records.saturating_sub(1);
        }
        Ok(visible)
    }

    /// Removes up to `sweep_batch` expired records, oldest first.
    fn sweep(&mut self, t: &mut Tables, now: u64, tally: &mut Tally) -> Result<usize, StateError> {
        let mut n = 0;
        while n < self.sweep_batch {
            let Some((seq, stored_at, size, p, id)) = oldest(&t.ages)? else {
                break;
            };
            if !expired(stored_at, now, self.ttl) {
                break;
            }
            t.ages.remove(seq)?;
            t.records.remove((p.as_str(), id.as_str()))?;
            tally.live_bytes = tally.live_bytes.saturating_sub(size);
            tally.records = tally.records.saturating_sub(1);
            tally.expired += 1;
            n += 1;
        }
        Ok(n)
    }
}

/// The oldest age entry: (seq, stored_at, size, project, id).
type Age = (u64, u64, u64, String, String);

fn oldest(
    ages: &redb::Table<'_, u64, (u64, u64, &'static str, &'static str)>,
) -> Result<Option<Age>, StateError> {
    Ok(ages.first()?.map(|(k, v)| {
        let (stored_at, size, p, id) = v.value();
        (k.value(), stored_at, size, p.to_string(), id.to_string())
    }))
}

/// The read side: `get` and `conversation` in MVCC read transactions.
struct Reader {
    db: Arc<Database>,
    clock: Clock,
    ttl: u64,
    max_conversation_bytes: u64,
}

impl Reader {
    fn run(self, rx: flume::Receiver<Read>) {
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Read::Get {
                    project,
                    id,
                    answer,
                } => answer.send(self.get(&project, &id)),
                Read::Conversation {
                    project,
                    id,
                    answer,
                } => answer.send(self.conversation(&project, &id)),
            }
        }
    }

    fn get(&self, project: &str, id: &str) -> Result<Option<Record>, StateError> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let Some(g) = records.get((project, id))? else {
            return Ok(None);
        };
        let v = decoded(g.value())?;
        if expired(v.stamp.stored_at, self.clock.now(), self.ttl) {
            return Ok(None);
        }
        Ok(Some(v.to_record(id)))
    }

    /// Walks from `id` back through `previous` in one read transaction (one lookup per turn,
    /// keeping each record's page instead of copying it), then writes the items oldest first.
    fn conversation(&self, project: &str, id: &str) -> Result<Option<Vec<u8>>, StateError> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let now = self.clock.now();
        // A chain longer than the table loops: only a damaged store can hold one.
        let most = records.len()?;
        let mut turns = Vec::new();
        let mut total = 2u64;
        let mut cur = id.to_string();
        loop {
            let Some(g) = records.get((project, cur.as_str()))? else {
                return Ok(None);
            };
            let v = decoded(g.value())?;
            if expired(v.stamp.stored_at, now, self.ttl) {
                return Ok(None);
            }
            total += (v.input.len() + v.output.len() + 2) as u64;
            if total > self.max_conversation_bytes {
                return Err(StateError::new(
                    StateErrorKind::TooLarge,
                    format!(
                        "the conversation up to {id} is past {} bytes",
                        self.max_conversation_bytes
                    ),
                ));
            }
            let previous = v.previous.map(str::to_string);
            turns.push(g);
            match previous {
                None => break,
                Some(_) if turns.len() as u64 > most => {
                    return Err(StateError::new(
                        StateErrorKind::Corrupt,
                        format!("the conversation up to {id} loops"),
                    ))
                }
                Some(p) => cur = p,
            }
        }
        let mut out = Vec::with_capacity(total as usize);
        out.push(b'[');
        for g in turns.iter().rev() {
            let v = decoded(g.value())?;
            record::push_items(&mut out, v.input);
            record::push_items(&mut out, v.output);
        }
        out.push(b']');
        Ok(Some(out))
    }
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
