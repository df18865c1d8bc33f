//! `read_ahead`: order, how far the source runs ahead, and that its task never outlives it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use beluga_core::stream::ReadAhead;
use beluga_core::{Context, Error, ErrorCode, Event, EventResult, EventStreamExt, stream};
use beluga_tests::{DropGuard, alive_tasks, drops, eventually, settle};
use futures_util::stream::{FusedStream, Stream, StreamExt};

/// A source that counts every item it hands out and carries a drop guard. After `script` it
/// either counts up forever (`endless`) or parks forever without ever waking its task.
struct Source {
    script: std::vec::IntoIter<EventResult<u32>>,
    endless: Option<u32>,
    produced: Arc<AtomicUsize>,
    _guard: DropGuard,
}

/// What a test watches from outside: items pulled from the source, and its drops.
struct Probe {
    produced: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Probe {
    fn produced(&self) -> usize {
        self.produced.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> bool {
        drops(&self.dropped) == 1
    }
}

impl Source {
    fn scripted(script: Vec<EventResult<u32>>) -> (Self, Probe) {
        Self::new(script, None)
    }

    /// Yields `0, 1, 2, …` forever, never pending.
    fn endless() -> (Self, Probe) {
        Self::new(Vec::new(), Some(0))
    }

    fn new(script: Vec<EventResult<u32>>, endless: Option<u32>) -> (Self, Probe) {
        let (guard, dropped) = DropGuard::new();
        let produced = Arc::new(AtomicUsize::new(0));
        let source = Source {
            script: script.into_iter(),
            endless,
            produced: Arc::clone(&produced),
            _guard: guard,
        };
        (source, Probe { produced, dropped })
    }
}

impl Stream for Source {
    type Item = EventResult<u32>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let item = match self.script.next() {
            Some(item) => item,
            None => match &mut self.endless {
                Some(n) => {
                    *n += 1;
                    Ok(Event::data(*n - 1))
                }
                // Parked forever, and nothing will ever wake it: only dropping it ends it.
                None => return Poll::Pending,
            },
        };
        self.produced.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(item))
    }
}

type Script = Vec<EventResult<u32>>;

fn data(range: std::ops::Range<u32>) -> Script {
    range.map(|n| Ok(Event::data(n))).collect()
}

/// The source has been dropped and the buffer's task is gone from the runtime.
async fn nothing_left(probe: &Probe, baseline: usize) {
    eventually("the source is dropped and its task has ended", || {
        probe.dropped() && alive_tasks() == baseline
    })
    .await;
}

async fn next(stream: &mut ReadAhead<u32>) -> Option<EventResult<u32>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the buffered stream hung")
}

/// A cheap deterministic sequence, to vary where the source and the consumer yield.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_preserved_whatever_the_capacity_and_timing() {
    for (round, capacity) in [1, 2, 3, 7, 16, 1000].into_iter().enumerate() {
        let mut seed = round as u64;
        let source = futures_util::stream::unfold((0_u32, seed), |(n, mut seed)| async move {
            if n == 500 {
                return None;
            }
            if lcg(&mut seed) % 3 == 0 {
                tokio::task::yield_now().await;
            }
            Some((Ok(Event::data(n)), (n + 1, seed)))
        })
        .chain(futures_util::stream::iter([Ok(Event::done())]));
        let mut buffered = source.read_ahead(capacity, &Context::new());
        let mut events = Vec::new();
        while let Some(item) = next(&mut buffered).await {
            events.push(item.expect("no error expected"));
            if lcg(&mut seed) % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let expected: Vec<_> = (0..500).map(Event::data).chain([Event::done()]).collect();
        assert_eq!(events, expected, "capacity {capacity}");
    }
}

#[tokio::test]
async fn the_source_runs_at_most_capacity_items_ahead_of_a_stalled_consumer() {
    const CAPACITY: usize = 4;
    let (source, probe) = Source::endless();
    let mut buffered = source.read_ahead(CAPACITY, &Context::new());
    assert_eq!(buffered.capacity(), CAPACITY);

    eventually("the buffer is full", || buffered.len() == CAPACITY).await;
    settle().await;
    assert_eq!(
        probe.produced(),
        CAPACITY,
        "ran ahead of a stalled consumer"
    );
    assert_eq!(buffered.len(), CAPACITY);

    for taken in 1..=10 {
        let item = next(&mut buffered).await.unwrap().unwrap();
        assert_eq!(item, Event::data(u32::try_from(taken - 1).unwrap()));
        settle().await;
        assert_eq!(
            probe.produced(),
            taken + CAPACITY,
            "after {taken} items taken"
        );
        assert_eq!(buffered.len(), CAPACITY);
    }
}

#[tokio::test]
async fn the_task_yields_to_the_scheduler_like_a_send_loop() {
    // A buffer far larger than Tokio's cooperative budget (128 operations per poll): the task
    // must still give the thread back now and then instead of filling it in one go.
    let (source, probe) = Source::endless();
    let buffered = source.read_ahead(100_000, &Context::new());
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let produced = probe.produced();
    assert!(
        (1..=1_000).contains(&produced),
        "the task pulled {produced} items before yielding"
    );
    drop(buffered);
}

#[tokio::test]
async fn dropping_aborts_the_task_and_drops_a_source_parked_elsewhere() {
    let baseline = alive_tasks();
    // Two items, then parked forever on something that is not the channel.
    let (source, probe) = Source::scripted(data(0..2));
    let mut buffered = source.read_ahead(8, &Context::new());
    assert_eq!(next(&mut buffered).await.unwrap().unwrap(), Event::data(0));
    settle().await;
    assert_eq!(alive_tasks(), baseline + 1);
    assert!(!probe.dropped());

    drop(buffered);
    nothing_left(&probe, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_aborts_the_task_across_threads() {
    let baseline = alive_tasks();
    let (source, probe) = Source::scripted(data(0..2));
    let mut buffered = source.read_ahead(8, &Context::new());
    assert_eq!(next(&mut buffered).await.unwrap().unwrap(), Event::data(0));
    eventually("the task has parked", || probe.produced() == 2).await;

    drop(buffered);
    nothing_left(&probe, baseline).await;
}

#[tokio::test]
async fn dropping_aborts_a_task_waiting_on_a_full_buffer() {
    let baseline = alive_tasks();
    let (source, probe) = Source::endless();
    let buffered = source.read_ahead(2, &Context::new());
    eventually("the buffer is full", || buffered.len() == 2).await;

    drop(buffered);
    nothing_left(&probe, baseline).await;
}

#[tokio::test]
async fn dropping_before_the_task_ever_ran_leaves_nothing() {
    let baseline = alive_tasks();
    let (source, probe) = Source::endless();
    drop(source.read_ahead(2, &Context::new()));
    nothing_left(&probe, baseline).await;
    assert_eq!(probe.produced(), 0);
}

#[tokio::test]
async fn leak_matrix_consumer_drops_after_k_items_or_the_context_is_cancelled() {
    let baseline = alive_tasks();
    let mut seed = 7;
    for capacity in [1, 3, 16] {
        // 10 data events and `done`: k = 11 reads everything.
        for k in 0..=11 {
            for cancel in [false, true] {
                let ctx = Context::new();
                let mut script = data(0..10);
                script.push(Ok(Event::done()));
                let (source, probe) = Source::scripted(script);
                let mut buffered = source.read_ahead(capacity, &ctx);
                for _ in 0..lcg(&mut seed) % 3 {
                    tokio::task::yield_now().await;
                }
                for i in 0..k {
                    let item = next(&mut buffered).await.unwrap().unwrap();
                    let expected = if i < 10 {
                        Event::data(i)
                    } else {
                        Event::done()
                    };
                    assert_eq!(item, expected);
                }
                if cancel {
                    ctx.cancel();
                    if k < 11 {
                        let err = next(&mut buffered).await.unwrap().unwrap_err();
                        assert_eq!(err.code(), ErrorCode::Cancelled);
                    }
                    assert!(next(&mut buffered).await.is_none());
                    // The stream is still alive here: its end alone stopped the task.
                    nothing_left(&probe, baseline).await;
                }
                drop(buffered);
                nothing_left(&probe, baseline).await;
            }
        }
    }
}

#[tokio::test]
async fn cancel_ends_a_waiting_consumer_and_drops_the_source() {
    let baseline = alive_tasks();
    let ctx = Context::new();
    let (source, probe) = Source::scripted(data(0..1));
    let mut buffered = source.read_ahead(4, &ctx);
    assert_eq!(next(&mut buffered).await.unwrap().unwrap(), Event::data(0));

    let (item, ()) = tokio::join!(next(&mut buffered), async {
        settle().await;
        ctx.cancel();
    });
    assert_eq!(item.unwrap().unwrap_err().code(), ErrorCode::Cancelled);
    assert!(next(&mut buffered).await.is_none());
    assert!(next(&mut buffered).await.is_none());
    assert!(buffered.is_terminated());
    // The stream is still alive: the cancel alone stopped the task and dropped the source.
    nothing_left(&probe, baseline).await;
}

#[tokio::test]
async fn cancel_stops_the_task_while_the_consumer_is_stalled() {
    let baseline = alive_tasks();
    let ctx = Context::new();
    let (source, probe) = Source::endless();
    let mut buffered = source.read_ahead(4, &ctx);
    eventually("the buffer is full", || buffered.len() == 4).await;

    ctx.cancel();
    // Nobody polls the stream, yet the task stops and drops the source.
    nothing_left(&probe, baseline).await;
    assert_eq!(probe.produced(), 4);

    // The buffered items are not handed out after the cancel.
    let err = next(&mut buffered).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(next(&mut buffered).await.is_none());
    assert_eq!(buffered.len(), 0);
}

#[tokio::test]
async fn an_already_cancelled_context_yields_only_the_error_and_never_pulls() {
    let baseline = alive_tasks();
    let ctx = Context::new();
    ctx.cancel();
    let (source, probe) = Source::endless();
    let buffered = source.read_ahead(4, &ctx);
    // The task runs before the consumer looks, sees the cancel, and stops on its own.
    nothing_left(&probe, baseline).await;
    assert_eq!(
        probe.produced(),
        0,
        "the task pulled from the source after the cancel"
    );

    let collected = buffered.collect_events().await;
    assert!(collected.events.is_empty());
    assert_eq!(collected.error.unwrap().code(), ErrorCode::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_ends_the_stream_on_time() {
    let baseline = alive_tasks();
    let ctx = Context::new().with_timeout(Duration::from_millis(100));
    let (guard, dropped) = DropGuard::new();
    // One item every 30 ms, forever.
    let ticks = futures_util::stream::unfold((0_u32, guard), |(n, guard)| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Some((Ok(Event::data(n)), (n + 1, guard)))
    });
    let start = tokio::time::Instant::now();
    let collected = ticks.read_ahead(4, &ctx).collect_events().await;

    assert_eq!(
        collected.data().copied().collect::<Vec<_>>(),
        [0, 1, 2],
        "items after the deadline"
    );
    assert_eq!(collected.error.unwrap().code(), ErrorCode::DeadlineExceeded);
    let elapsed = start.elapsed();
    assert!(
        (Duration::from_millis(100)..Duration::from_millis(102)).contains(&elapsed),
        "ended after {elapsed:?}"
    );
    eventually("the source is dropped and its task has ended", || {
        drops(&dropped) == 1 && alive_tasks() == baseline
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_stops_the_task_while_the_consumer_is_stalled() {
    let baseline = alive_tasks();
    let ctx = Context::new().with_timeout(Duration::from_millis(100));
    let (source, probe) = Source::endless();
    let mut buffered = source.read_ahead(2, &ctx);
    eventually("the buffer is full", || buffered.len() == 2).await;

    // The consumer sleeps past the deadline; the task's own timer ends it meanwhile.
    tokio::time::sleep(Duration::from_millis(150)).await;
    nothing_left(&probe, baseline).await;

    let err = next(&mut buffered).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert!(next(&mut buffered).await.is_none());
}

/// Two items, then a panic with a formatted message.
fn panicking() -> (
    impl Stream<Item = EventResult<u32>> + Send + 'static,
    Arc<AtomicUsize>,
) {
    let (guard, dropped) = DropGuard::new();
    let source = futures_util::stream::unfold((0_u32, guard), |(n, guard)| async move {
        tokio::task::yield_now().await;
        assert!(n < 2, "boom at item {n}");
        Some((Ok(Event::data(n)), (n + 1, guard)))
    });
    (source, dropped)
}

#[tokio::test]
async fn a_panicking_source_ends_with_an_internal_error_then_none() {
    let baseline = alive_tasks();
    let (source, dropped) = panicking();
    let mut buffered = source.read_ahead(4, &Context::new());

    assert_eq!(next(&mut buffered).await.unwrap().unwrap(), Event::data(0));
    assert_eq!(next(&mut buffered).await.unwrap().unwrap(), Event::data(1));
    let err = next(&mut buffered).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert_eq!(err.op(), "read_ahead");
    assert_eq!(err.message(), "the source panicked: boom at item 2");
    assert!(next(&mut buffered).await.is_none());
    assert!(next(&mut buffered).await.is_none());
    assert!(buffered.is_terminated());

    assert_eq!(drops(&dropped), 1, "the panicked source was not dropped");
    eventually("the task has ended", || alive_tasks() == baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_reaches_a_consumer_already_waiting_on_another_thread() {
    async fn late_boom(ready: Arc<tokio::sync::Notify>) -> EventResult<u32> {
        ready.notified().await;
        panic!("late boom")
    }
    let ready = Arc::new(tokio::sync::Notify::new());
    let source = futures_util::stream::once(late_boom(Arc::clone(&ready)));
    let mut buffered = source.read_ahead(1, &Context::new());
    let (item, ()) = tokio::join!(next(&mut buffered), async {
        settle().await;
        ready.notify_one();
    });
    let err = item.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert_eq!(err.message(), "the source panicked: late boom");
    assert!(next(&mut buffered).await.is_none());
}

#[test]
fn a_runtime_shutting_down_under_the_task_ends_the_stream_with_an_error() {
    let producer_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (source, probe) = Source::scripted(data(0..1));
    let buffered = {
        let _entered = producer_rt.enter();
        source.read_ahead(4, &Context::new())
    };
    // The task's runtime goes away before it ever ran; the consumer lives on in another one.
    drop(producer_rt);
    assert!(probe.dropped());

    let consumer_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let collected = consumer_rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(5), buffered.collect_events()).await
        })
        .expect("the buffered stream hung");
    assert!(collected.events.is_empty());
    let err = collected.error.unwrap();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert_eq!(
        err.message(),
        "the task was cancelled: its Tokio runtime shut down"
    );
}

#[tokio::test]
async fn exactly_one_terminal_item_then_none() {
    let rate_limit = Error::new(ErrorCode::RateLimit, "429");
    // (what the source yields, what the consumer must see)
    let cases: [(Script, Script); 3] = [
        // A source that keeps going after `done` is cut off at it.
        (
            vec![Ok(Event::data(1)), Ok(Event::done()), Ok(Event::data(2))],
            vec![Ok(Event::data(1)), Ok(Event::done())],
        ),
        // And after its error.
        (
            vec![
                Ok(Event::data(1)),
                Err(rate_limit.clone()),
                Ok(Event::data(2)),
            ],
            vec![Ok(Event::data(1)), Err(rate_limit)],
        ),
        // A reported error is not terminal.
        (
            vec![
                Ok(Event::error(Error::new(ErrorCode::ToolFailed, "x"))),
                Ok(Event::done_with(9)),
            ],
            vec![
                Ok(Event::error(Error::new(ErrorCode::ToolFailed, "x"))),
                Ok(Event::done_with(9)),
            ],
        ),
    ];
    for (script, expected) in cases {
        let baseline = alive_tasks();
        let (source, probe) = Source::scripted(script);
        let mut buffered = source.read_ahead(8, &Context::new());
        let mut items = Vec::new();
        while let Some(item) = next(&mut buffered).await {
            items.push(item);
        }
        assert_eq!(items, expected);
        assert!(next(&mut buffered).await.is_none());
        // Still holding the stream: the task stopped at the terminal item by itself.
        nothing_left(&probe, baseline).await;
        assert_eq!(
            probe.produced(),
            expected.len(),
            "pulled past the terminal item"
        );
    }
}

#[tokio::test]
async fn a_source_that_ends_without_done_ends_the_stream_with_none() {
    let collected = futures_util::stream::iter(data(0..3))
        .read_ahead(2, &Context::new())
        .collect_events()
        .await;
    assert_eq!(collected.events, [0, 1, 2].map(Event::data));
    assert!(collected.error.is_none());
}

#[tokio::test]
async fn a_zero_or_oversized_capacity_is_the_streams_one_invalid_input_error() {
    let tasks = alive_tasks();
    for capacity in [0, usize::MAX, (usize::MAX >> 3) + 1] {
        let refused = stream::iter([1]).read_ahead(capacity, &Context::new());
        assert_eq!(alive_tasks(), tasks, "no task for a refused capacity");
        let collected = refused.collect_events().await;
        assert!(collected.events.is_empty());
        let err = collected.error.expect("the capacity is refused");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.to_string().contains("capacity"), "{err}");
    }
}

#[test]
#[should_panic(expected = "read_ahead: must be called from inside a Tokio runtime")]
fn outside_a_runtime_panics_with_a_clear_message() {
    let _ = stream::iter([1]).read_ahead(4, &Context::new());
}

#[tokio::test]
async fn size_hint_len_and_debug() {
    let mut buffered = stream::iter([1, 2, 3]).read_ahead(8, &Context::new());
    let (lower, upper) = buffered.size_hint();
    assert_eq!(lower, 0);
    // Four events, plus room for an error that could end the stream early.
    assert!(upper.is_some_and(|n| n >= 4), "{upper:?}");
    assert!(buffered.is_empty());
    eventually("all four events are buffered", || buffered.len() == 4).await;

    let debug = format!("{buffered:?}");
    assert!(
        debug.starts_with("ReadAhead { len: 4, capacity: 8,"),
        "{debug}"
    );

    while next(&mut buffered).await.is_some() {}
    assert_eq!(buffered.size_hint(), (0, Some(0)));
    assert_eq!(buffered.len(), 0);

    let endless = futures_util::stream::repeat_with(|| Ok(Event::data(1_u8)));
    assert_eq!(
        endless.read_ahead(1, &Context::new()).size_hint(),
        (0, None)
    );
}

#[test]
fn buffered_is_unpin_and_send_whatever_the_source() {
    fn unpin_send<S: Unpin + Send>() {}
    unpin_send::<ReadAhead<String>>();
}

mod properties {
    use std::time::Duration;

    use beluga_core::{Context, Event, EventStreamExt};
    use futures_util::StreamExt;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn buffered_preserves_order(
            source_delays in prop::collection::vec(0_u8..4, 0..40),
            consumer_delays in prop::collection::vec(0_u8..4, 1..8),
            capacity in 1_usize..6,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            let seen = rt.block_on(async {
                let source = futures_util::stream::iter(source_delays.clone().into_iter().enumerate())
                    .then(|(i, delay)| async move {
                        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
                        Ok(Event::data(i))
                    })
                    .chain(futures_util::stream::iter([Ok(Event::done())]));
                let mut buffered = source.read_ahead(capacity, &Context::new());
                let mut seen = Vec::new();
                let mut pauses = consumer_delays.iter().cycle();
                while let Some(item) = buffered.next().await {
                    seen.push(item.unwrap());
                    let pause = pauses.next().copied().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
                    prop_assert!(buffered.len() <= capacity);
                }
                Ok(seen)
            })?;
            let expected: Vec<Event<usize>> = (0..source_delays.len())
                .map(Event::data)
                .chain([Event::done()])
                .collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
