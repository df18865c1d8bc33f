//! The leak matrix: for every combinator, consumers dropped after item k (0, 1, the middle, the
//! last, past the end) and the `Context` cancelled at pseudo-random points. Every time, every
//! producer's drop guard has fired and the runtime's alive-task count is back to its baseline.

use std::time::Duration;

use beluga_core::{BoxEventStream, Context, Error, Event, EventStreamExt, stream_producer};
use beluga_tests::{DropGuard, drops, settle};
use futures_util::{Stream, StreamExt};

const ITEMS: u64 = 12;

/// A producer that owns a drop guard, and parks (a paused-clock sleep) every third item, so both
/// the ready and the parked paths are exercised.
#[stream_producer]
fn source(ctx: Context, guard: DropGuard) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let _guard = guard;
    for i in 0..ITEMS {
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        emit!(i);
    }
}

#[derive(Clone, Copy, Debug)]
enum Combinator {
    Cancellable,
    Merge,
    FanOut,
    ReadAhead,
}

const ALL: [Combinator; 4] = [
    Combinator::Cancellable,
    Combinator::Merge,
    Combinator::FanOut,
    Combinator::ReadAhead,
];

/// Builds the combinator over fresh guarded sources: the consumers to drive, and the drop
/// counters of every source.
fn build(
    combinator: Combinator,
    ctx: &Context,
) -> (
    Vec<BoxEventStream<'static, u64>>,
    Vec<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
) {
    let mut counters = Vec::new();
    let mut guarded = || {
        let (guard, dropped) = DropGuard::new();
        counters.push(dropped);
        source(ctx.clone(), guard)
    };
    let consumers: Vec<BoxEventStream<'static, u64>> = match combinator {
        Combinator::Cancellable => vec![guarded().cancellable(ctx).boxed()],
        Combinator::Merge => {
            let inputs: Vec<BoxEventStream<'static, u64>> =
                (0..3).map(|_| guarded().boxed()).collect();
            vec![beluga_core::stream::merge(inputs).boxed()]
        }
        Combinator::FanOut => guarded()
            .fan_out_with_capacity(3, 2)
            .unwrap()
            .into_iter()
            .map(StreamExt::boxed)
            .collect(),
        // The one combinator with a task: it must be gone too.
        Combinator::ReadAhead => vec![guarded().read_ahead(4, ctx).boxed()],
    };
    (consumers, counters)
}

fn assert_clean(
    what: &str,
    counters: &[std::sync::Arc<std::sync::atomic::AtomicUsize>],
    baseline: usize,
) {
    for (i, dropped) in counters.iter().enumerate() {
        assert_eq!(drops(dropped), 1, "{what}: source {i} was not dropped");
    }
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert_eq!(alive, baseline, "{what}: tasks left alive");
}

#[tokio::test(start_paused = true)]
async fn consumers_dropped_after_item_k() {
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    for combinator in ALL {
        for k in [0, 1, 2, ITEMS / 2, ITEMS - 1, ITEMS, ITEMS + 1, ITEMS + 5] {
            let ctx = Context::new();
            let (consumers, counters) = build(combinator, &ctx);
            // Every consumer reads k items (or to its end), then all are dropped.
            let reads = consumers.into_iter().map(|mut consumer| async move {
                for _ in 0..k {
                    if consumer.next().await.is_none() {
                        break;
                    }
                }
                drop(consumer);
            });
            futures_util::future::join_all(reads).await;
            settle().await;
            assert_clean(
                &format!("{combinator:?}, dropped after {k}"),
                &counters,
                baseline,
            );
        }
    }
}

/// A small deterministic generator, so that every run checks the same "random" points.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(start_paused = true)]
async fn context_cancelled_at_random_points() {
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let mut rng = Lcg(0x5eed);
    for combinator in ALL {
        for round in 0..25 {
            let ctx = Context::new();
            let (consumers, counters) = build(combinator, &ctx);
            let cancel_after = rng.below(ITEMS + 2);
            let first = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            // Consumers drain to the end; the first one cancels after `cancel_after` items.
            let reads = consumers.into_iter().enumerate().map(|(i, mut consumer)| {
                let ctx = ctx.clone();
                let first = std::sync::Arc::clone(&first);
                async move {
                    let mut ended_with_error = false;
                    while let Some(item) = consumer.next().await {
                        if item.is_err() {
                            ended_with_error = true;
                        }
                        if i == 0
                            && first.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
                                == cancel_after
                        {
                            ctx.cancel();
                        }
                    }
                    ended_with_error
                }
            });
            let outcomes = futures_util::future::join_all(reads).await;
            settle().await;
            let what = format!("{combinator:?}, round {round}, cancelled after {cancel_after}");
            assert_clean(&what, &counters, baseline);
            if ctx.is_cancelled() && cancel_after < ITEMS {
                assert!(
                    outcomes[0],
                    "{what}: the cancel did not end the stream with an error"
                );
            }
        }
    }
}
