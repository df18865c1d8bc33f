//! The [`Cancelled`] future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use super::{CancelReason, LIVE, Node, lock};
use crate::Error;

/// Future for the [`Context::cancelled`](crate::Context::cancelled) method: resolves to the
/// `cancelled` or `deadline_exceeded` error once the context ends.
///
/// It holds its own waker slot in the context while it waits and gives it back when dropped.
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
    /// The waker stored in that slot, to skip the lock when the task polls again.
    waker: Option<Waker>,
}

impl Cancelled {
    pub(super) fn new(node: Arc<Node>) -> Self {
        Cancelled {
            node,
            key: None,
            waker: None,
        }
    }

    fn ended(&self) -> Option<Error> {
        CancelReason::from_state(self.node.state()).map(CancelReason::to_error)
    }
}

impl Future for Cancelled {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        if let Some(err) = this.ended() {
            return Poll::Ready(err);
        }
        // Outside a runtime at creation, the deadline timer could not be spawned: do it now.
        this.node.ensure_timer();
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
            lock(&self.node.links).waiters.try_remove(key);
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
