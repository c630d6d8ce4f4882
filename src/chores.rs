//! The wake-up of a worker's housekeeping task: code on the worker that leaves work for later
//! (the first log line of an empty batch, the first connection back in an empty upstream pool)
//! calls [`ring`]; the housekeeping task, which otherwise sleeps only until a timer it holds is
//! due, waits in [`rung`]. An idle worker so has no timer at all and its ring no wake-up: it
//! sleeps in the kernel until a connection, a signal's listener shutdown or a ring arrives.
//!
//! Per thread (each worker is one thread with one housekeeping task); a ring on a thread with
//! no housekeeper waiting is kept until one waits, so none is lost between the housekeeper's
//! check and its wait.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    static RUNG: Cell<bool> = const { Cell::new(false) };
    static WAITER: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Says this worker's housekeeping has something new to schedule. Cheap when rung again before
/// the housekeeper ran: the flag is already set and there is no waker to wake.
pub fn ring() {
    RUNG.set(true);
    if let Some(w) = WAITER.take() {
        w.wake();
    }
}

/// Resolves once [`ring`] was called on this thread since the last time it resolved.
pub fn rung() -> Rung {
    Rung
}

/// The future of [`rung`].
pub struct Rung;

impl Future for Rung {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if RUNG.replace(false) {
            return Poll::Ready(());
        }
        WAITER.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// Remembers being woken.
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn poll(cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut rung()).poll(cx)
    }

    /// A ring before the wait is kept; a ring during it wakes the waiter; each is taken once.
    #[test]
    fn a_ring_is_neither_lost_nor_counted_twice() {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        ring();
        assert_eq!(poll(&mut cx), Poll::Ready(()), "a ring before the wait");
        assert_eq!(poll(&mut cx), Poll::Pending, "the ring was taken once");
        assert!(!flag.0.load(Ordering::SeqCst));
        ring();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "the waiting housekeeper was woken"
        );
        assert_eq!(poll(&mut cx), Poll::Ready(()));
        ring();
        ring();
        assert_eq!(poll(&mut cx), Poll::Ready(()));
        assert_eq!(
            poll(&mut cx),
            Poll::Pending,
            "two rings before a wait are one"
        );
    }
}
