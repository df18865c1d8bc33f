// A `select!` branch future runs concurrently with the others and is dropped when another
// branch wins: an `emit!` inside it could be lost or overwritten.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn raced(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    tokio::select! {
        biased;
        _ = async { emit!(1) } => {}
        () = std::future::ready(()) => emit!(2),
    }
}

#[stream_producer]
fn raced_futures(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let mut other = futures_util::future::ready(());
    futures_util::select_biased! {
        () = futures_util::FutureExt::fuse(Box::pin(async move { emit!(1) })) => {}
        () = other => emit!(2),
    }
}

fn main() {}
