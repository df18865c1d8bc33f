//! [`EventStreamExt`]: the combinators as methods on any event stream.

mod cancellable;
mod collect;
mod fan_out;
mod filter;
mod map;
mod merge;
mod panic;
mod payloads;
mod read_ahead;
mod ready;
#[cfg(feature = "tracing")]
mod traced;
mod try_map_events;

use futures_core::Stream;

pub use self::cancellable::Cancellable;
pub use self::collect::{Collect, Collected};
pub use self::fan_out::{DEFAULT_FAN_OUT_CAPACITY, FanOut};
pub use self::filter::Filter;
pub use self::map::Map;
pub use self::merge::Merge;
pub use self::payloads::Payloads;
pub use self::read_ahead::ReadAhead;
pub(crate) use self::ready::ReadySet;
#[cfg(feature = "tracing")]
pub use self::traced::Traced;
pub use self::try_map_events::TryMapEvents;
use crate::context::Context;
use crate::error::Error;
use crate::event::Event;
#[cfg(feature = "tracing")]
use crate::trace::{NamedSpan, StreamSpan};

/// Combinators for streams of `Result<Event<T>, Error>`, implemented for every such stream.
///
/// The method names do not clash with `futures::StreamExt` or `tokio_stream::StreamExt`, so all
/// of them can be in scope at once. Where several streams meet, the constructor is a free
/// function instead: [`stream::merge`](crate::stream::merge).
///
/// ```
/// use beluga_core::{EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let words = stream::iter(["hello", " ", "world"])
///     .filter_events(|ev| ev.payload() != Some(&" "))
///     .map_payload(str::to_uppercase)
///     .collect_events()
///     .await;
/// assert_eq!(words.data().cloned().collect::<Vec<_>>(), ["HELLO", "WORLD"]);
/// # }
/// ```
pub trait EventStreamExt<T>: Stream<Item = Result<Event<T>, Error>> {
    /// Maps the payload of every event (`data`, `tool_call`, `tool_result`, `handoff`, and the
    /// final value of `done`), keeping kinds, metadata and errors. No allocation. Ends as the
    /// source does (see [how a stream ends](crate::stream#how-a-stream-ends)).
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lens = stream::iter(["a", "bcd"]).map_payload(str::len).collect_events().await;
    /// assert_eq!(lens.events, [Event::data(1), Event::data(3), Event::done()]);
    /// # }
    /// ```
    fn map_payload<U, F>(self, f: F) -> Map<Self, F>
    where
        Self: Sized,
        F: FnMut(T) -> U,
    {
        Map::new(self, f)
    }

    /// Keeps the events for which `predicate` returns `true`. `done` events and `Err` items
    /// always pass (they end the stream), so the predicate never sees them. No allocation. Ends
    /// as the source does (see [how a stream ends](crate::stream#how-a-stream-ends)).
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let even = stream::iter(1..=6)
    ///     .filter_events(|ev| ev.payload().is_some_and(|n| n % 2 == 0))
    ///     .collect_events()
    ///     .await;
    /// assert_eq!(even.data().copied().collect::<Vec<_>>(), [2, 4, 6]);
    /// assert!(even.events.last().unwrap().is_done());
    /// # }
    /// ```
    fn filter_events<F>(self, predicate: F) -> Filter<Self, F>
    where
        Self: Sized,
        F: FnMut(&Event<T>) -> bool,
    {
        Filter::new(self, predicate)
    }

    /// Maps every whole event, kind and metadata included, with a function that may fail
    /// (Beluga's `MapStream`). Each event, `done` included, goes through `f`; an `Err` from `f`
    /// ends the stream with that error and drops the source, and a terminal `Err` of the source
    /// passes through unchanged. No allocation.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode, Event, EventKind, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Tool calls are checked and renamed; every other kind passes through as it is.
    /// let checked = stream::iter(["Hel", "lo"])
    ///     .try_map_events(|ev| match ev.kind() {
    ///         EventKind::ToolCall(name) if name.is_empty() => {
    ///             Err(Error::new(ErrorCode::InvalidInput, "a tool call without a name"))
    ///         }
    ///         _ => Ok(ev.map(str::to_uppercase)),
    ///     })
    ///     .collect_events()
    ///     .await;
    /// assert_eq!(checked.data().cloned().collect::<Vec<_>>(), ["HEL", "LO"]);
    /// assert!(checked.error.is_none());
    ///
    /// let refused = futures_util::stream::iter([Ok(Event::data("a")), Ok(Event::tool_call("")), Ok(Event::done())])
    ///     .try_map_events(|ev| match ev.kind() {
    ///         EventKind::ToolCall(name) if name.is_empty() => {
    ///             Err(Error::new(ErrorCode::InvalidInput, "a tool call without a name"))
    ///         }
    ///         _ => Ok(ev),
    ///     })
    ///     .collect_events()
    ///     .await;
    /// assert_eq!(refused.events, [Event::data("a")]);
    /// assert_eq!(refused.error.unwrap().code(), ErrorCode::InvalidInput);
    /// # }
    /// ```
    fn try_map_events<U, F>(self, f: F) -> TryMapEvents<Self, F>
    where
        Self: Sized,
        F: FnMut(Event<T>) -> Result<Event<U>, Error>,
    {
        TryMapEvents::new(self, f)
    }

    /// The `data` payloads alone, as `Ok(payload)` items, and the terminal error as `Err`: a
    /// view for code that wants values, not events, such as `TryStreamExt::try_collect`.
    /// `tool_call`, `tool_result`, `handoff` and reported `error` events are skipped, and
    /// `done` (with its final value, if any) ends the view without an item of its own.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode, Event, EventStreamExt, stream};
    /// use futures_util::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tokens: Vec<&str> = stream::iter(["Hel", "lo"]).payloads().try_collect().await.unwrap();
    /// assert_eq!(tokens, ["Hel", "lo"]);
    ///
    /// let failing = futures_util::stream::iter([
    ///     Ok(Event::data(1)),
    ///     Ok(Event::tool_call(2)),
    ///     Err(Error::new(ErrorCode::RateLimit, "slow down")),
    /// ]);
    /// let err = failing.payloads().try_collect::<Vec<u32>>().await.unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::RateLimit);
    /// # }
    /// ```
    fn payloads(self) -> Payloads<Self>
    where
        Self: Sized,
    {
        Payloads::new(self)
    }

    /// Drains the stream: every event, plus the terminal error if it ended with one. Nothing is
    /// added: a stream that ended without a `done` leaves none among the events (see
    /// [how a stream ends](crate::stream#how-a-stream-ends)).
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let collected = stream::iter([1, 2, 3]).collect_events().await;
    /// assert_eq!(collected.events.len(), 4);
    /// assert!(collected.error.is_none());
    /// # }
    /// ```
    fn collect_events(self) -> Collect<Self, T>
    where
        Self: Sized,
    {
        Collect::new(self)
    }

    /// Ends the stream with the `cancelled` or `deadline_exceeded` error as soon as `ctx` ends,
    /// dropping the source in that same poll, even when the source is parked forever (unlike
    /// `take_until`, which keeps it alive). A deadline is noticed even by a consumer that never
    /// yields to the runtime.
    ///
    /// The stream has at most one terminal item: it ends, dropping the source, right after the
    /// source's `done` event or `Err` item, and a later cancel adds nothing; a source that ends
    /// without either ends it without one (see [how a stream ends](crate::stream#how-a-stream-ends)). The
    /// deadline, or the `CancellationToken` the context came from, is checked every 32 polls.
    ///
    /// ```
    /// use beluga_core::{Context, ErrorCode, EventStreamExt};
    /// use futures_util::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// // A source that never produces anything.
    /// let source = futures_util::stream::pending::<beluga_core::EventResult<u32>>();
    /// let mut stream = source.cancellable(&ctx);
    /// ctx.cancel();
    /// let err = stream.next().await.unwrap().unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::Cancelled);
    /// assert!(stream.next().await.is_none());
    /// # }
    /// ```
    fn cancellable(self, ctx: &Context) -> Cancellable<Self>
    where
        Self: Sized,
    {
        Cancellable::new(self, ctx)
    }

    /// Splits the stream into `n` consumers that each see every item, in order (Beluga's
    /// `FanOut`), with a buffer of [`DEFAULT_FAN_OUT_CAPACITY`] items; see [`FanOut`].
    ///
    /// Lossless: the source is pulled only as fast as the slowest live consumer reads. No task
    /// is spawned; whichever consumer needs the next item pulls it. A dropped consumer stops
    /// counting, and when all are dropped the source is dropped. Every consumer ends as the
    /// source does (see [how a stream ends](crate::stream#how-a-stream-ends)). `n = 0` is an
    /// `invalid_input` error.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut consumers = stream::iter(["a", "b"]).fan_out(2).unwrap();
    /// let second = consumers.pop().unwrap();
    /// let first = consumers.pop().unwrap();
    /// let (x, y) = tokio::join!(first.collect_events(), second.collect_events());
    /// assert_eq!(x.events, y.events);
    /// assert_eq!(x.data().copied().collect::<String>(), "ab");
    /// # }
    /// ```
    fn fan_out(self, n: usize) -> Result<Vec<FanOut<Self>>, Error>
    where
        Self: Sized,
        T: Clone,
    {
        fan_out::fan_out(self, n, DEFAULT_FAN_OUT_CAPACITY)
    }

    /// [`fan_out`](EventStreamExt::fan_out) with a buffer of `capacity` items: the source never
    /// runs more than `capacity` items ahead of the slowest live consumer. Memory follows the
    /// items waiting, not the capacity, so any capacity works, up to `usize::MAX` (unbounded).
    /// `n = 0` or `capacity = 0` is an `invalid_input` error, and so is an `n` too large to
    /// allocate.
    ///
    /// ```
    /// use beluga_core::{ErrorCode, EventStreamExt, stream};
    /// let consumers = stream::iter([1]).fan_out_with_capacity(3, 1).unwrap();
    /// assert_eq!(consumers.len(), 3);
    /// let err = stream::iter([1]).fan_out_with_capacity(3, 0).unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidInput);
    /// ```
    fn fan_out_with_capacity(self, n: usize, capacity: usize) -> Result<Vec<FanOut<Self>>, Error>
    where
        Self: Sized,
        T: Clone,
    {
        fan_out::fan_out(self, n, capacity)
    }

    /// Runs the stream ahead of the consumer on a spawned Tokio task, into a buffer of
    /// `capacity` items (Beluga's `BufferedStream`); see [`ReadAhead`].
    ///
    /// The task pulls the source while the consumer is busy, never more than `capacity` items
    /// ahead, so a slow consumer and a slow producer overlap instead of taking turns. Nothing
    /// leaks:
    ///
    /// * dropping the stream aborts the task, which drops the source wherever it is parked;
    /// * when `ctx` is cancelled or its deadline passes, the stream ends with the `cancelled` or
    ///   `deadline_exceeded` error, and the task stops and drops the source, even while the
    ///   consumer is not polling;
    /// * a panic in the source ends the stream with an `internal` error saying the source
    ///   panicked (and its message), never a hang.
    ///
    /// The stream ends after one terminal item (the source's `done` or `Err`, or one of the
    /// errors above), or where the source ends without one, then yields `None` forever (see
    /// [how a stream ends](crate::stream#how-a-stream-ends)). The source and `T` must be
    /// `Send + 'static` because they move to the task.
    ///
    /// A `capacity` of 0, or larger than Tokio's channel maximum (`usize::MAX >> 3`), is refused
    /// as every count in this crate is (see [Counts and capacities](crate#counts-and-capacities)):
    /// the stream's one item is an `invalid_input` error, and no task is spawned.
    ///
    /// # Panics
    ///
    /// If called outside a Tokio runtime, which it needs to spawn its task; the panic points at
    /// the caller's line.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let words = stream::iter(["read", "ahead"])
    ///     .read_ahead(16, &ctx)
    ///     .map_payload(str::to_uppercase)
    ///     .collect_events()
    ///     .await;
    /// assert_eq!(words.data().cloned().collect::<Vec<_>>(), ["READ", "AHEAD"]);
    /// # }
    /// ```
    #[track_caller]
    fn read_ahead(self, capacity: usize, ctx: &Context) -> ReadAhead<T>
    where
        Self: Sized + Send + 'static,
        T: Send + 'static,
    {
        ReadAhead::new(self, capacity, ctx)
    }

    /// Traces the stream with one `tracing` span, named `stream` with `name` in `otel.name`,
    /// from its first poll to its terminal item (feature `tracing`); see [`crate::trace`] for
    /// the fields it records. Every poll runs inside the span, so what the producer logs nests
    /// under it. The items pass through unchanged.
    ///
    /// `ctx` gives the request and session ids. The span's parent is the span current here,
    /// or, when there is none, the one current at the first poll. When no subscriber wants the
    /// span, the stream is polled as it is, with nothing recorded.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new().with_request_id("req-42");
    /// let words = stream::iter(["traced", "words"]).traced("answer", &ctx).collect_events().await;
    /// assert_eq!(words.data().count(), 2);
    /// # }
    /// ```
    #[cfg(feature = "tracing")]
    fn traced(
        self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        ctx: &Context,
    ) -> Traced<Self, NamedSpan>
    where
        Self: Sized,
    {
        Traced::new(self, NamedSpan::new(name), ctx)
    }

    /// [`traced`](EventStreamExt::traced) with a span of your own: `span` opens it (with the
    /// fields every traced stream records, and its own) and sees every event go by; see
    /// [`StreamSpan`]. `beluga-llm` traces chat streams this way.
    ///
    /// ```
    /// use beluga_core::trace::NamedSpan;
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let events = stream::iter([1, 2]).traced_with(NamedSpan::new("numbers"), &ctx).collect_events().await;
    /// assert_eq!(events.events.len(), 3);
    /// # }
    /// ```
    #[cfg(feature = "tracing")]
    fn traced_with<R>(self, span: R, ctx: &Context) -> Traced<Self, R>
    where
        Self: Sized,
        R: StreamSpan<T>,
    {
        Traced::new(self, span, ctx)
    }
}

impl<S, T> EventStreamExt<T> for S where S: Stream<Item = Result<Event<T>, Error>> + ?Sized {}
