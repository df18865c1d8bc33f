//! Stream aliases, the constructors of new streams ([`iter`], [`merge`]) and the types of
//! the combinators, which are methods of [`EventStreamExt`](crate::EventStreamExt).
//!
//! Every stream in beluga yields `Result<Event<T>, Error>` ([`EventResult`]). Functions are
//! generic over `impl Stream<Item = EventResult<T>>`, so nothing is boxed or dynamically
//! dispatched unless you ask for it with [`BoxEventStream`].
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
//! * [`map_payload`](crate::EventStreamExt::map_payload),
//!   [`filter_events`](crate::EventStreamExt::filter_events),
//!   [`try_map_events`](crate::EventStreamExt::try_map_events) (unless `f` changes it),
//!   [`cancellable`](crate::EventStreamExt::cancellable),
//!   [`read_ahead`](crate::EventStreamExt::read_ahead) and every
//!   [`fan_out`](crate::EventStreamExt::fan_out) consumer pass the source's `done` on as it
//!   is, and end where the source ends: after a source that ends without a `done`, their output
//!   ends without one too.
//! * [`merge`] does not pass its inputs' `done` events on: it yields one plain `done` at the
//!   end, and only if every input ended with one. An input that ends without a `done` makes
//!   the merged stream end without one.
//! * [`Pipe`](crate::runnable::Pipe) streams its second step's events as they come, `done`
//!   included, and ends as that step does.
//!
//! The terminal items combinators do make are errors about themselves: `cancellable`,
//! `read_ahead` and `pipe` end with `cancelled` or `deadline_exceeded` when their context ends,
//! `read_ahead` and `fan_out` with `internal` when the source panics, `try_map_events` with the
//! error its function returned, and `merge` ends at the first `Err` of any input.
//! [`payloads`](crate::EventStreamExt::payloads) is a view, not an event stream: `done` ends it
//! without an item.
//!
//! What drains streams into a value instead of passing them on does not forward their ends:
//! [`collect_events`](crate::EventStreamExt::collect_events) returns the events and the
//! terminal error as they came; [`invoke`](crate::RunnableExt::invoke) and
//! [`batch`](crate::RunnableExt::batch) take the `done_with` value, else the last `data`; and
//! the final `done_with` of [`parallel`](crate::runnable::parallel) is its own result (every
//! branch's, read by `invoke`'s rule), not a branch's `done`.

mod produce;

use std::pin::Pin;

use crate::event::Event;
pub use crate::event::EventResult;
pub use crate::stream::produce::{Emit, Emitter, ProduceBody, produce};
#[cfg(feature = "tracing")]
pub use crate::stream_ext::Traced;
pub use crate::stream_ext::{
    Cancellable, Collect, Collected, DEFAULT_FAN_OUT_CAPACITY, FanOut, Filter, Map, Merge,
    Payloads, ReadAhead, TryMapEvents,
};
/// The stream traits, re-exported from `futures-core` so that they can be named without a
/// dependency of your own on it (and so that diagnostics name them here).
///
/// ```
/// use beluga_core::stream::{self, EventResult, FusedStream, Stream};
///
/// fn numbers() -> impl FusedStream<Item = EventResult<u32>> {
///     stream::merge([stream::iter([1, 2])])
/// }
/// fn is_ended(s: &impl FusedStream) -> bool {
///     s.is_terminated()
/// }
/// fn hint(s: &impl Stream) -> (usize, Option<usize>) {
///     s.size_hint()
/// }
/// assert!(!is_ended(&numbers()));
/// assert_eq!(hint(&numbers()).0, 0);
/// ```
pub use futures_core::{FusedStream, Stream};

/// A boxed, `Send` event stream, for trait objects and struct fields.
///
/// ```
/// use beluga_core::{BoxEventStream, stream};
/// use futures_util::StreamExt; // `boxed`
///
/// struct Step {
///     output: BoxEventStream<'static, String>,
/// }
/// let step = Step { output: stream::iter(["a".to_owned()]).boxed() };
/// # drop(step);
/// ```
pub type BoxEventStream<'a, T> = Pin<Box<dyn Stream<Item = EventResult<T>> + Send + 'a>>;

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

/// Merges event streams into one, in arrival order (Beluga's `MergeStreams`); see [`Merge`].
///
/// The inputs need not be `Unpin`: producers merge as they are, without boxing.
///
/// ```
/// use beluga_core::{Context, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// let count = |from: u32| {
///     stream::produce(&ctx, async move |mut e| {
///         e.emit(from).await;
///         e.emit(from + 1).await;
///         Ok(())
///     })
/// };
/// let collected = stream::merge([count(0), count(10)]).collect_events().await;
/// assert_eq!(collected.data().count(), 4);
/// # }
/// ```
///
/// Streams of different types merge as [`BoxEventStream`]s:
///
/// ```
/// use beluga_core::{BoxEventStream, EventStreamExt, stream};
/// use futures_util::StreamExt; // `boxed`
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inputs: Vec<BoxEventStream<'static, u8>> = vec![
///     stream::iter([1]).boxed(),
///     stream::iter([2, 3]).boxed(),
/// ];
/// let collected = stream::merge(inputs).collect_events().await;
/// assert_eq!(collected.events.len(), 4); // three data events and one `done`
/// # }
/// ```
pub fn merge<I, S, T>(inputs: I) -> Merge<S>
where
    I: IntoIterator<Item = S>,
    S: Stream<Item = EventResult<T>>,
{
    Merge::new(inputs)
}
