// Over 500 lines: the inline producer and its emitter are one unsafe-adjacent unit (the frame
// the emitter points at, the stream that owns it and the body, and their safety arguments) kept
// together so that the whole argument can be read in one place; half of the file is
// documentation.
//! The inline form of [`#[stream_producer]`](crate::stream_producer): [`produce`] runs an async
//! closure that is handed an [`Emitter`], on a stream of its own, [`Produce`], built as the
//! attribute's producer is.
//!
//! How one item travels: `emitter.emit(x)` puts `x` in the frame's slot (or, when the slot
//! still holds an earlier value, at the back of the frame's queue) and returns an [`Emit`]
//! future, `Pending` while the slot is full. The body future returns `Pending` too, the stream
//! takes the value out of the slot and hands it to the consumer, and the next poll of the body
//! finds the slot empty and the emit future ready.
//!
//! The stream owns the user's closure, then the future the closure returns, and a pinned
//! [`Frame`] that the emitter points at. Its steady state is the attribute's: the context's
//! atomic load, a countdown, the body's poll, the slot's value taken. Every other state (not
//! started, values queued behind the slot, a body that ended while values wait, finished) keeps
//! the countdown at 1, so that each poll goes to the out-of-line `poll_gated` instead. The
//! steady state's only calls are the slow paths, out of line: the stream's (an event, a parked
//! body, the body's end) and the emitter's (a value queued behind the slot, a foreign waker's
//! wake).
//!
//! The stream counts on one rule of its own: whenever the body returns `Pending`, the stream
//! takes what the slot holds before it polls the body again, and it does not poll the body
//! while values wait in the queue. So the slot is empty whenever the body resumes, and an
//! emit future that finds the slot empty knows its value was taken.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::{PhantomData, PhantomPinned};
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::ptr::NonNull;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::{FusedStream, Stream};

use crate::context::{Cancelled, Context, watch};
use crate::error::{Error, ErrorCode};
use crate::event::{Event, EventResult, IntoEvent, Yielded};

// The frame's flags, off the steady state (where they are all clear). While any is set, the
// countdown stays at 1 and every poll goes to `poll_gated`.
/// The body has not been created yet.
const UNSTARTED: u8 = 1;
/// With the slot full, the queue holds more values, sent after the slot's.
const QUEUED: u8 = 2;
/// The body has ended and its result waits in the stream until every value is taken.
const HELD: u8 = 4;
/// The stream has yielded its terminal item.
const FINISHED: u8 = 8;

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
/// Awaited from the body (directly, or in `select!`, `join!` or any combinator that passes the
/// body's task [`Context`](std::task::Context) on), an emit future wakes no task. Polled under
/// another task context (a `FuturesUnordered` in the body), it wakes that context's waker, so
/// that whoever polls it polls it again on the body's next poll, after the consumer took the
/// value; a combinator that wraps the body's own waker in a new context gets that wake too,
/// one extra poll of the consumer's task. Blocking on an emit future inside the body (an
/// executor's `block_on`) never returns: the value is taken only after the body returns to the
/// stream.
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
    // The emitter the stream creates is an `Emitter<'static, T>`; the closure's bound holds for
    // every emitter lifetime, so the closure cannot store it anywhere that outlives its own
    // future, which the stream owns (see `Frame` for what the emitter may do with the frame).
    Produce::new(ctx.clone(), body)
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

/// What the stream and the [`Emitter`] share: the slot, the task context the body is polled with, the
/// countdown and the flags of the gate, and the values queued after the slot's. Pinned
/// (`!Unpin`), since the emitter points at it.
///
/// It is used by one party at a time, on one thread at a time: by the stream before and after
/// it polls the body, and by the emitter (or its emit future) while the body runs, from inside
/// the body's poll (the emitter cannot leave the body, see [`produce`]; lent to a scoped thread,
/// it is used while the body's poll waits for that thread). The slot is reached only through
/// the methods below, none of which runs user code (drops a value) or calls out while it holds
/// the slot's reference.
struct Frame<T> {
    slot: UnsafeCell<Option<Yielded<T>>>,
    // Where `send` leaves a value for the out-of-line `enqueue`, which moves it into the queue
    // at once: empty outside that call.
    spare: UnsafeCell<MaybeUninit<Yielded<T>>>,
    // The address of the task context the body is polled with, set by the stream before each
    // poll of the body.
    context: Cell<usize>,
    // Polls left before `poll_gated` runs: the clock's countdown in the steady state, 1 while
    // any flag is set.
    until_clock: Cell<u32>,
    flags: Cell<u8>,
    queue: Cell<VecDeque<Yielded<T>>>,
    _pinned: PhantomPinned,
}

impl<T> Frame<T> {
    fn new() -> Self {
        Frame {
            slot: UnsafeCell::new(None),
            spare: UnsafeCell::new(MaybeUninit::uninit()),
            context: Cell::new(0),
            // The first poll goes to `poll_gated`, which starts the body.
            until_clock: Cell::new(1),
            flags: Cell::new(UNSTARTED),
            queue: Cell::new(VecDeque::new()),
            _pinned: PhantomPinned,
        }
    }

    /// Whether every value sent so far has been taken.
    #[inline]
    fn is_empty(&self) -> bool {
        // SAFETY: a read with no reference into the slot alive (see `Frame`).
        unsafe { (*self.slot.get()).is_none() }
    }

    /// Sends `value`: into the slot if it is empty, else at the back of the queue.
    #[inline]
    fn send(&self, value: Yielded<T>) -> &Self {
        // SAFETY: the only reference into the slot, for this call (see `Frame`); the value
        // overwritten is `None`, so nothing is dropped.
        let slot = unsafe { &mut *self.slot.get() };
        if slot.is_none() {
            *slot = Some(value);
            self
        } else {
            // SAFETY: the only reference into `spare`; `enqueue` moves the value out before it
            // returns, so `spare` never holds one between calls and nothing is overwritten.
            unsafe { (*self.spare.get()).write(value) };
            enqueue(self)
        }
    }

    /// Takes a payload out of the slot, if that is what it holds.
    #[inline]
    fn take_data(&self) -> Option<T> {
        let slot = self.slot.get();
        // SAFETY: the only access to the slot, for this call (see `Frame`). The payload is
        // moved out and the slot emptied at once, so it is never dropped twice; writing `None`
        // over it drops nothing.
        unsafe {
            let Some(Yielded::Data(payload)) = &*slot else {
                return None;
            };
            let payload = std::ptr::read(payload);
            slot.write(None);
            Some(payload)
        }
    }

    /// Takes what the slot holds.
    fn take(&self) -> Option<Yielded<T>> {
        // SAFETY: the only reference into the slot, for this call (see `Frame`).
        unsafe { (*self.slot.get()).take() }
    }

    /// The next queued value, once the slot's has been taken.
    fn dequeue(&self) -> Option<Yielded<T>> {
        let mut queue = self.queue.take();
        let next = queue.pop_front();
        if queue.is_empty() {
            self.flags.set(self.flags.get() & !QUEUED);
        }
        self.queue.set(queue);
        next
    }
}

/// Defines a cold function the body's poll may call in the middle of the steady state, with the
/// `win64` calling convention on x86-64: its callee also saves `rdi` and `rsi`, so that the
/// body's poll keeps what it needs across the call in those two registers and pushes no
/// callee-saved register for it on every poll (measured in benches/producer.rs). The Rust
/// convention elsewhere.
macro_rules! cold_call {
    ($(#[$attr:meta])* fn $name:ident$(<$t:ident>)?($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[cold]
        #[inline(never)]
        #[cfg(target_arch = "x86_64")]
        #[allow(
            improper_ctypes_definitions,
            reason = "called from Rust only; the ABI is chosen for its registers"
        )]
        extern "win64-unwind" fn $name$(<$t>)?($($arg: $ty),*) -> $ret $body

        $(#[$attr])*
        #[cold]
        #[inline(never)]
        #[cfg(not(target_arch = "x86_64"))]
        fn $name$(<$t>)?($($arg: $ty),*) -> $ret $body
    };
}

cold_call! {
    /// Moves the value [`Frame::send`] left in `spare` to the back of the queue, and returns
    /// the frame: the body's poll only calls it when a value is sent while the slot is full. The
    /// value is handed over in the frame rather than on the stack, and the frame's address comes
    /// back, so that nothing of the caller's is kept across the call (see `cold_call`).
    fn enqueue<T>(frame: &Frame<T>) -> &Frame<T> {
        // SAFETY: `send` has just written a value into `spare` and calls this only once for it;
        // it is moved out here, leaving `spare` logically empty.
        let value = unsafe { (*frame.spare.get()).assume_init_read() };
        let mut queue = frame.queue.take();
        queue.push_back(value);
        frame.queue.set(queue);
        frame.flags.set(frame.flags.get() | QUEUED);
        frame.until_clock.set(1);
        frame
    }
}

/// The address of a task context, which identifies it among the live ones; it is only compared,
/// never turned back into a reference.
#[inline]
fn context_address(cx: &TaskContext<'_>) -> usize {
    std::ptr::from_ref(cx).addr()
}

/// The body's handle to its stream, handed to the closure of [`produce`]: `e.emit(x).await`
/// sends an item.
///
/// It cannot leave the body (see [`produce`]), it is invariant in `T`, and it is `Send` when
/// `T` is, so a stream whose body is `Send` is `Send`.
pub struct Emitter<'e, T> {
    // A `Frame<T>`, its type erased (cast back in `emit`; `_invariant` keeps `T`): a diagnostic
    // about sharing an emitter between threads then names no internal type.
    frame: NonNull<()>,
    _body: PhantomData<&'e ()>,
    // Invariant in `T`: an emitter of `&'static str` must never accept a `&'short str`.
    _invariant: PhantomData<fn(T) -> T>,
}

// SAFETY: the emitter points at the frame of the stream that owns the future holding it, and
// uses it only while that future is polled (see `Frame`); sending the emitter to another
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
        let frame = unsafe { self.frame.cast::<Frame<T>>().as_ref() }.send(value.__into_yielded());
        Emit {
            frame: NonNull::from(frame),
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
        let frame = unsafe { self.frame.as_ref() };
        if frame.is_empty() {
            // Every value sent so far, this one included, was taken: the stream empties the
            // slot and the queue before it resumes the body.
            Poll::Ready(())
        } else if frame.context.get() == context_address(cx) {
            // The body's own task context: the stream takes the value when the body returns
            // `Pending`, and polls the body again without a wake.
            Poll::Pending
        } else {
            wake(cx.waker())
        }
    }
}

cold_call! {
    /// A combinator with its own waker (a `FuturesUnordered` of the body) polls the emit future
    /// again only once woken: wake it, so that it does after the consumer took the value.
    /// Returning the `Poll` keeps the body's poll from keeping one of its own across the call.
    fn wake(waker: &Waker) -> Poll<()> {
        waker.wake_by_ref();
        Poll::Pending
    }
}

impl<T> fmt::Debug for Emit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit").finish_non_exhaustive()
    }
}

/// The stream [`produce`] returns.
///
/// Only the steady state ([`Stream::poll_next`], inlining the body's poll) and the functions
/// that create or drop the body (`poll_gated`, `pending`, `returned`, `complete`) are built for
/// each closure; the terminal item is built once per payload type, and the context's clock and
/// parking are [`watch`]'s.
///
/// Nothing may be moved out of it once pinned but the unstarted closure, which is never
/// pinned: the body is polled and dropped in place (by assigning `None`), and the frame is only
/// used through shared references. It is `!Unpin` (the frame is), so that a `&mut` to it
/// asserts no uniqueness over the frame the emitter points at.
#[must_use = "streams do nothing unless polled"]
struct Produce<T, F>
where
    F: ProduceBody<'static, T>,
{
    // Declared before the frame, so dropped before it: the emitter inside points at it.
    body: Option<<F as ProduceBody<'static, T>>::Future>,
    init: Option<F>,
    held: Option<Result<(), Error>>,
    ctx: Context,
    parked: Option<Cancelled>,
    // Whether the context has a deadline or a token to read the clock for.
    observe: bool,
    frame: Frame<T>,
}

/// How a stream ends, before its terminal item is built.
enum End<T> {
    /// The body returned.
    Returned(Result<(), Error>),
    /// The body emitted a `done` event.
    Done(Event<T>),
    /// The context ended while the body was parked.
    Parked(Error),
    /// The context has ended.
    Context,
}

impl<T, F> Produce<T, F>
where
    F: ProduceBody<'static, T>,
{
    fn new(ctx: Context, init: F) -> Self {
        Produce {
            body: None,
            init: Some(init),
            held: None,
            observe: ctx.needs_observing(),
            ctx,
            parked: None,
            frame: Frame::new(),
        }
    }
}

impl<T, F> Stream for Produce<T, F>
where
    F: ProduceBody<'static, T>,
{
    type Item = EventResult<T>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // SAFETY: nothing is moved out of the stream (see `Produce`).
        let this = unsafe { self.get_unchecked_mut() };
        // The countdown is also the gate of every other state: while a flag is set, it is 1.
        if this.ctx.is_cancelled() || countdown(&this.frame.until_clock) {
            return poll_gated(this, cx);
        }
        resume(this, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.frame.flags.get() & FINISHED == 0 {
            (0, None)
        } else {
            (0, Some(0))
        }
    }
}

impl<T, F> FusedStream for Produce<T, F>
where
    F: ProduceBody<'static, T>,
{
    fn is_terminated(&self) -> bool {
        self.frame.flags.get() & FINISHED != 0
    }
}

/// The countdown of [`Frame::until_clock`]; true when `poll_gated` is due.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn countdown(until_clock: &Cell<u32>) -> bool {
    let left = until_clock.get().wrapping_sub(1);
    until_clock.set(left);
    left == 0
}

/// The steady state: resume the body, hand out what it sent.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn resume<T, F>(this: &mut Produce<T, F>, cx: &mut TaskContext<'_>) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    this.frame.context.set(context_address(cx));
    // SAFETY: the flags are clear (the countdown is running), so `poll_gated` has created the
    // body (it clears `UNSTARTED` only once the body is in place), and only `drop_body` takes
    // it out again, which sets `FINISHED` before (so that a destructor that panics leaves the
    // stream ended) and leaves `HELD` or `FINISHED` set after, through its callers. The body is
    // pinned with the stream.
    let body = unsafe { Pin::new_unchecked(this.body.as_mut().unwrap_unchecked()) };
    match body.poll(cx) {
        Poll::Pending => match this.frame.take_data() {
            Some(payload) => Poll::Ready(Some(Ok(Event::data(payload)))),
            None => pending(this, cx),
        },
        Poll::Ready(result) => returned(this, result),
    }
}

/// Everything but the steady state: not started, finished, values queued, a held result, a
/// deadline's clock read, a cancelled context.
#[inline(never)]
fn poll_gated<T, F>(
    this: &mut Produce<T, F>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    // Back here at the next poll, unless the steady state resumes below.
    this.frame.until_clock.set(1);
    let flags = this.frame.flags.get();
    if flags & FINISHED != 0 {
        return Poll::Ready(None);
    }
    if watch::has_ended(&this.ctx, this.observe) {
        return complete(this, End::Context);
    }
    if flags & UNSTARTED != 0 {
        let Some(init) = this.init.take() else {
            // Only after the closure panicked, and the stream is polled again.
            let err = Error::new(ErrorCode::Internal, "the producer's closure panicked");
            return complete(this, End::Returned(Err(err)));
        };
        let emitter = Emitter {
            frame: NonNull::from(&this.frame).cast(),
            _body: PhantomData,
            _invariant: PhantomData,
        };
        this.body = Some(init.call(emitter));
        // Read again: the closure may have queued values when called.
        this.frame.flags.set(this.frame.flags.get() & !UNSTARTED);
    } else if flags & QUEUED != 0 {
        // The slot's value was taken when the body last returned `Pending` (unless the
        // closure sent values when called): the next queued one goes out, and the body waits
        // until the queue is empty. The countdown stays at 1, so the next poll comes back here.
        if let Some(value) = this.frame.take().or_else(|| this.frame.dequeue()) {
            return deliver(this, value);
        }
    } else if flags & HELD != 0 {
        let result = this.held.take().unwrap_or(Ok(()));
        return complete(this, End::Returned(result));
    }
    if this.frame.flags.get() != 0 {
        // The queue was empty after all (it never is with the `QUEUED` flag set).
        return poll_gated(this, cx);
    }
    this.frame.until_clock.set(watch::rearm(this.observe));
    resume(this, cx)
}

/// Hands out one value the body sent: a `done` event ends the stream.
fn deliver<T, F>(this: &mut Produce<T, F>, value: Yielded<T>) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    match value {
        Yielded::Data(payload) => Poll::Ready(Some(Ok(Event::data(payload)))),
        Yielded::Event(event) if event.is_done() => complete(this, End::Done(event)),
        Yielded::Event(event) => Poll::Ready(Some(Ok(event))),
    }
}

/// The body is pending without a payload in the slot: an event, or the body is parked.
#[inline(never)]
fn pending<T, F>(this: &mut Produce<T, F>, cx: &mut TaskContext<'_>) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    if let Some(value) = this.frame.take() {
        return deliver(this, value);
    }
    match watch::park(&mut this.parked, &this.ctx, cx) {
        Poll::Ready(err) => complete(this, End::Parked(err)),
        Poll::Pending => Poll::Pending,
    }
}

/// The body has returned: its result ends the stream, after the values still waiting.
#[cold]
#[inline(never)]
fn returned<T, F>(
    this: &mut Produce<T, F>,
    result: Result<(), Error>,
) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    // Dropped at once: a destructor in it may still send through the emitter, into the frame.
    drop_body(this);
    // The queue holds values only while the slot does.
    match this.frame.take() {
        None => complete(this, End::Returned(result)),
        Some(value) => {
            this.held = Some(result);
            this.frame.flags.set(this.frame.flags.get() | HELD);
            this.frame.until_clock.set(1);
            deliver(this, value)
        }
    }
}

/// Ends the stream: drops the body (running its destructors) first, then the rest.
#[cold]
#[inline(never)]
fn complete<T, F>(this: &mut Produce<T, F>, end: End<T>) -> Poll<Option<EventResult<T>>>
where
    F: ProduceBody<'static, T>,
{
    drop_body(this);
    this.init = None;
    this.held = None;
    finish(&this.frame, &mut this.parked, &this.ctx, end)
}

/// Drops the body in place (running its destructors), the stream marked finished meanwhile:
/// if a destructor panics, the stream stays ended, and never reaches for the body again.
fn drop_body<T, F>(this: &mut Produce<T, F>)
where
    F: ProduceBody<'static, T>,
{
    this.frame.flags.set(this.frame.flags.get() | FINISHED);
    this.frame.until_clock.set(1);
    this.body = None;
    // Read again: a destructor may have queued a value.
    this.frame.flags.set(this.frame.flags.get() & !FINISHED);
}

/// Ends the stream once the body is dropped: drops what waits in the frame, and yields the
/// terminal item.
#[cold]
#[inline(never)]
fn finish<T>(
    frame: &Frame<T>,
    parked: &mut Option<Cancelled>,
    ctx: &Context,
    end: End<T>,
) -> Poll<Option<EventResult<T>>> {
    *parked = None;
    frame.flags.set(FINISHED);
    frame.until_clock.set(1);
    drop(frame.take());
    drop(frame.queue.take());
    Poll::Ready(Some(match end {
        End::Returned(Ok(())) => Ok(Event::done()),
        End::Returned(Err(err)) | End::Parked(err) => Err(err),
        End::Done(event) => Ok(event),
        End::Context => Err(ctx.error().unwrap_or_else(Error::cancelled)),
    }))
}
