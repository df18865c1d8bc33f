//! The state the consumers of one fan-out share: the source, one queue per consumer, and the
//! bookkeeping of who may pull.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Waker;

use futures_core::Stream;

#[cfg(beluga_loom)]
use loom::sync::Mutex;
#[cfg(beluga_loom)]
use loom::sync::atomic::AtomicBool;
#[cfg(not(beluga_loom))]
use std::sync::Mutex;
#[cfg(not(beluga_loom))]
use std::sync::atomic::AtomicBool;

use super::waiters::Waiters;

pub(super) struct Inner<S: Stream> {
    pub(super) state: Mutex<State<S>>,
    /// `room_waits[i]`: consumer `i` waits for room, and its slot's room waker is woken when
    /// room is made. Set and cleared under `state`'s lock only, with the slot's `waiting`; read
    /// by consumer `i` without the lock. While it is set no item can reach that consumer (the
    /// source is not pulled while a queue is full, and whatever empties one ends every wait), so
    /// the consumer may return `Pending` without locking: it will be woken.
    pub(super) room_waits: Box<[AtomicBool]>,
    /// Consumers waiting for the source. Its own lock, never held while taking `state`'s, so
    /// that a source waking its waker inside `poll_next` cannot deadlock. (A standard `Arc`: it
    /// is also the source's waker.)
    pub(super) waiters: std::sync::Arc<Waiters>,
    /// The waker the source is polled with (wakes `waiters`), built once.
    pub(super) source_waker: Waker,
    pub(super) capacity: usize,
}

pub(super) struct State<S: Stream> {
    pub(super) source: Option<Pin<Box<S>>>,
    /// One per consumer.
    pub(super) slots: Vec<Slot<S::Item>>,
    /// How many slots have a waker waiting for room.
    pub(super) waiting_for_room: usize,
    /// How many queues are full (hold `capacity` items; none holds more): while any is, the
    /// source is not pulled, and a consumer out of items waits for room.
    pub(super) full: usize,
    pub(super) live: usize,
    /// The source has yielded its last item.
    pub(super) ended: bool,
}

/// A consumer's share of the state.
pub(super) struct Slot<I> {
    /// Items pulled that this consumer has not taken yet, at most `capacity`, in the order
    /// `newest_first` says. Empty once the consumer is dropped.
    pub(super) queue: Vec<I>,
    /// Whether `queue` holds its items newest first (else oldest first). A batch that reaches
    /// an empty queue, the usual case (a consumer that keeps up takes everything each time),
    /// is stored newest first, the order `taken` wants, so that taking it reverses nothing; one
    /// that reaches a non-empty queue turns it oldest first, and taking that reverses it.
    pub(super) newest_first: bool,
    pub(super) live: bool,
    /// A clone of the waker of the consumer's latest wait for room (another consumer's queue is
    /// full), kept between waits so that waiting again from the same task clones nothing. Kept
    /// here, under the state's lock, since room is only ever made under it.
    pub(super) room_waker: Option<Waker>,
    /// The waker `room_waker` was cloned from, when that identity can be trusted (see
    /// [`WakerId::of_clone`]); `None` when it cannot, and then every wait clones anew.
    pub(super) room_waker_id: Option<WakerId>,
    /// Whether `room_waker` is to be woken when room is made (mirrored in `Inner::room_waits`).
    pub(super) waiting: bool,
}

/// A waker's identity as [`Waker::will_wake`] sees it (its data pointer and vtable), but taken
/// from the waker a consumer was polled with rather than from the clone it keeps: the clone of
/// some wakers does not `will_wake` the original (Tokio's `block_on` waker has a vtable of its
/// own), so comparing with the clone would clone again at every wait. Two wakers with one
/// identity are the same `RawWaker`: a clone of either wakes the same task, as long as the
/// identity is not reused by another waker meanwhile (see [`WakerId::of_clone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WakerId(usize, usize);

impl WakerId {
    pub(super) fn of(waker: &Waker) -> Self {
        WakerId(
            waker.data().addr(),
            std::ptr::from_ref(waker.vtable()).addr(),
        )
    }

    /// The identity of `original` (which `id` is), to be kept beside `clone`, its clone, if it
    /// can be trusted for as long as `clone` is kept: only when `clone` shares the original's
    /// data. Then `clone` keeps that data alive (or it is static), so no other waker can come
    /// to have the same data pointer meanwhile; a clone with data of its own (a waker whose
    /// `clone` allocates, say) would let the original's data be freed and its address reused by
    /// another task's waker, which would then pass for this one and never be woken.
    pub(super) fn of_clone(id: WakerId, original: &Waker, clone: &Waker) -> Option<WakerId> {
        (clone.data() == original.data()).then_some(id)
    }
}

impl<I> Slot<I> {
    /// Puts `queue` oldest first.
    pub(super) fn oldest_first(&mut self) {
        if self.newest_first {
            self.queue.reverse();
            self.newest_first = false;
        }
    }

    /// Appends `item` as the newest.
    pub(super) fn push(&mut self, item: I) {
        self.oldest_first();
        self.queue.push(item);
    }
}

impl<I: Clone> Slot<I> {
    /// Appends a clone of `batch` (oldest first): newest first if the queue is empty.
    pub(super) fn append_clones(&mut self, batch: &[I]) {
        if self.queue.is_empty() {
            self.newest_first = true;
            self.queue.extend(batch.iter().rev().cloned());
        } else {
            self.oldest_first();
            self.queue.extend_from_slice(batch);
        }
    }
}

impl<S: Stream> State<S> {
    /// The most items any consumer has waiting: how far the source is ahead of the slowest
    /// live consumer.
    pub(super) fn lag(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| slot.queue.len())
            .max()
            .unwrap_or(0)
    }

    /// How many queues hold `capacity` items, counted.
    pub(super) fn count_full(&self, capacity: usize) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.queue.len() >= capacity)
            .count()
    }

    /// Ends every wait for room. The wakers stay in their slots (nothing is dropped under the
    /// lock): a clone of each goes into `out`, but not of a waker that wakes the same task as the
    /// one pushed just before, since consumers drained at once on one task (`join!`) share it and
    /// one wake polls them all (a check against the last one only: comparing with every waker in
    /// `out` would cost each item of a fan-out to many tasks as much as there are consumers);
    /// and none for the waker `me` identifies, which the caller wakes itself: returns whether to.
    pub(super) fn end_room_waits(
        &mut self,
        room_waits: &[AtomicBool],
        out: &mut Vec<Waker>,
        me: Option<WakerId>,
    ) -> bool {
        let mut wake_me = false;
        if self.waiting_for_room == 0 {
            return wake_me;
        }
        for (slot, flag) in self.slots.iter_mut().zip(room_waits) {
            if !slot.waiting {
                continue;
            }
            if me.is_some() && me == slot.room_waker_id {
                wake_me = true;
            } else if let Some(waker) = &slot.room_waker {
                if !out.last().is_some_and(|w| w.will_wake(waker)) {
                    out.push(waker.clone());
                }
            }
            // Only once its wake-up is collected (a clone may panic).
            slot.waiting = false;
            flag.store(false, Ordering::Release);
            self.waiting_for_room -= 1;
        }
        wake_me
    }

    /// Makes consumer `index` wait for room, woken through `waker`, which `id` identifies.
    /// Returns the waker it replaces, if any, to drop once the lock is released.
    #[inline]
    pub(super) fn wait_for_room(
        &mut self,
        room_waits: &[AtomicBool],
        index: usize,
        waker: &Waker,
        id: WakerId,
    ) -> Option<Waker> {
        let slot = &mut self.slots[index];
        let replaced = if slot.room_waker.is_some() && slot.room_waker_id == Some(id) {
            None
        } else {
            let clone = waker.clone();
            slot.room_waker_id = WakerId::of_clone(id, waker, &clone);
            slot.room_waker.replace(clone)
        };
        if !slot.waiting {
            slot.waiting = true;
            self.waiting_for_room += 1;
            room_waits[index].store(true, Ordering::Release);
        }
        replaced
    }
}
