//! Model checks of the shared state with loom: run with
//! `RUSTFLAGS="--cfg beluga_loom" cargo test -p beluga-core --lib --release _loom`.

use futures_core::Stream;

use crate::error::Error;
use crate::event::Event;
use crate::stream_ext::EventStreamExt;

/// `data(1)`, `data(2)`, then `done`.
fn source() -> impl Stream<Item = Result<Event<u8>, Error>> + Unpin {
    futures_util::stream::iter([Ok(Event::data(1)), Ok(Event::data(2)), Ok(Event::done())])
}

/// Every interleaving with up to three preemptions (tokio model-checks with two), unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A fast and a slow consumer on two threads, a buffer of one: every interleaving delivers
/// every item to both, in order, and nobody waits forever (loom reports a deadlock if all
/// threads block).
#[test]
fn fast_and_slow_consumer_never_lose_a_wakeup() {
    model(|| {
        let mut consumers = source().fan_out_with_capacity(2, 1).unwrap();
        let slow = consumers.pop().unwrap();
        let fast = consumers.pop().unwrap();
        let other =
            loom::thread::spawn(move || loom::future::block_on(slow.collect_events()).events);
        let mine = loom::future::block_on(fast.collect_events()).events;
        let theirs = other.join().unwrap();
        let expected = [Event::data(1), Event::data(2), Event::done()];
        assert_eq!(mine, expected);
        assert_eq!(theirs, expected);
    });
}

/// Three consumers on three threads, a buffer of one: the puller clones each batch into two
/// other queues, and two consumers can wait for room at once; every interleaving (with up
/// to two preemptions, three threads being costlier) delivers every item to each.
#[test]
fn three_consumers_on_three_threads_see_every_item() {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(|| {
        let mut consumers = source().fan_out_with_capacity(3, 1).unwrap();
        let third = consumers.pop().unwrap();
        let second = consumers.pop().unwrap();
        let first = consumers.pop().unwrap();
        let threads = [second, third].map(|consumer| {
            loom::thread::spawn(move || loom::future::block_on(consumer.collect_events()).events)
        });
        let mine = loom::future::block_on(first.collect_events()).events;
        let expected = [Event::data(1), Event::data(2), Event::done()];
        assert_eq!(mine, expected);
        for thread in threads {
            assert_eq!(thread.join().unwrap(), expected);
        }
    });
}

/// Two consumers drained together on one thread (one task: whichever makes room wakes that
/// task for both) and a third on another thread, a buffer of one: the waits for room that
/// are registered as items are taken, and returned without locking, lose no wake-up.
#[test]
fn consumers_sharing_a_task_and_one_on_its_own_see_every_item() {
    model(|| {
        let mut consumers = source().fan_out_with_capacity(3, 1).unwrap();
        let third = consumers.pop().unwrap();
        let second = consumers.pop().unwrap();
        let first = consumers.pop().unwrap();
        let other =
            loom::thread::spawn(move || loom::future::block_on(third.collect_events()).events);
        let (mine, also_mine) = loom::future::block_on(futures_util::future::join(
            first.collect_events(),
            second.collect_events(),
        ));
        let expected = [Event::data(1), Event::data(2), Event::done()];
        assert_eq!(mine.events, expected);
        assert_eq!(also_mine.events, expected);
        assert_eq!(other.join().unwrap(), expected);
    });
}

/// A consumer dropped while the other waits for room: the waiting one is released.
#[test]
fn dropping_the_slow_consumer_releases_the_waiting_one() {
    model(|| {
        let mut consumers = source().fan_out_with_capacity(2, 1).unwrap();
        let slow = consumers.pop().unwrap();
        let fast = consumers.pop().unwrap();
        let dropper = loom::thread::spawn(move || drop(slow));
        let mine = loom::future::block_on(fast.collect_events()).events;
        dropper.join().unwrap();
        assert_eq!(mine.len(), 3);
    });
}

/// The slow consumer reads one item and then stops reading (without being dropped) until
/// the fast one is done: only that read makes room, so only its wake-up can release the
/// fast consumer.
#[test]
fn the_read_that_makes_room_wakes_the_waiting_consumer() {
    model(|| {
        let mut consumers = source().fan_out_with_capacity(2, 2).unwrap();
        let mut slow = consumers.pop().unwrap();
        let fast = consumers.pop().unwrap();
        let (done_tx, done_rx) = loom::sync::mpsc::channel::<()>();
        let other = loom::thread::spawn(move || {
            let first = loom::future::block_on(futures_util::StreamExt::next(&mut slow));
            done_rx.recv().unwrap();
            first
        });
        let mine = loom::future::block_on(fast.collect_events()).events;
        done_tx.send(()).unwrap();
        let first = other.join().unwrap();
        assert_eq!(mine, [Event::data(1), Event::data(2), Event::done()]);
        assert_eq!(first.map(Result::unwrap), Some(Event::data(1)));
    });
}
