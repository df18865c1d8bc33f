//! [`ResponseBuilder`]: the one place where a chunk stream becomes a [`ChatResponse`].

use std::mem;

use beluga_core::{Error, Event, EventKind};

use crate::error::truncated;
use crate::schema::{AssistantMessage, ChatChunk, ChatResponse, FinishReason, ToolCall, Usage};
use crate::tool_calls::ToolCallAccumulator;

/// Assembles a [`ChatResponse`] from the events of one answer.
///
/// [`generate`](crate::ChatModelExt::generate) and
/// [`collect_response`](crate::ChatStreamExt::collect_response) feed it every event; it is
/// public for code that drives a stream itself (to forward the chunks and keep the answer).
/// It takes streams with tool-call pieces and streams whose calls were already assembled
/// ([`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls)) alike:
///
/// * text deltas are appended; the last finish reason counts; usage reports are
///   [merged](Usage::merge);
/// * tool-call pieces are assembled ([`ToolCallAccumulator`]), and `tool_call` events
///   add their call;
/// * an `error` event, or a call that cannot be assembled, is an error
///   ([`push`](ResponseBuilder::push) returns it);
/// * [`finish`](ResponseBuilder::finish) without a finish reason is a truncated answer
///   ([`crate::error::truncated`]), never a success.
///
/// `tool_result` and `handoff` events are not part of the assistant's message and are skipped.
///
/// ```
/// use beluga_core::Event;
/// use beluga_llm::schema::{ChatChunk, FinishReason, ToolCallDelta, Usage};
/// use beluga_llm::ResponseBuilder;
/// use serde_json::json;
///
/// let mut answer = ResponseBuilder::new();
/// for event in [
///     Event::data(ChatChunk::text("Let me ")),
///     Event::data(ChatChunk::text("check.")),
///     Event::data(ChatChunk::default()
///         .with_tool_call_delta(ToolCallDelta::start(0, "c1", "now").with_arguments("{}"))),
///     Event::data(ChatChunk::finished(FinishReason::ToolCalls).with_usage(Usage::new(20, 7))),
///     Event::done(),
/// ] {
///     answer.push(event).unwrap();
/// }
/// let response = answer.finish().unwrap();
/// assert_eq!(response.text(), "Let me check.");
/// assert_eq!(response.tool_calls()[0].arguments, json!({}));
/// assert_eq!(response.finish_reason, FinishReason::ToolCalls);
/// assert_eq!(response.usage, Some(Usage::new(20, 7)));
/// ```
#[derive(Debug, Default)]
pub struct ResponseBuilder {
    content: String,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    calls: ToolCallAccumulator,
}

impl ResponseBuilder {
    /// A builder with nothing received yet.
    ///
    /// ```
    /// use beluga_llm::ResponseBuilder;
    /// assert!(ResponseBuilder::new().finish_reason().is_none());
    /// ```
    pub fn new() -> Self {
        ResponseBuilder::default()
    }

    /// Takes one event of the answer. Returns the error of an `error` event, or of a tool call
    /// that cannot be assembled; the answer is then unusable.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode, Event};
    /// use beluga_llm::schema::ChatChunk;
    /// use beluga_llm::ResponseBuilder;
    ///
    /// let mut answer = ResponseBuilder::new();
    /// answer.push(Event::data(ChatChunk::text("Hi"))).unwrap();
    /// let flagged = Event::error(Error::new(ErrorCode::GuardBlocked, "flagged"));
    /// assert_eq!(answer.push(flagged).unwrap_err().code(), ErrorCode::GuardBlocked);
    /// ```
    pub fn push(&mut self, event: Event<ChatChunk>) -> Result<(), Error> {
        match event.into_kind() {
            EventKind::Data(chunk) | EventKind::ToolCall(chunk) | EventKind::Done(Some(chunk)) => {
                self.push_chunk(chunk)
            }
            EventKind::Error(err) => Err(err),
            EventKind::ToolResult(_) | EventKind::Handoff(_) | EventKind::Done(None) => Ok(()),
        }
    }

    /// Takes one chunk of the answer (what [`push`](ResponseBuilder::push) does with the
    /// chunk of a `data` or `tool_call` event).
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// use beluga_llm::ResponseBuilder;
    ///
    /// let mut answer = ResponseBuilder::new();
    /// answer.push_chunk(ChatChunk::text("Hi").with_finish_reason(FinishReason::Stop)).unwrap();
    /// assert_eq!(answer.finish().unwrap().text(), "Hi");
    /// ```
    pub fn push_chunk(&mut self, mut chunk: ChatChunk) -> Result<(), Error> {
        if self.content.is_empty() {
            mem::swap(&mut self.content, &mut chunk.delta);
        } else {
            self.content.push_str(&chunk.delta);
        }
        self.calls.push(&mut chunk);
        self.take_completed()?;
        if let Some(call) = chunk.tool_call {
            self.tool_calls.push(call);
        }
        if let Some(reason) = chunk.finish_reason {
            self.finish_reason = Some(reason);
        }
        if let Some(usage) = chunk.usage {
            self.usage.get_or_insert_default().merge(&usage);
        }
        Ok(())
    }

    /// The finish reason received so far.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// use beluga_llm::ResponseBuilder;
    /// let mut answer = ResponseBuilder::new();
    /// answer.push_chunk(ChatChunk::finished(FinishReason::Length)).unwrap();
    /// assert_eq!(answer.finish_reason(), Some(&FinishReason::Length));
    /// ```
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish_reason.as_ref()
    }

    /// The usage received so far, reports merged.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, Usage};
    /// use beluga_llm::ResponseBuilder;
    /// let mut answer = ResponseBuilder::new();
    /// answer.push_chunk(ChatChunk::default().with_usage(Usage::new(10, 0))).unwrap();
    /// answer.push_chunk(ChatChunk::default().with_usage(Usage::new(0, 4))).unwrap();
    /// assert_eq!(answer.usage(), Some(&Usage::new(10, 4)));
    /// ```
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The assembled response: every call still in progress is completed first. Without a
    /// finish reason the answer is truncated, and this is the
    /// [`truncated`](crate::error::truncated) error.
    ///
    /// ```
    /// use beluga_llm::error::is_truncated;
    /// use beluga_llm::schema::ChatChunk;
    /// use beluga_llm::ResponseBuilder;
    ///
    /// let mut answer = ResponseBuilder::new();
    /// answer.push_chunk(ChatChunk::text("The answer is")).unwrap();
    /// assert!(is_truncated(&answer.finish().unwrap_err()));
    /// ```
    pub fn finish(mut self) -> Result<ChatResponse, Error> {
        self.calls.finish();
        self.take_completed()?;
        let Some(finish_reason) = self.finish_reason else {
            return Err(truncated("llm.generate"));
        };
        Ok(ChatResponse {
            message: AssistantMessage {
                content: self.content,
                tool_calls: self.tool_calls,
            },
            finish_reason,
            usage: self.usage,
        })
    }

    fn take_completed(&mut self) -> Result<(), Error> {
        while let Some(call) = self.calls.pop_completed() {
            self.tool_calls.push(call?);
        }
        Ok(())
    }
}
