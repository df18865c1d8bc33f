// A crate may put another crate under the name `core` in its extern prelude: the expansions
// never rely on `::core` being the real one.
#[allow(unused_extern_crates)]
extern crate beluga_core as core;

use ::beluga_core::{stream_producer, Context, Error, ErrorCode, Event, EventResult, Runnable};
use ::futures_util::{Stream, StreamExt};

#[stream_producer]
fn inner(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
    2
}

#[stream_producer]
fn outer(ctx: Context, fail: bool) -> impl Stream<Item = EventResult<u32>> {
    let last = emit_all!(inner(ctx.clone()));
    emit!(Event::data(last.unwrap_or(0) + 1));
    if fail {
        return Err(Error::new(ErrorCode::InvalidInput, "fail"));
    }
    let n: u32 = "4".parse().map_err(|_| Error::new(ErrorCode::InvalidInput, "nan"))?;
    if n == 0 {
        return;
    }
    n
}

#[derive(Runnable)]
#[runnable(input = bool, output = u32, stream = run)]
struct Outer;

impl Outer {
    fn run(&self, ctx: Context, fail: bool) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        outer(ctx, fail)
    }
}

/// Polls `future` to the end with a waker that does nothing: these producers never wait.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn main() {
    let items: Vec<_> = block_on(Runnable::stream(&Outer, Context::new(), false).collect());
    let events: Vec<Event<u32>> = items.into_iter().map(|item| item.unwrap()).collect();
    assert_eq!(
        events,
        [Event::data(1), Event::data(3), Event::done_with(4)]
    );
    let failed: Vec<_> = block_on(outer(Context::new(), true).collect());
    assert_eq!(failed.len(), 3);
    assert_eq!(
        failed.last().unwrap().as_ref().unwrap_err().code(),
        ErrorCode::InvalidInput
    );
}
