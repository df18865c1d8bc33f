//! [`RunnableExt::batch`] and [`RunnableExt::batch_unordered`]: one runnable over many inputs,
//! with a concurrency limit, a per-attempt timeout and a retry policy that is actually applied.
//! The rules are on [`RunnableExt::batch`].

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use pin_project_lite::pin_project;
use tokio::time::Instant;

mod options;
mod retry;
mod rng;

pub use self::options::BatchOptions;
pub use self::retry::RetryPolicy;
use self::rng::SplitMix64;
use super::{CancelOnDrop, Runnable, RunnableExt};
use crate::context::{CancelReason, Cancelled, Context};
use crate::error::{Error, ErrorCode};

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
        max_concurrency: options.max_concurrency(),
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
    let retry = options.retry();
    let mut attempt = 1;
    loop {
        if attempt >= retry.max_attempts() {
            // The last attempt takes the input itself: no clone.
            return run_attempt(runnable, &ctx, input, options.timeout()).await;
        }
        match run_attempt(runnable, &ctx, input.clone(), options.timeout()).await {
            Err(err) if err.is_retryable() => {
                // No race with cancellation here: the batch drops this whole future when its
                // context ends, this sleep included.
                tokio::time::sleep(retry.wait_before(attempt, &err, &mut rng)).await;
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
