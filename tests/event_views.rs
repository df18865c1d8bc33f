//! `try_map_events` (a fallible map over whole events) and `payloads` (the `data` payloads as
//! `Result<T, Error>` items): what passes, what ends the stream, and that the source is dropped
//! when it ends.

use beluga_core::{Context, Error, ErrorCode, Event, EventKind, EventStreamExt, stream_producer};
use beluga_tests::{DropGuard, drops};
use futures_util::{Stream, StreamExt, TryStreamExt};

/// Every kind once, then `done_with(99)`; holds `guard` until it is dropped.
#[stream_producer]
fn every_kind(ctx: Context, guard: DropGuard) -> impl Stream<Item = Result<Event<u32>, Error>> {
    let _guard = guard;
    emit!(1);
    emit!(Event::tool_call(2));
    emit!(Event::tool_result(3));
    emit!(Event::handoff(4));
    emit!(Event::<u32>::error(Error::new(
        ErrorCode::ToolFailed,
        "reported"
    )));
    emit!(5);
    99
}

/// Two items, then an error, then nothing (parked forever).
#[stream_producer]
fn failing(ctx: Context, guard: DropGuard) -> impl Stream<Item = Result<Event<u32>, Error>> {
    let _guard = guard;
    emit!(1);
    emit!(2);
    Err(Error::new(ErrorCode::RateLimit, "slow down"))?;
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn payloads_are_the_data_events_in_order_and_end_at_done() {
    let (guard, dropped) = DropGuard::new();
    let mut view = std::pin::pin!(every_kind(Context::new(), guard).payloads());
    assert_eq!(view.next().await.map(Result::ok), Some(Some(1)));
    assert_eq!(view.next().await.map(Result::ok), Some(Some(5)));
    assert!(
        view.next().await.is_none(),
        "done ends the view without an item"
    );
    assert_eq!(drops(&dropped), 1, "the source is dropped at its done");
    assert!(futures_util::stream::FusedStream::is_terminated(&*view));
    assert!(view.next().await.is_none());
}

#[tokio::test]
async fn payloads_try_collect_stops_at_the_terminal_error() {
    let (guard, dropped) = DropGuard::new();
    let err = failing(Context::new(), guard)
        .payloads()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);
    assert_eq!(drops(&dropped), 1);

    let (guard, _) = DropGuard::new();
    let all: Vec<Result<u32, Error>> = failing(Context::new(), guard).payloads().collect().await;
    assert_eq!(all.len(), 3, "two payloads and the error, nothing after");
    assert!(all[2].is_err());
}

#[tokio::test]
async fn try_map_events_sees_every_event_done_included() {
    let (guard, _) = DropGuard::new();
    let mut seen = Vec::new();
    let mapped = every_kind(Context::new(), guard)
        .try_map_events(|ev| {
            seen.push(ev.event_type());
            Ok(ev.map(|n| n * 10))
        })
        .collect_events()
        .await;
    assert!(mapped.error.is_none());
    assert_eq!(seen.len(), 7);
    assert_eq!(mapped.data().copied().collect::<Vec<_>>(), [10, 50]);
    assert_eq!(mapped.events.last(), Some(&Event::done_with(990)));
}

#[tokio::test]
async fn try_map_events_failure_ends_the_stream_and_drops_the_source() {
    let (guard, dropped) = DropGuard::new();
    let calls = std::cell::Cell::new(0);
    let mut mapped = std::pin::pin!(every_kind(Context::new(), guard).try_map_events(|ev| {
        calls.set(calls.get() + 1);
        match ev.kind() {
            EventKind::ToolCall(_) => Err(Error::new(ErrorCode::GuardBlocked, "no tools")),
            _ => Ok(ev),
        }
    }));
    assert_eq!(mapped.next().await.unwrap().unwrap(), Event::data(1));
    assert_eq!(drops(&dropped), 0);
    let err = mapped.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::GuardBlocked);
    assert_eq!(
        drops(&dropped),
        1,
        "the source is dropped in the poll that failed"
    );
    assert!(mapped.next().await.is_none());
    assert!(mapped.next().await.is_none());
    assert_eq!(calls.get(), 2, "no event is mapped after the failure");
}

#[tokio::test]
async fn try_map_events_passes_a_terminal_error_through() {
    let (guard, dropped) = DropGuard::new();
    let mapped = failing(Context::new(), guard)
        .try_map_events(|ev| Ok(ev.map(|n| n + 1)))
        .collect_events()
        .await;
    assert_eq!(mapped.data().copied().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(mapped.error.unwrap().code(), ErrorCode::RateLimit);
    assert_eq!(drops(&dropped), 1);
}
