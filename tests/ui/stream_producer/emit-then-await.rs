// `emit!` waits for the consumer by itself: an `.await` after it is an error at the `.await`.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> {
    for i in 0..n {
        emit!(i).await;
    }
}

fn main() {}
