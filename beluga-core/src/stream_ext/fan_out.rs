use std::collections::VecDeque;
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

/// One of the streams [`fan_out`](crate::EventStreamExt::fan_out) returns: sees every item of
/// the source, in order.
///
/// No task is spawned: whichever consumer needs the next item pulls the source (as many items as
/// are ready and fit), and each item is kept in the shared buffer until every live consumer has
/// taken it. The shared buffer holds at most `capacity` items, so the source runs at most
/// `capacity` items ahead of the slowest live consumer's reads. A consumer takes every item
/// available under one lock and returns them one per poll, so it may hold up to `capacity`
/// taken items of its own. Dropping a consumer stops it counting; dropping the last one drops
/// the source.
#[must_use = "streams do nothing unless polled"]
pub struct FanOut<S: Stream> {
    inner: Arc<Inner<S>>,
    index: usize,
    terminated: bool,
    /// Wakers to wake after the lock is released, kept between polls so that waking allocates
    /// nothing.
    to_wake: Vec<Waker>,
    /// Items this consumer has taken from the shared buffer but not returned yet: one lock
    /// takes every item available, and the next polls return them without locking.
    taken: VecDeque<S::Item>,
    /// Whether this consumer's waker is registered in `waiters`.
    registered: bool,
}

struct Inner<S: Stream> {
    state: Mutex<State<S>>,
    /// Consumers waiting for an item or for room. Its own lock, never held while taking
    /// `state`'s, so that a source waking its waker inside `poll_next` cannot deadlock. (A
    /// standard `Arc`: it is also the source's waker.)
    waiters: std::sync::Arc<Waiters>,
    /// The waker the source is polled with (wakes `waiters`), built once.
    source_waker: Waker,
}

struct State<S: Stream> {
    source: Option<Pin<Box<S>>>,
    /// Items some live consumer has yet to read, each with how many live consumers have yet
    /// to read it; `buffer[0]` has sequence number `base`. Consumers read in order, so the
    /// count of the oldest item reaches zero first.
    buffer: VecDeque<(S::Item, usize)>,
    base: u64,
    capacity: usize,
    /// The next sequence number each consumer reads, or `None` once it is dropped.
    cursors: Vec<Option<u64>>,
    live: usize,
    /// The source has yielded its last item.
    ended: bool,
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
    fn register(&self, index: usize, waker: &Waker) {
        let mut wakers = lock(&self.wakers);
        match &mut wakers[index] {
            Some(w) if w.will_wake(waker) => {}
            slot => {
                if slot.is_none() {
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                }
                *slot = Some(waker.clone());
            }
        }
    }

    /// Registers a consumer whose source poll came back `Pending`; if the source woke during
    /// that poll, wakes it at once instead.
    fn register_after_poll(&self, index: usize, waker: &Waker) {
        self.register(index, waker);
        if self.notified.swap(false, Ordering::SeqCst) {
            waker.wake_by_ref();
        }
    }

    fn forget(&self, index: usize) {
        let mut wakers = lock(&self.wakers);
        if wakers[index].take().is_some() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Moves every registered waker into `out`, to be woken once no lock is held.
    #[inline]
    fn drain_into(&self, out: &mut Vec<Waker>) {
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.drain_slow(out);
        }
    }

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
}

impl Wake for Waiters {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
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
                waker.wake();
            }
            if taken < 8 {
                break;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic (user code
    // run under the lock: the source's `poll_next`, whose panic is caught, and items' `clone`,
    // after which the state is
    // updated in one step), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let waiters = std::sync::Arc::new(Waiters {
        waiting: AtomicUsize::new(0),
        notified: AtomicBool::new(false),
        wakers: Mutex::new(vec![None; n]),
    });
    let source_waker = Waker::from(std::sync::Arc::clone(&waiters));
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            source: Some(Box::pin(source)),
            buffer: VecDeque::with_capacity(capacity),
            base: 0,
            capacity,
            cursors: vec![Some(0); n],
            live: n,
            ended: false,
        }),
        waiters,
        source_waker,
    });
    Ok((0..n)
        .map(|index| FanOut {
            inner: Arc::clone(&inner),
            index,
            terminated: false,
            to_wake: Vec::new(),
            taken: VecDeque::new(),
            registered: false,
        })
        .collect())
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

    /// How many items this consumer has yet to return: those in the shared buffer and those it
    /// has already taken from it.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out(2).unwrap();
    /// assert_eq!(consumers[0].len(), 0); // nothing pulled yet
    /// ```
    pub fn len(&self) -> usize {
        let state = lock(&self.inner.state);
        let end = state.base + state.buffer.len() as u64;
        let shared =
            state.cursors[self.index].map_or(0, |c| usize::try_from(end - c).unwrap_or(usize::MAX));
        shared.saturating_add(self.taken.len())
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

    /// The most items the shared buffer holds: the source never runs more than this many items
    /// ahead of the slowest live consumer's reads from it. (Each consumer may also hold up to
    /// this many items it has taken but not returned yet.)
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out_with_capacity(2, 4).unwrap();
    /// assert_eq!(consumers[0].capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        lock(&self.inner.state).capacity
    }

    #[inline]
    fn wake_collected(&mut self) {
        if self.to_wake.is_empty() {
            return;
        }
        for waker in self.to_wake.drain(..) {
            waker.wake();
        }
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

/// Pulls the source while there is room and it is ready: the items go out to every consumer in
/// batches, one lock each, instead of one lock per item. A panic in the source becomes an
/// `internal` error item that ends the stream. Returns whether anything was pulled, and whether
/// the source is pending.
fn pull<S, T>(
    state: &mut State<S>,
    source_waker: &Waker,
    finished_source: &mut Option<Pin<Box<S>>>,
) -> (bool, bool)
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    let mut source_cx = TaskContext::from_waker(source_waker);
    let mut pulled = false;
    while state.buffer.len() < state.capacity && !state.ended {
        let Some(source) = state.source.as_mut() else {
            state.ended = true;
            break;
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            source.as_mut().poll_next(&mut source_cx)
        }))
        .unwrap_or_else(|panic| Poll::Ready(Some(Err(source_panicked(&*panic)))));
        match outcome {
            Poll::Ready(Some(item)) => {
                let last = is_terminal(&item);
                let readers = state.live;
                state.buffer.push_back((item, readers));
                pulled = true;
                if last {
                    state.ended = true;
                    *finished_source = state.source.take();
                }
            }
            Poll::Ready(None) => {
                state.ended = true;
                *finished_source = state.source.take();
            }
            Poll::Pending => return (pulled, true),
        }
    }
    (pulled, false)
}

/// The error a consumer gets when the source panics: every consumer gets it, and the stream ends.
fn source_panicked(panic: &(dyn std::any::Any + Send)) -> Error {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    Error::new(
        ErrorCode::Internal,
        format!("the source panicked: {detail}"),
    )
    .with_op("fan_out")
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

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(item) = this.taken.pop_front() {
            return Poll::Ready(Some(item));
        }
        if this.terminated {
            return Poll::Ready(None);
        }
        let i = this.index;
        let inner = &*this.inner;
        let mut state = lock(&inner.state);
        // A source that has ended is dropped after the lock is released: its destructor is user
        // code.
        let mut finished_source = None;
        let result = loop {
            let state = &mut *state;
            let cursor = state.cursors[i].expect("a live consumer has a cursor");
            let end = state.base + state.buffer.len() as u64;
            if cursor < end {
                // Take every item available under this one lock, in order.
                state.cursors[i] = Some(end);
                let mut offset = usize::try_from(cursor - state.base).expect("within capacity");
                let mut made_room = false;
                for _ in cursor..end {
                    let entry = &mut state.buffer[offset];
                    if entry.1 == 1 {
                        // The last reader takes it (it is the oldest): room for one more.
                        debug_assert_eq!(offset, 0);
                        state.base += 1;
                        let (item, _) = state.buffer.pop_front().expect("cursor < end");
                        this.taken.push_back(item);
                        made_room = true;
                    } else {
                        entry.1 -= 1;
                        this.taken.push_back(entry.0.clone());
                        offset += 1;
                    }
                }
                if made_room {
                    inner.waiters.drain_into(&mut this.to_wake);
                }
                break Poll::Ready(this.taken.pop_front());
            }
            if state.ended {
                this.terminated = true;
                break Poll::Ready(None);
            }
            if state.buffer.len() >= state.capacity {
                // Full: wait for the slowest consumer to read.
                inner.waiters.register(i, cx.waker());
                this.registered = true;
                break Poll::Pending;
            }
            if state.source.is_none() {
                state.ended = true;
                continue;
            }
            // A wake that comes while the source is polled, before anyone registers, is kept.
            inner.waiters.notified.store(false, Ordering::SeqCst);
            let (pulled, pending) = pull(state, &inner.source_waker, &mut finished_source);
            if pulled || state.ended {
                inner.waiters.drain_into(&mut this.to_wake);
            }
            if pending && !pulled {
                inner.waiters.register_after_poll(i, cx.waker());
                this.registered = true;
                break Poll::Pending;
            }
        };
        drop(state);
        drop(finished_source);
        if this.registered && result.is_ready() {
            // Ready now: no stale registration to wake this task for nothing.
            inner.waiters.forget(i);
            this.registered = false;
        }
        this.wake_collected();
        result
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.terminated {
            return (0, Some(0));
        }
        let state = lock(&self.inner.state);
        let buffered = state.cursors[self.index]
            .map_or(0, |c| {
                usize::try_from(state.base + state.buffer.len() as u64 - c).unwrap_or(usize::MAX)
            })
            .saturating_add(self.taken.len());
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
        let cursor = state.cursors[i]
            .take()
            .expect("a live consumer has a cursor");
        state.live -= 1;
        let mut dropped_source = None;
        let mut dropped_items = VecDeque::new();
        if state.live == 0 {
            // The last consumer: drop the source (after unlocking: its destructor is user code).
            dropped_source = state.source.take();
            dropped_items = std::mem::take(&mut state.buffer);
        } else {
            // This consumer no longer reads the items it had yet to read.
            let base = state.base;
            let from = usize::try_from(cursor.saturating_sub(base)).unwrap_or(usize::MAX);
            for entry in state.buffer.iter_mut().skip(from) {
                entry.1 -= 1;
            }
            while state.buffer.front().is_some_and(|entry| entry.1 == 0) {
                let popped = state.buffer.pop_front();
                state.base += 1;
                dropped_items.extend(popped);
            }
            // Room may have been made, and if this consumer was the one the source would have
            // woken, someone else must poll it now: wake everyone waiting.
            inner.waiters.drain_into(&mut self.to_wake);
        }
        drop(state);
        drop(dropped_source);
        drop(dropped_items);
        self.wake_collected();
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
