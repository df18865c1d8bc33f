// A closure inside another macro's tokens is still a closure.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn later(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    tokio::select! {
        () = std::future::ready(()) => {
            let send = |v: u32| emit!(v);
            send(1);
        }
    }
}

#[stream_producer]
fn later_async(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    tokio::select! {
        () = std::future::ready(()) => {
            let send = async move || { emit_all!(beluga_core::stream::iter([1])) };
            send().await;
        }
    }
}

fn main() {}
