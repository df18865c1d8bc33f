use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn answer(ctx: Context) -> impl Stream<Item = Result<Event<String>, Error>> {
    emit!("thinking".to_owned());
    42
}

fn main() {}
