//! Tool-call accumulation: from the [`ToolCallDelta`]s of a chunk stream to one complete
//! [`ToolCall`] per call.
//!
//! Providers stream a call in pieces: its id and tool name first, then the arguments' JSON text
//! in fragments, with an index that tells parallel calls apart. [`ToolCallAccumulator`] joins
//! the pieces; [`AccumulateToolCalls`] (made by
//! [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls)) applies it to a
//! stream and emits each completed call as a `tool_call` event.
//!
//! A call is complete when
//!
//! * a chunk carries a finish reason: every call in progress is complete, in the order the
//!   calls started;
//! * a piece arrives at its index with another id: the call at that index is complete and a
//!   new one starts there (gateways that reuse index 0 for every call);
//! * the stream ends (`done`, or its end without one): every call in progress is complete.
//!
//! A completed call's arguments are parsed as JSON (empty arguments are `{}`). Arguments that
//! do not parse, or a call without a tool name, are an `invalid_input` [`Error`] naming the
//! tool and the call id (see [`crate::error`]).

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use beluga_core::{Error, Event, EventKind, EventResult};
use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;
use serde_json::Value;

use crate::error::{invalid_arguments, missing_name};
use crate::schema::{ChatChunk, ToolCall, ToolCallDelta};

/// Assembles tool calls from their streamed pieces, for any source of [`ChatChunk`]s.
///
/// Feed it every chunk with [`push`](ToolCallAccumulator::push) (or single pieces with
/// [`push_delta`](ToolCallAccumulator::push_delta)), call
/// [`finish`](ToolCallAccumulator::finish) when the stream ends, and take the completed calls
/// with [`pop_completed`](ToolCallAccumulator::pop_completed). The [module docs](self) say
/// when a call is complete. After its first calls it allocates only to grow the arguments it
/// holds.
///
/// ```
/// use beluga_llm::schema::{ChatChunk, FinishReason, ToolCallDelta};
/// use beluga_llm::ToolCallAccumulator;
/// use serde_json::json;
///
/// let mut calls = ToolCallAccumulator::new();
/// let mut chunks = [
///     ChatChunk::default().with_tool_call_delta(ToolCallDelta::start(0, "c1", "get_weather")),
///     ChatChunk::default().with_tool_call_delta(ToolCallDelta::arguments(0, r#"{"city""#)),
///     ChatChunk::default().with_tool_call_delta(ToolCallDelta::arguments(0, r#":"Oslo"}"#)),
///     ChatChunk::finished(FinishReason::ToolCalls),
/// ];
/// for chunk in &mut chunks {
///     calls.push(chunk);
///     assert!(chunk.tool_call_deltas.is_empty()); // the pieces were taken
/// }
/// let call = calls.pop_completed().unwrap().unwrap();
/// assert_eq!((call.id.as_str(), call.name.as_str()), ("c1", "get_weather"));
/// assert_eq!(call.arguments, json!({"city": "Oslo"}));
/// assert!(calls.pop_completed().is_none());
/// ```
#[derive(Default)]
pub struct ToolCallAccumulator {
    /// Calls in progress, in the order they started; at most one per index.
    pending: Vec<Pending>,
    completed: VecDeque<Result<ToolCall, Error>>,
}

/// A call in progress.
struct Pending {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

impl ToolCallAccumulator {
    /// An accumulator with no call in progress.
    ///
    /// ```
    /// use beluga_llm::ToolCallAccumulator;
    /// assert!(!ToolCallAccumulator::new().has_pending());
    /// ```
    pub fn new() -> Self {
        ToolCallAccumulator::default()
    }

    /// Takes the chunk's tool-call pieces (leaving its
    /// [`tool_call_deltas`](ChatChunk::tool_call_deltas) empty) and applies them in order; if
    /// the chunk carries a finish reason, every call in progress is then complete.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, ToolCallDelta};
    /// use beluga_llm::ToolCallAccumulator;
    ///
    /// let mut calls = ToolCallAccumulator::new();
    /// let mut chunk = ChatChunk::text("Checking.").with_tool_call_delta(ToolCallDelta::start(0, "c1", "now"));
    /// calls.push(&mut chunk);
    /// assert_eq!(chunk, ChatChunk::text("Checking."));
    /// assert!(calls.has_pending());
    /// ```
    pub fn push(&mut self, chunk: &mut ChatChunk) {
        if !chunk.tool_call_deltas.is_empty() {
            for delta in mem::take(&mut chunk.tool_call_deltas) {
                self.push_delta(delta);
            }
        }
        if chunk.finish_reason.is_some() {
            self.finish();
        }
    }

    /// Applies one piece: it continues the call at its index, or starts a new one there (if
    /// the index holds none, or holds a call with another id, which is then complete).
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    ///
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(0, "c1", "now").with_arguments("{}"));
    /// calls.push_delta(ToolCallDelta::start(0, "c2", "today")); // index 0 again, a new id
    /// assert_eq!(calls.pop_completed().unwrap().unwrap().id, "c1");
    /// calls.finish();
    /// assert_eq!(calls.pop_completed().unwrap().unwrap().name, "today");
    /// ```
    pub fn push_delta(&mut self, delta: ToolCallDelta) {
        let ToolCallDelta {
            index,
            id,
            name,
            arguments,
        } = delta;
        let id = id.filter(|id| !id.is_empty());
        let mut slot = self.pending.iter().position(|call| call.index == index);
        if let (Some(at), Some(id)) = (slot, &id) {
            let current = &self.pending[at].id;
            if !current.is_empty() && current != id {
                let call = self.pending.remove(at);
                self.completed.push_back(call.complete());
                slot = None;
            }
        }
        match slot {
            Some(at) => {
                let call = &mut self.pending[at];
                if let Some(id) = id {
                    if call.id.is_empty() {
                        call.id = id;
                    }
                }
                if let Some(name) = name.filter(|name| !name.is_empty()) {
                    if call.name.is_empty() {
                        call.name = name;
                    } else if call.name != name {
                        call.name.push_str(&name);
                    }
                }
                call.arguments.push_str(&arguments);
            }
            None => self.pending.push(Pending {
                index,
                id: id.unwrap_or_default(),
                name: name.unwrap_or_default(),
                arguments,
            }),
        }
    }

    /// Completes every call in progress, in the order they started: the stream ended or
    /// finished.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    ///
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(3, "c1", "now"));
    /// calls.finish();
    /// assert!(!calls.has_pending());
    /// assert!(calls.pop_completed().unwrap().is_ok());
    /// ```
    pub fn finish(&mut self) {
        self.completed
            .extend(self.pending.drain(..).map(Pending::complete));
    }

    /// The next completed call, oldest first: the call with its parsed arguments, or the
    /// `invalid_input` error of a call that cannot be used.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    ///
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(0, "c1", "add").with_arguments(r#"{"a": 1,"#));
    /// calls.finish();
    /// let err = calls.pop_completed().unwrap().unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidInput);
    /// assert!(err.message().contains("`add` (id `c1`)"));
    /// ```
    pub fn pop_completed(&mut self) -> Option<Result<ToolCall, Error>> {
        self.completed.pop_front()
    }

    /// The calls in progress, in the order they started, with what has arrived of them: a
    /// snapshot for a consumer that shows calls as they stream (their arguments are usually
    /// incomplete JSON until the call completes).
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    ///
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(0, "c1", "get_weather").with_arguments(r#"{"ci"#));
    /// let partial: Vec<_> = calls.in_progress().collect();
    /// assert_eq!(partial[0].name, "get_weather");
    /// assert_eq!(partial[0].arguments, r#"{"ci"#);
    /// ```
    pub fn in_progress(&self) -> impl ExactSizeIterator<Item = PartialToolCall<'_>> {
        self.pending.iter().map(|call| PartialToolCall {
            index: call.index,
            id: &call.id,
            name: &call.name,
            arguments: &call.arguments,
        })
    }

    /// Whether a call is in progress (started and not yet complete).
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(0, "c1", "now"));
    /// assert!(calls.has_pending());
    /// ```
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forgets every call in progress and every completed call not yet taken: the stream
    /// failed.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// use beluga_llm::ToolCallAccumulator;
    /// let mut calls = ToolCallAccumulator::new();
    /// calls.push_delta(ToolCallDelta::start(0, "c1", "now"));
    /// calls.clear();
    /// calls.finish();
    /// assert!(calls.pop_completed().is_none());
    /// ```
    pub fn clear(&mut self) {
        self.pending.clear();
        self.completed.clear();
    }
}

/// A call in progress, as [`ToolCallAccumulator::in_progress`] shows it.
///
/// ```
/// use beluga_llm::schema::ToolCallDelta;
/// use beluga_llm::ToolCallAccumulator;
/// let mut calls = ToolCallAccumulator::new();
/// calls.push_delta(ToolCallDelta::start(2, "c1", "now"));
/// let call = calls.in_progress().next().unwrap();
/// assert_eq!((call.index, call.id, call.arguments), (2, "c1", ""));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialToolCall<'a> {
    /// The index its pieces carry.
    pub index: u32,
    /// Its id; empty until a piece carries one.
    pub id: &'a str,
    /// The tool's name so far; empty until a piece carries one.
    pub name: &'a str,
    /// The arguments' JSON text so far.
    pub arguments: &'a str,
}

impl Pending {
    fn complete(self) -> Result<ToolCall, Error> {
        if self.name.is_empty() {
            return Err(missing_name(self.index, &self.id));
        }
        let arguments = if self.arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&self.arguments)
                .map_err(|err| invalid_arguments(&self.name, &self.id, &self.arguments, &err))?
        };
        Ok(ToolCall {
            id: self.id,
            name: self.name,
            arguments,
        })
    }
}

impl fmt::Debug for ToolCallAccumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCallAccumulator")
            .field("pending", &self.pending.len())
            .field("completed", &self.completed.len())
            .finish()
    }
}

pin_project! {
    /// Stream for the [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls)
    /// method.
    #[must_use = "streams do nothing unless polled"]
    pub struct AccumulateToolCalls<S> {
        #[pin]
        stream: S,
        calls: ToolCallAccumulator,
        // The source's `done`, held back until the calls it completed are out.
        done: Option<Event<ChatChunk>>,
        // The source has ended (with `done`, `Err`, or its end).
        finished: bool,
    }
}

impl<S> AccumulateToolCalls<S> {
    pub(crate) fn new(stream: S) -> Self {
        AccumulateToolCalls {
            stream,
            calls: ToolCallAccumulator::new(),
            done: None,
            finished: false,
        }
    }

    /// The accumulator: [`in_progress`](ToolCallAccumulator::in_progress) shows the calls
    /// still streaming, for a consumer that displays them as they come.
    ///
    /// ```
    /// use beluga_core::Event;
    /// use beluga_llm::schema::{ChatChunk, ToolCallDelta};
    /// use beluga_llm::ChatStreamExt;
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let chunks = futures_util::stream::iter([
    ///     Ok(Event::data(ChatChunk::text("Checking.")
    ///         .with_tool_call_delta(ToolCallDelta::start(0, "c1", "get_weather")))),
    /// ]);
    /// let mut stream = std::pin::pin!(chunks.accumulate_tool_calls());
    /// stream.next().await; // the text chunk
    /// let calling: Vec<&str> = stream.calls().in_progress().map(|call| call.name).collect();
    /// assert_eq!(calling, ["get_weather"]);
    /// # }
    /// ```
    pub fn calls(&self) -> &ToolCallAccumulator {
        &self.calls
    }

    /// The source stream.
    ///
    /// ```
    /// use beluga_core::stream;
    /// use beluga_llm::{schema::ChatChunk, ChatStreamExt};
    /// let calls = stream::iter([ChatChunk::text("hi")]).accumulate_tool_calls();
    /// let _source = calls.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The source stream, mutably; taking items from it skips the accumulator.
    ///
    /// ```
    /// use beluga_core::stream;
    /// use beluga_llm::{schema::ChatChunk, ChatStreamExt};
    /// let mut calls = stream::iter([ChatChunk::text("hi")]).accumulate_tool_calls();
    /// let _source = calls.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The source stream, pinned.
    ///
    /// ```
    /// use beluga_core::stream;
    /// use beluga_llm::{schema::ChatChunk, ChatStreamExt};
    /// let mut calls = std::pin::pin!(stream::iter([ChatChunk::text("hi")]).accumulate_tool_calls());
    /// let _source = calls.as_mut().get_pin_mut();
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// The source stream; calls in progress are dropped.
    ///
    /// ```
    /// use beluga_core::stream;
    /// use beluga_llm::{schema::ChatChunk, ChatStreamExt};
    /// let source = stream::iter([ChatChunk::text("hi")]).accumulate_tool_calls().into_inner();
    /// # drop(source);
    /// ```
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S> Stream for AccumulateToolCalls<S>
where
    S: Stream<Item = EventResult<ChatChunk>>,
{
    type Item = EventResult<ChatChunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(completed) = this.calls.pop_completed() {
                let event = match completed {
                    Ok(call) => Event::tool_call(ChatChunk::from_tool_call(call)),
                    Err(err) => Event::error(err),
                };
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(done) = this.done.take() {
                return Poll::Ready(Some(Ok(done)));
            }
            if *this.finished {
                return Poll::Ready(None);
            }
            let Some(item) = ready!(this.stream.as_mut().poll_next(cx)) else {
                *this.finished = true;
                this.calls.finish();
                continue;
            };
            let mut event = match item {
                Ok(event) => event,
                Err(err) => {
                    *this.finished = true;
                    this.calls.clear();
                    return Poll::Ready(Some(Err(err)));
                }
            };
            match event.kind_mut() {
                EventKind::Data(chunk) => {
                    if chunk.tool_call_deltas.is_empty() && chunk.finish_reason.is_none() {
                        return Poll::Ready(Some(Ok(event)));
                    }
                    this.calls.push(chunk);
                    // A chunk that only carried pieces has nothing left to say.
                    if !chunk.is_empty() {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
                EventKind::Done(_) => {
                    *this.finished = true;
                    this.calls.finish();
                    *this.done = Some(event);
                }
                _ => return Poll::Ready(Some(Ok(event))),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished {
            let queued = self.calls.completed.len() + usize::from(self.done.is_some());
            (queued, Some(queued))
        } else {
            // Chunks that only carry pieces are dropped, and calls are added: no bound.
            (0, None)
        }
    }
}

impl<S> FusedStream for AccumulateToolCalls<S>
where
    S: Stream<Item = EventResult<ChatChunk>>,
{
    fn is_terminated(&self) -> bool {
        self.finished && self.done.is_none() && self.calls.completed.is_empty()
    }
}

impl<S: fmt::Debug> fmt::Debug for AccumulateToolCalls<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccumulateToolCalls")
            .field("stream", &self.stream)
            .field("calls", &self.calls)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
