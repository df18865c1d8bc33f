//! The boxed, object-safe form of [`Runnable`].

use super::Runnable;
use crate::{Context, EventStream};

/// The object-safe form of [`Runnable`], implemented for every runnable: `dyn DynRunnable<I, O>`
/// is any step from `I` to `O`. Use it through [`BoxRunnable`].
pub trait DynRunnable<I, O>: Send + Sync {
    /// [`Runnable::stream`], boxed.
    fn stream_boxed(&self, ctx: Context, input: I) -> EventStream<'_, O>;
}

impl<R: Runnable> DynRunnable<R::Input, R::Output> for R {
    fn stream_boxed(&self, ctx: Context, input: R::Input) -> EventStream<'_, R::Output> {
        Box::pin(self.stream(ctx, input))
    }
}

/// A boxed step from `I` to `O`, itself a [`Runnable`]: steps of different types with the same
/// input and output fit in one collection. Made with [`RunnableExt::boxed`](super::RunnableExt::boxed).
pub type BoxRunnable<'a, I, O> = Box<dyn DynRunnable<I, O> + 'a>;

impl<I: Send, O: Send> Runnable for Box<dyn DynRunnable<I, O> + '_> {
    type Input = I;
    type Output = O;

    fn stream(
        &self,
        ctx: Context,
        input: I,
    ) -> impl futures_core::Stream<Item = crate::EventResult<O>> + Send + '_ {
        (**self).stream_boxed(ctx, input)
    }
}
