//! [`Parallel`]: the same input to several branches at once, polled from the caller's task.

use std::future::poll_fn;

use futures_core::Stream;

use super::{BoxRunnable, CancelOnDrop, Runnable, RunnableExt};
use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::event::{Event, EventKind, EventResult};
use crate::stream::BoxEventStream;
use crate::stream_ext::ReadySet;
use beluga_macros::stream_producer;

/// One item of a [`Parallel`] run.
///
/// Each branch's events come out as they arrive, with their kind kept and their payload tagged
/// with the branch ([`ParallelOutput::Item`]); the final value (`done_with`, which `invoke` returns)
/// is every branch's result in branch order ([`ParallelOutput::All`]), or in
/// [`all_settled`](Parallel::all_settled) mode every branch's outcome ([`ParallelOutput::Settled`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ParallelOutput<O> {
    /// A payload from branch `branch`.
    Item {
        /// The branch's index, in the order the branches were given.
        branch: usize,
        /// The payload.
        value: O,
    },
    /// Every branch's result (its `done_with` value, else its last `data` payload).
    All(Vec<O>),
    /// Every branch's outcome, failures included.
    Settled(Vec<Result<O, Error>>),
}

impl<O> ParallelOutput<O> {
    /// The results of an [`All`](ParallelOutput::All) final value.
    ///
    /// ```
    /// use beluga_core::runnable::ParallelOutput;
    /// assert_eq!(ParallelOutput::All(vec![1, 2]).into_all(), Some(vec![1, 2]));
    /// assert_eq!(ParallelOutput::Item { branch: 0, value: 1 }.into_all(), None);
    /// ```
    pub fn into_all(self) -> Option<Vec<O>> {
        match self {
            ParallelOutput::All(all) => Some(all),
            _ => None,
        }
    }

    /// The outcomes of a [`Settled`](ParallelOutput::Settled) final value.
    ///
    /// ```
    /// use beluga_core::runnable::ParallelOutput;
    /// let settled: ParallelOutput<u8> = ParallelOutput::Settled(vec![Ok(1)]);
    /// assert_eq!(settled.into_settled().map(|v| v.len()), Some(1));
    /// ```
    pub fn into_settled(self) -> Option<Vec<Result<O, Error>>> {
        match self {
            ParallelOutput::Settled(all) => Some(all),
            _ => None,
        }
    }
}

/// Runnable for the [`parallel`](crate::runnable::parallel) function: every branch gets a clone
/// of the input and runs at once, polled from the caller's task (nothing is spawned).
///
/// Each branch's result follows [`invoke`](super::RunnableExt::invoke)'s rule, so every `data`
/// payload is cloned once, to be the result if no `done_with` follows.
///
/// By default the first failure (a branch's `Err`, or a branch that ends without a value) ends
/// the run with that error and cancels every other branch in the same poll: their streams are
/// dropped, and the child context they share is cancelled. [`all_settled`](Parallel::all_settled)
/// instead lets every branch finish and reports one `Result` per branch.
///
/// That child context is cancelled whenever the run ends, and when its stream is dropped before
/// the end: nothing a branch handed it to (a task it spawned, say) outlives the run.
///
/// A successful run ends with its own `done_with`, carrying every branch's result: it is the
/// run's value, not a branch's `done`, and a branch that ends without a `done` still has a
/// result by [`invoke`](super::RunnableExt::invoke)'s rule (see
/// [how a stream ends](crate::stream#how-a-stream-ends)).
///
/// Branches of different types with the same input and output fit in one `Parallel` as
/// [`BoxRunnable`]s, which is what a tuple of branches becomes.
#[derive(Debug, Clone)]
pub struct Parallel<R> {
    branches: Vec<R>,
    settle: bool,
}

/// Runs `branches` at once on the same input; see [`Parallel`].
///
/// `branches` is a `Vec` or an array of one runnable type, or a tuple (up to six) of different
/// runnable types with the same input and output (boxed as [`BoxRunnable`]s).
///
/// ```
/// use beluga_core::runnable::{parallel, ParallelOutput};
/// use beluga_core::{Context, EventResult, Runnable, RunnableExt, stream};
/// use futures_util::Stream;
///
/// struct Times(u32);
/// impl Runnable for Times {
///     type Input = u32;
///     type Output = u32;
///     fn stream(&self, _ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
///         stream::iter([n * self.0])
///     }
/// }
/// struct Plus(u32);
/// impl Runnable for Plus {
///     type Input = u32;
///     type Output = u32;
///     fn stream(&self, _ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
///         stream::iter([n + self.0])
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let all = parallel([Times(1), Times(2), Times(3)]).invoke(Context::new(), 10).await.unwrap();
/// assert_eq!(all, ParallelOutput::All(vec![10, 20, 30]));
///
/// // Different types, the same input and output: a tuple.
/// let mixed = parallel((Times(2), Plus(1))).invoke(Context::new(), 10).await.unwrap();
/// assert_eq!(mixed.into_all(), Some(vec![20, 11]));
/// # }
/// ```
pub fn parallel<'a, B: IntoBranches<'a>>(branches: B) -> Parallel<B::Branch> {
    Parallel {
        branches: branches.into_branches(),
        settle: false,
    }
}

/// What [`parallel`] accepts: a `Vec` or an array of one runnable type, or a tuple of up to six
/// runnables with the same input and output.
///
/// ```
/// use beluga_core::runnable::IntoBranches;
/// use beluga_core::{BoxRunnable, Context, EventResult, Runnable, stream};
/// # use futures_util::Stream;
/// # struct Echo;
/// # impl Runnable for Echo {
/// #     type Input = u8;
/// #     type Output = u8;
/// #     fn stream(&self, _: Context, n: u8) -> impl Stream<Item = EventResult<u8>> + Send + '_ { stream::iter([n]) }
/// # }
/// let branches: Vec<BoxRunnable<'static, u8, u8>> = (Echo, Echo).into_branches();
/// assert_eq!(branches.len(), 2);
/// ```
pub trait IntoBranches<'a> {
    /// The runnable type every branch becomes.
    type Branch: Runnable;

    /// The branches, in order.
    fn into_branches(self) -> Vec<Self::Branch>;
}

impl<R: Runnable> IntoBranches<'_> for Vec<R> {
    type Branch = R;

    fn into_branches(self) -> Vec<R> {
        self
    }
}

impl<R: Runnable, const N: usize> IntoBranches<'_> for [R; N] {
    type Branch = R;

    fn into_branches(self) -> Vec<R> {
        self.into()
    }
}

macro_rules! tuple_branches {
    ($($branch:ident),+) => {
        impl<'a, I, O, $($branch),+> IntoBranches<'a> for ($($branch,)+)
        where
            I: Send + 'a,
            O: Send + 'a,
            $($branch: Runnable<Input = I, Output = O> + 'a,)+
        {
            type Branch = BoxRunnable<'a, I, O>;

            #[allow(non_snake_case, reason = "the bindings are named after the type parameters")]
            fn into_branches(self) -> Vec<BoxRunnable<'a, I, O>> {
                let ($($branch,)+) = self;
                vec![$(RunnableExt::boxed($branch)),+]
            }
        }
    };
}

tuple_branches!(A, B);
tuple_branches!(A, B, C);
tuple_branches!(A, B, C, D);
tuple_branches!(A, B, C, D, E);
tuple_branches!(A, B, C, D, E, F);

impl<R> Parallel<R> {
    /// Lets every branch run to its end, failures included, and reports one `Result` per branch
    /// as the final value ([`ParallelOutput::Settled`]).
    ///
    /// ```
    /// use beluga_core::runnable::{parallel, ParallelOutput};
    /// use beluga_core::{Context, Error, ErrorCode, Event, EventResult, Runnable, RunnableExt};
    /// use futures_util::Stream;
    ///
    /// struct MaybeFail(bool);
    /// impl Runnable for MaybeFail {
    ///     type Input = ();
    ///     type Output = u8;
    ///     fn stream(&self, _ctx: Context, _: ()) -> impl Stream<Item = EventResult<u8>> + Send + '_ {
    ///         let item = if self.0 { Err(Error::new(ErrorCode::ToolFailed, "no")) } else { Ok(Event::done_with(1)) };
    ///         futures_util::stream::iter([item])
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let settled = parallel([MaybeFail(false), MaybeFail(true)]).all_settled();
    /// let outcomes = settled.invoke(Context::new(), ()).await.unwrap().into_settled().unwrap();
    /// assert!(outcomes[0].is_ok() && outcomes[1].is_err());
    /// # }
    /// ```
    #[must_use]
    pub fn all_settled(mut self) -> Self {
        self.settle = true;
        self
    }

    /// The branches.
    ///
    /// ```
    /// # use beluga_core::runnable::parallel;
    /// # use beluga_core::{BoxRunnable, Context};
    /// let run = parallel(Vec::<BoxRunnable<'static, u8, u8>>::new());
    /// assert!(run.branches().is_empty());
    /// ```
    pub fn branches(&self) -> &[R] {
        &self.branches
    }
}

impl<R> Runnable for Parallel<R>
where
    R: Runnable,
    R::Input: Clone,
    R::Output: Clone,
{
    type Input = R::Input;
    type Output = ParallelOutput<R::Output>;

    fn stream(
        &self,
        ctx: Context,
        input: R::Input,
    ) -> impl Stream<Item = EventResult<ParallelOutput<R::Output>>> + Send + '_ {
        run(&self.branches, self.settle, ctx, input)
    }
}

fn no_value(branch: usize) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("branch {branch} ended without a value: no `done_with` and no `data` event"),
    )
    .with_op("parallel")
}

#[stream_producer]
fn run<'a, R>(
    branches: &'a [R],
    settle: bool,
    ctx: Context,
    input: R::Input,
) -> impl Stream<Item = EventResult<ParallelOutput<R::Output>>> + Send + 'a
where
    R: Runnable,
    R::Input: Clone,
    R::Output: Clone,
{
    // The branches share a child context: cancelling it stops them all, never the caller's. It
    // is cancelled when the run ends or is dropped, so nothing a branch handed it to outlives
    // the run.
    let branch_ctx = CancelOnDrop(ctx.child());
    // Polled as `merge` polls its inputs: only the branches that were woken, or that returned an
    // event last, so an event costs the same whatever the number of branches.
    let mut streams: ReadySet<BoxEventStream<'a, R::Output>> =
        ReadySet::with_capacity(branches.len());
    for branch in branches {
        streams.push(Box::pin(branch.stream(branch_ctx.0.clone(), input.clone())));
    }
    let mut last: Vec<Option<R::Output>> = branches.iter().map(|_| None).collect();
    let mut outcomes: Vec<Option<Result<R::Output, Error>>> =
        branches.iter().map(|_| None).collect();
    while streams.live() > 0 {
        let (i, item) = poll_fn(|cx| streams.poll_next(cx)).await;
        let outcome = match item {
            Some(Ok(event)) => {
                let (kind, meta) = event.into_parts();
                match kind {
                    EventKind::Done(value) => {
                        value.or_else(|| last[i].take()).ok_or_else(|| no_value(i))
                    }
                    EventKind::Data(value) => {
                        last[i] = Some(value.clone());
                        emit!(Event::from_parts(
                            EventKind::Data(ParallelOutput::Item { branch: i, value }),
                            meta
                        ));
                        continue;
                    }
                    other => {
                        emit!(Event::from_parts(
                            other.map(|value| ParallelOutput::Item { branch: i, value }),
                            meta
                        ));
                        continue;
                    }
                }
            }
            Some(Err(err)) => Err(err),
            None => last[i].take().ok_or_else(|| no_value(i)),
        };
        streams.remove(i);
        match outcome {
            Err(err) if !settle => {
                // Fail fast: stop every other branch now. Returning drops their streams in
                // this very poll; the cancel reaches anything they handed the context to.
                branch_ctx.0.cancel();
                return Err(err);
            }
            outcome => outcomes[i] = Some(outcome),
        }
    }
    let outcomes = outcomes.into_iter().map(|o| o.expect("every branch ended"));
    if settle {
        ParallelOutput::Settled(outcomes.collect())
    } else {
        ParallelOutput::All(outcomes.collect::<Result<Vec<_>, Error>>()?)
    }
}
