use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn words(ctx: Context) -> impl Stream<Item = Result<Event<String>, Error>> {
    emit!("hello".to_owned());
    emit!(42_u32);
}

fn main() {}
