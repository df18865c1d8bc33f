// `emit_all!` of a collection: one error, at the user's parentheses, saying to loop instead.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn all(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    emit_all!(vec![1_u32, 2, 3]);
}

fn main() {}
