//! The boxed, object-safe form of [`Runnable`].

use super::Runnable;
use crate::context::Context;
use crate::stream::BoxEventStream;

/// The object-safe form of [`Runnable`], implemented for every runnable: `dyn DynRunnable<I, O>`
/// is any step from `I` to `O`. Use it through [`BoxRunnable`].
///
/// ```
/// use beluga_core::{Context, DynRunnable, EventResult, Runnable, stream};
/// use futures_util::Stream;
///
/// struct Echo;
/// impl Runnable for Echo {
///     type Input = u8;
///     type Output = u8;
///     fn stream(&self, _: Context, n: u8) -> impl Stream<Item = EventResult<u8>> + Send + '_ {
///         stream::iter([n])
///     }
/// }
/// let step: &dyn DynRunnable<u8, u8> = &Echo;
/// let _events = step.stream_boxed(Context::new(), 1);
/// ```
pub trait DynRunnable<I, O>: Send + Sync {
    /// [`Runnable::stream`], boxed.
    fn stream_boxed(&self, ctx: Context, input: I) -> BoxEventStream<'_, O>;
}

impl<R: Runnable> DynRunnable<R::Input, R::Output> for R {
    fn stream_boxed(&self, ctx: Context, input: R::Input) -> BoxEventStream<'_, R::Output> {
        Box::pin(self.stream(ctx, input))
    }
}

/// A boxed step from `I` to `O`, itself a [`Runnable`]: steps of different types with the same
/// input and output fit in one collection. Made with [`RunnableExt::boxed`](super::RunnableExt::boxed).
///
/// ```
/// use beluga_core::{BoxRunnable, Context, EventResult, Runnable, RunnableExt, stream};
/// use futures_util::Stream;
///
/// struct Echo;
/// impl Runnable for Echo {
///     type Input = u8;
///     type Output = u8;
///     fn stream(&self, _: Context, n: u8) -> impl Stream<Item = EventResult<u8>> + Send + '_ {
///         stream::iter([n])
///     }
/// }
/// let steps: Vec<BoxRunnable<'static, u8, u8>> = vec![Echo.boxed(), Echo.pipe(Echo).boxed()];
/// assert_eq!(steps.len(), 2);
/// ```
pub type BoxRunnable<'a, I, O> = Box<dyn DynRunnable<I, O> + 'a>;

impl<I: Send, O: Send> Runnable for Box<dyn DynRunnable<I, O> + '_> {
    type Input = I;
    type Output = O;

    fn stream(
        &self,
        ctx: Context,
        input: I,
    ) -> impl futures_core::Stream<Item = crate::event::EventResult<O>> + Send + '_ {
        (**self).stream_boxed(ctx, input)
    }
}
