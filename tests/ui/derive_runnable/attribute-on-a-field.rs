use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
struct Echo {
    #[runnable(input = String, output = String, stream = run)]
    prefix: String,
}

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        format!("{}{text}", self.prefix)
    }
}

fn main() {}
