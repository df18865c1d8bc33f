use beluga_core::{stream_producer, Context, Event, EventResult, EventStreamExt};
use futures_util::Stream;

// The context found by its type, through a path and a reference.
#[stream_producer]
fn by_path(ctx: &beluga_core::Context) -> impl Stream<Item = EventResult<u8>> + '_ {
    emit!(1);
}

// Two contexts, the one to watch named.
#[stream_producer(ctx = watch)]
fn named(other: Context, watch: Context) -> impl Stream<Item = EventResult<u8>> {
    drop(other);
    emit!(Event::tool_call(2));
}

// A renamed path to beluga-core.
use beluga_core as renamed;

#[stream_producer(crate = "renamed")]
fn via_renamed(ctx: renamed::Context) -> impl Stream<Item = renamed::EventResult<u8>> {
    emit!(3);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::new();
    assert_eq!(by_path(&ctx).collect_events().await.events.len(), 2);
    assert_eq!(named(Context::new(), Context::new()).collect_events().await.events.len(), 2);
    assert_eq!(via_renamed(Context::new()).collect_events().await.events.len(), 2);
}
