// `input = String`, but the method takes a `u32`.
use beluga_core::{stream_producer, Context, EventResult, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = usize, stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
        n as usize
    }
}

fn main() {}
