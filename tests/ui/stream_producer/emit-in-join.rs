// `join!` polls its futures concurrently: their `emit!`s would share one slot.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn joined(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    tokio::join!(async { emit!(1) }, async move { emit!(2) });
}

#[stream_producer]
fn joined_futures(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    futures_util::join!(async {
        emit!(1);
    });
}

fn main() {}
