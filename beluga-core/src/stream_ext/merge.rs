use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};

use crate::error::Error;
use crate::event::Event;

/// Stream for the [`stream::merge`](crate::stream::merge) function.
///
/// Polls every input from the consumer's task, starting each time after the input that yielded
/// last, so an input that is always ready cannot starve the others. Each input's `done` event
/// marks that input finished and is not passed on; once all have finished, the merged stream
/// yields one plain `done` if every input ended with one, and otherwise ends without one (see
/// [how a stream ends](crate::stream#how-a-stream-ends)). The inputs' final values, from
/// `done_with`, are not carried: merge `Runnable` streams with
/// [`parallel`](crate::runnable::parallel) to keep them. The first `Err` from any input is
/// yielded and ends the stream, dropping every input at once.
#[must_use = "streams do nothing unless polled"]
pub struct Merge<S> {
    inputs: Vec<Option<S>>,
    /// Where the next poll starts: just after the input that yielded last.
    next: usize,
    live: usize,
    /// Whether every input that has finished ended with a `done` event.
    all_done: bool,
    finished: bool,
}

impl<S> Merge<S> {
    pub(crate) fn new(inputs: impl IntoIterator<Item = S>) -> Self {
        let inputs: Vec<Option<S>> = inputs.into_iter().map(Some).collect();
        let live = inputs.len();
        Merge {
            inputs,
            next: 0,
            live,
            all_done: true,
            finished: false,
        }
    }

    /// How many inputs have not finished yet.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.live(), 2);
    /// ```
    pub fn live(&self) -> usize {
        self.live
    }

    /// The inputs that have not finished yet.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.get_ref().count(), 2);
    /// ```
    pub fn get_ref(&self) -> impl Iterator<Item = &S> {
        self.inputs.iter().flatten()
    }

    /// The inputs that have not finished yet, mutably. Pulling items from them directly skips
    /// the merge.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let mut merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.get_mut().count(), 2);
    /// ```
    pub fn get_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.inputs.iter_mut().flatten()
    }

    /// The inputs that have not finished yet.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.into_inner().len(), 2);
    /// ```
    pub fn into_inner(self) -> Vec<S> {
        self.inputs.into_iter().flatten().collect()
    }

    fn end(&mut self) {
        self.finished = true;
        self.live = 0;
        // Drop every input at once, in this poll.
        self.inputs.clear();
    }
}

impl<S: fmt::Debug> fmt::Debug for Merge<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merge")
            .field("inputs", &self.inputs)
            .field("live", &self.live)
            .field("all_done", &self.all_done)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<S, T> Stream for Merge<S>
where
    S: Stream<Item = Result<Event<T>, Error>> + Unpin,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // The fast path: the input whose turn it is has a data event.
        let i = this.next;
        if let Some(Some(input)) = this.inputs.get_mut(i) {
            match Pin::new(input).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) if !event.is_done() => {
                    // Wrapped here, so that the next turn takes the fast path too.
                    let next = i + 1;
                    this.next = if next == this.inputs.len() { 0 } else { next };
                    Poll::Ready(Some(Ok(event)))
                }
                first => poll_slow(this, cx, Some((i, first))),
            }
        } else {
            poll_slow(this, cx, None)
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished {
            return (0, Some(0));
        }
        // An error can end the merge at any point; the inputs' `done`s give way to one at most.
        let upper = self.inputs.iter().flatten().try_fold(1_usize, |sum, s| {
            s.size_hint().1.and_then(|u| sum.checked_add(u))
        });
        (0, upper)
    }
}

/// The result of polling one input (or the merge).
type Polled<T> = Poll<Option<Result<Event<T>, Error>>>;

/// Everything but the fast path: the turn's input had no data event (its poll result is
/// `first`), or the turn points at a finished input. Polls the others round-robin.
#[inline(never)]
fn poll_slow<S, T>(
    this: &mut Merge<S>,
    cx: &mut TaskContext<'_>,
    first: Option<(usize, Polled<T>)>,
) -> Polled<T>
where
    S: Stream<Item = Result<Event<T>, Error>> + Unpin,
{
    if this.finished {
        return Poll::Ready(None);
    }
    let n = this.inputs.len();
    let mut i = this.next;
    let mut first = first;
    for _ in 0..n {
        if i >= n {
            i = 0;
        }
        let polled = match first.take() {
            Some((j, result)) if j == i => Some(result),
            _ => this.inputs[i]
                .as_mut()
                .map(|input| Pin::new(input).poll_next(cx)),
        };
        match polled {
            Some(Poll::Ready(Some(Ok(event)))) if !event.is_done() => {
                this.next = i + 1;
                return Poll::Ready(Some(Ok(event)));
            }
            // This input is finished: its `done` is not the merge's.
            Some(Poll::Ready(Some(Ok(_)))) => {
                this.inputs[i] = None;
                this.live -= 1;
            }
            // Finished without a `done`: neither will the merge have one.
            Some(Poll::Ready(None)) => {
                this.inputs[i] = None;
                this.live -= 1;
                this.all_done = false;
            }
            Some(Poll::Ready(Some(Err(err)))) => {
                this.end();
                return Poll::Ready(Some(Err(err)));
            }
            Some(Poll::Pending) | None => {}
        }
        i += 1;
    }
    if this.live == 0 {
        this.end();
        return Poll::Ready(this.all_done.then(|| Ok(Event::done())));
    }
    Poll::Pending
}

impl<S, T> FusedStream for Merge<S>
where
    S: Stream<Item = Result<Event<T>, Error>> + Unpin,
{
    fn is_terminated(&self) -> bool {
        self.finished
    }
}
