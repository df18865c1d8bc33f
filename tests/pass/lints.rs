// The expansion is clean under strict lints in the user's crate.
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
    missing_debug_implementations
)]

use beluga_core::{stream_producer, Context, Error, ErrorCode, EventResult, EventStreamExt};
use futures_util::Stream;

#[stream_producer]
fn strict(ctx: Context, fail: bool) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
    if fail {
        return Err(Error::new(ErrorCode::ToolFailed, "failed"));
    }
    let n: u32 = "2".parse().map_err(|_| Error::new(ErrorCode::InvalidInput, "nan"))?;
    n
}

#[stream_producer]
fn endless(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    loop {
        emit!(1);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(strict(Context::new(), false).collect_events().await.events.len(), 2);
    let ctx = Context::new();
    ctx.cancel();
    assert!(endless(ctx).collect_events().await.error.is_some());
}
