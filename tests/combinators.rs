//! `collect_events`, `map_payload`, `filter_events` and the cancellation adapter.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use beluga_core::{
    BoxEventStream, Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt,
    stream,
};
use beluga_tests::{DropGuard, drops};
use futures_util::FutureExt;
use futures_util::stream::{FusedStream, Stream, StreamExt};

/// A source that yields `items`, then stays pending forever, counting its polls and carrying a
/// drop guard.
struct Scripted {
    items: std::vec::IntoIter<EventResult<u32>>,
    polls: Arc<AtomicUsize>,
    _guard: DropGuard,
}

impl Scripted {
    fn new(items: Vec<EventResult<u32>>) -> (Self, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (guard, dropped) = DropGuard::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let source = Scripted {
            items: items.into_iter(),
            polls: Arc::clone(&polls),
            _guard: guard,
        };
        (source, polls, dropped)
    }
}

impl Stream for Scripted {
    type Item = EventResult<u32>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        match self.items.next() {
            Some(item) => Poll::Ready(Some(item)),
            // Parked forever, and nobody will ever wake it.
            None => Poll::Pending,
        }
    }
}

fn rate_limit() -> Error {
    Error::new(ErrorCode::RateLimit, "429")
}

#[tokio::test]
async fn collect_keeps_error_events_and_stops_at_the_first_terminal_error() {
    let reported = Error::new(ErrorCode::ToolFailed, "lookup failed");
    let items = vec![
        Ok(Event::data(1)),
        Ok(Event::error(reported.clone())),
        Ok(Event::data(2)),
        Err(rate_limit()),
        Ok(Event::data(3)),
        Err(Error::new(ErrorCode::Auth, "second error")),
    ];
    let (source, polls, _) = Scripted::new(items);
    let collected = source.collect_events().await;
    assert_eq!(
        collected.events,
        [Event::data(1), Event::error(reported), Event::data(2)]
    );
    assert_eq!(collected.error, Some(rate_limit()));
    assert_eq!(
        polls.load(Ordering::SeqCst),
        4,
        "polled past the terminal error"
    );
    assert_eq!(collected.data().copied().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        collected.clone().into_result().unwrap_err().code(),
        ErrorCode::RateLimit
    );
}

#[tokio::test]
async fn collect_without_error_returns_everything() {
    let collected = stream::iter([1, 2, 3]).collect_events().await;
    assert_eq!(collected.error, None);
    assert_eq!(
        collected.into_result().unwrap(),
        [
            Event::data(1),
            Event::data(2),
            Event::data(3),
            Event::done()
        ]
    );
}

#[tokio::test]
async fn map_maps_every_payload_and_passes_errors() {
    let items: Vec<EventResult<u32>> = vec![
        Ok(Event::data(1).with_trace_id("t")),
        Ok(Event::tool_call(2)),
        Ok(Event::tool_result(3)),
        Ok(Event::handoff(4)),
        Ok(Event::error(rate_limit())),
        Ok(Event::done_with(5)),
        Err(rate_limit()),
    ];
    let mapped = futures_util::stream::iter(items)
        .map_payload(|n| n * 10)
        .collect_events()
        .await;
    let kinds: Vec<EventKind<u32>> = mapped.events.iter().map(|e| e.kind().clone()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Data(10),
            EventKind::ToolCall(20),
            EventKind::ToolResult(30),
            EventKind::Handoff(40),
            EventKind::Error(rate_limit()),
            EventKind::Done(Some(50)),
        ]
    );
    assert_eq!(mapped.events[0].meta().trace_id(), Some("t"));
    assert_eq!(mapped.error, Some(rate_limit()));
}

#[tokio::test]
async fn filter_never_drops_done_or_errors() {
    let items: Vec<EventResult<u32>> = vec![
        Ok(Event::data(1)),
        Ok(Event::error(rate_limit())),
        Ok(Event::done_with(2)),
        Err(rate_limit()),
    ];
    let seen = Arc::new(AtomicUsize::new(0));
    let kept = futures_util::stream::iter(items)
        .filter_events({
            let seen = Arc::clone(&seen);
            move |ev| {
                assert!(!ev.is_done(), "the predicate saw a done event");
                seen.fetch_add(1, Ordering::SeqCst);
                false
            }
        })
        .collect_events()
        .await;
    assert_eq!(kept.events, [Event::done_with(2)]);
    assert_eq!(kept.error, Some(rate_limit()));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn size_hints_are_honest() {
    let source = || stream::iter(0..10_u32); // 10 data events + done
    assert_eq!(source().size_hint(), (11, Some(11)));
    assert_eq!(source().map_payload(|n| n + 1).size_hint(), (11, Some(11)));
    assert_eq!(source().filter_events(|_| true).size_hint(), (0, Some(11)));
    let ctx = Context::new();
    // Cancellation can cut it short, or add one error.
    assert_eq!(source().cancellable(&ctx).size_hint(), (0, Some(12)));
    // An unbounded source stays unbounded, without overflowing.
    let endless = futures_util::stream::repeat_with(|| Ok(Event::data(0_u8)));
    assert_eq!(endless.size_hint(), (usize::MAX, None));
    assert_eq!(endless.cancellable(&ctx).size_hint(), (0, None));
    let huge = HugeHint;
    assert_eq!(huge.cancellable(&ctx).size_hint(), (0, None));
}

/// A stream claiming `usize::MAX` items: `+ 1` must not overflow.
struct HugeHint;

impl Stream for HugeHint {
    type Item = EventResult<u8>;
    fn poll_next(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, Some(usize::MAX))
    }
}

#[tokio::test]
async fn map_and_filter_are_fused_when_the_source_is() {
    let mut mapped = stream::iter([1_u8]).fuse().map_payload(u32::from);
    let mut filtered = stream::iter([1_u8]).fuse().filter_events(|_| true);
    assert!(!mapped.is_terminated());
    assert!(!filtered.is_terminated());
    while mapped.next().await.is_some() {}
    while filtered.next().await.is_some() {}
    assert!(mapped.is_terminated());
    assert!(filtered.is_terminated());
    for _ in 0..3 {
        assert!(mapped.next().await.is_none());
        assert!(filtered.next().await.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drops_a_forever_pending_source_within_the_next_poll() {
    let (source, polls, dropped) = Scripted::new(vec![Ok(Event::data(1))]);
    let ctx = Context::new();
    let mut stream = source.cancellable(&ctx);
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));

    let parked = Arc::new(AtomicUsize::new(0));
    let consumer = tokio::spawn({
        let parked = Arc::clone(&parked);
        async move {
            // Poll once by hand to know the consumer is parked before the cancel.
            let first = futures_util::poll!(stream.next());
            assert!(first.is_pending());
            parked.store(1, Ordering::SeqCst);
            let item = stream.next().await;
            // The source is gone by the time the error comes out.
            (
                item,
                drops(&dropped),
                stream.is_terminated(),
                stream.next().await,
            )
        }
    });
    // Parked for real: the hand poll and the `.await`'s first poll have both reached the source
    // (1 item + 2 pending polls).
    while parked.load(Ordering::SeqCst) == 0 || polls.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await;
    }
    let polls_before_cancel = polls.load(Ordering::SeqCst);
    assert_eq!(polls_before_cancel, 3);
    ctx.cancel();
    let (item, drops_at_error, terminated, after) =
        tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the parked consumer was never woken")
            .unwrap();
    assert_eq!(item.unwrap().unwrap_err().code(), ErrorCode::Cancelled);
    assert_eq!(
        drops_at_error, 1,
        "source still alive when the error came out"
    );
    assert!(terminated);
    assert!(after.is_none());
    // The source was not polled again after the cancel.
    assert_eq!(polls.load(Ordering::SeqCst), polls_before_cancel);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_parked_source_on_time() {
    let (source, _, dropped) = Scripted::new(vec![]);
    let start = tokio::time::Instant::now();
    let ctx = Context::new().with_timeout(Duration::from_millis(50));
    let mut stream = source.cancellable(&ctx);
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_has_already_passed_never_polls_the_source() {
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    tokio::time::advance(Duration::from_millis(20)).await;
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&polls);
    let source = futures_util::stream::repeat_with(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(Event::data(1_u64))
    });
    let mut stream = source.cancellable(&ctx);
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert!(stream.next().await.is_none());
    assert_eq!(polls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_deadline_fires_in_a_consumer_that_never_yields() {
    // Current-thread runtime and an always-ready source: the consumer never returns to the
    // runtime, so no timer task can run. The adapter's periodic clock read must end it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = Context::new().with_timeout(Duration::from_millis(20));
        let (guard, dropped) = DropGuard::new();
        let source = futures_util::stream::repeat_with(move || {
            let _keep = &guard;
            Ok(Event::data(1_u64))
        });
        let mut stream = source.cancellable(&ctx);
        let mut items = 0_u64;
        let started = std::time::Instant::now();
        let err = loop {
            match stream.next().await {
                Some(Ok(_)) => {
                    items += 1;
                    // Fail instead of hanging if the deadline never fires.
                    if items % 1024 == 0 {
                        assert!(started.elapsed() < Duration::from_secs(10), "never fired");
                    }
                }
                Some(Err(err)) => break err,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
        assert!(items > 0);
        assert_eq!(drops(&dropped), 1);
        assert!(stream.next().await.is_none());
    });
}

#[tokio::test]
async fn an_already_cancelled_context_never_polls_the_source() {
    let (source, polls, dropped) = Scripted::new(vec![Ok(Event::data(1))]);
    let ctx = Context::new();
    ctx.cancel();
    let collected = source.cancellable(&ctx).collect_events().await;
    assert!(collected.events.is_empty());
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::Cancelled)
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test]
async fn the_stream_ends_and_drops_the_source_right_after_its_terminal_item() {
    let (source, polls, dropped) = Scripted::new(vec![Ok(Event::data(1)), Ok(Event::done())]);
    let ctx = Context::new();
    let mut stream = source.cancellable(&ctx);
    assert!(stream.next().await.unwrap().unwrap().is_data());
    assert!(stream.next().await.unwrap().unwrap().is_done());
    assert_eq!(drops(&dropped), 1, "the source outlived its `done`");
    assert!(stream.is_terminated());
    // A cancel now adds no second terminal item.
    ctx.cancel();
    assert!(stream.next().await.is_none());
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_source_that_misbehaves_after_its_error_is_cut_off() {
    // Yields a terminal `Err`, then more items: the adapter must not pass them, nor add a
    // second terminal item on a later cancel.
    let items = vec![Err(rate_limit()), Ok(Event::data(1)), Ok(Event::done())];
    let (source, polls, dropped) = Scripted::new(items);
    let ctx = Context::new();
    let mut stream = source.cancellable(&ctx);
    assert_eq!(stream.next().await.unwrap().unwrap_err(), rate_limit());
    ctx.cancel();
    assert!(stream.next().await.is_none());
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    assert_eq!(drops(&dropped), 1);
}

/// A source that yields one `done` carrying a drop guard, and panics when it is dropped.
struct PanicsOnDrop {
    done: Option<EventResult<DropGuard>>,
}

impl Stream for PanicsOnDrop {
    type Item = EventResult<DropGuard>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.done.take())
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the source's destructor panicked");
    }
}

#[test]
fn a_source_panicking_in_its_destructor_after_done_drops_the_done_and_ends_the_stream() {
    // The adapter drops the source right after its `done`: the source's panic comes out of that
    // poll, the `done` it yielded is dropped on the way (not leaked), and the stream has ended.
    let (guard, dropped) = DropGuard::new();
    let source = PanicsOnDrop {
        done: Some(Ok(Event::done_with(guard))),
    };
    let ctx = Context::new();
    let mut stream = source.cancellable(&ctx);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stream.next().now_or_never()
    }));
    let panic = outcome.expect_err("the destructor's panic was swallowed");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the source's destructor panicked")
    );
    assert_eq!(drops(&dropped), 1, "the `done` was leaked");
    assert!(stream.is_terminated());
    assert!(matches!(stream.next().now_or_never(), Some(None)));
}

#[tokio::test]
async fn collect_stops_at_an_error_in_a_stream_claiming_to_be_endless() {
    // `repeat_with` says `(usize::MAX, None)`; collecting must not try to preallocate that.
    let mut n = 0;
    let endless = futures_util::stream::repeat_with(move || {
        n += 1;
        if n < 4 {
            Ok(Event::data(n))
        } else {
            Err(rate_limit())
        }
    });
    let collected = endless.collect_events().await;
    assert_eq!(collected.data().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(collected.error, Some(rate_limit()));
}

#[test]
fn a_token_cancel_reaches_a_consumer_that_never_yields() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let ctx = Context::from(token.clone());
        let mut sent = 0_u64;
        let source = futures_util::stream::repeat_with(move || {
            sent += 1;
            if sent == 1000 {
                // Cancelled from inside the stream: no task can run in between.
                token.cancel();
            }
            Ok(Event::data(sent))
        });
        let mut stream = source.cancellable(&ctx);
        let mut items = 0;
        let err = loop {
            match stream.next().await.unwrap() {
                Ok(_) => items += 1,
                Err(err) => break err,
            }
        };
        assert_eq!(err.code(), ErrorCode::Cancelled);
        // Seen within 32 polls of the cancel.
        assert!((1000..1000 + 32).contains(&items), "{items}");
    });
}

#[tokio::test]
async fn items_pass_through_until_the_cancel() {
    let ctx = Context::new();
    let mut stream = stream::iter(0..5_u32).cancellable(&ctx);
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(0));
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));
    ctx.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_parent_cancel_reaches_a_stream_on_a_child_context() {
    let parent = Context::new();
    let (source, _, dropped) = Scripted::new(vec![]);
    let mut stream = source.cancellable(&parent.child());
    assert!(futures_util::poll!(stream.next()).is_pending());
    parent.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test]
async fn dropping_the_adapter_drops_the_source() {
    let (source, _, dropped) = Scripted::new(vec![]);
    let ctx = Context::new();
    let mut stream = source.cancellable(&ctx);
    assert!(futures_util::poll!(stream.next()).is_pending());
    drop(stream);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test]
async fn boxed_streams_are_send_and_compose() {
    fn assert_send<S: Send>(_: &S) {}
    let ctx = Context::new();
    let boxed: BoxEventStream<'static, String> = stream::iter(["a", "b"])
        .map_payload(str::to_owned)
        .cancellable(&ctx)
        .boxed();
    assert_send(&boxed);
    let text: String = boxed.collect_events().await.data().cloned().collect();
    assert_eq!(text, "ab");
}

/// Every event of `stream`, and whether it ended with a terminal `Err`.
async fn drain(stream: impl Stream<Item = EventResult<u32>>) -> (Vec<Event<u32>>, bool) {
    let collected = stream.collect_events().await;
    (collected.events, collected.error.is_some())
}

/// The rule of the `stream` module docs ("How a stream ends"): a combinator's output ends with
/// a `done` only if its source did, and never with one the source did not send.
#[tokio::test]
async fn no_combinator_invents_a_done() {
    let ctx = Context::new();
    for with_done in [true, false] {
        let source = move || {
            let mut items = vec![Ok(Event::data(1)), Ok(Event::data(2))];
            if with_done {
                items.push(Ok(Event::done_with(3)));
            }
            futures_util::stream::iter(items)
        };
        let expected: Vec<Event<u32>> = [Event::data(1), Event::data(2)]
            .into_iter()
            .chain(with_done.then(|| Event::done_with(3)))
            .collect();
        let mut outputs = vec![
            ("map", drain(source().map_payload(|n| n)).await),
            ("filter", drain(source().filter_events(|_| true)).await),
            ("cancellable", drain(source().cancellable(&ctx)).await),
            ("buffered", drain(source().read_ahead(4, &ctx)).await),
        ];
        for consumer in source().fan_out(2).unwrap() {
            outputs.push(("fan_out", drain(consumer).await));
        }
        for (name, (events, failed)) in outputs {
            assert!(!failed, "{name}");
            assert_eq!(events, expected, "{name}, source with_done = {with_done}");
        }
        // `merge` swallows its inputs' `done`s and has its own, plain, only if each had one.
        let (events, failed) = drain(stream::merge([source().boxed()])).await;
        assert!(!failed);
        let merged: Vec<Event<u32>> = [Event::data(1), Event::data(2)]
            .into_iter()
            .chain(with_done.then(Event::done))
            .collect();
        assert_eq!(events, merged, "merge, source with_done = {with_done}");
    }
}
