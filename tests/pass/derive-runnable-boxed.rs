// Derived runnables boxed side by side, and piped; one whose method returns a boxed stream.
use beluga_core::{
    stream_producer, BoxRunnable, Context, EventResult, BoxEventStream, Runnable, RunnableExt,
};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Upper;

impl Upper {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text.to_uppercase()
    }
}

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Repeat {
    times: usize,
}

impl Repeat {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        text.repeat(self.times)
    }
}

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Reverse;

impl Reverse {
    #[stream_producer]
    fn run(&self, ctx: Context, text: String) -> BoxEventStream<'_, String> {
        text.chars().rev().collect::<String>()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let steps: Vec<BoxRunnable<'_, String, String>> = vec![
        Upper.boxed(),
        Repeat { times: 2 }.boxed(),
        Upper.pipe(Repeat { times: 3 }).boxed(),
        Reverse.boxed(),
    ];
    let mut outputs = Vec::new();
    for step in &steps {
        outputs.push(step.invoke(Context::new(), "ab".to_owned()).await.unwrap());
    }
    assert_eq!(outputs, ["AB", "abab", "ABABAB", "ba"]);

    let dynamic: &dyn beluga_core::DynRunnable<String, String> = &Upper;
    let boxed: BoxRunnable<'_, String, String> = Box::new(Upper);
    drop((dynamic, boxed));
}
