// The shape of async-stream issue #106: an `emit!` inside a macro that wraps it in an
// `async move` block handed to another task. The yielder borrows a local of the body, so it
// cannot leave it.
use beluga_core::{stream_producer, Context, Error, Event};
use futures_util::Stream;

macro_rules! in_another_task {
    ($e:expr) => {
        tokio::spawn(async move {
            $e;
        })
    };
}

#[stream_producer]
fn smuggle(ctx: Context) -> impl Stream<Item = Result<Event<u64>, Error>> {
    in_another_task!(emit!(1));
}

fn main() {}
