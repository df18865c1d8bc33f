//! Stream aliases, constructors, and the combinators as free functions.
//!
//! Every stream in beluga yields `Result<Event<T>, Error>` ([`EventResult`]). Functions are
//! generic over `impl Stream<Item = EventResult<T>>`, so nothing is boxed or dynamically
//! dispatched unless you ask for it with [`EventStream`].
//!
//! # How a stream ends
//!
//! An event stream ends with at most one terminal item, a `done` event (with or without a final
//! value) or an `Err` (the [`error`](crate::error) module explains terminal errors versus
//! `error` events), and then yields `None`. It may also end with no terminal item at all: a
//! consumer can tell such a stream was cut short.
//!
//! One rule holds for every combinator: **a combinator never invents a terminal item.** Its
//! output ends with a `done` only if its source did.
//!
//! * [`map`], [`filter`], [`cancellable`], [`buffered`] and every [`fan_out`] consumer pass the
//!   source's `done` on as it is, and end where the source ends: after a source that ends
//!   without a `done`, their output ends without one too.
//! * [`merge`] does not pass its inputs' `done` events on: it yields one plain `done` at the
//!   end, and only if every input ended with one. An input that ends without a `done` makes
//!   the merged stream end without one.
//! * [`Pipe`](crate::runnable::Pipe) streams its second step's events as they come, `done`
//!   included, and ends as that step does.
//!
//! The terminal items combinators do make are errors about themselves: `cancellable`,
//! `buffered` and `pipe` end with `cancelled` or `deadline_exceeded` when their context ends,
//! `buffered` and `fan_out` with `internal` when the source panics, and `merge` ends at the
//! first `Err` of any input.
//!
//! What drains streams into a value instead of passing them on does not forward their ends:
//! [`collect`] returns the events and the terminal error as they came;
//! [`invoke`](crate::RunnableExt::invoke) and [`batch`](crate::runnable::batch) take the
//! `done_with` value, else the last `data`; and the final `done_with` of
//! [`parallel`](crate::runnable::parallel) is its own result (every branch's, read by `invoke`'s
//! rule), not a branch's `done`.

use std::pin::Pin;

use futures_core::Stream;

pub use crate::stream_ext::{
    Buffered, Cancellable, Collect, Collected, DEFAULT_FAN_OUT_CAPACITY, FanOut, Filter, Map, Merge,
};
use crate::{Context, Error, Event};

/// One item of an event stream: an event, or the terminal error.
///
/// ```
/// use beluga_core::{Event, EventResult};
/// let item: EventResult<&str> = Ok(Event::data("hi"));
/// # drop(item);
/// ```
pub type EventResult<T> = Result<Event<T>, Error>;

/// A boxed, `Send` event stream, for trait objects and struct fields.
///
/// ```
/// use beluga_core::{EventStream, EventStreamExt, stream};
///
/// struct Step {
///     output: EventStream<'static, String>,
/// }
/// let step = Step { output: stream::iter(["a".to_owned()]).boxed_events() };
/// # drop(step);
/// ```
pub type EventStream<'a, T> = Pin<Box<dyn Stream<Item = EventResult<T>> + Send + 'a>>;

/// A stream of one `data` event per item, then `done`.
///
/// ```
/// use beluga_core::{Event, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let events = stream::iter([1, 2]).collect_events().await.events;
/// assert_eq!(events, [Event::data(1), Event::data(2), Event::done()]);
/// # }
/// ```
pub fn iter<I>(items: I) -> impl Stream<Item = EventResult<I::Item>> + Unpin
where
    I: IntoIterator,
{
    futures_util::stream::iter(
        items
            .into_iter()
            .map(|item| Ok(Event::data(item)))
            .chain(std::iter::once(Ok(Event::done()))),
    )
}

/// Maps the payload of every event; see [`EventStreamExt::map_payload`](crate::EventStreamExt::map_payload).
///
/// ```
/// use beluga_core::{EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let doubled = stream::map(stream::iter([1, 2]), |n| n * 2).collect_events().await;
/// assert_eq!(doubled.data().copied().collect::<Vec<_>>(), [2, 4]);
/// # }
/// ```
pub fn map<S, F, T, U>(stream: S, f: F) -> Map<S, F>
where
    S: Stream<Item = EventResult<T>>,
    F: FnMut(T) -> U,
{
    Map::new(stream, f)
}

/// Keeps the events `predicate` accepts; see [`EventStreamExt::filter_events`](crate::EventStreamExt::filter_events).
///
/// ```
/// use beluga_core::{EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let big = stream::filter(stream::iter([1, 20, 3]), |ev| ev.payload() > Some(&10));
/// assert_eq!(big.collect_events().await.data().copied().collect::<Vec<_>>(), [20]);
/// # }
/// ```
pub fn filter<S, F, T>(stream: S, predicate: F) -> Filter<S, F>
where
    S: Stream<Item = EventResult<T>>,
    F: FnMut(&Event<T>) -> bool,
{
    Filter::new(stream, predicate)
}

/// Drains a stream into its events and terminal error (Beluga's `CollectStream`); see
/// [`EventStreamExt::collect_events`](crate::EventStreamExt::collect_events).
///
/// ```
/// use beluga_core::stream;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let collected = stream::collect(stream::iter(["x"])).await;
/// assert_eq!(collected.into_result().unwrap().len(), 2);
/// # }
/// ```
pub fn collect<S, T>(stream: S) -> Collect<S, T>
where
    S: Stream<Item = EventResult<T>>,
{
    Collect::new(stream)
}

/// Ends a stream when `ctx` ends, dropping the source at once; see
/// [`EventStreamExt::cancellable`](crate::EventStreamExt::cancellable).
///
/// ```
/// use beluga_core::{Context, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// ctx.cancel();
/// let collected = stream::cancellable(stream::iter([1, 2, 3]), &ctx).collect_events().await;
/// assert!(collected.events.is_empty());
/// assert!(collected.error.unwrap().is_cancellation());
/// # }
/// ```
pub fn cancellable<S, T>(stream: S, ctx: &Context) -> Cancellable<S>
where
    S: Stream<Item = EventResult<T>>,
{
    Cancellable::new(stream, ctx)
}

/// Runs `stream` ahead of the consumer on a spawned Tokio task, into a buffer of `capacity`
/// items (Beluga's `BufferedStream`); see [`Buffered`] and
/// [`EventStreamExt::buffered_events`](crate::EventStreamExt::buffered_events), which also
/// explains the panics.
///
/// # Panics
///
/// If `capacity` is 0 or larger than `usize::MAX >> 3`, and if called outside a Tokio runtime.
///
/// ```
/// use beluga_core::{Context, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ahead = stream::buffered(stream::iter(1..=3), 2, &Context::new());
/// assert_eq!(ahead.capacity(), 2);
/// assert_eq!(ahead.collect_events().await.data().sum::<u32>(), 6);
/// # }
/// ```
#[track_caller]
pub fn buffered<S, T>(stream: S, capacity: usize, ctx: &Context) -> Buffered<T>
where
    S: Stream<Item = EventResult<T>> + Send + 'static,
    T: Send + 'static,
{
    Buffered::new(stream, capacity, ctx)
}

/// Merges event streams into one, in arrival order (Beluga's `MergeStreams`); see [`Merge`] and
/// [`EventStreamExt::merge_with`](crate::EventStreamExt::merge_with).
///
/// ```
/// use beluga_core::{EventStream, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inputs: Vec<EventStream<'static, u8>> = vec![
///     stream::iter([1]).boxed_events(),
///     stream::iter([2, 3]).boxed_events(),
/// ];
/// let collected = stream::merge(inputs).collect_events().await;
/// assert_eq!(collected.events.len(), 4); // three data events and one `done`
/// # }
/// ```
pub fn merge<I, S, T>(inputs: I) -> Merge<S>
where
    I: IntoIterator<Item = S>,
    S: Stream<Item = EventResult<T>> + Unpin,
{
    Merge::new(inputs)
}

/// Splits `source` into `n` consumers that each see every item, in order, with a buffer of
/// `capacity` items (Beluga's `FanOut`); see [`FanOut`] and
/// [`EventStreamExt::fan_out`](crate::EventStreamExt::fan_out).
///
/// ```
/// use beluga_core::{EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let consumers = stream::fan_out(stream::iter([1, 2]), 3, 8).unwrap();
/// for consumer in consumers {
///     assert_eq!(consumer.collect_events().await.events.len(), 3);
/// }
/// # }
/// ```
pub fn fan_out<S, T>(source: S, n: usize, capacity: usize) -> Result<Vec<FanOut<S>>, Error>
where
    S: Stream<Item = EventResult<T>>,
    T: Clone,
{
    crate::stream_ext::fan_out_impl(source, n, capacity)
}
