use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::event::{Event, EventKind};

pin_project! {
    /// Stream for the [`payloads`](crate::EventStreamExt::payloads) method.
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct Payloads<S> {
        // `None` once the stream has ended: after `done` or the terminal error.
        #[pin]
        stream: Option<S>,
    }
}

impl<S> Payloads<S> {
    pub(crate) fn new(stream: S) -> Self {
        Payloads {
            stream: Some(stream),
        }
    }

    /// The underlying stream, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let s = stream::iter([1, 2]).payloads();
    /// assert!(s.get_ref().is_some());
    /// ```
    pub fn get_ref(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The underlying stream, mutably, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let mut s = stream::iter([1, 2]).payloads();
    /// assert!(s.get_mut().is_some());
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// The underlying stream, pinned and mutably, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let mut s = stream::iter([1, 2]).payloads();
    /// assert!(std::pin::Pin::new(&mut s).get_pin_mut().is_some());
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut S>> {
        self.project().stream.as_pin_mut()
    }

    /// The underlying stream, or `None` once this stream has ended.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// let s = stream::iter([1, 2]).payloads();
    /// assert!(s.into_inner().is_some());
    /// ```
    pub fn into_inner(self) -> Option<S> {
        self.stream
    }
}

impl<S, T> Stream for Payloads<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        while let Some(stream) = this.stream.as_mut().as_pin_mut() {
            match ready!(stream.poll_next(cx)) {
                Some(Ok(event)) => match event.into_kind() {
                    EventKind::Data(payload) => return Poll::Ready(Some(Ok(payload))),
                    EventKind::Done(_) => this.stream.set(None),
                    EventKind::ToolCall(_)
                    | EventKind::ToolResult(_)
                    | EventKind::Handoff(_)
                    | EventKind::Error(_) => {}
                },
                Some(Err(err)) => {
                    this.stream.set(None);
                    return Poll::Ready(Some(Err(err)));
                }
                None => this.stream.set(None),
            }
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            // Every event but the `data` ones is skipped; a terminal error takes one item.
            Some(stream) => (0, stream.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

impl<S, T> FusedStream for Payloads<S>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none()
    }
}
