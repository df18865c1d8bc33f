//! [`Runnable`]: a typed step of a pipeline (a model, a tool, a retriever, an agent) whose one
//! required method is [`stream`](Runnable::stream); [`invoke`](RunnableExt::invoke) is always
//! derived from it, and [`pipe`](RunnableExt::pipe), [`parallel`]
//! and [`batch`](RunnableExt::batch) compose runnables, checked by the type system.
//!
//! ```
//! use beluga_core::{stream_producer, Context, Error, EventResult, Runnable, RunnableExt};
//! use futures_util::Stream;
//!
//! struct Shout;
//!
//! impl Shout {
//!     #[stream_producer]
//!     fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
//!         for word in text.split(' ') {
//!             emit!(word.to_uppercase());
//!         }
//!         text.to_uppercase()
//!     }
//! }
//!
//! impl Runnable for Shout {
//!     type Input = String;
//!     type Output = String;
//!     fn stream(&self, ctx: Context, input: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
//!         self.run(ctx, input)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let answer = Shout.invoke(Context::new(), "hello world".to_owned()).await.unwrap();
//! assert_eq!(answer, "HELLO WORLD");
//! # }
//! ```

mod batch;
mod dynamic;
mod parallel;
mod pipe;

use std::future::Future;
use std::pin::pin;

use futures_core::Stream;
use futures_util::StreamExt;

pub use self::batch::{BatchOptions, RetryPolicy};
pub use self::dynamic::{BoxRunnable, DynRunnable};
pub use self::parallel::{IntoBranches, Parallel, ParallelOutput, parallel};
pub use self::pipe::Pipe;
use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::event::{EventKind, EventResult};

/// A typed step of a pipeline: given a [`Context`] and an input, it streams events of its
/// output type.
///
/// Implement [`stream`](Runnable::stream) (by hand, or with `#[derive(Runnable)]` pointing at a
/// `#[stream_producer]` method); [`RunnableExt`] then gives [`invoke`](RunnableExt::invoke),
/// which is always derived from `stream`, and the composition methods. See the
/// [module docs](crate::runnable) for an example.
pub trait Runnable: Send + Sync {
    /// What the step takes.
    type Input: Send;
    /// What the step produces: the payload of its events, and the result of `invoke`.
    type Output: Send;

    /// Runs the step, streaming its events. The stream ends with exactly one terminal item:
    /// a `done` event (optionally carrying the final value) or an `Err`.
    fn stream(
        &self,
        ctx: Context,
        input: Self::Input,
    ) -> impl Stream<Item = EventResult<Self::Output>> + Send + '_;
}

/// `invoke` and composition for every [`Runnable`].
pub trait RunnableExt: Runnable {
    /// Runs the step to completion: drives [`stream`](Runnable::stream) and returns the final
    /// value of its `done` event if it has one, else the last `data` payload, else an
    /// `internal` error saying the stream produced no value. A terminal `Err` is returned as is.
    ///
    /// ```
    /// use beluga_core::{Context, Event, EventResult, Runnable, RunnableExt, stream};
    /// use futures_util::Stream;
    ///
    /// struct Last;
    /// impl Runnable for Last {
    ///     type Input = Vec<u32>;
    ///     type Output = u32;
    ///     fn stream(&self, _ctx: Context, input: Vec<u32>) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
    ///         stream::iter(input)
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(Last.invoke(Context::new(), vec![1, 2, 3]).await.unwrap(), 3);
    /// assert!(Last.invoke(Context::new(), vec![]).await.is_err());
    /// # }
    /// ```
    fn invoke(
        &self,
        ctx: Context,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send + '_ {
        invoke_stream(self.stream(ctx, input))
    }

    /// This step, then `next` with this step's result as its input (Beluga's `Pipe`): `next`'s
    /// events stream out. See [`Pipe`].
    ///
    /// ```
    /// use beluga_core::{Context, EventResult, Runnable, RunnableExt, stream};
    /// use futures_util::Stream;
    ///
    /// struct Double;
    /// impl Runnable for Double {
    ///     type Input = u32;
    ///     type Output = u32;
    ///     fn stream(&self, _ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
    ///         stream::iter([n * 2])
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let four_times = Double.pipe(Double);
    /// assert_eq!(four_times.invoke(Context::new(), 5).await.unwrap(), 20);
    /// # }
    /// ```
    fn pipe<B>(self, next: B) -> Pipe<Self, B>
    where
        Self: Sized,
        B: Runnable<Input = Self::Output>,
    {
        Pipe::new(self, next)
    }

    /// Runs `runnable` on every input, at most [`max_concurrency`](BatchOptions::max_concurrency)
    /// at once, and returns one result per input, **in input order**
    /// ([`batch_unordered`](RunnableExt::batch_unordered) yields them as they complete).
    ///
    /// The rules:
    ///
    /// * **Concurrency.** At most [`max_concurrency`](BatchOptions::max_concurrency) items are in
    ///   flight at once, polled from the caller's task: nothing is spawned. An item waiting out a
    ///   retry backoff keeps its slot (it is still in flight), so a rate-limited batch does not
    ///   start new items while it backs off. `0` is rejected when the options are built.
    /// * **Order.** [`batch`](RunnableExt::batch) returns one result per input, in input order;
    ///   [`batch_unordered`](RunnableExt::batch_unordered) yields each result as it completes,
    ///   tagged with its input's index.
    /// * **Each item** runs [`invoke`](crate::RunnableExt::invoke) on its own child of the batch's
    ///   context. With a [timeout](BatchOptions::with_timeout), each *attempt* gets that long: the
    ///   child context carries the deadline (so a cooperative runnable sees it), and the attempt is
    ///   dropped when it passes even if the runnable ignores its context. Either way it ends with a
    ///   `timeout` error, which is retryable.
    /// * **Retries** ([`RetryPolicy`]) apply only to errors whose
    ///   [`is_retryable`](Error::is_retryable) is true: `rate_limit`, `timeout` and
    ///   `provider_unavailable`, decided by the *root cause*, so a rate limit wrapped as
    ///   `tool_failed` is retried and an auth error wrapped as `provider_unavailable` is not. After
    ///   the last attempt the item's result is the last error, as it was. An error that carries
    ///   a [`retry_after`](Error::retry_after) delay (a provider's `Retry-After`) is retried no
    ///   sooner than that. Backoffs are `tokio::time::sleep`s (so they follow Tokio's paused
    ///   clock in tests).
    /// * **Cancellation.** When the batch's context is cancelled (or its deadline passes), every item
    ///   still in flight is dropped at once (its child context cancelled), no new item starts, and
    ///   every remaining item, in flight or not yet started, ends with the context's error
    ///   (`cancelled` or `deadline_exceeded`): still one result per input, whether or not the
    ///   iterator knows its length (`io::Lines`, `iter::from_fn`). Only an iterator that says it
    ///   is endless (see [`batch_unordered`](RunnableExt::batch_unordered)) gets results for the
    ///   items started. A backoff in progress is cut short the same way.
    /// * **Drop.** Dropping the [`batch`](RunnableExt::batch) future or the
    ///   [`batch_unordered`](RunnableExt::batch_unordered) stream drops every item in flight and
    ///   cancels their child contexts, inside `drop`: nothing outlives it. Both borrow the runnable
    ///   only (`ctx` and `options` are copied), and take inputs from the iterator only as slots
    ///   free up.
    ///
    /// Retrying needs the input again, so the input type must be `Clone`. An input is cloned only
    /// for an attempt that may be followed by another one: the last allowed attempt (the only one
    /// with [`RetryPolicy::none`]) takes the input itself.
    ///
    /// A timeout or a retry needs a Tokio runtime with the time driver enabled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::{BatchOptions, RetryPolicy};
    /// use beluga_core::{Context, Error, ErrorCode, Event, EventResult, Runnable, RunnableExt};
    /// use futures_util::Stream;
    ///
    /// /// Looks a word up; the backend is rate limited for "busy".
    /// struct Lookup;
    /// impl Runnable for Lookup {
    ///     type Input = String;
    ///     type Output = usize;
    ///     fn stream(&self, _ctx: Context, word: String) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
    ///         let result = if word == "busy" {
    ///             Err(Error::new(ErrorCode::RateLimit, "slow down"))
    ///         } else {
    ///             Ok(Event::done_with(word.len()))
    ///         };
    ///         futures_util::stream::iter([result])
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Error> {
    /// let options = BatchOptions::default()
    ///     .with_max_concurrency(4)?
    ///     .with_timeout(Duration::from_secs(30))
    ///     .with_retry(RetryPolicy::new(3)?.with_initial_backoff(Duration::from_millis(200)));
    ///
    /// let words = ["tide", "busy", "reef"].map(String::from);
    /// let results = Lookup.batch(&Context::new(), words, &options).await;
    ///
    /// assert_eq!(results[0].as_ref().ok(), Some(&4));
    /// assert_eq!(results[1].as_ref().unwrap_err().code(), ErrorCode::RateLimit); // after 3 attempts
    /// assert_eq!(results[2].as_ref().ok(), Some(&4));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A slow item times out without holding up the others:
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::BatchOptions;
    /// use beluga_core::{stream_producer, Context, ErrorCode, EventResult, Runnable, RunnableExt};
    /// use futures_util::Stream;
    ///
    /// /// Takes `ms` milliseconds, then answers `ms`.
    /// struct Slow;
    /// impl Slow {
    ///     #[stream_producer]
    ///     fn run(&self, ctx: Context, ms: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     }
    /// }
    /// impl Runnable for Slow {
    ///     type Input = u64;
    ///     type Output = u64;
    ///     fn stream(&self, ctx: Context, ms: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
    ///         self.run(ctx, ms)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let options = BatchOptions::default().with_timeout(Duration::from_millis(100));
    /// let start = tokio::time::Instant::now();
    /// let results = Slow.batch(&Context::new(), [30, 500, 10], &options).await;
    ///
    /// assert_eq!(results[0].as_ref().ok(), Some(&30)); // input order, not completion order
    /// assert_eq!(results[1].as_ref().unwrap_err().code(), ErrorCode::Timeout);
    /// assert_eq!(results[2].as_ref().ok(), Some(&10));
    /// assert_eq!(start.elapsed(), Duration::from_millis(100));
    /// # }
    /// ```
    fn batch<'a, I>(
        &'a self,
        ctx: &Context,
        inputs: I,
        options: &BatchOptions,
    ) -> impl Future<Output = Vec<Result<Self::Output, Error>>> + use<'a, Self, I>
    where
        Self::Input: Clone,
        I: IntoIterator<Item = Self::Input>,
    {
        batch::batch(self, ctx, inputs, options)
    }

    /// Like [`batch`](RunnableExt::batch), but yields each result **as it completes**, tagged with
    /// the index of its input (counting from 0). Every input yields exactly once; after a
    /// cancellation the remaining ones come out at once with the context's error, in index
    /// order, without being started, however long the iterator turns out to be. (An iterator
    /// that says it is endless, with a `size_hint` lower bound of `usize::MAX` as `0..`,
    /// `iter::repeat` and `cycle` have, ends the stream after the items that were in flight
    /// instead: reporting its inputs would never end.)
    ///
    /// The stream borrows the runnable only (`ctx` and `options` are copied). Inputs are taken from
    /// the iterator only as slots free up, so it may be long or endless. Nothing is spawned: the
    /// items run while the stream is polled, and dropping the stream drops (and cancels) every item
    /// in flight.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::BatchOptions;
    /// use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
    /// use futures_util::{Stream, StreamExt};
    ///
    /// struct Slow;
    /// impl Slow {
    ///     #[stream_producer]
    ///     fn run(&self, ctx: Context, ms: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     }
    /// }
    /// impl Runnable for Slow {
    ///     type Input = u64;
    ///     type Output = u64;
    ///     fn stream(&self, ctx: Context, ms: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
    ///         self.run(ctx, ms)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let done: Vec<(usize, u64)> = Slow.batch_unordered(&ctx, [30, 20, 10], &BatchOptions::default())
    ///     .map(|(index, result)| (index, result.unwrap()))
    ///     .collect()
    ///     .await;
    /// assert_eq!(done, [(2, 10), (1, 20), (0, 30)]); // fastest first
    /// # }
    /// ```
    fn batch_unordered<'a, I>(
        &'a self,
        ctx: &Context,
        inputs: I,
        options: &BatchOptions,
    ) -> impl Stream<Item = (usize, Result<Self::Output, Error>)> + Send + use<'a, Self, I>
    where
        Self::Input: Clone,
        I: IntoIterator<Item = Self::Input>,
        I::IntoIter: Send,
    {
        batch::batch_unordered(self, ctx, inputs, options)
    }

    /// This step boxed as a [`BoxRunnable`], for heterogeneous pipelines: every step with the
    /// same input and output types has the same boxed type.
    ///
    /// ```
    /// use beluga_core::{BoxRunnable, Context, EventResult, Runnable, RunnableExt, stream};
    /// use futures_util::Stream;
    ///
    /// struct Echo;
    /// impl Runnable for Echo {
    ///     type Input = u32;
    ///     type Output = u32;
    ///     fn stream(&self, _ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
    ///         stream::iter([n])
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let steps: Vec<BoxRunnable<u32, u32>> = vec![Echo.boxed(), Echo.pipe(Echo).boxed()];
    /// for step in &steps {
    ///     assert_eq!(step.invoke(Context::new(), 7).await.unwrap(), 7);
    /// }
    /// # }
    /// ```
    fn boxed<'a>(self) -> BoxRunnable<'a, Self::Input, Self::Output>
    where
        Self: Sized + 'a,
    {
        Box::new(self)
    }
}

impl<R: Runnable + ?Sized> RunnableExt for R {}

/// A child context that is cancelled when its run ends or is dropped, so that anything the run
/// handed it to (a task a runnable spawned, say) stops too.
struct CancelOnDrop(Context);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What `invoke` does with a stream: the `done_with` value, else the last `data` payload, else
/// an error. Public so that code holding a stream (not a runnable) can apply the same rule.
///
/// ```
/// use beluga_core::{runnable::invoke_stream, Context, Event, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let events = futures_util::stream::iter(vec![
///     Ok(Event::data(1)),
///     Ok(Event::data(2)),
///     Ok(Event::done_with(40)),
/// ]);
/// assert_eq!(invoke_stream(events).await.unwrap(), 40);
/// assert_eq!(invoke_stream(stream::iter([1, 2])).await.unwrap(), 2);
/// # }
/// ```
pub async fn invoke_stream<T>(stream: impl Stream<Item = EventResult<T>>) -> Result<T, Error> {
    let mut stream = pin!(stream);
    let mut last = None;
    while let Some(item) = stream.next().await {
        match item?.into_kind() {
            EventKind::Done(Some(value)) => return Ok(value),
            EventKind::Done(None) => break,
            EventKind::Data(value) => last = Some(value),
            _ => {}
        }
    }
    last.ok_or_else(|| {
        Error::new(
            ErrorCode::Internal,
            "the stream ended without a value: no `done_with` and no `data` event",
        )
        .with_op("invoke")
    })
}
