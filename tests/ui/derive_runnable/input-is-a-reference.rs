// `input = &str`: the associated type cannot borrow; the derive says which owned type to
// write, on the attribute.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = &str, output = &[u8], stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run<'a>(&'a self, ctx: Context, text: &'a str) -> impl Stream<Item = EventResult<&'a [u8]>> + Send + 'a {
        text.as_bytes()
    }
}

fn main() {}
