//! [`EventFrames`]: the body of a response made by [`serve`](crate::serve).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::response::sse;
use beluga_core::{Context, EventResult};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::encoding::Encoding;
use crate::frame::Frame;
use crate::server::sse_event;
use crate::source::Source;

pin_project! {
    /// Stream for [`serve`](crate::serve): the source's items as SSE events, numbered from 1.
    ///
    /// It owns the source and the source's [`Context`]. Dropping it (the server does when the
    /// client goes away) cancels the context, then drops the source.
    ///
    /// ```
    /// use beluga_core::{Context, stream};
    /// use beluga_sse::BelugaJson;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::new();
    /// let mut child = None;
    /// let response = beluga_sse::serve(&ctx, BelugaJson, |c| {
    ///     child = Some(c);
    ///     stream::iter(["hi"])
    /// });
    /// drop(response); // as the server does when the client goes away
    /// assert!(child.unwrap().is_cancelled());
    /// assert!(!ctx.is_cancelled());
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct EventFrames<S, E, T> {
        #[pin]
        source: Source<S, E, T>,
        ctx: Context,
        position: u64,
        // Frames encoded and not yet sent: `frames[sent..]`.
        frames: Vec<Frame>,
        sent: usize,
        _item: PhantomData<fn() -> T>,
    }

    impl<S, E, T> PinnedDrop for EventFrames<S, E, T> {
        fn drop(this: Pin<&mut Self>) {
            // Cancel first: the source is dropped right after, with the fields.
            this.ctx.cancel();
        }
    }
}

impl<S, E, T> EventFrames<S, E, T>
where
    S: Stream<Item = EventResult<T>>,
    E: Encoding<T>,
{
    pub(crate) fn new(source: S, encoding: E, ctx: Context) -> Self {
        EventFrames {
            source: Source::new(source, encoding),
            ctx,
            position: 0,
            frames: Vec::new(),
            sent: 0,
            _item: PhantomData,
        }
    }
}

impl<S, E, T> Stream for EventFrames<S, E, T>
where
    S: Stream<Item = EventResult<T>>,
    E: Encoding<T>,
{
    type Item = Result<sse::Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(frame) = this.frames.get(*this.sent) {
                *this.sent += 1;
                *this.position += 1;
                let event = sse_event(frame, &this.position.to_string());
                return Poll::Ready(Some(Ok(event)));
            }
            if this.source.is_ended() {
                return Poll::Ready(None);
            }
            this.frames.clear();
            *this.sent = 0;
            if this
                .source
                .as_mut()
                .poll_frames(cx, this.frames)
                .is_pending()
            {
                return Poll::Pending;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = self.frames.len() - self.sent;
        if self.source.is_ended() {
            (pending, Some(pending))
        } else {
            (pending, None)
        }
    }
}

impl<S, E, T> fmt::Debug for EventFrames<S, E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFrames")
            .field("position", &self.position)
            .field("pending", &(self.frames.len() - self.sent))
            .field("ended", &self.source.is_ended())
            .finish_non_exhaustive()
    }
}
