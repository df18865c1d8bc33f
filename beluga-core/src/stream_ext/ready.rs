//! [`ReadySet`]: many streams polled from one task, only the ones that may have an item: the
//! ones woken since they last returned `Pending`, and the ones whose last poll returned an item.
//! `merge` and `parallel` are built on it.
//!
//! Each input is polled with a waker of its own, which records the input's number in a queue
//! shared with the set (once: a flag says the number is queued) and wakes the task polling the
//! set. Two ways to poll, both round-robin:
//!
//! - While every input is ready (none has returned `Pending` and none has been removed), they are
//!   polled in number order, each after the one that returned an item last: the fast path, as
//!   cheap as polling a `Vec` of streams round-robin, and inlined into the caller's loop.
//! - Once an input returns `Pending`, polling goes in rounds: a round is the inputs woken since
//!   the last one, in the order they were woken, then the inputs still ready from the last one,
//!   in their order. An input that returns an item stays in the round; one that returns `Pending` leaves
//!   it until its waker brings it back. So a wake on one input of thousands polls that input
//!   alone, and the cost of a poll does not grow with the number of inputs. When every input
//!   returns an item in a round, polling goes back to the first way.
//!
//! The inputs are stored in place, pinned where they are put: each with its waker, in chunks that
//! are never moved or grown past their capacity (the first holds the inputs the set is made with,
//! and has room for more; each further one is twice the size of the one before), and an input
//! is dropped where it lies. What the rounds read of each input (its flags) is kept apart, in a
//! plain `Vec`. So polling an input is an address computation, not a load through a
//! box of its own, and inputs that are not `Unpin` need no box. The first way of polling covers
//! the first chunk: a set that has had to grow past it polls in rounds.
//!
//! Fair: each input is polled once per round (or per turn of the first way), and the woken
//! inputs start every round, so an input woken while others are always ready is polled within
//! one round of its wake. One call polls at most as many inputs as the set holds (plus one) before it yields: it
//! wakes its task and returns `Pending`, so inputs that keep waking themselves cannot hold the
//! task.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use futures_core::Stream;

// The shared queue's primitives, swapped for loom's when model checking (`--cfg beluga_loom`).
#[cfg(beluga_loom)]
use loom::sync::atomic::AtomicBool;
#[cfg(beluga_loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(beluga_loom))]
use std::sync::atomic::AtomicBool;
#[cfg(not(beluga_loom))]
use std::sync::{Mutex, MutexGuard};

/// Streams polled from one task, each only when it may have an item; see the module docs.
///
/// Inputs are numbered by [`push`](ReadySet::push) from 0 (a removed input's number is given to
/// the next one pushed).
#[allow(
    clippy::struct_excessive_bools,
    reason = "four independent flags of the polling state, read on different paths"
)]
pub(crate) struct ReadySet<S> {
    /// The inputs and their wakers, pinned; `inputs` and `slots` have one entry per number.
    inputs: Inputs<S>,
    slots: Vec<Slot>,
    /// The numbers of the removed inputs' slots, to reuse.
    free: Vec<usize>,
    /// Whether every slot holds an input that is ready, polled in number order from `next`,
    /// and the set has not grown past its first chunk of inputs (else `round` says what to poll,
    /// and `next` is `usize::MAX`, so that the fast path finds no input there without reading
    /// `all`).
    all: bool,
    next: usize,
    /// Whether the fast path polled the input at `next`, which returned `Pending` (for the slow
    /// path, which the caller calls next).
    pending: bool,
    /// This round's inputs, in polling order. Those before `pos` have been polled; those among
    /// them whose slot's `in_round` is clear (they returned `Pending`, or were removed) leave
    /// when the round ends, and `stale` says whether there are any.
    round: Vec<usize>,
    pos: usize,
    stale: bool,
    /// Whether woken inputs joined this round (then it does not tell that every input is ready
    /// without being woken).
    joined: bool,
    live: usize,
    shared: Arc<Shared>,
    /// The woken inputs taken from the shared queue, swapped with it so that neither allocates
    /// once both have grown.
    woken: Vec<usize>,
}

/// The inputs, numbered in order through the chunks: `first`, then `more[k]`, of
/// `first.capacity() << k` entries each. No chunk is ever grown past its capacity, and no entry
/// is moved out of its chunk: the inputs are pinned there (see [`Input::project`]).
struct Inputs<S> {
    first: Vec<Input<S>>,
    /// Empty until `first` is full.
    more: Vec<Vec<Input<S>>>,
}

/// An input, beside the waker it is polled with (one address computation finds both).
struct Input<S> {
    /// `None` once removed; pinned in place (dropped there, never moved out, unless `S: Unpin`).
    stream: Option<S>,
    /// Wakes the slot's `node`.
    waker: Waker,
}

/// What the rounds read of an input, in a plain `Vec` (it is not pinned).
struct Slot {
    node: Arc<Node>,
    /// Whether the input is there (its `stream` is `Some`).
    filled: bool,
    /// Whether the slot's number is in `round` (a removed input's number may be, until the round
    /// reaches it); always set while `all` is.
    in_round: bool,
}

/// What an input's waker shares with the set.
struct Shared {
    /// Set while `queue.woken` is not empty; read without the lock, to tell at a round's end
    /// whether to take the lock at all.
    any: AtomicBool,
    queue: Mutex<Queue>,
}

struct Queue {
    /// Inputs woken since the set last took them, in the order they were woken.
    woken: Vec<usize>,
    /// The waker of the task polling the set, registered when a poll returns `Pending` and
    /// taken by the first wake after that.
    parent: Option<Waker>,
}

/// An input's waker.
struct Node {
    shared: Arc<Shared>,
    index: usize,
    /// Whether `index` is in the shared queue (so that it is queued once).
    queued: AtomicBool,
}

impl Wake for Node {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let parent = {
            let mut queue = lock(&self.shared.queue);
            queue.woken.push(self.index);
            self.shared.any.store(true, Ordering::Release);
            queue.parent.take()
        };
        // Woken once the lock is released: a waker's `wake` is not ours to run under it.
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

impl<S> Inputs<S> {
    /// The chunk and place in it of input `index` (past `first`).
    fn locate(&self, index: usize) -> (usize, usize) {
        let base = self.first.capacity();
        debug_assert!(index >= base && base > 0);
        let chunk = (index / base).ilog2() as usize;
        (chunk, index - (base << chunk))
    }

    #[inline]
    fn get_mut(&mut self, index: usize) -> Option<&mut Input<S>> {
        if index < self.first.len() {
            return self.first.get_mut(index);
        }
        if self.more.is_empty() {
            return None;
        }
        self.get_more_mut(index)
    }

    /// [`get_mut`](Inputs::get_mut) past `first` (kept out of the callers' loops).
    #[cold]
    #[inline(never)]
    fn get_more_mut(&mut self, index: usize) -> Option<&mut Input<S>> {
        let (chunk, at) = self.locate(index);
        self.more.get_mut(chunk)?.get_mut(at)
    }

    /// Adds `input` after the last one, in a new chunk if the last is full (never moving one).
    #[inline]
    fn push(&mut self, input: Input<S>) {
        if self.first.len() < self.first.capacity() {
            debug_assert!(self.more.is_empty());
            self.first.push(input);
        } else {
            self.push_slow(input);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, input: Input<S>) {
        if self.first.is_empty() {
            // Nothing is pinned in an empty chunk: it may be reallocated.
            self.first.reserve(4);
            self.first.push(input);
            return;
        }
        let size = self.first.capacity() << self.more.len().saturating_sub(1);
        match self.more.last_mut() {
            Some(last) if last.len() < size => last.push(input),
            _ => {
                let mut chunk = Vec::with_capacity(self.first.capacity() << self.more.len());
                chunk.push(input);
                self.more.push(chunk);
            }
        }
    }

    /// Whether the next [`push`](Inputs::push) goes past `first`.
    fn push_grows(&self) -> bool {
        self.first.len() == self.first.capacity() && !self.first.is_empty()
    }

    /// Drops every input where it lies (keeping `first`'s room).
    fn clear(&mut self) {
        self.first.clear();
        self.more.clear();
    }

    fn iter(&self) -> impl Iterator<Item = &Input<S>> {
        self.first.iter().chain(self.more.iter().flatten())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Input<S>> {
        self.first.iter_mut().chain(self.more.iter_mut().flatten())
    }
}

impl<S> Input<S> {
    /// The input, pinned, and the waker to poll it with.
    fn project(&mut self) -> Option<(Pin<&mut S>, &Waker)> {
        let stream = self.stream.as_mut()?;
        // SAFETY: an entry is never moved once made: its chunk is never grown past its capacity
        // (`Inputs::push` starts a new chunk instead) nor reallocated while it holds an entry,
        // and no entry is moved out of it (`Inputs::clear` and the chunks' drop drop them in
        // place).
        // The input itself is only ever dropped in place (`ReadySet::remove` assigns `None`),
        // or moved out when `S: Unpin` (`ReadySet::into_streams`). So it stays at this address
        // until it is dropped, as `Pin` requires.
        let stream = unsafe { Pin::new_unchecked(stream) };
        Some((stream, &self.waker))
    }

    /// [`project`](Input::project) for an entry known to hold its input, without checking.
    ///
    /// # Safety
    ///
    /// `stream` is `Some`.
    #[inline]
    unsafe fn project_filled(&mut self) -> (Pin<&mut S>, &Waker) {
        debug_assert!(
            self.stream.is_some(),
            "an empty slot in the first way of polling"
        );
        // SAFETY: the caller guarantees `stream` is `Some`.
        let stream = unsafe { self.stream.as_mut().unwrap_unchecked() };
        // SAFETY: as in `project`: the input never moves until it is dropped.
        let stream = unsafe { Pin::new_unchecked(stream) };
        (stream, &self.waker)
    }
}

impl Shared {
    /// Swaps the woken inputs out of `queue` (this set's, locked) into `out` (empty).
    fn take_woken(&self, queue: &mut Queue, out: &mut Vec<usize>) {
        debug_assert!(out.is_empty());
        std::mem::swap(&mut queue.woken, out);
        self.any.store(false, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The only user code run under the lock is a waker's `clone`, before anything changes, so a
    // poisoned lock still guards a consistent queue.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S> ReadySet<S> {
    /// An empty set with room for `capacity` inputs.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ReadySet {
            inputs: Inputs {
                first: Vec::with_capacity(capacity),
                more: Vec::new(),
            },
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            all: true,
            next: 0,
            pending: false,
            round: Vec::with_capacity(capacity),
            pos: 0,
            stale: false,
            joined: false,
            live: 0,
            shared: Arc::new(Shared {
                any: AtomicBool::new(false),
                queue: Mutex::new(Queue {
                    woken: Vec::new(),
                    parent: None,
                }),
            }),
            woken: Vec::new(),
        }
    }

    /// Adds `stream`, to be polled in the current round; returns its number. It is pinned where
    /// it is put, until it is removed.
    pub(crate) fn push(&mut self, stream: S) -> usize {
        self.live += 1;
        let index = if let Some(index) = self.free.pop() {
            // The slot's waker is reused: a wake from the removed input's leftover wakers only
            // polls this one once more.
            self.inputs.get_mut(index).expect("a free slot").stream = Some(stream);
            index
        } else {
            if self.all && self.inputs.push_grows() {
                // The first way of polling covers the first chunk only.
                self.start_rounds(false);
            }
            let index = self.slots.len();
            let node = Arc::new(Node {
                shared: Arc::clone(&self.shared),
                index,
                queued: AtomicBool::new(false),
            });
            self.inputs.push(Input {
                stream: Some(stream),
                waker: Waker::from(Arc::clone(&node)),
            });
            self.slots.push(Slot {
                node,
                filled: false,
                in_round: false,
            });
            index
        };
        let slot = &mut self.slots[index];
        slot.filled = true;
        if !slot.in_round {
            slot.in_round = true;
            // (While `all` is set, every slot is in use, so this one is new: polled in its turn.)
            if !self.all {
                self.round.push(index);
            }
        }
        index
    }

    /// Removes input `index`, dropping it where it lies; returns whether there was one.
    pub(crate) fn remove(&mut self, index: usize) -> bool {
        if self.all {
            self.start_rounds(false);
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return false;
        };
        if !slot.filled {
            return false;
        }
        slot.filled = false;
        // Dropped in place: it is pinned there.
        self.inputs.get_mut(index).expect("a filled slot").stream = None;
        self.live -= 1;
        self.free.push(index);
        true
    }

    /// Drops every input, in this call.
    pub(crate) fn clear(&mut self) {
        // Out of the first way before any input is dropped (an input's drop may panic).
        self.all = false;
        self.next = usize::MAX;
        // The wakers stay valid: a late wake queues a number no slot has, which is skipped.
        self.slots.clear();
        self.inputs.clear();
        self.free.clear();
        self.round.clear();
        self.pos = 0;
        self.stale = false;
        self.live = 0;
    }

    /// Leaves the first way of polling for rounds: the round is every input, from `next` on.
    /// `pending`: the input at `next` was just polled, and returned `Pending`.
    #[cold]
    fn start_rounds(&mut self, pending: bool) {
        debug_assert!(self.all);
        self.all = false;
        let n = self.slots.len();
        let next = self.next.min(n);
        self.next = usize::MAX;
        self.round.clear();
        self.round.extend((next..n).chain(0..next));
        self.pos = 0;
        self.stale = false;
        if pending {
            self.slots[next].in_round = false;
            self.pos = 1;
            self.stale = true;
        }
    }

    /// How many inputs there are.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The inputs, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &S> {
        self.inputs.iter().filter_map(|input| input.stream.as_ref())
    }

    /// The inputs, pinned, in number order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = Pin<&mut S>> {
        self.inputs
            .iter_mut()
            .filter_map(|input| input.project().map(|(stream, _)| stream))
    }

    /// The inputs, in number order (moved out: for `Unpin` inputs only).
    pub(crate) fn into_streams(self) -> impl Iterator<Item = S>
    where
        S: Unpin,
    {
        let mut this = self;
        let first = std::mem::take(&mut this.inputs.first);
        let more = std::mem::take(&mut this.inputs.more);
        first
            .into_iter()
            .chain(more.into_iter().flatten())
            .filter_map(|input| input.stream)
    }
}

// The inputs are pinned in the chunks' heap memory, which does not move with the set.
impl<S> Unpin for ReadySet<S> {}

impl<S> Drop for ReadySet<S> {
    fn drop(&mut self) {
        // An input's waker may outlive the set (kept by whatever the input waited on): it must
        // not keep the polling task's waker alive with it.
        let parent = lock(&self.shared.queue).parent.take();
        drop(parent);
    }
}

impl<S: Stream> ReadySet<S> {
    /// Polls the inputs that may have an item, in round order, until one returns `Ready`: its
    /// number and what it returned (its end too: the caller decides whether to remove it).
    /// `Pending` once none has anything, with `cx`'s waker registered to be woken when one is
    /// woken (or, after polling as many inputs as the set holds, woken at once to yield).
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<(usize, Option<S::Item>)> {
        match self.poll_fast() {
            Some(ready) => Poll::Ready(ready),
            None => self.poll_slow(cx),
        }
    }

    /// [`poll_next`](Self::poll_next)'s fast path, small enough to inline into the caller's loop:
    /// while every input is ready, polls the next one in number order and returns what it had.
    /// `None` when the caller must go on with [`poll_slow`](Self::poll_slow).
    #[inline]
    pub(crate) fn poll_fast(&mut self) -> Option<(usize, Option<S::Item>)> {
        let index = self.next;
        let n = self.inputs.first.len();
        let input = self.inputs.first.get_mut(index)?;
        // SAFETY: `next` is an input's number only while `all` is set (else it is `usize::MAX`;
        // see `start_rounds` and `clear`), and while `all` is set every entry of `first` holds
        // its input: `all` is set only when the round found as many inputs as slots, with no
        // chunk past `first` (`next_round`); `push` fills an entry, and leaves the first way
        // before it grows past `first`; `remove` leaves the first way before emptying one.
        // (`live + free.len()` is the number of slots, so no slot is free then either.)
        // Checking would cost instructions per item on the fast path.
        let (stream, waker) = unsafe { input.project_filled() };
        match stream.poll_next(&mut TaskContext::from_waker(waker)) {
            Poll::Ready(item) => {
                let next = index + 1;
                self.next = if next == n { 0 } else { next };
                Some((index, item))
            }
            Poll::Pending => {
                self.pending = true;
                None
            }
        }
    }

    /// The rest of [`poll_next`](Self::poll_next): the rounds, polling at most as many inputs as
    /// there are (plus one).
    #[inline(never)]
    pub(crate) fn poll_slow(&mut self, cx: &mut TaskContext<'_>) -> Poll<(usize, Option<S::Item>)> {
        let mut budget = self.slots.len() + 1;
        let pending = std::mem::take(&mut self.pending);
        if self.all {
            self.start_rounds(pending);
            budget -= usize::from(pending);
        }
        loop {
            while let Some(&index) = self.round.get(self.pos) {
                let Some(slot) = self.slots.get_mut(index) else {
                    // Cleared meanwhile: nothing of the round is left in `slots`.
                    self.pos += 1;
                    self.stale = true;
                    continue;
                };
                if !slot.filled {
                    slot.in_round = false;
                    self.pos += 1;
                    self.stale = true;
                    continue;
                }
                if budget == 0 {
                    // Enough for one call: let the task run something else, then go on here.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                budget -= 1;
                self.pos += 1;
                let input = self.inputs.get_mut(index).expect("an input for every slot");
                let (stream, waker) = input.project().expect("a filled slot's input");
                let polled = stream.poll_next(&mut TaskContext::from_waker(waker));
                if let Poll::Ready(item) = polled {
                    return Poll::Ready((index, item));
                }
                self.slots[index].in_round = false;
                self.stale = true;
            }
            self.next_round();
            if budget == 0 && !self.round.is_empty() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.all {
                if let Some(ready) = self.poll_fast() {
                    return Poll::Ready(ready);
                }
                let pending = std::mem::take(&mut self.pending);
                self.start_rounds(pending);
                budget = budget.saturating_sub(1);
            }
            if self.round.is_empty() {
                if self.register(cx.waker()) {
                    return Poll::Pending;
                }
                // Only removed inputs were woken: counted, so that wakes of removed inputs
                // from another thread cannot keep this call going.
                budget = budget.saturating_sub(1);
            }
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Starts the next round: the inputs woken since the last one, in the order they were woken,
    /// then the inputs of this one still in it.
    fn next_round(&mut self) {
        if self.stale {
            let slots = &self.slots;
            self.round
                .retain(|&index| slots.get(index).is_some_and(|slot| slot.in_round));
            self.stale = false;
        }
        self.pos = 0;
        // Every input returned an item in the round that ends, and none joined it woken: back to
        // the first way. (Not when woken inputs complete the round: an input that is woken for
        // each item would switch ways at every item.)
        let all_ready = !self.joined
            && self.inputs.more.is_empty()
            && self.round.len() == self.slots.len()
            && self.live == self.slots.len()
            && self.live > 0;
        self.joined = false;
        if self.shared.any.load(Ordering::Acquire) {
            let mut queue = lock(&self.shared.queue);
            self.shared.take_woken(&mut queue, &mut self.woken);
            drop(queue);
            self.add_woken();
        }
        if all_ready {
            self.all = true;
            self.next = self.round[0];
        }
    }

    /// Adds the inputs in `woken`, taken from the shared queue, to the round.
    fn add_woken(&mut self) {
        debug_assert_eq!(self.pos, 0);
        let slots = &mut self.slots;
        self.woken.retain(|&index| {
            let Some(slot) = slots.get_mut(index) else {
                return false;
            };
            // Cleared before the input is polled: a wake from now on queues it again.
            slot.node.queued.store(false, Ordering::Release);
            let join = slot.filled && !slot.in_round;
            slot.in_round |= join;
            join
        });
        if !self.woken.is_empty() {
            self.joined = true;
            // The woken inputs first: one that is rarely ready gets its item out within a round
            // of the moment it was woken, however many inputs are always ready.
            self.woken.extend_from_slice(&self.round);
            std::mem::swap(&mut self.woken, &mut self.round);
        }
        self.woken.clear();
    }

    /// Registers `waker` to be woken when an input is, unless some input was woken meanwhile:
    /// then takes those into the round instead. Returns whether it registered.
    #[cold]
    fn register(&mut self, waker: &Waker) -> bool {
        let mut queue = lock(&self.shared.queue);
        if !queue.woken.is_empty() {
            self.shared.take_woken(&mut queue, &mut self.woken);
            drop(queue);
            self.add_woken();
            return false;
        }
        let replaced = match &queue.parent {
            Some(parent) if parent.will_wake(waker) => None,
            _ => queue.parent.replace(waker.clone()),
        };
        drop(queue);
        // Dropped once the lock is released: a waker's drop is not ours to run under it.
        drop(replaced);
        true
    }
}

#[cfg(all(test, beluga_loom))]
mod ready_loom;
