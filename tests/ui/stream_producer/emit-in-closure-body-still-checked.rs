// A misplaced `emit!` is an error, and its value is still type-checked where it is, as is the
// rest of the body.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

fn scaled(value: u64, factor: u64) -> u64 {
    value * factor
}

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = EventResult<u64>> {
    (0..n).for_each(|i| {
        emit!(scaled(i, "2"));
    });
    let last: u64 = n.to_string();
    last
}

fn main() {}
