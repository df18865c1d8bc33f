// The macro sees names, not types: a `Context` under another name is named in the attribute.
use beluga_core::{stream_producer, Context as Ctx, EventResult};
use futures_util::Stream;

#[stream_producer]
fn numbers(ctx: Ctx) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
}

#[stream_producer(ctx = ctx)]
fn named(ctx: Ctx) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
}

fn main() {
    let _ = named(Ctx::new());
}
