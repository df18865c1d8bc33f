//! The permits behind [`FlowController`](super::FlowController): a count on one atomic word,
//! and a first-come, first-served queue of waiters behind a lock taken only while someone waits.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Waker};

#[cfg(beluga_loom)]
use loom::sync::atomic::AtomicUsize;
#[cfg(beluga_loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(beluga_loom))]
use std::sync::atomic::AtomicUsize;
#[cfg(not(beluga_loom))]
use std::sync::{Mutex, MutexGuard};

use slab::Slab;

use super::{ONE, WAITING};

/// The permits and the queue of waiters that clones of a controller, and its permits, share.
///
/// A permit is taken with one compare-and-swap on `state` and given back with one add; the
/// queue's lock is taken only while waiters are queued. The queue is not empty exactly while
/// `WAITING` is set (both change under the lock), so a release that sees `WAITING` hands the
/// free permits to the queue in order, and nothing else takes them meanwhile.
pub(super) struct Shared {
    /// The free permits times `ONE`, plus `WAITING`.
    pub(super) state: AtomicUsize,
    pub(super) capacity: usize,
    pub(super) queue: Mutex<Queue>,
}

impl Shared {
    pub(super) fn new(permits: usize) -> Self {
        Shared {
            state: AtomicUsize::new(permits * ONE),
            capacity: permits,
            queue: Mutex::new(Queue::new()),
        }
    }

    /// Takes a free permit, unless none is free or waiters are queued for them.
    #[inline]
    pub(super) fn try_take(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WAITING != 0 || state < ONE {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Gives a permit back, to the first waiter if any are queued.
    #[inline]
    pub(super) fn release(&self) {
        if self.state.fetch_add(ONE, Ordering::Release) & WAITING != 0 {
            self.hand_over();
        }
    }

    /// Waiters are queued: hands the free permits to them, first come first served, and wakes
    /// them after the lock.
    #[cold]
    #[inline(never)]
    pub(super) fn hand_over(&self) {
        let mut wakers = Vec::new();
        {
            let mut queue = lock(&self.queue);
            while !queue.is_empty() && self.take_any() {
                if let Some(waker) = queue.grant_first() {
                    wakers.push(waker);
                }
            }
            if queue.is_empty() {
                self.state.fetch_and(!WAITING, Ordering::Relaxed);
            }
        }
        for waker in wakers {
            waker.wake();
        }
    }

    /// Takes a free permit whether or not waiters are queued: for the first of them.
    pub(super) fn take_any(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state < ONE {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Under the queue's lock: takes a permit if one is free and nobody is queued, or else
    /// queues a waiter (and sets `WAITING`). `Ok` is a permit; `Err` the waiter's key.
    pub(super) fn take_or_queue(&self, queue: &mut Queue, waker: &Waker) -> Result<(), usize> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let next = if queue.is_empty() && state >= ONE {
                state - ONE
            } else if state & WAITING == 0 {
                state | WAITING
            } else {
                // Already queued behind others; `WAITING` stays set while they are.
                break;
            };
            match self.state.compare_exchange_weak(
                state,
                next,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) if next < state => return Ok(()),
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        Err(queue.push(waker.clone()))
    }

    pub(super) fn available(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }
}

pub(super) fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Every critical section leaves the queue consistent (each is a few slab and link
    // updates, none of which panics), so a poisoned lock is still usable.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) const NIL: usize = usize::MAX;

/// The waiters, in arrival order: a doubly linked list threaded through a slab, so a waiter
/// that gives up leaves from anywhere in constant time. A waiter granted a permit leaves the
/// list but keeps its slot until it sees the grant (or gives the permit back).
pub(super) struct Queue {
    pub(super) slots: Slab<Slot>,
    pub(super) first: usize,
    pub(super) last: usize,
}

pub(super) struct Slot {
    pub(super) waker: Option<Waker>,
    pub(super) granted: bool,
    pub(super) prev: usize,
    pub(super) next: usize,
}

impl Queue {
    pub(super) fn new() -> Self {
        Queue {
            slots: Slab::new(),
            first: NIL,
            last: NIL,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.first == NIL
    }

    /// Queues a waiter last; returns its key.
    pub(super) fn push(&mut self, waker: Waker) -> usize {
        let key = self.slots.insert(Slot {
            waker: Some(waker),
            granted: false,
            prev: self.last,
            next: NIL,
        });
        match self.slots.get_mut(self.last) {
            Some(last) => last.next = key,
            None => self.first = key,
        }
        self.last = key;
        key
    }

    /// Takes the list's links out of a queued slot.
    pub(super) fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let slot = &mut self.slots[key];
            let links = (slot.prev, slot.next);
            slot.prev = NIL;
            slot.next = NIL;
            links
        };
        match self.slots.get_mut(prev) {
            Some(slot) => slot.next = next,
            None => self.first = next,
        }
        match self.slots.get_mut(next) {
            Some(slot) => slot.prev = prev,
            None => self.last = prev,
        }
    }

    /// The first waiter gets a permit (taken by the caller): it leaves the list, and its waker
    /// is returned for waking after the lock.
    pub(super) fn grant_first(&mut self) -> Option<Waker> {
        let key = self.first;
        self.unlink(key);
        let slot = &mut self.slots[key];
        slot.granted = true;
        slot.waker.take()
    }

    /// Whether waiter `key` has been granted a permit (its slot is then freed); if not, its
    /// waker becomes `waker`. A waker replaced goes to `stale`, for dropping after the lock.
    pub(super) fn poll_grant(
        &mut self,
        key: usize,
        waker: &Waker,
        stale: &mut Option<Waker>,
    ) -> bool {
        let slot = &mut self.slots[key];
        if slot.granted {
            *stale = self.free(key);
            return true;
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *stale = slot.waker.replace(waker.clone());
        }
        false
    }

    /// Waiter `key` gives up: returns whether it had been granted a permit (which it must
    /// then give back), and its waker, for dropping after the lock.
    pub(super) fn leave(&mut self, key: usize) -> (bool, Option<Waker>) {
        let granted = self.slots[key].granted;
        if !granted {
            self.unlink(key);
        }
        (granted, self.free(key))
    }

    /// Frees a slot that is out of the list; returns its waker.
    pub(super) fn free(&mut self, key: usize) -> Option<Waker> {
        let slot = self.slots.remove(key);
        if self.slots.is_empty() && self.slots.capacity() > 64 {
            // After a burst of waiters, give the memory back.
            self.slots = Slab::new();
        }
        slot.waker
    }
}

/// A wait for a permit, queued on the first poll that finds none free.
pub(super) struct Wait<'a> {
    pub(super) shared: &'a Shared,
    /// The waiter's key in the queue, once queued.
    pub(super) key: Option<usize>,
}

impl Future for Wait<'_> {
    /// A permit has been taken for the caller.
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let shared = self.shared;
        // Declared before the lock's guard, so dropped after it.
        let mut stale = None;
        let mut queue = lock(&shared.queue);
        match self.key {
            Some(key) => {
                if queue.poll_grant(key, cx.waker(), &mut stale) {
                    self.key = None;
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            None => match shared.take_or_queue(&mut queue, cx.waker()) {
                Ok(()) => Poll::Ready(()),
                Err(key) => {
                    self.key = Some(key);
                    Poll::Pending
                }
            },
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else {
            return;
        };
        let (granted, waker) = {
            let mut queue = lock(&self.shared.queue);
            let left = queue.leave(key);
            if queue.is_empty() {
                self.shared.state.fetch_and(!WAITING, Ordering::Relaxed);
            }
            left
        };
        drop(waker);
        if granted {
            // Handed a permit that nobody will use: the next waiter gets it.
            self.shared.release();
        }
    }
}
