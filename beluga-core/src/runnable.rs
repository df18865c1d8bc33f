//! [`Runnable`]: a typed step of a pipeline (a model, a tool, a retriever, an agent) whose one
//! required method is [`stream`](Runnable::stream); [`invoke`](RunnableExt::invoke) is always
//! derived from it, and [`pipe`](RunnableExt::pipe), [`parallel`]
//! and [`batch`] compose runnables, checked by the type system.
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

pub use self::batch::{BatchOptions, RetryPolicy, batch, batch_stream};
pub use self::dynamic::{BoxRunnable, DynRunnable};
pub use self::parallel::{Branches, IntoBranches, Parallel, parallel};
pub use self::pipe::Pipe;
use crate::{Context, Error, ErrorCode, EventKind, EventResult};

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
