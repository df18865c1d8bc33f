// A macro of the user's that wraps its argument in an `async` block: the attribute cannot see
// the block, rustc rejects the `emit!` inside it.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

macro_rules! deferred {
    ($e:expr) => {
        async { $e }
    };
}

macro_rules! in_a_closure {
    ($e:expr) => {
        || $e
    };
}

#[stream_producer]
fn wrapped(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let first = deferred!(emit!(1));
    emit!(2);
    first.await;
}

#[stream_producer]
fn wrapped_all(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let first = deferred!(emit_all!(beluga_core::stream::iter([1])));
    first.await;
}

#[stream_producer]
fn closure(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let send = in_a_closure!(emit!(1));
    send();
}

fn main() {}
