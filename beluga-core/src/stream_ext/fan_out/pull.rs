//! Pulling the source: as many ready items as fit, cloned into every live consumer's queue.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::Stream;

use super::MAX_BATCH;
use super::state::{Slot, State};
use crate::error::{Error, ErrorCode};
use crate::event::Event;
use crate::stream_ext::panic::panic_message;

/// How a run of source polls stopped.
pub(super) enum Stop {
    Full,
    Pending,
    Ended,
}

/// What a poll takes out of the shared state to drop once the lock is released: user code
/// (destructors of the source and of items, a waker's drop) never runs under the lock.
pub(super) struct Leftovers<S: Stream> {
    /// The source, once it has ended.
    pub(super) source: Option<Pin<Box<S>>>,
    /// Items put back after a `clone` panicked.
    pub(super) items: Vec<Vec<S::Item>>,
    /// A room waker replaced.
    pub(super) waker: Option<Waker>,
    /// A source waiter's waker replaced.
    pub(super) source_waiter: Option<Waker>,
}

impl<S: Stream> Leftovers<S> {
    pub(super) fn new() -> Self {
        Leftovers {
            source: None,
            items: Vec::new(),
            waker: None,
            source_waiter: None,
        }
    }
}

/// Pulls the source into `batch` (the pulling consumer's own, empty, queue) while it is ready,
/// every consumer has room and the batch holds fewer than [`MAX_BATCH`] items, then gives every
/// other live consumer a clone of the batch: one lock for the whole batch. A panic in the source
/// or in a `clone` ends the stream with an `internal` error item. Returns whether the source is
/// pending.
pub(super) fn pull<S, T>(
    state: &mut State<S>,
    index: usize,
    batch: &mut Vec<Result<Event<T>, Error>>,
    room: usize,
    source_waker: &Waker,
    leftovers: &mut Leftovers<S>,
) -> bool
where
    S: Stream<Item = Result<Event<T>, Error>>,
    T: Clone,
{
    debug_assert!(batch.is_empty() && room > 0);
    let Some(running) = state.source.as_mut() else {
        state.ended = true;
        return false;
    };
    let mut source_cx = TaskContext::from_waker(source_waker);
    let room = room.min(MAX_BATCH);
    batch.reserve(room);
    // One `catch_unwind` around the whole run, not one per item: every item is in the batch as
    // soon as it is pulled, so a panic leaves the items before it in place.
    let stop = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while batch.len() < room {
            match running.as_mut().poll_next(&mut source_cx) {
                Poll::Ready(Some(item)) => {
                    let last = is_terminal(&item);
                    push_reserved(batch, item);
                    if last {
                        return Stop::Ended;
                    }
                }
                Poll::Ready(None) => return Stop::Ended,
                Poll::Pending => return Stop::Pending,
            }
        }
        Stop::Full
    }))
    .unwrap_or_else(|panic| {
        // The source polls only when there is room, so the error fits.
        batch.push(Err(panicked("the source", &*panic)));
        Stop::Ended
    });
    let stop = match distribute(&mut state.slots, index, batch, &mut leftovers.items) {
        Ok(()) => stop,
        Err(error) => {
            // Nobody got any of the batch: every consumer gets the error instead. The batch's
            // items are dropped once the lock is released (their destructors are user code).
            leftovers.items.push(std::mem::take(batch));
            batch.push(Err(error.clone()));
            for (j, slot) in state.slots.iter_mut().enumerate() {
                if j != index && slot.live {
                    slot.push(Err(error.clone()));
                }
            }
            Stop::Ended
        }
    };
    match stop {
        Stop::Full => false,
        Stop::Pending => true,
        Stop::Ended => {
            state.ended = true;
            leftovers.source = state.source.take();
            false
        }
    }
}

/// `batch.push(item)` when `batch` has room, which it has (the caller reserved it): with a bare
/// `push`, the item is first stored on the stack to outlive a possible reallocation, then copied
/// into the vector with wider loads than the stores that wrote it, which defeats store-to-load
/// forwarding and stalls every item (about 5 ns an item on the bench machine). Checked here, the
/// `push` that follows cannot reallocate, and the item goes straight into the vector.
#[inline]
pub(super) fn push_reserved<I>(batch: &mut Vec<I>, item: I) {
    if batch.len() < batch.capacity() {
        batch.push(item);
    } else {
        push_cold(batch, item);
    }
}

#[cold]
#[inline(never)]
pub(super) fn push_cold<I>(batch: &mut Vec<I>, item: I) {
    batch.push(item);
}

/// Appends a clone of `batch` to the queue of every live consumer but `index`. If a `clone`
/// panics, every queue is put back as it was (but perhaps oldest first now; the clones already
/// made go to `undone`, to be dropped once the lock is released) and the panic comes back as an
/// `internal` error.
pub(super) fn distribute<T: Clone>(
    slots: &mut [Slot<Result<Event<T>, Error>>],
    index: usize,
    batch: &[Result<Event<T>, Error>],
    undone: &mut Vec<Vec<Result<Event<T>, Error>>>,
) -> Result<(), Error> {
    // The slot being filled and its length before: how to undo a partial clone.
    let mut filling = (0, 0);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (j, slot) in slots.iter_mut().enumerate() {
            if j != index && slot.live {
                filling = (j, slot.queue.len());
                slot.append_clones(batch);
            }
        }
    }));
    let Err(panic) = outcome else {
        return Ok(());
    };
    let (failed, before) = filling;
    for (j, slot) in slots.iter_mut().enumerate().take(failed) {
        if j != index && slot.live {
            let full = slot.queue.len() - batch.len();
            undone.push(slot.queue.split_off(full));
        }
    }
    undone.push(slots[failed].queue.split_off(before));
    Err(panicked("an item's clone", &*panic))
}

/// The error every consumer gets when user code (the source, an item's `clone`) panics.
pub(super) fn panicked(what: &str, panic: &(dyn std::any::Any + Send)) -> Error {
    let detail = panic_message(panic).unwrap_or("a non-string payload");
    Error::new(ErrorCode::Internal, format!("{what} panicked: {detail}")).with_op("fan_out")
}

/// Whether `item` ends its stream: a `done` event or an `Err`.
pub(super) fn is_terminal<T>(item: &Result<Event<T>, Error>) -> bool {
    !matches!(item, Ok(event) if !event.is_done())
}
