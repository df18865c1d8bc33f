//! [`FlowController`]: a cancellable limit on how much work is in flight at once.
//!
//! A controller holds a fixed number of permits. [`FlowController::acquire`] waits for one and
//! gives up with the context's error if the [`Context`] is cancelled or its deadline passes
//! first; [`FlowController::try_acquire`] takes one only if it is free now. A [`Permit`] gives
//! its capacity back when it is dropped, and that is the only way to give it back: a release
//! without an acquire cannot be written.
//!
//! Waiters are served first come, first served, and `try_acquire` never takes a permit that a
//! waiter is queued for. Permits own a handle to the controller, so they move freely into
//! spawned tasks, and clones of a controller share its permits.
//!
//! ```
//! use beluga_core::{Context, FlowController};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! let ctx = Context::new();
//! let flow = FlowController::new(2)?; // at most two model calls at once
//!
//! let mut calls = Vec::new();
//! for prompt in ["a", "b", "c", "d"] {
//!     let permit = flow.acquire(&ctx).await?; // waits while two calls are running
//!     calls.push(tokio::spawn(async move {
//!         let reply = prompt.to_uppercase(); // the model call
//!         drop(permit); // or let it drop at the end of the task
//!         reply
//!     }));
//! }
//! for call in calls {
//!     call.await.unwrap();
//! }
//! assert_eq!(flow.available(), 2);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

// The shared state's primitives, swapped for loom's when model checking (`--cfg beluga_loom`).
#[cfg(beluga_loom)]
use loom::sync::Arc;
#[cfg(not(beluga_loom))]
use std::sync::Arc;

#[cfg(all(test, beluga_loom))]
mod flow_loom;
mod permits;

use self::permits::{Shared, Wait};
use crate::context::Context;
use crate::error::{Error, ErrorCode};

/// The most permits a controller can have: `usize::MAX >> 3`.
const MAX_PERMITS: usize = usize::MAX >> 3;

/// In [`Shared::state`]: set while waiters are queued.
const WAITING: usize = 1;
/// In [`Shared::state`]: one free permit.
const ONE: usize = 2;

/// A limit of `capacity` concurrent permits, acquired with a [`Context`] and released on drop.
///
/// See the [module docs](crate::flow). Cloning is cheap (one reference count), and clones share
/// the same permits.
///
/// ```
/// use beluga_core::{Context, FlowController};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let flow = FlowController::new(1).unwrap();
/// let permit = flow.acquire(&Context::new()).await.unwrap();
/// assert!(flow.try_acquire().is_none()); // all taken
/// drop(permit);
/// assert!(flow.try_acquire().is_some());
/// # }
/// ```
#[derive(Clone)]
pub struct FlowController {
    shared: Arc<Shared>,
}

/// One unit of a [`FlowController`]'s capacity, given back when dropped.
///
/// It owns a handle to its controller, so it can move into a spawned task and outlive the
/// controller value it came from.
///
/// ```
/// use beluga_core::FlowController;
/// let flow = FlowController::new(3).unwrap();
/// let permit = flow.try_acquire().unwrap();
/// assert_eq!(flow.available(), 2);
/// drop(permit);
/// assert_eq!(flow.available(), 3);
/// ```
#[must_use = "a permit gives its capacity back as soon as it is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
}

impl FlowController {
    /// A controller with `permits` permits, all free.
    ///
    /// `permits` of 0 (a controller that could never grant a permit: every `acquire` would wait
    /// until its context ended), or more than `usize::MAX >> 3`, is
    /// an `invalid_input` error, as every count in this crate is (see
    /// [Counts and capacities](crate#counts-and-capacities)).
    ///
    /// ```
    /// use beluga_core::{ErrorCode, FlowController};
    /// let flow = FlowController::new(8)?;
    /// assert_eq!(flow.capacity(), 8);
    /// assert_eq!(flow.available(), 8);
    ///
    /// assert_eq!(FlowController::new(0).unwrap_err().code(), ErrorCode::InvalidInput);
    /// # Ok::<(), beluga_core::Error>(())
    /// ```
    pub fn new(permits: usize) -> Result<Self, Error> {
        if permits == 0 {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "permits must be at least 1 (with 0, acquire could never succeed)",
            )
            .with_op("FlowController::new"));
        }
        if permits > MAX_PERMITS {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("{permits} permits is more than the maximum, {MAX_PERMITS}"),
            )
            .with_op("FlowController::new"));
        }
        Ok(FlowController {
            shared: Arc::new(Shared::new(permits)),
        })
    }

    /// Waits for a free permit, or returns the `cancelled` or `deadline_exceeded` error if `ctx`
    /// ends first. An error takes no permit.
    ///
    /// If `ctx` has already ended, the error comes back at once even when a permit is free: a
    /// cancelled call should not start work. That check is one atomic load, plus one clock read
    /// when the context has a deadline. While waiting, a deadline wakes the caller on time (Tokio
    /// timers fire up to about 1 ms late; the time driver must be enabled). Waiters are served in
    /// the order they started waiting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Context, ErrorCode, FlowController};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let flow = FlowController::new(1).unwrap();
    /// let held = flow.acquire(&Context::new()).await.unwrap();
    ///
    /// // Nothing is free, so this waits until its deadline.
    /// let ctx = Context::new().with_timeout(Duration::from_millis(50));
    /// let err = flow.acquire(&ctx).await.unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    ///
    /// drop(held);
    /// assert!(flow.acquire(&Context::new()).await.is_ok());
    /// # }
    /// ```
    pub async fn acquire(&self, ctx: &Context) -> Result<Permit, Error> {
        if ctx.is_cancelled() || (ctx.needs_observing() && ctx.check_deadline()) {
            return Err(ended(ctx));
        }
        match self.try_acquire() {
            Some(permit) => Ok(permit),
            None => self.wait(ctx).await,
        }
    }

    /// Nothing is free: queue for a permit, and leave the queue if `ctx` ends first.
    async fn wait(&self, ctx: &Context) -> Result<Permit, Error> {
        let mut cancelled = ctx.cancelled();
        let mut wait = Wait {
            shared: &self.shared,
            key: None,
        };
        poll_fn(|cx| {
            // The context first: once it has ended, no permit is handed out. Dropping `wait`
            // leaves the queue and gives back any permit it was granted meanwhile.
            if let Poll::Ready(err) = Pin::new(&mut cancelled).poll(cx) {
                return Poll::Ready(Err(err));
            }
            Pin::new(&mut wait).poll(cx).map(|()| Ok(self.permit()))
        })
        .await
    }

    /// A free permit, or `None` if all are taken (or promised to a waiter). Never waits.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(2).unwrap();
    /// let a = flow.try_acquire().unwrap();
    /// let b = flow.try_acquire().unwrap();
    /// assert!(flow.try_acquire().is_none());
    /// drop(a);
    /// assert!(flow.try_acquire().is_some());
    /// # drop(b);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit> {
        self.shared.try_take().then(|| self.permit())
    }

    /// The permit for a unit of capacity already taken.
    fn permit(&self) -> Permit {
        Permit {
            shared: Arc::clone(&self.shared),
        }
    }

    /// How many permits are free now.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(4).unwrap();
    /// let _permit = flow.try_acquire().unwrap();
    /// assert_eq!(flow.available(), 3);
    /// ```
    pub fn available(&self) -> usize {
        self.shared.available()
    }

    /// How many permits the controller has in all, free or not.
    ///
    /// ```
    /// let flow = beluga_core::FlowController::new(4).unwrap();
    /// let _permit = flow.try_acquire().unwrap();
    /// assert_eq!(flow.capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// The error for a context that has ended.
#[cold]
fn ended(ctx: &Context) -> Error {
    ctx.error().unwrap_or_else(Error::cancelled)
}

impl fmt::Debug for FlowController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowController")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
