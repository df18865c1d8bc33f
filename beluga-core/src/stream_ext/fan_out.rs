use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use futures_core::{FusedStream, Stream};

// The shared state's primitives, swapped for loom's when model checking (`--cfg beluga_loom`).
#[cfg(beluga_loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(beluga_loom)]
use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(beluga_loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(beluga_loom))]
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Error, ErrorCode, Event};

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

struct Inner<S: Stream> {
    state: Mutex<State<S>>,
    /// `room_waits[i]`: consumer `i` waits for room, and its slot's room waker is woken when
    /// room is made. Set and cleared under `state`'s lock only, with the slot's `waiting`; read
    /// by consumer `i` without the lock. While it is set no item can reach that consumer (the
    /// source is not pulled while a queue is full, and whatever empties one ends every wait), so
    /// the consumer may return `Pending` without locking: it will be woken.
    room_waits: Box<[AtomicBool]>,
    /// Consumers waiting for the source. Its own lock, never held while taking `state`'s, so
    /// that a source waking its waker inside `poll_next` cannot deadlock. (A standard `Arc`: it
    /// is also the source's waker.)
    waiters: std::sync::Arc<Waiters>,
    /// The waker the source is polled with (wakes `waiters`), built once.
    source_waker: Waker,
    capacity: usize,
}

struct State<S: Stream> {
    source: Option<Pin<Box<S>>>,
    /// One per consumer.
    slots: Vec<Slot<S::Item>>,
    /// How many slots have a waker waiting for room.
    waiting_for_room: usize,
    /// How many queues are full (hold `capacity` items; none holds more): while any is, the
    /// source is not pulled, and a consumer out of items waits for room.
    full: usize,
    live: usize,
    /// The source has yielded its last item.
    ended: bool,
}

/// A consumer's share of the state.
struct Slot<I> {
    /// Items pulled that this consumer has not taken yet, at most `capacity`, in the order
    /// `newest_first` says. Empty once the consumer is dropped.
    queue: Vec<I>,
    /// Whether `queue` holds its items newest first (else oldest first). A batch that reaches
    /// an empty queue, the usual case (a consumer that keeps up takes everything each time),
    /// is stored newest first, the order `taken` wants, so that taking it reverses nothing; one
    /// that reaches a non-empty queue turns it oldest first, and taking that reverses it.
    newest_first: bool,
    live: bool,
    /// A clone of the waker of the consumer's latest wait for room (another consumer's queue is
    /// full), kept between waits so that waiting again from the same task clones nothing. Kept
    /// here, under the state's lock, since room is only ever made under it.
    room_waker: Option<Waker>,
    /// The waker `room_waker` was cloned from, when that identity can be trusted (see
    /// [`WakerId::of_clone`]); `None` when it cannot, and then every wait clones anew.
    room_waker_id: Option<WakerId>,
    /// Whether `room_waker` is to be woken when room is made (mirrored in `Inner::room_waits`).
    waiting: bool,
}

/// A waker's identity as [`Waker::will_wake`] sees it (its data pointer and vtable), but taken
/// from the waker a consumer was polled with rather than from the clone it keeps: the clone of
/// some wakers does not `will_wake` the original (Tokio's `block_on` waker has a vtable of its
/// own), so comparing with the clone would clone again at every wait. Two wakers with one
/// identity are the same `RawWaker`: a clone of either wakes the same task, as long as the
/// identity is not reused by another waker meanwhile (see [`WakerId::of_clone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WakerId(usize, usize);

impl WakerId {
    fn of(waker: &Waker) -> Self {
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
    fn of_clone(id: WakerId, original: &Waker, clone: &Waker) -> Option<WakerId> {
        (clone.data() == original.data()).then_some(id)
    }
}

impl<I> Slot<I> {
    /// Puts `queue` oldest first.
    fn oldest_first(&mut self) {
        if self.newest_first {
            self.queue.reverse();
            self.newest_first = false;
        }
    }

    /// Appends `item` as the newest.
    fn push(&mut self, item: I) {
        self.oldest_first();
        self.queue.push(item);
    }
}

impl<I: Clone> Slot<I> {
    /// Appends a clone of `batch` (oldest first): newest first if the queue is empty.
    fn append_clones(&mut self, batch: &[I]) {
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
    fn lag(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| slot.queue.len())
            .max()
            .unwrap_or(0)
    }

    /// How many queues hold `capacity` items, counted.
    fn count_full(&self, capacity: usize) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.queue.len() >= capacity)
            .count()
    }

    /// Ends every wait for room. The wakers stay in their slots (nothing is dropped under the
    /// lock): a clone of each goes into `out`, once per task, since consumers drained at once on
    /// one task (`join!`) share it and one wake polls them all; and none for the waker `me`
    /// identifies, which the caller wakes itself: returns whether to.
    fn end_room_waits(
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
                if !out.iter().any(|w| w.will_wake(waker)) {
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
    fn wait_for_room(
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

/// The consumers' wakers, and the waker the source is polled with: waking it wakes every
/// waiting consumer, so none depends on another one's task to be polled.
struct Waiters {
    waiting: AtomicUsize,
    /// Set by every wake, so that a wake that comes while the source is being polled (before
    /// anyone is registered) is not lost.
    notified: AtomicBool,
    wakers: Mutex<Vec<Option<Waker>>>,
}

impl Waiters {
    /// Registers consumer `index`'s `waker`; returns the waker it replaces, for the caller to
    /// drop once it holds no lock (a waker's drop is not ours to run under a lock).
    #[must_use]
    fn register(&self, index: usize, waker: &Waker) -> Option<Waker> {
        let mut wakers = lock(&self.wakers);
        let slot = &mut wakers[index];
        if slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return None;
        }
        let replaced = slot.replace(waker.clone());
        if replaced.is_none() {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        replaced
    }

    /// Registers a consumer whose source poll came back `Pending` (called under the state's
    /// lock, so that no other consumer pulls meanwhile). Returns the waker replaced, and whether
    /// the source woke during that poll: then the caller wakes its task at once, once it holds
    /// no lock.
    #[must_use]
    fn register_after_poll(&self, index: usize, waker: &Waker) -> (Option<Waker>, bool) {
        let replaced = self.register(index, waker);
        (replaced, self.notified.swap(false, Ordering::SeqCst))
    }

    fn forget(&self, index: usize) {
        // Only this consumer registers its own slot, so if nothing is registered, its slot is
        // empty.
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut wakers = lock(&self.wakers);
        let forgotten = wakers[index].take();
        if forgotten.is_some() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        drop(wakers);
        drop(forgotten);
    }

    /// Moves every registered waker into `out`, to be woken once no lock is held.
    #[inline]
    fn drain_into(&self, out: &mut Vec<Waker>) {
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.drain_slow(out);
        }
    }

    /// [`drain_into`](Self::drain_into)'s work. Wakers of one task are not weeded out here,
    /// where dropping one would run its destructor under the lock: [`wake_all`] wakes each task
    /// once, then drops them.
    #[inline(never)]
    fn drain_slow(&self, out: &mut Vec<Waker>) {
        let mut wakers = lock(&self.wakers);
        for slot in wakers.iter_mut() {
            if let Some(waker) = slot.take() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                out.push(waker);
            }
        }
    }

    /// Clears `notified` before the source is polled, so that a wake that comes while it is
    /// polled, before anyone registers, is kept. Written only if set: a wake that sets it just
    /// after the read costs at worst one spurious wake-up, and the usual case (a ready source
    /// that never wakes) writes nothing.
    #[inline]
    fn reset_notified(&self) {
        if self.notified.load(Ordering::SeqCst) {
            self.notified.store(false, Ordering::SeqCst);
        }
    }
}

impl Wake for Waiters {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        // A consumer's wake that panics keeps no other from being woken: the first panic comes
        // out once all have been.
        let mut panic = None;
        // Wake in chunks taken under the lock and woken outside it, without allocating.
        loop {
            let mut chunk: [Option<Waker>; 8] = Default::default();
            let mut taken = 0;
            if self.waiting.load(Ordering::SeqCst) != 0 {
                let mut wakers = lock(&self.wakers);
                for slot in wakers.iter_mut() {
                    if taken == chunk.len() {
                        break;
                    }
                    if let Some(waker) = slot.take() {
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        chunk[taken] = Some(waker);
                        taken += 1;
                    }
                }
            }
            for waker in chunk.into_iter().flatten() {
                wake_catching(|| waker.wake(), &mut panic);
            }
            if taken < 8 {
                break;
            }
        }
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic (the only
    // user code run under the lock is the source's `poll_next` and items' `clone`, whose panics
    // are caught and undone, and wakers' `clone`, made before the state it is for changes;
    // destructors of the source, of items and of wakers run once the lock is released), so a
    // poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wakes the wakers collected under a lock, once per task (consumers on one task, drained at
/// once with `join!`, share it: one wake polls them all), then drops them. A wake that panics
/// keeps no other task from being woken: the first panic comes out once all have been.
#[inline]
fn wake_all(wakers: &mut Vec<Waker>) {
    if !wakers.is_empty() {
        wake_each(wakers);
    }
}

/// [`wake_all`]'s work, out of line: the `catch_unwind`s stay out of the polls' code.
#[inline(never)]
fn wake_each(wakers: &mut Vec<Waker>) {
    let mut panic = None;
    for (k, waker) in wakers.iter().enumerate() {
        if !wakers[..k].iter().any(|w| w.will_wake(waker)) {
            wake_catching(|| waker.wake_by_ref(), &mut panic);
        }
    }
    wakers.clear();
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `wake`, keeping the first panic of a run of wakes in `first`.
#[inline]
fn wake_catching(wake: impl FnOnce(), first: &mut Option<Box<dyn std::any::Any + Send>>) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(wake)) {
        first.get_or_insert(panic);
    }
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

/// How a run of source polls stopped.
enum Stop {
    Full,
    Pending,
    Ended,
}

/// What a poll takes out of the shared state to drop once the lock is released: user code
/// (destructors of the source and of items, a waker's drop) never runs under the lock.
struct Leftovers<S: Stream> {
    /// The source, once it has ended.
    source: Option<Pin<Box<S>>>,
    /// Items put back after a `clone` panicked.
    items: Vec<Vec<S::Item>>,
    /// A room waker replaced.
    waker: Option<Waker>,
    /// A source waiter's waker replaced.
    source_waiter: Option<Waker>,
}

impl<S: Stream> Leftovers<S> {
    fn new() -> Self {
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
fn pull<S, T>(
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
fn push_reserved<I>(batch: &mut Vec<I>, item: I) {
    if batch.len() < batch.capacity() {
        batch.push(item);
    } else {
        push_cold(batch, item);
    }
}

#[cold]
#[inline(never)]
fn push_cold<I>(batch: &mut Vec<I>, item: I) {
    batch.push(item);
}

/// Appends a clone of `batch` to the queue of every live consumer but `index`. If a `clone`
/// panics, every queue is put back as it was (but perhaps oldest first now; the clones already
/// made go to `undone`, to be dropped once the lock is released) and the panic comes back as an
/// `internal` error.
fn distribute<T: Clone>(
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
fn panicked(what: &str, panic: &(dyn std::any::Any + Send)) -> Error {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    Error::new(ErrorCode::Internal, format!("{what} panicked: {detail}")).with_op("fan_out")
}

/// Whether `item` ends its stream: a `done` event or an `Err`.
fn is_terminal<T>(item: &Result<Event<T>, Error>) -> bool {
    !matches!(item, Ok(event) if !event.is_done())
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

/// Model checks of the shared state with loom: run with
/// `RUSTFLAGS="--cfg beluga_loom" cargo test -p beluga-core --lib --release fan_out_loom`.
#[cfg(all(test, beluga_loom))]
mod fan_out_loom {
    use crate::{Event, EventStreamExt, stream};

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
            let mut consumers = stream::iter([1_u8, 2]).fan_out_with_capacity(2, 1).unwrap();
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
            let mut consumers = stream::iter([1_u8, 2]).fan_out_with_capacity(3, 1).unwrap();
            let third = consumers.pop().unwrap();
            let second = consumers.pop().unwrap();
            let first = consumers.pop().unwrap();
            let threads = [second, third].map(|consumer| {
                loom::thread::spawn(move || {
                    loom::future::block_on(consumer.collect_events()).events
                })
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
            let mut consumers = stream::iter([1_u8, 2]).fan_out_with_capacity(3, 1).unwrap();
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
            let mut consumers = stream::iter([1_u8, 2]).fan_out_with_capacity(2, 1).unwrap();
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
            let mut consumers = stream::iter([1_u8, 2]).fan_out_with_capacity(2, 2).unwrap();
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
}
