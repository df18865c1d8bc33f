//! `merge`: arrival order, fairness, one `done` (only if every input ended with one), the first
//! error ends it and drops every input; a wake polls the woken input alone; inputs that are not
//! `Unpin`, and inputs added to a running merge.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use beluga_core::{
    BoxEventStream, Context, Error, ErrorCode, Event, EventResult, EventStreamExt, stream,
};
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

/// A hand-fed input that counts its polls: items are handed in by [`Inbox::send`], and a poll
/// with nothing to return keeps the waker, as a channel does.
#[derive(Default)]
struct Inbox {
    items: Mutex<VecDeque<u32>>,
    waker: Mutex<Option<Waker>>,
    closed: AtomicBool,
    polls: AtomicUsize,
}

impl Inbox {
    fn send(&self, item: u32) {
        self.items.lock().unwrap().push_back(item);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
}

struct Fed(Arc<Inbox>);

impl Stream for Fed {
    type Item = EventResult<u32>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let inbox = &self.0;
        inbox.polls.fetch_add(1, Ordering::SeqCst);
        if let Some(item) = inbox.items.lock().unwrap().pop_front() {
            return Poll::Ready(Some(Ok(Event::data(item))));
        }
        if inbox.closed.load(Ordering::SeqCst) {
            return Poll::Ready(Some(Ok(Event::done())));
        }
        *inbox.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Polls `merged` once with a waker that does nothing.
fn poll_once<S: Stream + Unpin>(merged: &mut S) -> Poll<Option<S::Item>> {
    let mut cx = TaskContext::from_waker(Waker::noop());
    Pin::new(merged).poll_next(&mut cx)
}

#[test]
fn a_wake_on_one_input_of_ten_thousand_polls_that_input_alone() {
    let inboxes: Vec<Arc<Inbox>> = (0..10_000).map(|_| Arc::default()).collect();
    let mut merged = stream::merge(inboxes.iter().map(|inbox| Fed(Arc::clone(inbox))));
    // The first poll polls every input once: none has anything.
    assert!(poll_once(&mut merged).is_pending());
    assert!(inboxes.iter().all(|inbox| inbox.polls() == 1));
    let total = |inboxes: &[Arc<Inbox>]| inboxes.iter().map(|i| i.polls()).sum::<usize>();
    for (k, &which) in [1234, 0, 9_999, 1234, 5_000].iter().enumerate() {
        let before = total(&inboxes);
        let own_before = inboxes[which].polls();
        inboxes[which].send(u32::try_from(k).unwrap());
        let item = poll_once(&mut merged);
        assert!(
            matches!(&item, Poll::Ready(Some(Ok(ev))) if ev.payload() == Some(&u32::try_from(k).unwrap())),
            "{item:?}"
        );
        // Nothing more: the woken input is polled once more, and returns `Pending`.
        assert!(poll_once(&mut merged).is_pending());
        assert_eq!(inboxes[which].polls() - own_before, 2, "input {which}");
        assert_eq!(
            total(&inboxes) - before,
            2,
            "a wake on input {which} polled other inputs"
        );
    }
    // A poll with nothing woken polls nothing.
    let before = total(&inboxes);
    assert!(poll_once(&mut merged).is_pending());
    assert_eq!(total(&inboxes), before);
}

#[test]
fn a_rarely_ready_input_next_to_always_ready_ones_gets_its_turn_within_one_round() {
    for always in [1_u32, 3] {
        let rare = Arc::new(Inbox::default());
        let mut merged = stream::merge(
            (0..always)
                .map(|tag| Endless { tag }.boxed())
                .chain(std::iter::once(Fed(Arc::clone(&rare)).boxed())),
        );
        let inputs = usize::try_from(always).unwrap() + 1;
        for round in 0..50 {
            // The always-ready inputs run for a while; the rare one has nothing.
            for _ in 0..(round * 7 % 23) {
                assert!(poll_once(&mut merged).is_ready());
            }
            rare.send(1_000 + round);
            let mut polls = 0;
            loop {
                polls += 1;
                let Poll::Ready(Some(Ok(event))) = poll_once(&mut merged) else {
                    panic!("the merge ended or waited with items ready");
                };
                if event.payload() == Some(&(1_000 + round)) {
                    break;
                }
                assert!(polls <= inputs, "the rare item waited {polls} polls");
            }
        }
    }
}

#[test]
fn an_input_that_keeps_waking_itself_does_not_hold_the_poll() {
    /// Never has an item, and wakes itself at every poll (a busy `yield_now`).
    struct Spinner(Arc<AtomicUsize>);
    impl Stream for Spinner {
        type Item = EventResult<u32>;
        fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    let polls = Arc::new(AtomicUsize::new(0));
    let mut merged = stream::merge((0..8).map(|_| Spinner(Arc::clone(&polls))));
    let woken = Arc::new(AtomicUsize::new(0));
    let waker = Waker::from(Arc::new(CountWakes(Arc::clone(&woken))));
    for k in 1..=10 {
        let polled = Pin::new(&mut merged).poll_next(&mut TaskContext::from_waker(&waker));
        assert!(polled.is_pending());
        // One call polls each input about once, then yields by waking its task.
        assert!(
            polls.load(Ordering::SeqCst) <= 9 * k,
            "{polls:?} after {k} polls"
        );
        assert_eq!(woken.load(Ordering::SeqCst), k);
    }
}

struct CountWakes(Arc<AtomicUsize>);

impl std::task::Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn producers_merge_without_boxing() {
    // `produce` streams are not `Unpin`: the merge pins each one itself.
    fn count(ctx: &Context, from: u32) -> impl Stream<Item = EventResult<u32>> + use<> {
        stream::produce(ctx, async move |mut e| {
            for i in from..from + 3 {
                e.emit(i).await;
            }
            Ok(())
        })
    }
    let ctx = Context::new();
    let merged = stream::merge([count(&ctx, 0), count(&ctx, 10), count(&ctx, 20)]);
    let collected = merged.collect_events().await;
    assert_eq!(collected.error, None);
    assert!(collected.events.last().unwrap().is_done());
    let mut data: Vec<u32> = collected.data().copied().collect();
    data.sort_unstable();
    assert_eq!(data, [0, 1, 2, 10, 11, 12, 20, 21, 22]);
}

#[tokio::test]
async fn inputs_pushed_into_a_running_merge_are_polled_and_a_finished_merge_gives_them_back() {
    let late = Arc::new(Inbox::default());
    let mut merged = stream::merge([stream::iter([1]).boxed()]);
    assert_eq!(merged.next().await.unwrap().unwrap(), Event::data(1));
    assert!(merged.push(Fed(Arc::clone(&late)).boxed()).is_ok());
    assert_eq!(merged.live(), 2);
    late.send(2);
    assert_eq!(merged.next().await.unwrap().unwrap(), Event::data(2));
    late.closed.store(true, Ordering::SeqCst);
    late.send(3);
    assert_eq!(merged.next().await.unwrap().unwrap(), Event::data(3));
    assert_eq!(merged.next().await.unwrap().unwrap(), Event::done());
    assert!(merged.next().await.is_none());
    assert!(merged.push(stream::iter([4]).boxed()).is_err());
}

#[test]
fn iter_and_iter_mut_see_the_live_inputs() {
    let mut merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    assert_eq!(merged.iter().count(), 2);
    assert_eq!(merged.iter_mut().count(), 2);
    assert_eq!(merged.into_inner().len(), 2);
}

#[test]
fn a_dropped_merge_lets_go_of_its_task_even_while_an_input_waker_lives_on() {
    let inbox = Arc::new(Inbox::default());
    let mut merged = stream::merge([Fed(Arc::clone(&inbox))]);
    let task = Arc::new(CountWakes(Arc::new(AtomicUsize::new(0))));
    let waker = Waker::from(Arc::clone(&task));
    let polled = Pin::new(&mut merged).poll_next(&mut TaskContext::from_waker(&waker));
    assert!(polled.is_pending());
    drop(waker);
    assert_eq!(
        Arc::strong_count(&task),
        2,
        "the merge keeps the task's waker"
    );
    // The input's waker stays in the inbox, as a channel's would.
    let input_waker = inbox.waker.lock().unwrap().take().expect("the input waits");
    drop(merged);
    assert_eq!(
        Arc::strong_count(&task),
        1,
        "the merge is gone, its task's waker too"
    );
    // A late wake of the dropped merge's input reaches nobody, and breaks nothing.
    input_waker.wake();
    assert_eq!(task.0.load(Ordering::SeqCst), 0);
}
