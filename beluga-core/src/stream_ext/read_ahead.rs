use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinError, JoinHandle};

use super::Cancellable;
use super::panic::panic_message;
use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::event::Event;

type Item<T> = Result<Event<T>, Error>;

/// The largest capacity a Tokio channel accepts.
const MAX_CAPACITY: usize = Semaphore::MAX_PERMITS;

pin_project! {
    /// Stream for the [`read_ahead`](crate::EventStreamExt::read_ahead) method.
    ///
    /// A spawned Tokio task pulls the source ahead of the consumer into a bounded channel: the
    /// source is never more than [`capacity`](ReadAhead::capacity) items ahead of what the
    /// consumer has taken. Unlike the other combinators it does not own its source (the task
    /// does), so it has no `get_ref` or `into_inner`.
    ///
    /// Nothing outlives it: dropping it aborts the task, which drops the source wherever it is
    /// parked. The stream ends at its first terminal item (the source's `done` or `Err`, the
    /// context's `cancelled` or `deadline_exceeded`, or an `internal` error if the source
    /// panicked or the task's runtime shut down), or where the source ends without one, and
    /// yields `None` forever after.
    ///
    /// It is `Unpin` and `Send` (when `T` is), whatever the source was.
    #[must_use = "streams do nothing unless polled, and dropping this one stops its task"]
    pub struct ReadAhead<T> {
        #[pin]
        inner: Cancellable<Channel<T>>,
        capacity: usize,
    }
}

impl<T: Send + 'static> ReadAhead<T> {
    #[track_caller]
    pub(crate) fn new<S>(stream: S, capacity: usize, ctx: &Context) -> Self
    where
        S: Stream<Item = Item<T>> + Send + 'static,
    {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Self::refused(capacity, ctx);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            panic!("read_ahead: must be called from inside a Tokio runtime, to spawn its task");
        };
        // Every source item, plus one error (panic, cancellation, runtime shutdown) at most.
        let remaining = stream.size_hint().1.and_then(|n| n.checked_add(1));
        let (tx, rx) = mpsc::channel(capacity);
        let task = runtime.spawn(run(stream, tx, ctx.clone()));
        let channel = Channel {
            rx,
            task: Some(task),
            ctx: ctx.clone(),
            closed: false,
            remaining,
        };
        ReadAhead {
            inner: Cancellable::new(channel, ctx),
            capacity,
        }
    }
}

impl<T> ReadAhead<T> {
    /// A stream whose one item is the `invalid_input` error for `capacity`: no task, no buffer.
    fn refused(capacity: usize, ctx: &Context) -> Self {
        let message = if capacity == 0 {
            "read_ahead: capacity must be at least 1 (a buffer of 0 items cannot run ahead)"
                .to_owned()
        } else {
            format!("read_ahead: capacity {capacity} is larger than the maximum, {MAX_CAPACITY}")
        };
        let error = Error::new(ErrorCode::InvalidInput, message).with_op("read_ahead");
        let (tx, rx) = mpsc::channel(1);
        // A fresh channel of one slot has room for the one item.
        let _ = tx.try_send(Err(error));
        let channel = Channel {
            rx,
            task: None,
            ctx: ctx.clone(),
            closed: false,
            remaining: Some(1),
        };
        ReadAhead {
            inner: Cancellable::new(channel, ctx),
            capacity,
        }
    }

    /// How many items wait in the buffer, already pulled from the source; `0` once the stream
    /// has ended. At most [`capacity`](ReadAhead::capacity).
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let buffered = stream::iter(1..=10).read_ahead(4, &Context::new());
    /// for _ in 0..10 {
    ///     tokio::task::yield_now().await; // the task fills the buffer meanwhile
    /// }
    /// assert_eq!(buffered.len(), 4);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.inner.get_ref().map_or(0, |channel| channel.rx.len())
    }

    /// Whether no item waits in the buffer (see [`len`](ReadAhead::len)).
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let buffered = stream::iter([1]).read_ahead(4, &Context::new());
    /// assert!(buffered.is_empty()); // the task has not run yet
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the buffer holds: how far the source may run ahead of the consumer.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let buffered = stream::iter([1, 2]).read_ahead(16, &Context::new());
    /// assert_eq!(buffered.capacity(), 16);
    /// # }
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The context this stream and its task watch.
    ///
    /// ```
    /// use beluga_core::{Context, EventStreamExt, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new().with_request_id("req-7");
    /// let buffered = stream::iter([1, 2]).read_ahead(16, &ctx);
    /// assert_eq!(buffered.context().request_id(), Some("req-7"));
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        self.inner.context()
    }
}

impl<T> fmt::Debug for ReadAhead<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadAhead")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("ctx", self.context())
            .field("terminated", &self.inner.get_ref().is_none())
            .finish()
    }
}

impl<T> Stream for ReadAhead<T> {
    type Item = Item<T>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // `Cancellable` checks the context before every item and while parked, ends with one
        // terminal item, and drops the channel (aborting the task) when it ends.
        self.project().inner.poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> FusedStream for ReadAhead<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

/// The consumer's end: the channel, then the task's outcome once the channel closes without a
/// terminal item. Dropping it aborts the task.
struct Channel<T> {
    rx: mpsc::Receiver<Item<T>>,
    /// `None` for a refused capacity, whose stream is its one error.
    task: Option<JoinHandle<()>>,
    ctx: Context,
    /// The channel has closed: only the task's outcome is left to read.
    closed: bool,
    /// At most how many items are still to come, if the source said.
    remaining: Option<usize>,
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        // Drops the source at the task's next scheduling, wherever it is parked. A no-op if the
        // task has already finished.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl<T> Stream for Channel<T> {
    type Item = Item<T>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Item<T>>> {
        let this = &mut *self;
        if !this.closed {
            match ready!(this.rx.poll_recv(cx)) {
                Some(item) => {
                    this.remaining = this.remaining.map(|n| n.saturating_sub(1));
                    return Poll::Ready(Some(item));
                }
                None => this.closed = true,
            }
        }
        // `Cancellable` drops this stream after it yields `None` or a terminal item, so the
        // handle is never polled again after it completes.
        this.join(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let waiting = if self.closed { 0 } else { self.rx.len() };
        (waiting, self.remaining)
    }
}

impl<T> Channel<T> {
    /// The channel closed without a terminal item: the source ended, the task saw the context
    /// end, or the source panicked. The task's outcome says which.
    #[cold]
    #[inline(never)]
    fn join(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Item<T>>> {
        let Some(task) = &mut self.task else {
            return Poll::Ready(None);
        };
        let outcome = ready!(Pin::new(task).poll(cx));
        Poll::Ready(match outcome {
            // The context may have ended after `Cancellable` last looked at it.
            Ok(()) => self.ctx.error().map(Err),
            Err(err) => Some(Err(task_failed(err))),
        })
    }
}

/// The error for a task that did not finish: `internal`, saying why.
fn task_failed(err: JoinError) -> Error {
    let message = match err.try_into_panic() {
        Ok(payload) => match panic_message(&*payload) {
            Some(msg) => format!("the source panicked: {msg}"),
            None => "the source panicked".to_owned(),
        },
        Err(_) => "the task was cancelled: its Tokio runtime shut down".to_owned(),
    };
    Error::new(ErrorCode::Internal, message).with_op("read_ahead")
}

/// The spawned task: pulls the source into the channel until the source ends or yields its
/// terminal item, the consumer goes away, or the context ends; then drops the source.
async fn run<S, T>(source: S, tx: mpsc::Sender<Item<T>>, ctx: Context)
where
    S: Stream<Item = Item<T>>,
{
    let mut forward = pin!(forward(source, tx, &ctx));
    let mut cancelled = ctx.cancelled();
    poll_fn(|cx| {
        if forward.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // Parked on the source or on a full channel: wake up if the context ends meanwhile.
        Pin::new(&mut cancelled).poll(cx).map(drop)
    })
    .await;
}

async fn forward<S, T>(source: S, tx: mpsc::Sender<Item<T>>, ctx: &Context)
where
    S: Stream<Item = Item<T>>,
{
    let mut source = pin!(source);
    loop {
        // Yield to the scheduler as often as `Sender::send` would (the fast path below skips the
        // budget that `reserve` spends).
        tokio::task::coop::consume_budget().await;
        // A slot first, then an item: the source never runs more than `capacity` items ahead.
        // `try_reserve` first: a free slot is the common case, and taking it without building
        // `reserve`'s future makes the whole stream cheaper than a plain spawned `send` loop.
        let slot = match tx.try_reserve() {
            Ok(slot) => slot,
            Err(TrySendError::Full(())) => match tx.reserve().await {
                Ok(slot) => slot,
                Err(_) => return, // the consumer is gone
            },
            Err(TrySendError::Closed(())) => return,
        };
        if ctx.is_cancelled() {
            return;
        }
        let Some(item) = poll_fn(|cx| source.as_mut().poll_next(cx)).await else {
            return;
        };
        let terminal = !matches!(&item, Ok(ev) if !ev.is_done());
        slot.send(item);
        if terminal {
            return;
        }
    }
}
