use beluga_core::{stream_producer, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn count(n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        emit!(i);
    }
}

fn main() {}
