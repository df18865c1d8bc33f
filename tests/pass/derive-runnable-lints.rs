// The derive's expansion is clean under strict lints in the user's crate, with the default and
// a renamed path to beluga_core.
#![forbid(unsafe_code)]
#![deny(
    warnings,
    unused,
    rust_2018_idioms,
    unused_qualifications,
    unreachable_pub,
    single_use_lifetimes,
    trivial_casts,
    unused_results,
    missing_debug_implementations,
    missing_docs
)]
//! Lint-clean derive.

use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

/// A documented runnable.
#[derive(Debug, Runnable)]
#[runnable(input = u32, output = u32, stream = run)]
pub struct Strict;

impl Strict {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        emit!(n);
        n + 1
    }
}

use beluga_core as renamed;

/// Through a renamed path: `renamed::Context` and the other generated paths must not look
/// needlessly qualified although `Context`, `EventResult`, `Runnable` and `Stream` are imported.
#[derive(Debug, Runnable)]
#[runnable(input = u32, output = u32, stream = run, crate = "renamed")]
pub struct Renamed<'a, T: Sync> {
    value: &'a T,
}

impl<T: Sync> Renamed<'_, T> {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let _ = self.value;
        n
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Strict.invoke(Context::new(), 1).await.ok(), Some(2));
    assert_eq!(Renamed { value: &() }.invoke(Context::new(), 3).await.ok(), Some(3));
}
