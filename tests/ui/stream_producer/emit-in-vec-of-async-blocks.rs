// Futures collected into `FuturesUnordered` run concurrently, in any order.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn unordered(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let mut all: futures_util::stream::FuturesUnordered<_> =
        vec![async { emit!(1) }].into_iter().collect();
    all.push(async { emit!(2) });
    while let Some(()) = futures_util::StreamExt::next(&mut all).await {}
}

fn main() {}
