use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::Span;
use tracing::subscriber::NoSubscriber;

use crate::context::Context;
use crate::error::Error;
use crate::event::{Event, EventKind};
use crate::trace::{Outcome, StreamSpan};

pin_project! {
    /// Stream for the [`traced`](crate::EventStreamExt::traced) and
    /// [`traced_with`](crate::EventStreamExt::traced_with) methods.
    #[must_use = "streams do nothing unless polled"]
    pub struct Traced<S, R> {
        #[pin]
        stream: S,
        recorder: R,
        state: State,
    }
}

/// Where the span of a traced stream is.
enum State {
    /// Not polled yet: what opening the span needs.
    Unopened { ctx: Context, parent: Span },
    /// Polled, and a subscriber wants the span.
    Open(Open),
    /// The span is closed, or no subscriber wanted it: the stream passes through.
    Closed,
}

/// An open span and what it has counted.
struct Open {
    span: Span,
    first_poll: Instant,
    items: u64,
    error_events: u64,
}

impl Open {
    /// Notes one poll's item; `Some` when the item ends the stream.
    fn observe<T, R: StreamSpan<T>>(
        &mut self,
        item: Option<&Result<Event<T>, Error>>,
        recorder: &mut R,
    ) -> Option<Outcome> {
        let Some(item) = item else {
            return Some(Outcome::Ended);
        };
        if self.items == 0 {
            let elapsed = self.first_poll.elapsed();
            self.span.record(
                "beluga.time_to_first_item_ms",
                elapsed.as_secs_f64() * 1_000.0,
            );
        }
        self.items = self.items.saturating_add(1);
        match item {
            Ok(event) => {
                recorder.on_event(&self.span, event);
                match event.kind() {
                    EventKind::Done(_) => Some(Outcome::Done),
                    EventKind::Error(err) => {
                        self.error_events = self.error_events.saturating_add(1);
                        tracing::warn!(parent: &self.span, error.type = err.code().as_str(), "{err}");
                        None
                    }
                    _ => None,
                }
            }
            Err(err) => {
                self.span.record("error.type", err.code().as_str());
                self.span.record("otel.status_code", "error");
                self.span
                    .record("otel.status_message", tracing::field::display(err));
                Some(Outcome::Error)
            }
        }
    }

    /// Records the counts and the outcome, and closes the span.
    fn close(mut self, outcome: Outcome) {
        self.record_end(outcome);
    }

    fn record_end(&mut self, outcome: Outcome) {
        let span = std::mem::replace(&mut self.span, Span::none());
        span.record("beluga.items", self.items);
        span.record("beluga.error_events", self.error_events);
        span.record("beluga.outcome", outcome.as_str());
    }
}

impl Drop for Open {
    /// A span still open when the stream is dropped: the consumer went away.
    fn drop(&mut self) {
        if !self.span.is_none() {
            self.record_end(Outcome::Dropped);
        }
    }
}

impl<S, R> Traced<S, R> {
    pub(crate) fn new(stream: S, recorder: R, ctx: &Context) -> Self {
        Traced {
            stream,
            recorder,
            state: State::Unopened {
                ctx: ctx.clone(),
                parent: Span::current(),
            },
        }
    }

    /// The underlying stream.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let s = stream::iter([1, 2]).traced("numbers", &Context::new());
    /// assert_eq!(s.get_ref().size_hint(), (3, Some(3)));
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Items pulled from it directly are not traced.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let mut s = stream::iter([1, 2]).traced("numbers", &Context::new());
    /// let _inner = s.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The underlying stream, pinned and mutably.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let mut s = stream::iter([1, 2]).traced("numbers", &Context::new());
    /// let _inner = std::pin::Pin::new(&mut s).get_pin_mut();
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// The span's recorder: a [`NamedSpan`](crate::trace::NamedSpan) for
    /// [`traced`](crate::EventStreamExt::traced).
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// let s = stream::iter([1, 2]).traced("numbers", &Context::new());
    /// assert_eq!(s.recorder().name(), "numbers");
    /// ```
    pub fn recorder(&self) -> &R {
        &self.recorder
    }

    /// The underlying stream, dropping the recorder; a span already open closes as if the
    /// stream had been dropped.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let s = stream::iter([1, 2]).traced("numbers", &Context::new());
    /// assert_eq!(s.into_inner().size_hint(), (3, Some(3)));
    /// ```
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: fmt::Debug, R> fmt::Debug for Traced<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Unopened { .. } => "unopened",
            State::Open(_) => "open",
            State::Closed => "closed",
        };
        f.debug_struct("Traced")
            .field("stream", &self.stream)
            .field("span", &state)
            .finish_non_exhaustive()
    }
}

impl<S, R, T> Stream for Traced<S, R>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    R: StreamSpan<T>,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        // The stream passes through once its span is closed or unwanted.
        if let State::Closed = this.state {
            return this.stream.poll_next(cx);
        }
        poll_traced(this.stream, this.recorder, this.state, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

/// Whether a subscriber wants `span`. A thread without a subscriber may still get an enabled
/// span, from its `NoSubscriber`, when another thread has a scoped one (`tracing` caches a
/// callsite's interest across threads): that span is not wanted either.
fn is_wanted(span: &Span) -> bool {
    span.with_subscriber(|(_, dispatch)| !dispatch.is::<NoSubscriber>())
        .unwrap_or(false)
}

/// A poll while the span is unopened or open (out of line: the pass-through above stays small).
#[inline(never)]
fn poll_traced<S, R, T>(
    stream: Pin<&mut S>,
    recorder: &mut R,
    state: &mut State,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    R: StreamSpan<T>,
{
    if let State::Unopened { ctx, parent } = &*state {
        let span = {
            let _parent = parent.enter();
            recorder.open(ctx)
        };
        *state = if is_wanted(&span) {
            State::Open(Open {
                span,
                first_poll: Instant::now(),
                items: 0,
                error_events: 0,
            })
        } else {
            State::Closed
        };
    }
    let State::Open(open) = state else {
        return stream.poll_next(cx);
    };
    let item = {
        let _entered = open.span.enter();
        ready!(stream.poll_next(cx))
    };
    if let Some(outcome) = open.observe(item.as_ref(), recorder) {
        if let State::Open(open) = std::mem::replace(state, State::Closed) {
            open.close(outcome);
        }
    }
    Poll::Ready(item)
}

impl<S, R, T> FusedStream for Traced<S, R>
where
    S: FusedStream<Item = Result<Event<T>, Error>>,
    R: StreamSpan<T>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}
