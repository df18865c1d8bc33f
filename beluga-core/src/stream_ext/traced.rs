use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::Span;
use tracing::subscriber::NoSubscriber;

use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::event::{Event, EventKind};
use crate::trace::{Outcome, StreamSpan};

pin_project! {
    /// Stream for the [`traced`](crate::EventStreamExt::traced) and
    /// [`traced_with`](crate::EventStreamExt::traced_with) methods.
    #[must_use = "streams do nothing unless polled"]
    pub struct Traced<S, R> {
        #[pin]
        stream: S,
        core: Core<R>,
    }
}

/// The recorder and where the span is. Dropping it while the span is open ends the span as
/// `dropped` (the consumer went away), with the recorder's last word.
struct Core<R> {
    recorder: R,
    state: State<R>,
}

/// Where the span of a traced stream is.
enum State<R> {
    /// Not polled yet: what opening the span needs.
    Unopened { ctx: Context, parent: Span },
    /// Polled, and a subscriber wants the span.
    Open(Open<R>),
    /// The span is closed, or no subscriber wanted it: the stream passes through.
    Closed,
}

/// An open span and what it has counted.
struct Open<R> {
    span: Span,
    first_poll: Instant,
    items: u64,
    error_events: u64,
    /// Whether the first content item (`data` or `tool_call`) has come.
    content_seen: bool,
    /// The last `error` event's error: the failure of a stream that ends or is dropped after it.
    last_error: Option<Error>,
    /// The recorder's [`StreamSpan::on_end`], taken where the item type is known (a drop is
    /// not).
    on_end: fn(&mut R, &Span, Outcome),
}

/// A count as a field value: signed, as OpenTelemetry's integer attributes are.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records `err` as the span's failure: its code in `error.type`, the error status.
fn record_failure(span: &Span, err: &Error) {
    span.record("error.type", err.code().as_str());
    span.record("otel.status_code", "error");
    span.record("otel.status_description", tracing::field::display(err));
}

impl<R> Open<R> {
    /// Notes one poll's item; `Some` when the item ends the stream.
    fn observe<T>(
        &mut self,
        item: Option<&Result<Event<T>, Error>>,
        recorder: &mut R,
    ) -> Option<Outcome>
    where
        R: StreamSpan<T>,
    {
        let Some(item) = item else {
            return Some(Outcome::Ended);
        };
        self.items = self.items.saturating_add(1);
        match item {
            Ok(event) => {
                if !self.content_seen
                    && matches!(event.kind(), EventKind::Data(_) | EventKind::ToolCall(_))
                {
                    self.content_seen = true;
                    let elapsed = self.first_poll.elapsed();
                    self.span.record(
                        "beluga.time_to_first_item_ms",
                        elapsed.as_secs_f64() * 1_000.0,
                    );
                }
                recorder.on_event(&self.span, event);
                match event.kind() {
                    EventKind::Done(_) => Some(Outcome::Done),
                    EventKind::Error(err) => {
                        self.error_events = self.error_events.saturating_add(1);
                        tracing::event!(
                            target: "beluga_core::trace",
                            parent: &self.span,
                            tracing::Level::WARN,
                            error.type = err.code().as_str(),
                            "{err}"
                        );
                        self.last_error = Some(err.clone());
                        None
                    }
                    _ => None,
                }
            }
            // Cancelled on purpose (a user's Stop): not a failure. A deadline is one.
            Err(err) if err.code() == ErrorCode::Cancelled => Some(Outcome::Cancelled),
            Err(err) => {
                record_failure(&self.span, err);
                Some(Outcome::Error)
            }
        }
    }

    /// Records the counts and the outcome, and lets the recorder record what it kept for the
    /// end; the caller then drops the span, which closes it.
    fn end(&mut self, recorder: &mut R, outcome: Outcome) {
        let span = &self.span;
        span.record("beluga.items", count(self.items));
        span.record("beluga.error_events", count(self.error_events));
        span.record("beluga.outcome", outcome.as_str());
        if matches!(outcome, Outcome::Ended | Outcome::Dropped) {
            if let Some(err) = &self.last_error {
                record_failure(span, err);
            }
        }
        (self.on_end)(recorder, span, outcome);
    }
}

impl<R> Drop for Core<R> {
    /// A span still open when the stream is dropped: the consumer went away.
    fn drop(&mut self) {
        if let State::Open(open) = &mut self.state {
            open.end(&mut self.recorder, Outcome::Dropped);
        }
    }
}

impl<S, R> Traced<S, R> {
    pub(crate) fn new(stream: S, recorder: R, ctx: &Context) -> Self {
        Traced {
            stream,
            core: Core {
                recorder,
                state: State::Unopened {
                    ctx: ctx.clone(),
                    parent: Span::current(),
                },
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
        &self.core.recorder
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
        let state = match &self.core.state {
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
        if let State::Closed = this.core.state {
            return this.stream.poll_next(cx);
        }
        poll_traced(this.stream, this.core, cx)
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
    core: &mut Core<R>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    R: StreamSpan<T>,
{
    let Core { recorder, state } = core;
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
                content_seen: false,
                last_error: None,
                on_end: <R as StreamSpan<T>>::on_end,
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
        open.end(recorder, outcome);
        *state = State::Closed;
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
