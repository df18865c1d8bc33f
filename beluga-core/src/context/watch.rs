//! What every stream that watches a [`Context`] does, in one place: a countdown of polls between
//! two clock reads, and parking on the context while the watched work is pending.
//!
//! The streams keep their own fields (the countdown sits where their hot path reads it); these
//! helpers are the logic around them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use super::{Cancelled, Context};
use crate::error::Error;

/// How many polls pass between two clock reads when the context has a deadline or a token: a
/// clock read costs far more than an item, so it is spread over many, while a deadline still
/// fires in a consumer that never yields to the runtime.
pub(crate) const CLOCK_EVERY: u32 = 32;

/// Where the countdown starts again after a check: [`CLOCK_EVERY`] when the context has a
/// deadline or a token to read (`observe`), else as far as it goes.
#[inline]
pub(crate) fn rearm(observe: bool) -> u32 {
    if observe { CLOCK_EVERY } else { u32::MAX }
}

/// Whether `ctx` has ended: cancelled, or (when `observe`) past its deadline or with its token
/// cancelled, which takes a clock read.
#[inline]
pub(crate) fn has_ended(ctx: &Context, observe: bool) -> bool {
    ctx.is_cancelled() || (observe && ctx.check_deadline())
}

/// Waits for `ctx` to end, while the watched work is pending: registers the task on the first
/// call (in `parked`), and returns the context's error once it has ended.
#[inline]
pub(crate) fn park(
    parked: &mut Option<Cancelled>,
    ctx: &Context,
    cx: &mut TaskContext<'_>,
) -> Poll<Error> {
    let parked = parked.get_or_insert_with(|| ctx.cancelled());
    Pin::new(parked).poll(cx)
}
