//! [`BatchOptions`]: how many items at once, how long an attempt may take, how to retry.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::retry::RetryPolicy;
use crate::error::{Error, ErrorCode};
#[cfg(doc)]
use crate::runnable::RunnableExt;

/// How a [`batch`](RunnableExt::batch) runs: how many items at once, how long each attempt may take, and how failed
/// items are retried.
///
/// The default runs 8 items at once, with no timeout and no retry.
///
/// ```
/// use std::time::Duration;
/// use beluga_core::runnable::{BatchOptions, RetryPolicy};
///
/// # fn main() -> Result<(), beluga_core::Error> {
/// let options = BatchOptions::default()
///     .with_max_concurrency(16)?
///     .with_timeout(Duration::from_secs(10))
///     .with_retry(RetryPolicy::new(4)?);
/// assert_eq!(options.max_concurrency(), 16);
///
/// let defaults = BatchOptions::default();
/// assert_eq!(defaults.max_concurrency(), 8);
/// assert_eq!(defaults.timeout(), None);
/// assert_eq!(defaults.retry(), RetryPolicy::none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    max_concurrency: NonZeroUsize,
    timeout: Option<Duration>,
    retry: RetryPolicy,
}

impl Default for BatchOptions {
    /// 8 items at once, no timeout, no retry.
    fn default() -> Self {
        BatchOptions {
            max_concurrency: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            timeout: None,
            retry: RetryPolicy::none(),
        }
    }
}

impl BatchOptions {
    /// The same as [`BatchOptions::default`]: 8 items at once, no timeout, no retry.
    ///
    /// ```
    /// use beluga_core::runnable::BatchOptions;
    /// assert_eq!(BatchOptions::new(), BatchOptions::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs at most `max_concurrency` items at once.
    ///
    /// `0` is an `invalid_input` error, here, before any input is touched: a batch that may run
    /// no item at once could never finish. A plain `usize` rather than a `NonZeroUsize`, so that a value read from
    /// configuration goes straight in and its mistake comes back as an ordinary error.
    ///
    /// ```
    /// use beluga_core::{runnable::BatchOptions, ErrorCode};
    ///
    /// let options = BatchOptions::default().with_max_concurrency(2).unwrap();
    /// assert_eq!(options.max_concurrency(), 2);
    ///
    /// let err = BatchOptions::default().with_max_concurrency(0).unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidInput);
    /// ```
    pub fn with_max_concurrency(self, max_concurrency: usize) -> Result<Self, Error> {
        let Some(max_concurrency) = NonZeroUsize::new(max_concurrency) else {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "max_concurrency must be at least 1: with 0 no item could ever start",
            )
            .with_op("batch"));
        };
        Ok(BatchOptions {
            max_concurrency,
            ..self
        })
    }

    /// Gives each attempt of each item at most `timeout`. An attempt that runs longer is dropped
    /// and ends with a `timeout` error (retryable, so the [retry policy](Self::with_retry) may
    /// try again); the other items are not held up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::runnable::BatchOptions;
    /// let options = BatchOptions::default().with_timeout(Duration::from_secs(5));
    /// assert_eq!(options.timeout(), Some(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        BatchOptions {
            timeout: Some(timeout),
            ..self
        }
    }

    /// Retries failed items with `retry`.
    ///
    /// ```
    /// use beluga_core::runnable::{BatchOptions, RetryPolicy};
    /// let options = BatchOptions::default().with_retry(RetryPolicy::new(3).unwrap());
    /// assert_eq!(options.retry().max_attempts(), 3);
    /// ```
    #[must_use]
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        BatchOptions { retry, ..self }
    }

    /// How many items may be in flight at once (always at least 1).
    ///
    /// ```
    /// use beluga_core::runnable::BatchOptions;
    /// assert_eq!(BatchOptions::default().max_concurrency(), 8);
    /// ```
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency.get()
    }

    /// The per-attempt timeout, if any.
    ///
    /// ```
    /// use beluga_core::runnable::BatchOptions;
    /// assert_eq!(BatchOptions::default().timeout(), None);
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The retry policy.
    ///
    /// ```
    /// use beluga_core::runnable::{BatchOptions, RetryPolicy};
    /// assert_eq!(BatchOptions::default().retry(), RetryPolicy::none());
    /// ```
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }
}
