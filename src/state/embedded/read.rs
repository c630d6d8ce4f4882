//! The reader threads: `get` and `conversation`, each in one MVCC read transaction, so a read
//! never waits behind the writer's fsync.

use super::{decoded, expired, Read, RECORDS};
use crate::state::record;
use crate::state::{Clock, Record, StateError, StateErrorKind};
use redb::{Database, ReadableDatabase, ReadableTableMetadata};
use std::sync::Arc;

/// The read side: `get` and `conversation` in MVCC read transactions.
pub(super) struct Reader {
    pub(super) db: Arc<Database>,
    pub(super) clock: Clock,
    pub(super) ttl: u64,
    pub(super) max_conversation_bytes: u64,
}

impl Reader {
    pub(super) fn run(self, rx: flume::Receiver<Read>) {
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
