//! `merge` keeps its inputs pinned where it put them: inputs that are not `Unpin` are polled and
//! dropped at one address, while the merge itself moves, as it grows past the room it was made
//! with, and as finished inputs leave and new ones take their slots. No runtime: runs under Miri
//! (`cargo +nightly miri test -p beluga-tests --test merge_pinned`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use beluga_core::{Event, EventResult, stream};
use futures_util::Stream;

/// What the test hands an input: items (`None` ends it with `done`), and the waker of its last
/// `Pending`.
#[derive(Default)]
struct Feed {
    items: Mutex<VecDeque<Option<u32>>>,
    waker: Mutex<Option<Waker>>,
    drops: AtomicUsize,
}

impl Feed {
    fn with(items: impl IntoIterator<Item = u32>) -> Arc<Feed> {
        let feed = Feed::default();
        feed.items
            .lock()
            .unwrap()
            .extend(items.into_iter().map(Some));
        Arc::new(feed)
    }

    fn send(&self, item: Option<u32>) {
        self.items.lock().unwrap().push_back(item);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// An input that is not `Unpin`: it records its address at its first poll, and fails if a later
/// poll or its drop finds it anywhere else.
struct Pinned {
    feed: Arc<Feed>,
    at: Cell<usize>,
    _not_unpin: PhantomPinned,
}

fn pinned(feed: &Arc<Feed>) -> Pinned {
    Pinned {
        feed: Arc::clone(feed),
        at: Cell::new(0),
        _not_unpin: PhantomPinned,
    }
}

impl Pinned {
    fn check_address(&self) {
        let here = std::ptr::from_ref(self) as usize;
        match self.at.get() {
            0 => self.at.set(here),
            at => assert_eq!(at, here, "an input moved after it was polled"),
        }
    }
}

impl Stream for Pinned {
    type Item = EventResult<u32>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.check_address();
        let next = self.feed.items.lock().unwrap().pop_front();
        match next {
            Some(Some(item)) => Poll::Ready(Some(Ok(Event::data(item)))),
            Some(None) => Poll::Ready(Some(Ok(Event::done()))),
            None => {
                *self.feed.waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if self.at.get() != 0 {
            self.check_address();
        }
        self.feed.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `merged` once with a waker that does nothing (the inputs' own wakers still queue them).
fn poll_once<S: Stream + Unpin>(merged: &mut S) -> Poll<Option<S::Item>> {
    let mut cx = TaskContext::from_waker(Waker::noop());
    Pin::new(merged).poll_next(&mut cx)
}

/// The payload of the next item, which must be a `data` event.
fn next_data<S: Stream<Item = EventResult<u32>> + Unpin>(merged: &mut S) -> u32 {
    match poll_once(merged) {
        Poll::Ready(Some(Ok(event))) => *event.payload().expect("a data event"),
        other => panic!("expected a data event, got {other:?}"),
    }
}

#[test]
fn inputs_stay_where_they_were_pinned_while_the_merge_moves() {
    let feeds: Vec<Arc<Feed>> = (0..3).map(|k| Feed::with([k, k + 10])).collect();
    let mut merged = stream::merge(feeds.iter().map(pinned));
    // Every input polled once, at its place, in number order.
    assert_eq!([0, 1, 2].map(|_| next_data(&mut merged)), [0, 1, 2]);
    // The merge moves (onto the heap, then back): its inputs do not.
    let mut boxed = Box::new(merged);
    assert_eq!(next_data(&mut *boxed), 10);
    let mut merged = *boxed;
    assert_eq!([11, 12].map(|_| next_data(&mut merged)), [11, 12]);
    // Now every input waits: the merge goes on in rounds, and a wake polls that input alone.
    assert!(poll_once(&mut merged).is_pending());
    feeds[1].send(Some(21));
    assert_eq!(next_data(&mut merged), 21);
    assert!(feeds.iter().all(|feed| feed.drops() == 0));
    // Dropped mid-stream: every input dropped once, where it was polled.
    drop(merged);
    assert!(feeds.iter().all(|feed| feed.drops() == 1));
}

#[test]
fn inputs_pushed_past_the_merges_room_are_pinned_and_polled_round_robin() {
    let feeds: Vec<Arc<Feed>> = (0..7).map(|k| Feed::with([k, k, k])).collect();
    // Room for two: the five pushed inputs go to further chunks (of two, then four).
    let mut merged = stream::merge(feeds[..2].iter().map(pinned));
    for feed in &feeds[2..] {
        assert!(merged.push(pinned(feed)).is_ok());
    }
    assert_eq!(merged.live(), 7);
    // Each input once per round, in the order they were given.
    let polled: Vec<u32> = (0..21).map(|_| next_data(&mut merged)).collect();
    let round: Vec<u32> = (0..7).collect();
    assert_eq!(polled, [&round[..], &round[..], &round[..]].concat());
    // The inputs in the further chunks finish, are dropped in place, and their slots are
    // taken by new inputs.
    for feed in &feeds[2..] {
        feed.send(None);
    }
    feeds[0].send(Some(100));
    assert_eq!(next_data(&mut merged), 100);
    assert!(feeds.iter().all(|feed| feed.drops() == 0));
    // The rest of the round: the five ends, and inputs 0 and 1 wait.
    assert!(poll_once(&mut merged).is_pending());
    assert!(feeds[2..].iter().all(|feed| feed.drops() == 1));
    assert_eq!(merged.live(), 2);
    let late: Vec<Arc<Feed>> = (0..6).map(|k| Feed::with([200 + k])).collect();
    for feed in &late {
        assert!(merged.push(pinned(feed)).is_ok());
    }
    let mut got: Vec<u32> = (0..6).map(|_| next_data(&mut merged)).collect();
    got.sort_unstable();
    assert_eq!(got, [200, 201, 202, 203, 204, 205]);
    assert!(poll_once(&mut merged).is_pending());
    // Ends with `done` once every input has: each dropped once, in place.
    for feed in feeds[..2].iter().chain(&late) {
        feed.send(None);
    }
    match poll_once(&mut merged) {
        Poll::Ready(Some(Ok(event))) => assert!(event.is_done()),
        other => panic!("expected the merge's done, got {other:?}"),
    }
    assert!(feeds.iter().chain(&late).all(|feed| feed.drops() == 1));
    assert!(matches!(poll_once(&mut merged), Poll::Ready(None)));
}

#[test]
fn a_merge_made_empty_takes_pushed_inputs_and_gives_unpin_ones_back_in_order() {
    let mut merged = stream::merge((0..0).map(|k: u32| stream::iter(vec![k])));
    for k in 0..9 {
        assert!(merged.push(stream::iter(vec![k])).is_ok());
    }
    assert_eq!(merged.live(), 9);
    assert_eq!(merged.iter_mut().count(), 9);
    let sizes: Vec<usize> = merged
        .into_inner()
        .iter()
        .map(|input| input.size_hint().0)
        .collect();
    assert_eq!(
        sizes, [2; 9],
        "each input's item and its done, in the order pushed"
    );
}
