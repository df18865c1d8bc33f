// `?` on an error type that does not convert into `beluga_core::Error` (and that the user
// cannot give a `From` impl, `String`): the error says how to convert it.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

fn parse(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

#[stream_producer]
fn numbers(ctx: Context, text: String) -> impl Stream<Item = EventResult<u32>> {
    for word in text.split(' ') {
        emit!(parse(word)?);
    }
}

fn main() {}
