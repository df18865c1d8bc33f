// A plain struct, an enum and a tuple struct, each streaming through a `#[stream_producer]`.
use beluga_core::{stream_producer, Context, Event, EventResult, EventStreamExt, Runnable};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = words)]
struct Splitter {
    separator: char,
}

impl Splitter {
    #[stream_producer]
    fn words(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        for word in text.split(self.separator) {
            emit!(word.to_owned());
        }
    }
}

#[derive(Runnable)]
#[runnable(input = u32, output = u32, stream = run)]
enum Step {
    Double,
    Add(u32),
}

impl Step {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        match self {
            Step::Double => n * 2,
            Step::Add(k) => n + k,
        }
    }
}

#[derive(Runnable)]
#[runnable(input = (), output = &'static str, stream = greet)]
struct Greeter(&'static str);

impl Greeter {
    #[stream_producer]
    fn greet(&self, ctx: Context, _input: ()) -> impl Stream<Item = EventResult<&'static str>> + Send + '_ {
        emit!(self.0);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let splitter = Splitter { separator: ',' };
    let events = splitter.stream(Context::new(), "a,b".to_owned()).collect_events().await;
    assert_eq!(events.data().cloned().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(events.events.last(), Some(&Event::done()));

    let events = Step::Add(1).stream(Context::new(), 2).collect_events().await;
    assert_eq!(events.events, [Event::done_with(3)]);
    let events = Step::Double.stream(Context::new(), 2).collect_events().await;
    assert_eq!(events.events, [Event::done_with(4)]);

    let events = Greeter("hi").stream(Context::new(), ()).collect_events().await;
    assert_eq!(events.data().copied().collect::<Vec<_>>(), ["hi"]);
}
