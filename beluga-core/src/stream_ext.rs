//! [`EventStreamExt`]: the combinators as methods on any event stream.

mod buffered;
mod cancellable;
mod collect;
mod fan_out;
mod filter;
mod map;
mod merge;

use futures_core::Stream;

pub use self::buffered::Buffered;
pub use self::cancellable::Cancellable;
pub use self::collect::{Collect, Collected};
pub(crate) use self::fan_out::fan_out as fan_out_impl;
pub use self::fan_out::{DEFAULT_FAN_OUT_CAPACITY, FanOut};
pub use self::filter::Filter;
pub use self::map::Map;
pub use self::merge::Merge;
use crate::stream::EventStream;
use crate::{Context, Error, Event};

/// Combinators for streams of `Result<Event<T>, Error>`, implemented for every such stream.
///
/// The method names do not clash with `futures::StreamExt` or `tokio_stream::StreamExt`, so all
/// of them can be in scope at once. Each method is also a free function in [`crate::stream`].
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

    /// Merges this stream with `others` into one, in arrival order (see [`Merge`]): polled from
    /// the consumer's task, fair, one plain `done` at the end if every input ended with one
    /// (see [how a stream ends](crate::stream#how-a-stream-ends)), ended (dropping every input) by
    /// the first `Err`. No task is spawned and nothing is allocated per item.
    ///
    /// Inputs must be `Unpin`; box a producer (`boxed_events`, or `Box::pin`) to merge it.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let merged = stream::iter([1, 2]).merge_with([stream::iter([10, 20])]);
    /// let mut data: Vec<u32> = merged.collect_events().await.data().copied().collect();
    /// data.sort_unstable();
    /// assert_eq!(data, [1, 2, 10, 20]);
    /// # }
    /// ```
    fn merge_with<I>(self, others: I) -> Merge<Self>
    where
        Self: Sized,
        I: IntoIterator<Item = Self>,
    {
        Merge::new(std::iter::once(self).chain(others))
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
    /// `capacity` items (Beluga's `BufferedStream`); see [`Buffered`].
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
    /// # Panics
    ///
    /// If `capacity` is 0 or larger than Tokio's channel maximum (`usize::MAX >> 3`), and if
    /// called outside a Tokio runtime. A bad capacity panics rather than returning an error
    /// because it is almost always a constant in the code: a zero is a bug to fix, not a
    /// condition to handle at run time, and a `Result` would burden every correct call site.
    /// The panic points at the caller's line and says what is wrong (as Tokio's own
    /// `mpsc::channel(0)` and `spawn` panic, but from deep inside).
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let words = stream::iter(["read", "ahead"])
    ///     .buffered_events(16, &ctx)
    ///     .map_payload(str::to_uppercase)
    ///     .collect_events()
    ///     .await;
    /// assert_eq!(words.data().cloned().collect::<Vec<_>>(), ["READ", "AHEAD"]);
    /// # }
    /// ```
    #[track_caller]
    fn buffered_events(self, capacity: usize, ctx: &Context) -> Buffered<T>
    where
        Self: Sized + Send + 'static,
        T: Send + 'static,
    {
        Buffered::new(self, capacity, ctx)
    }

    /// Boxes the stream into an [`EventStream`], for trait objects and struct fields.
    ///
    /// ```
    /// use beluga_core::{EventStream, EventStreamExt, stream};
    /// let boxed: EventStream<'static, u8> = stream::iter([1_u8]).boxed_events();
    /// # drop(boxed);
    /// ```
    fn boxed_events<'a>(self) -> EventStream<'a, T>
    where
        Self: Sized + Send + 'a,
    {
        Box::pin(self)
    }
}

impl<S, T> EventStreamExt<T> for S where S: Stream<Item = Result<Event<T>, Error>> + ?Sized {}
