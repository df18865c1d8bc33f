//! [`EventFrames`]: the body of a response made by [`serve`](crate::serve).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::response::sse;
use beluga_core::Context;
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::encoding::Encoding;
use crate::frame::Frame;
use crate::server::{ServedItem, sse_event};
use crate::source::Source;

pin_project! {
    /// Stream for [`serve`](crate::serve): the source's items as SSE events, numbered from 1,
    /// or with the ids the source gives ([`ServedItem`]).
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
        // The number of the last frame numbered by the server.
        position: u64,
        // Frames encoded and not yet sent: `frames[sent..]`.
        frames: Vec<Frame>,
        sent: usize,
        // The id of the item `frames` come from, when the source gave one: sent on the last.
        item_id: Option<String>,
        // Whether the source has given ids: then frames of no item go without one.
        source_ids: bool,
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
    S: Stream,
    S::Item: ServedItem<Payload = T>,
    E: Encoding<T>,
{
    pub(crate) fn new(source: S, encoding: E, ctx: Context) -> Self {
        EventFrames {
            source: Source::new(source, encoding),
            ctx,
            position: 0,
            frames: Vec::new(),
            sent: 0,
            item_id: None,
            source_ids: false,
            _item: PhantomData,
        }
    }
}

impl<S, E, T> Stream for EventFrames<S, E, T>
where
    S: Stream,
    S::Item: ServedItem<Payload = T>,
    E: Encoding<T>,
{
    type Item = Result<sse::Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(frame) = this.frames.get(*this.sent) {
                *this.sent += 1;
                let last = *this.sent == this.frames.len();
                let event = match this.item_id {
                    Some(id) if last => sse_event(frame, Some(id)),
                    _ if *this.source_ids => sse_event(frame, None),
                    _ => {
                        *this.position += 1;
                        sse_event(frame, Some(&this.position.to_string()))
                    }
                };
                return Poll::Ready(Some(Ok(event)));
            }
            if this.source.is_ended() {
                return Poll::Ready(None);
            }
            this.frames.clear();
            *this.sent = 0;
            match this.source.as_mut().poll_frames(cx, this.frames) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(id) => {
                    *this.source_ids |= id.is_some();
                    *this.item_id = id;
                }
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

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use beluga_core::{Error, ErrorCode, Event, EventKind, EventResult, stream};
    use futures_util::StreamExt;

    use super::*;
    use crate::BelugaJson;

    /// The response body of `serve`, as text.
    async fn body<S, E, T>(encoding: E, items: S) -> String
    where
        S: Stream + Send + 'static,
        S::Item: ServedItem<Payload = T>,
        E: Encoding<T>,
        T: 'static,
    {
        let response = crate::serve(&Context::new(), encoding, |_| items).into_response();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The `id:` lines of an SSE body, in order.
    fn ids(body: &str) -> Vec<&str> {
        body.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect()
    }

    /// Two frames per data event: a multi-frame encoding.
    struct Twice;

    impl Encoding<u32> for Twice {
        fn event(&mut self, event: &Event<u32>, out: &mut Vec<Frame>) -> Result<(), Error> {
            match event.kind() {
                EventKind::Data(n) => {
                    out.push(Frame::message(format!("{n}a")));
                    out.push(Frame::message(format!("{n}b")));
                }
                _ => out.push(Frame::message("end")),
            }
            Ok(())
        }
        fn error(&mut self, error: &Error, out: &mut Vec<Frame>) {
            out.push(Frame::named("error", error.code().to_string()));
        }
        fn cut(&mut self, out: &mut Vec<Frame>) {
            out.push(Frame::named("cut", ""));
        }
    }

    #[tokio::test]
    async fn plain_items_are_numbered_per_frame() {
        let body = body(Twice, stream::iter([7_u32, 8])).await;
        assert_eq!(ids(&body), ["1", "2", "3", "4", "5"]);
    }

    #[tokio::test]
    async fn ids_from_the_source_are_sent_as_they_are() {
        let items = stream::iter(["a", "b"])
            .zip(futures_util::stream::iter(["s:7", "s:7.1", "s:8"]))
            .map(|(item, id)| (id, item));
        let body = body(BelugaJson, items).await;
        assert_eq!(ids(&body), ["s:7", "s:7.1", "s:8"]);
        assert!(body.contains(r#"{"type":"done"}"#), "{body}");
    }

    #[tokio::test]
    async fn a_multi_frame_item_sends_its_id_on_its_last_frame_and_the_end_has_none() {
        let items: Vec<(u64, EventResult<u32>)> =
            vec![(10, Ok(Event::data(1))), (11, Ok(Event::data(2)))];
        let body = body(Twice, futures_util::stream::iter(items)).await;
        // `1a`, `1b` (id 10), `2a`, `2b` (id 11), then the cut frame with no id.
        let frames: Vec<&str> = body.split("\n\n").filter(|f| !f.is_empty()).collect();
        assert_eq!(frames.len(), 5, "{body}");
        assert!(
            !frames[0].contains("id:") && frames[1].contains("id: 10"),
            "{body}"
        );
        assert!(
            !frames[2].contains("id:") && frames[3].contains("id: 11"),
            "{body}"
        );
        assert!(
            frames[4].contains("event: cut") && !frames[4].contains("id:"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn an_id_sse_cannot_carry_ends_the_stream_with_invalid_input() {
        for bad in ["a\nb", "a\rb", "a\0b"] {
            let items: Vec<(&str, EventResult<u32>)> = vec![
                ("ok", Ok(Event::data(1))),
                (bad, Ok(Event::data(2))),
                ("later", Ok(Event::data(3))),
            ];
            let body = body(BelugaJson, futures_util::stream::iter(items)).await;
            assert_eq!(ids(&body), ["ok"], "{body:?}");
            assert!(body.contains("event: error"), "{body:?}");
            assert!(body.contains(ErrorCode::InvalidInput.as_str()), "{body:?}");
            assert!(!body.contains("later") && !body.contains("\"payload\":2"));
        }
    }
}
