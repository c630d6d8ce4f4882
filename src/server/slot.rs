//! Running a request's future in pooled memory, outside its connection's task.
//!
//! A task's size is the largest state of the future it runs, and a connection's future holds
//! its request's at the deepest await of the longest path (a stream relayed after failover:
//! about 11 KiB, most of it monoio's 640-byte, 128-byte-aligned timers nested level by level).
//! An idle keep-alive connection would carry all of it, its pages touched by the requests it
//! served: 10,000 idle clients cost 16 KiB each. [`Slots::run`] builds the request's future in
//! a block from the worker's pool instead, polls it there, drops it in place and gives the
//! block back, so the connection task holds a pointer while a request runs and nothing of it
//! between requests. Blocks are pooled up to a bound, like the request buffers: a busy worker
//! allocates nothing per request.
//!
//! Per worker (one thread, one runtime): no lock, no atomics.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// One heap block, sized and aligned for one future type.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Block {
    fn new(layout: Layout) -> Block {
        // SAFETY: `layout` has a non-zero size (`Slots::run` rounds zero up to one).
        let raw = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Block { ptr, layout }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `Block::new` with this layout, freed once; whatever was written
        // into it has been dropped in place before (`Running`).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A worker's pool of blocks for request futures.
pub struct Slots {
    free: RefCell<Vec<Block>>,
    /// The layout pooled blocks have: the first one asked for. A future of another layout
    /// (another service's) gets a block of its own, freed after it.
    layout: Cell<Option<Layout>>,
    max: usize,
}

impl Slots {
    /// A pool keeping at most `max` free blocks.
    pub fn new(max: usize) -> Slots {
        Slots {
            free: RefCell::new(Vec::new()),
            layout: Cell::new(None),
            max,
        }
    }

    /// Runs the future `make` builds in a pooled block and returns its output. The future is
    /// built straight into the block (the caller's state holds only `make`'s captures) and
    /// dropped there when it finishes or when this call's future is dropped.
    pub async fn run<F: Future>(&self, make: impl FnOnce() -> F) -> F::Output {
        let t = Layout::new::<F>();
        let layout = Layout::from_size_align(t.size().max(1), t.align()).unwrap_or(t);
        let block = self.take(layout);
        let ptr = block.ptr.as_ptr() as *mut F;
        // SAFETY: the block is live, sized and aligned for `F`, and nothing else points at it.
        unsafe { ptr.write(make()) };
        Running {
            ptr,
            block: Some(block),
            slots: self,
        }
        .await
    }

    fn take(&self, layout: Layout) -> Block {
        if self.layout.get() == Some(layout) {
            if let Some(b) = self.free.borrow_mut().pop() {
                return b;
            }
        }
        Block::new(layout)
    }

    fn put(&self, block: Block) {
        match self.layout.get() {
            None => self.layout.set(Some(block.layout)),
            Some(l) if l != block.layout => return,
            Some(_) => {}
        }
        let mut free = self.free.borrow_mut();
        if free.len() < self.max {
            free.push(block);
        }
    }

    /// Free blocks held (for tests).
    pub fn pooled(&self) -> usize {
        self.free.borrow().len()
    }
}

/// A future living in a block: polled in place, dropped in place.
struct Running<'a, F: Future> {
    ptr: *mut F,
    /// `Some` while the future lives in it.
    block: Option<Block>,
    slots: &'a Slots,
}

impl<F: Future> Running<'_, F> {
    /// Drops the future in place and gives its block back.
    fn release(&mut self) {
        if let Some(block) = self.block.take() {
            // SAFETY: the future was written at `ptr` and not dropped yet (`block` was Some);
            // it is never touched again.
            unsafe { std::ptr::drop_in_place(self.ptr) };
            self.slots.put(block);
        }
    }
}

impl<F: Future> Future for Running<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        assert!(
            self.block.is_some(),
            "a request future polled after it finished"
        );
        // SAFETY: the future sits in heap memory that does not move and is not reused until
        // `release` has dropped it in place, so it stays pinned for its whole life.
        let fut = unsafe { Pin::new_unchecked(&mut *self.ptr) };
        match fut.poll(cx) {
            Poll::Ready(out) => {
                self.release();
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future> Drop for Running<'_, F> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Counts its drops.
    struct Tally(Rc<Cell<u32>>);

    impl Drop for Tally {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// The output comes back, what the future held is dropped once, and the block is reused.
    #[monoio::test_all(timer_enabled = true)]
    async fn runs_drops_once_and_reuses_the_block() {
        let slots = Slots::new(4);
        let drops = Rc::new(Cell::new(0));
        for i in 0..3u32 {
            let held = Tally(drops.clone());
            let out = slots
                .run(|| async move {
                    monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                    let _keep = &held;
                    i * 2
                })
                .await;
            assert_eq!(out, i * 2);
            assert_eq!(drops.get(), i + 1, "the future's state dropped once");
            assert_eq!(slots.pooled(), 1, "one block, reused");
        }
    }

    /// A request future dropped mid-await (its connection task cancelled) is dropped in place
    /// and its block goes back.
    #[monoio::test_all(timer_enabled = true)]
    async fn a_cancelled_run_drops_the_future_and_returns_the_block() {
        let slots = Slots::new(4);
        let drops = Rc::new(Cell::new(0));
        let held = Tally(drops.clone());
        let run = slots.run(|| async move {
            let _keep = &held;
            std::future::pending::<()>().await
        });
        let r = monoio::time::timeout(std::time::Duration::from_millis(5), run).await;
        assert!(r.is_err());
        assert_eq!(drops.get(), 1);
        assert_eq!(slots.pooled(), 1);
    }

    /// Past the bound, returned blocks are freed.
    #[monoio::test_all(timer_enabled = true)]
    async fn keeps_at_most_max_blocks() {
        let slots = Rc::new(Slots::new(2));
        let started = Rc::new(Cell::new(0));
        let go = Rc::new(Cell::new(false));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (s, started, go) = (slots.clone(), started.clone(), go.clone());
            tasks.push(monoio::spawn(async move {
                s.run(|| async move {
                    started.set(started.get() + 1);
                    while !go.get() {
                        monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                })
                .await
            }));
        }
        while started.get() < 5 {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(slots.pooled(), 0, "five blocks in use at once");
        go.set(true);
        for t in tasks {
            t.await;
        }
        assert_eq!(slots.pooled(), 2);
    }
}
