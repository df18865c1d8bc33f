use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

#[derive(Debug)]
struct ParseFailure;

fn parse(s: &str) -> Result<u64, ParseFailure> {
    s.parse().map_err(|_| ParseFailure)
}

#[stream_producer]
fn numbers(ctx: Context, text: String) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for word in text.split(' ') {
        let n = parse(word)?;
        emit!(n);
    }
}

fn main() {}
