use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedFuture, Stream};
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::event::{Event, EventKind};

/// What [`collect_events`](crate::EventStreamExt::collect_events) gathers: every event, in order, and the terminal
/// error if the stream ended with one.
///
/// Reported `error` events are among the `events`; only a terminal `Err` item goes to `error`.
///
/// ```
/// use beluga_core::{Error, ErrorCode, Event, EventStreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let items = vec![
///     Ok(Event::data(1)),
///     Err(Error::new(ErrorCode::RateLimit, "429")),
/// ];
/// let collected = futures_util::stream::iter(items).collect_events().await;
/// assert_eq!(collected.events, [Event::data(1)]);
/// assert_eq!(collected.error.map(|e| e.code()), Some(ErrorCode::RateLimit));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Collected<T> {
    /// Every event, in the order the stream yielded them.
    ///
    /// ```
    /// use beluga_core::{Event, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let events = stream::iter([7]).collect_events().await.events;
    /// assert_eq!(events, [Event::data(7), Event::done()]);
    /// # }
    /// ```
    pub events: Vec<Event<T>>,
    /// The terminal error, if the stream ended with one.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(stream::iter([7]).collect_events().await.error.is_none());
    /// # }
    /// ```
    pub error: Option<Error>,
}

impl<T> Collected<T> {
    /// The events, or the terminal error (dropping the events before it).
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let events = stream::iter([1, 2]).collect_events().await.into_result().unwrap();
    /// assert_eq!(events.len(), 3); // two data events and `done`
    /// # }
    /// ```
    pub fn into_result(self) -> Result<Vec<Event<T>>, Error> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(self.events),
        }
    }

    /// The payloads of the `data` events, in order.
    ///
    /// ```
    /// use beluga_core::{EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let collected = stream::iter(["a", "b"]).collect_events().await;
    /// assert_eq!(collected.data().copied().collect::<String>(), "ab");
    /// # }
    /// ```
    pub fn data(&self) -> impl Iterator<Item = &T> {
        self.events.iter().filter_map(|ev| match ev.kind() {
            EventKind::Data(t) => Some(t),
            _ => None,
        })
    }
}

pin_project! {
    /// Future for the [`collect_events`](crate::EventStreamExt::collect_events) method.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Collect<S, T> {
        #[pin]
        stream: S,
        events: Vec<Event<T>>,
        finished: bool,
    }
}

impl<S: Stream, T> Collect<S, T> {
    pub(crate) fn new(stream: S) -> Self {
        // Trust the lower bound only so far: a stream may claim to be endless and still end
        // early at a terminal error.
        let capacity = stream.size_hint().0.min(1024);
        Collect {
            stream,
            events: Vec::with_capacity(capacity),
            finished: false,
        }
    }
}

impl<S: fmt::Debug, T: fmt::Debug> fmt::Debug for Collect<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect")
            .field("stream", &self.stream)
            .field("events", &self.events)
            .field("finished", &self.finished)
            .finish()
    }
}

impl<S, T> Future for Collect<S, T>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    type Output = Collected<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Collected<T>> {
        let mut this = self.project();
        assert!(!*this.finished, "`Collect` polled after it completed");
        loop {
            let error = match ready!(this.stream.as_mut().poll_next(cx)) {
                Some(Ok(ev)) => {
                    this.events.push(ev);
                    continue;
                }
                Some(Err(err)) => Some(err),
                None => None,
            };
            *this.finished = true;
            return Poll::Ready(Collected {
                events: std::mem::take(this.events),
                error,
            });
        }
    }
}

impl<S, T> FusedFuture for Collect<S, T>
where
    S: Stream<Item = Result<Event<T>, Error>>,
{
    fn is_terminated(&self) -> bool {
        self.finished
    }
}
