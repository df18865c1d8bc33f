// Over 500 lines: the producer stream and its slot are the unsafe core of the crate, kept in one
// file so that every use of the slot and its safety argument can be read together.
//! The stream behind `#[stream_producer]`: a pinned stream that owns a slot and the body, and
//! hands the body a [`Yielder`] pointing at that slot.
//!
//! How one item travels: the body calls `yielder.value(x).await`; `value` puts `x` in the slot
//! and the returned future is `Pending` once. [`Producer::poll_next`] sees the body pending
//! with a full slot, takes the payload out and returns it as `Event::data(x)`; the next poll
//! resumes the body. No thread-local per item (one hands the body the slot's address when it
//! starts), no waker trick, no allocation per item: the slot lives inside the pinned stream.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};

use crate::context::watch;
use crate::context::{Cancelled, Context};
use crate::error::{Error, ErrorCode};
use crate::event::{Event, Yielded};

const UNSTARTED: u8 = 2;
const FINISHED: u8 = 4;

/// Where an emitted value waits for `poll_next`. `!Unpin`, so that a `&mut Producer` never
/// asserts uniqueness over it while the body holds a pointer to it.
struct Slot<T> {
    data: Cell<Option<T>>,
    // An emitted event, or the terminal item of a body that has returned.
    event: Cell<Option<Result<Event<T>, Error>>>,
    _pinned: PhantomPinned,
}

thread_local! {
    /// The slot of the producer whose body is about to be polled for the first time: set by the
    /// producer right before that poll, taken by [`YieldHandle::bind`], the body's first
    /// statement. Null at every other time, but when the context ends between the two (the
    /// body is then dropped unpolled): the producer clears it as it ends.
    static STARTING: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

impl<T> Slot<T> {
    /// The slot's address, as [`STARTING`] holds it.
    fn address(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }

    /// Puts the terminal item of a body that returned `result` where an emitted event waits.
    /// The slot holds no event then: an emitted event is taken when the body returns `Pending`
    /// in its `emit!`, before the body runs again (`debug_assert`ed). Nothing is dropped here:
    /// a drop would be a call the steady state has to keep its frame for (see
    /// `BodyFuture::poll_steady`).
    #[inline]
    fn returned(&self, result: Result<Option<T>, Error>) {
        let stale = self.event.replace(Some(match result {
            Ok(Some(value)) => Ok(Event::done_with(value)),
            Ok(None) => Ok(Event::done()),
            Err(err) => Err(err),
        }));
        debug_assert!(stale.is_none(), "an emitted event was not taken");
        std::mem::forget(stale);
    }
}

/// What a producer's body binds into its [`Yielder`] before anything else (see
/// [`YieldHandle::bind`]). Created with the rest of the producer by [`Core::start`], before the
/// body future that owns it, and handed the slot's address on the body's first poll, once the
/// producer is pinned.
pub struct YieldHandle<T> {
    // Invariant in `T`: a handle for `&'static str` must never accept a `&'short str`
    // (a shorter-lived value must never be stored where a longer-lived one is read).
    _invariant: PhantomData<fn(T) -> T>,
}

impl<T> YieldHandle<T> {
    /// A handle, not yet bound: [`Core::start`] makes one with each producer, and the fallback
    /// of a producer with errors one for a body that is never polled.
    #[must_use]
    pub fn unbound() -> Self {
        YieldHandle {
            _invariant: PhantomData,
        }
    }

    /// The body's yielder, borrowing `anchor`, a local of the body future: whatever user code
    /// does with the yielder (a macro may move it into a nested `async move` block), it cannot
    /// outlive that local, so it never leaves the body future.
    ///
    /// # Safety
    ///
    /// The first statement of a body run by [`Producer::stream`] with the [`Core`] this handle
    /// came with: it takes the address of the slot its producer left in a thread-local right
    /// before polling the body for the first time.
    #[inline]
    pub unsafe fn bind(self, _anchor: &mut Anchor) -> Yielder<'_, T> {
        let slot = STARTING.with(|starting| starting.replace(std::ptr::null()));
        debug_assert!(
            !slot.is_null(),
            "a yield handle bound outside its body's first poll"
        );
        Yielder {
            slot: slot.cast(),
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

// SAFETY: a yielder is a pointer to its producer's slot, used only by the body future (bound
// there), and the body is only polled from `Producer::poll_next`, which has exclusive access to
// the producer. Sending the body to another thread sends the producer (and the slot) with it,
// and the slot is never accessed from two threads at once. Not `Sync`.
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
            Yielded::Event(event) => slot.event.set(Some(Ok(event))),
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

/// The stream `#[stream_producer]` returns.
///
/// Every producer is a type of its own, and each function generic over its body is built once
/// per producer. So only two small ones are, besides the body's own poll and drop, as provided
/// methods of `BodyFuture` (built with the producer, in its crate's codegen unit): `poll_steady`
/// ([`Stream::poll_next`]: the steady state, inlining the body's poll) and `slow` (every other
/// state, and the end, which drops the body). Everything else (the gate that starts the body
/// and watches the context and the clock, parking, the terminal item) lives in functions that
/// depend on the payload type only, built once per payload type.
#[must_use = "streams do nothing unless polled"]
pub struct Producer<T, Fut> {
    // Structurally pinned; `None` once the stream has ended. Created before the producer, and
    // handed its slot's address on its first poll (see `YieldHandle::bind`). Declared before the
    // slot so that it is dropped first: nothing the body owns may outlive the slot its yielder
    // points at.
    body: Option<Fut>,
    core: Core<T>,
}

/// Everything of a producer but its body, in one value: one call creates it (with the body's
/// [`YieldHandle`], before the body), one call drops it.
pub struct Core<T> {
    slot: Slot<T>,
    watch: Watch,
}

/// The item of a producer.
type Item<T> = Result<Event<T>, Error>;

/// What a producer watches: its context, and the state of the gate in front of its body.
struct Watch {
    ctx: Context,
    parked: Option<Cancelled>,
    // Polls left before `gate` runs: the clock's countdown in the steady state (`CLOCK_EVERY`
    // with a deadline or token to watch, else `u32::MAX`), and 1 in every other state, so that
    // the steady state's only tests are this countdown and the context's atomic load.
    until_clock: u32,
    observe: bool,
    mode: u8,
}

/// What the slow path decided (see `Core::step`).
enum Step<T> {
    /// Poll the body: the steady state again.
    Resume,
    /// Hand this to the consumer.
    Return(Poll<Option<Item<T>>>),
    /// Drop the body, then end the stream with this.
    End(End<T>),
}

/// How a stream ends, before its terminal item is built.
enum End<T> {
    /// The body emitted a `done` event, or returned.
    Done(Event<T>),
    /// The body returned an error, or the context ended while the body was parked.
    Failed(Error),
    /// The context has ended.
    Context,
}

impl<T, Fut> Producer<T, Fut>
where
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    /// A producer that runs `body`, with `core` (which watches the context), behind an opaque
    /// type: a diagnostic about the stream (a body that is not `Send`, say) names
    /// `impl Stream<...>`, not the producer's generated future type.
    ///
    /// # Safety
    ///
    /// `core` comes from the [`Core::start`] whose handle `body` owns, and the first thing
    /// `body` does when polled is to bind that handle ([`YieldHandle::bind`]). The [`Yielder`] it
    /// binds must only be used by `body`, and must not be moved out of it or outlive it.
    /// `#[stream_producer]` guarantees this by binding the yielder to a local of the body future
    /// (so it cannot outlive the body), under names user code cannot spell.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "instantiated once per producer: inlined, it is no function of its own to build"
    )]
    pub unsafe fn stream(
        core: Core<T>,
        body: Fut,
    ) -> impl FusedStream<Item = Result<Event<T>, Error>> {
        // Nothing here can unwind: the producer's function has no cleanup path for the body.
        Producer {
            body: Some(body),
            core,
        }
    }
}

impl<T, Fut> Stream for Producer<T, Fut>
where
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    type Item = Result<Event<T>, Error>;

    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "a call of `BodyFuture::poll_steady`, which holds the code (see `BodyFuture`)"
    )]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // SAFETY: nothing is moved out of the producer: the body is only polled in place and
        // dropped in place (by assigning `None`), and the slot is only used through shared
        // references.
        Fut::poll_steady(unsafe { self.get_unchecked_mut() }, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.core.watch.size_hint()
    }
}

impl<T, Fut> FusedStream for Producer<T, Fut>
where
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.core.watch.is_finished()
    }
}

impl<T, Fut> fmt::Debug for Producer<T, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("started", &(self.core.watch.mode & UNSTARTED == 0))
            .field("finished", &self.core.watch.is_finished())
            .field("ctx", &self.core.watch.ctx)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("ctx", &self.watch.ctx)
            .finish_non_exhaustive()
    }
}

impl<T> Core<T> {
    /// The producer's core, watching a clone of `ctx`, and the handle its body binds (of the
    /// same payload type).
    #[must_use]
    pub fn start(ctx: &Context) -> (Self, YieldHandle<T>) {
        let core = Core {
            slot: Slot {
                data: Cell::new(None),
                event: Cell::new(None),
                _pinned: PhantomPinned,
            },
            watch: Watch::new(ctx.clone()),
        };
        (core, YieldHandle::unbound())
    }

    /// Every state but the steady one: not started, finished, a deadline to watch, cancelled.
    /// Before the body's first poll, leaves the slot's address where the body's first statement
    /// takes it (see [`YieldHandle::bind`]). Inlined into each producer's `slow` in optimized
    /// builds: a deadline's clock read every `CLOCK_EVERY` polls then costs no call of its own.
    #[inline]
    fn gate(&mut self) -> Step<T> {
        let watch = &mut self.watch;
        if watch.is_finished() {
            watch.until_clock = 1;
            return Step::Return(Poll::Ready(None));
        }
        if watch.until_clock == 0 {
            watch.until_clock = watch::rearm(watch.observe);
            if watch.observe && watch.ctx.check_deadline() {
                return Step::End(End::Context);
            }
        }
        if watch.ctx.is_cancelled() {
            return Step::End(End::Context);
        }
        if watch.mode & UNSTARTED != 0 {
            // The countdown was re-armed above: an unstarted producer's only way here past the
            // cancellation check is its countdown reaching 0.
            watch.mode &= !UNSTARTED;
            let slot = self.slot.address();
            STARTING.with(|starting| starting.set(slot));
        }
        // The steady state's poll that follows counts down once more.
        watch.until_clock = watch.until_clock.saturating_add(1);
        Step::Resume
    }

    /// What `BodyFuture::slow` does, but for what needs the body's type (polling or dropping
    /// it). Inlined into each producer's `slow` in optimized builds; one function per payload
    /// type in unoptimized ones.
    #[inline]
    fn step(&mut self, cx: &mut TaskContext<'_>, slow: Slow) -> Step<T> {
        match slow {
            Slow::Gate => self.gate(),
            Slow::Pending => self.pending(cx),
        }
    }

    /// The body is pending without a payload in the slot (an emitted event, or the body is
    /// parked), or it has returned (its terminal item in the slot).
    #[inline(never)]
    fn pending(&mut self, cx: &mut TaskContext<'_>) -> Step<T> {
        match self.slot.event.take() {
            Some(Ok(event)) if !event.is_done() => Step::Return(Poll::Ready(Some(Ok(event)))),
            Some(Ok(done)) => Step::End(End::Done(done)),
            Some(Err(err)) => Step::End(End::Failed(err)),
            None => match self.watch.park(cx) {
                Poll::Ready(err) => Step::End(End::Failed(err)),
                Poll::Pending => Step::Return(Poll::Pending),
            },
        }
    }

    /// Ends a stream whose body's destructor panicked as the stream ended: the terminal item the
    /// panic took away becomes an error.
    #[cold]
    #[inline(never)]
    fn dropped_in_panic(&mut self) -> Poll<Option<Item<T>>> {
        let err = Error::new(
            ErrorCode::Internal,
            "the producer's body panicked while it was dropped",
        );
        self.finish(End::Failed(err))
    }

    /// Ends the stream, once the body is dropped: drops the slot's leftovers, and yields the
    /// terminal item.
    #[cold]
    #[inline(never)]
    fn finish(&mut self, end: End<T>) -> Poll<Option<Item<T>>> {
        // The gate may have left this slot's address for a body that was never polled.
        let slot = self.slot.address();
        STARTING.with(|starting| {
            if starting.get() == slot {
                starting.set(std::ptr::null());
            }
        });
        let context_error = self.watch.finish(matches!(end, End::Context));
        drop(self.slot.data.take());
        drop(self.slot.event.take());
        Poll::Ready(Some(match end {
            End::Done(event) => Ok(event),
            End::Failed(err) => Err(err),
            End::Context => Err(context_error.unwrap_or_else(Error::cancelled)),
        }))
    }
}

impl Watch {
    fn new(ctx: Context) -> Self {
        Watch {
            observe: ctx.needs_observing(),
            mode: UNSTARTED,
            ctx,
            parked: None,
            // The first poll goes to the gate, which starts the body, and reads the clock first:
            // a deadline that has already passed ends the producer before its body runs.
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

/// The countdown of [`Watch::until_clock`]; true when the gate is due: the clock with a
/// deadline or token, every 2^32 polls without, and at once in any state but the steady one.
// `inline`, not `inline(always)`: optimized, it is inlined all the same; unoptimized, it is one
// call instead of a copy in every producer.
#[inline]
fn countdown(until_clock: &mut u32) -> bool {
    *until_clock = until_clock.wrapping_sub(1);
    *until_clock == 0
}

/// The functions of a producer that depend on its body's type, as provided methods of a trait
/// every body future implements. rustc generates an instance of a provided method in the
/// codegen unit of its `Self` type, here the async block the expansion wrote in the user's
/// module: so each producer's code sits with that producer, and an incremental rebuild after one
/// producer changed generates that one again, not every producer of the crate (as it would if
/// they were functions of this module, whose instances share one codegen unit).
trait BodyFuture<T>: Future<Output = Result<Option<T>, Error>> + Sized {
    /// [`Stream::poll_next`]: the steady state, and the way to every other. Every way out of
    /// the steady state is a call of `slow` in tail position with nothing of this function's
    /// frame handed over, so that the steady state saves no register for after a call.
    #[inline]
    fn poll_steady(
        this: &mut Producer<T, Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Item<T>>> {
        // `until_clock` is also the gate of every other state: whenever `mode` is not the steady
        // state, it is 1, so this countdown sends the poll to the gate.
        if this.core.watch.ctx.is_cancelled() || countdown(&mut this.core.watch.until_clock) {
            return Self::slow(this, cx, Slow::Gate);
        }
        let Some(body) = &mut this.body else {
            // The body is gone: its destructor panicked as the stream ended (an ended stream's
            // countdown sends every poll to the gate). The stream still ends with one terminal
            // item.
            return this.core.dropped_in_panic();
        };
        // SAFETY: the body is pinned with the producer (see `Stream::poll_next`).
        match unsafe { Pin::new_unchecked(body) }.poll(cx) {
            Poll::Pending => {
                if let Some(payload) = this.core.slot.data.take() {
                    return Poll::Ready(Some(Ok(Event::data(payload))));
                }
            }
            // The terminal item waits where an emitted event does, so that nothing of this
            // frame is handed to `slow`.
            Poll::Ready(result) => this.core.slot.returned(result),
        }
        Self::slow(this, cx, Slow::Pending)
    }

    /// Every state but the steady one (`Slow::Gate`), and a body pending without a payload in
    /// the slot or returned (`Slow::Pending`). Ending drops the body (running its destructors)
    /// first, then the rest.
    #[inline(never)]
    fn slow(
        this: &mut Producer<T, Self>,
        cx: &mut TaskContext<'_>,
        slow: Slow,
    ) -> Poll<Option<Item<T>>> {
        match this.core.step(cx, slow) {
            Step::Resume => Self::poll_steady(this, cx),
            Step::Return(poll) => poll,
            Step::End(end) => {
                this.body = None;
                this.core.finish(end)
            }
        }
    }
}

impl<T, Fut> BodyFuture<T> for Fut where Fut: Future<Output = Result<Option<T>, Error>> {}

/// Why `BodyFuture::slow` is called.
#[derive(Clone, Copy)]
enum Slow {
    /// The countdown ran out, or the context is cancelled.
    Gate,
    /// The body is pending without a payload, or it has returned.
    Pending,
}
