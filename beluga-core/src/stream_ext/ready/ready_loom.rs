//! Model checks of the ready set's wake-ups with loom: run with
//! `RUSTFLAGS="--cfg beluga_loom" cargo test -p beluga-core --lib --release _loom`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::Stream;
use loom::sync::{Arc, Mutex};

use crate::error::Error;
use crate::event::Event;
use crate::stream_ext::{EventStreamExt, Merge};

/// A channel on loom's primitives: `send` queues an item (or `None`, to end the input) and wakes
/// the waker of the last `Pending`.
#[derive(Default)]
struct Slot {
    items: VecDeque<Option<u8>>,
    waker: Option<Waker>,
}

struct Receiver(Arc<Mutex<Slot>>);

fn send(slot: &Mutex<Slot>, item: Option<u8>) {
    let waker = {
        let mut slot = slot.lock().unwrap();
        slot.items.push_back(item);
        slot.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl Stream for Receiver {
    type Item = Result<Event<u8>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut slot = self.0.lock().unwrap();
        match slot.items.pop_front() {
            Some(Some(item)) => Poll::Ready(Some(Ok(Event::data(item)))),
            Some(None) => Poll::Ready(Some(Ok(Event::done()))),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Two inputs fed from two other threads while the merge is polled: every interleaving delivers
/// both items and the end, and no wake-up is lost (loom reports a deadlock if the consumer
/// waits forever).
#[test]
fn inputs_woken_from_other_threads_never_lose_a_wakeup_loom() {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(|| {
        let slots: Vec<Arc<Mutex<Slot>>> = (0..2).map(|_| Arc::default()).collect();
        let merged = Merge::new(slots.iter().map(|slot| Receiver(Arc::clone(slot))));
        let senders: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(k, slot)| {
                let slot = Arc::clone(slot);
                loom::thread::spawn(move || {
                    send(&slot, Some(u8::try_from(k).unwrap()));
                    send(&slot, None);
                })
            })
            .collect();
        let collected = loom::future::block_on(merged.collect_events());
        for sender in senders {
            sender.join().unwrap();
        }
        let mut data: Vec<u8> = collected.data().copied().collect();
        data.sort_unstable();
        assert_eq!(data, [0, 1]);
        assert_eq!(collected.events.last(), Some(&Event::done()));
    });
}
