//! Tracing for chat streams (the `tracing` feature): one `tracing` span per call, with
//! OpenTelemetry's GenAI attribute names, so that `tracing-opentelemetry` exports it as a GenAI
//! client span without any OpenTelemetry dependency here.
//!
//! [`traced`](crate::ChatModelExt::traced) wraps a model ([`TracedModel`]); [`ChatSpan`] traces
//! any chunk stream with [`traced_with`](beluga_core::EventStreamExt::traced_with). The span
//! is `beluga-core`'s [traced stream](beluga_core::trace) span, opened at the first poll and
//! closed at the terminal item or when the stream is dropped, with its
//! [fields](beluga_core::trace#fields) (request id, items, time to the first item, outcome,
//! the terminal error's code in `error.type`) and these:
//!
//! | field | value | recorded |
//! |---|---|---|
//! | `otel.name` | `chat {model}`, or `chat` when the request names no model | at the start |
//! | `otel.kind` | `client` | at the start |
//! | `beluga.time_to_first_token_ms` | milliseconds (a float) from the first poll to the first chunk with text or a piece of a tool call, on Tokio's clock: the time to the first token. `beluga.time_to_first_item_ms` is the time to the first `data` chunk of any kind, which may hold only usage (Anthropic's first) | at that chunk |
//! | `gen_ai.operation.name` | `chat` | at the start |
//! | `gen_ai.provider.name` | the provider, when known ([`ChatSpan::with_provider`]; the providers' own `traced` set it) | at the start |
//! | `gen_ai.request.model` | the request's [`model`](crate::ChatRequest::model), or the provider's when the request names none ([`ChatSpan::with_default_model`]) | at the start |
//! | `gen_ai.request.max_tokens` | the request's [`max_tokens`](crate::ChatRequest::max_tokens), when set (an integer) | at the start |
//! | `gen_ai.request.temperature` | the request's [`temperature`](crate::ChatRequest::temperature), when set | at the start |
//! | `server.address`, `server.port` | the host and port the request goes to, when given ([`ChatSpan::with_server`]) | at the start |
//! | `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` | the [`Usage`] the chunks report, merged (integers) | at the end, once |
//! | `gen_ai.response.finish_reasons` | the [`FinishReason`] as a JSON array of one name, `["stop"]` (a `tracing` field holds no array) | at the end |
//!
//! The span is named `chat` for `tracing` subscribers; `otel.name` is the name OpenTelemetry
//! shows, as the GenAI conventions spell it.
//!
//! An answer that ends without a finish reason (and without an `error` event, which is the
//! failure then) is a failure: the span records the
//! [truncated](crate::error::truncated) error's code in `error.type` and the error status,
//! as [`generate`](crate::ChatModelExt::generate) fails with it. A call cancelled on purpose
//! is `cancelled`, no failure (see [`Outcome`]).
//!
//! `gen_ai.response.finish_reasons` is a string holding a JSON array, not the array of
//! strings the conventions call for: a `tracing` field cannot hold an array, so an exporter
//! shows the text `["stop"]`.
//!
//! ```
//! use beluga_core::{Context, Runnable};
//! use beluga_llm::schema::{ChatRequest, Message, Usage};
//! use beluga_llm::scripted::{ScriptedModel, Turn};
//! use beluga_llm::ChatModelExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let model = ScriptedModel::new([Turn::text("Hi!").with_usage(Usage::new(12, 2))])
//!     .traced()
//!     .with_provider("scripted");
//! let ctx = Context::new().with_request_id("req-42");
//! let request = ChatRequest::new("small-model", vec![Message::user("hi")]);
//! // Under a subscriber, one `chat` span with `gen_ai.usage.input_tokens = 12`, and so on.
//! let answer = model.generate(ctx, request).await.unwrap();
//! assert_eq!(answer.text(), "Hi!");
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;

use beluga_core::trace::{Outcome, StreamSpan};
use beluga_core::{Context, Event, EventKind, EventResult, EventStreamExt, Runnable, stream_span};
use futures_core::Stream;
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

use crate::schema::{ChatChunk, ChatRequest, FinishReason, Usage};

/// The span of a chat stream, with OpenTelemetry's GenAI names: see the
/// [module docs](self) for its fields. Made from the request before the call, handed to
/// [`traced_with`](beluga_core::EventStreamExt::traced_with).
///
/// ```
/// use beluga_core::{Context, EventStreamExt, Runnable};
/// use beluga_llm::schema::{ChatRequest, Message};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::trace::ChatSpan;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new([Turn::text("Hello.")]);
/// let ctx = Context::new();
/// let request = ChatRequest::new("small-model", vec![Message::user("hi")]);
/// let span = ChatSpan::new(&request);
/// let chunks = model.stream(ctx.clone(), request).traced_with(span, &ctx).collect_events().await;
/// assert!(chunks.error.is_none());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ChatSpan {
    model: String,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    provider: Option<Cow<'static, str>>,
    server: Option<(String, u16)>,
    usage: Option<Usage>,
    finish_reason: Option<FinishReason>,
    /// Whether an `error` event came (the core records it as the failure).
    error_event: bool,
    /// When the span opened (the first poll), until the first token came.
    waiting_since: Option<Instant>,
}

impl ChatSpan {
    /// The span of a call with `request`.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// use beluga_llm::trace::ChatSpan;
    /// let span = ChatSpan::new(&ChatRequest::new("small-model", vec![]));
    /// # drop(span);
    /// ```
    pub fn new(request: &ChatRequest) -> Self {
        ChatSpan {
            model: request.model.clone(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            provider: None,
            server: None,
            usage: None,
            finish_reason: None,
            error_event: false,
            waiting_since: None,
        }
    }

    /// The same span with `gen_ai.provider.name`: `openai`, `anthropic`, or the name the
    /// GenAI conventions give the provider.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// use beluga_llm::trace::ChatSpan;
    /// let span = ChatSpan::new(&ChatRequest::default()).with_provider("openai");
    /// # drop(span);
    /// ```
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// The same span with `server.address` and `server.port`: the host and port the request
    /// goes to.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// use beluga_llm::trace::ChatSpan;
    /// let span = ChatSpan::new(&ChatRequest::default()).with_server("api.openai.com", 443);
    /// # drop(span);
    /// ```
    #[must_use]
    pub fn with_server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.server = Some((address.into(), port));
        self
    }

    /// The same span with `model` in `gen_ai.request.model` (and the span's name) when the
    /// request names none: the model a provider falls back to.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// use beluga_llm::trace::ChatSpan;
    /// let span = ChatSpan::new(&ChatRequest::default()).with_default_model("gpt-4o-mini");
    /// # drop(span);
    /// ```
    #[must_use]
    pub fn with_default_model(mut self, model: &str) -> Self {
        if self.model.is_empty() {
            model.clone_into(&mut self.model);
        }
        self
    }
}

/// `chat {model}`, or `chat`.
struct SpanName<'a>(Option<&'a str>);

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(model) => write!(f, "chat {model}"),
            None => f.write_str("chat"),
        }
    }
}

impl StreamSpan<ChatChunk> for ChatSpan {
    fn open(&mut self, ctx: &Context) -> Span {
        self.waiting_since = Some(Instant::now());
        let model = (!self.model.is_empty()).then_some(self.model.as_str());
        stream_span!(
            "chat",
            ctx,
            otel.name = %SpanName(model),
            otel.kind = "client",
            beluga.time_to_first_token_ms = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = self.provider.as_deref(),
            gen_ai.request.model = model,
            gen_ai.request.max_tokens = self.max_tokens.map(i64::from),
            // Through its shortest text: 0.7 as `f32` is 0.699999988... as `f64`.
            gen_ai.request.temperature = self.temperature.map(|t| t.to_string().parse().unwrap_or(f64::from(t))),
            server.address = self.server.as_ref().map(|(address, _)| address.as_str()),
            server.port = self.server.as_ref().map(|&(_, port)| i64::from(port)),
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.response.finish_reasons = Empty,
        )
    }

    fn on_event(&mut self, span: &Span, event: &Event<ChatChunk>) {
        let (EventKind::Data(chunk) | EventKind::ToolCall(chunk) | EventKind::Done(Some(chunk))) =
            event.kind()
        else {
            self.error_event |= matches!(event.kind(), EventKind::Error(_));
            return;
        };
        if self.waiting_since.is_some() && is_token(chunk) {
            if let Some(since) = self.waiting_since.take() {
                let elapsed = since.elapsed().as_secs_f64() * 1_000.0;
                span.record("beluga.time_to_first_token_ms", elapsed);
            }
        }
        if let Some(reported) = &chunk.usage {
            self.usage.get_or_insert_default().merge(reported);
        }
        if let Some(reason) = &chunk.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
    }

    /// Records the usage and the finish reason, once each (an OpenTelemetry exporter keeps
    /// every value a field is given); an answer that ends (with `done` or without it) but
    /// without a finish reason is a [truncated](crate::error::truncated) one, a failure, as
    /// [`generate`](crate::ChatModelExt::generate) says.
    fn on_end(&mut self, span: &Span, outcome: Outcome) {
        if let Some(usage) = &self.usage {
            span.record("gen_ai.usage.input_tokens", count(usage.input_tokens));
            span.record("gen_ai.usage.output_tokens", count(usage.output_tokens));
        }
        if let Some(reason) = &self.finish_reason {
            // The conventions' type is an array of strings; a `tracing` field holds one
            // string, so the array goes in as its JSON text.
            let names = serde_json::Value::from(vec![reason.as_str()]).to_string();
            span.record("gen_ai.response.finish_reasons", names.as_str());
        } else if matches!(outcome, Outcome::Done | Outcome::Ended) && !self.error_event {
            let err = crate::error::truncated("llm.generate");
            span.record("error.type", err.code().as_str());
            span.record("otel.status_code", "error");
            span.record("otel.status_description", tracing::field::display(&err));
        }
    }
}

/// Whether `chunk` carries a piece of the answer: text, or a piece of a tool call (not only
/// usage or a finish reason, as Anthropic's first chunk).
fn is_token(chunk: &ChatChunk) -> bool {
    !chunk.delta.is_empty() || !chunk.tool_call_deltas.is_empty() || chunk.tool_call.is_some()
}

/// A token count as a field value: signed, as OpenTelemetry's integer attributes are.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A [`ChatModel`](crate::ChatModel) whose every call is traced with a [`ChatSpan`], made by
/// [`traced`](crate::ChatModelExt::traced). It is a `ChatModel` itself; the span covers its
/// stream, so it also covers [`generate`](crate::ChatModelExt::generate) and, when the model
/// has [hooks](crate::WithHooks), the hooks (what they log nests under the span).
///
/// ```
/// use beluga_core::{Context, Runnable};
/// use beluga_llm::schema::{ChatRequest, Message};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::{ChatModelExt, Hooks};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new([Turn::text("Hello.")])
///     .with_hooks(Hooks::new().on_done(|_ctx, info| tracing::info!(reason = %info.finish_reason, "done")))
///     .traced();
/// let request = ChatRequest::new("small-model", vec![Message::user("hi")]);
/// assert_eq!(model.generate(Context::new(), request).await.unwrap().text(), "Hello.");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TracedModel<M> {
    model: M,
    provider: Option<Cow<'static, str>>,
    server: Option<(String, u16)>,
    default_model: Option<String>,
}

impl<M> TracedModel<M> {
    /// `model`, traced; the same as `model.traced()`.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::trace::TracedModel;
    /// let model = TracedModel::new(ScriptedModel::new([]));
    /// # drop(model);
    /// ```
    pub fn new(model: M) -> Self {
        TracedModel {
            model,
            provider: None,
            server: None,
            default_model: None,
        }
    }

    /// The same model with `gen_ai.provider.name` on its spans (see
    /// [`ChatSpan::with_provider`]).
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::ChatModelExt;
    /// let model = ScriptedModel::new([]).traced().with_provider("openai");
    /// # drop(model);
    /// ```
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// The same model with `server.address` and `server.port` on its spans (see
    /// [`ChatSpan::with_server`]).
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::ChatModelExt;
    /// let model = ScriptedModel::new([]).traced().with_server("127.0.0.1", 8080);
    /// # drop(model);
    /// ```
    #[must_use]
    pub fn with_server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.server = Some((address.into(), port));
        self
    }

    /// The same model with `model` as the span's model when a request names none (see
    /// [`ChatSpan::with_default_model`]).
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::ChatModelExt;
    /// let model = ScriptedModel::new([]).traced().with_default_model("small-model");
    /// # drop(model);
    /// ```
    #[must_use]
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// The wrapped model.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::ChatModelExt;
    /// let model = ScriptedModel::new([]).traced();
    /// assert!(model.model().requests().is_empty());
    /// ```
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The wrapped model, untraced.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// use beluga_llm::ChatModelExt;
    /// let model = ScriptedModel::new([]).traced().into_inner();
    /// # drop(model);
    /// ```
    pub fn into_inner(self) -> M {
        self.model
    }
}

impl<M> Runnable for TracedModel<M>
where
    M: Runnable<Input = ChatRequest, Output = ChatChunk>,
{
    type Input = ChatRequest;
    type Output = ChatChunk;

    fn stream(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        let mut span = ChatSpan::new(&request);
        span.provider.clone_from(&self.provider);
        span.server.clone_from(&self.server);
        if let Some(model) = &self.default_model {
            span = span.with_default_model(model);
        }
        self.model
            .stream(ctx.clone(), request)
            .traced_with(span, &ctx)
    }
}
