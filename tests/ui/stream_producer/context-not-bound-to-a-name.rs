use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn count(_: Context) -> impl Stream<Item = Result<Event<u64>, Error>> {
    emit!(1);
}

fn main() {}
