//! Allocation counting, for proving the steady state allocates nothing per request
//! (`--features count-allocs`; off in normal builds, where it costs nothing).
//!
//! Wraps the system allocator and counts allocations in a per-thread counter (no shared
//! read-modify-write), summed on demand. `switchyard_allocations_total` in `/metrics` reports
//! the sum when the feature is on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The counting allocator.
pub struct Counting;

thread_local! {
    static MINE: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

static SLOTS: Mutex<Vec<&'static AtomicU64>> = Mutex::new(Vec::new());
static GUARD: AtomicU64 = AtomicU64::new(0);

fn slot() -> Option<&'static AtomicU64> {
    MINE.try_with(|m| {
        if let Some(s) = m.get() {
            return Some(s);
        }
        // First allocation on this thread: register a slot (this allocates; the guard keeps
        // that allocation from recursing into here).
        if GUARD.swap(1, Ordering::Acquire) == 1 {
            return None;
        }
        let s: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        if let Ok(mut v) = SLOTS.lock() {
            v.push(s);
        }
        GUARD.store(0, Ordering::Release);
        m.set(Some(s));
        Some(s)
    })
    .ok()
    .flatten()
}

// SAFETY: delegates to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(s) = slot() {
            s.store(s.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(s) = slot() {
            s.store(s.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) so far, all threads.
pub fn total() -> u64 {
    SLOTS
        .lock()
        .map(|v| v.iter().map(|s| s.load(Ordering::Relaxed)).sum())
        .unwrap_or(0)
}
