use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(inpt = String, output = 5, stream = "run", output = String)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

fn main() {}
