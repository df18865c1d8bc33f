use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Echo;

impl Echo {
    // No input argument: `stream = run` calls `Self::run(self, ctx, input)`.
    #[stream_producer]
    fn run(&self, ctx: Context) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        String::new()
    }
}

fn main() {}
