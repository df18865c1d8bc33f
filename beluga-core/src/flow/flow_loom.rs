//! Model checks of the permits and the queue with loom: run with
//! `RUSTFLAGS="--cfg beluga_loom" cargo test -p beluga-core --lib --release flow_loom`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

use crate::context::Context;
use crate::flow::FlowController;

/// Every interleaving with up to three preemptions, unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// Two threads take turns on one permit, each waiting when the other holds it: never both
/// at once, the permit always comes back, and nobody waits forever (loom reports a
/// deadlock if both threads block).
#[test]
fn two_threads_share_one_permit() {
    model(|| {
        let flow = FlowController::new(1).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let turn = |flow: FlowController, inside: Arc<AtomicUsize>| {
            loom::future::block_on(async move {
                let permit = flow.acquire(&Context::new()).await.unwrap();
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two permits at once"
                );
                inside.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            });
        };
        let other = {
            let (flow, inside) = (flow.clone(), Arc::clone(&inside));
            loom::thread::spawn(move || turn(flow, inside))
        };
        turn(flow.clone(), inside);
        other.join().unwrap();
        assert_eq!(flow.available(), 1);
    });
}

/// A waiter gives up (its wait is dropped) while the permit is released on another thread,
/// whether or not it was handed the permit first: the permit is never lost.
#[test]
fn a_waiter_giving_up_during_a_release_loses_no_permit() {
    model(|| {
        let flow = FlowController::new(1).unwrap();
        let held = flow.try_acquire().unwrap();
        let releaser = loom::thread::spawn(move || drop(held));
        {
            let ctx = Context::new();
            let mut wait = pin!(flow.acquire(&ctx));
            let waker = futures_util::task::noop_waker();
            let mut cx = TaskContext::from_waker(&waker);
            if let Poll::Ready(permit) = wait.as_mut().poll(&mut cx) {
                drop(permit.unwrap());
            }
        }
        releaser.join().unwrap();
        assert_eq!(flow.available(), 1);
        assert!(flow.try_acquire().is_some());
    });
}
