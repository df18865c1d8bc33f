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

// Payloads of `()`: a unit tail is no final value, a plain `done`.
#[stream_producer]
fn ticks(ctx: Context, n: u64) -> impl Stream<Item = EventResult<()>> {
    for _ in 0..n {
        emit!(());
    }
    ()
}

// A tail that never completes is no final value either.
#[stream_producer]
fn until_cancelled(ctx: Context) -> impl Stream<Item = EventResult<u64>> {
    let mut i = 0;
    loop {
        emit!(i);
        i += 1;
    }
}

// `?` on a `Result` whose error converts, and `return Err` of one, end the stream with it.
#[stream_producer]
fn parsed(ctx: Context, text: String) -> impl Stream<Item = EventResult<u64>> {
    for word in text.split(' ') {
        let n: u64 = word
            .parse()
            .map_err(|_| Error::new(beluga_core::ErrorCode::InvalidInput, "not a number"))?;
        if n == 0 {
            return Err(std::io::Error::other("zero"));
        }
        emit!(n);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::new();
    assert_eq!(count(ctx.clone(), 3).collect_events().await.events.len(), 4);
    let events = with_alias(&ctx).collect_events().await.events;
    assert_eq!(events, [Event::data(1), Event::done_with(2)]);
    let ticks = ticks(ctx.clone(), 2).collect_events().await.events;
    assert_eq!(ticks, [Event::data(()), Event::data(()), Event::done()]);
    let first = futures_util::StreamExt::next(&mut Box::pin(until_cancelled(ctx.clone()))).await;
    assert_eq!(first.unwrap().unwrap(), Event::data(0));
    let numbers = parsed(ctx.clone(), "1 2 x".to_owned()).collect_events().await;
    assert_eq!(numbers.events, [Event::data(1), Event::data(2)]);
    assert!(numbers.error.is_some());
    let zero = parsed(ctx, "3 0".to_owned()).collect_events().await;
    assert_eq!(zero.events, [Event::data(3)]);
    assert!(zero.error.is_some());
}
