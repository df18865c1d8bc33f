//! [`RunnableExt::batch`] and [`RunnableExt::batch_unordered`]: one runnable over many inputs,
//! with a concurrency limit, a per-attempt timeout and a retry policy that is actually applied.
//! The rules are on [`RunnableExt::batch`].

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::{CancelOnDrop, Runnable, RunnableExt};
use crate::context::Cancelled;
use crate::{CancelReason, Context, Error, ErrorCode};

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
    /// no item at once could never finish (Beluga's `MaxConcurrency: 0` instead starts every
    /// input at once). A plain `usize` rather than a `NonZeroUsize`, so that a value read from
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

    /// [`backoff`](Self::backoff) with a random part of up to `jitter` of it taken off.
    fn jittered_backoff(&self, retry: u32, rng: &mut SplitMix64) -> Duration {
        let backoff = self.backoff(retry);
        if self.jitter == 0.0 || backoff.is_zero() {
            return backoff;
        }
        // `1 - jitter * u` with `u` in `[0, 1)` lies in `(1 - jitter, 1]`.
        backoff.mul_f64(1.0 - self.jitter * rng.next_unit())
    }
}

/// The engine of [`RunnableExt::batch`]: one result per input, in input order.
pub(crate) fn batch<'a, R, I>(
    runnable: &'a R,
    ctx: &Context,
    inputs: I,
    options: &BatchOptions,
) -> impl Future<Output = Vec<Result<R::Output, Error>>> + use<'a, R, I>
where
    R: Runnable + ?Sized,
    R::Input: Clone,
    I: IntoIterator<Item = R::Input>,
{
    let inputs = inputs.into_iter();
    // Trust the lower bound only so far: an endless iterator (`0..`) claims `usize::MAX`.
    let capacity = inputs.size_hint().0.min(1024);
    let mut results = drive(runnable, ctx, inputs, options);
    async move {
        let mut slots: Vec<Option<Result<R::Output, Error>>> = Vec::with_capacity(capacity);
        while let Some((index, result)) = results.next().await {
            if index >= slots.len() {
                slots.resize_with(index + 1, || None);
            }
            slots[index] = Some(result);
        }
        // Every index below the number of inputs comes out exactly once, so no slot is empty.
        slots
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    Err(
                        Error::new(ErrorCode::Internal, "an input produced no result")
                            .with_op("batch"),
                    )
                })
            })
            .collect()
    }
}

/// The engine of [`RunnableExt::batch_unordered`]: each result as it completes.
pub(crate) fn batch_unordered<'a, R, I>(
    runnable: &'a R,
    ctx: &Context,
    inputs: I,
    options: &BatchOptions,
) -> impl Stream<Item = (usize, Result<R::Output, Error>)> + Send + use<'a, R, I>
where
    R: Runnable + ?Sized,
    R::Input: Clone,
    I: IntoIterator<Item = R::Input>,
    I::IntoIter: Send,
{
    drive(runnable, ctx, inputs.into_iter(), options)
}

/// The engine of [`batch`] and [`batch_unordered`]. Its stream is `Send` whenever the iterator is
/// (auto traits leak through `impl Trait`), so `batch` asks nothing of the iterator.
fn drive<'a, R, I>(
    runnable: &'a R,
    ctx: &Context,
    inputs: I,
    options: &BatchOptions,
) -> impl Stream<Item = (usize, Result<R::Output, Error>)> + use<'a, R, I>
where
    R: Runnable + ?Sized,
    R::Input: Clone,
    I: Iterator<Item = R::Input>,
{
    let seed = RandomState::new().hash_one(0x6261_7463_685f_7365_u64);
    let options = *options;
    let parent = ctx.clone();
    let start = move |index: usize, input: R::Input| {
        let rng = SplitMix64::for_item(seed, index);
        run_item(runnable, parent.clone(), input, options, rng)
    };
    let mut driver = Driver {
        inputs,
        start,
        max_concurrency: options.max_concurrency.get(),
        next_index: 0,
        exhausted: false,
        in_flight: FuturesUnordered::new(),
        cancelled: ctx.cancelled(),
        ended: None,
        orphans: VecDeque::new(),
        finished: false,
    };
    futures_util::stream::poll_fn(move |cx| driver.poll_next(cx))
}

/// One item: attempts until success, a non-retryable error, or the last attempt.
async fn run_item<R>(
    runnable: &R,
    ctx: Context,
    input: R::Input,
    options: BatchOptions,
    mut rng: SplitMix64,
) -> Result<R::Output, Error>
where
    R: Runnable + ?Sized,
    R::Input: Clone,
{
    let retry = options.retry;
    let mut attempt = 1;
    loop {
        if attempt >= retry.max_attempts {
            // The last attempt takes the input itself: no clone.
            return run_attempt(runnable, &ctx, input, options.timeout).await;
        }
        match run_attempt(runnable, &ctx, input.clone(), options.timeout).await {
            Err(err) if err.is_retryable() => {
                // No race with cancellation here: the batch drops this whole future when its
                // context ends, this sleep included.
                tokio::time::sleep(retry.jittered_backoff(attempt, &mut rng)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// One attempt on a fresh child context, within the timeout if there is one.
async fn run_attempt<R>(
    runnable: &R,
    parent: &Context,
    input: R::Input,
    timeout: Option<Duration>,
) -> Result<R::Output, Error>
where
    R: Runnable + ?Sized,
{
    let Some((timeout, deadline)) =
        timeout.and_then(|t| Instant::now().checked_add(t).map(|at| (t, at)))
    else {
        let child = CancelOnDrop(parent.child());
        return runnable.invoke(child.0.clone(), input).await;
    };
    let child = CancelOnDrop(parent.with_deadline(deadline));
    let result = tokio::time::timeout_at(deadline, runnable.invoke(child.0.clone(), input)).await;
    match result {
        Ok(Err(err))
            if err.is_cancellation()
                && child.0.reason() == Some(CancelReason::DeadlineExceeded) =>
        {
            // The runnable saw a deadline on its context: ours (a timeout) unless the batch's
            // own context has ended too, whose error then stands.
            Err(parent_error(parent).unwrap_or_else(|| timed_out(timeout)))
        }
        Ok(result) => result,
        Err(_elapsed) => Err(parent_error(parent).unwrap_or_else(|| timed_out(timeout))),
    }
}

/// The batch context's error if it has ended (reading the clock for its deadline).
fn parent_error(parent: &Context) -> Option<Error> {
    parent.check_deadline();
    parent.error()
}

fn timed_out(timeout: Duration) -> Error {
    Error::new(
        ErrorCode::Timeout,
        format!("the attempt did not finish within {timeout:?}"),
    )
    .with_op("batch")
}

pin_project! {
    /// An item's future with its input index, readable while it is in flight.
    struct Tagged<F> {
        index: usize,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Tagged<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.future.poll(cx).map(|output| (*this.index, output))
    }
}

/// The state of a running batch: the inputs not yet started, the items in flight, and after a
/// cancellation the indices still owed an error.
struct Driver<I, S, F> {
    inputs: I,
    start: S,
    max_concurrency: usize,
    next_index: usize,
    exhausted: bool,
    in_flight: FuturesUnordered<Tagged<F>>,
    /// The batch context's end, watched once for the whole batch (not once per item).
    cancelled: Cancelled,
    /// Set once the context has ended: every remaining item gets this error.
    ended: Option<Error>,
    /// Indices that were in flight when the context ended, in order.
    orphans: VecDeque<usize>,
    finished: bool,
}

impl<I, S, F, T> Driver<I, S, F>
where
    I: Iterator,
    S: FnMut(usize, I::Item) -> F,
    F: Future<Output = Result<T, Error>>,
{
    fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<(usize, Result<T, Error>)>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.ended.is_none() {
            if let Poll::Ready(err) = Pin::new(&mut self.cancelled).poll(cx) {
                self.end(err);
            }
        }
        if let Some(err) = self.ended.clone() {
            let index = match self.orphans.pop_front() {
                Some(index) => Some(index),
                // Not started, and never will be: the input is dropped unused. Every input of
                // an iterator that may end gets its error; one that says it never ends (its
                // lower bound is `usize::MAX`) would yield errors forever.
                None if !self.exhausted && self.inputs.size_hint().0 != usize::MAX => {
                    let index = self.inputs.next().map(|_| self.take_index());
                    self.exhausted = index.is_none();
                    index
                }
                None => None,
            };
            if index.is_none() {
                self.finished = true;
            }
            return Poll::Ready(index.map(|index| (index, Err(err))));
        }
        while !self.exhausted && self.in_flight.len() < self.max_concurrency {
            match self.inputs.next() {
                Some(input) => {
                    let index = self.take_index();
                    let future = (self.start)(index, input);
                    self.in_flight.push(Tagged { index, future });
                }
                None => self.exhausted = true,
            }
        }
        match self.in_flight.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            // Empty with a free slot: the inputs are exhausted.
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn take_index(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    /// The context has ended: drop every item in flight (cancelling its child context) and
    /// owe each of them the error.
    fn end(&mut self, err: Error) {
        let mut orphans: Vec<usize> = Pin::new(&self.in_flight)
            .iter_pin_ref()
            .map(|item| item.get_ref().index)
            .collect();
        orphans.sort_unstable();
        self.in_flight.clear();
        self.orphans = orphans.into();
        self.ended = Some(err);
    }
}

/// `SplitMix64`: a tiny, fast generator, good enough to spread backoffs (not for anything that
/// needs unpredictability).
#[derive(Debug, Clone, Copy)]
struct SplitMix64(u64);

impl SplitMix64 {
    /// An item's own generator: the batch's seed mixed with the item's index, so items that
    /// fail together back off by different amounts.
    fn for_item(seed: u64, index: usize) -> Self {
        let mut mixer = SplitMix64(seed ^ index as u64);
        SplitMix64(mixer.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    // The top 53 bits fit an f64's mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
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

    #[test]
    fn items_get_different_generators() {
        let a = SplitMix64::for_item(9, 0).next_u64();
        let b = SplitMix64::for_item(9, 1).next_u64();
        let c = SplitMix64::for_item(10, 0).next_u64();
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn unit_is_in_range() {
        let mut rng = SplitMix64(0);
        assert!(
            (0..10_000)
                .map(|_| rng.next_unit())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }
}
