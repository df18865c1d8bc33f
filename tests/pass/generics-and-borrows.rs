use std::fmt::Display;

use beluga_core::{stream_producer, Context, EventResult, EventStreamExt};
use futures_util::Stream;

#[stream_producer]
fn labelled<'a, T: Display + 'a>(
    ctx: &'a Context,
    prefix: &'a str,
    items: impl IntoIterator<Item = T> + 'a,
) -> impl Stream<Item = EventResult<String>> + 'a {
    for item in items {
        emit!(format!("{prefix}{item}"));
    }
}

#[stream_producer]
fn echo<T>(ctx: Context, value: T) -> impl Stream<Item = EventResult<T>>
where
    T: Clone,
{
    emit!(value.clone());
    value
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::new();
    let prefix = String::from("#");
    let text: String = labelled(&ctx, &prefix, [1, 2])
        .collect_events()
        .await
        .data()
        .cloned()
        .collect();
    assert_eq!(text, "#1#2");
    assert_eq!(echo(Context::new(), 'x').collect_events().await.events.len(), 2);
}
