// An associated function without `self`.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send {
        text
    }
}

fn main() {}
