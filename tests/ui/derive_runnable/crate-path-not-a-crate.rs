use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run, crate = "beluga_core<u8>")]
struct Echo;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run, crate = "Self")]
struct Echo2;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

impl Echo2 {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The fallback impl keeps these lines free of errors of their own.
    let _ = Echo.invoke(Context::new(), "hi".to_owned()).await;
    let _ = Echo2.invoke(Context::new(), "hi".to_owned()).await;
}
