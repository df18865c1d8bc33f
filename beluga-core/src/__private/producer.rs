// Over 500 lines: the producer stream and its slot are the unsafe core of the crate, kept in one
// file so that every use of the slot and its safety argument can be read together.
//! The stream behind `#[stream_producer]`: a pinned stream that owns a slot and the body, and
//! hands the body a [`Yielder`] pointing at that slot.
//!
//! How one item travels: the body calls `yielder.value(x).await`; `value` puts `x` in the slot
//! and the returned future is `Pending` once. [`Producer::poll_next`] sees the body pending with a full slot, takes
//! the payload out and returns it as `Event::data(x)`; the next poll resumes the body. No
//! thread-local, no waker trick, no allocation per item: the slot lives inside the pinned stream.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};

use crate::context::watch;
use crate::context::{Cancelled, Context};
use crate::error::Error;
use crate::event::{Event, Yielded};

const UNSTARTED: u8 = 2;
const FINISHED: u8 = 4;

/// Where an emitted value waits for `poll_next`. `!Unpin`, so that a `&mut Producer` never
/// asserts uniqueness over it while the body holds a pointer to it.
struct Slot<T> {
    data: Cell<Option<T>>,
    event: Cell<Option<Event<T>>>,
    _pinned: PhantomPinned,
}

/// What a producer hands its body: the address of its slot, which the body binds into a
/// [`Yielder`] before anything else (see [`YieldHandle::bind`]).
pub struct YieldHandle<T> {
    slot: *const Slot<T>,
    // Invariant in `T`: a handle for `&'static str` must never accept a `&'short str`
    // (a shorter-lived value must never be stored where a longer-lived one is read).
    _invariant: PhantomData<fn(T) -> T>,
}

// SAFETY: a handle is a pointer to its producer's slot, used only by the body future (bound
// into a `Yielder` there), and the body is only polled from `Producer::poll_next`, which has
// exclusive access to the producer. Sending the body to another thread sends the producer (and
// the slot) with it, and the slot is never accessed from two threads at once. Not `Sync`.
unsafe impl<T: Send> Send for YieldHandle<T> {}

impl<T> YieldHandle<T> {
    /// The body's yielder, borrowing `anchor`, a local of the body future: whatever user code
    /// does with the yielder (a macro may move it into a nested `async move` block), it cannot
    /// outlive that local, so it never leaves the body future.
    #[inline]
    pub fn bind(self, _anchor: &mut Anchor) -> Yielder<'_, T> {
        Yielder {
            slot: self.slot,
            _anchor: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T> fmt::Debug for YieldHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YieldHandle").finish_non_exhaustive()
    }
}

/// A local of the body future, which the [`Yielder`] borrows (see [`YieldHandle::bind`]).
#[derive(Debug)]
pub struct Anchor;

/// The body's handle to its producer's slot.
///
/// The code `#[stream_producer]` generates binds it in the body future under a name user code
/// cannot spell, and uses it only as `&mut` in place. It borrows a local of the body future
/// (the [`Anchor`]), so it can never leave the body, even when a macro moves it into a nested
/// `async move` block; and at most one [`Yield`] exists at a time (each holds the exclusive
/// borrow), so the slot is never touched from two places at once.
///
/// The generated code keeps the yielder itself in the body, not a reference to it: emitting a
/// value is then one load of the slot's address and the store, not two dependent loads.
pub struct Yielder<'a, T> {
    slot: *const Slot<T>,
    _anchor: PhantomData<&'a mut Anchor>,
    // Invariant in `T`: a `Yielder<&'static str>` must never accept a `&'short str`
    // (a shorter-lived value must never be stored where a longer-lived one is read).
    _invariant: PhantomData<fn(T) -> T>,
}

// SAFETY: as for `YieldHandle`: the body future is the yielder's only user, and it is only
// polled with exclusive access to the producer that owns the slot. Not `Sync`.
unsafe impl<T: Send> Send for Yielder<'_, T> {}

impl<T> Yielder<'_, T> {
    /// Emits `value` (see [`IntoEvent`](crate::IntoEvent)).
    #[inline]
    pub fn value(&mut self, value: Yielded<T>) -> Yield<'_> {
        // SAFETY: `Producer::stream`'s contract: the slot is alive and pinned, and while the body
        // runs (it is the caller) `poll_next` does not touch the slot.
        let slot = unsafe { &*self.slot };
        match value {
            Yielded::Data(payload) => slot.data.set(Some(payload)),
            Yielded::Event(event) => slot.event.set(Some(event)),
        }
        Yield {
            _yielder: PhantomData,
            polled: false,
        }
    }
}

impl<T> fmt::Debug for Yielder<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

/// The future of one `emit!`: [`Yielder::value`] has already put the value in the slot; this
/// is pending once (handing control back to `poll_next`, which takes the value out), then
/// ready. It holds the yielder's exclusive borrow, so no second value can be put in the slot
/// before `poll_next` has taken the first.
#[must_use = "an emit does nothing unless awaited"]
pub struct Yield<'b> {
    _yielder: PhantomData<&'b mut ()>,
    polled: bool,
}

impl Future for Yield<'_> {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.polled {
            Poll::Ready(())
        } else {
            // No waker is registered on purpose: the body returns `Pending` with the slot full,
            // `poll_next` takes the value and returns `Ready`, and the consumer polls again
            // without being woken.
            self.polled = true;
            Poll::Pending
        }
    }
}

impl fmt::Debug for Yield<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yield").finish_non_exhaustive()
    }
}

/// Turns the value a body ends with into the final value of its `done` event: `()` means a
/// plain `done()`, a `T` means `done_with(value)`.
#[derive(Debug)]
pub struct Final<V>(pub V);

impl Final<()> {
    /// A body that ends with `()` has no final value.
    #[inline]
    pub fn into_final<T>(self) -> Option<T> {
        None
    }
}

/// The `T` case of [`Final`]; an inherent method on `Final<()>` takes precedence for `()`.
pub trait IntoFinal<T> {
    /// The final value.
    fn into_final(self) -> Option<T>;
}

impl<T> IntoFinal<T> for Final<T> {
    #[inline]
    fn into_final(self) -> Option<T> {
        Some(self.0)
    }
}

/// The state of the body: the closure that creates it, then the body itself, then nothing.
enum Body<F, Fut> {
    Unstarted(F),
    Running(Fut),
    Ended,
}

/// The stream `#[stream_producer]` returns.
///
/// Every producer is a type of its own, and each function generic over its body is built once
/// per producer. So only four small ones are, as provided methods of `BodyFn` (built with the
/// producer, in its crate's codegen unit): `poll_steady` ([`Stream::poll_next`]: the steady
/// state, inlining the body's poll), `poll_gated` (which creates the body), `pending` and
/// `complete` (which drop it when the stream ends). The rest (the context, the clock, parking,
/// the terminal item) lives in functions that depend on the payload type at most, built once per
/// payload type.
#[must_use = "streams do nothing unless polled"]
pub struct Producer<T, F, Fut> {
    // Structurally pinned when `Running` (the body future); never pinned when `Unstarted`. The
    // body is created on the first poll (the slot's address is fixed only once pinned).
    // Declared before the slot so that it is dropped first: nothing the body owns may outlive
    // the slot its yielder points at.
    body: Body<F, Fut>,
    core: Core<T>,
}

/// Everything of a producer but its body, in one value: one call creates it, one call drops it.
struct Core<T> {
    slot: Slot<T>,
    watch: Watch,
}

/// What a producer watches: its context, and the state of the gate in front of its body.
struct Watch {
    ctx: Context,
    parked: Option<Cancelled>,
    // Polls left before `Watch::poll_slow` runs: the clock's countdown in the steady state
    // (`CLOCK_EVERY` with a deadline or token to watch, else `u32::MAX`), and 1 in every other
    // state, so that the steady state's only tests are this countdown and the context's atomic
    // load.
    until_clock: u32,
    observe: bool,
    mode: u8,
}

/// What the gate decided, in every state but the steady one.
enum Gate {
    /// Resume the body.
    Resume,
    /// Create the body, then resume it.
    Start,
    /// The context has ended: end the stream.
    End,
    /// The stream has ended already.
    Ended,
}

/// How a stream ends, before its terminal item is built.
enum End<T> {
    /// The body returned.
    Returned(Result<Option<T>, Error>),
    /// The body emitted a `done` event.
    Done(Event<T>),
    /// The context ended while the body was parked.
    Parked(Error),
    /// The context has ended.
    Context,
}

impl<T, F, Fut> Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    /// A producer that runs `body` and watches `ctx`, behind an opaque type: a diagnostic about
    /// the stream (a body that is not `Send`, say) names `impl Stream<...>`, not the producer's
    /// generated closure and future types.
    ///
    /// # Safety
    ///
    /// The [`YieldHandle`] passed to `body`, and the [`Yielder`] bound from it, must only be
    /// used by the future `body` returns, and must not be moved out of it or outlive it.
    /// `#[stream_producer]` guarantees this by binding the yielder to a local of the body future
    /// (so it cannot outlive the body), under names user code cannot spell.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "instantiated once per producer: inlined, it is no function of its own to build"
    )]
    pub unsafe fn stream(
        ctx: Context,
        body: F,
    ) -> impl FusedStream<Item = Result<Event<T>, Error>> {
        Producer {
            core: Core::new(ctx),
            body: Body::Unstarted(body),
        }
    }
}

impl<T, F, Fut> Stream for Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    type Item = Result<Event<T>, Error>;

    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "a call of `BodyFn::poll_steady`, which holds the code (see `BodyFn`)"
    )]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // SAFETY: see `project`.
        F::poll_steady(unsafe { project(self) }, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.core.watch.size_hint()
    }
}

impl<T, F, Fut> FusedStream for Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.core.watch.is_finished()
    }
}

impl<T, F, Fut> fmt::Debug for Producer<T, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("started", &!matches!(self.body, Body::Unstarted(_)))
            .field("finished", &self.core.watch.is_finished())
            .field("ctx", &self.core.watch.ctx)
            .finish_non_exhaustive()
    }
}

impl<T> Core<T> {
    fn new(ctx: Context) -> Self {
        Core {
            slot: Slot {
                data: Cell::new(None),
                event: Cell::new(None),
                _pinned: PhantomPinned,
            },
            watch: Watch::new(ctx),
        }
    }
}

impl Watch {
    fn new(ctx: Context) -> Self {
        Watch {
            observe: ctx.needs_observing(),
            mode: UNSTARTED,
            ctx,
            parked: None,
            // The first poll goes to `poll_slow`, which starts the body, and reads the clock
            // first: a deadline that has already passed ends the producer before its body runs.
            until_clock: 1,
        }
    }

    fn is_finished(&self) -> bool {
        self.mode & FINISHED != 0
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.is_finished() {
            (0, Some(0))
        } else {
            (0, None)
        }
    }

    /// Everything but the steady state: not started, finished, a deadline to watch, cancelled.
    /// Inlined into each producer's `poll_gated` in optimized builds: a deadline's clock read
    /// every `CLOCK_EVERY` polls then costs no call of its own.
    #[inline]
    fn poll_slow(&mut self) -> Gate {
        if self.is_finished() {
            self.until_clock = 1;
            return Gate::Ended;
        }
        if self.until_clock == 0 {
            self.until_clock = watch::rearm(self.observe);
            if self.observe && self.ctx.check_deadline() {
                return Gate::End;
            }
        }
        if self.ctx.is_cancelled() {
            return Gate::End;
        }
        if self.mode & UNSTARTED != 0 {
            // The countdown was re-armed above: an unstarted producer's only way here past the
            // cancellation check is its countdown reaching 0.
            self.mode &= !UNSTARTED;
            return Gate::Start;
        }
        Gate::Resume
    }

    /// The body is parked in an `.await` without yielding: wait for it or for the context.
    #[inline(never)]
    fn park(&mut self, cx: &mut TaskContext<'_>) -> Poll<Error> {
        watch::park(&mut self.parked, &self.ctx, cx)
    }

    /// Marks the stream ended, and returns the error of an ended context.
    #[cold]
    #[inline(never)]
    fn finish(&mut self, context_ended: bool) -> Option<Error> {
        self.parked = None;
        self.mode = FINISHED;
        self.until_clock = 1;
        context_ended.then(|| self.ctx.error().unwrap_or_else(Error::cancelled))
    }
}

/// The countdown of [`Watch::until_clock`]; true when `poll_slow` is due: the clock with a
/// deadline or token, every 2^32 polls without, and at once in any state but the steady one.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn countdown(until_clock: &mut u32) -> bool {
    *until_clock = until_clock.wrapping_sub(1);
    *until_clock == 0
}

/// The producer behind its pin.
///
/// # Safety
///
/// Nothing may be moved out of the producer but an unstarted body's closure, which is never
/// pinned: a running body is only polled in place and dropped in place (by assigning
/// `Body::Ended`), and the slot is only used through shared references.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "a field access; a function of its own per producer in unoptimized builds otherwise"
)]
unsafe fn project<T, F, Fut>(this: Pin<&mut Producer<T, F, Fut>>) -> &mut Producer<T, F, Fut> {
    // SAFETY: the caller's.
    unsafe { this.get_unchecked_mut() }
}

/// The functions of a producer that depend on its body's types, as provided methods of a trait
/// every body closure implements. rustc generates an instance of a provided method in the
/// codegen unit of its `Self` type, here the closure the expansion wrote in the user's module:
/// so each producer's code sits with that producer, and an incremental rebuild after one
/// producer changed generates that one again, not every producer of the crate (as it would if
/// they were free functions of this module, whose instances share one codegen unit).
trait BodyFn<T, Fut>: FnOnce(YieldHandle<T>) -> Fut + Sized
where
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    /// [`Stream::poll_next`]: the steady state, and the gate to every other.
    #[inline]
    fn poll_steady(
        this: &mut Producer<T, Self, Fut>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Event<T>, Error>>> {
        // `until_clock` is also the gate of every other state: whenever `mode` is not the steady
        // state, it is 1, so this countdown sends the poll to `poll_gated`.
        if this.core.watch.ctx.is_cancelled() || countdown(&mut this.core.watch.until_clock) {
            return Self::poll_gated(this, cx);
        }
        resume(this, cx)
    }

    /// Everything but the steady state: not started, finished, a deadline to watch,
    /// cancelled. The only slow path that depends on the body's types, since it creates the
    /// body.
    #[inline(never)]
    fn poll_gated(
        this: &mut Producer<T, Self, Fut>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Event<T>, Error>>> {
        match this.core.watch.poll_slow() {
            Gate::Resume => {}
            Gate::Start => {
                // Checked first: a running body must not be moved out.
                if let Body::Unstarted(_) = this.body {
                    if let Body::Unstarted(init) = std::mem::replace(&mut this.body, Body::Ended) {
                        let handle = YieldHandle {
                            slot: std::ptr::from_ref(&this.core.slot),
                            _invariant: PhantomData,
                        };
                        this.body = Body::Running(init(handle));
                    }
                }
            }
            Gate::End => return Self::complete(this, End::Context),
            Gate::Ended => return Poll::Ready(None),
        }
        resume(this, cx)
    }

    /// The body is pending without a payload in the slot.
    #[inline(never)]
    fn pending(
        this: &mut Producer<T, Self, Fut>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Event<T>, Error>>> {
        match pending_slow(&this.core.slot, &mut this.core.watch, cx) {
            Poll::Ready(Ok(event)) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(Err(end)) => Self::complete(this, end),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ends the stream: drops the body (running its destructors) first, then the rest.
    #[cold]
    #[inline(never)]
    fn complete(
        this: &mut Producer<T, Self, Fut>,
        end: End<T>,
    ) -> Poll<Option<Result<Event<T>, Error>>> {
        this.body = Body::Ended;
        finish(&this.core.slot, &mut this.core.watch, end)
    }
}

impl<T, F, Fut> BodyFn<T, Fut> for F
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
}

/// The steady state: resume the body, hand out what it emitted.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn resume<T, F, Fut>(
    this: &mut Producer<T, F, Fut>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    F: BodyFn<T, Fut>,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let Body::Running(body) = &mut this.body else {
        return F::complete(this, End::Context);
    };
    // SAFETY: the body is pinned with the producer (see `project`).
    match unsafe { Pin::new_unchecked(body) }.poll(cx) {
        Poll::Pending => {
            if let Some(payload) = this.core.slot.data.take() {
                return Poll::Ready(Some(Ok(Event::data(payload))));
            }
            F::pending(this, cx)
        }
        Poll::Ready(result) => F::complete(this, End::Returned(result)),
    }
}

/// The body is pending without a payload in the slot: an emitted event, or the body is parked.
/// `Err` ends the stream.
#[inline(never)]
fn pending_slow<T>(
    slot: &Slot<T>,
    watch: &mut Watch,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<Event<T>, End<T>>> {
    if let Some(event) = slot.event.take() {
        if event.is_done() {
            return Poll::Ready(Err(End::Done(event)));
        }
        return Poll::Ready(Ok(event));
    }
    watch.park(cx).map(|err| Err(End::Parked(err)))
}

/// Ends the stream, once the body is dropped: drops the slot's leftovers, and yields the
/// terminal item.
#[cold]
#[inline(never)]
fn finish<T>(
    slot: &Slot<T>,
    watch: &mut Watch,
    end: End<T>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    let context_error = watch.finish(matches!(end, End::Context));
    drop(slot.data.take());
    drop(slot.event.take());
    Poll::Ready(Some(match end {
        End::Returned(Ok(Some(value))) => Ok(Event::done_with(value)),
        End::Returned(Ok(None)) => Ok(Event::done()),
        End::Returned(Err(err)) | End::Parked(err) => Err(err),
        End::Done(event) => Ok(event),
        End::Context => Err(context_error.unwrap_or_else(Error::cancelled)),
    }))
}
