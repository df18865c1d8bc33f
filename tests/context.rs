//! `Context`: the cancellation tree, deadlines under the paused clock, parked waiters, values.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beluga_core::{CancelReason, Context, ErrorCode, Event, EventResult, EventStreamExt};
use beluga_tests::{DropGuard, drops};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[test]
fn parent_cancels_every_descendant() {
    let root = Context::new();
    let child = root.child();
    let grandchild = child.with_request_id("r").with_session_id("s");
    let sibling = root.with_value(7_u8);
    root.cancel();
    for ctx in [&root, &child, &grandchild, &sibling] {
        assert!(ctx.is_cancelled());
        assert_eq!(ctx.reason(), Some(CancelReason::Cancelled));
        assert_eq!(ctx.error().map(|e| e.code()), Some(ErrorCode::Cancelled));
    }
    // A child made after the cancel starts cancelled.
    assert!(root.child().is_cancelled());
    assert!(grandchild.child().is_cancelled());
}

#[test]
fn a_cancel_reaches_every_node_of_a_wide_and_deep_tree() {
    let root = Context::new();
    let children: Vec<Context> = (0..10).map(|_| root.child()).collect();
    let grandchildren: Vec<Context> = children
        .iter()
        .flat_map(|child| (0..3).map(|_| child.child()))
        .collect();
    let mut chain = grandchildren[7].clone();
    for _ in 0..100 {
        chain = chain.child();
    }
    // A dropped child is not reached, and does not stop the others from being reached.
    drop(root.child());
    root.cancel();
    for ctx in children.iter().chain(&grandchildren).chain([&chain]) {
        assert_eq!(ctx.reason(), Some(CancelReason::Cancelled));
    }
    // Dropping the cancelled nodes, children before their parent or after it, is quiet.
    drop(children);
    drop(root);
    drop(grandchildren);
    assert!(chain.is_cancelled());
}

#[test]
fn child_never_cancels_its_parent_or_siblings() {
    let root = Context::new();
    let a = root.child();
    let b = root.child();
    let a_child = a.child();
    a.cancel();
    assert!(a.is_cancelled());
    assert!(a_child.is_cancelled());
    assert!(!root.is_cancelled());
    assert!(!b.is_cancelled());
    assert!(!root.child().is_cancelled());
}

#[test]
fn clones_share_one_context() {
    let ctx = Context::new();
    let clone = ctx.clone();
    clone.cancel();
    assert!(ctx.is_cancelled());
}

#[test]
fn values_are_inherited_and_overridden() {
    #[derive(Debug, PartialEq)]
    struct Tenant(&'static str);

    let ctx = Context::new()
        .with_request_id("req-1")
        .with_session_id("sess-1")
        .with_value(Tenant("acme"))
        .with_value(3_u32);
    let child = ctx
        .child()
        .with_request_id("req-2")
        .with_value(Tenant("other"));
    assert_eq!(ctx.request_id(), Some("req-1"));
    assert_eq!(child.request_id(), Some("req-2"));
    assert_eq!(child.session_id(), Some("sess-1"));
    assert_eq!(ctx.value::<Tenant>(), Some(&Tenant("acme")));
    assert_eq!(child.value::<Tenant>(), Some(&Tenant("other")));
    assert_eq!(child.value::<u32>(), Some(&3));
    assert_eq!(child.value::<u64>(), None);
}

#[test]
fn a_deep_chain_of_values_drops_without_recursion() {
    // As deep as the chain of children `Context` is tested with: each level adds a value entry
    // that points at the one before it, and dropping the last context frees them all.
    const DEPTH: usize = 200_000;
    let (guard, dropped) = DropGuard::new();
    let root = Context::new().with_value(guard);
    let mut ctx = root.clone();
    for level in 0..DEPTH {
        ctx = ctx.with_value(level);
    }
    assert_eq!(ctx.value::<usize>(), Some(&(DEPTH - 1)));
    assert!(ctx.value::<DropGuard>().is_some());
    drop(root);
    assert_eq!(drops(&dropped), 0, "the chain still holds the first value");
    drop(ctx);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(start_paused = true)]
async fn deadline_is_observed_on_time_under_the_paused_clock() {
    let start = Instant::now();
    let ctx = Context::new().with_timeout(Duration::from_millis(100));
    let child = ctx.child();
    assert_eq!(ctx.deadline(), Some(start + Duration::from_millis(100)));

    tokio::time::sleep(Duration::from_millis(99)).await;
    assert!(!child.check_deadline(), "fired early");
    assert!(!ctx.is_cancelled());

    tokio::time::sleep(Duration::from_millis(1)).await;
    // Observed through the child, it ends the context that owns the deadline, and so every
    // context sharing it: `is_cancelled` alone sees it from now on.
    assert!(child.check_deadline(), "did not fire");
    assert!(ctx.is_cancelled());
    assert_eq!(ctx.reason(), Some(CancelReason::DeadlineExceeded));
    assert_eq!(
        ctx.child().error().map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelled_future_resolves_exactly_at_the_deadline() {
    let start = Instant::now();
    let ctx = Context::new().with_timeout(Duration::from_secs(3));
    let err = ctx.cancelled().await;
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn the_earlier_deadline_wins_and_the_first_reason_sticks() {
    let outer = Context::new().with_timeout(Duration::from_secs(1));
    let inner = outer.with_timeout(Duration::from_secs(10));
    assert_eq!(inner.deadline(), outer.deadline());
    let tighter = outer.with_timeout(Duration::from_millis(10));
    assert!(tighter.deadline() < outer.deadline());

    tighter.cancelled().await;
    assert_eq!(tighter.reason(), Some(CancelReason::DeadlineExceeded));
    assert!(!outer.is_cancelled());

    outer.cancel();
    assert_eq!(inner.reason(), Some(CancelReason::Cancelled));
    // A later deadline cannot overwrite an earlier cancel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(inner.reason(), Some(CancelReason::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn check_deadline_reads_the_clock_once() {
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    assert!(!ctx.check_deadline());
    assert_eq!(ctx.remaining(), Some(Duration::from_millis(10)));
    tokio::time::advance(Duration::from_millis(10)).await;
    assert!(ctx.check_deadline());
    assert_eq!(ctx.reason(), Some(CancelReason::DeadlineExceeded));
    assert_eq!(ctx.remaining(), Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn error_and_reason_report_a_deadline_that_has_passed() {
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    let child = ctx.child();
    assert!(ctx.error().is_none());
    assert_eq!(child.reason(), None);
    tokio::time::advance(Duration::from_millis(10)).await;
    // Nothing else has looked at the clock: asking for the error is enough, as Go's `ctx.Err()`.
    assert_eq!(
        child.error().map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
    assert_eq!(ctx.reason(), Some(CancelReason::DeadlineExceeded));
    assert!(
        ctx.is_cancelled(),
        "the observation ends the context for everyone"
    );
}

/// The hand-written producer of the crate docs ("Without the macro"): checks `ctx.error()`
/// before every item.
struct Tokens {
    ctx: Context,
    words: Vec<String>,
    next: usize,
    done: bool,
}

impl futures_util::Stream for Tokens {
    type Item = EventResult<String>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(err) = self.ctx.error() {
            self.done = true;
            return Poll::Ready(Some(Err(err)));
        }
        if self.next < self.words.len() {
            let word = self.words[self.next].to_uppercase();
            self.next += 1;
            return Poll::Ready(Some(Ok(Event::data(word))));
        }
        self.done = true;
        Poll::Ready(Some(Ok(Event::done_with("final answer".to_owned()))))
    }
}

#[tokio::test(start_paused = true)]
async fn a_hand_written_stream_checking_error_ends_at_an_expired_deadline() {
    let words: Vec<String> = (0..1_000).map(|i| format!("word{i}")).collect();
    let live = Tokens {
        ctx: Context::new(),
        words: words.clone(),
        next: 0,
        done: false,
    };
    assert_eq!(live.collect_events().await.events.len(), 1_001);

    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    tokio::time::advance(Duration::from_millis(10)).await;
    let expired = Tokens {
        ctx,
        words,
        next: 0,
        done: false,
    };
    let collected = expired.collect_events().await;
    assert!(
        collected.events.is_empty(),
        "{} events past the deadline",
        collected.events.len()
    );
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_starts_expired() {
    let ctx = Context::new().with_timeout(Duration::ZERO);
    assert!(ctx.is_cancelled());
    assert_eq!(ctx.reason(), Some(CancelReason::DeadlineExceeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_wakes_every_parked_task() {
    let ctx = Context::new();
    let parked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..16 {
        // Half wait on the context itself, half on a child: both must wake.
        let waiter = if i % 2 == 0 { ctx.clone() } else { ctx.child() };
        let parked = Arc::clone(&parked);
        tasks.push(tokio::spawn(async move {
            let fut = waiter.cancelled();
            parked.fetch_add(1, Ordering::SeqCst);
            fut.await
        }));
    }
    while parked.load(Ordering::SeqCst) < 16 {
        tokio::task::yield_now().await;
    }
    // Give every task a chance to reach its `await` and park.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for task in &tasks {
        assert!(!task.is_finished(), "woke before the cancel");
    }
    ctx.cancel();
    for task in tasks {
        let err = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("a parked task was never woken")
            .unwrap();
        assert_eq!(err.code(), ErrorCode::Cancelled);
    }
}

#[tokio::test]
async fn a_dropped_waiter_does_not_block_the_others() {
    let ctx = Context::new();
    let mut first = Box::pin(ctx.cancelled());
    let second = ctx.cancelled();
    // Park the first, then drop it: its slot goes away, the second still wakes.
    assert!(futures_util::poll!(&mut first).is_pending());
    drop(first);
    let task = tokio::spawn(second);
    tokio::task::yield_now().await;
    ctx.cancel();
    let err = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("never woken")
        .unwrap();
    assert!(err.is_cancellation());
}

#[tokio::test]
async fn cancellation_token_converts() {
    let token = CancellationToken::new();
    let ctx = Context::from(token.clone());
    let child = ctx.child();
    assert!(!ctx.check_deadline());
    let waiter = tokio::spawn(child.cancelled());
    tokio::task::yield_now().await;
    token.cancel();
    // A parked waiter wakes up on the token, and so does `check_deadline`.
    let err = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the token's cancel never woke the waiter")
        .unwrap();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(ctx.check_deadline());
    assert!(ctx.is_cancelled());

    // An already cancelled token gives an already cancelled context.
    assert!(Context::from(token).is_cancelled());
}

#[test]
fn a_cancelled_token_converts_without_a_runtime() {
    let token = CancellationToken::new();
    token.cancel();
    assert!(Context::from(token).is_cancelled());
}

#[test]
fn a_live_token_converts_without_a_runtime() {
    let token = CancellationToken::new();
    let ctx = Context::from(token.clone());
    token.cancel();
    assert!(ctx.check_deadline());
}

#[tokio::test]
async fn contexts_spawn_no_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let ctx = Context::new().with_timeout(Duration::from_secs(3600));
    let from_token = Context::from(CancellationToken::new()).with_timeout(Duration::from_secs(1));
    let mut parked = Box::pin(ctx.cancelled());
    assert!(futures_util::poll!(&mut parked).is_pending());
    assert_eq!(metrics.num_alive_tasks(), before);
    drop((ctx, from_token, parked));
    assert_eq!(metrics.num_alive_tasks(), before);
}

#[test]
fn a_context_outlives_the_runtime_it_was_made_in() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let ctx = first.block_on(async { Context::new().with_timeout(Duration::from_millis(20)) });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), ctx.cancelled())
            .await
            .expect("the deadline never fired in the second runtime")
    });
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
}

#[test]
#[should_panic(expected = "timers are disabled")]
fn waiting_for_a_deadline_without_the_time_driver_fails_loudly() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = Context::new().with_timeout(Duration::from_millis(10));
        ctx.cancelled().await;
    });
}

#[tokio::test]
async fn waiter_slots_are_reused_safely() {
    // A parks and leaves; C takes A's slot; B leaves; a cancel must still wake C.
    let ctx = Context::new();
    let mut a = Box::pin(ctx.cancelled());
    let mut b = Box::pin(ctx.cancelled());
    assert!(futures_util::poll!(&mut a).is_pending());
    assert!(futures_util::poll!(&mut b).is_pending());
    drop(a);
    let c = tokio::spawn(ctx.cancelled());
    tokio::task::yield_now().await;
    drop(b);
    ctx.cancel();
    let err = tokio::time::timeout(Duration::from_secs(5), c)
        .await
        .expect("C was never woken")
        .unwrap();
    assert!(err.is_cancellation());
}

#[test]
fn cancel_racing_with_registration_never_loses_a_wakeup() {
    // Many rounds of: one thread parks on `cancelled()` while another cancels at once.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..2_000 {
            let ctx = Context::new();
            let waiter = tokio::spawn(ctx.child().cancelled());
            let canceller = tokio::spawn(async move { ctx.cancel() });
            canceller.await.unwrap();
            let err = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("lost wake-up")
                .unwrap();
            assert!(err.is_cancellation());
        }
    });
}

#[test]
fn contexts_are_send_sync_and_cheap() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<beluga_core::context::Cancelled>();
    assert_eq!(size_of::<Context>(), size_of::<usize>());
}

#[test]
fn outside_a_runtime_the_deadline_is_seen_by_check_deadline_and_cancelled() {
    // Nothing has observed the deadline, so the flag stays clear until someone looks.
    let ctx = Context::new().with_timeout(Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(2));
    assert!(!ctx.is_cancelled());
    assert!(ctx.check_deadline());
    assert_eq!(ctx.reason(), Some(CancelReason::DeadlineExceeded));

    // Awaited later inside a runtime, `cancelled()` arms its own timer.
    let later = Context::new().with_timeout(Duration::from_millis(20));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err = rt.block_on(later.cancelled());
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
}
