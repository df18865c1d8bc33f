use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    (0..n).for_each(|i| {
        emit!(i);
    });
}

fn main() {}
