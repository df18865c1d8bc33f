//! [`FlowController`]: a cancellable limit on how much work is in flight at once.
//!
//! A controller holds a fixed number of permits. [`FlowController::acquire`] waits for one and
//! gives up with the context's error if the [`Context`] is cancelled or its deadline passes
//! first; [`FlowController::try_acquire`] takes one only if it is free now. A [`Permit`] gives
//! its capacity back when it is dropped, and that is the only way to give it back: a release
//! without an acquire cannot be written.
//!
//! Waiters are served first come, first served, and `try_acquire` never takes a permit that a
//! waiter is queued for. Permits own a handle to the controller, so they move freely into
//! spawned tasks, and clones of a controller share its permits.
//!
//! ```
//! use beluga_core::{Context, FlowController};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! let ctx = Context::new();
//! let flow = FlowController::new(2)?; // at most two model calls at once
//!
//! let mut calls = Vec::new();
//! for prompt in ["a", "b", "c", "d"] {
//!     let permit = flow.acquire(&ctx).await?; // waits while two calls are running
//!     calls.push(tokio::spawn(async move {
//!         let reply = prompt.to_uppercase(); // the model call
//!         drop(permit); // or let it drop at the end of the task
//!         reply
//!     }));
//! }
//! for call in calls {
//!     call.await.unwrap();
//! }
//! assert_eq!(flow.available(), 2);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Waker};

// The shared state's primitives, swapped for loom's when model checking (`--cfg beluga_loom`).
#[cfg(beluga_loom)]
use loom::sync::atomic::AtomicUsize;
#[cfg(beluga_loom)]
use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(beluga_loom))]
use std::sync::atomic::AtomicUsize;
#[cfg(not(beluga_loom))]
use std::sync::{Arc, Mutex, MutexGuard};

use slab::Slab;

use crate::context::Context;
use crate::error::{Error, ErrorCode};

/// The most permits a controller can have: `usize::MAX >> 3`.
const MAX_PERMITS: usize = usize::MAX >> 3;

/// In [`Shared::state`]: set while waiters are queued.
const WAITING: usize = 1;
/// In [`Shared::state`]: one free permit.
const ONE: usize = 2;

/// A limit of `capacity` concurrent permits, acquired with a [`Context`] and released on drop.
///
/// See the [module docs](crate::flow). Cloning is cheap (one reference count), and clones share
/// the same permits.
///
/// ```
/// use beluga_core::{Context, FlowController};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let flow = FlowController::new(1).unwrap();
/// let permit = flow.acquire(&Context::new()).await.unwrap();
/// assert!(flow.try_acquire().is_none()); // all taken
/// drop(permit);
/// assert!(flow.try_acquire().is_some());
/// # }
/// ```
#[derive(Clone)]
pub struct FlowController {
    shared: Arc<Shared>,
}

/// One unit of a [`FlowController`]'s capacity, given back when dropped.
///
/// It owns a handle to its controller, so it can move into a spawned task and outlive the
/// controller value it came from.
///
/// ```
/// use beluga_core::FlowController;
/// let flow = FlowController::new(3).unwrap();
/// let permit = flow.try_acquire().unwrap();
/// assert_eq!(flow.available(), 2);
/// drop(permit);
/// assert_eq!(flow.available(), 3);
/// ```
#[must_use = "a permit gives its capacity back as soon as it is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
}

/// The permits and the queue of waiters that clones of a controller, and its permits, share.
///
/// A permit is taken with one compare-and-swap on `state` and given back with one add; the
/// queue's lock is taken only while waiters are queued. The queue is not empty exactly while
/// `WAITING` is set (both change under the lock), so a release that sees `WAITING` hands the
/// free permits to the queue in order, and nothing else takes them meanwhile.
struct Shared {
    /// The free permits times `ONE`, plus `WAITING`.
    state: AtomicUsize,
    capacity: usize,
    queue: Mutex<Queue>,
}

impl Shared {
    fn new(permits: usize) -> Self {
        Shared {
            state: AtomicUsize::new(permits * ONE),
            capacity: permits,
            queue: Mutex::new(Queue::new()),
        }
    }

    /// Takes a free permit, unless none is free or waiters are queued for them.
    #[inline]
    fn try_take(&self) -> bool {
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
    fn release(&self) {
        if self.state.fetch_add(ONE, Ordering::Release) & WAITING != 0 {
            self.hand_over();
        }
    }

    /// Waiters are queued: hands the free permits to them, first come first served, and wakes
    /// them after the lock.
    #[cold]
    #[inline(never)]
    fn hand_over(&self) {
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
    fn take_any(&self) -> bool {
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
    fn take_or_queue(&self, queue: &mut Queue, waker: &Waker) -> Result<(), usize> {
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

    fn available(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Every critical section leaves the queue consistent (each is a few slab and link
    // updates, none of which panics), so a poisoned lock is still usable.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const NIL: usize = usize::MAX;

/// The waiters, in arrival order: a doubly linked list threaded through a slab, so a waiter
/// that gives up leaves from anywhere in constant time. A waiter granted a permit leaves the
/// list but keeps its slot until it sees the grant (or gives the permit back).
struct Queue {
    slots: Slab<Slot>,
    first: usize,
    last: usize,
}

struct Slot {
    waker: Option<Waker>,
    granted: bool,
    prev: usize,
    next: usize,
}

impl Queue {
    fn new() -> Self {
        Queue {
            slots: Slab::new(),
            first: NIL,
            last: NIL,
        }
    }

    fn is_empty(&self) -> bool {
        self.first == NIL
    }

    /// Queues a waiter last; returns its key.
    fn push(&mut self, waker: Waker) -> usize {
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
    fn unlink(&mut self, key: usize) {
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
    fn grant_first(&mut self) -> Option<Waker> {
        let key = self.first;
        self.unlink(key);
        let slot = &mut self.slots[key];
        slot.granted = true;
        slot.waker.take()
    }

    /// Whether waiter `key` has been granted a permit (its slot is then freed); if not, its
    /// waker becomes `waker`. A waker replaced goes to `stale`, for dropping after the lock.
    fn poll_grant(&mut self, key: usize, waker: &Waker, stale: &mut Option<Waker>) -> bool {
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
    fn leave(&mut self, key: usize) -> (bool, Option<Waker>) {
        let granted = self.slots[key].granted;
        if !granted {
            self.unlink(key);
        }
        (granted, self.free(key))
    }

    /// Frees a slot that is out of the list; returns its waker.
    fn free(&mut self, key: usize) -> Option<Waker> {
        let slot = self.slots.remove(key);
        if self.slots.is_empty() && self.slots.capacity() > 64 {
            // After a burst of waiters, give the memory back.
            self.slots = Slab::new();
        }
        slot.waker
    }
}

/// A wait for a permit, queued on the first poll that finds none free.
struct Wait<'a> {
    shared: &'a Shared,
    /// The waiter's key in the queue, once queued.
    key: Option<usize>,
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

impl FlowController {
    /// A controller with `permits` permits, all free.
    ///
    /// `permits` of 0 (a controller that could never grant a permit: every `acquire` would wait
    /// until its context ended), or more than `usize::MAX >> 3`, is
    /// an `invalid_input` error, as every count in this crate is (see
    /// [Counts and capacities](crate#counts-and-capacities)).
    ///
    /// ```
    /// use beluga_core::{ErrorCode, FlowController};
    /// let flow = FlowController::new(8)?;
    /// assert_eq!(flow.capacity(), 8);
    /// assert_eq!(flow.available(), 8);
    ///
    /// assert_eq!(FlowController::new(0).unwrap_err().code(), ErrorCode::InvalidInput);
    /// # Ok::<(), beluga_core::Error>(())
    /// ```
    pub fn new(permits: usize) -> Result<Self, Error> {
        if permits == 0 {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "permits must be at least 1 (with 0, acquire could never succeed)",
            )
            .with_op("FlowController::new"));
        }
        if permits > MAX_PERMITS {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("{permits} permits is more than the maximum, {MAX_PERMITS}"),
            )
            .with_op("FlowController::new"));
        }
        Ok(FlowController {
            shared: Arc::new(Shared::new(permits)),
        })
    }

    /// Waits for a free permit, or returns the `cancelled` or `deadline_exceeded` error if `ctx`
    /// ends first. An error takes no permit.
    ///
    /// If `ctx` has already ended, the error comes back at once even when a permit is free: a
    /// cancelled call should not start work. That check is one atomic load, plus one clock read
    /// when the context has a deadline. While waiting, a deadline wakes the caller on time (Tokio
    /// timers fire up to about 1 ms late; the time driver must be enabled). Waiters are served in
    /// the order they started waiting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Context, ErrorCode, FlowController};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let flow = FlowController::new(1).unwrap();
    /// let held = flow.acquire(&Context::new()).await.unwrap();
    ///
    /// // Nothing is free, so this waits until its deadline.
    /// let ctx = Context::new().with_timeout(Duration::from_millis(50));
    /// let err = flow.acquire(&ctx).await.unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    ///
    /// drop(held);
    /// assert!(flow.acquire(&Context::new()).await.is_ok());
    /// # }
    /// ```
    pub async fn acquire(&self, ctx: &Context) -> Result<Permit, Error> {
        if ctx.is_cancelled() || (ctx.needs_observing() && ctx.check_deadline()) {
            return Err(ended(ctx));
        }
        match self.try_acquire() {
            Some(permit) => Ok(permit),
            None => self.wait(ctx).await,
        }
    }

    /// Nothing is free: queue for a permit, and leave the queue if `ctx` ends first.
    async fn wait(&self, ctx: &Context) -> Result<Permit, Error> {
        let mut cancelled = ctx.cancelled();
        let mut wait = Wait {
            shared: &self.shared,
            key: None,
        };
        poll_fn(|cx| {
            // The context first: once it has ended, no permit is handed out. Dropping `wait`
            // leaves the queue and gives back any permit it was granted meanwhile.
            if let Poll::Ready(err) = Pin::new(&mut cancelled).poll(cx) {
                return Poll::Ready(Err(err));
            }
            Pin::new(&mut wait).poll(cx).map(|()| Ok(self.permit()))
        })
        .await
    }

    /// A free permit, or `None` if all are taken (or promised to a waiter). Never waits.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(2).unwrap();
    /// let a = flow.try_acquire().unwrap();
    /// let b = flow.try_acquire().unwrap();
    /// assert!(flow.try_acquire().is_none());
    /// drop(a);
    /// assert!(flow.try_acquire().is_some());
    /// # drop(b);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit> {
        self.shared.try_take().then(|| self.permit())
    }

    /// The permit for a unit of capacity already taken.
    fn permit(&self) -> Permit {
        Permit {
            shared: Arc::clone(&self.shared),
        }
    }

    /// How many permits are free now.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(4).unwrap();
    /// let _permit = flow.try_acquire().unwrap();
    /// assert_eq!(flow.available(), 3);
    /// ```
    pub fn available(&self) -> usize {
        self.shared.available()
    }

    /// How many permits the controller has in all, free or not.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(4).unwrap();
    /// let _permit = flow.try_acquire().unwrap();
    /// assert_eq!(flow.capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// The error for a context that has ended.
#[cold]
fn ended(ctx: &Context) -> Error {
    ctx.error().unwrap_or_else(Error::cancelled)
}

impl fmt::Debug for FlowController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowController")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// Model checks of the permits and the queue with loom: run with
/// `RUSTFLAGS="--cfg beluga_loom" cargo test -p beluga-core --lib --release flow_loom`.
#[cfg(all(test, beluga_loom))]
mod flow_loom {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context as TaskContext, Poll};

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    use crate::context::Context;
    use crate::flow::FlowController;

    /// Every interleaving with up to three preemptions, unless `LOOM_MAX_PREEMPTIONS` says
    /// otherwise.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// Two threads take turns on one permit, each waiting when the other holds it: never both
    /// at once, the permit always comes back, and nobody waits forever (loom reports a
    /// deadlock if both threads block).
    #[test]
    fn two_threads_share_one_permit() {
        model(|| {
            let flow = FlowController::new(1).unwrap();
            let inside = Arc::new(AtomicUsize::new(0));
            let turn = |flow: FlowController, inside: Arc<AtomicUsize>| {
                loom::future::block_on(async move {
                    let permit = flow.acquire(&Context::new()).await.unwrap();
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two permits at once"
                    );
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                });
            };
            let other = {
                let (flow, inside) = (flow.clone(), Arc::clone(&inside));
                loom::thread::spawn(move || turn(flow, inside))
            };
            turn(flow.clone(), inside);
            other.join().unwrap();
            assert_eq!(flow.available(), 1);
        });
    }

    /// A waiter gives up (its wait is dropped) while the permit is released on another thread,
    /// whether or not it was handed the permit first: the permit is never lost.
    #[test]
    fn a_waiter_giving_up_during_a_release_loses_no_permit() {
        model(|| {
            let flow = FlowController::new(1).unwrap();
            let held = flow.try_acquire().unwrap();
            let releaser = loom::thread::spawn(move || drop(held));
            {
                let ctx = Context::new();
                let mut wait = pin!(flow.acquire(&ctx));
                let waker = futures_util::task::noop_waker();
                let mut cx = TaskContext::from_waker(&waker);
                if let Poll::Ready(permit) = wait.as_mut().poll(&mut cx) {
                    drop(permit.unwrap());
                }
            }
            releaser.join().unwrap();
            assert_eq!(flow.available(), 1);
            assert!(flow.try_acquire().is_some());
        });
    }
}
