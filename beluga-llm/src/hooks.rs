//! Hooks on a chat model's stream path: [`ChatHooks`] (start, chunk, tool call, tool result,
//! done, error), the closure form [`Hooks`], and [`WithHooks`], the wrapper any
//! [`ChatModel`](crate::ChatModel) takes with [`with_hooks`](crate::ChatModelExt::with_hooks).
//!
//! The hooks run on the consumer's task, as the stream is polled, in the order the events come
//! out; [`generate`](crate::ChatModelExt::generate) drives the same stream, so it runs through
//! them too. For one call:
//!
//! 1. [`on_start`](ChatHooks::on_start) on the first poll, before the model is called; an
//!    error it returns ends the stream (and goes to `on_error`) without calling the model;
//! 2. [`on_tool_result`](ChatHooks::on_tool_result) for each result the request delivers (the
//!    `tool` messages after its last other message), in order;
//! 3. then, as the events come: [`on_chunk`](ChatHooks::on_chunk) for each `data` chunk,
//!    [`on_tool_call`](ChatHooks::on_tool_call) for each completed call (the stream is
//!    [assembled](crate::ChatStreamExt::accumulate_tool_calls)),
//!    [`on_tool_result`](ChatHooks::on_tool_result) for each `tool_result` event, and
//!    [`on_error`](ChatHooks::on_error) for each `error` event;
//! 4. at the end, exactly one of [`on_done`](ChatHooks::on_done) (with the finish reason and
//!    the usage) or [`on_error`](ChatHooks::on_error) (the terminal error, or the
//!    [`truncated`] error when the stream ended without a finish
//!    reason; the stream then ends with that error instead of `done`).
//!
//! Dropping the stream before its end calls no further hook.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use beluga_core::{Context, Error, EventKind, EventResult, Runnable};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::error::truncated;
use crate::schema::{ChatChunk, ChatRequest, FinishReason, Message, ToolCall, ToolResult, Usage};
use crate::stream_ext::ChatStreamExt;
use crate::tool_calls::AccumulateToolCalls;

/// Callbacks on a chat model's stream path. Every method has a default that does nothing:
/// implement the ones you need. See the [module docs](self) for when each runs.
///
/// The hooks take `&self` and run on the consumer's task: keep them quick, and use interior
/// mutability (atomics, a mutex) for state. The [`Context`] is the call's, for its request id
/// and values.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use beluga_core::Context;
/// use beluga_llm::hooks::{ChatHooks, DoneInfo};
/// use beluga_llm::schema::{ChatRequest, Message, Usage};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::ChatModelExt;
///
/// /// Counts the tokens of every call.
/// #[derive(Default)]
/// struct TokenMeter {
///     tokens: AtomicU64,
/// }
///
/// impl ChatHooks for TokenMeter {
///     fn on_done(&self, _ctx: &Context, info: &DoneInfo) {
///         let used = info.usage.map_or(0, |u| u.total_tokens());
///         self.tokens.fetch_add(used, Ordering::Relaxed);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new([Turn::text("Hi!").with_usage(Usage::new(12, 2))])
///     .with_hooks(TokenMeter::default());
/// model.generate(Context::new(), ChatRequest::new("", vec![Message::user("hi")])).await.unwrap();
/// assert_eq!(model.hooks().tokens.load(Ordering::Relaxed), 14);
/// # }
/// ```
pub trait ChatHooks: Send + Sync {
    /// The call starts (first poll), before the model is called. An error ends the stream
    /// with it: the model is not called.
    ///
    /// ```
    /// use beluga_core::{Context, Error, ErrorCode};
    /// use beluga_llm::hooks::ChatHooks;
    /// use beluga_llm::schema::ChatRequest;
    ///
    /// /// Refuses requests without a model name.
    /// struct NeedsModel;
    /// impl ChatHooks for NeedsModel {
    ///     fn on_start(&self, _ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
    ///         if request.model.is_empty() {
    ///             return Err(Error::new(ErrorCode::InvalidInput, "no model named"));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// assert!(NeedsModel.on_start(&Context::new(), &ChatRequest::default()).is_err());
    /// ```
    fn on_start(&self, ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
        let _ = (ctx, request);
        Ok(())
    }

    /// A `data` chunk comes out (with its tool-call pieces already taken out).
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::hooks::ChatHooks;
    /// use beluga_llm::schema::ChatChunk;
    /// struct Print;
    /// impl ChatHooks for Print {
    ///     fn on_chunk(&self, _ctx: &Context, chunk: &ChatChunk) {
    ///         print!("{}", chunk.delta);
    ///     }
    /// }
    /// Print.on_chunk(&Context::new(), &ChatChunk::text("hi"));
    /// ```
    fn on_chunk(&self, ctx: &Context, chunk: &ChatChunk) {
        let _ = (ctx, chunk);
    }

    /// A tool call is complete.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::hooks::ChatHooks;
    /// use beluga_llm::schema::ToolCall;
    /// struct Audit;
    /// impl ChatHooks for Audit {
    ///     fn on_tool_call(&self, _ctx: &Context, call: &ToolCall) {
    ///         eprintln!("model calls {} with {}", call.name, call.arguments);
    ///     }
    /// }
    /// Audit.on_tool_call(&Context::new(), &ToolCall::new("c1", "now", serde_json::json!({})));
    /// ```
    fn on_tool_call(&self, ctx: &Context, call: &ToolCall) {
        let _ = (ctx, call);
    }

    /// A tool result goes to the model (a `tool` message the request delivers), or comes out
    /// as a `tool_result` event.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::hooks::ChatHooks;
    /// use beluga_llm::schema::ToolResult;
    /// struct Audit;
    /// impl ChatHooks for Audit {
    ///     fn on_tool_result(&self, _ctx: &Context, result: &ToolResult) {
    ///         eprintln!("call {} returned {}", result.call_id, result.content);
    ///     }
    /// }
    /// Audit.on_tool_result(&Context::new(), &ToolResult::new("c1", "12:00"));
    /// ```
    fn on_tool_result(&self, ctx: &Context, result: &ToolResult) {
        let _ = (ctx, result);
    }

    /// The call finished: the stream ended with `done` after a finish reason.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::hooks::{ChatHooks, DoneInfo};
    /// struct Log;
    /// impl ChatHooks for Log {
    ///     fn on_done(&self, _ctx: &Context, info: &DoneInfo) {
    ///         eprintln!("finished: {} ({:?})", info.finish_reason, info.usage);
    ///     }
    /// }
    /// ```
    fn on_done(&self, ctx: &Context, info: &DoneInfo) {
        let _ = (ctx, info);
    }

    /// An error: an `error` event (the stream goes on), or the error the stream ends with
    /// (the provider's, a cancellation, a truncated answer, `on_start`'s).
    ///
    /// ```
    /// use beluga_core::{Context, Error};
    /// use beluga_llm::hooks::ChatHooks;
    /// struct Log;
    /// impl ChatHooks for Log {
    ///     fn on_error(&self, _ctx: &Context, error: &Error) {
    ///         eprintln!("model failed: {error:#}");
    ///     }
    /// }
    /// Log.on_error(&Context::new(), &Error::cancelled());
    /// ```
    fn on_error(&self, ctx: &Context, error: &Error) {
        let _ = (ctx, error);
    }
}

/// What [`on_done`](ChatHooks::on_done) learns about a finished call.
///
/// ```
/// use beluga_llm::hooks::DoneInfo;
/// use beluga_llm::schema::FinishReason;
/// fn stopped_early(info: &DoneInfo) -> bool {
///     info.finish_reason == FinishReason::Length
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DoneInfo {
    /// Why the model stopped (the last finish reason of the stream).
    pub finish_reason: FinishReason,
    /// The token counts, reports merged, when the provider sent them.
    pub usage: Option<Usage>,
}

impl<H: ChatHooks + ?Sized> ChatHooks for Arc<H> {
    fn on_start(&self, ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
        (**self).on_start(ctx, request)
    }
    fn on_chunk(&self, ctx: &Context, chunk: &ChatChunk) {
        (**self).on_chunk(ctx, chunk);
    }
    fn on_tool_call(&self, ctx: &Context, call: &ToolCall) {
        (**self).on_tool_call(ctx, call);
    }
    fn on_tool_result(&self, ctx: &Context, result: &ToolResult) {
        (**self).on_tool_result(ctx, result);
    }
    fn on_done(&self, ctx: &Context, info: &DoneInfo) {
        (**self).on_done(ctx, info);
    }
    fn on_error(&self, ctx: &Context, error: &Error) {
        (**self).on_error(ctx, error);
    }
}

/// Two sets of hooks, the first before the second; `on_start` stops at the first error.
impl<A: ChatHooks, B: ChatHooks> ChatHooks for (A, B) {
    fn on_start(&self, ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
        self.0.on_start(ctx, request)?;
        self.1.on_start(ctx, request)
    }
    fn on_chunk(&self, ctx: &Context, chunk: &ChatChunk) {
        self.0.on_chunk(ctx, chunk);
        self.1.on_chunk(ctx, chunk);
    }
    fn on_tool_call(&self, ctx: &Context, call: &ToolCall) {
        self.0.on_tool_call(ctx, call);
        self.1.on_tool_call(ctx, call);
    }
    fn on_tool_result(&self, ctx: &Context, result: &ToolResult) {
        self.0.on_tool_result(ctx, result);
        self.1.on_tool_result(ctx, result);
    }
    fn on_done(&self, ctx: &Context, info: &DoneInfo) {
        self.0.on_done(ctx, info);
        self.1.on_done(ctx, info);
    }
    fn on_error(&self, ctx: &Context, error: &Error) {
        self.0.on_error(ctx, error);
        self.1.on_error(ctx, error);
    }
}

type StartFn = Box<dyn Fn(&Context, &ChatRequest) -> Result<(), Error> + Send + Sync>;
type ChunkFn = Box<dyn Fn(&Context, &ChatChunk) + Send + Sync>;
type ToolCallFn = Box<dyn Fn(&Context, &ToolCall) + Send + Sync>;
type ToolResultFn = Box<dyn Fn(&Context, &ToolResult) + Send + Sync>;
type DoneFn = Box<dyn Fn(&Context, &DoneInfo) + Send + Sync>;
type ErrorFn = Box<dyn Fn(&Context, &Error) + Send + Sync>;

/// [`ChatHooks`] from closures: set the ones you need, the others do nothing. Setting one
/// again replaces it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use beluga_core::Context;
/// use beluga_llm::schema::{ChatRequest, Message};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::{ChatModelExt, Hooks};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let (a, b, c) = (Arc::clone(&log), Arc::clone(&log), Arc::clone(&log));
/// let hooks = Hooks::new()
///     .on_start(move |_ctx, _request| {
///         a.lock().unwrap().push("start".to_owned());
///         Ok(())
///     })
///     .on_tool_call(move |_ctx, call| b.lock().unwrap().push(format!("call {}", call.name)))
///     .on_done(move |_ctx, info| c.lock().unwrap().push(format!("done {}", info.finish_reason)));
///
/// let model = ScriptedModel::new([Turn::new().with_tool_call("c1", "now", json!({}))]).with_hooks(hooks);
/// model.generate(Context::new(), ChatRequest::new("", vec![Message::user("time?")])).await.unwrap();
/// assert_eq!(*log.lock().unwrap(), ["start", "call now", "done tool_calls"]);
/// # }
/// ```
#[derive(Default)]
pub struct Hooks {
    start: Option<StartFn>,
    chunk: Option<ChunkFn>,
    tool_call: Option<ToolCallFn>,
    tool_result: Option<ToolResultFn>,
    done: Option<DoneFn>,
    error: Option<ErrorFn>,
}

impl Hooks {
    /// Hooks that do nothing yet.
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new();
    /// # drop(hooks);
    /// ```
    pub fn new() -> Self {
        Hooks::default()
    }

    /// Runs `f` as [`ChatHooks::on_start`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_start(|ctx, _request| {
    ///     eprintln!("call {:?} starts", ctx.request_id());
    ///     Ok(())
    /// });
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_start(
        mut self,
        f: impl Fn(&Context, &ChatRequest) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.start = Some(Box::new(f));
        self
    }

    /// Runs `f` as [`ChatHooks::on_chunk`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_chunk(|_ctx, chunk| print!("{}", chunk.delta));
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_chunk(mut self, f: impl Fn(&Context, &ChatChunk) + Send + Sync + 'static) -> Self {
        self.chunk = Some(Box::new(f));
        self
    }

    /// Runs `f` as [`ChatHooks::on_tool_call`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_tool_call(|_ctx, call| eprintln!("calls {}", call.name));
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_tool_call(mut self, f: impl Fn(&Context, &ToolCall) + Send + Sync + 'static) -> Self {
        self.tool_call = Some(Box::new(f));
        self
    }

    /// Runs `f` as [`ChatHooks::on_tool_result`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_tool_result(|_ctx, result| eprintln!("{}", result.content));
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_tool_result(
        mut self,
        f: impl Fn(&Context, &ToolResult) + Send + Sync + 'static,
    ) -> Self {
        self.tool_result = Some(Box::new(f));
        self
    }

    /// Runs `f` as [`ChatHooks::on_done`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_done(|_ctx, info| eprintln!("finished: {}", info.finish_reason));
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_done(mut self, f: impl Fn(&Context, &DoneInfo) + Send + Sync + 'static) -> Self {
        self.done = Some(Box::new(f));
        self
    }

    /// Runs `f` as [`ChatHooks::on_error`].
    ///
    /// ```
    /// use beluga_llm::Hooks;
    /// let hooks = Hooks::new().on_error(|_ctx, err| eprintln!("{err:#}"));
    /// # drop(hooks);
    /// ```
    #[must_use]
    pub fn on_error(mut self, f: impl Fn(&Context, &Error) + Send + Sync + 'static) -> Self {
        self.error = Some(Box::new(f));
        self
    }
}

impl ChatHooks for Hooks {
    fn on_start(&self, ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
        self.start.as_ref().map_or(Ok(()), |f| f(ctx, request))
    }
    fn on_chunk(&self, ctx: &Context, chunk: &ChatChunk) {
        if let Some(f) = &self.chunk {
            f(ctx, chunk);
        }
    }
    fn on_tool_call(&self, ctx: &Context, call: &ToolCall) {
        if let Some(f) = &self.tool_call {
            f(ctx, call);
        }
    }
    fn on_tool_result(&self, ctx: &Context, result: &ToolResult) {
        if let Some(f) = &self.tool_result {
            f(ctx, result);
        }
    }
    fn on_done(&self, ctx: &Context, info: &DoneInfo) {
        if let Some(f) = &self.done {
            f(ctx, info);
        }
    }
    fn on_error(&self, ctx: &Context, error: &Error) {
        if let Some(f) = &self.error {
            f(ctx, error);
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_list();
        for (name, is_set) in [
            ("on_start", self.start.is_some()),
            ("on_chunk", self.chunk.is_some()),
            ("on_tool_call", self.tool_call.is_some()),
            ("on_tool_result", self.tool_result.is_some()),
            ("on_done", self.done.is_some()),
            ("on_error", self.error.is_some()),
        ] {
            if is_set {
                set.entry(&name);
            }
        }
        set.finish()
    }
}

/// A [`ChatModel`](crate::ChatModel) with [`ChatHooks`] on its stream path, made by
/// [`with_hooks`](crate::ChatModelExt::with_hooks). It is a `ChatModel` itself: its stream is
/// the model's, with tool calls [assembled](crate::ChatStreamExt::accumulate_tool_calls) and
/// the hooks run as the events come out (see the [module docs](self)), and a stream that ends
/// without a finish reason ends with the [`truncated`] error instead
/// of `done`.
///
/// ```
/// use beluga_core::{Context, EventStreamExt, Runnable};
/// use beluga_llm::schema::{ChatRequest, Message};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::{ChatModelExt, Hooks};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new([Turn::text("cut sh").truncated()])
///     .with_hooks(Hooks::new().on_error(|_ctx, err| eprintln!("{err:#}")));
/// let events = model.stream(Context::new(), ChatRequest::new("", vec![Message::user("?")])).collect_events().await;
/// assert_eq!(events.data().count(), 2);
/// assert!(beluga_llm::error::is_truncated(&events.error.unwrap()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WithHooks<M, H> {
    model: M,
    hooks: H,
}

impl<M, H> WithHooks<M, H> {
    /// `model` with `hooks`; the same as `model.with_hooks(hooks)`.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::{Hooks, WithHooks};
    /// let model = WithHooks::new(ScriptedModel::new([]), Hooks::new());
    /// # drop(model);
    /// ```
    pub fn new(model: M, hooks: H) -> Self {
        WithHooks { model, hooks }
    }

    /// The wrapped model.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::{ChatModelExt, Hooks};
    /// let model = ScriptedModel::new([]).with_hooks(Hooks::new());
    /// assert!(model.model().requests().is_empty());
    /// ```
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The hooks.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::{ChatModelExt, Hooks};
    /// let model = ScriptedModel::new([]).with_hooks(Hooks::new());
    /// let _hooks: &Hooks = model.hooks();
    /// ```
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// The model and the hooks.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::{ChatModelExt, Hooks};
    /// let (model, _hooks) = ScriptedModel::new([]).with_hooks(Hooks::new()).into_parts();
    /// # drop(model);
    /// ```
    pub fn into_parts(self) -> (M, H) {
        (self.model, self.hooks)
    }
}

impl<M, H> Runnable for WithHooks<M, H>
where
    M: Runnable<Input = ChatRequest, Output = ChatChunk>,
    H: ChatHooks,
{
    type Input = ChatRequest;
    type Output = ChatChunk;

    fn stream(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        let model = &self.model;
        Hooked::new(&self.hooks, ctx, request, move |ctx, request| {
            model.stream(ctx, request)
        })
    }
}

/// The tool results a request delivers: its `tool` messages after the last other message.
fn delivered_results(messages: &[Message]) -> impl Iterator<Item = &ToolResult> {
    let start = messages
        .iter()
        .rposition(|m| !matches!(m, Message::Tool(_)))
        .map_or(0, |last| last + 1);
    messages[start..].iter().filter_map(|m| match m {
        Message::Tool(result) => Some(result),
        _ => None,
    })
}

pin_project! {
    /// The stream of [`WithHooks`]: the model's stream is made on the first poll, after
    /// `on_start`.
    struct Hooked<'h, H, F, S> {
        hooks: &'h H,
        ctx: Context,
        start: Option<(F, ChatRequest)>,
        #[pin]
        inner: Option<AccumulateToolCalls<S>>,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
        finished: bool,
    }
}

impl<'h, H, F, S> Hooked<'h, H, F, S>
where
    H: ChatHooks,
    F: FnOnce(Context, ChatRequest) -> S,
    S: Stream<Item = EventResult<ChatChunk>>,
{
    fn new(hooks: &'h H, ctx: Context, request: ChatRequest, make: F) -> Self {
        Hooked {
            hooks,
            ctx,
            start: Some((make, request)),
            inner: None,
            finish_reason: None,
            usage: None,
            finished: false,
        }
    }
}

impl<H, F, S> Stream for Hooked<'_, H, F, S>
where
    H: ChatHooks,
    F: FnOnce(Context, ChatRequest) -> S,
    S: Stream<Item = EventResult<ChatChunk>>,
{
    type Item = EventResult<ChatChunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let hooks = *this.hooks;
        if let Some((make, request)) = this.start.take() {
            if let Err(err) = hooks.on_start(this.ctx, &request) {
                *this.finished = true;
                hooks.on_error(this.ctx, &err);
                return Poll::Ready(Some(Err(err)));
            }
            for result in delivered_results(&request.messages) {
                hooks.on_tool_result(this.ctx, result);
            }
            let inner = make(this.ctx.clone(), request).accumulate_tool_calls();
            this.inner.set(Some(inner));
        }
        if *this.finished {
            return Poll::Ready(None);
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let item = ready!(inner.poll_next(cx));
        let ended = match &item {
            Some(Ok(event)) => match event.kind() {
                EventKind::Data(chunk) => {
                    note(this.finish_reason, this.usage, chunk);
                    hooks.on_chunk(this.ctx, chunk);
                    false
                }
                EventKind::ToolCall(chunk) => {
                    note(this.finish_reason, this.usage, chunk);
                    if let Some(call) = &chunk.tool_call {
                        hooks.on_tool_call(this.ctx, call);
                    }
                    false
                }
                EventKind::ToolResult(chunk) => {
                    if let Some(result) = &chunk.tool_result {
                        hooks.on_tool_result(this.ctx, result);
                    }
                    false
                }
                EventKind::Error(err) => {
                    hooks.on_error(this.ctx, err);
                    false
                }
                EventKind::Handoff(_) => false,
                EventKind::Done(chunk) => {
                    if let Some(chunk) = chunk {
                        note(this.finish_reason, this.usage, chunk);
                    }
                    true
                }
            },
            Some(Err(err)) => {
                hooks.on_error(this.ctx, err);
                *this.finished = true;
                this.inner.set(None);
                return Poll::Ready(item);
            }
            None => true,
        };
        if !ended {
            return Poll::Ready(item);
        }
        // The end: `done`, or the end of a stream that sent no terminal item.
        *this.finished = true;
        this.inner.set(None);
        if let Some(finish_reason) = this.finish_reason.take() {
            let info = DoneInfo {
                finish_reason,
                usage: this.usage.take(),
            };
            hooks.on_done(this.ctx, &info);
            Poll::Ready(item)
        } else {
            let err = truncated("llm.stream");
            hooks.on_error(this.ctx, &err);
            Poll::Ready(Some(Err(err)))
        }
    }
}

/// Keeps the finish reason and the usage a chunk reports.
fn note(finish_reason: &mut Option<FinishReason>, usage: &mut Option<Usage>, chunk: &ChatChunk) {
    if let Some(reason) = &chunk.finish_reason {
        *finish_reason = Some(reason.clone());
    }
    if let Some(reported) = &chunk.usage {
        usage.get_or_insert_default().merge(reported);
    }
}
