use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
union Echo {
    byte: u8,
    word: u32,
}

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

fn main() {}
