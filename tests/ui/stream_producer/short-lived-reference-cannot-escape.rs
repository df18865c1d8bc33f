// The shape of async-stream issue #107: a producer of `&'static str` must not be able to emit a
// reference to a local that dies before the consumer reads it.
use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[stream_producer]
fn leak(ctx: Context) -> impl Stream<Item = Result<Event<&'static str>, Error>> {
    let local = String::from("gone after this producer ends");
    emit!(local.as_str());
}

fn main() {}
