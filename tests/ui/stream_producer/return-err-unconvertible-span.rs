use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[derive(Debug)]
struct ParseFailure;

#[stream_producer]
fn numbers(ctx: Context, fail: bool) -> impl Stream<Item = EventResult<u32>> {
    if fail {
        return Err(ParseFailure);
    }
    1
}

fn main() {}
