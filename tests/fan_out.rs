//! `fan_out`: every consumer sees every item in order, bounded memory, drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use beluga_core::{Error, ErrorCode, Event, EventResult, EventStreamExt, stream};
use beluga_tests::{DropGuard, drops};
use futures_util::StreamExt;

#[tokio::test]
async fn every_consumer_sees_every_item_in_order() {
    let consumers = stream::iter(0..100_u32)
        .fan_out_with_capacity(4, 3)
        .unwrap();
    let results =
        futures_util::future::join_all(consumers.into_iter().map(EventStreamExt::collect_events))
            .await;
    let expected: Vec<Event<u32>> = (0..100).map(Event::data).chain([Event::done()]).collect();
    for collected in results {
        assert_eq!(collected.events, expected);
        assert_eq!(collected.error, None);
    }
}

#[tokio::test]
async fn a_terminal_error_reaches_every_consumer() {
    let items: Vec<EventResult<u8>> = vec![
        Ok(Event::data(1)),
        Err(Error::new(ErrorCode::RateLimit, "429")),
    ];
    let consumers = futures_util::stream::iter(items).fan_out(3).unwrap();
    for consumer in consumers {
        let collected = consumer.collect_events().await;
        assert_eq!(collected.events, [Event::data(1)]);
        assert_eq!(
            collected.error.map(|e| e.code()),
            Some(ErrorCode::RateLimit)
        );
    }
}

#[test]
fn zero_consumers_or_zero_capacity_is_a_clear_error() {
    let err = stream::iter([1]).fan_out(0).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("n = 0"), "{err}");
    let err = stream::iter([1]).fan_out_with_capacity(2, 0).unwrap_err();
    assert!(err.to_string().contains("capacity = 0"), "{err}");
}

#[tokio::test]
async fn any_capacity_works_allocating_only_as_items_arrive() {
    // Far more than could ever be allocated up front.
    for capacity in [1 << 40, usize::MAX, 1 << 20] {
        let consumers = stream::iter(0..100_u32)
            .fan_out_with_capacity(2, capacity)
            .unwrap();
        assert_eq!(consumers[0].capacity(), capacity);
        let results = futures_util::future::join_all(
            consumers.into_iter().map(EventStreamExt::collect_events),
        )
        .await;
        for collected in results {
            assert_eq!(
                collected.data().copied().collect::<Vec<_>>(),
                (0..100).collect::<Vec<_>>(),
                "capacity {capacity}"
            );
            assert_eq!(collected.events.last(), Some(&Event::done()));
        }
    }
}

#[tokio::test]
async fn with_an_unbounded_capacity_an_endless_source_is_pulled_as_it_is_read() {
    let produced = Arc::new(AtomicUsize::new(0));
    let source = {
        let produced = Arc::clone(&produced);
        futures_util::stream::iter(0_u32..).map(move |i| {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(Event::data(i))
        })
    };
    let mut consumers = source.fan_out_with_capacity(2, usize::MAX).unwrap();
    let stalled = consumers.pop().unwrap(); // never polled: its queue takes every item
    let mut reader = consumers.pop().unwrap();
    for expected in 0..1_000 {
        let item = reader.next().await.unwrap().unwrap();
        assert_eq!(item.into_payload(), Some(expected));
    }
    // Pulled in small batches as the reader asks, never all at once.
    let pulled = produced.load(Ordering::SeqCst);
    assert!(pulled < 2_000, "the source ran {pulled} items ahead");
    assert_eq!(stalled.len(), pulled);
}

#[test]
fn an_impossible_number_of_consumers_is_a_clear_error() {
    let err = stream::iter([1])
        .fan_out_with_capacity(usize::MAX, 1)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("consumers"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_consumer_holds_the_source_at_most_capacity_ahead() {
    let produced = Arc::new(AtomicUsize::new(0));
    let source = {
        let produced = Arc::clone(&produced);
        futures_util::stream::iter(0..1_000_u32).map(move |i| {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(Event::data(i))
        })
    };
    let capacity = 5;
    let mut consumers = source.fan_out_with_capacity(2, capacity).unwrap();
    let _stalled = consumers.pop().unwrap(); // never polled
    let mut fast = consumers.pop().unwrap();
    let mut read = 0;
    // The fast consumer reads until it has to wait for the stalled one.
    while let Some(item) = tokio::time::timeout(Duration::from_millis(50), fast.next())
        .await
        .ok()
        .flatten()
    {
        item.unwrap();
        read += 1;
    }
    assert_eq!(read, capacity);
    assert!(
        produced.load(Ordering::SeqCst) <= capacity + 1,
        "the source ran {} items ahead",
        produced.load(Ordering::SeqCst)
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_slow_consumer_releases_the_fast_one() {
    let mut consumers = stream::iter(0..50_u32).fan_out_with_capacity(2, 2).unwrap();
    let slow = consumers.pop().unwrap();
    let fast = consumers.pop().unwrap();
    let reader = tokio::spawn(fast.collect_events());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !reader.is_finished(),
        "the fast consumer should be waiting for the slow one"
    );
    drop(slow);
    let collected = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the fast consumer was never released")
        .unwrap();
    assert_eq!(collected.events.len(), 51);
}

#[tokio::test]
async fn dropping_every_consumer_drops_the_source() {
    let (guard, dropped) = DropGuard::new();
    // More items than the buffer holds: the source is still needed after the first read.
    let source = futures_util::stream::iter(0..100_u32).map(move |i| {
        let _keep = &guard;
        Ok::<_, Error>(Event::data(i))
    });
    let mut consumers = source.fan_out_with_capacity(3, 4).unwrap();
    assert!(consumers[0].next().await.is_some());
    let last = consumers.pop().unwrap();
    drop(consumers);
    assert_eq!(drops(&dropped), 0, "a live consumer still needs the source");
    drop(last);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_on_different_threads_with_a_pending_source() {
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
    let source = tokio_stream_like(rx);
    let consumers = source.fan_out_with_capacity(3, 1).unwrap();
    let tasks: Vec<_> = consumers
        .into_iter()
        .map(|c| tokio::spawn(c.collect_events()))
        .collect();
    for i in 0..200 {
        tx.send(i).await.unwrap();
    }
    drop(tx);
    for task in tasks {
        let collected = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a consumer hung")
            .unwrap();
        assert_eq!(
            collected.data().copied().collect::<Vec<_>>(),
            (0..200).collect::<Vec<_>>()
        );
    }
}

/// A receiver as an event stream whose items arrive later (the source is often pending).
fn tokio_stream_like(
    rx: tokio::sync::mpsc::Receiver<u32>,
) -> impl futures_util::Stream<Item = EventResult<u32>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (Ok(Event::data(v)), rx))
    })
}

#[tokio::test]
async fn a_panicking_source_ends_every_consumer_with_an_error() {
    let source = futures_util::stream::iter(0..3_u32).map(|i| {
        assert!(i < 2, "source broke at {i}");
        Ok::<_, Error>(Event::data(i))
    });
    let consumers = source.fan_out_with_capacity(2, 1).unwrap();
    // Read together: with a buffer of one, each waits for the other.
    let results =
        futures_util::future::join_all(consumers.into_iter().map(EventStreamExt::collect_events))
            .await;
    for collected in results {
        assert_eq!(collected.data().copied().collect::<Vec<_>>(), [0, 1]);
        let err = collected.error.expect("the panic must arrive as an error");
        assert_eq!(err.code(), ErrorCode::Internal);
        assert!(err.to_string().contains("source broke at 2"), "{err}");
    }
}

/// A payload whose `clone` panics on the second copy of the value 3 (so that one consumer already
/// has its copy when the next one's clone panics).
#[derive(Debug)]
struct Brittle(u32, Arc<AtomicUsize>);

impl Clone for Brittle {
    fn clone(&self) -> Self {
        if self.0 == 3 {
            let copies = self.1.fetch_add(1, Ordering::SeqCst);
            assert!(copies < 1, "cloning 3 broke");
        }
        Brittle(self.0, Arc::clone(&self.1))
    }
}

#[tokio::test]
async fn a_panicking_clone_ends_every_consumer_with_the_same_error() {
    for capacity in [1, 4] {
        let copies = Arc::new(AtomicUsize::new(0));
        let items: Vec<_> = (1..=6).map(|i| Brittle(i, Arc::clone(&copies))).collect();
        let consumers = stream::iter(items)
            .fan_out_with_capacity(3, capacity)
            .unwrap();
        let results = futures_util::future::join_all(
            consumers.into_iter().map(EventStreamExt::collect_events),
        )
        .await;
        let first: Vec<u32> = results[0].data().map(|b| b.0).collect();
        // The batch holding 3 reaches nobody; what came before reaches everyone.
        assert!(first.len() < 3, "capacity {capacity}: {first:?}");
        assert_eq!(
            first,
            (1..=u32::try_from(first.len()).unwrap()).collect::<Vec<_>>()
        );
        for collected in results {
            assert_eq!(collected.data().map(|b| b.0).collect::<Vec<_>>(), first);
            let err = collected.error.expect("the panic must arrive as an error");
            assert_eq!(err.code(), ErrorCode::Internal);
            assert!(err.to_string().contains("cloning 3 broke"), "{err}");
        }
    }
}

/// Set while a test wants `Reentrant`'s destructor to call back into the fan-out.
static PROBING: AtomicBool = AtomicBool::new(false);
static PROBES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// A sibling consumer's `len()`, which takes the fan-out's lock.
    static PROBE: std::cell::RefCell<Option<Box<dyn Fn() -> usize>>> =
        const { std::cell::RefCell::new(None) };
}

/// A [`Brittle`] payload (its `clone` panics on the second copy of 3) whose destructor calls
/// back into the fan-out it came from, through [`PROBE`].
#[derive(Clone, Debug)]
struct Reentrant(#[allow(dead_code, reason = "carried for its `clone`, never read")] Brittle);

impl Drop for Reentrant {
    fn drop(&mut self) {
        if PROBING.load(Ordering::SeqCst) {
            PROBE.with(|probe| {
                if let Some(len) = probe.borrow().as_ref() {
                    len();
                    PROBES.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    }
}

#[test]
fn destructors_of_items_put_back_never_run_under_the_lock() {
    // If they did, the destructor's call into the fan-out would take the lock its own thread
    // holds and hang: run the case on a thread of its own and give it a generous limit.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let results = rt.block_on(async {
            let copies = Arc::new(AtomicUsize::new(0));
            let items: Vec<_> = (1..=6)
                .map(|i| Reentrant(Brittle(i, Arc::clone(&copies))))
                .collect();
            let mut consumers = stream::iter(items).fan_out_with_capacity(3, 4).unwrap();
            let sibling = consumers.pop().unwrap();
            PROBE.with(|probe| *probe.borrow_mut() = Some(Box::new(move || sibling.len())));
            PROBING.store(true, Ordering::SeqCst);
            let results = futures_util::future::join_all(
                consumers.into_iter().map(EventStreamExt::collect_events),
            )
            .await;
            PROBING.store(false, Ordering::SeqCst);
            PROBE.with(|probe| probe.borrow_mut().take());
            results
        });
        for collected in &results {
            let err = collected
                .error
                .as_ref()
                .expect("the clone's panic is an error");
            assert_eq!(err.code(), ErrorCode::Internal);
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("a destructor ran under the fan-out's lock (deadlock), or the case failed");
    assert!(
        PROBES.load(Ordering::SeqCst) > 0,
        "no destructor called back"
    );
}

static DROP_BREAKS: AtomicBool = AtomicBool::new(false);

/// A payload whose destructor panics once, when [`DROP_BREAKS`] is set.
#[derive(Clone, Debug, PartialEq)]
struct BreaksOnDrop(u32);

impl Drop for BreaksOnDrop {
    fn drop(&mut self) {
        let armed = DROP_BREAKS.swap(false, Ordering::SeqCst);
        assert!(!armed, "dropping {} broke", self.0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_destructor_in_a_dropped_consumer_loses_no_wake_up() {
    let items: Vec<BreaksOnDrop> = (1..=5).map(BreaksOnDrop).collect();
    let mut consumers = stream::iter(items).fan_out_with_capacity(2, 1).unwrap();
    let slow = consumers.pop().unwrap();
    let mut fast = consumers.pop().unwrap();
    // `fast` takes 1; `slow`'s queue is full with its copy, so `fast` must wait for room.
    assert_eq!(
        fast.next().await.unwrap().unwrap().into_payload(),
        Some(BreaksOnDrop(1))
    );
    let rest = tokio::spawn(fast.collect_events());
    beluga_tests::settle().await;
    assert!(!rest.is_finished(), "fast should be waiting for room");
    // Dropping `slow` makes room, and drops its queued copy, whose destructor panics.
    DROP_BREAKS.store(true, Ordering::SeqCst);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(slow)));
    assert!(dropped.is_err(), "the destructor's panic comes out of drop");
    let collected = tokio::time::timeout(Duration::from_secs(3600), rest)
        .await
        .expect("the waiting consumer was never woken")
        .unwrap();
    assert_eq!(
        collected.data().map(|b| b.0).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
}

/// A source that yields `burst` items at a time, then is pending once (waking its task at
/// once), so that a consumer pulls a batch of `burst` items at a time.
struct Bursts {
    next: u32,
    end: u32,
    burst: u32,
    yielded: u32,
}

impl futures_util::Stream for Bursts {
    type Item = EventResult<u32>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.next == self.end {
            return std::task::Poll::Ready(None);
        }
        if self.yielded == self.burst {
            self.yielded = 0;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.yielded += 1;
        self.next += 1;
        std::task::Poll::Ready(Some(Ok(Event::data(self.next - 1))))
    }
}

#[tokio::test]
async fn a_batch_reaching_a_queue_that_still_holds_items_keeps_the_order() {
    let source = Bursts {
        next: 0,
        end: 20,
        burst: 2,
        yielded: 0,
    };
    let mut consumers = source.fan_out_with_capacity(2, 4).unwrap();
    let slow = consumers.pop().unwrap();
    let mut fast = consumers.pop().unwrap();
    // Two batches of two for `fast`: the first reaches `slow`'s empty queue, the second one
    // that still holds the first.
    for expected in 0..4 {
        let item = fast.next().await.unwrap().unwrap();
        assert_eq!(item.into_payload(), Some(expected));
    }
    assert_eq!(slow.len(), 4);
    let (fast, slow) =
        futures_util::future::join(fast.collect_events(), slow.collect_events()).await;
    assert_eq!(
        fast.data().copied().collect::<Vec<_>>(),
        (4..20).collect::<Vec<_>>()
    );
    assert_eq!(
        slow.data().copied().collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
}

/// Counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_consumer_waiting_for_room_from_another_task_is_woken_there() {
    use std::task::{Context, Poll, Waker};
    let mut consumers = stream::iter(0..3_u32).fan_out_with_capacity(2, 1).unwrap();
    let mut slow = consumers.pop().unwrap();
    let mut fast = consumers.pop().unwrap();
    let (first, second) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let first_waker = Waker::from(Arc::clone(&first));
    let second_waker = Waker::from(Arc::clone(&second));
    let mut first_cx = Context::from_waker(&first_waker);
    let mut second_cx = Context::from_waker(&second_waker);
    // `fast` pulls 0; `slow`'s queue is full with its copy, so `fast` waits for room.
    assert!(matches!(
        fast.poll_next_unpin(&mut first_cx),
        Poll::Ready(Some(Ok(_)))
    ));
    assert!(fast.poll_next_unpin(&mut first_cx).is_pending());
    // Still waiting, now from another task: that task is the one to wake.
    assert!(fast.poll_next_unpin(&mut second_cx).is_pending());
    let noop = futures_util::task::noop_waker();
    assert!(matches!(
        slow.poll_next_unpin(&mut Context::from_waker(&noop)),
        Poll::Ready(Some(Ok(_)))
    ));
    assert_eq!(
        first.0.load(Ordering::SeqCst),
        0,
        "the first task no longer waits"
    );
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
    let item = fast.poll_next_unpin(&mut second_cx);
    assert!(
        matches!(&item, Poll::Ready(Some(Ok(event))) if event.payload() == Some(&1)),
        "{item:?}"
    );
}

/// A waker whose destructor takes the fan-out's lock (through a sibling consumer's `len()`).
struct LockingWaker(
    std::sync::Mutex<stream::FanOut<futures_util::stream::Pending<EventResult<u32>>>>,
);

impl std::task::Wake for LockingWaker {
    fn wake(self: Arc<Self>) {}
}

impl Drop for LockingWaker {
    fn drop(&mut self) {
        let sibling = self.0.lock().unwrap();
        sibling.len();
        LOCKING_WAKERS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

static LOCKING_WAKERS_DROPPED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_waker_replaced_while_waiting_for_the_source_is_dropped_outside_the_lock() {
    // If it were dropped under the lock, its destructor would take the lock its own thread
    // holds: run the case on a thread of its own and give it a generous limit.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::task::{Context, Waker};
        // The source never yields: every poll registers the consumer to be woken by it.
        let mut consumers = futures_util::stream::pending::<EventResult<u32>>()
            .fan_out(2)
            .unwrap();
        let sibling = consumers.pop().unwrap();
        let mut consumer = consumers.pop().unwrap();
        let first = Waker::from(Arc::new(LockingWaker(std::sync::Mutex::new(sibling))));
        assert!(
            consumer
                .poll_next_unpin(&mut Context::from_waker(&first))
                .is_pending()
        );
        // The fan-out now holds the only clone of `first`.
        drop(first);
        let second = futures_util::task::noop_waker();
        assert!(
            consumer
                .poll_next_unpin(&mut Context::from_waker(&second))
                .is_pending()
        );
        done.send(LOCKING_WAKERS_DROPPED.load(Ordering::SeqCst))
            .unwrap();
    });
    let dropped = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("a waker was dropped under the fan-out's lock (deadlock), or the case failed");
    assert_eq!(dropped, 1, "the replaced waker was not dropped");
}

/// A waker whose data is one fixed place (a "task slot") standing for whichever task owns it
/// now, and whose `clone` allocates a waker of its own for that task: an original's data
/// address is then reused by the next task's waker, the way a freed address can be.
mod slot_waker {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{RawWaker, RawWakerVTable, Waker};

    /// The fixed place: the woken flag of the task that owns it now.
    pub(crate) struct TaskSlot(pub(crate) Mutex<Arc<AtomicBool>>);

    static BORROWED: RawWakerVTable =
        RawWakerVTable::new(clone_borrowed, wake_borrowed, wake_borrowed, drop_borrowed);
    static OWNED: RawWakerVTable =
        RawWakerVTable::new(clone_owned, wake_owned, wake_by_ref_owned, drop_owned);

    /// The waker of the task that owns `slot` now. `slot` outlives it (the tests keep it).
    pub(crate) fn borrowed(slot: &'static TaskSlot) -> Waker {
        let data = std::ptr::from_ref(slot).cast::<()>();
        // SAFETY: `BORROWED`'s functions take `data` as a `&'static TaskSlot`, which it is.
        unsafe { Waker::from_raw(RawWaker::new(data, &BORROWED)) }
    }

    fn owned(flag: Arc<AtomicBool>) -> RawWaker {
        RawWaker::new(Arc::into_raw(flag).cast::<()>(), &OWNED)
    }

    unsafe fn clone_borrowed(data: *const ()) -> RawWaker {
        // SAFETY: `borrowed` made `data` from a `&'static TaskSlot`.
        let slot = unsafe { &*data.cast::<TaskSlot>() };
        owned(Arc::clone(&slot.0.lock().unwrap()))
    }

    unsafe fn wake_borrowed(data: *const ()) {
        // SAFETY: as in `clone_borrowed`.
        let slot = unsafe { &*data.cast::<TaskSlot>() };
        slot.0.lock().unwrap().store(true, Ordering::SeqCst);
    }

    unsafe fn drop_borrowed(_: *const ()) {}

    unsafe fn clone_owned(data: *const ()) -> RawWaker {
        // SAFETY: `owned` made `data` with `Arc::into_raw`, and this waker still holds it.
        let flag = unsafe { Arc::from_raw(data.cast::<AtomicBool>()) };
        let clone = Arc::clone(&flag);
        std::mem::forget(flag);
        owned(clone)
    }

    unsafe fn wake_owned(data: *const ()) {
        // SAFETY: as in `clone_owned`; waking by value gives the reference up.
        let flag = unsafe { Arc::from_raw(data.cast::<AtomicBool>()) };
        flag.store(true, Ordering::SeqCst);
    }

    unsafe fn wake_by_ref_owned(data: *const ()) {
        // SAFETY: as in `clone_owned`.
        let flag = unsafe { &*data.cast::<AtomicBool>() };
        flag.store(true, Ordering::SeqCst);
    }

    unsafe fn drop_owned(data: *const ()) {
        // SAFETY: as in `clone_owned`; dropping gives the reference up.
        drop(unsafe { Arc::from_raw(data.cast::<AtomicBool>()) });
    }
}

#[test]
fn a_waiting_consumer_polled_by_a_new_task_at_a_reused_waker_address_is_woken() {
    use std::task::{Context, Poll};

    let first_task = Arc::new(AtomicBool::new(false));
    let slot: &'static slot_waker::TaskSlot = Box::leak(Box::new(slot_waker::TaskSlot(
        std::sync::Mutex::new(Arc::clone(&first_task)),
    )));
    let mut consumers = stream::iter(0..4_u32).fan_out_with_capacity(2, 1).unwrap();
    let mut other = consumers.pop().unwrap();
    let mut waiting = consumers.pop().unwrap();

    // The first task pulls one item (filling the other consumer's queue) and then waits for
    // room.
    let waker = slot_waker::borrowed(slot);
    let mut cx = Context::from_waker(&waker);
    let item = waiting.poll_next_unpin(&mut cx);
    assert!(matches!(item, Poll::Ready(Some(Ok(_)))));
    assert!(waiting.poll_next_unpin(&mut cx).is_pending());
    drop(waker);

    // A new task takes the slot over: its waker has the same data and vtable as the first
    // one's, and must be the one woken when room is made.
    let second_task = Arc::new(AtomicBool::new(false));
    *slot.0.lock().unwrap() = Arc::clone(&second_task);
    let waker = slot_waker::borrowed(slot);
    let mut cx = Context::from_waker(&waker);
    assert!(waiting.poll_next_unpin(&mut cx).is_pending());

    let noop = futures_util::task::noop_waker();
    let item = other.poll_next_unpin(&mut Context::from_waker(&noop));
    assert!(matches!(item, Poll::Ready(Some(Ok(_)))));
    assert!(
        second_task.load(Ordering::SeqCst),
        "the task now polling the waiting consumer was not woken when room was made"
    );
    assert!(matches!(
        waiting.poll_next_unpin(&mut cx),
        Poll::Ready(Some(Ok(_)))
    ));
}

/// A waker that panics when armed to: on its next `clone`, or on its next wake. The waker-side
/// counterpart of [`Brittle`], the payload whose `clone` panics.
mod brittle_waker {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{RawWaker, RawWakerVTable, Waker};

    /// What the waker does next, and how often it was woken.
    #[derive(Default)]
    pub(crate) struct BrittleWaker {
        pub(crate) break_clone: AtomicBool,
        pub(crate) break_wake: AtomicBool,
        pub(crate) wakes: AtomicUsize,
    }

    impl BrittleWaker {
        /// A waker for `this`.
        pub(crate) fn waker(this: &Arc<BrittleWaker>) -> Waker {
            let data = Arc::into_raw(Arc::clone(this)).cast::<()>();
            // SAFETY: `VTABLE`'s functions take `data` as an `Arc<Brittle>` made by
            // `Arc::into_raw`, which it is, and each raw waker owns one reference.
            unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
        }
    }

    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` came from `Arc::into_raw` and this waker still holds its reference.
        let this = unsafe { &*data.cast::<BrittleWaker>() };
        assert!(
            !this.break_clone.swap(false, Ordering::SeqCst),
            "the waker's clone broke"
        );
        // SAFETY: as above; the new raw waker owns the reference this adds.
        unsafe { Arc::increment_strong_count(data.cast::<BrittleWaker>()) };
        RawWaker::new(data, &VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        // SAFETY: as in `clone`; waking by value gives the reference up, even if it panics.
        let this = unsafe { Arc::from_raw(data.cast::<BrittleWaker>()) };
        this.wakes.fetch_add(1, Ordering::SeqCst);
        assert!(
            !this.break_wake.swap(false, Ordering::SeqCst),
            "the waker's wake broke"
        );
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: as in `clone`.
        let this = unsafe { &*data.cast::<BrittleWaker>() };
        this.wakes.fetch_add(1, Ordering::SeqCst);
        assert!(
            !this.break_wake.swap(false, Ordering::SeqCst),
            "the waker's wake broke"
        );
    }

    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: as in `clone`; dropping gives the reference up.
        drop(unsafe { Arc::from_raw(data.cast::<BrittleWaker>()) });
    }
}

/// Polls `consumer` once with `waker`, catching a panic.
fn poll_catching(
    consumer: &mut stream::FanOut<impl futures_util::Stream<Item = EventResult<u32>>>,
    waker: &std::task::Waker,
) -> std::thread::Result<std::task::Poll<Option<EventResult<u32>>>> {
    let mut cx = std::task::Context::from_waker(waker);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        consumer.poll_next_unpin(&mut cx)
    }))
}

/// Polls every consumer in turn (with a waker that does nothing) until all have ended, and
/// returns each one's payloads, in the order it returned them.
fn drain_in_turn(
    consumers: &mut [stream::FanOut<impl futures_util::Stream<Item = EventResult<u32>>>],
    mut seen: Vec<Vec<u32>>,
) -> Vec<Vec<u32>> {
    let noop = futures_util::task::noop_waker();
    let mut ended = vec![false; consumers.len()];
    for _ in 0..10_000 {
        if ended.iter().all(|e| *e) {
            return seen;
        }
        for (k, consumer) in consumers.iter_mut().enumerate() {
            match poll_catching(consumer, &noop).expect("a good waker never panics") {
                std::task::Poll::Ready(Some(item)) => {
                    if let Some(n) = item.unwrap().into_payload() {
                        seen[k].push(n);
                    }
                }
                std::task::Poll::Ready(None) => ended[k] = true,
                std::task::Poll::Pending => {}
            }
        }
    }
    panic!("the consumers never ended: {seen:?}");
}

#[test]
fn a_waker_whose_clone_panics_leaves_the_order_alone() {
    use brittle_waker::BrittleWaker;
    // With a buffer of two, the first pull fills the other consumer's queue, and the puller
    // registers to wait for room (cloning its waker) before it returns its first item.
    let mut consumers = stream::iter(1..=6_u32).fan_out_with_capacity(2, 2).unwrap();
    let brittle = Arc::new(BrittleWaker::default());
    brittle.break_clone.store(true, Ordering::SeqCst);
    let waker = BrittleWaker::waker(&brittle);
    assert!(
        poll_catching(&mut consumers[0], &waker).is_err(),
        "the clone broke"
    );
    let seen = drain_in_turn(&mut consumers, vec![Vec::new(); 2]);
    assert_eq!(seen, [(1..=6).collect::<Vec<_>>(), (1..=6).collect()]);
}

#[test]
fn a_panicking_wake_of_a_consumer_waiting_for_room_leaves_the_order_alone() {
    use brittle_waker::BrittleWaker;
    // Two pulls of two items: the second reaches a queue that still holds the first, so the
    // slow consumer's queue is oldest first, and full.
    let source = Bursts {
        next: 0,
        end: 8,
        burst: 2,
        yielded: 0,
    };
    let mut consumers = source.fan_out_with_capacity(2, 4).unwrap();
    let brittle = Arc::new(BrittleWaker::default());
    let waker = BrittleWaker::waker(&brittle);
    let mut fast = Vec::new();
    for _ in 0..5 {
        if let std::task::Poll::Ready(Some(item)) =
            poll_catching(&mut consumers[0], &waker).unwrap()
        {
            fast.push(item.unwrap().into_payload().unwrap());
        }
    }
    assert_eq!(fast, [0, 1, 2, 3], "the fast consumer now waits for room");
    // Taking its items makes room, which wakes the fast consumer's waker: it panics.
    brittle.break_wake.store(true, Ordering::SeqCst);
    let noop = futures_util::task::noop_waker();
    assert!(
        poll_catching(&mut consumers[1], &noop).is_err(),
        "the wake broke"
    );
    let seen = drain_in_turn(&mut consumers, vec![fast, Vec::new()]);
    assert_eq!(seen, [(0..8).collect::<Vec<_>>(), (0..8).collect()]);
}

/// A source fed by the test: pending (keeping the waker it was polled with) until items are
/// pushed, ended once closed.
#[derive(Clone, Default)]
struct Fed(Arc<std::sync::Mutex<FedState>>);

#[derive(Default)]
struct FedState {
    items: std::collections::VecDeque<u32>,
    waker: Option<std::task::Waker>,
    closed: bool,
}

impl Fed {
    /// Queues `items`, without waking the source.
    fn push(&self, items: impl IntoIterator<Item = u32>) {
        self.0.lock().unwrap().items.extend(items);
    }

    /// Ends the source once its items are taken, without waking it.
    fn close(&self) {
        self.0.lock().unwrap().closed = true;
    }

    /// Wakes the waker the source was last polled with, as a channel's sender would.
    fn wake(&self) {
        let waker = self.0.lock().unwrap().waker.take();
        waker.expect("the source is waiting").wake();
    }
}

impl futures_util::Stream for Fed {
    type Item = EventResult<u32>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut state = self.0.lock().unwrap();
        match state.items.pop_front() {
            Some(n) => std::task::Poll::Ready(Some(Ok(Event::data(n)))),
            None if state.closed => std::task::Poll::Ready(None),
            None => {
                state.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// Polls `consumer` with `waker` until it is pending, adding its payloads to `seen`.
fn read_until_pending(
    consumer: &mut stream::FanOut<Fed>,
    waker: &std::task::Waker,
    seen: &mut Vec<u32>,
) {
    loop {
        match poll_catching(consumer, waker).expect("no wake-up is broken here") {
            std::task::Poll::Ready(Some(item)) => seen.push(item.unwrap().into_payload().unwrap()),
            std::task::Poll::Ready(None) => panic!("the source has not ended"),
            std::task::Poll::Pending => return,
        }
    }
}

#[test]
fn a_panicking_wake_of_a_consumer_waiting_for_the_source_loses_no_order_and_no_wake_up() {
    use brittle_waker::BrittleWaker;
    let fed = Fed::default();
    let mut consumers = fed.clone().fan_out_with_capacity(3, 4).unwrap();
    let mut seen = vec![Vec::new(); 3];
    // The second and third consumers wait for the source; the second's waker will panic.
    let brittle = Arc::new(BrittleWaker::default());
    let counting = Arc::new(BrittleWaker::default());
    let noop = futures_util::task::noop_waker();
    let wakers = [
        noop.clone(),
        BrittleWaker::waker(&brittle),
        BrittleWaker::waker(&counting),
    ];
    for k in [1, 2] {
        read_until_pending(&mut consumers[k], &wakers[k], &mut seen[k]);
    }

    // The first consumer pulls three items and wakes the other two: the second's wake panics.
    fed.push([1, 2, 3]);
    brittle.break_wake.store(true, Ordering::SeqCst);
    assert!(
        poll_catching(&mut consumers[0], &noop).is_err(),
        "the wake broke"
    );
    assert_eq!(
        counting.wakes.load(Ordering::SeqCst),
        1,
        "the third consumer's wake-up was lost"
    );
    for k in 0..3 {
        read_until_pending(&mut consumers[k], &wakers[k], &mut seen[k]);
    }

    // The source wakes every waiting consumer when more comes: the second's wake panics there.
    fed.push([4, 5]);
    brittle.break_wake.store(true, Ordering::SeqCst);
    let woken = counting.wakes.load(Ordering::SeqCst);
    assert!(
        std::panic::catch_unwind(|| fed.wake()).is_err(),
        "the wake broke"
    );
    assert_eq!(
        counting.wakes.load(Ordering::SeqCst),
        woken + 1,
        "the third consumer's wake-up was lost"
    );

    fed.close();
    let seen = drain_in_turn(&mut consumers, seen);
    let all: Vec<u32> = (1..=5).collect();
    assert_eq!(seen, [all.clone(), all.clone(), all]);
}
