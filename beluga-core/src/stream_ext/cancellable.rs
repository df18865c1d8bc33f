use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::context::Cancelled;
use crate::context::Context;
use crate::error::Error;
use crate::event::Event;

/// How many polls pass between two clock reads when the context has a deadline. A clock read
/// costs about as much as twenty items; every 32nd poll keeps it under one nanosecond per item
/// while a deadline still fires in a consumer that never yields to the runtime.
const CLOCK_EVERY: u32 = 32;

pin_project! {
    #[project = CancellableProj]
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
        until_clock: u32,
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
            // The first poll reads the clock: a deadline that has already passed ends the
            // stream before the source is polled.
            until_clock: 1,
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

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        // The hot path: one atomic load, and with a deadline a countdown to the next clock read.
        if this.ctx.is_cancelled()
            || (*this.observe && clock_due(this.until_clock) && this.ctx.check_deadline())
        {
            return end(this, None);
        }
        match stream.poll_next(cx) {
            Poll::Ready(Some(Ok(ev))) if !ev.is_done() => Poll::Ready(Some(Ok(ev))),
            Poll::Ready(Some(terminal)) => after_terminal(this, terminal),
            Poll::Ready(None) => source_ended(this),
            Poll::Pending => park(this, cx),
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

/// Counts down to the next clock read; `true` when it is due.
#[inline]
fn clock_due(until_clock: &mut u32) -> bool {
    *until_clock -= 1;
    if *until_clock == 0 {
        *until_clock = CLOCK_EVERY;
        true
    } else {
        false
    }
}

/// The context has ended: drop the source now, in this poll, whatever it is parked on, and
/// end with the context's error.
#[cold]
#[inline(never)]
fn end<S, T>(
    mut this: CancellableProj<'_, S>,
    error: Option<Error>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    let error = error.unwrap_or_else(|| this.ctx.error().unwrap_or_else(Error::cancelled));
    this.stream.set(None);
    *this.parked = None;
    Poll::Ready(Some(Err(error)))
}

/// The source yielded its terminal item (`done` or `Err`): pass it on and drop the source, so
/// the stream has exactly one terminal item whatever the source does next.
#[cold]
#[inline(never)]
fn after_terminal<S, T>(
    mut this: CancellableProj<'_, S>,
    terminal: Result<Event<T>, Error>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    this.stream.set(None);
    *this.parked = None;
    Poll::Ready(Some(terminal))
}

#[cold]
#[inline(never)]
fn source_ended<S, T>(mut this: CancellableProj<'_, S>) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    this.stream.set(None);
    *this.parked = None;
    Poll::Ready(None)
}

/// The source is pending: wait for it or for the context, whichever comes first. Kept out of
/// line so the ready path stays small enough to inline into the consumer.
#[inline(never)]
fn park<S, T>(
    this: CancellableProj<'_, S>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    let parked = this.parked.get_or_insert_with(|| this.ctx.cancelled());
    match Pin::new(parked).poll(cx) {
        Poll::Ready(err) => end(this, Some(err)),
        Poll::Pending => Poll::Pending,
    }
}

impl<S, T> FusedStream for Cancellable<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none()
    }
}
