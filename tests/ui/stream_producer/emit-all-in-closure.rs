use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn relay(ctx: Context, inner: Vec<futures_util::stream::Empty<Result<Event<u64>, Error>>>) -> impl Stream<Item = Result<Event<u64>, Error>> {
    inner.into_iter().for_each(|s| {
        emit_all!(s);
    });
}

fn main() {}
