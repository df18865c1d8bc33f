//! The [`Cancelled`] future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use tokio::time::Sleep;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::CancelReason;
use super::node::{CANCELLED, DEADLINE, LIVE, Node, lock};
use crate::error::Error;

/// Future for the [`Context::cancelled`](crate::Context::cancelled) method: resolves to the
/// `cancelled` or `deadline_exceeded` error once the context ends.
///
/// While it waits it holds its own waker slot in the context, and if the context has a deadline
/// (or came from a `CancellationToken`) it also waits for that, so a parked task wakes up on
/// time. Waiting for a deadline needs a Tokio runtime with the time driver enabled.
///
/// ```
/// use beluga_core::{Context, ErrorCode};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// let parked = tokio::spawn(ctx.cancelled());
/// tokio::task::yield_now().await; // let it park
/// ctx.cancel();
/// assert_eq!(parked.await.unwrap().code(), ErrorCode::Cancelled);
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Cancelled {
    node: Arc<Node>,
    /// Our slot in `node.links.waiters`, once registered.
    key: Option<usize>,
    /// The waker stored in that slot, to skip the lock when the task polls again. Holding this
    /// clone also means the slot's waker is never the last one dropped under the lock.
    waker: Option<Waker>,
    /// The deadline timer, armed the first time the future parks.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The token watch, armed the first time the future parks.
    token: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Cancelled {
    pub(super) fn new(node: Arc<Node>) -> Self {
        Cancelled {
            node,
            key: None,
            waker: None,
            sleep: None,
            token: None,
        }
    }

    fn ended(&self) -> Option<Error> {
        CancelReason::from_state(self.node.state()).map(CancelReason::to_error)
    }

    /// Polls the deadline timer and the token watch; ends the context if either fired.
    fn poll_sources(&mut self, cx: &mut TaskContext<'_>) {
        if let Some(deadline) = self.node.deadline {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_ready() {
                if let Some(owner) = self.node.deadline_owner() {
                    owner.cancel(DEADLINE);
                }
            }
        }
        if let Some(token) = &self.node.token {
            let watch = self
                .token
                .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()));
            if watch.as_mut().poll(cx).is_ready() {
                self.node.cancel(CANCELLED);
            }
        }
    }
}

impl Future for Cancelled {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        if let Some(err) = this.ended() {
            return Poll::Ready(err);
        }
        this.poll_sources(cx);
        if let Some(err) = this.ended() {
            return Poll::Ready(err);
        }
        if this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            // Registered with this very waker, and the flag was re-checked above.
            return Poll::Pending;
        }
        let mut links = lock(&this.node.links);
        // The state is written under this lock: checking it here cannot miss a cancel that
        // races with the registration below.
        if this.node.state.load(std::sync::atomic::Ordering::Relaxed) != LIVE {
            drop(links);
            return Poll::Ready(this.ended().unwrap_or_else(Error::cancelled));
        }
        match this.key.and_then(|k| links.waiters.get_mut(k)) {
            Some(slot) => slot.clone_from(cx.waker()),
            None => this.key = Some(links.waiters.insert(cx.waker().clone())),
        }
        drop(links);
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // After a cancel the slab was drained and nothing is inserted again, so the key can
            // only name our own slot.
            let mut links = lock(&self.node.links);
            links.waiters.try_remove(key);
            if links.waiters.is_empty() && links.waiters.capacity() > 64 {
                // After a burst of waiters, give the memory back.
                links.waiters = slab::Slab::new();
            }
        }
    }
}

impl std::fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancelled")
            .field("reason", &CancelReason::from_state(self.node.state()))
            .field("registered", &self.key.is_some())
            .finish_non_exhaustive()
    }
}
