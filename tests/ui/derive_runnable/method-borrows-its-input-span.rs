// `input = String` with a stream method that takes `&str` (edition 2024: the stream would
// keep the borrow): the derive says to take the input owned, and the producer says the same at
// the argument.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = usize, stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: &str) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
        text.len()
    }
}

fn main() {}
