//! `FlowController`: acquire waits and is cancellable, permits release on drop, nothing leaks.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beluga_core::{Context, ErrorCode, FlowController, Permit};
use beluga_tests::settle;
use tokio::time::Instant;

/// Awaits `future` for at most five seconds (of Tokio time, so also under the paused clock),
/// so a bug fails the test instead of hanging it.
async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .expect("hung")
}

async fn finish<T>(task: tokio::task::JoinHandle<T>) -> T {
    within(task).await.expect("the task panicked")
}

#[test]
fn try_acquire_takes_free_permits_and_available_counts_them() {
    let flow = FlowController::new(3).unwrap();
    assert_eq!((flow.capacity(), flow.available()), (3, 3));

    let permits: Vec<Permit> = (0..3).map(|_| flow.try_acquire().unwrap()).collect();
    assert_eq!(flow.available(), 0);
    assert!(flow.try_acquire().is_none());
    assert_eq!(flow.capacity(), 3);

    drop(permits);
    assert_eq!(flow.available(), 3);
    let one = flow.try_acquire().unwrap();
    assert_eq!(flow.available(), 2);
    drop(one);
    assert_eq!(flow.available(), 3);
}

#[tokio::test]
async fn acquire_takes_a_free_permit_at_once() {
    let flow = FlowController::new(2).unwrap();
    let ctx = Context::new();
    let a = within(flow.acquire(&ctx)).await.unwrap();
    let b = within(flow.acquire(&ctx)).await.unwrap();
    assert_eq!(flow.available(), 0);
    drop((a, b));
    assert_eq!(flow.available(), 2);
}

#[tokio::test]
async fn acquire_waits_while_exhausted_and_proceeds_when_a_permit_is_dropped() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();

    let waiter = tokio::spawn({
        let flow = flow.clone();
        async move {
            let permit = flow.acquire(&Context::new()).await.unwrap();
            let inside = flow.available();
            drop(permit);
            inside
        }
    });
    settle().await;
    assert!(!waiter.is_finished(), "acquire did not wait");
    assert_eq!(flow.available(), 0);

    drop(held);
    assert_eq!(finish(waiter).await, 0, "the waiter's permit was not taken");
    assert_eq!(flow.available(), 1);
}

#[tokio::test]
async fn waiters_are_served_in_arrival_order() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for id in 0..5 {
        waiters.push(tokio::spawn({
            let (flow, order) = (flow.clone(), Arc::clone(&order));
            async move {
                let _permit = flow.acquire(&Context::new()).await.unwrap();
                order.lock().unwrap().push(id);
                tokio::task::yield_now().await; // hold it across a yield
            }
        }));
        settle().await; // queue them one after the other
    }
    // Nobody may cut in front of the queue, even when a permit is free for a moment.
    drop(held);
    assert!(flow.try_acquire().is_none(), "try_acquire jumped the queue");
    for waiter in waiters {
        finish(waiter).await;
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(flow.available(), 1);
}

#[tokio::test]
async fn a_waiter_leaving_from_the_middle_of_the_queue_keeps_the_others_in_order() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for id in 0..4 {
        waiters.push(tokio::spawn({
            let (flow, order) = (flow.clone(), Arc::clone(&order));
            async move {
                let _permit = flow.acquire(&Context::new()).await.unwrap();
                order.lock().unwrap().push(id);
                tokio::task::yield_now().await;
            }
        }));
        settle().await;
    }
    // The second and the last give up while queued.
    let last = waiters.pop().unwrap();
    let second = waiters.remove(1);
    second.abort();
    last.abort();
    assert!(second.await.unwrap_err().is_cancelled());
    assert!(last.await.unwrap_err().is_cancelled());
    drop(held);
    for waiter in waiters {
        finish(waiter).await;
    }
    assert_eq!(*order.lock().unwrap(), [0, 2]);
    assert_eq!(flow.available(), 1);
    assert!(flow.try_acquire().is_some());
}

#[tokio::test]
async fn cancel_while_waiting_returns_cancelled_and_takes_no_permit() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let ctx = Context::new();

    let (outcome, ()) = within(async {
        tokio::join!(flow.acquire(&ctx), async {
            settle().await;
            ctx.cancel();
        })
    })
    .await;
    assert_eq!(outcome.unwrap_err().code(), ErrorCode::Cancelled);

    drop(held);
    assert_eq!(flow.available(), 1, "the cancelled waiter kept a permit");
    assert!(flow.try_acquire().is_some());
}

#[tokio::test]
async fn a_cancel_racing_a_release_still_takes_no_permit() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let ctx = Context::new();
    let waiter = tokio::spawn({
        let (flow, ctx) = (flow.clone(), ctx.clone());
        async move { flow.acquire(&ctx).await.map(drop) }
    });
    settle().await;

    // The permit is handed to the queued waiter, and its context ends, before it runs again.
    drop(held);
    ctx.cancel();
    let err = finish(waiter).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(
        flow.available(),
        1,
        "the permit handed to the waiter was lost"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_acquire_takes_no_permit() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let timed_out =
        tokio::time::timeout(Duration::from_millis(10), flow.acquire(&Context::new())).await;
    assert!(timed_out.is_err());
    drop(held);
    assert_eq!(flow.available(), 1);
}

#[tokio::test]
async fn an_ended_context_is_refused_even_when_permits_are_free() {
    let flow = FlowController::new(2).unwrap();
    let ctx = Context::new();
    ctx.cancel();
    let err = within(flow.acquire(&ctx)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(flow.available(), 2);

    let child = ctx.child();
    assert!(within(flow.acquire(&child)).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_is_refused_even_if_nobody_observed_it() {
    let flow = FlowController::new(2).unwrap();
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    tokio::time::advance(Duration::from_millis(20)).await;
    assert!(!ctx.is_cancelled(), "the deadline was already observed");

    let err = within(flow.acquire(&ctx)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert_eq!(flow.available(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_while_waiting_ends_the_wait_on_time() {
    let flow = FlowController::new(1).unwrap();
    let held = flow.try_acquire().unwrap();
    let ctx = Context::new().with_timeout(Duration::from_millis(50));
    let start = Instant::now();

    let err = within(flow.acquire(&ctx)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    let waited = start.elapsed();
    assert!(
        (Duration::from_millis(50)..Duration::from_millis(52)).contains(&waited),
        "waited {waited:?}"
    );

    assert_eq!(flow.available(), 0);
    drop(held);
    assert_eq!(flow.available(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_capacity_in_flight_and_every_permit_comes_back() {
    const CAPACITY: usize = 3;
    let flow = FlowController::new(CAPACITY).unwrap();
    let ctx = Context::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        // Acquire here, then move the permit into the task that does the work.
        let permit = within(flow.acquire(&ctx)).await.unwrap();
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        }));
    }
    for task in tasks {
        finish(task).await;
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=CAPACITY).contains(&peak), "peak {peak}");
    assert_eq!(flow.available(), CAPACITY);
}

#[test]
fn clones_share_their_permits() {
    let flow = FlowController::new(2).unwrap();
    let other = flow.clone();
    let permit = other.try_acquire().unwrap();
    assert_eq!(flow.available(), 1);
    drop(other); // the permit keeps working without the clone it came from
    assert_eq!(flow.available(), 1);
    drop(permit);
    assert_eq!(flow.available(), 2);
}

#[test]
fn zero_or_too_many_permits_are_invalid_input_errors() {
    let zero = FlowController::new(0).unwrap_err();
    assert_eq!(zero.code(), ErrorCode::InvalidInput);
    assert!(zero.to_string().contains("at least 1"), "{zero}");
    let huge = FlowController::new(usize::MAX).unwrap_err();
    assert_eq!(huge.code(), ErrorCode::InvalidInput);
    assert!(huge.to_string().contains("maximum"), "{huge}");
    assert_eq!(
        FlowController::new(usize::MAX >> 3).unwrap().capacity(),
        usize::MAX >> 3
    );
}

#[test]
fn debug_shows_capacity_and_available() {
    let flow = FlowController::new(2).unwrap();
    let permit = flow.try_acquire().unwrap();
    assert_eq!(
        format!("{flow:?}"),
        "FlowController { capacity: 2, available: 1, .. }"
    );
    assert_eq!(format!("{permit:?}"), "Permit { .. }");
}

#[test]
fn controller_and_permit_are_send_sync_and_static() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<FlowController>();
    send_sync_static::<Permit>();
}
