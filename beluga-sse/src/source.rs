//! The source of a served stream and its encoding: items in, frames out, with the rules that
//! hold for every encoding (one end, the source dropped at it, a panic turned into an error).

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use beluga_core::{Error, ErrorCode};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::encoding::Encoding;
use crate::frame::Frame;
use crate::server::ServedItem;

pin_project! {
    /// An event stream and the encoding of its items. The stream is dropped as soon as it has
    /// ended, whichever way.
    pub(crate) struct Source<S, E, T> {
        #[pin]
        stream: Option<S>,
        encoding: E,
        _item: PhantomData<fn() -> T>,
    }
}

impl<S, E, T> Source<S, E, T>
where
    S: Stream,
    S::Item: ServedItem<Payload = T>,
    E: Encoding<T>,
{
    pub(crate) fn new(stream: S, encoding: E) -> Self {
        Source {
            stream: Some(stream),
            encoding,
            _item: PhantomData,
        }
    }

    /// Polls the stream for one item and appends its frames to `out` (possibly none); returns
    /// the item's own id, if it came with one. Once [`is_ended`](Self::is_ended), the end's
    /// frames have been written and this returns `Ready(None)` with nothing more.
    pub(crate) fn poll_frames(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        out: &mut Vec<Frame>,
    ) -> Poll<Option<String>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let mut id = None;
        let ended = match catch_unwind(AssertUnwindSafe(|| stream.poll_next(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Some(item))) => {
                let (item_id, item) = item.into_parts();
                match (item_id.map(checked_id).transpose(), item) {
                    (Err(err), _) => {
                        this.encoding.error(&err, out);
                        true
                    }
                    (Ok(item_id), Ok(event)) => {
                        id = item_id;
                        match this.encoding.event(&event, out) {
                            Ok(()) => event.is_done(),
                            Err(err) => {
                                this.encoding.error(&err, out);
                                true
                            }
                        }
                    }
                    (Ok(item_id), Err(err)) => {
                        id = item_id;
                        this.encoding.error(&err, out);
                        true
                    }
                }
            }
            Ok(Poll::Ready(None)) => {
                this.encoding.cut(out);
                true
            }
            Err(panic) => {
                this.encoding.error(&panicked(&*panic), out);
                true
            }
        };
        if ended {
            this.stream.set(None);
        }
        Poll::Ready(id)
    }
}

/// `id` if SSE can carry it as an event id: no line break, no NUL.
fn checked_id(id: String) -> Result<String, Error> {
    if id.contains(['\r', '\n', '\0']) {
        let shown: String = id.chars().take(64).collect();
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("event id {shown:?} holds a line break or a NUL, which SSE cannot carry"),
        )
        .with_op("sse.serve"));
    }
    Ok(id)
}

impl<S, E, T> Source<S, E, T>
where
    E: Encoding<T>,
{
    /// Ends the stream with `error` from outside (its context ended while it did not
    /// notice): drops it and appends the error's frames. Does nothing once it has ended.
    pub(crate) fn end_with(self: Pin<&mut Self>, error: &Error, out: &mut Vec<Frame>) {
        let mut this = self.project();
        if this.stream.is_some() {
            this.stream.set(None);
            this.encoding.error(error, out);
        }
    }
}

impl<S, E, T> Source<S, E, T> {
    /// Whether the stream has ended and been dropped.
    pub(crate) fn is_ended(&self) -> bool {
        self.stream.is_none()
    }
}

/// The error that a panic of the served stream becomes.
fn panicked(payload: &(dyn Any + Send)) -> Error {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a value that is not a string");
    Error::new(
        ErrorCode::Internal,
        format!("the event stream panicked: {text}"),
    )
    .with_op("sse.serve")
}
