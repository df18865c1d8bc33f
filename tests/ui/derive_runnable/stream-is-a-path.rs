use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = Self::run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The fallback impl keeps this line free of errors of its own.
    let _ = Echo.invoke(Context::new(), "hi".to_owned()).await;
}
