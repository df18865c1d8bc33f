// The stream method takes `input` before `ctx`.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, text: String, ctx: Context) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

fn main() {}
