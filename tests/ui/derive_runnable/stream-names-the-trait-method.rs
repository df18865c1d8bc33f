// `stream = stream` on a type without an inherent `stream` method: the generated
// `Runnable::stream` would call itself forever.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = stream)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

fn main() {}
