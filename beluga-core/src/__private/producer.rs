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
use pin_project_lite::pin_project;

use crate::context::{Cancelled, Context};
use crate::error::Error;
use crate::event::{Event, Yielded};

/// How many polls pass between two clock reads when the context has a deadline or a token.
const CLOCK_EVERY: u32 = 32;
const UNSTARTED: u8 = 2;
const FINISHED: u8 = 4;

pin_project! {
    /// Where an emitted value waits for `poll_next`. `!Unpin`, so that a `&mut Producer` never
    /// asserts uniqueness over it while the body holds a pointer to it.
    struct Slot<T> {
        data: Cell<Option<T>>,
        event: Cell<Option<Event<T>>>,
        #[pin]
        _pinned: PhantomPinned,
    }
}

/// What a producer hands its body: the address of its slot, which the body binds into a
/// [`Yielder`] before anything else (see [`YieldHandle::bind`]).
pub struct YieldHandle<T> {
    slot: *const Slot<T>,
    // Invariant in `T`: a handle for `&'static str` must never accept a `&'short str`
    // (the shape of async-stream issue #107).
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
    // (the shape of async-stream issue #107).
    _invariant: PhantomData<fn(T) -> T>,
}

// SAFETY: as for `YieldHandle`: the body future is the yielder's only user, and it is only
// polled with exclusive access to the producer that owns the slot. Not `Sync`.
unsafe impl<T: Send> Send for Yielder<'_, T> {}

impl<T> Yielder<'_, T> {
    /// Emits `value` (see [`IntoEvent`](crate::IntoEvent)).
    #[inline]
    pub fn value(&mut self, value: Yielded<T>) -> Yield<'_> {
        // SAFETY: `Producer::new`'s contract: the slot is alive and pinned, and while the body
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

pin_project! {
    #[project = ProducerProj]
    /// The stream `#[stream_producer]` returns.
    #[must_use = "streams do nothing unless polled"]
    pub struct Producer<T, F, Fut> {
        // The body, created on the first poll (the slot's address is fixed only once pinned).
        // Declared before the slot so that it is dropped first: nothing the body owns may
        // outlive the slot its yielder points at.
        init: Option<F>,
        #[pin]
        body: Option<Fut>,
        #[pin]
        slot: Slot<T>,
        ctx: Context,
        parked: Option<Cancelled>,
        // Polls left before `poll_slow` runs: the clock's countdown in the steady state
        // (`CLOCK_EVERY` with a deadline or token to watch, else `u32::MAX`), and 1 in every
        // other state, so that the steady state's only tests are this countdown and the
        // context's atomic load.
        until_clock: u32,
        observe: bool,
        mode: u8,
    }
}

impl<T, F, Fut> Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    /// A producer that runs `body` and watches `ctx`.
    ///
    /// # Safety
    ///
    /// The [`YieldHandle`] passed to `body`, and the [`Yielder`] bound from it, must only be
    /// used by the future `body` returns, and must not be moved out of it or outlive it.
    /// `#[stream_producer]` guarantees this by binding the yielder to a local of the body future
    /// (so it cannot outlive the body), under names user code cannot spell.
    pub unsafe fn new(ctx: Context, body: F) -> Self {
        Producer {
            slot: Slot {
                data: Cell::new(None),
                event: Cell::new(None),
                _pinned: PhantomPinned,
            },
            init: Some(body),
            body: None,
            observe: ctx.needs_observing(),
            mode: UNSTARTED,
            ctx,
            parked: None,
            // The first poll goes to `poll_slow`, which starts the body, and reads the clock
            // first: a deadline that has already passed ends the producer before its body runs.
            until_clock: 1,
        }
    }
}

impl<T, F, Fut> Stream for Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.as_mut().project();
        // `until_clock` is also the gate of every other state: whenever `mode` is not the
        // steady state, it is 1, so this countdown sends the poll to `poll_slow`.
        if this.ctx.is_cancelled() || countdown(this.until_clock) {
            return poll_slow(self, cx);
        }
        resume(self, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.mode & FINISHED != 0 {
            (0, Some(0))
        } else {
            (0, None)
        }
    }
}

impl<T, F, Fut> FusedStream for Producer<T, F, Fut>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.mode & FINISHED != 0
    }
}

impl<T, F, Fut> fmt::Debug for Producer<T, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("started", &self.init.is_none())
            .field("finished", &(self.mode & FINISHED != 0))
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

/// Counts a poll down; true when `poll_slow` is due: the clock with a deadline or token, every
/// 2^32 polls without, and at once in any state but the steady one (see `until_clock`).
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn countdown(until_clock: &mut u32) -> bool {
    *until_clock = until_clock.wrapping_sub(1);
    *until_clock == 0
}

/// Everything but the steady state: not started, finished, a deadline to watch, cancelled.
#[inline(never)]
fn poll_slow<T, F, Fut>(
    mut this: Pin<&mut Producer<T, F, Fut>>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    F: FnOnce(YieldHandle<T>) -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let mut proj = this.as_mut().project();
    if *proj.mode & FINISHED != 0 {
        *proj.until_clock = 1;
        return Poll::Ready(None);
    }
    if *proj.until_clock == 0 {
        *proj.until_clock = if *proj.observe { CLOCK_EVERY } else { u32::MAX };
        if *proj.observe && proj.ctx.check_deadline() {
            return finish(this, Err(None));
        }
    }
    if proj.ctx.is_cancelled() {
        return finish(this, Err(None));
    }
    if *proj.mode & UNSTARTED != 0 {
        // The countdown was re-armed above: an unstarted producer's only way here past the
        // cancellation check is its countdown reaching 0.
        *proj.mode &= !UNSTARTED;
        let slot: &Slot<T> = proj.slot.as_ref().get_ref();
        if let Some(init) = proj.init.take() {
            let handle = YieldHandle {
                slot: std::ptr::from_ref(slot),
                _invariant: PhantomData,
            };
            proj.body.set(Some(init(handle)));
        }
    }
    resume(this, cx)
}

/// The steady state: resume the body, hand out what it emitted.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "the per-item fast path; measured in benches/producer.rs"
)]
fn resume<T, F, Fut>(
    mut this: Pin<&mut Producer<T, F, Fut>>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let proj = this.as_mut().project();
    let slot: &Slot<T> = proj.slot.as_ref().get_ref();
    let Some(body) = proj.body.as_pin_mut() else {
        return ended(this);
    };
    match body.poll(cx) {
        Poll::Pending => {
            if let Some(payload) = slot.data.take() {
                return Poll::Ready(Some(Ok(Event::data(payload))));
            }
            pending_slow(this, cx)
        }
        Poll::Ready(result) => complete(this, result),
    }
}

#[inline(never)]
fn pending_slow<T, F, Fut>(
    this: Pin<&mut Producer<T, F, Fut>>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    let proj = this.project();
    let slot = proj.slot.as_ref().get_ref();
    if let Some(event) = slot.event.take() {
        if event.is_done() {
            return finish_proj(proj, Ok(Some(event)));
        }
        return Poll::Ready(Some(Ok(event)));
    }
    park(proj, cx)
}

#[cold]
#[inline(never)]
fn ended<T, F, Fut>(this: Pin<&mut Producer<T, F, Fut>>) -> Poll<Option<Result<Event<T>, Error>>> {
    finish_proj(this.project(), Err(None))
}

#[cold]
#[inline(never)]
fn complete<T, F, Fut>(
    this: Pin<&mut Producer<T, F, Fut>>,
    result: Result<Option<T>, Error>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    let terminal = match result {
        Ok(Some(value)) => Ok(Some(Event::done_with(value))),
        Ok(None) => Ok(Some(Event::done())),
        Err(err) => Err(Some(err)),
    };
    finish_proj(this.project(), terminal)
}

#[cold]
#[inline(never)]
fn finish<T, F, Fut>(
    this: Pin<&mut Producer<T, F, Fut>>,
    terminal: Result<Option<Event<T>>, Option<Error>>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    finish_proj(this.project(), terminal)
}

/// Ends the stream: drops the body (running its destructors) and the slot's leftovers, and
/// yields the terminal item. `Ok(event)` is a `done` event; `Err(None)` means the context ended.
#[inline]
fn finish_proj<T, F, Fut>(
    mut this: ProducerProj<'_, T, F, Fut>,
    terminal: Result<Option<Event<T>>, Option<Error>>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    this.body.set(None);
    *this.init = None;
    *this.parked = None;
    *this.mode = FINISHED;
    *this.until_clock = 1;
    let slot = this.slot.as_ref().get_ref();
    drop(slot.data.take());
    drop(slot.event.take());
    Poll::Ready(match terminal {
        Ok(done) => done.map(Ok),
        Err(Some(err)) => Some(Err(err)),
        Err(None) => Some(Err(this.ctx.error().unwrap_or_else(Error::cancelled))),
    })
}

/// The body is parked in an `.await` without yielding: wait for it or for the context.
#[inline(never)]
fn park<T, F, Fut>(
    this: ProducerProj<'_, T, F, Fut>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>> {
    let parked = this.parked.get_or_insert_with(|| this.ctx.cancelled());
    match Pin::new(parked).poll(cx) {
        Poll::Ready(err) => finish_proj(this, Err(Some(err))),
        Poll::Pending => Poll::Pending,
    }
}
