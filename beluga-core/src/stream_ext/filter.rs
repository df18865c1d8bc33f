use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::event::Event;

pin_project! {
    /// Stream for the [`filter_events`](crate::EventStreamExt::filter_events) method.
    #[must_use = "streams do nothing unless polled"]
    pub struct Filter<S, F> {
        #[pin]
        stream: S,
        predicate: F,
    }
}

impl<S, F> Filter<S, F> {
    pub(crate) fn new(stream: S, predicate: F) -> Self {
        Filter { stream, predicate }
    }

    /// The underlying stream.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).filter_events(|_| true);
    /// assert_eq!(s.get_ref().size_hint(), (3, Some(3)));
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Pulling items from it directly skips the filter.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).filter_events(|_| true);
    /// let _inner = s.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The underlying stream, pinned and mutably.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).filter_events(|_| true);
    /// let _inner = std::pin::Pin::new(&mut s).get_pin_mut();
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// The underlying stream, dropping the predicate.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).filter_events(|_| true);
    /// let inner = s.into_inner();
    /// assert_eq!(inner.size_hint(), (3, Some(3)));
    /// ```
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Filter<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<S, F, T> Stream for Filter<S, F>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    F: FnMut(&Event<T>) -> bool,
{
    type Item = Result<Event<T>, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            match ready!(this.stream.as_mut().poll_next(cx)) {
                // `done` events and `Err` items end the stream: they always pass.
                Some(Ok(ev)) if !ev.is_done() && !(this.predicate)(&ev) => {}
                item => return Poll::Ready(item),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Any item but the last may be dropped.
        let (_, upper) = self.stream.size_hint();
        (0, upper)
    }
}

impl<S, F, T> FusedStream for Filter<S, F>
where
    S: FusedStream<Item = Result<Event<T>, Error>>,
    F: FnMut(&Event<T>) -> bool,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}
