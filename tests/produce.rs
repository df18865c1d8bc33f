//! `stream::produce`, the inline form of `#[stream_producer]`: body semantics, cancellation,
//! drop, and every shape user code can give an emit future (dropped by `select!`, never polled,
//! held by `FuturesUnordered` or `join!`, polled twice), with the exact sequence each must
//! produce.
//!
//! Most tests drive the stream by hand with a waker that counts its wakes, so that "never
//! `Pending`" (no hang) and "wakes nobody" are asserted exactly; all of them run under Miri.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use beluga_core::stream::{self, Emitter};
use beluga_core::{Context, Error, ErrorCode, Event, EventResult, EventStreamExt};
use beluga_tests::{DropGuard, drops};
use futures_util::stream::{FusedStream, FuturesUnordered};
use futures_util::{Stream, StreamExt};

/// A waker that counts how often it was woken.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls streams by hand with a [`CountingWaker`].
struct Driver {
    counter: Arc<CountingWaker>,
    waker: Waker,
}

impl Driver {
    fn new() -> Self {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        Driver { counter, waker }
    }

    fn wakes(&self) -> usize {
        self.counter.0.load(Ordering::SeqCst)
    }

    fn poll<S: Stream + ?Sized>(&self, stream: Pin<&mut S>) -> Poll<Option<S::Item>> {
        stream.poll_next(&mut TaskContext::from_waker(&self.waker))
    }

    /// Polls `stream` until it ends, asserting that every poll is ready (the body never waits
    /// on anything but its emits, so a `Pending` would be a hang), and that it stays ended.
    fn drain<T, S>(&self, stream: S) -> Vec<Result<Event<T>, ErrorCode>>
    where
        S: Stream<Item = EventResult<T>>,
    {
        let mut stream = pin!(stream);
        let mut items = Vec::new();
        loop {
            match self.poll(stream.as_mut()) {
                Poll::Ready(Some(item)) => items.push(item.map_err(|err| err.code())),
                Poll::Ready(None) => break,
                Poll::Pending => panic!("the stream hung after {} items", items.len()),
            }
            assert!(items.len() < 100, "the stream never ended");
        }
        assert!(matches!(self.poll(stream.as_mut()), Poll::Ready(None)));
        items
    }
}

/// `Ok(Event::data(x))` for each `x`, then `Ok(Event::done())`.
fn data_then_done(xs: &[u32]) -> Vec<Result<Event<u32>, ErrorCode>> {
    xs.iter()
        .map(|&x| Ok(Event::data(x)))
        .chain([Ok(Event::done())])
        .collect()
}

/// A future that is ready at its second poll and wakes its waker at the first, as
/// `tokio::task::yield_now` does, without a runtime.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

#[test]
fn emits_data_and_events_then_done_and_wakes_nobody() {
    let driver = Driver::new();
    let ctx = Context::new();
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        for i in 0..3 {
            e.emit(i).await;
        }
        e.emit(Event::tool_call(7)).await;
        e.emit(Event::error(Error::new(ErrorCode::ToolFailed, "reported")))
            .await;
        e.emit(8).await;
        Ok(())
    }));
    assert_eq!(
        items,
        [
            Ok(Event::data(0)),
            Ok(Event::data(1)),
            Ok(Event::data(2)),
            Ok(Event::tool_call(7)),
            Ok(Event::error(Error::new(ErrorCode::ToolFailed, "reported"))),
            Ok(Event::data(8)),
            Ok(Event::done()),
        ]
    );
    assert_eq!(driver.wakes(), 0);
}

#[test]
fn the_body_runs_no_further_ahead_than_one_item() {
    let driver = Driver::new();
    let resumed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&resumed);
    let mut stream = pin!(stream::produce(&Context::new(), async move |mut e| {
        for i in 0_usize..3 {
            e.emit(i).await;
            seen.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }));
    for i in 0_usize..3 {
        let item = driver.poll(stream.as_mut());
        assert!(matches!(item, Poll::Ready(Some(Ok(ref ev))) if *ev == Event::data(i)));
        assert_eq!(resumed.load(Ordering::SeqCst), i);
    }
}

#[test]
fn question_mark_and_err_end_the_stream_with_the_error() {
    let driver = Driver::new();
    let ctx = Context::new();
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        e.emit(1).await;
        let io: Result<u32, std::io::Error> = Err(std::io::ErrorKind::TimedOut.into());
        e.emit(io?).await;
        Ok(())
    }));
    assert_eq!(items, [Ok(Event::data(1)), Err(ErrorCode::Timeout)]);

    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        e.emit(1).await;
        Err(Error::new(ErrorCode::InvalidInput, "no"))
    }));
    assert_eq!(items, [Ok(Event::data(1)), Err(ErrorCode::InvalidInput)]);
}

#[test]
fn an_emitted_done_with_ends_the_stream_and_drops_the_body() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let ran_after = Arc::new(AtomicUsize::new(0));
    let after = Arc::clone(&ran_after);
    let mut stream = pin!(stream::produce(&Context::new(), async move |mut e| {
        let _guard = guard;
        e.emit(1).await;
        e.emit(Event::done_with(2)).await;
        after.fetch_add(1, Ordering::SeqCst);
        e.emit(3).await;
        Ok(())
    }));
    assert!(
        matches!(driver.poll(stream.as_mut()), Poll::Ready(Some(Ok(ev))) if ev == Event::data(1))
    );
    assert!(
        matches!(driver.poll(stream.as_mut()), Poll::Ready(Some(Ok(ev))) if ev == Event::done_with(2))
    );
    assert_eq!(drops(&dropped), 1, "the body outlived its terminal item");
    assert!(stream.is_terminated());
    assert!(matches!(driver.poll(stream.as_mut()), Poll::Ready(None)));
    assert!(matches!(driver.poll(stream.as_mut()), Poll::Ready(None)));
    assert_eq!(ran_after.load(Ordering::SeqCst), 0);
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a destructor in the body panicked");
    }
}

#[test]
fn a_stream_whose_body_panics_while_dropped_ends_when_polled_again() {
    // The body is dropped as the stream ends: after an emitted `done`, and after it returned
    // (a future whose own destructor panics).
    struct ReadyThenPanicOnDrop;
    impl Future for ReadyThenPanicOnDrop {
        type Output = Result<(), Error>;
        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Self::Output> {
            Poll::Ready(Ok(()))
        }
    }
    impl Drop for ReadyThenPanicOnDrop {
        fn drop(&mut self) {
            panic!("the body's destructor panicked");
        }
    }
    let driver = Driver::new();
    let done = pin!(stream::produce(&Context::new(), async |mut e| {
        let _bomb = PanicOnDrop;
        e.emit(Event::done()).await;
        Ok(())
    }));
    let returned = pin!(stream::produce(&Context::new(), |_: Emitter<'_, u32>| {
        ReadyThenPanicOnDrop
    }));
    for mut stream in [
        done as Pin<&mut dyn FusedStream<Item = EventResult<u32>>>,
        returned,
    ] {
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            driver.poll(stream.as_mut())
        }));
        assert!(
            polled.is_err(),
            "the destructor's panic reaches the consumer"
        );
        // Polled again, the stream never touches the dropped body: it has ended.
        assert!(matches!(driver.poll(stream.as_mut()), Poll::Ready(None)));
        assert!(stream.is_terminated());
    }
}

#[test]
fn dropping_the_stream_drops_the_body_inside_drop() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let mut stream = Box::pin(stream::produce(&Context::new(), async move |mut e| {
        let _guard = guard;
        e.emit(1).await;
        std::future::pending::<()>().await;
        Ok(())
    }));
    assert!(matches!(
        driver.poll(stream.as_mut()),
        Poll::Ready(Some(Ok(_)))
    ));
    assert!(driver.poll(stream.as_mut()).is_pending());
    assert_eq!(drops(&dropped), 0);
    drop(stream);
    assert_eq!(drops(&dropped), 1);
}

#[test]
fn a_cancel_wakes_a_parked_body_and_ends_it_at_the_next_poll() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let mut stream = pin!(stream::produce(&ctx, async move |mut e| {
        let _guard = guard;
        e.emit(1).await;
        std::future::pending::<()>().await;
        Ok(())
    }));
    assert!(matches!(
        driver.poll(stream.as_mut()),
        Poll::Ready(Some(Ok(_)))
    ));
    assert!(driver.poll(stream.as_mut()).is_pending());
    assert_eq!(driver.wakes(), 0);
    ctx.cancel();
    assert_eq!(driver.wakes(), 1, "the parked stream was not woken");
    let item = driver.poll(stream.as_mut());
    assert!(matches!(item, Poll::Ready(Some(Err(ref err))) if err.code() == ErrorCode::Cancelled));
    assert_eq!(drops(&dropped), 1);
    assert!(matches!(driver.poll(stream.as_mut()), Poll::Ready(None)));
}

#[test]
fn a_cancel_between_items_ends_before_the_next_emit() {
    let driver = Driver::new();
    let ctx = Context::new();
    let mut stream = pin!(stream::produce(&ctx, async |mut e| {
        for i in 0..1_000 {
            e.emit(i).await;
        }
        Ok(())
    }));
    assert!(
        matches!(driver.poll(stream.as_mut()), Poll::Ready(Some(Ok(ev))) if ev == Event::data(0))
    );
    ctx.cancel();
    let items = driver.drain(stream);
    assert_eq!(items, [Err(ErrorCode::Cancelled)]);
}

#[test]
fn a_cancelled_context_never_starts_the_body() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let started = Arc::new(AtomicUsize::new(0));
    let start = Arc::clone(&started);
    let ctx = Context::new();
    ctx.cancel();
    let items = driver.drain(stream::produce(&ctx, async move |mut e| {
        let _guard = guard;
        start.fetch_add(1, Ordering::SeqCst);
        e.emit(1).await;
        Ok(())
    }));
    assert_eq!(items, [Err(ErrorCode::Cancelled)]);
    assert_eq!(started.load(Ordering::SeqCst), 0);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_parked_body_on_time() {
    let (guard, dropped) = DropGuard::new();
    let start = tokio::time::Instant::now();
    let ctx = Context::new().with_timeout(Duration::from_millis(50));
    let collected = stream::produce(&ctx, async move |mut e| {
        let _guard = guard;
        e.emit(1).await;
        std::future::pending::<()>().await;
        Ok(())
    })
    .collect_events()
    .await;
    assert_eq!(collected.events, [Event::data(1)]);
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_awaits_between_emits_is_an_ordinary_stream() {
    let words = vec!["a".to_owned(), "b".to_owned()];
    let words: Vec<String> = stream::produce(&Context::new(), async move |mut e| {
        for word in words {
            tokio::time::sleep(Duration::from_millis(10)).await;
            e.emit(word).await;
        }
        Ok(())
    })
    .payloads()
    .map(Result::unwrap)
    .collect()
    .await;
    assert_eq!(words, ["a", "b"]);
}

#[test]
fn select_dropping_an_emit_after_its_first_poll_still_delivers_it_in_order() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        for i in 0..3 {
            // The emit is polled once, then the ready branch wins and drops it.
            tokio::select! {
                biased;
                () = e.emit(i) => unreachable!("the consumer cannot have taken it yet"),
                () = std::future::ready(()) => {}
            }
        }
        e.emit(3).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[0, 1, 2, 3]));
    assert_eq!(driver.wakes(), 0);
}

#[test]
fn emit_sends_at_once_even_if_its_future_is_never_polled() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        // The ready branch wins before the emit future is polled.
        tokio::select! {
            biased;
            () = std::future::ready(()) => {}
            () = e.emit(1) => unreachable!(),
        }
        drop(e.emit(2));
        e.emit(3).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[1, 2, 3]));
    assert_eq!(driver.wakes(), 0);
}

#[test]
fn an_emit_future_polled_again_before_the_value_is_taken_waits() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        let mut emit = e.emit(1);
        // Two polls within one poll of the stream: the value is still in the slot.
        assert!(futures_util::poll!(&mut emit).is_pending());
        assert!(futures_util::poll!(&mut emit).is_pending());
        emit.await;
        e.emit(2).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[1, 2]));
    assert_eq!(driver.wakes(), 0, "the body's own waker was woken");
}

#[test]
fn queued_values_come_out_before_the_body_resumes() {
    let driver = Driver::new();
    let resumed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&resumed);
    let mut stream = pin!(stream::produce(&Context::new(), async move |mut e| {
        for i in 0..3 {
            drop(e.emit(i));
        }
        yield_once().await;
        seen.fetch_add(1, Ordering::SeqCst);
        e.emit(3).await;
        Ok(())
    }));
    for i in 0..3 {
        let item = driver.poll(stream.as_mut());
        assert!(matches!(item, Poll::Ready(Some(Ok(ref ev))) if *ev == Event::data(i)));
        assert_eq!(resumed.load(Ordering::SeqCst), 0);
    }
    assert_eq!(driver.drain(stream), data_then_done(&[3]));
    assert_eq!(resumed.load(Ordering::SeqCst), 1);
}

#[test]
fn a_body_that_ends_while_its_values_wait_delivers_them_before_the_terminal_item() {
    let driver = Driver::new();
    let ctx = Context::new();
    // One value in the slot, then `Ok`.
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        tokio::select! {
            biased;
            () = e.emit(7) => unreachable!(),
            () = std::future::ready(()) => {}
        }
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[7]));

    // One value in the slot, then `Err`.
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        tokio::select! {
            biased;
            () = e.emit(7) => unreachable!(),
            () = std::future::ready(()) => {}
        }
        Err(Error::new(ErrorCode::ToolFailed, "after the value"))
    }));
    assert_eq!(items, [Ok(Event::data(7)), Err(ErrorCode::ToolFailed)]);

    // Values in the slot and the queue, an event among them, then `Ok`.
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        for value in [Event::data(7), Event::tool_call(8), Event::data(9)] {
            tokio::select! {
                biased;
                () = e.emit(value) => unreachable!(),
                () = std::future::ready(()) => {}
            }
        }
        Ok(())
    }));
    assert_eq!(
        items,
        [
            Ok(Event::data(7)),
            Ok(Event::tool_call(8)),
            Ok(Event::data(9)),
            Ok(Event::done())
        ]
    );
    assert_eq!(driver.wakes(), 0);
}

#[test]
fn an_emitted_done_waiting_in_the_queue_ends_the_stream_there() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let items = driver.drain(stream::produce(&Context::new(), async move |mut e| {
        let _guard = guard;
        for value in [Event::data(1), Event::done_with(2), Event::data(3)] {
            tokio::select! {
                biased;
                () = e.emit(value) => unreachable!(),
                () = std::future::ready(()) => {}
            }
        }
        e.emit(4).await;
        Ok(())
    }));
    assert_eq!(items, [Ok(Event::data(1)), Ok(Event::done_with(2))]);
    assert_eq!(drops(&dropped), 1);
}

#[test]
fn futures_unordered_polling_emits_under_its_own_waker_does_not_hang() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        // A task of the set that emits several values: the set polls it with its own waker.
        let mut set = FuturesUnordered::new();
        set.push(async {
            for i in 0..3 {
                e.emit(i).await;
            }
        });
        while set.next().await.is_some() {}
        drop(set);
        // Bare emit futures in a set, one at a time.
        for i in 3..5 {
            let mut set = FuturesUnordered::new();
            set.push(e.emit(i));
            assert_eq!(set.next().await, Some(()));
        }
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[0, 1, 2, 3, 4]));
}

/// Polls its future under a new task context around the same waker, as some combinators do.
struct NewContext<F>(F);

impl<F: Future + Unpin> Future for NewContext<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let waker = cx.waker().clone();
        Pin::new(&mut self.0).poll(&mut TaskContext::from_waker(&waker))
    }
}

#[test]
fn an_emit_polled_under_a_new_context_around_the_bodys_waker_wakes_it_once() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        for i in 0..3 {
            NewContext(e.emit(i)).await;
        }
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[0, 1, 2]));
    // One wake per item (the context is not the body's), and no hang.
    assert_eq!(driver.wakes(), 3);
}

#[test]
fn join_holding_an_emit_future_keeps_the_order() {
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        let mut ticks = 0;
        let ((), ()) = futures_util::join!(
            async {
                e.emit(1).await;
                e.emit(2).await;
            },
            async {
                yield_once().await;
                ticks += 1;
                yield_once().await;
                ticks += 1;
            }
        );
        let ((), ()) = tokio::join!(e.emit(ticks), yield_once());
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[1, 2, 2]));
}

#[test]
fn the_emitter_of_an_outer_producer_works_inside_an_inner_one() {
    // async-stream #106's shape: the inner body sends through the outer stream's handle.
    let driver = Driver::new();
    let ctx = Context::new();
    let items = driver.drain(stream::produce(&ctx, async |mut outer| {
        let inner = stream::produce(&ctx, async |mut inner| {
            outer.emit(10).await;
            inner.emit(20).await;
            outer.emit(11).await;
            Ok(())
        })
        .collect_events()
        .await;
        assert_eq!(inner.events, [Event::data(20), Event::done()]);
        outer.emit(12).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[10, 11, 12]));
}

#[test]
fn an_emitter_in_a_helper_function() {
    async fn send_all(e: &mut Emitter<'_, u32>, xs: &[u32]) {
        for &x in xs {
            e.emit(x).await;
        }
    }
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        send_all(&mut e, &[1, 2]).await;
        send_all(&mut e, &[3]).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[1, 2, 3]));
}

#[test]
fn values_sent_when_the_closure_is_called_come_out_first_and_in_order() {
    // A plain closure that returns a future: it can emit before its future exists.
    let driver = Driver::new();
    let resumed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&resumed);
    let mut stream = pin!(stream::produce(
        &Context::new(),
        move |mut e: Emitter<'_, u32>| {
            drop(e.emit(1));
            drop(e.emit(2));
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    ));
    for i in 1..3 {
        let item = driver.poll(stream.as_mut());
        assert!(matches!(item, Poll::Ready(Some(Ok(ref ev))) if *ev == Event::data(i)));
        assert_eq!(
            resumed.load(Ordering::SeqCst),
            0,
            "the body ran before the queue emptied"
        );
    }
    assert_eq!(driver.drain(stream), [Ok(Event::done())]);
    assert_eq!(resumed.load(Ordering::SeqCst), 1);
    assert_eq!(driver.wakes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_send_when_its_body_is() {
    fn assert_send<S: Send>(s: S) -> S {
        s
    }
    let words = vec!["x".to_owned(), "y".to_owned()];
    let stream = assert_send(stream::produce(&Context::new(), async move |mut e| {
        for word in words {
            tokio::task::yield_now().await;
            e.emit(word).await;
        }
        Ok(())
    }));
    let collected = tokio::spawn(stream.collect_events()).await.unwrap();
    assert_eq!(collected.data().cloned().collect::<String>(), "xy");
}

#[test]
fn emit_all_forwards_events_and_returns_the_final_value_or_the_error() {
    let driver = Driver::new();
    let ctx = Context::new();
    let inner = |fail: bool| {
        stream::produce(&ctx, async move |mut e| {
            e.emit(1).await;
            e.emit(Event::tool_call(2)).await;
            if fail {
                return Err(Error::new(ErrorCode::ToolFailed, "inner"));
            }
            e.emit(Event::done_with(3)).await;
            Ok(())
        })
    };
    let items = driver.drain(stream::produce(&ctx, async |mut e| {
        let last = e.emit_all(inner(false)).await?;
        e.emit(last.unwrap_or(0) * 10).await;
        e.emit_all(inner(true)).await?;
        e.emit(99).await;
        Ok(())
    }));
    assert_eq!(
        items,
        [
            Ok(Event::data(1)),
            Ok(Event::tool_call(2)),
            Ok(Event::data(30)),
            Ok(Event::data(1)),
            Ok(Event::tool_call(2)),
            Err(ErrorCode::ToolFailed),
        ]
    );
}

#[test]
fn cancellation_is_checked_while_delegating() {
    let driver = Driver::new();
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let forever = futures_util::stream::repeat_with(|| Ok(Event::data(7_u8)));
    let mut stream = pin!(stream::produce(&ctx, async move |mut e| {
        let _guard = guard;
        e.emit_all(forever).await?;
        Ok(())
    }));
    for _ in 0..3 {
        assert!(matches!(
            driver.poll(stream.as_mut()),
            Poll::Ready(Some(Ok(_)))
        ));
    }
    ctx.cancel();
    assert_eq!(driver.drain(stream), [Err(ErrorCode::Cancelled)]);
    assert_eq!(drops(&dropped), 1);
}

#[test]
fn an_emitter_lent_to_a_scoped_thread_sends_in_order() {
    // The body waits for the scope, so the thread is the frame's only user meanwhile.
    let driver = Driver::new();
    let items = driver.drain(stream::produce(&Context::new(), async |mut e| {
        e.emit(1).await;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                drop(e.emit(2));
                drop(e.emit(3));
            });
        });
        e.emit(4).await;
        Ok(())
    }));
    assert_eq!(items, data_then_done(&[1, 2, 3, 4]));
}
