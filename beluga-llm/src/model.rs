//! [`ChatModel`]: a [`Runnable`] from a [`ChatRequest`] to [`ChatChunk`] events, and
//! [`ChatModelExt`]: `generate`, `with_hooks` and (feature `tracing`) `traced` for every chat
//! model.

use std::future::Future;

use beluga_core::{BoxRunnable, Context, Error, Runnable};

use crate::hooks::{ChatHooks, WithHooks};
use crate::schema::{ChatChunk, ChatRequest, ChatResponse};
use crate::stream_ext::ChatStreamExt;
#[cfg(feature = "tracing")]
use crate::trace::TracedModel;

/// A chat model: any [`Runnable`] whose input is a [`ChatRequest`] and whose events carry
/// [`ChatChunk`]s. There is nothing to implement beyond the runnable; every such runnable is a
/// `ChatModel`, so `pipe`, `parallel`, `batch`, `boxed` and `#[derive(Runnable)]` apply.
///
/// **The stream is the contract.** A model's [`stream`](Runnable::stream) yields `data` events
/// with text deltas and tool-call pieces, a chunk with the [`FinishReason`](crate::FinishReason)
/// and [`Usage`](crate::Usage) reports, and ends with `done` (or a terminal `Err`).
/// It may assemble its tool calls itself
/// ([`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls)) or leave the pieces
/// in; consumers and [`generate`](ChatModelExt::generate) handle both. Everything else
/// (`generate`, hooks, `invoke`) is derived from the stream.
///
/// ```
/// use beluga_core::{stream, Context, EventResult, Runnable, RunnableExt};
/// use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message};
/// use beluga_llm::{ChatModel, ChatModelExt};
/// use futures_util::Stream;
///
/// /// Answers with the last user message, reversed.
/// struct Reverse;
///
/// impl Runnable for Reverse {
///     type Input = ChatRequest;
///     type Output = ChatChunk;
///     fn stream(&self, _ctx: Context, request: ChatRequest) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
///         let last = request.messages.last().map(|m| m.content().chars().rev().collect::<String>());
///         stream::iter([
///             ChatChunk::text(last.unwrap_or_default()),
///             ChatChunk::finished(FinishReason::Stop),
///         ])
///     }
/// }
///
/// fn takes_a_model(_: &impl ChatModel) {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// takes_a_model(&Reverse);
/// let request = ChatRequest::new("", vec![Message::user("stressed")]);
/// let response = Reverse.generate(Context::new(), request).await.unwrap();
/// assert_eq!(response.text(), "desserts");
/// # }
/// ```
pub trait ChatModel: Runnable<Input = ChatRequest, Output = ChatChunk> {}

impl<R> ChatModel for R where R: Runnable<Input = ChatRequest, Output = ChatChunk> + ?Sized {}

/// A boxed chat model, for heterogeneous collections and struct fields: what
/// [`boxed`](beluga_core::RunnableExt::boxed) makes of any [`ChatModel`].
///
/// ```
/// use beluga_core::RunnableExt;
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::BoxChatModel;
///
/// let models: Vec<BoxChatModel<'static>> = vec![
///     ScriptedModel::new([Turn::text("one")]).boxed(),
///     ScriptedModel::new([Turn::text("two")]).boxed(),
/// ];
/// assert_eq!(models.len(), 2);
/// ```
pub type BoxChatModel<'a> = BoxRunnable<'a, ChatRequest, ChatChunk>;

/// `generate` and `with_hooks` for every [`ChatModel`].
pub trait ChatModelExt: ChatModel {
    /// Runs the model and assembles its answer: drives [`stream`](Runnable::stream) through a
    /// [`ResponseBuilder`](crate::ResponseBuilder) (see
    /// [`collect_response`](crate::ChatStreamExt::collect_response)), so it is the stream, and
    /// every wrapper on it (hooks included), that produces the answer: there is no second code
    /// path.
    ///
    /// Returns the first error: a terminal `Err` (cancellation, the provider's), an `error`
    /// event, a tool call that cannot be assembled, or a
    /// [`truncated`](crate::error::truncated) answer when the stream ends without a finish
    /// reason.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::error::is_truncated;
    /// use beluga_llm::schema::{ChatRequest, FinishReason, Message};
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// use beluga_llm::ChatModelExt;
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let model = ScriptedModel::new([
    ///     Turn::text("Let me look.").with_tool_call("c1", "get_weather", json!({"city": "Oslo"})),
    ///     Turn::text("It is 18°C in").truncated(),
    /// ]);
    /// let request = ChatRequest::new("", vec![Message::user("Weather in Oslo?")]);
    ///
    /// let response = model.generate(Context::new(), request.clone()).await.unwrap();
    /// assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    /// assert_eq!(response.tool_calls()[0].arguments["city"], "Oslo");
    ///
    /// let cut = model.generate(Context::new(), request).await.unwrap_err();
    /// assert!(is_truncated(&cut));
    /// # }
    /// ```
    fn generate(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, Error>> + Send + '_ {
        self.stream(ctx, request).collect_response()
    }

    /// This model with `hooks` on its stream path: see [`WithHooks`]. The result is a
    /// `ChatModel` too, so [`generate`](ChatModelExt::generate) runs through the hooks.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use beluga_core::Context;
    /// use beluga_llm::schema::{ChatRequest, Message};
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// use beluga_llm::{ChatModelExt, Hooks};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let chunks = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&chunks);
    /// let model = ScriptedModel::new([Turn::text("one two three")])
    ///     .with_hooks(Hooks::new().on_chunk(move |_ctx, _chunk| {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }));
    /// let request = ChatRequest::new("", vec![Message::user("count")]);
    /// model.generate(Context::new(), request).await.unwrap();
    /// assert_eq!(chunks.load(Ordering::Relaxed), 4); // three words and the finish
    /// # }
    /// ```
    fn with_hooks<H: ChatHooks>(self, hooks: H) -> WithHooks<Self, H>
    where
        Self: Sized,
    {
        WithHooks::new(self, hooks)
    }

    /// This model with one `tracing` span per call (feature `tracing`), named with
    /// OpenTelemetry's GenAI attributes: see [`TracedModel`] and the
    /// [`trace`](crate::trace) module for the fields. The result is a `ChatModel` too.
    ///
    /// This method knows nothing of the model but its requests: name the provider and its
    /// server with [`TracedModel::with_provider`] and [`TracedModel::with_server`]. The
    /// providers' own `traced` (`OpenAiCompatible::traced`, `Anthropic::traced`, which
    /// `model.traced()` calls on them) fill those in.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_llm::schema::{ChatRequest, Message};
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// use beluga_llm::ChatModelExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let model = ScriptedModel::new([Turn::text("Traced.")]).traced();
    /// let request = ChatRequest::new("small-model", vec![Message::user("hi")]);
    /// assert_eq!(model.generate(Context::new(), request).await.unwrap().text(), "Traced.");
    /// # }
    /// ```
    #[cfg(feature = "tracing")]
    fn traced(self) -> TracedModel<Self>
    where
        Self: Sized,
    {
        TracedModel::new(self)
    }
}

impl<M: ChatModel + ?Sized> ChatModelExt for M {}
