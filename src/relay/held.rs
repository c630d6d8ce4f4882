//! The per-worker cap on large upstream bodies held whole at once.
//!
//! A non-streaming answer the gateway must rewrite (translation) or store (a Responses turn)
//! is held whole, once, in the request's upstream buffer. One such body can be up to
//! `max_upstream_body_bytes`; many at once would take a worker's memory with them. A body
//! larger than `hold_body_bytes` (or of unknown length) therefore needs one of the worker's
//! `max_held_bodies` slots; past them the request gets 503 `unavailable` with `retry-after`
//! at once (a fast refusal another gateway or a retry can take, rather than a queue that only
//! grows while the worker is saturated). Bodies the gateway need not rewrite are relayed as
//! they arrive and take no slot.
//!
//! The count is a thread local: one worker is one thread, so no lock and no shared counter.

use std::cell::Cell;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// One held large body: the slot is given back when dropped.
#[derive(Debug)]
pub struct Slot(());

/// Takes a slot if fewer than `max` are held on this worker.
pub fn try_take(max: usize) -> Option<Slot> {
    HELD.with(|h| {
        let n = h.get();
        (n < max).then(|| {
            h.set(n + 1);
            Slot(())
        })
    })
}

/// Large bodies this worker holds now.
pub fn held() -> usize {
    HELD.with(Cell::get)
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let a = try_take(2);
        let b = try_take(2);
        assert!(a.is_some() && b.is_some());
        assert!(try_take(2).is_none());
        assert_eq!(held(), 2);
        drop(a);
        assert!(try_take(2).is_some());
        drop(b);
        assert_eq!(held(), 0);
    }
}
