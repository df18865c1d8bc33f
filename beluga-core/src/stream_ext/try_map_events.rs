use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::event::Event;

pin_project! {
    /// Stream for the [`try_map_events`](crate::EventStreamExt::try_map_events) method.
    #[must_use = "streams do nothing unless polled"]
    pub struct TryMapEvents<S, F> {
        // `None` once the stream has ended: after its terminal item, or after `f` failed.
        #[pin]
        stream: Option<S>,
        f: F,
    }
}

impl<S, F> TryMapEvents<S, F> {
    pub(crate) fn new(stream: S, f: F) -> Self {
        TryMapEvents {
            stream: Some(stream),
            f,
        }
    }

    /// The underlying stream, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// let s = stream::iter([1]).try_map_events(|ev| Ok(ev.map(|n| n + 1)));
    /// assert!(s.get_ref().is_some());
    /// ```
    pub fn get_ref(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The underlying stream, mutably, or `None` once this stream has ended. Pulling items from
    /// it directly skips the mapping.
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// let mut s = stream::iter([1]).try_map_events(|ev| Ok(ev.map(|n| n + 1)));
    /// assert!(s.get_mut().is_some());
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// The underlying stream, pinned and mutably, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// let mut s = stream::iter([1]).try_map_events(|ev| Ok(ev.map(|n| n + 1)));
    /// assert!(std::pin::Pin::new(&mut s).get_pin_mut().is_some());
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut S>> {
        self.project().stream.as_pin_mut()
    }

    /// The underlying stream, dropping the closure; `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// let s = stream::iter([1]).try_map_events(|ev| Ok(ev.map(|n| n + 1)));
    /// assert!(s.into_inner().is_some());
    /// ```
    pub fn into_inner(self) -> Option<S> {
        self.stream
    }
}

impl<S: fmt::Debug, F> fmt::Debug for TryMapEvents<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMapEvents")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<S, F, T, U> Stream for TryMapEvents<S, F>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    F: FnMut(Event<T>) -> Result<Event<U>, Error>,
{
    type Item = Result<Event<U>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let item = match ready!(stream.poll_next(cx)) {
            Some(Ok(event)) => {
                let terminal = event.is_done();
                let mapped = (this.f)(event);
                if terminal || mapped.is_err() {
                    this.stream.set(None);
                }
                mapped
            }
            Some(Err(err)) => {
                this.stream.set(None);
                Err(err)
            }
            None => {
                this.stream.set(None);
                return Poll::Ready(None);
            }
        };
        Poll::Ready(Some(item))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            // A failing `f` can end the stream early, never make it longer.
            Some(stream) => (0, stream.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

impl<S, F, T, U> FusedStream for TryMapEvents<S, F>
where
    S: Stream<Item = Result<Event<T>, Error>>,
    F: FnMut(Event<T>) -> Result<Event<U>, Error>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none()
    }
}
