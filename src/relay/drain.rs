//! Cutting a worker's running streams when a shutdown's drain deadline passes.
//!
//! A draining worker waits for its in-flight requests up to `drain_timeout`; a stream still
//! running then is ended by the relay with the protocol's error event and the last chunk (a
//! client must not take a bare close, or worse a clean end, for a whole answer), before the
//! worker's runtime and its connections go away. The worker calls [`cut_streams`]; every relay
//! waiting on its upstream also waits on [`cut`].
//!
//! One notifier per worker thread (a thread local: a worker is one thread running one monoio
//! runtime), so nothing is shared between cores and no lock is taken. Waiters register their
//! waker in a slot table reused across streams: a running stream allocates nothing here.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Notifier {
    fired: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

thread_local! {
    static CUT: Notifier = Notifier::default();
}

/// Ends every stream this worker relays: each waiter of [`cut`] wakes and ends its stream
/// with the error event. Later streams are cut as soon as they wait.
pub fn cut_streams() {
    CUT.with(|n| {
        n.fired.set(true);
        let wakers: Vec<Waker> = n
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    });
}

/// Whether this worker's streams have been cut.
pub fn is_cut() -> bool {
    CUT.with(|n| n.fired.get())
}

/// Resolves once [`cut_streams`] has been called on this worker.
pub fn cut() -> Cut {
    Cut { slot: None }
}

/// The future of [`cut`].
pub struct Cut {
    slot: Option<usize>,
}

impl Future for Cut {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        CUT.with(|n| {
            if n.fired.get() {
                return Poll::Ready(());
            }
            let mut slots = n.slots.borrow_mut();
            let i = match self.slot {
                Some(i) => i,
                None => {
                    let i = n.free.borrow_mut().pop().unwrap_or_else(|| {
                        slots.push(None);
                        slots.len() - 1
                    });
                    self.slot = Some(i);
                    i
                }
            };
            match &mut slots[i] {
                Some(w) if w.will_wake(cx.waker()) => {}
                s => *s = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            // The thread local is gone only when the thread exits, after its runtime.
            let _ = CUT.try_with(|n| {
                if let Some(s) = n.slots.borrow_mut().get_mut(i) {
                    *s = None;
                }
                n.free.borrow_mut().push(i);
            });
        }
    }
}
