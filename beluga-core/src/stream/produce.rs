// Over 500 lines: the inline producer and its emitter are one unsafe-adjacent unit (the frame
// the emitter points at, the body future that owns it, and their safety arguments) kept together
// so that the whole argument can be read in one place; half of the file is documentation.
//! The inline form of [`#[stream_producer]`](crate::stream_producer): [`produce`] runs an async
//! closure that is handed an [`Emitter`], on the same producer stream the attribute expands to.
//!
//! How one item travels: `emitter.emit(x)` puts `x` in the producer's slot (or, when the slot
//! still holds an earlier value, at the back of the frame's queue) and returns an [`Emit`]
//! future, `Pending` until the value is taken. The body future returns `Pending` too, the
//! producer takes the value out of the slot and hands it to the consumer, and the next poll of
//! the body finds the slot empty and the emit future ready.
//!
//! The producer's body future is a [`Drive`]: it owns the user's closure, then the future the
//! closure returns, and a pinned [`Frame`] that the emitter points at. The frame counts on the
//! producer's contract: whenever the body future returns `Pending`, the producer takes what the
//! slot holds before it polls the body again (and ends the stream when that is a `done` event).
//! So the `Drive` knows, each time it is polled, that the slot is empty, and records it in the
//! frame's `open` word with the address of the waker it polls the body with; an emit sets the
//! word's low bit. One load of that word tells an emit future whether its value was taken and
//! whether it is polled with the body's own waker.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::{PhantomData, PhantomPinned};
use std::pin::{Pin, pin};
use std::ptr::NonNull;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::__private::{Anchor, Producer, YieldHandle, Yielder};
use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::event::{EventResult, IntoEvent, Yielded};

/// The low bit of `Frame::open`: the slot holds a value the producer has not taken yet.
const FULL: usize = 1;

// The frame's flags, off the steady state (where they are all clear).
/// With the slot full, the queue holds more values, sent after the slot's.
const QUEUED: u8 = 1;
/// The body has ended and its result waits in the `Drive` until every value is taken.
const HELD: u8 = 2;
/// The body has not been created yet.
const UNSTARTED: u8 = 4;

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
/// # Sending and waiting
///
/// `e.emit(x)` sends `x` when it is called; the returned future is ready once the consumer has
/// taken it. Awaiting it is where the body hands the value to the stream, so the body runs no
/// further ahead than one item. Whatever happens to the future, a value once sent reaches the
/// consumer exactly once and in order: the future may be dropped before or after its first
/// poll (by `select!`, also in a branch that is disabled or loses), held in a
/// `FuturesUnordered` or a `join!`, or polled again before the value is taken (it owns no
/// value, so leaking it changes nothing either). [`Emitter::emit`] takes `&mut self`, so two
/// emit futures never exist at once.
///
/// A value sent while an earlier one still waits to be taken (its future was not awaited to
/// the end) waits in a queue of the body's frame, and the body is not resumed until the queue
/// is empty. That queue is the only allocation, and `e.emit(x).await` never needs it. If the
/// body ends while values wait, they all come out before its terminal item.
///
/// Awaited from the body (directly, or in `select!`, `join!` or any combinator that polls it
/// with the body's waker), an emit future wakes no task. Polled under another waker (a
/// `FuturesUnordered` in the body), it wakes that waker, so that whoever polls it polls it
/// again on the body's next poll, after the consumer took the value. Blocking on an emit future
/// inside the body (an executor's `block_on`) never returns: the value is taken only after the
/// body returns to the stream.
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
    F: for<'e> AsyncFnOnce(Emitter<'e, T>) -> Result<(), Error> + for<'e> ProduceBody<'e, T>,
{
    let start = move |handle: YieldHandle<T>| {
        // The emitter's lifetime comes from the higher-ranked bound, which keeps it in the
        // body's future, not from an anchor; the yielder stays private to the frame. A
        // zero-sized box allocates nothing.
        Drive::new(handle.bind(Box::leak(Box::new(Anchor))), body)
    };
    // SAFETY: the yielder bound from the handle lives in the frame of the `Drive` that is the
    // body future, and is used only by it and by the emitter inside the closure's future, which
    // the `Drive` owns: the closure's bound holds for every emitter lifetime, so it cannot
    // store the emitter anywhere that outlives its own future.
    unsafe { Producer::new(ctx.clone(), start) }
}

/// A closure that [`produce`] can run: it takes an [`Emitter`] and returns a future of
/// `Result<(), Error>`, whose type is named here for each emitter lifetime.
///
/// Every such closure implements it, async closures included; it exists so that the stream can
/// hold the closure's future unboxed (stable Rust cannot name the future type of an
/// [`AsyncFnOnce`]). There is no need to implement or name it.
pub trait ProduceBody<'e, T> {
    /// The future the closure returns.
    type Future: Future<Output = Result<(), Error>>;

    /// Calls the closure.
    fn call(self, emitter: Emitter<'e, T>) -> Self::Future;
}

impl<'e, T, F, Fut> ProduceBody<'e, T> for F
where
    F: FnOnce(Emitter<'e, T>) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    type Future = Fut;

    #[inline]
    fn call(self, emitter: Emitter<'e, T>) -> Fut {
        self(emitter)
    }
}

pin_project! {
    /// What the [`Drive`] and the [`Emitter`] of one body share: the producer's yielder, whether
    /// the slot is empty (and the waker the body is polled with), the values queued after the
    /// slot's, and the flags of the slow paths. Pinned (`!Unpin`), since the emitter points at
    /// it.
    struct Frame<T> {
        yielder: UnsafeCell<Yielder<'static, T>>,
        // The address of the waker the body is polled with (set by the `Drive` before each
        // poll of the body, with the slot empty), and `FULL` once a value is put in the slot.
        // Waker addresses are aligned, so the low bit is free.
        open: Cell<usize>,
        flags: Cell<u8>,
        queue: Cell<VecDeque<Yielded<T>>>,
        #[pin]
        _pinned: PhantomPinned,
    }
}

impl<T> Frame<T> {
    /// Puts `value` in the empty slot; `open` is the frame's `open`, read by the caller.
    #[inline]
    fn put(&self, value: Yielded<T>, open: usize) {
        // SAFETY: no other reference to the yielder exists: it is only reached here, for the
        // duration of this call, and the frame is used by one of its users at a time (the
        // `Drive` before and after polling the body, the emitter while the body runs).
        let yielder = unsafe { &mut *self.yielder.get() };
        // The returned future only stands for the wait; `open` does that here.
        drop(yielder.value(value));
        // A full-width store of a value computed beforehand, not a read-modify-write of the
        // low byte, so that the emit future's load of `open` right after is forwarded from it.
        self.open.set(open | FULL);
    }

    /// Sends `value`: into the slot if it is empty, else at the back of the queue.
    #[inline]
    fn send<V: IntoEvent<T>>(&self, value: V) {
        let open = self.open.get();
        if open & FULL == 0 {
            self.put(value.__into_yielded(), open);
        } else {
            self.enqueue(value);
        }
    }

    #[cold]
    #[inline(never)]
    fn enqueue<V: IntoEvent<T>>(&self, value: V) {
        let mut queue = self.queue.take();
        queue.push_back(value.__into_yielded());
        self.queue.set(queue);
        self.flags.set(self.flags.get() | QUEUED);
    }

    /// After the producer took the slot's value: the next queued value takes its place.
    #[cold]
    #[inline(never)]
    fn refill(&self) {
        let mut queue = self.queue.take();
        if let Some(next) = queue.pop_front() {
            self.put(next, self.open.get());
        }
        if queue.is_empty() {
            self.flags.set(self.flags.get() & !QUEUED);
        }
        self.queue.set(queue);
    }
}

/// The address of a waker, which identifies it among the live ones; it is only compared, never
/// turned back into a reference. A multiple of the waker's alignment, so its low bit is clear.
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
    frame: NonNull<Frame<T>>,
    _body: PhantomData<&'e ()>,
    // Invariant in `T`: an emitter of `&'static str` must never accept a `&'short str`.
    _invariant: PhantomData<fn(T) -> T>,
}

// SAFETY: the emitter points at the frame of the `Drive` that owns the future holding it, and
// uses it only while that future is polled (see `Frame::put`); sending the emitter to another
// thread leaves it the frame's only user until it comes back. The frame holds `T` values, hence
// the bound. Not `Sync` (the pointer): the frame is only used through `&mut` access.
unsafe impl<T: Send> Send for Emitter<'_, T> {}

impl<T> Emitter<'_, T> {
    /// Sends `value` at once: a payload `T` as [`Event::data`](crate::Event::data), an
    /// [`Event<T>`](crate::Event) as it is (see [`IntoEvent`]). An emitted `done` event ends
    /// the stream.
    ///
    /// The returned future is ready once the consumer has taken the value: await it, which is
    /// where the body hands the value to the stream. See [`produce`] for what happens when the
    /// future is dropped or polled by another combinator.
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
        // SAFETY: the frame outlives the emitter (see the `Send` impl), and is only used
        // through shared references.
        unsafe { self.frame.as_ref() }.send(value);
        Emit {
            frame: self.frame,
            _emitter: PhantomData,
        }
    }

    /// Forwards every event of another event stream (the inline form of `emit_all!`), and
    /// returns the final value of its `done` event (`None` for a plain `done`, or when it ends
    /// without one). Its `done` is not forwarded: this stream ends with its own. Its terminal
    /// `Err` is returned, and `?` ends this stream with it. Cancellation is still checked
    /// before every item.
    ///
    /// ```
    /// use beluga_core::{Context, Event, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let events = stream::produce(&ctx, async |mut e| {
    ///     e.emit("hello").await;
    ///     let last = e.emit_all(stream::iter(["big", "wide"])).await?;
    ///     assert_eq!(last, None); // `stream::iter` ends with a plain `done`
    ///     e.emit("world").await;
    ///     Ok(())
    /// });
    /// let words = events.collect_events().await;
    /// assert_eq!(words.data().copied().collect::<Vec<_>>(), ["hello", "big", "wide", "world"]);
    /// # }
    /// ```
    pub async fn emit_all<S>(&mut self, stream: S) -> Result<Option<T>, Error>
    where
        S: Stream<Item = EventResult<T>>,
    {
        let mut stream = pin!(stream);
        while let Some(item) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            match item {
                Ok(event) if event.is_done() => return Ok(event.into_payload()),
                Ok(event) => self.emit(event).await,
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }
}

impl<T> fmt::Debug for Emitter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter").finish_non_exhaustive()
    }
}

/// Future for the [`emit`](Emitter::emit) method: ready once the consumer has taken the value
/// `emit` sent.
#[must_use = "the value is sent; await the future to hand it to the consumer"]
pub struct Emit<'a, T> {
    frame: NonNull<Frame<T>>,
    // Stands for the emitter's exclusive borrow: one emit future at a time.
    _emitter: PhantomData<&'a mut ()>,
}

// SAFETY: as for `Emitter`, whose exclusive borrow the emit future holds.
unsafe impl<T: Send> Send for Emit<'_, T> {}

impl<T> Future for Emit<'_, T> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        // SAFETY: the frame outlives the emitter this future borrows (see `Emitter`'s `Send`),
        // and is only used through shared references.
        let open = unsafe { self.frame.as_ref() }.open.get();
        if open & FULL == 0 {
            // The slot is empty again: every value sent so far, this one included, was taken.
            Poll::Ready(())
        } else if open == waker_address(cx.waker()) | FULL {
            // The body's own waker: the stream takes the value when the body returns
            // `Pending`, and polls the body again without a wake.
            Poll::Pending
        } else {
            wake(cx.waker())
        }
    }
}

/// A combinator with its own waker (a `FuturesUnordered` of the body) polls the emit future
/// again only once woken: wake it, so that it does after the consumer took the value.
#[cold]
#[inline(never)]
fn wake(waker: &Waker) -> Poll<()> {
    waker.wake_by_ref();
    Poll::Pending
}

impl<T> fmt::Debug for Emit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit").finish_non_exhaustive()
    }
}

pin_project! {
    /// The producer's body future: creates the closure's future on the first poll (once the
    /// frame is pinned), records the waker it is polled with, moves queued values into the slot
    /// before the body runs again, and holds the body's result back until every value it sent
    /// has been taken.
    struct Drive<T, F>
    where
        F: ProduceBody<'static, T>,
    {
        // Declared before the frame, so dropped before it: the emitter inside points at it.
        #[pin]
        body: Option<<F as ProduceBody<'static, T>>::Future>,
        init: Option<F>,
        result: Option<Result<(), Error>>,
        #[pin]
        frame: Frame<T>,
    }
}

impl<T, F> Drive<T, F>
where
    F: ProduceBody<'static, T>,
{
    fn new(yielder: Yielder<'static, T>, init: F) -> Self {
        Drive {
            body: None,
            init: Some(init),
            result: None,
            frame: Frame {
                yielder: UnsafeCell::new(yielder),
                open: Cell::new(0),
                flags: Cell::new(UNSTARTED),
                queue: Cell::new(VecDeque::new()),
                _pinned: PhantomPinned,
            },
        }
    }
}

impl<T, F> Future for Drive<T, F>
where
    F: ProduceBody<'static, T>,
{
    type Output = Result<Option<T>, Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        // Every `Pending` returned here let the producer take the slot's value, if any: the
        // slot is empty now, unless a queued value is to take its place. (The frame is reached
        // by projection: a `&Drive` would cover the body, which may hold references into its
        // own state.)
        let flags = self
            .as_mut()
            .project()
            .frame
            .into_ref()
            .get_ref()
            .flags
            .get();
        if flags != 0 {
            match self.as_mut().prepare() {
                Prepared::Resume => {}
                Prepared::Pending => return Poll::Pending,
                Prepared::Ready(result) => return Poll::Ready(result.map(|()| None)),
            }
        }
        let this = self.project();
        let frame = this.frame.into_ref().get_ref();
        frame.open.set(waker_address(cx.waker()));
        // SAFETY: the flags are clear, so `prepare` has created the body (it clears
        // `UNSTARTED` only once the body is in place), and nothing takes it out again.
        let body = unsafe { this.body.as_pin_mut().unwrap_unchecked() };
        match body.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) if frame.open.get() & FULL == 0 => {
                Poll::Ready(result.map(|()| None))
            }
            // A value still waits in the slot: it comes out first.
            Poll::Ready(result) => hold(this.result, frame, result),
        }
    }
}

/// Keeps the body's result until every value it sent is taken.
#[cold]
#[inline(never)]
fn hold<T>(
    held: &mut Option<Result<(), Error>>,
    frame: &Frame<T>,
    result: Result<(), Error>,
) -> Poll<Result<Option<T>, Error>> {
    *held = Some(result);
    frame.flags.set(frame.flags.get() | HELD);
    Poll::Pending
}

/// What [`Drive::prepare`] leaves to do.
enum Prepared {
    /// Poll the body.
    Resume,
    /// A queued value is in the slot: return `Pending` for the producer to take it.
    Pending,
    /// Every value is taken: end with the body's result.
    Ready(Result<(), Error>),
}

impl<T, F> Drive<T, F>
where
    F: ProduceBody<'static, T>,
{
    /// Everything but the steady state: the first poll, queued values, a held result.
    #[cold]
    #[inline(never)]
    fn prepare(self: Pin<&mut Self>) -> Prepared {
        let this = self.project();
        let frame = this.frame.into_ref().get_ref();
        let flags = frame.flags.get();
        if flags & UNSTARTED != 0 {
            let Some(init) = this.init.take() else {
                // Only after the closure panicked, and the stream is polled again.
                return Prepared::Ready(Err(Error::new(
                    ErrorCode::Internal,
                    "the producer's closure panicked",
                )));
            };
            let emitter = Emitter {
                frame: NonNull::from(frame),
                _body: PhantomData,
                _invariant: PhantomData,
            };
            let mut body = this.body;
            body.set(Some(init.call(emitter)));
            frame.flags.set(flags & !UNSTARTED);
            return Prepared::Resume;
        }
        if flags & QUEUED != 0 {
            frame.refill();
            return Prepared::Pending;
        }
        frame.flags.set(0);
        Prepared::Ready(this.result.take().unwrap_or(Ok(())))
    }
}
