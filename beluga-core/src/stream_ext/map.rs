use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::event::Event;

pin_project! {
    /// Stream for the [`map_payload`](crate::EventStreamExt::map_payload) method.
    #[must_use = "streams do nothing unless polled"]
    pub struct Map<S, F> {
        #[pin]
        stream: S,
        f: F,
    }
}

impl<S, F> Map<S, F> {
    pub(crate) fn new(stream: S, f: F) -> Self {
        Map { stream, f }
    }

    /// The underlying stream.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).map_payload(|n| n * 2);
    /// assert_eq!(s.get_ref().size_hint(), (3, Some(3)));
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Pulling items from it directly skips the mapping.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).map_payload(|n| n * 2);
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
    /// let mut s = stream::iter([1, 2]).map_payload(|n| n * 2);
    /// let _inner = std::pin::Pin::new(&mut s).get_pin_mut();
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// The underlying stream, dropping the closure.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// use futures_util::Stream as _;
    /// let mut s = stream::iter([1, 2]).map_payload(|n| n * 2);
    /// let inner = s.into_inner();
    /// assert_eq!(inner.size_hint(), (3, Some(3)));
    /// ```
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Map<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<S, F, T, U> Stream for Map<S, F>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    F: FnMut(T) -> U,
{
    type Item = Result<Event<U>, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.stream.poll_next(cx));
        Poll::Ready(item.map(|res| res.map(|ev| ev.map(this.f))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

impl<S, F, T, U> FusedStream for Map<S, F>
where
    S: FusedStream<Item = Result<Event<T>, Error>>,
    F: FnMut(T) -> U,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}
