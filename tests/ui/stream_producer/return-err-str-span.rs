// `return Err(\"text\")`: a `&str` is not an error; the message says how to build one.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn positive(ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> {
    if n == 0 {
        return Err("zero is not positive");
    }
    emit!(n);
}

fn main() {}
