use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedStream, Stream};

use super::ready::ReadySet;
use crate::error::Error;
use crate::event::Event;

/// Stream for the [`stream::merge`](crate::stream::merge) function.
///
/// Polls the inputs from the consumer's task, each with a waker of its own, and only those that
/// may have an item: the ones woken since they last returned `Pending`, and the ones whose last
/// poll returned an item. So a wake on one input of thousands polls that input alone, and the
/// cost of an item does not grow with the number of inputs. The inputs are polled round-robin,
/// in rounds once one has had to wait: the ones woken since the last round, then the ones still
/// ready from it. An input that is always ready gets one turn per round and cannot starve the
/// others, and an input woken among always-ready ones is polled within one round. Inputs need not be
/// `Unpin`: they are pinned in place in the merge's own storage, one allocation for the inputs it
/// is made with (inputs [`push`](Merge::push)ed beyond its room go to further chunks, each twice
/// the size of the last; while there are any, the merge polls in rounds even when every input
/// is ready). Nothing is allocated per item.
///
/// Each input's `done` event marks that input finished and is not passed on; once all have
/// finished, the merged stream yields one plain `done` if every input ended with one, and
/// otherwise ends without one (see [how a stream ends](crate::stream#how-a-stream-ends)). The
/// inputs' final values, from `done_with`, are not carried: merge `Runnable` streams with
/// [`parallel`](crate::runnable::parallel) to keep them. The first `Err` from any input is
/// yielded and ends the stream, dropping every input at once.
#[must_use = "streams do nothing unless polled"]
pub struct Merge<S> {
    inputs: ReadySet<S>,
    /// Whether every input that has finished ended with a `done` event.
    all_done: bool,
    finished: bool,
}

impl<S> Merge<S> {
    pub(crate) fn new(inputs: impl IntoIterator<Item = S>) -> Self {
        let inputs = inputs.into_iter();
        let mut set = ReadySet::with_capacity(inputs.size_hint().0);
        for input in inputs {
            set.push(input);
        }
        Merge {
            inputs: set,
            all_done: true,
            finished: false,
        }
    }

    /// Adds `input` to the merge, to be polled from the next poll on. Gives it back if the merge
    /// has already ended (its last item was yielded, or an error ended it).
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut merged = stream::merge([stream::iter([1])]);
    /// assert!(merged.push(stream::iter([2])).is_ok());
    /// let mut data: Vec<u8> = merged.collect_events().await.data().copied().collect();
    /// data.sort_unstable();
    /// assert_eq!(data, [1, 2]);
    /// # }
    /// ```
    pub fn push(&mut self, input: S) -> Result<(), S> {
        if self.finished {
            return Err(input);
        }
        self.inputs.push(input);
        Ok(())
    }

    /// How many inputs have not finished yet.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.live(), 2);
    /// ```
    pub fn live(&self) -> usize {
        self.inputs.live()
    }

    /// The inputs that have not finished yet.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.iter().count(), 2);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &S> {
        self.inputs.iter()
    }

    /// The inputs that have not finished yet, pinned (`Pin::get_mut` gives `&mut S` for an
    /// `Unpin` input). Pulling items from them directly skips the merge.
    ///
    /// ```
    /// use beluga_core::stream;
    /// let mut merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.iter_mut().count(), 2);
    /// ```
    pub fn iter_mut(&mut self) -> impl Iterator<Item = Pin<&mut S>> {
        self.inputs.iter_mut()
    }

    fn end(&mut self) {
        self.finished = true;
        // Drop every input at once, in this poll.
        self.inputs.clear();
    }
}

impl<S: Unpin> Merge<S> {
    /// The inputs that have not finished yet (for `Unpin` inputs: the others are pinned in the
    /// merge, and dropped with it).
    ///
    /// ```
    /// use beluga_core::stream;
    /// let merged = stream::merge([stream::iter([1]), stream::iter([2])]);
    /// assert_eq!(merged.into_inner().len(), 2);
    /// ```
    pub fn into_inner(self) -> Vec<S> {
        self.inputs.into_streams().collect()
    }
}

impl<S: fmt::Debug> fmt::Debug for Merge<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merge")
            .field("inputs", &self.inputs.iter().collect::<Vec<_>>())
            .field("live", &self.inputs.live())
            .field("all_done", &self.all_done)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<S, T> Stream for Merge<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // The fast path: an input has a data event.
        match this.inputs.poll_fast() {
            Some((_, Some(Ok(event)))) if !event.is_done() => Poll::Ready(Some(Ok(event))),
            first => poll_slow(this, cx, first),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished {
            return (0, Some(0));
        }
        // An error can end the merge at any point; the inputs' `done`s give way to one at most.
        let upper = self.inputs.iter().try_fold(1_usize, |sum, s| {
            s.size_hint().1.and_then(|u| sum.checked_add(u))
        });
        (0, upper)
    }
}

/// An input's number and its item or end.
type Polled<T> = (usize, Option<Result<Event<T>, Error>>);

/// Everything but the fast path: an input's end or error (`first`), or no input ready yet
/// (`first` is `None`: the rest of [`ReadySet::poll_next`] is to be done).
#[inline(never)]
fn poll_slow<S, T>(
    this: &mut Merge<S>,
    cx: &mut TaskContext<'_>,
    first: Option<Polled<T>>,
) -> Poll<Option<Result<Event<T>, Error>>>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    let mut polled = match first {
        Some(ready) => Poll::Ready(ready),
        None => this.inputs.poll_slow(cx),
    };
    loop {
        match polled {
            Poll::Ready((_, Some(Ok(event)))) if !event.is_done() => {
                return Poll::Ready(Some(Ok(event)));
            }
            // This input is finished: its `done` is not the merge's.
            Poll::Ready((index, Some(Ok(_)))) => {
                this.inputs.remove(index);
            }
            // Finished without a `done`: neither will the merge have one.
            Poll::Ready((index, None)) => {
                this.inputs.remove(index);
                this.all_done = false;
            }
            Poll::Ready((_, Some(Err(err)))) => {
                this.end();
                return Poll::Ready(Some(Err(err)));
            }
            Poll::Pending if this.finished => return Poll::Ready(None),
            Poll::Pending if this.inputs.live() > 0 => return Poll::Pending,
            Poll::Pending => {}
        }
        if this.inputs.live() == 0 {
            this.end();
            return Poll::Ready(this.all_done.then(|| Ok(Event::done())));
        }
        polled = this.inputs.poll_next(cx);
    }
}

impl<S, T> FusedStream for Merge<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.finished
    }
}
