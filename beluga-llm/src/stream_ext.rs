//! [`ChatStreamExt`]: methods for every stream of chat chunks.

use std::future::Future;
use std::pin::pin;

use beluga_core::{Error, EventResult};
use futures_core::Stream;
use futures_util::StreamExt;

use crate::response::ResponseBuilder;
use crate::schema::{ChatChunk, ChatResponse};
use crate::tool_calls::AccumulateToolCalls;

/// Methods for every stream of [`ChatChunk`] events (a [`ChatModel`](crate::ChatModel)'s,
/// or one read back from elsewhere).
///
/// The names do not clash with `futures::StreamExt` or beluga's `EventStreamExt`, so all
/// three can be in scope.
pub trait ChatStreamExt: Stream<Item = EventResult<ChatChunk>> {
    /// Assembles tool calls: each completed call comes out as a `tool_call` event whose chunk
    /// holds it in [`tool_call`](ChatChunk::tool_call), right after the chunk that completed
    /// it (the one with the finish reason, or with a new id at a call's index), and before
    /// `done`. A call that cannot be assembled (invalid JSON arguments, no tool name) is an
    /// `error` event naming the tool and the call id, and the stream goes on.
    ///
    /// The pieces are taken out of the `data` chunks, and a chunk left with nothing else is
    /// dropped, so a stream that is already assembled passes through unchanged: applying the
    /// adapter twice is the same as once. The other events pass through as they are; after a
    /// terminal `Err`, calls in progress are dropped. See [`crate::tool_calls`] for when a call
    /// is complete.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind, EventStreamExt};
    /// use beluga_llm::schema::{ChatChunk, FinishReason, ToolCallDelta};
    /// use beluga_llm::ChatStreamExt;
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let chunks = futures_util::stream::iter([
    ///     Ok(Event::data(ChatChunk::text("Checking.")
    ///         .with_tool_call_delta(ToolCallDelta::start(0, "c1", "get_weather")))),
    ///     Ok(Event::data(ChatChunk::default()
    ///         .with_tool_call_delta(ToolCallDelta::arguments(0, r#"{"city":"Oslo"}"#)))),
    ///     Ok(Event::data(ChatChunk::finished(FinishReason::ToolCalls))),
    ///     Ok(Event::done()),
    /// ]);
    /// let events = chunks.accumulate_tool_calls().collect_events().await.events;
    /// let kinds: Vec<_> = events.iter().map(|e| e.event_type().as_str()).collect();
    /// assert_eq!(kinds, ["data", "data", "tool_call", "done"]);
    /// let EventKind::ToolCall(chunk) = events[2].kind() else { unreachable!() };
    /// let call = chunk.tool_call.as_ref().unwrap();
    /// assert_eq!((call.name.as_str(), &call.arguments), ("get_weather", &json!({"city": "Oslo"})));
    /// # }
    /// ```
    fn accumulate_tool_calls(self) -> AccumulateToolCalls<Self>
    where
        Self: Sized,
    {
        AccumulateToolCalls::new(self)
    }

    /// Drives the stream to its end and assembles the answer, as
    /// [`generate`](crate::ChatModelExt::generate) does (with a [`ResponseBuilder`]): it stops
    /// at `done` (dropping the stream), and returns the first error, terminal or reported
    /// (an `error` event, a tool call that cannot be assembled), or a
    /// [`truncated`](crate::error::truncated) error when no finish reason came.
    ///
    /// ```
    /// use beluga_core::Event;
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// use beluga_llm::ChatStreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let chunks = futures_util::stream::iter([
    ///     Ok(Event::data(ChatChunk::text("Hel"))),
    ///     Ok(Event::data(ChatChunk::text("lo").with_finish_reason(FinishReason::Stop))),
    ///     Ok(Event::done()),
    /// ]);
    /// let response = chunks.collect_response().await.unwrap();
    /// assert_eq!(response.text(), "Hello");
    /// # }
    /// ```
    fn collect_response(self) -> impl Future<Output = Result<ChatResponse, Error>> + Send
    where
        Self: Sized + Send,
    {
        async move {
            let mut stream = pin!(self);
            let mut answer = ResponseBuilder::new();
            while let Some(item) = stream.next().await {
                let event = item?;
                let done = event.is_done();
                answer.push(event)?;
                if done {
                    break;
                }
            }
            answer.finish()
        }
    }
}

impl<S: Stream<Item = EventResult<ChatChunk>> + ?Sized> ChatStreamExt for S {}
