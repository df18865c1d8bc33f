//! `merge`: arrival order, fairness, one `done` (only if every input ended with one), the first
//! error ends it and drops every input.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use beluga_core::{BoxEventStream, Error, ErrorCode, Event, EventResult, EventStreamExt, stream};
use beluga_tests::{DropGuard, drops};
use futures_util::{Stream, StreamExt};

/// Always ready, forever: `tag` repeated.
struct Endless {
    tag: u32,
}

impl Stream for Endless {
    type Item = EventResult<u32>;
    fn poll_next(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Ok(Event::data(self.tag))))
    }
}

#[tokio::test]
async fn an_always_ready_input_cannot_starve_the_others() {
    let merged = stream::merge((0..4).map(|tag| Endless { tag }));
    let first: Vec<u32> = merged
        .take(400)
        .map(|item| *item.unwrap().payload().unwrap())
        .collect()
        .await;
    for tag in 0..4 {
        assert_eq!(
            first.iter().filter(|&&t| t == tag).count(),
            100,
            "{first:?}"
        );
    }
    // Round-robin, in fact.
    assert_eq!(&first[..8], &[0, 1, 2, 3, 0, 1, 2, 3]);
}

#[tokio::test]
async fn one_done_when_every_input_is_done_and_each_input_keeps_its_order() {
    let inputs: Vec<BoxEventStream<'static, u32>> = vec![
        stream::iter([1, 2, 3]).boxed(),
        stream::iter([10]).boxed(),
        stream::iter(Vec::<u32>::new()).boxed(),
        stream::iter([20, 30]).boxed(),
    ];
    let collected = stream::merge(inputs).collect_events().await;
    assert_eq!(collected.error, None);
    let dones = collected.events.iter().filter(|e| e.is_done()).count();
    assert_eq!(dones, 1);
    assert!(collected.events.last().unwrap().is_done());
    let data: Vec<u32> = collected.data().copied().collect();
    assert_eq!(data.len(), 6);
    let of = |range: std::ops::Range<u32>| -> Vec<u32> {
        data.iter().copied().filter(|d| range.contains(d)).collect()
    };
    assert_eq!(of(1..4), [1, 2, 3]);
    assert_eq!(of(20..31), [20, 30]);
}

#[tokio::test]
async fn an_input_that_ends_without_done_leaves_the_merged_stream_without_one() {
    // No `done` of its own: the merged stream must not make one up.
    let cut_short = futures_util::stream::iter(vec![Ok(Event::data(2))]);
    let inputs: Vec<BoxEventStream<'static, u32>> = vec![
        stream::iter([1]).boxed(),
        cut_short.boxed(),
        stream::iter([3]).boxed(),
    ];
    let mut merged = stream::merge(inputs);
    let mut events = Vec::new();
    while let Some(item) = merged.next().await {
        events.push(item.unwrap());
    }
    assert!(events.iter().all(|e| !e.is_done()), "{events:?}");
    let mut data: Vec<u32> = events.iter().filter_map(|e| e.payload().copied()).collect();
    data.sort_unstable();
    assert_eq!(data, [1, 2, 3]);
    assert!(merged.next().await.is_none(), "fused");
}

#[tokio::test]
async fn the_first_error_ends_the_merge_and_drops_every_input() {
    let (guard_a, dropped_a) = DropGuard::new();
    let (guard_b, dropped_b) = DropGuard::new();
    let pending_forever = futures_util::stream::pending::<EventResult<u32>>().map(move |x| {
        let _keep = &guard_a;
        x
    });
    let also_pending = futures_util::stream::pending::<EventResult<u32>>().map(move |x| {
        let _keep = &guard_b;
        x
    });
    let failing = futures_util::stream::iter(vec![
        Ok(Event::data(1)),
        Err(Error::new(ErrorCode::RateLimit, "429")),
    ]);
    let inputs: Vec<BoxEventStream<'static, u32>> = vec![
        pending_forever.boxed(),
        failing.boxed(),
        also_pending.boxed(),
    ];
    let mut merged = stream::merge(inputs);
    assert_eq!(merged.next().await.unwrap().unwrap(), Event::data(1));
    let err = merged.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);
    assert_eq!(
        (drops(&dropped_a), drops(&dropped_b)),
        (1, 1),
        "inputs outlived the error"
    );
    assert!(merged.next().await.is_none());
    assert_eq!(merged.live(), 0);
}

#[tokio::test]
async fn an_empty_merge_is_just_done() {
    let collected = stream::merge(Vec::<BoxEventStream<'static, u8>>::new())
        .collect_events()
        .await;
    assert_eq!(collected.events, [Event::done()]);
}

#[test]
fn size_hint_is_honest() {
    let merged = stream::merge([stream::iter(vec![1, 2]), stream::iter(vec![3])]);
    // The inputs promise at most 3 + 2 items (their `done`s included, though an input may end
    // without one), plus the merge's own `done`; an error could end it at any point.
    assert_eq!(merged.size_hint(), (0, Some(6)));
    let endless = stream::merge([Endless { tag: 0 }]);
    assert_eq!(endless.size_hint(), (0, None));
}
