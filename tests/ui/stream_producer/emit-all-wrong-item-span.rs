// `emit_all!` of an event stream of another payload type: one error, naming both types.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn words(ctx: Context) -> impl Stream<Item = EventResult<String>> {
    emit!("one".to_owned());
}

#[stream_producer]
fn numbers(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    emit_all!(words(ctx.clone()));
}

fn main() {}
