// Futures collected into `FuturesUnordered` run concurrently, in any order.
use beluga_core::{stream_producer, Context, EventResult};
use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;

#[stream_producer]
fn unordered(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let mut all: futures_util::stream::FuturesUnordered<Pin<Box<dyn Future<Output = ()>>>> =
        vec![Box::pin(async { emit!(1) }) as Pin<Box<dyn Future<Output = ()>>>].into_iter().collect();
    all.push(Box::pin(async { emit!(2) }));
    while let Some(()) = futures_util::StreamExt::next(&mut all).await {}
}

fn main() {}
