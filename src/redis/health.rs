//! Whether Redis is usable, readable from any thread (`/ready`, the admin listener).
//!
//! Each worker's client counts itself down until its first connection is up, and again while
//! it cannot reconnect; Redis is up when every registered client is connected. A connection
//! that drops and comes straight back does not count as down: only a failed connect does.
//! Clients change the counts on transitions only (a shared read-modify-write, never per
//! command), and the transition of the whole (up to down, down to up) is logged once, by
//! whichever client made it.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The shared health of every worker's client of one Redis.
#[derive(Debug, Default)]
pub struct Health {
    clients: AtomicUsize,
    down: AtomicUsize,
    /// What was last logged: [`UP`], [`DOWN`], or 0 before the first report.
    announced: AtomicU8,
}

const UP: u8 = 1;
const DOWN: u8 = 2;

impl Health {
    /// No clients yet (and so not up).
    pub fn new() -> Health {
        Health::default()
    }

    /// Whether at least one client exists and every client is connected.
    pub fn is_up(&self) -> bool {
        self.clients.load(Ordering::Acquire) > 0 && self.down.load(Ordering::Acquire) == 0
    }

    /// Clients registered (one per worker).
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// Clients not connected.
    pub fn clients_down(&self) -> usize {
        self.down.load(Ordering::Acquire)
    }

    /// A new client, down until it connects.
    pub(crate) fn register(&self) {
        self.down.fetch_add(1, Ordering::AcqRel);
        self.clients.fetch_add(1, Ordering::AcqRel);
    }

    /// A client went away.
    pub(crate) fn unregister(&self, was_down: bool) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
        if was_down {
            self.down.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A client connected (`up`) or failed to (`!up`; `why` says how), having been counted
    /// down before when `was_down`. Logs the whole's transition, if this made one.
    pub(crate) fn report(&self, was_down: bool, up: bool, target: &str, why: &str) {
        match (was_down, up) {
            (true, true) => {
                self.down.fetch_sub(1, Ordering::AcqRel);
            }
            (false, false) => {
                self.down.fetch_add(1, Ordering::AcqRel);
            }
            _ => {}
        }
        // Each report can only announce its own direction: a client connecting while
        // others are still down says nothing.
        if up {
            if self.is_up() && self.announced.swap(UP, Ordering::AcqRel) != UP {
                crate::info!("redis {target}: up");
            }
        } else if self.announced.swap(DOWN, Ordering::AcqRel) != DOWN {
            crate::warn!("redis {target}: down ({why}); reconnecting in the background");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn up_when_every_client_is_connected() {
        let h = Health::new();
        assert!(!h.is_up(), "no clients is not up");
        h.register();
        h.register();
        assert!(!h.is_up());
        h.report(true, true, "t", "");
        assert!(!h.is_up(), "one of two connected");
        h.report(true, true, "t", "");
        assert!(h.is_up());
        h.report(false, false, "t", "refused");
        assert!(!h.is_up());
        assert_eq!(h.clients_down(), 1);
        h.report(true, false, "t", "refused again");
        assert_eq!(h.clients_down(), 1, "a failure while down counts once");
        h.unregister(true);
        assert!(h.is_up());
        assert_eq!((h.clients(), h.clients_down()), (1, 0));
    }
}
