use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn answer(ctx: Context, early: bool) -> impl Stream<Item = Result<Event<String>, Error>> {
    if early {
        return 0.5;
    }
    emit!("thinking".to_owned());
}

fn main() {}
