use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::{FusedStream, Stream};

// The shared state's primitives, swapped for loom's when model checking (`--cfg beluga_loom`).
#[cfg(beluga_loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(beluga_loom)]
use loom::sync::{Arc, Mutex};
#[cfg(not(beluga_loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(beluga_loom))]
use std::sync::{Arc, Mutex};

#[cfg(all(test, beluga_loom))]
mod fan_out_loom;
mod pull;
mod state;
mod waiters;

use self::pull::{Leftovers, pull};
use self::state::{Inner, Slot, State, WakerId};
use self::waiters::{Waiters, lock, wake_all};
use crate::error::{Error, ErrorCode};
use crate::event::Event;

/// The per-consumer buffer [`fan_out`](crate::EventStreamExt::fan_out) uses.
///
/// ```
/// use beluga_core::{EventStreamExt, stream};
/// use beluga_core::stream::DEFAULT_FAN_OUT_CAPACITY;
/// let consumers = stream::iter([1]).fan_out(2).unwrap();
/// assert_eq!(consumers[0].capacity(), DEFAULT_FAN_OUT_CAPACITY);
/// ```
pub const DEFAULT_FAN_OUT_CAPACITY: usize = 16;

/// The most items one pull takes from the source, and the most room a queue is given before
/// items arrive: a larger capacity is allocated only as items come, so any capacity works.
const MAX_BATCH: usize = 64;

/// One of the streams [`fan_out`](crate::EventStreamExt::fan_out) returns: sees every item of
/// the source, in order.
///
/// No task is spawned: whichever consumer needs the next item pulls the source (as many items as
/// are ready and fit), and each item is kept for every live consumer until that consumer takes
/// it. No consumer has more than `capacity` items waiting to be taken, so the source runs at most
/// `capacity` items ahead of the slowest live consumer's reads. A consumer takes every item
/// waiting for it under one lock and returns them one per poll, so it may hold up to `capacity`
/// taken items of its own. Dropping a consumer stops it counting; dropping the last one drops
/// the source.
///
/// A consumer that takes its items while another consumer's queue is full registers at once to
/// be woken when room is made, so that it can later wait without locking: its task may be woken
/// while it still holds taken items (a spurious wake-up, which polling copes with).
///
/// A panic in the source, or in an item's `clone`, ends every consumer with an `internal` error
/// (after the items every consumer got before it). A waker that panics (in its `clone`, or when
/// another consumer wakes it) changes nothing for the items: the panic comes out of the poll
/// that met it, and every consumer still sees every item, in order. A wake that panics keeps no
/// other waker from being woken.
///
/// Memory follows the items, not the capacity: the source is pulled at most 64 items at a time,
/// and a queue grows only as items wait in it, so even `usize::MAX` is a valid capacity.
#[must_use = "streams do nothing unless polled"]
pub struct FanOut<S: Stream> {
    inner: Arc<Inner<S>>,
    index: usize,
    terminated: bool,
    /// Wakers to wake after the lock is released, kept between polls so that waking allocates
    /// nothing.
    to_wake: Vec<Waker>,
    /// Items this consumer has taken but not returned yet, **newest first**, so that the next
    /// one is `taken.pop()`: one lock takes every item waiting for it (swapping this vector with
    /// its shared queue, which is usually newest first already, see [`Slot::newest_first`]), and
    /// the next polls return them without locking. Empty whenever the shared state is read.
    taken: Vec<S::Item>,
    /// Whether this consumer's waker is registered in `waiters` (waiting for the source).
    registered: bool,
    /// Which waker this consumer's slot holds for room (a copy of the slot's `room_waker_id`:
    /// `None` unless that identity can be trusted), to tell without locking whether a wait for
    /// room still wakes the task polling now.
    room_waker_id: Option<WakerId>,
}

/// Splits `source` into `n` consumers; see [`EventStreamExt::fan_out`](crate::EventStreamExt::fan_out).
pub(crate) fn fan_out<S, T>(source: S, n: usize, capacity: usize) -> Result<Vec<FanOut<S>>, Error>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    T: Clone,
{
    if n == 0 {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "fan_out needs at least one consumer (n = 0)",
        )
        .with_op("fan_out"));
    }
    if capacity == 0 {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "fan_out needs a buffer of at least one item (capacity = 0)",
        )
        .with_op("fan_out"));
    }
    let mut wakers = places(n)?;
    wakers.resize_with(n, || None);
    let waiters = std::sync::Arc::new(Waiters {
        waiting: AtomicUsize::new(0),
        notified: AtomicBool::new(false),
        wakers: Mutex::new(wakers),
    });
    let source_waker = Waker::from(std::sync::Arc::clone(&waiters));
    let mut slots = places(n)?;
    slots.extend((0..n).map(|_| Slot {
        // Room for one pull; more only as items wait.
        queue: Vec::with_capacity(capacity.min(MAX_BATCH)),
        newest_first: false,
        live: true,
        room_waker: None,
        room_waker_id: None,
        waiting: false,
    }));
    let mut room_waits = places(n)?;
    room_waits.extend((0..n).map(|_| AtomicBool::new(false)));
    let mut consumers = places(n)?;
    let inner = Arc::new(Inner {
        room_waits: room_waits.into_boxed_slice(),
        state: Mutex::new(State {
            source: Some(Box::pin(source)),
            slots,
            waiting_for_room: 0,
            full: 0,
            live: n,
            ended: false,
        }),
        waiters,
        source_waker,
        capacity,
    });
    consumers.extend((0..n).map(|index| FanOut {
        inner: Arc::clone(&inner),
        index,
        terminated: false,
        to_wake: Vec::new(),
        taken: Vec::new(),
        registered: false,
        room_waker_id: None,
    }));
    Ok(consumers)
}

/// An empty vector with room for `n` items (one per consumer), or an `invalid_input` error if
/// that much cannot be allocated.
fn places<T>(n: usize) -> Result<Vec<T>, Error> {
    let mut places = Vec::new();
    places.try_reserve_exact(n).map_err(|_| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("fan_out cannot make {n} consumers: there is not enough memory for them"),
        )
        .with_op("fan_out")
    })?;
    Ok(places)
}

impl<S: Stream> FanOut<S> {
    /// Which consumer this is, from `0` to `n - 1`.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out(2).unwrap();
    /// assert_eq!(consumers[1].index(), 1);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many items this consumer has yet to return: those waiting for it and those it has
    /// already taken.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out(2).unwrap();
    /// assert_eq!(consumers[0].len(), 0); // nothing pulled yet
    /// ```
    pub fn len(&self) -> usize {
        let state = lock(&self.inner.state);
        state.slots[self.index].queue.len() + self.taken.len()
    }

    /// Whether this consumer has nothing buffered.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out(2).unwrap();
    /// assert!(consumers[0].is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items waiting for any one consumer: the source never runs more than this many
    /// items ahead of the slowest live consumer's reads. (Each consumer may also hold up to
    /// this many items it has taken but not returned yet.)
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out_with_capacity(2, 4).unwrap();
    /// assert_eq!(consumers[0].capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }
}

// Nothing in a consumer is ever pinned: the source lives pinned in its own box, and taken items
// are plain values.
impl<S: Stream> Unpin for FanOut<S> {}

impl<S: Stream> fmt::Debug for FanOut<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut")
            .field("index", &self.index)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

impl<S, T> Stream for FanOut<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    T: Clone,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // The fast path, small enough to inline into the caller's loop: an item already taken.
        if let Some(item) = self.taken.pop() {
            return Poll::Ready(Some(item));
        }
        self.poll_shared(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.terminated {
            return (0, Some(0));
        }
        let state = lock(&self.inner.state);
        let buffered = state.slots[self.index].queue.len() + self.taken.len();
        match &state.source {
            None => (buffered, Some(buffered)),
            Some(source) => {
                let (lower, upper) = source.size_hint();
                (
                    buffered.saturating_add(lower),
                    upper.and_then(|u| u.checked_add(buffered)),
                )
            }
        }
    }
}

impl<S, T> FanOut<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    T: Clone,
{
    /// `poll_next` once the taken items are used up.
    #[inline]
    fn poll_shared(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Event<T>, Error>>> {
        // Still waiting for room, from this task: nothing can have reached this consumer, and
        // whoever makes room wakes the task (see `Inner::room_waits`), so there is nothing to
        // lock for. (Small enough to inline with `poll_next`'s fast path.)
        let me = WakerId::of(cx.waker());
        if self.room_waker_id == Some(me)
            && self.inner.room_waits[self.index].load(Ordering::Acquire)
        {
            return Poll::Pending;
        }
        self.poll_locked(cx, me)
    }

    /// Takes every item waiting for this consumer under one lock (pulling the source first if
    /// none is waiting and there is room), or registers to be woken. `me` identifies `cx`'s
    /// waker.
    #[inline(never)]
    fn poll_locked(
        &mut self,
        cx: &mut TaskContext<'_>,
        me: WakerId,
    ) -> Poll<Option<Result<Event<T>, Error>>> {
        debug_assert!(self.taken.is_empty());
        if self.terminated {
            return Poll::Ready(None);
        }
        let i = self.index;
        let inner = &*self.inner;
        let mut guard = lock(&inner.state);
        let state = &mut *guard;
        let slot = &mut state.slots[i];
        if !slot.queue.is_empty() {
            // Take every item waiting, in one swap with the (empty) vector of taken ones, and
            // put them newest first before any user code runs (a waker's `clone` below, wakes and
            // drops after the lock): if it panics, the next poll still pops them in order.
            std::mem::swap(&mut self.taken, &mut slot.queue);
            if !slot.newest_first {
                self.taken.reverse();
            }
            if self.taken.len() >= inner.capacity {
                state.full -= 1;
            }
            debug_assert_eq!(state.full, state.count_full(inner.capacity));
            let mut wake_me = false;
            let mut replaced = None;
            if state.full == 0 {
                wake_me = state.end_room_waits(&inner.room_waits, &mut self.to_wake, Some(me));
            } else if !state.ended {
                // Another consumer's queue is full: once this one has returned what it took, it
                // will wait for room. Registered now, under this lock, so that the wait itself
                // needs none.
                replaced = state.wait_for_room(&inner.room_waits, i, cx.waker(), me);
                self.room_waker_id = state.slots[i].room_waker_id;
            }
            drop(guard);
            // Wake first: what is dropped next (a replaced or forgotten waker) is user code, and
            // a panic in it must not lose another consumer's wake-up.
            if wake_me {
                cx.waker().wake_by_ref();
            }
            wake_all(&mut self.to_wake);
            if self.registered {
                inner.waiters.forget(i);
                self.registered = false;
            }
            drop(replaced);
            // Popped last, once no user code is left to run: a panic above loses no item.
            return Poll::Ready(self.taken.pop());
        }
        // Nothing waits for this consumer: pull the source if every queue has room, else wait
        // for room; or end.
        let mut leftovers = Leftovers::new();
        // Whether to wake this task at once (the source woke while it was polled).
        let mut wake_me = false;
        // Whether to return `Pending` (else the first item pulled, or the end).
        let waiting = if state.ended {
            self.terminated = true;
            false
        } else if state.full > 0 {
            debug_assert_eq!(state.full, state.count_full(inner.capacity));
            // Another consumer's queue is full: wait for it to take.
            leftovers.waker = state.wait_for_room(&inner.room_waits, i, cx.waker(), me);
            self.room_waker_id = state.slots[i].room_waker_id;
            true
        } else {
            inner.waiters.reset_notified();
            let pending = pull(
                state,
                i,
                &mut self.taken,
                inner.capacity - state.lag(),
                &inner.source_waker,
                &mut leftovers,
            );
            // The batch pulled, oldest first, put newest first before any user code runs, as
            // when taking.
            self.taken.reverse();
            state.full = state.count_full(inner.capacity);
            if !self.taken.is_empty() || state.ended {
                inner.waiters.drain_into(&mut self.to_wake);
            }
            if !self.taken.is_empty() {
                if !state.ended && state.full > 0 {
                    // The batch filled a queue: as when taking, registered for room now.
                    leftovers.waker = state.wait_for_room(&inner.room_waits, i, cx.waker(), me);
                    self.room_waker_id = state.slots[i].room_waker_id;
                }
                false
            } else if pending {
                let (replaced, notified) = inner.waiters.register_after_poll(i, cx.waker());
                leftovers.source_waiter = replaced;
                wake_me = notified;
                self.registered = true;
                true
            } else {
                // The source ended without another item.
                debug_assert!(state.ended);
                self.terminated = true;
                false
            }
        };
        drop(guard);
        // Wake first, as above: what is dropped next (the leftovers, a forgotten waker) is user
        // code.
        if wake_me {
            cx.waker().wake_by_ref();
        }
        wake_all(&mut self.to_wake);
        if waiting {
            drop(leftovers);
            return Poll::Pending;
        }
        if self.registered {
            inner.waiters.forget(i);
            self.registered = false;
        }
        drop(leftovers);
        // Popped last, as when taking.
        Poll::Ready(self.taken.pop())
    }
}

impl<S, T> FusedStream for FanOut<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    T: Clone,
{
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<S: Stream> Drop for FanOut<S> {
    fn drop(&mut self) {
        let i = self.index;
        let inner = &*self.inner;
        inner.waiters.forget(i);
        let mut state = lock(&inner.state);
        let slot = &mut state.slots[i];
        debug_assert!(slot.live, "a consumer is dropped once");
        slot.live = false;
        // The items only this consumer had yet to take go (after unlocking: their destructors
        // are user code).
        let dropped_items = std::mem::take(&mut slot.queue);
        let stale_waker = slot.room_waker.take();
        if std::mem::replace(&mut slot.waiting, false) {
            inner.room_waits[i].store(false, Ordering::Release);
            state.waiting_for_room -= 1;
        }
        if dropped_items.len() >= inner.capacity {
            state.full -= 1;
        }
        state.live -= 1;
        let mut dropped_source = None;
        if state.live == 0 {
            // The last consumer: drop the source (after unlocking: its destructor is user code).
            dropped_source = state.source.take();
        } else {
            // Room may have been made, and if this consumer was the one the source would have
            // woken, someone else must poll it now: wake everyone waiting.
            state.end_room_waits(&inner.room_waits, &mut self.to_wake, None);
            inner.waiters.drain_into(&mut self.to_wake);
        }
        drop(state);
        // Wake first: what is dropped next is user code, and a panic in it must not lose
        // another consumer's wake-up.
        wake_all(&mut self.to_wake);
        drop(stale_waker);
        drop(dropped_source);
        drop(dropped_items);
    }
}
