// `crate = "..."` for a renamed or re-exported beluga_core.
mod facade {
    pub use beluga_core as engine;
}

use facade::engine::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = u8, output = u8, stream = run, crate = "facade::engine")]
struct Inc;

impl Inc {
    #[stream_producer(crate = "facade::engine")]
    fn run(&self, ctx: Context, n: u8) -> impl Stream<Item = EventResult<u8>> + Send + '_ {
        n + 1
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Inc.invoke(Context::new(), 1).await.unwrap(), 2);
}
