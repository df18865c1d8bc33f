use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = Qeury, output = String, stream = run)]
struct Echo;

struct Query(String);

impl Echo {
    #[stream_producer]
    fn run(&self, ctx: Context, query: Query) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        query.0
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The fallback impl keeps this line free of errors of its own.
    let _ = Echo.invoke(Context::new(), Query("hi".to_owned())).await;
}
