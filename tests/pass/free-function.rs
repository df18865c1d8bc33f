use beluga_core::{stream_producer, Context, Error, Event, EventResult, EventStreamExt};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        emit!(i);
    }
}

#[stream_producer]
fn with_alias(ctx: &Context) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
    emit!(1);
    2
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::new();
    assert_eq!(count(ctx.clone(), 3).collect_events().await.events.len(), 4);
    let events = with_alias(&ctx).collect_events().await.events;
    assert_eq!(events, [Event::data(1), Event::done_with(2)]);
}
