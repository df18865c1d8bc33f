//! Property tests with random item counts and random delays (Tokio's paused clock): `merge`
//! output is a permutation of its inputs that keeps each input's order; every `fan_out`
//! consumer sees the source's exact sequence.

use std::time::Duration;

use beluga_core::{Context, Error, Event, EventStream, EventStreamExt, stream_producer};
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
            let streams: Vec<EventStream<'static, (usize, usize)>> = inputs
                .iter()
                .enumerate()
                .map(|(tag, delays)| delayed(ctx.clone(), tag, delays.clone()).boxed_events())
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
        let expected: Vec<Event<(usize, usize)>> = (0..delays.len())
            .map(|i| Event::data((0, i)))
            .chain([Event::done()])
            .collect();
        for seen in results {
            prop_assert_eq!(&seen, &expected);
        }
    }
}
