//! A parent context's memory stays flat while a million children come and go.
//!
//! This binary installs a counting allocator that counts only the allocations of the thread
//! that asked for it, so the test harness's own threads cannot disturb the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use beluga_core::Context;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Adds `delta` to the live bytes if this thread is the one being measured.
fn count(delta: isize) {
    // `try_with`: during thread teardown the flag may be gone; then this thread is not measured.
    if COUNTED.try_with(std::cell::Cell::get).unwrap_or(false) {
        LIVE_BYTES.fetch_add(delta, Ordering::SeqCst);
    }
}

#[allow(
    clippy::cast_possible_wrap,
    reason = "allocation sizes are far below isize::MAX"
)]
// SAFETY: every method forwards to the system allocator unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::SeqCst)
}

#[test]
fn a_million_children_leave_the_parent_footprint_flat() {
    COUNTED.with(|counted| counted.set(true));
    let parent = Context::new().with_request_id("req");
    // Warm up whatever lazy state the first child touches.
    drop(parent.child());
    let baseline = live();

    let mut peak = 0;
    for i in 0..1_000_000 {
        let child = if i % 2 == 0 {
            parent.child()
        } else {
            parent.with_session_id("s")
        };
        let grandchild = child.child();
        assert!(!grandchild.is_cancelled());
        peak = peak.max(live() - baseline);
    }
    assert_eq!(live(), baseline, "children left memory behind");
    // Two live contexts at a time: their size, nowhere near a million of anything.
    assert!(peak < 4096, "peak grew to {peak} bytes");

    // A burst of 100k children alive at once, then dropped: the parent gives the memory back.
    let burst: Vec<Context> = (0..100_000).map(|_| parent.child()).collect();
    assert!(live() - baseline > 100_000);
    drop(burst);
    // At most the baseline: the emptied slot table is released, even the warm-up's few slots.
    assert!(
        live() <= baseline,
        "a burst of children left {} bytes behind",
        live() - baseline
    );

    // And cancellation still reaches a child made afterwards.
    let late = parent.child();
    parent.cancel();
    assert!(late.is_cancelled());
}
