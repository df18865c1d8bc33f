use beluga_core::{stream_producer, Context};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context) -> impl Stream<Item = u64> {
    emit!(1);
}

fn main() {}
