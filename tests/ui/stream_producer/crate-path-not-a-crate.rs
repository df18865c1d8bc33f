use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer(crate = "beluga<u8>")]
fn generic_arguments(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    return Err(beluga_core::Error::cancelled());
}

#[stream_producer(crate = "beluga::<u8>::inner")]
fn turbofish(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
}

#[stream_producer(crate = "Self")]
fn self_type(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    emit_all!(turbofish(ctx));
}

fn main() {}
