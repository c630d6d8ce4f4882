//! The writer thread: every write transaction (puts, deletes, sweeps, evictions), batched so
//! the commands queued together share one commit and one fsync.

use super::{decoded, expired, Shared, Tally, Write, AGES, META, RECORDS};
use crate::state::record::{self, Stamp};
use crate::state::{stored_size, Answer, Clock, Record, StateError, StateErrorKind};
use redb::{Database, ReadableTable};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The write side: the only thread that opens write transactions.
pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) clock: Clock,
    pub(super) ttl: u64,
    pub(super) max_bytes: u64,
    pub(super) write_batch: usize,
    pub(super) sweep_every: Duration,
    pub(super) sweep_batch: usize,
    pub(super) next_seq: u64,
    /// As of the last commit.
    pub(super) tally: Tally,
    /// The record being encoded, reused.
    pub(super) buf: Vec<u8>,
    pub(super) shared: Arc<Shared>,
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
    pub(super) fn run(mut self, rx: flume::Receiver<Write>) {
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
