//! The inline form of [`#[stream_producer]`](crate::stream_producer): [`produce`] runs an async
//! closure that is handed an [`Emitter`], on the same producer stream the attribute expands to.
//!
//! How one item travels: the first poll of `emitter.emit(x)` sends `x`: it puts it in the
//! producer's slot (or, when the slot still holds an earlier value, at the back of the frame's
//! queue) and returns `Pending`. The body future returns `Pending` too, and the producer takes
//! the value out of the slot and hands it to the consumer. The emit future is ready once
//! everything sent so far has been taken.
//!
//! The frame is a local of the body future, shared by the [`Drive`] that polls the user's body
//! and by the emitter. It counts on the producer's contract: whenever the body future returns
//! `Pending`, the producer takes what the slot holds before it polls the body again (and ends
//! the stream when that is a `done` event). So the frame knows at every moment whether the slot
//! is full without looking into it.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::FusedStream;
use pin_project_lite::pin_project;

use crate::__private::{Anchor, Producer, YieldHandle, Yielder};
use crate::context::Context;
use crate::error::Error;
use crate::event::{EventResult, IntoEvent, Yielded};

/// The slot is empty: the next value goes into it.
const EMPTY: u8 = 0;
/// The slot holds a value the producer has not taken yet; the queue is empty.
const FULL: u8 = 1;
/// The slot holds a value and the queue holds more, sent after it.
const QUEUED: u8 = 2;

/// Runs `body` as an event stream: the inline form of
/// [`#[stream_producer]`](crate::stream_producer), for a stream that needs no named function.
///
/// `body` is an async closure handed an [`Emitter`]: `e.emit(x).await` sends
/// [`Event::data`](crate::Event::data)`(x)`, and `e.emit(event).await` sends an
/// [`Event<T>`](crate::Event) as it is (see [`IntoEvent`]). The semantics are the attribute's:
///
/// * `?` works on any error that converts into [`Error`]; returning `Err(e)` ends the stream
///   with `Err(e)`; returning `Ok(())` ends it with [`Event::done`](crate::Event::done).
/// * A final value is emitted: `e.emit(Event::done_with(value)).await` ends the stream with
///   that `done` event, as an emitted `done` does in the attribute form, and the body is dropped
///   there without running further (the same for an emitted `Event::done()`).
/// * Exactly one terminal item (`done` or `Err`), then `None` forever.
/// * Cancellation: `ctx` is checked before the body resumes, every time (one atomic load; the
///   clock every 32 items when the context has a deadline), and while the body is parked in an
///   `.await`. When `ctx` is cancelled or its deadline passes, the next poll yields `Err` with
///   `cancelled` / `deadline_exceeded`, drops the body and ends, even if the body was parked
///   forever.
/// * Dropping the stream drops the body at once, inside `drop`.
///
/// Nothing is allocated per item, and nothing per stream beyond the body itself. The stream is
/// `Send` when the body is (the body's future and what the closure captures). It owns a clone of
/// `ctx` and borrows nothing but what the closure does.
///
/// Unlike a function-like macro (async-stream's `stream!`), the body is ordinary Rust that
/// rustfmt formats and rust-analyzer checks. The closure's parameter needs no type annotation:
/// the bound names it.
///
/// # The emitter stays in the body
///
/// The bound is higher-ranked (`for<'e>`): the body must work for an emitter of any lifetime,
/// so it cannot store the emitter anywhere that outlives its own future (an outer variable, a
/// spawned task, a thread, a `'static` channel): each is a compile error. The emitter is
/// invariant in `T`: a stream of `&'static str` does not accept a shorter-lived `&str`.
///
/// # What an emit future does
///
/// Its first poll sends the value; it is ready once the consumer has taken it, so the body runs
/// no further ahead than one item. A value, once sent, reaches the consumer in order whatever
/// happens to its future afterwards: dropped by `select!` after its first poll, held in a
/// `FuturesUnordered` or a `join!`, or leaked. An emit future dropped before its first poll
/// sends nothing, as a future does nothing until polled. [`Emitter::emit`] takes `&mut self`, so
/// two emit futures never exist at once.
///
/// While an earlier value still waits to be taken (its future was dropped before it completed),
/// the next values wait in a queue of the body's frame, and the body is not resumed until the
/// queue is empty; that queue is the only allocation, and an ordinary `e.emit(x).await` never
/// needs it. If the body ends while values are still waiting, they all come out before its
/// terminal item.
///
/// Awaited from the body (directly, or in `select!`, `join!` or a combinator that polls it with
/// the body's waker), an emit future never wakes a task. Polled under another waker (a
/// `FuturesUnordered` of the body), it wakes that waker, so that whoever polls it polls it again
/// after the consumer took the value. Blocking on an emit future inside the body (an executor's
/// `block_on`) never returns: the value is taken only after the body returns to the stream.
///
/// # Example
///
/// ```
/// use beluga_core::{Context, Error, ErrorCode, Event, EventStreamExt, stream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// let words = vec!["hello", "world"];
/// let answer = stream::produce(&ctx, async move |mut e| {
///     for word in words {
///         e.emit(word.to_uppercase()).await;
///     }
///     e.emit(Event::tool_call("lookup".to_owned())).await; // an event, as it is
///     let hits: usize = "2".parse().map_err(|_| Error::new(ErrorCode::ToolFailed, "bad count"))?;
///     e.emit(Event::done_with(format!("{hits} hits"))).await; // ends the stream
///     Ok(())
/// });
/// let events = answer.collect_events().await.events;
/// assert_eq!(
///     events,
///     [
///         Event::data("HELLO".to_owned()),
///         Event::data("WORLD".to_owned()),
///         Event::tool_call("lookup".to_owned()),
///         Event::done_with("2 hits".to_owned()),
///     ]
/// );
/// # }
/// ```
pub fn produce<T, F>(ctx: &Context, body: F) -> impl FusedStream<Item = EventResult<T>> + use<T, F>
where
    F: for<'e> AsyncFnOnce(Emitter<'e, T>) -> Result<(), Error>,
{
    let start = move |handle: YieldHandle<T>| async move {
        // The emitter's lifetime comes from the higher-ranked bound, which keeps it in the
        // body's future; the frame that owns the yielder is a local of this future, declared
        // before the body (dropped after it), and never leaves it. A zero-sized box allocates
        // nothing.
        let frame = Frame::new(handle.bind(Box::leak(Box::new(Anchor))));
        let body = body(Emitter::new(&frame));
        Drive {
            body,
            frame: &frame,
            result: None,
        }
        .await
    };
    // SAFETY: the yielder bound from the handle lives in `frame`, a local of the body future,
    // used only by that future (`Drive` and the `Emitter` inside `body`): neither leaves it,
    // since the body's bound holds for every emitter lifetime (it cannot store the emitter
    // anywhere that outlives its future), and `Drive` borrows the local.
    unsafe { Producer::new(ctx.clone(), start) }
}

/// What the [`Drive`] and the [`Emitter`] of one body share: the producer's yielder, whether
/// the slot is full, the values queued after it, and the address of the waker the body is
/// polled with.
struct Frame<T> {
    yielder: UnsafeCell<Yielder<'static, T>>,
    state: Cell<u8>,
    queue: Cell<VecDeque<Yielded<T>>>,
    waker: Cell<usize>,
}

// SAFETY: a frame is reached only through the `Drive` that owns the body (which touches it
// before and after polling the body, never while the body runs) and through the body's
// `Emitter` and its emit futures (which are not `Sync`, and touch it only with `&mut` access to
// the emitter). So at most one of them uses it at a time; uses on different threads are ordered
// by whatever moved the body or the emitter between them.
unsafe impl<T: Send> Sync for Frame<T> {}

impl<T> Frame<T> {
    fn new(yielder: Yielder<'static, T>) -> Self {
        Frame {
            yielder: UnsafeCell::new(yielder),
            state: Cell::new(EMPTY),
            queue: Cell::new(VecDeque::new()),
            waker: Cell::new(0),
        }
    }

    /// Sends `value`: into the slot if it is empty, else at the back of the queue.
    #[inline]
    fn send(&self, value: Yielded<T>) {
        if self.state.get() == EMPTY {
            self.put(value);
            self.state.set(FULL);
        } else {
            self.enqueue(value);
        }
    }

    #[inline]
    fn put(&self, value: Yielded<T>) {
        // SAFETY: no other reference to the yielder exists: it is only reached here, for the
        // duration of this call, by one user of the frame at a time (see the `Sync` impl).
        let yielder = unsafe { &mut *self.yielder.get() };
        // The returned future only stands for the wait; the frame's state does that here.
        drop(yielder.value(value));
    }

    #[cold]
    #[inline(never)]
    fn enqueue(&self, value: Yielded<T>) {
        let mut queue = self.queue.take();
        queue.push_back(value);
        self.queue.set(queue);
        self.state.set(QUEUED);
    }

    /// The producer has taken the slot's value: the next queued value, if any, takes its place.
    /// True when it did (the body must not run before the slot is empty again).
    #[inline]
    fn taken(&self) -> bool {
        if self.state.get() == QUEUED {
            self.refill()
        } else {
            self.state.set(EMPTY);
            false
        }
    }

    #[cold]
    #[inline(never)]
    fn refill(&self) -> bool {
        let mut queue = self.queue.take();
        if let Some(next) = queue.pop_front() {
            self.put(next);
        }
        self.state.set(if queue.is_empty() { FULL } else { QUEUED });
        self.queue.set(queue);
        true
    }

    /// Wakes `cx`'s waker unless it is the one the body is polled with: the stream polls the
    /// body again after the consumer took the value without being woken, but a combinator with
    /// its own waker (a `FuturesUnordered`) polls the emit future again only once woken.
    #[inline]
    fn wake_if_foreign(&self, cx: &TaskContext<'_>) {
        if waker_address(cx.waker()) != self.waker.get() {
            cx.waker().wake_by_ref();
        }
    }
}

/// The address of a waker, which identifies it among the live ones; it is only compared, never
/// turned back into a reference.
#[inline]
fn waker_address(waker: &Waker) -> usize {
    std::ptr::from_ref(waker).addr()
}

/// The body's handle to its stream, handed to the closure of [`produce`]: `e.emit(x).await`
/// sends an item.
///
/// It cannot leave the body (see [`produce`]), it is invariant in `T`, and it is `Send` when
/// `T` is, so a stream whose body is `Send` is `Send`.
pub struct Emitter<'e, T> {
    frame: &'e Frame<T>,
    // Invariant in `T`: an emitter of `&'static str` must never accept a `&'short str`.
    _invariant: PhantomData<fn(T) -> T>,
    // Not `Sync`: the frame is used through `&mut` access to its emitter only.
    _not_sync: PhantomData<Cell<()>>,
}

impl<'e, T> Emitter<'e, T> {
    fn new(frame: &'e Frame<T>) -> Self {
        Emitter {
            frame,
            _invariant: PhantomData,
            _not_sync: PhantomData,
        }
    }

    /// Sends `value`: a payload `T` as [`Event::data`](crate::Event::data), an
    /// [`Event<T>`](crate::Event) as it is (see [`IntoEvent`]). An emitted `done` event ends
    /// the stream.
    ///
    /// The value is sent at the future's first poll, and the future is ready once the consumer
    /// has taken it; see [`produce`] for what happens when the future is dropped or polled by
    /// another combinator.
    ///
    /// ```
    /// use beluga_core::{Context, Event, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let events = stream::produce(&Context::new(), async |mut e| {
    ///     e.emit(1).await;
    ///     e.emit(Event::tool_call(2)).await;
    ///     Ok(())
    /// });
    /// let events = events.collect_events().await.events;
    /// assert_eq!(events, [Event::data(1), Event::tool_call(2), Event::done()]);
    /// # }
    /// ```
    #[inline]
    pub fn emit(&mut self, value: impl IntoEvent<T>) -> Emit<'_, T> {
        Emit {
            frame: self.frame,
            value: Some(value.__into_yielded()),
            _emitter: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Emitter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter").finish_non_exhaustive()
    }
}

/// Future for the [`emit`](Emitter::emit) method: sends its value at the first poll, and is
/// ready once the consumer has taken it.
#[must_use = "an emit sends nothing unless polled"]
pub struct Emit<'a, T> {
    frame: &'a Frame<T>,
    // `Some` until the first poll sends it.
    value: Option<Yielded<T>>,
    // Stands for the emitter's exclusive borrow: one emit future at a time.
    _emitter: PhantomData<&'a mut ()>,
}

// The value is moved out, never pinned.
impl<T> Unpin for Emit<'_, T> {}

impl<T> Future for Emit<'_, T> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let frame = this.frame;
        match this.value.take() {
            Some(value) => frame.send(value),
            // This emitter sent last, so an empty slot means its value was taken.
            None if frame.state.get() == EMPTY => return Poll::Ready(()),
            None => {}
        }
        frame.wake_if_foreign(cx);
        Poll::Pending
    }
}

impl<T> fmt::Debug for Emit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit")
            .field("sent", &self.value.is_none())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Polls the user's body for the producer: records the waker it is polled with, moves
    /// queued values into the slot before the body runs again, and holds the body's result
    /// back until every value it sent has been taken.
    struct Drive<'f, T, B> {
        #[pin]
        body: B,
        frame: &'f Frame<T>,
        result: Option<Result<(), Error>>,
    }
}

impl<T, B> Future for Drive<'_, T, B>
where
    B: Future<Output = Result<(), Error>>,
{
    type Output = Result<Option<T>, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let frame = *this.frame;
        // Every `Pending` returned below let the producer take the slot's value.
        if frame.taken() {
            return Poll::Pending;
        }
        if let Some(result) = this.result.take() {
            return Poll::Ready(result.map(|()| None));
        }
        frame.waker.set(waker_address(cx.waker()));
        match this.body.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) if frame.state.get() == EMPTY => Poll::Ready(result.map(|()| None)),
            Poll::Ready(result) => {
                *this.result = Some(result);
                Poll::Pending
            }
        }
    }
}
