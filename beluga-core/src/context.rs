// Over 500 lines because most of it is the documented API of `Context`, a doc example per
// method; the tree behind it is in `context/node.rs`, its waiting future in `context/cancelled.rs`.
//! [`Context`]: cancellation, deadline and request-scoped values, passed to every call.
//!
//! A `Context` is cheap to clone (one reference count) and meant to be passed per call, never
//! stored in a long-lived struct. Contexts form a tree: [`Context::child`] and the `with_*`
//! methods derive a child that is cancelled when its parent is, never the reverse.
//!
//! ```
//! use std::time::Duration;
//! use beluga_core::{Context, ErrorCode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let request = Context::new().with_request_id("req-42");
//! let step = request.with_timeout(Duration::from_secs(30));
//!
//! assert_eq!(step.request_id(), Some("req-42")); // values are inherited
//! assert!(!step.is_cancelled());
//!
//! step.cancel(); // a child cancels itself and its own children only
//! assert!(step.is_cancelled());
//! assert!(!request.is_cancelled());
//!
//! request.cancel(); // a parent cancels every descendant
//! assert_eq!(request.error().map(|e| e.code()), Some(ErrorCode::Cancelled));
//! # }
//! ```
//!
//! # How a deadline fires
//!
//! A context spawns no task and starts no thread. [`Context::is_cancelled`] is one atomic load:
//! it sees [`cancel`](Context::cancel) at once, and a deadline (or the cancellation of a
//! [`CancellationToken`] the context was made from) once it has been *observed*, which happens
//! in three places:
//!
//! * [`Context::check_deadline`] reads the clock (and the token) once. The stream adapters in this
//!   crate call it every 32 items, so a deadline ends a stream even when its consumer never
//!   yields to the runtime. [`Context::error`] and [`Context::reason`] call it too while the
//!   context is live, so they report a deadline that has passed, as Go's `ctx.Err()` does.
//! * A parked [`Context::cancelled`] future arms a Tokio timer for the deadline and watches the
//!   token, so a task waiting on a context wakes up on time.
//! * Any of the above on an ancestor: the observation ends every descendant.
//!
//! Code that polls `is_cancelled()` in its own loop should call `check_deadline()` now and then
//! (it reads the clock) if its context may carry a deadline; code that asks for `error()` before
//! every item needs nothing more, at the price of a clock read per item.
//!
//! Deadlines use [`tokio::time::Instant`], so tests can run them under Tokio's paused clock.
//! Waiting for one needs a Tokio runtime with the time driver enabled, and Tokio timers have
//! millisecond granularity: they fire up to about 1 ms late.

mod cancelled;
mod node;
pub(crate) mod watch;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::cancelled::Cancelled;
#[cfg(test)]
use self::node::lock;
use self::node::{CANCELLED, LIVE, Node, ValueEntry, Values};
use crate::error::Error;

/// Why a [`Context`] ended.
///
/// ```
/// use beluga_core::{CancelReason, Context};
/// let ctx = Context::new();
/// assert_eq!(ctx.reason(), None);
/// ctx.cancel();
/// assert_eq!(ctx.reason(), Some(CancelReason::Cancelled));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// [`Context::cancel`] was called on it or on an ancestor.
    Cancelled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl std::fmt::Display for CancelReason {
    /// `cancelled` or `deadline_exceeded`, like the error codes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CancelReason::Cancelled => "cancelled",
            CancelReason::DeadlineExceeded => "deadline_exceeded",
        })
    }
}

impl CancelReason {
    /// The error a stream ends with for this reason: `cancelled` or `deadline_exceeded`.
    ///
    /// ```
    /// use beluga_core::{CancelReason, ErrorCode};
    /// assert_eq!(CancelReason::DeadlineExceeded.to_error().code(), ErrorCode::DeadlineExceeded);
    /// ```
    pub fn to_error(self) -> Error {
        match self {
            CancelReason::Cancelled => Error::cancelled(),
            CancelReason::DeadlineExceeded => Error::deadline_exceeded(),
        }
    }

    fn from_state(state: u8) -> Option<Self> {
        match state {
            LIVE => None,
            CANCELLED => Some(CancelReason::Cancelled),
            _ => Some(CancelReason::DeadlineExceeded),
        }
    }
}

/// Cancellation, an optional deadline and request-scoped values for one call.
///
/// See the [module docs](crate::context) for the tree of contexts and how deadlines fire.
///
/// ```
/// use beluga_core::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// let child = ctx.child();
/// let waiter = tokio::spawn({
///     let child = child.clone();
///     async move { child.cancelled().await }
/// });
/// ctx.cancel();
/// let err = waiter.await.unwrap();
/// assert!(err.is_cancellation());
/// # }
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

impl Context {
    /// A new root context: never cancelled unless [`cancel`](Context::cancel) is called, no
    /// deadline, no values.
    ///
    /// ```
    /// let ctx = beluga_core::Context::new();
    /// assert!(!ctx.is_cancelled());
    /// assert!(ctx.deadline().is_none());
    /// ```
    pub fn new() -> Self {
        Context {
            node: Node::root(None),
        }
    }

    fn derive(&self, deadline: Option<Instant>, values: Values) -> Self {
        Context {
            node: Node::child(&self.node, deadline, values),
        }
    }

    /// A child context: cancelled when this one is, cancellable on its own without affecting
    /// this one. It inherits the deadline and the values.
    ///
    /// Dropping a child (all its clones) removes it from its parent: a parent that outlives a
    /// million short-lived children keeps no trace of them.
    ///
    /// ```
    /// let parent = beluga_core::Context::new();
    /// let child = parent.child();
    /// child.cancel();
    /// assert!(!parent.is_cancelled());
    /// ```
    #[must_use]
    pub fn child(&self) -> Self {
        self.derive(None, self.node.values.clone())
    }

    /// A child context that also ends at `deadline` (or at the parent's, if that is earlier).
    /// Takes a [`tokio::time::Instant`] or a [`std::time::Instant`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let at = Instant::now() + Duration::from_secs(5);
    /// let ctx = beluga_core::Context::new().with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// # }
    /// ```
    #[must_use]
    pub fn with_deadline(&self, deadline: impl Into<Instant>) -> Self {
        self.derive(Some(deadline.into()), self.node.values.clone())
    }

    /// A child context that ends `timeout` from now (or at the parent's deadline, if earlier).
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let ctx = beluga_core::Context::new().with_timeout(Duration::from_millis(50));
    /// let err = ctx.cancelled().await; // the paused clock jumps ahead to the deadline
    /// assert_eq!(err.code(), beluga_core::ErrorCode::DeadlineExceeded);
    /// # }
    /// ```
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(far_future);
        self.with_deadline(deadline)
    }

    /// A child context carrying a request id.
    ///
    /// ```
    /// let ctx = beluga_core::Context::new().with_request_id("req-1");
    /// assert_eq!(ctx.request_id(), Some("req-1"));
    /// ```
    #[must_use]
    pub fn with_request_id(&self, id: impl Into<Arc<str>>) -> Self {
        let mut values = self.node.values.clone();
        values.request_id = Some(id.into());
        self.derive(None, values)
    }

    /// A child context carrying a session id.
    ///
    /// ```
    /// let ctx = beluga_core::Context::new().with_session_id("chat-9");
    /// assert_eq!(ctx.session_id(), Some("chat-9"));
    /// ```
    #[must_use]
    pub fn with_session_id(&self, id: impl Into<Arc<str>>) -> Self {
        let mut values = self.node.values.clone();
        values.session_id = Some(id.into());
        self.derive(None, values)
    }

    /// A child context carrying a value of type `V`, found again by [`Context::value`]. A value
    /// of the same type set closer to the context wins.
    ///
    /// ```
    /// #[derive(Debug, PartialEq)]
    /// struct UserId(u64);
    ///
    /// let ctx = beluga_core::Context::new().with_value(UserId(7));
    /// assert_eq!(ctx.value::<UserId>(), Some(&UserId(7)));
    /// assert_eq!(ctx.child().value::<UserId>(), Some(&UserId(7)));
    /// ```
    #[must_use]
    pub fn with_value<V: Any + Send + Sync>(&self, value: V) -> Self {
        let mut values = self.node.values.clone();
        values.ext = Some(Arc::new(ValueEntry {
            value: Box::new(value),
            next: values.ext.take(),
        }));
        self.derive(None, values)
    }

    /// The request id, if one was set on this context or an ancestor.
    ///
    /// ```
    /// assert_eq!(beluga_core::Context::new().request_id(), None);
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.node.values.request_id.as_deref()
    }

    /// The session id, if one was set on this context or an ancestor.
    ///
    /// ```
    /// assert_eq!(beluga_core::Context::new().session_id(), None);
    /// ```
    pub fn session_id(&self) -> Option<&str> {
        self.node.values.session_id.as_deref()
    }

    /// The nearest value of type `V` set with [`Context::with_value`].
    ///
    /// ```
    /// assert_eq!(beluga_core::Context::new().value::<u32>(), None);
    /// ```
    pub fn value<V: Any>(&self) -> Option<&V> {
        let mut entry = self.node.values.ext.as_deref();
        while let Some(e) = entry {
            if let Some(v) = e.value.downcast_ref::<V>() {
                return Some(v);
            }
            entry = e.next.as_deref();
        }
        None
    }

    /// The deadline, if this context or an ancestor has one (the earliest).
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let outer = beluga_core::Context::new().with_timeout(Duration::from_secs(1));
    /// let inner = outer.with_timeout(Duration::from_secs(60));
    /// assert_eq!(inner.deadline(), outer.deadline()); // the earlier one wins
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// Time left until the deadline (zero once it has passed), or `None` without a deadline.
    /// Reads the clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let ctx = beluga_core::Context::new().with_timeout(Duration::from_secs(2));
    /// assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.node
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Cancels this context and every context derived from it. Idempotent; the first reason
    /// (cancel or deadline) sticks.
    ///
    /// ```
    /// let ctx = beluga_core::Context::new();
    /// ctx.cancel();
    /// ctx.cancel();
    /// assert!(ctx.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(CANCELLED);
    }

    /// Whether this context has ended, by [`cancel`](Context::cancel) on it or an ancestor or by
    /// a deadline that has been observed (see the [module docs](crate::context)).
    ///
    /// One atomic load: cheap enough to call before every item. It does not read the clock; use
    /// [`Context::check_deadline`] for that (or [`Context::error`], which reports a deadline
    /// that has passed).
    ///
    /// ```
    /// let ctx = beluga_core::Context::new();
    /// assert!(!ctx.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node.state.load(Ordering::Acquire) != LIVE
    }

    /// Why this context ended, or `None` while it is live.
    ///
    /// A deadline that has passed counts, whether or not anything has observed it yet: on a live
    /// context with a deadline (or a [`CancellationToken`]) this is
    /// [`check_deadline`](Context::check_deadline), one clock read; otherwise one atomic load.
    ///
    /// ```
    /// use beluga_core::{CancelReason, Context};
    /// let ctx = Context::new();
    /// ctx.cancel();
    /// assert_eq!(ctx.child().reason(), Some(CancelReason::Cancelled));
    /// ```
    pub fn reason(&self) -> Option<CancelReason> {
        let state = self.node.state();
        if state == LIVE && self.needs_observing() && self.node.observe() {
            return CancelReason::from_state(self.node.state());
        }
        CancelReason::from_state(state)
    }

    /// The error a stream should end with now: `cancelled` or `deadline_exceeded`, or `None`
    /// while the context is live. Like Go's `ctx.Err()`, it reports a deadline that has passed
    /// (reading the clock, as [`reason`](Context::reason) does), so a hand-written stream that
    /// asks for it before every item ends on time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Context, ErrorCode};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// assert!(ctx.error().is_none());
    /// ctx.cancel();
    /// assert_eq!(ctx.error().unwrap().code(), ErrorCode::Cancelled);
    ///
    /// let ctx = Context::new().with_timeout(Duration::from_millis(10));
    /// tokio::time::advance(Duration::from_millis(10)).await;
    /// assert_eq!(ctx.error().unwrap().code(), ErrorCode::DeadlineExceeded);
    /// # }
    /// ```
    pub fn error(&self) -> Option<Error> {
        self.reason().map(CancelReason::to_error)
    }

    /// Reads the clock once, and checks the [`CancellationToken`] this context was made from (if
    /// any): if the deadline has passed or the token is cancelled, ends this context and its
    /// children. Returns whether the context has ended.
    ///
    /// [`is_cancelled`](Context::is_cancelled) stays one atomic load; this is the call that
    /// notices a deadline nobody has observed yet (see the [module docs](crate::context)).
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let ctx = beluga_core::Context::new().with_timeout(Duration::from_millis(10));
    /// assert!(!ctx.check_deadline());
    /// tokio::time::advance(Duration::from_millis(10)).await;
    /// assert!(!ctx.is_cancelled()); // nothing has looked at the clock yet
    /// assert!(ctx.check_deadline());
    /// assert!(ctx.is_cancelled());
    /// # }
    /// ```
    pub fn check_deadline(&self) -> bool {
        self.node.observe()
    }

    /// Whether [`check_deadline`](Context::check_deadline) can find anything that
    /// [`is_cancelled`](Context::is_cancelled) does not see: a deadline or a token.
    pub(crate) fn needs_observing(&self) -> bool {
        self.node.deadline.is_some() || self.node.token.is_some()
    }

    /// A future that resolves, with the `cancelled` or `deadline_exceeded` error, once this
    /// context ends. For `select!`, and for parking a task until cancellation.
    ///
    /// Each waiting future has its own waker slot, so any number of tasks can wait on one
    /// context. The future owns a clone of the context, so it is `'static`.
    ///
    /// ```
    /// use beluga_core::Context;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let work = std::future::pending::<()>();
    /// ctx.cancel();
    /// let outcome = tokio::select! {
    ///     err = ctx.cancelled() => Err(err),
    ///     () = work => Ok(()),
    /// };
    /// assert!(outcome.is_err());
    /// # }
    /// ```
    pub fn cancelled(&self) -> Cancelled {
        Cancelled::new(Arc::clone(&self.node))
    }
}

/// An instant far enough away to stand for "never" when a timeout overflows.
fn far_future() -> Instant {
    // About 30 years, as Tokio itself uses for "no deadline".
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl Default for Context {
    /// The same as [`Context::new`].
    fn default() -> Self {
        Context::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("reason", &self.reason())
            .field("deadline", &self.node.deadline)
            .field("request_id", &self.request_id())
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}

impl From<CancellationToken> for Context {
    /// A root context that ends when `token` is cancelled (and starts cancelled if it already
    /// is).
    ///
    /// No task watches the token: like a deadline, its cancellation is observed by
    /// [`Context::check_deadline`], by a parked [`Context::cancelled`] future, and by the stream
    /// adapters of this crate (see the [module docs](crate::context)).
    ///
    /// ```
    /// use beluga_core::Context;
    /// use tokio_util::sync::CancellationToken;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let token = CancellationToken::new();
    /// let ctx = Context::from(token.clone());
    /// let waiter = tokio::spawn(ctx.cancelled());
    /// token.cancel();
    /// assert!(waiter.await.unwrap().is_cancellation());
    /// assert!(ctx.is_cancelled());
    /// # }
    /// ```
    fn from(token: CancellationToken) -> Self {
        let cancelled = token.is_cancelled();
        let ctx = Context {
            node: Node::root(Some(token)),
        };
        if cancelled {
            ctx.cancel();
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child_slots(ctx: &Context) -> (usize, usize) {
        let links = lock(&ctx.node.links);
        (links.children.len(), links.children.capacity())
    }

    #[test]
    fn dropped_children_leave_no_slot_behind() {
        let parent = Context::new();
        for _ in 0..1_000_000 {
            let child = parent.child();
            assert!(!child.is_cancelled());
        }
        let (len, cap) = child_slots(&parent);
        assert_eq!(len, 0);
        assert!(cap <= 4, "capacity grew to {cap}");
        assert_eq!(Arc::strong_count(&parent.node), 1);
    }

    #[test]
    fn a_burst_of_children_gives_its_memory_back() {
        let parent = Context::new();
        let children: Vec<Context> = (0..100_000).map(|_| parent.child()).collect();
        assert_eq!(child_slots(&parent).0, 100_000);
        drop(children);
        assert_eq!(child_slots(&parent), (0, 0));
    }

    #[test]
    fn a_deep_chain_drops_without_recursion() {
        let root = Context::new();
        let mut ctx = root.clone();
        for _ in 0..200_000 {
            ctx = ctx.child();
        }
        root.cancel();
        assert!(ctx.is_cancelled());
        drop(ctx);
        assert_eq!(child_slots(&root).0, 0);
    }
}
