// `return Ok(value)`: the final value is returned as it is.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> {
    for i in 0..n {
        emit!(i);
    }
    return Ok(n);
}

fn main() {}
