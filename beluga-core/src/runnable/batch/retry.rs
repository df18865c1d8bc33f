//! [`RetryPolicy`]: which failures are retried, how often, and how long to wait in between.

use std::time::Duration;

use super::rng::SplitMix64;
use crate::error::{Error, ErrorCode};
#[cfg(doc)]
use crate::runnable::RunnableExt;

/// How a [`batch`](RunnableExt::batch) retries an item whose attempt failed with a
/// [retryable](Error::is_retryable) error: up to `max_attempts` attempts in all, with an
/// exponential backoff between them.
///
/// The backoff before retry `n` (1 for the first retry) is
/// `min(initial_backoff × multiplierⁿ⁻¹, max_backoff)`, then shortened by a random fraction of
/// up to `jitter` of itself: with jitter `j` it lies in `((1 − j) × backoff, backoff]`, so the
/// cap is never exceeded and jitter 0 gives exact delays. Jitter spreads out the retries of
/// items that failed together (a rate limit usually hits many at once); it is drawn from a tiny
/// generator seeded afresh for every batch.
///
/// When the error says how long the failed service asked to be left alone
/// ([`Error::retry_after`], an HTTP `Retry-After`), the wait is that delay if it is longer than
/// the backoff: the cap and jitter shape the policy's own backoff, never shorten what the
/// service asked for. A long delay is bounded by the batch's context (its deadline or a
/// cancellation ends the wait with the item's error).
///
/// [`RetryPolicy::new`] starts from 100 ms, ×2, capped at 10 s, jitter 0.5;
/// [`RetryPolicy::none`] (the default) makes one attempt only.
///
/// ```
/// use std::time::Duration;
/// use beluga_core::runnable::RetryPolicy;
///
/// # fn main() -> Result<(), beluga_core::Error> {
/// let policy = RetryPolicy::new(5)?
///     .with_initial_backoff(Duration::from_millis(100))
///     .with_multiplier(2.0)
///     .with_max_backoff(Duration::from_millis(300))
///     .with_jitter(0.0);
/// assert_eq!(policy.backoff(1), Duration::from_millis(100));
/// assert_eq!(policy.backoff(2), Duration::from_millis(200));
/// assert_eq!(policy.backoff(3), Duration::from_millis(300)); // capped
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    multiplier: f64,
    max_backoff: Duration,
    jitter: f64,
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::none`]: one attempt, no retry.
    fn default() -> Self {
        RetryPolicy::none()
    }
}

impl RetryPolicy {
    /// One attempt, never retried.
    ///
    /// ```
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().max_attempts(), 1);
    /// ```
    pub const fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(10),
            jitter: 0.5,
        }
    }

    /// Up to `max_attempts` attempts in all (the first one included), backing off 100 ms, then
    /// ×2 each time, capped at 10 s, with jitter 0.5; change any of these with the `with_`
    /// methods.
    ///
    /// `0` is an `invalid_input` error: an item is always attempted at least once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{runnable::RetryPolicy, ErrorCode};
    ///
    /// let policy = RetryPolicy::new(3).unwrap();
    /// assert_eq!(policy.max_attempts(), 3);
    /// assert_eq!(policy.initial_backoff(), Duration::from_millis(100));
    ///
    /// assert_eq!(RetryPolicy::new(0).unwrap_err().code(), ErrorCode::InvalidInput);
    /// ```
    pub fn new(max_attempts: u32) -> Result<Self, Error> {
        if max_attempts == 0 {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "max_attempts must be at least 1: it counts the first attempt too",
            )
            .with_op("batch"));
        }
        Ok(RetryPolicy {
            max_attempts,
            ..RetryPolicy::none()
        })
    }

    /// The backoff before the first retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// let policy = RetryPolicy::new(2).unwrap().with_initial_backoff(Duration::from_secs(1));
    /// assert_eq!(policy.backoff(1), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn with_initial_backoff(self, initial_backoff: Duration) -> Self {
        RetryPolicy {
            initial_backoff,
            ..self
        }
    }

    /// What each backoff is multiplied by for the next one. Values below 1 (and NaN) are taken
    /// as 1: a constant backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// let policy = RetryPolicy::new(4).unwrap().with_multiplier(3.0);
    /// assert_eq!(policy.backoff(3), Duration::from_millis(900));
    /// assert_eq!(policy.with_multiplier(0.5).multiplier(), 1.0);
    /// ```
    #[must_use]
    pub fn with_multiplier(self, multiplier: f64) -> Self {
        let multiplier = if multiplier >= 1.0 { multiplier } else { 1.0 };
        RetryPolicy { multiplier, ..self }
    }

    /// The longest backoff: the cap that growth stops at, jitter included.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// let policy = RetryPolicy::new(10).unwrap().with_max_backoff(Duration::from_millis(250));
    /// assert_eq!(policy.backoff(9), Duration::from_millis(250));
    /// ```
    #[must_use]
    pub fn with_max_backoff(self, max_backoff: Duration) -> Self {
        RetryPolicy {
            max_backoff,
            ..self
        }
    }

    /// How much of each backoff may be taken off at random, as a fraction from 0 (exact
    /// delays) to 1 (anywhere between zero and the backoff, "full jitter"). Clamped into
    /// `0.0..=1.0`; NaN is taken as 0.
    ///
    /// ```
    /// use beluga_core::runnable::RetryPolicy;
    /// let policy = RetryPolicy::new(3).unwrap().with_jitter(0.25);
    /// assert_eq!(policy.jitter(), 0.25);
    /// assert_eq!(policy.with_jitter(7.0).jitter(), 1.0);
    /// ```
    #[must_use]
    pub fn with_jitter(self, jitter: f64) -> Self {
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        RetryPolicy { jitter, ..self }
    }

    /// Attempts in all, the first one included (at least 1).
    ///
    /// ```
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(4).unwrap().max_attempts(), 4);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff before the first retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(2).unwrap().initial_backoff(), Duration::from_millis(100));
    /// ```
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The growth factor between backoffs (at least 1).
    ///
    /// ```
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(2).unwrap().multiplier(), 2.0);
    /// ```
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The cap on every backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(2).unwrap().max_backoff(), Duration::from_secs(10));
    /// ```
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The fraction of each backoff that may be taken off at random (`0.0..=1.0`).
    ///
    /// ```
    /// use beluga_core::runnable::RetryPolicy;
    /// assert_eq!(RetryPolicy::new(2).unwrap().jitter(), 0.5);
    /// ```
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The backoff before retry `retry` (1 for the first retry, that is before the second
    /// attempt), before jitter: `min(initial_backoff × multiplier^(retry − 1), max_backoff)`.
    /// Jitter only ever shortens it. `backoff(0)` is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::RetryPolicy;
    /// let policy = RetryPolicy::new(4).unwrap(); // 100 ms, ×2, capped at 10 s
    /// assert_eq!(policy.backoff(1), Duration::from_millis(100));
    /// assert_eq!(policy.backoff(3), Duration::from_millis(400));
    /// assert_eq!(policy.backoff(30), Duration::from_secs(10));
    /// ```
    // Float arithmetic on nanoseconds: exact for whole multipliers and backoffs under about
    // 104 days (2^53 ns); anything larger is past any sensible cap. `as u64` saturates.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub fn backoff(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        let nanos = self.initial_backoff.as_nanos() as f64 * self.multiplier.powi(exponent);
        let cap = self.max_backoff;
        // Anything not below the cap, NaN (0 × ∞) included, is the cap.
        if nanos < cap.as_nanos() as f64 {
            Duration::from_nanos(nanos.round() as u64).min(cap)
        } else {
            cap
        }
    }

    /// The wait before retry `retry` after `err`: the [jittered](Self::jittered_backoff)
    /// backoff, or the error's [`retry_after`](Error::retry_after) when that is longer.
    pub(super) fn wait_before(&self, retry: u32, err: &Error, rng: &mut SplitMix64) -> Duration {
        let backoff = self.jittered_backoff(retry, rng);
        err.retry_after()
            .map_or(backoff, |asked| asked.max(backoff))
    }

    /// [`backoff`](Self::backoff) with a random part of up to `jitter` of it taken off.
    pub(super) fn jittered_backoff(&self, retry: u32, rng: &mut SplitMix64) -> Duration {
        let backoff = self.backoff(retry);
        if self.jitter == 0.0 || backoff.is_zero() {
            return backoff;
        }
        // `1 - jitter * u` with `u` in `[0, 1)` lies in `(1 - jitter, 1]`.
        backoff.mul_f64(1.0 - self.jitter * rng.next_unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let policy = RetryPolicy::new(10)
            .unwrap()
            .with_initial_backoff(Duration::from_millis(100))
            .with_multiplier(2.0)
            .with_max_backoff(Duration::from_millis(700))
            .with_jitter(0.0);
        let delays: Vec<u128> = (0..6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 700, 700]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(700));
        let huge = policy.with_multiplier(f64::INFINITY);
        assert_eq!(huge.backoff(2), Duration::from_millis(700));
        let zero = huge.with_initial_backoff(Duration::ZERO);
        assert_eq!(zero.backoff(3), Duration::from_millis(700)); // 0 × ∞ is NaN: the cap
        let mut rng = SplitMix64::for_item(1, 0);
        assert_eq!(
            policy.jittered_backoff(3, &mut rng),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn a_retry_delay_longer_than_the_backoff_wins() {
        let policy = RetryPolicy::new(3)
            .unwrap()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(150))
            .with_jitter(0.0);
        let mut rng = SplitMix64::for_item(1, 0);
        let plain = Error::new(ErrorCode::RateLimit, "429");
        let asked = |d| plain.clone().with_retry_after(Duration::from_millis(d));
        assert_eq!(
            policy.wait_before(1, &plain, &mut rng),
            Duration::from_millis(100)
        );
        assert_eq!(
            policy.wait_before(1, &asked(40), &mut rng),
            Duration::from_millis(100)
        );
        // Beyond the cap too: the service's word is a lower bound.
        assert_eq!(
            policy.wait_before(1, &asked(5_000), &mut rng),
            Duration::from_secs(5)
        );
        let wrapped = Error::new(ErrorCode::ToolFailed, "search").with_source(asked(700));
        assert_eq!(
            policy.wait_before(2, &wrapped, &mut rng),
            Duration::from_millis(700)
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let policy = RetryPolicy::new(2)
            .unwrap()
            .with_initial_backoff(Duration::from_secs(1))
            .with_jitter(0.25);
        let mut rng = SplitMix64::for_item(42, 7);
        let delays: Vec<Duration> = (0..1000)
            .map(|_| policy.jittered_backoff(1, &mut rng))
            .collect();
        assert!(
            delays
                .iter()
                .all(|d| *d > Duration::from_millis(750) && *d <= Duration::from_secs(1))
        );
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*min < Duration::from_millis(760) && *max > Duration::from_millis(990));
    }
}
