use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::context::watch;
use crate::context::{Cancelled, Context};
use crate::error::Error;
use crate::event::Event;

pin_project! {
    /// Stream for the [`cancellable`](crate::EventStreamExt::cancellable) method.
    ///
    /// Ends the source with the `cancelled` or `deadline_exceeded` error as soon as the
    /// [`Context`] ends, and drops the source in that same poll, even if the source is parked
    /// in a future that never completes.
    #[must_use = "streams do nothing unless polled"]
    pub struct Cancellable<S> {
        #[pin]
        stream: Option<S>,
        ctx: Context,
        // Registered only once the source returns `Pending`: the ready path is one atomic load.
        parked: Option<Cancelled>,
        // The context's error, from the moment the source is dropped for it until the same
        // poll returns it.
        error: Option<Error>,
        // Counts polls down to the next one that goes through `pass_gate`: the first poll, then
        // every `CLOCK_EVERY` polls when `observe` (otherwise every `u32::MAX` polls).
        gate: u32,
        // The context has a deadline or a token: read them every `CLOCK_EVERY` polls.
        observe: bool,
    }
}

impl<S> Cancellable<S> {
    pub(crate) fn new(stream: S, ctx: &Context) -> Self {
        Cancellable {
            stream: Some(stream),
            ctx: ctx.clone(),
            parked: None,
            error: None,
            // The first poll reads the clock: a deadline that has already passed ends the
            // stream before the source is polled.
            gate: 1,
            observe: ctx.needs_observing(),
        }
    }

    /// The underlying stream, or `None` once it has ended or been dropped.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let ctx = Context::new();
    /// let mut s = stream::iter([1, 2]).cancellable(&ctx);
    /// assert!(s.get_ref().is_some());
    /// ```
    pub fn get_ref(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The underlying stream, mutably, or `None` once it has ended or been dropped.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let ctx = Context::new();
    /// let mut s = stream::iter([1, 2]).cancellable(&ctx);
    /// assert!(s.get_mut().is_some());
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// The underlying stream, pinned and mutably, or `None` once it has ended or been dropped.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let ctx = Context::new();
    /// let mut s = stream::iter([1, 2]).cancellable(&ctx);
    /// assert!(std::pin::Pin::new(&mut s).get_pin_mut().is_some());
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut S>> {
        self.project().stream.as_pin_mut()
    }

    /// The underlying stream, if it has not ended or been dropped.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let ctx = Context::new();
    /// let mut s = stream::iter([1, 2]).cancellable(&ctx);
    /// assert!(s.into_inner().is_some());
    /// ```
    pub fn into_inner(self) -> Option<S> {
        self.stream
    }

    /// The context this stream watches.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let ctx = Context::new();
    /// let mut s = stream::iter([1, 2]).cancellable(&ctx);
    /// assert!(!s.context().is_cancelled());
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl<S: fmt::Debug> fmt::Debug for Cancellable<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("stream", &self.stream)
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl<S, T> Stream for Cancellable<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    type Item = Result<Event<T>, Error>;

    /// The hot path: one atomic load, one countdown and the source's poll, small enough to
    /// inline into the consumer. The gate's checks, parking and dropping the source are out of
    /// line; none of them returns an item, so every item returned here is built where the
    /// optimizer can see its kind (and the consumer's `match` on it folds away).
    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.as_mut().project();
        *this.gate -= 1;
        if *this.gate == 0 || this.ctx.is_cancelled() {
            pass_gate(self.as_mut());
        }
        let this = self.as_mut().project();
        let Some(stream) = this.stream.as_pin_mut() else {
            return Poll::Ready(this.error.take().map(Err));
        };
        match stream.poll_next(cx) {
            Poll::Ready(Some(Ok(ev))) if !ev.is_done() => Poll::Ready(Some(Ok(ev))),
            Poll::Pending => {
                if park(self.as_mut(), cx) {
                    Poll::Ready(self.project().error.take().map(Err))
                } else {
                    Poll::Pending
                }
            }
            // A terminal item (`done` or `Err`), or the end of the source.
            item @ Poll::Ready(_) => {
                // No landing pad to drop `item` if `finish` unwinds (one on this path keeps the
                // adapter from inlining): `finish` returns a panic instead, and `rethrow`
                // drops the item before unwinding on.
                let item = ManuallyDrop::new(item);
                if let Err(panic) = finish(self) {
                    rethrow(ManuallyDrop::into_inner(item), panic);
                }
                ManuallyDrop::into_inner(item)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            None => (0, Some(0)),
            Some(stream) => {
                // Cancellation can cut the stream short at any point, and may add one error.
                let (_, upper) = stream.size_hint();
                (0, upper.and_then(|n| n.checked_add(1)))
            }
        }
    }
}

/// The gate is due (the first poll, a clock read) or the context has ended: checks the
/// context, with a clock read if it has a deadline or a token, and re-arms the gate.
#[inline(never)]
fn pass_gate<S>(mut this: Pin<&mut Cancellable<S>>) {
    let proj = this.as_mut().project();
    *proj.gate = watch::rearm(*proj.observe);
    if proj.stream.is_some() && watch::has_ended(proj.ctx, *proj.observe) {
        end(this, None);
    }
}

/// The context has ended: drop the source now, in this poll, whatever it is parked on, and
/// keep the context's error (or `error`, if given) for the caller to return.
#[cold]
#[inline(never)]
fn end<S>(this: Pin<&mut Cancellable<S>>, error: Option<Error>) {
    let error = error.unwrap_or_else(|| this.ctx.error().unwrap_or_else(Error::cancelled));
    let mut this = this.project();
    this.stream.set(None);
    *this.parked = None;
    *this.error = Some(error);
}

/// The source is pending: wait for the context too. Returns whether it has ended (the source
/// is then dropped and the error kept).
#[inline(never)]
fn park<S>(mut this: Pin<&mut Cancellable<S>>, cx: &mut TaskContext<'_>) -> bool {
    let proj = this.as_mut().project();
    match watch::park(proj.parked, proj.ctx, cx) {
        Poll::Ready(error) => {
            end(this, Some(error));
            true
        }
        Poll::Pending => false,
    }
}

/// The source yielded a terminal item (`done` or `Err`) or ended: drop it, so that the stream
/// has exactly one terminal item whatever the source does next. A panic from the source's
/// destructor comes back as `Err`, for the caller to drop the item it holds and resume
/// unwinding ([`rethrow`]).
#[inline(never)]
fn finish<S>(this: Pin<&mut Cancellable<S>>) -> Result<(), Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        let mut this = this.project();
        this.stream.set(None);
        *this.parked = None;
    }))
}

/// Dropping the source panicked: drop the item that came before, then go on unwinding.
#[cold]
#[inline(never)]
fn rethrow<I>(item: I, panic: Box<dyn Any + Send>) -> ! {
    drop(item);
    panic::resume_unwind(panic)
}

impl<S, T> FusedStream for Cancellable<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none()
    }
}
