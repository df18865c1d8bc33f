//! A producer allocates nothing per item, in either form (`#[stream_producer]` and
//! `stream::produce`): the number of allocations to drain it does not grow with the number of
//! items.
//!
//! This binary installs a counting allocator that counts only the allocations of the thread
//! being measured, so the test harness's own threads cannot disturb the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use beluga_core::{Context, Error, Event, EventStreamExt, stream, stream_producer};
use futures_util::{Stream, StreamExt};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn record() {
    // `try_with`: during thread teardown the flag may be gone; then this thread is not measured.
    if COUNTED.try_with(std::cell::Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards to the system allocator unchanged and only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        let checked: Result<u64, Error> = Ok(i);
        emit!(checked?);
    }
}

/// Allocations made while creating and draining the stream `make(n)` builds.
fn allocations_to_drain<S, F>(rt: &tokio::runtime::Runtime, make: F, n: u64) -> usize
where
    F: Fn(u64) -> S,
    S: Stream<Item = Result<Event<u64>, Error>>,
{
    rt.block_on(async {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        let mut stream = std::pin::pin!(make(n));
        let mut sum = 0;
        while let Some(item) = stream.next().await {
            sum += item.unwrap().into_payload().unwrap_or(0);
        }
        assert_eq!(sum, n * n.saturating_sub(1) / 2);
        ALLOCATIONS.load(Ordering::SeqCst) - before
    })
}

#[test]
fn no_allocation_per_item() {
    // A current-thread runtime: everything measured runs on this thread.
    COUNTED.with(|counted| counted.set(true));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ctx = Context::new();
    let deadline_ctx =
        rt.block_on(async { Context::new().with_timeout(std::time::Duration::from_secs(3600)) });

    let producer = |n| count(ctx.clone(), n);
    let few = allocations_to_drain(&rt, producer, 10);
    let many = allocations_to_drain(&rt, producer, 100_000);
    assert_eq!(few, many, "a producer allocated per item");

    let with_deadline = |n| count(deadline_ctx.clone(), n);
    let few = allocations_to_drain(&rt, with_deadline, 10);
    let many = allocations_to_drain(&rt, with_deadline, 100_000);
    assert_eq!(few, many, "a producer with a deadline allocated per item");

    let inline = |n| {
        stream::produce(&ctx, async move |mut e| {
            for i in 0..n {
                let checked: Result<u64, Error> = Ok(i);
                e.emit(checked?).await;
            }
            Ok(())
        })
    };
    let few = allocations_to_drain(&rt, inline, 10);
    let many = allocations_to_drain(&rt, inline, 100_000);
    assert_eq!(few, many, "stream::produce allocated per item");
    assert_eq!(few, 0, "stream::produce allocated");

    let pipeline = |n| {
        count(ctx.clone(), n)
            .map_payload(|x| x * 2)
            .filter_events(|_| true)
            .map_payload(|x| x / 2)
            .cancellable(&ctx)
    };
    let few = allocations_to_drain(&rt, pipeline, 10);
    let many = allocations_to_drain(&rt, pipeline, 100_000);
    assert_eq!(few, many, "map/filter/cancellable allocated per item");
    println!("allocations to drain a producer of any length: {few}");
}
