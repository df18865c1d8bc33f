// A mistake in the attribute's arguments keeps the body type-checked too.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer(context = ctx)]
fn count(ctx: Context) -> impl Stream<Item = EventResult<u64>> {
    emit!(1_u64);
    emit!("two");
}

fn main() {}
