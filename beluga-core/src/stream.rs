//! Stream aliases, the constructors of new streams ([`iter`], [`merge`]) and the types of
//! the combinators, which are methods of [`EventStreamExt`](crate::EventStreamExt).
//!
//! Every stream in beluga yields `Result<Event<T>, Error>` ([`EventResult`]). Functions are
//! generic over `impl Stream<Item = EventResult<T>>`, so nothing is boxed or dynamically
//! dispatched unless you ask for it with [`BoxEventStream`].

use std::pin::Pin;

use futures_core::Stream;

use crate::event::Event;
pub use crate::event::EventResult;
pub use crate::stream_ext::{
    Cancellable, Collect, Collected, DEFAULT_FAN_OUT_CAPACITY, FanOut, Filter, Map, Merge,
    Payloads, ReadAhead, TryMapEvents,
};

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
    S: Stream<Item = EventResult<T>> + Unpin,
{
    Merge::new(inputs)
}
