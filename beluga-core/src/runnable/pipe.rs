//! [`Pipe`]: one step's result feeds the next.

use futures_core::Stream;
use futures_util::StreamExt;
use futures_util::future::Either;

use super::{Runnable, RunnableExt};
use crate::context::Context;
use crate::event::EventResult;
use crate::stream_ext::EventStreamExt;

/// Runnable for the [`pipe`](super::RunnableExt::pipe) method: runs `first` to completion
/// (its [`invoke`](super::RunnableExt::invoke)), then streams `second` on that result.
///
/// An error from `first` ends the pipe with that error before `second` starts; cancellation of
/// the context reaches whichever step is running, and ends the pipe with the context's error.
/// `second`'s events come out as they are, its `done` included: the pipe ends as `second` does
/// and adds no terminal item of its own (see
/// [how a stream ends](crate::stream#how-a-stream-ends)).
#[derive(Debug, Clone)]
pub struct Pipe<A, B> {
    first: A,
    second: B,
}

impl<A, B> Pipe<A, B> {
    pub(crate) fn new(first: A, second: B) -> Self {
        Pipe { first, second }
    }

    /// The two steps.
    ///
    /// ```
    /// use beluga_core::{Context, EventResult, Runnable, RunnableExt, stream};
    /// # use futures_util::Stream;
    /// # struct Step;
    /// # impl Runnable for Step {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn stream(&self, _: Context, n: u8) -> impl Stream<Item = EventResult<u8>> + Send + '_ { stream::iter([n]) }
    /// # }
    /// let (first, second) = Step.pipe(Step).into_inner();
    /// # let _ = (first, second);
    /// ```
    pub fn into_inner(self) -> (A, B) {
        (self.first, self.second)
    }
}

impl<A, B> Runnable for Pipe<A, B>
where
    A: Runnable,
    B: Runnable<Input = A::Output>,
{
    type Input = A::Input;
    type Output = B::Output;

    fn stream(
        &self,
        ctx: Context,
        input: A::Input,
    ) -> impl Stream<Item = EventResult<B::Output>> + Send + '_ {
        piped(&self.first, &self.second, ctx, input)
    }
}

/// `first`'s result, then `second`'s events as they come, `done` included: the pipe adds no
/// terminal item of its own (see [how a stream ends](crate::stream#how-a-stream-ends)), and
/// [`cancellable`](crate::EventStreamExt::cancellable) ends it when `ctx` does, whichever step
/// is running.
fn piped<'a, A, B>(
    first: &'a A,
    second: &'a B,
    ctx: Context,
    input: A::Input,
) -> impl Stream<Item = EventResult<B::Output>> + Send + 'a
where
    A: Runnable,
    B: Runnable<Input = A::Output>,
{
    let middle = first.invoke(ctx.clone(), input);
    let watched = ctx.clone();
    futures_util::stream::once(middle)
        .flat_map(move |middle| match middle {
            Ok(middle) => Either::Left(second.stream(ctx.clone(), middle)),
            Err(err) => Either::Right(futures_util::stream::iter([Err(err)])),
        })
        .cancellable(&watched)
}
