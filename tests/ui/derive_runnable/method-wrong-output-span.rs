use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = count)]
struct Counter;

impl Counter {
    #[stream_producer]
    fn count(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
        text.len()
    }
}

fn main() {}
