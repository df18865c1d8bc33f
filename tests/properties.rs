//! Property tests with random item counts and random delays (Tokio's paused clock): `merge`
//! output is a permutation of its inputs that keeps each input's order; every `fan_out`
//! consumer sees the source's exact sequence, whether the consumers share a task or each runs on
//! its own.

use std::time::Duration;

use beluga_core::{BoxEventStream, Context, Error, Event, EventStreamExt, stream_producer};
use futures_util::Stream;
use proptest::prelude::*;

/// Emits `(tag, i)` for each delay, sleeping that many milliseconds first.
#[stream_producer]
fn delayed(
    ctx: Context,
    tag: usize,
    delays: Vec<u8>,
) -> impl Stream<Item = Result<Event<(usize, usize)>, Error>> {
    for (i, delay) in delays.into_iter().enumerate() {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
        }
        emit!((tag, i));
    }
}

/// What `delayed(ctx, 0, ..)` with `len` delays yields: `(0, i)` for each, then `done`.
fn source_sequence(len: usize) -> Vec<Event<(usize, usize)>> {
    (0..len)
        .map(|i| Event::data((0, i)))
        .chain([Event::done()])
        .collect()
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_is_an_order_preserving_permutation(
        inputs in prop::collection::vec(prop::collection::vec(0_u8..4, 0..20), 0..5)
    ) {
        let rt = paused_runtime();
        let out = rt.block_on(async {
            let ctx = Context::new();
            let streams: Vec<BoxEventStream<'static, (usize, usize)>> = inputs
                .iter()
                .enumerate()
                .map(|(tag, delays)| futures_util::StreamExt::boxed(delayed(ctx.clone(), tag, delays.clone())))
                .collect();
            beluga_core::stream::merge(streams).collect_events().await
        });
        prop_assert!(out.error.is_none());
        prop_assert!(out.events.last().is_some_and(Event::is_done));
        let data: Vec<(usize, usize)> = out.data().copied().collect();
        prop_assert_eq!(data.len(), inputs.iter().map(Vec::len).sum::<usize>());
        for (tag, delays) in inputs.iter().enumerate() {
            let seen: Vec<usize> = data.iter().filter(|(t, _)| *t == tag).map(|(_, i)| *i).collect();
            prop_assert_eq!(seen, (0..delays.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_fan_out_consumer_sees_the_same_sequence(
        delays in prop::collection::vec(0_u8..3, 0..30),
        consumer_delays in prop::collection::vec(0_u8..3, 1..5),
        capacity in 1_usize..4,
    ) {
        let rt = paused_runtime();
        let results = rt.block_on(async {
            let source = delayed(Context::new(), 0, delays.clone());
            let consumers = source
                .fan_out_with_capacity(consumer_delays.len(), capacity)
                .unwrap();
            let reads = consumers.into_iter().zip(consumer_delays.clone()).map(
                |(mut consumer, delay)| async move {
                    use futures_util::StreamExt;
                    let mut seen = Vec::new();
                    while let Some(item) = consumer.next().await {
                        seen.push(item.unwrap());
                        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
                    }
                    seen
                },
            );
            futures_util::future::join_all(reads).await
        });
        let expected = source_sequence(delays.len());
        for seen in results {
            prop_assert_eq!(&seen, &expected);
        }
    }

    /// The same with every consumer on a task of its own, so that each wake-up crosses tasks:
    /// a lost wake-up leaves a consumer waiting with no timer left, the paused clock jumps to
    /// the timeout, and the case fails instead of hanging.
    #[test]
    fn fan_out_consumers_on_their_own_tasks_all_finish_with_the_same_sequence(
        delays in prop::collection::vec(0_u8..3, 0..30),
        consumer_delays in prop::collection::vec(prop::collection::vec(0_u8..3, 0..8), 1..5),
        capacity in 1_usize..4,
    ) {
        let rt = paused_runtime();
        let results = rt.block_on(async {
            let source = delayed(Context::new(), 0, delays.clone());
            let consumers = source
                .fan_out_with_capacity(consumer_delays.len(), capacity)
                .unwrap();
            let tasks: Vec<_> = consumers
                .into_iter()
                .zip(consumer_delays.clone())
                .map(|(mut consumer, delays)| {
                    tokio::spawn(async move {
                        use futures_util::StreamExt;
                        let mut seen = Vec::new();
                        let mut pauses = delays.into_iter().cycle();
                        while let Some(item) = consumer.next().await {
                            seen.push(item.unwrap());
                            match pauses.next() {
                                Some(0) | None => {}
                                Some(1) => tokio::task::yield_now().await,
                                Some(ms) => {
                                    tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                                }
                            }
                        }
                        seen
                    })
                })
                .collect();
            let all = futures_util::future::join_all(tasks);
            tokio::time::timeout(Duration::from_secs(3600), all).await
        });
        let results = results.map_err(|_| TestCaseError::fail("a consumer never finished"))?;
        let expected = source_sequence(delays.len());
        for seen in results {
            prop_assert_eq!(&seen.unwrap(), &expected);
        }
    }
}
