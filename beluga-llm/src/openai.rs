//! [`OpenAiCompatible`]: the OpenAI chat-completions stream, which OpenAI, Ollama, vLLM,
//! llama.cpp's server, mistral.rs, LM Studio and most gateways speak; and [`decode`], its
//! server-sent events turned into chunk events.
//!
//! ```no_run
//! use beluga_core::Context;
//! use beluga_llm::openai::OpenAiCompatible;
//! use beluga_llm::schema::{ChatRequest, Message};
//! use beluga_llm::ChatModelExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! // A local Ollama; for OpenAI itself: `OpenAiCompatible::openai("gpt-4o-mini").with_api_key(key)`.
//! let model = OpenAiCompatible::new("http://localhost:11434/v1", "llama3.2");
//! let request = ChatRequest::new("", vec![Message::user("Name three fjords.")]);
//! let answer = model.generate(Context::new(), request).await?;
//! println!("{}", answer.text());
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use beluga_core::stream::Emitter;
use beluga_core::{Context, Error, ErrorCode, EventResult, Runnable, stream};
use bytes::Bytes;
use futures_core::Stream;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use crate::http::{self, Decoder, Endpoint, Step};
use crate::schema::{
    ChatChunk, ChatRequest, FinishReason, Message, ToolCallDelta, ToolChoice, Usage,
};
use crate::wire::{Text, non_empty};

/// OpenAI's own API: `https://api.openai.com/v1`.
///
/// ```
/// use beluga_llm::openai::{OPENAI_BASE_URL, OpenAiCompatible};
/// assert_eq!(OpenAiCompatible::openai("gpt-4o-mini").base_url(), OPENAI_BASE_URL);
/// ```
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

const OP: &str = "openai.chat";

/// A chat model behind an OpenAI-compatible chat-completions endpoint: `POST
/// {base_url}/chat/completions` with `"stream": true`, read as server-sent events.
///
/// It is a [`Runnable`] from a [`ChatRequest`] to [`ChatChunk`] events, so it is a
/// [`ChatModel`](crate::ChatModel): `generate`, hooks, `batch` and `pipe` apply. Its stream
/// yields a `data` event per chunk the server sends (text deltas, tool-call pieces by index
/// as the server sends them, the finish reason, and the usage, asked for with
/// `stream_options.include_usage`), then `done` at `data: [DONE]`. Tool-call pieces are left
/// as they come: [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls)
/// assembles them.
///
/// The request is sent when the stream is first polled, and the answer is read as the
/// consumer polls, on the consumer's task. Dropping the stream or cancelling its context closes
/// the connection at once. Errors are mapped as the [`http`] module says.
///
/// The request's `model` wins over the configured one; `temperature`, `max_tokens`, `stop`,
/// `tools` and `tool_choice` are sent when set.
///
/// ```
/// use std::time::Duration;
/// use beluga_llm::openai::OpenAiCompatible;
///
/// let vllm = OpenAiCompatible::new("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
///     .with_api_key("token-abc123")
///     .with_idle_timeout(Duration::from_secs(30));
/// assert_eq!(vllm.model(), "Qwen/Qwen2.5-7B-Instruct");
/// assert!(!format!("{vllm:?}").contains("token-abc123"), "the key is never printed");
/// ```
#[derive(Clone, Debug)]
pub struct OpenAiCompatible {
    endpoint: Endpoint,
    stream_usage: bool,
}

impl OpenAiCompatible {
    /// A model named `model` behind `base_url`, the URL that `/chat/completions` is appended
    /// to (`http://localhost:11434/v1` for Ollama, `http://127.0.0.1:8080/v1` for llama.cpp's
    /// server). No API key: add one with [`with_api_key`](Self::with_api_key).
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let ollama = OpenAiCompatible::new("http://localhost:11434/v1/", "llama3.2");
    /// assert_eq!(ollama.base_url(), "http://localhost:11434/v1"); // trailing `/` dropped
    /// ```
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let mut endpoint = Endpoint::new(&base_url.into());
        endpoint.model = model.into();
        OpenAiCompatible {
            endpoint,
            stream_usage: true,
        }
    }

    /// OpenAI's own API ([`OPENAI_BASE_URL`]) with `model`; add the key with
    /// [`with_api_key`](Self::with_api_key).
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let model = OpenAiCompatible::openai("gpt-4o-mini").with_api_key("sk-...");
    /// assert_eq!(model.model(), "gpt-4o-mini");
    /// ```
    pub fn openai(model: impl Into<String>) -> Self {
        OpenAiCompatible::new(OPENAI_BASE_URL, model)
    }

    /// The provider's name as OpenTelemetry's GenAI conventions spell it, for a span's
    /// `gen_ai.provider.name`: `openai` for OpenAI's own API ([`OPENAI_BASE_URL`]), `None`
    /// for another server (a gateway, a local server: name it with
    /// [`TracedModel::with_provider`](crate::trace::TracedModel::with_provider)).
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// assert_eq!(OpenAiCompatible::openai("gpt-4o-mini").provider_name(), Some("openai"));
    /// assert_eq!(OpenAiCompatible::new("http://localhost:11434/v1", "llama3").provider_name(), None);
    /// ```
    pub fn provider_name(&self) -> Option<&'static str> {
        (self.endpoint.base_url == OPENAI_BASE_URL).then_some("openai")
    }

    /// The model traced (feature `tracing`), as
    /// [`ChatModelExt::traced`](crate::ChatModelExt::traced) does, with what the provider
    /// knows on every span: its [name](Self::provider_name) in `gen_ai.provider.name`, the
    /// base URL's host and port in `server.address` and `server.port`, and its model in
    /// `gen_ai.request.model` when a request names none. This method, not the trait's, is the
    /// one `model.traced()` calls on an `OpenAiCompatible`; a model wrapped first (with hooks)
    /// gets the trait's, which knows none of this (add it with the
    /// [`TracedModel`](crate::trace::TracedModel) methods).
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let model = OpenAiCompatible::openai("gpt-4o-mini").traced();
    /// assert_eq!(model.model().model(), "gpt-4o-mini");
    /// ```
    #[cfg(feature = "tracing")]
    pub fn traced(self) -> crate::trace::TracedModel<Self> {
        let traced = self.endpoint.traced(self.provider_name());
        traced(self)
    }

    /// Sends `key` as `Authorization: Bearer <key>` (an empty key sends nothing).
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let model = OpenAiCompatible::openai("gpt-4o-mini").with_api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default());
    /// # let _ = model;
    /// ```
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.endpoint.api_key = Some(key.into()).filter(|k| !k.is_empty());
        self
    }

    /// Sends this header with every request (a gateway's routing or organization header);
    /// an invalid name or value is an `invalid_input` error.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let model = OpenAiCompatible::openai("gpt-4o-mini").with_header("OpenAI-Organization", "org-1").unwrap();
    /// let bad = OpenAiCompatible::openai("gpt-4o-mini").with_header("bad name", "x").unwrap_err();
    /// assert_eq!(bad.code(), ErrorCode::InvalidInput);
    /// # let _ = model;
    /// ```
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        self.endpoint
            .add_header(name, value)
            .map_err(|err| err.with_op(OP))?;
        Ok(self)
    }

    /// How long to wait for the response to start and, after that, for each next byte, before
    /// the stream ends with `deadline_exceeded`; [`DEFAULT_IDLE_TIMEOUT`](http::DEFAULT_IDLE_TIMEOUT)
    /// unless set. `Duration::MAX` waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let model = OpenAiCompatible::openai("o3").with_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(model.idle_timeout(), Duration::from_secs(600));
    /// ```
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.endpoint.idle_timeout = idle_timeout;
        self
    }

    /// Uses this HTTP client (its proxy, TLS and pool settings) instead of a default one.
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// let client = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
    /// let model = OpenAiCompatible::openai("gpt-4o-mini").with_client(client);
    /// # let _ = model;
    /// ```
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.endpoint.client = client.into();
        self
    }

    /// Whether to ask for the token counts with `"stream_options": {"include_usage": true}`
    /// (on by default). Turn it off for a server that rejects `stream_options`.
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// use beluga_llm::schema::ChatRequest;
    /// let old_server = OpenAiCompatible::new("http://127.0.0.1:8080/v1", "m").with_stream_usage(false);
    /// assert!(old_server.request_body(&ChatRequest::new("", vec![])).get("stream_options").is_none());
    /// ```
    #[must_use]
    pub fn with_stream_usage(mut self, on: bool) -> Self {
        self.stream_usage = on;
        self
    }

    /// The URL that `/chat/completions` is appended to.
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// assert_eq!(OpenAiCompatible::new("http://h/v1", "m").base_url(), "http://h/v1");
    /// ```
    pub fn base_url(&self) -> &str {
        &self.endpoint.base_url
    }

    /// The model used when a request names none.
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// assert_eq!(OpenAiCompatible::new("http://h/v1", "m").model(), "m");
    /// ```
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// The idle timeout (see [`with_idle_timeout`](Self::with_idle_timeout)).
    ///
    /// ```
    /// use beluga_llm::{http, openai::OpenAiCompatible};
    /// assert_eq!(OpenAiCompatible::new("http://h/v1", "m").idle_timeout(), http::DEFAULT_IDLE_TIMEOUT);
    /// ```
    pub fn idle_timeout(&self) -> std::time::Duration {
        self.endpoint.idle_timeout
    }

    /// The JSON body sent for `request`: OpenAI's chat-completions shape.
    ///
    /// ```
    /// use beluga_llm::openai::OpenAiCompatible;
    /// use beluga_llm::schema::{AssistantMessage, ChatRequest, Message, ToolCall, ToolDefinition};
    /// use serde_json::json;
    ///
    /// let model = OpenAiCompatible::new("http://h/v1", "llama3.2");
    /// let call = ToolCall::new("c1", "get_weather", json!({"city": "Oslo"}));
    /// let request = ChatRequest::new("", vec![
    ///     Message::user("Weather in Oslo?"),
    ///     AssistantMessage::new("").with_tool_calls(vec![call]).into(),
    ///     Message::tool_result("c1", "18°C"),
    /// ])
    /// .with_tools(vec![ToolDefinition::new("get_weather", "The weather.", json!({"type": "object"}))]);
    /// let body = model.request_body(&request);
    /// assert_eq!(body["model"], "llama3.2");
    /// assert_eq!(body["stream"], true);
    /// assert_eq!(body["stream_options"], json!({"include_usage": true}));
    /// assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Oslo"}"#);
    /// assert_eq!(body["messages"][2], json!({"role": "tool", "tool_call_id": "c1", "content": "18°C"}));
    /// assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    /// ```
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), self.endpoint.model(&request.model).into());
        body.insert(
            "messages".into(),
            request.messages.iter().map(message).collect(),
        );
        body.insert("stream".into(), true.into());
        if self.stream_usage {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            });
            body.insert("tools".into(), tools.collect());
        }
        if let Some(choice) = &request.tool_choice {
            let choice = match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if let Some(temperature) = request.temperature {
            body.insert("temperature".into(), temperature.into());
        }
        if let Some(max_tokens) = request.max_tokens {
            body.insert("max_tokens".into(), max_tokens.into());
        }
        if !request.stop.is_empty() {
            body.insert("stop".into(), request.stop.clone().into());
        }
        Value::Object(body)
    }

    fn auth(&self) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.endpoint.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                Error::new(
                    ErrorCode::InvalidInput,
                    "the API key has characters a header cannot carry",
                )
                .with_op(OP)
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }

    async fn run(&self, e: &mut Emitter<'_, ChatChunk>, request: ChatRequest) -> Result<(), Error> {
        let body = serde_json::to_vec(&self.request_body(&request)).map_err(|err| {
            Error::new(
                ErrorCode::InvalidInput,
                "the request cannot be written as JSON",
            )
            .with_op(OP)
            .with_source(err)
        })?;
        let response = self
            .endpoint
            .post(OP, "/chat/completions", self.auth()?, body)
            .await?;
        http::pump(
            e,
            OpenAiDecoder::default(),
            response.bytes_stream(),
            self.endpoint.idle_timeout,
        )
        .await
    }
}

impl Runnable for OpenAiCompatible {
    type Input = ChatRequest;
    type Output = ChatChunk;

    fn stream(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        stream::produce(&ctx, async move |mut e| self.run(&mut e, request).await)
    }
}

/// Turns the bytes of an OpenAI chat-completions stream (`data: {...}` events, then
/// `data: [DONE]`) into chunk events, as [`OpenAiCompatible`] does with a response body:
/// the same code, for a body obtained some other way (a recorded answer, another HTTP client)
/// and for the `sse_decode` benchmark.
///
/// Each chunk's first choice gives a `data` event: its text delta, tool-call pieces, finish
/// reason, and the usage when present (a usage-only chunk with no choices included).
/// Chunks with nothing in them (the first one, which only names the role) and keep-alive
/// comments give no event. The stream ends with `done` at `[DONE]`, or when the body ends
/// after a finish reason; a body that ends before is a [truncated](crate::error::truncated)
/// answer. An `error` object in the stream, JSON that cannot be read, a failing body and an
/// idle gap longer than `idle_timeout` end it with an `Err` (see [`http`]).
/// `ctx` is checked on every poll, as in every producer.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use beluga_core::{Context, EventStreamExt};
/// use beluga_llm::openai::decode;
/// use beluga_llm::schema::FinishReason;
/// use bytes::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = concat!(
///     "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
///     ": keep-alive\n\n",
///     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
///     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
///     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n",
///     "data: [DONE]\n\n",
/// );
/// // Split anywhere, as the network does.
/// let pieces = body.as_bytes().chunks(7).map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c)));
/// let events = decode(&Context::new(), futures_util::stream::iter(pieces), Duration::from_secs(60))
///     .collect_events()
///     .await;
/// let chunks: Vec<_> = events.events.iter().filter_map(|e| e.payload()).collect();
/// assert_eq!(chunks.len(), 3);
/// assert_eq!(chunks[0].delta, "Hel");
/// assert_eq!(chunks[1].finish_reason, Some(FinishReason::Stop));
/// assert_eq!(chunks[2].usage.map(|u| u.total_tokens()), Some(11));
/// assert!(events.error.is_none());
/// # }
/// ```
pub fn decode<S, E>(
    ctx: &Context,
    body: S,
    idle_timeout: Duration,
) -> impl Stream<Item = EventResult<ChatChunk>> + Send + use<S, E>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    stream::produce(ctx, async move |mut e| {
        http::pump(&mut e, OpenAiDecoder::default(), body, idle_timeout).await
    })
}

/// One message in OpenAI's shape.
fn message(message: &Message) -> Value {
    match message {
        Message::System { content } => json!({"role": "system", "content": content}),
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant(m) if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        Message::Assistant(m) => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments.to_string()},
                    })
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                m.content.clone().into()
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Message::Tool(result) => json!({
            "role": "tool",
            "tool_call_id": result.call_id,
            "content": result.content,
        }),
    }
}

/// The chunk events of one OpenAI answer.
#[derive(Debug, Default)]
struct OpenAiDecoder {
    finished: bool,
}

impl Decoder for OpenAiDecoder {
    const OP: &'static str = OP;

    fn event(&mut self, event: &eventsource_stream::Event) -> Result<Step, Error> {
        let data = event.data.as_str();
        if data.trim() == "[DONE]" {
            return Ok(Step::Done);
        }
        match event.event.as_str() {
            "ping" | "keepalive" | "keep-alive" => return Ok(Step::Skip),
            "error" => {
                let value: Value =
                    serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()));
                return Err(error_event(value.get("error").unwrap_or(&value)));
            }
            _ => {}
        }
        let wire: WireChunk<'_> =
            serde_json::from_str(data).map_err(|err| http::malformed(OP, data, &err))?;
        if let Some(error) = wire.error.filter(|e| !e.is_null()) {
            return Err(error_event(&error));
        }
        let mut chunk = ChatChunk::default();
        if let Some(choice) = wire.choices {
            if let Some(delta) = choice.delta {
                if let Some(content) = non_empty(delta.content) {
                    chunk.delta = content;
                }
                chunk.tool_call_deltas = delta
                    .tool_calls
                    .into_iter()
                    .flatten()
                    .map(|call| {
                        let function = call.function.unwrap_or_default();
                        ToolCallDelta {
                            index: call.index.unwrap_or(0),
                            id: non_empty(call.id),
                            name: non_empty(function.name),
                            arguments: function
                                .arguments
                                .map(Text::into_string)
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                chunk.finish_reason = Some(FinishReason::from_provider(reason.as_str()));
            }
        }
        if let Some(usage) = wire.usage {
            chunk.usage = Some(
                Usage::new(usage.prompt_tokens, usage.completion_tokens)
                    .with_cached_tokens(
                        usage
                            .prompt_tokens_details
                            .and_then(|d| d.cached_tokens)
                            .unwrap_or(0),
                    )
                    .with_reasoning_tokens(
                        usage
                            .completion_tokens_details
                            .and_then(|d| d.reasoning_tokens)
                            .unwrap_or(0),
                    ),
            );
        }
        Ok(if chunk.is_empty() {
            Step::Skip
        } else {
            Step::Chunk(chunk)
        })
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// An error object sent in the stream: `{"message": ..., "type": ..., "code": ...}`, or a
/// bare string.
fn error_event(error: &Value) -> Error {
    let text = |key| error.get(key).and_then(Value::as_str).unwrap_or("");
    let kind = [text("type"), text("code")]
        .into_iter()
        .find(|k| !k.is_empty())
        .unwrap_or("");
    let message = error.as_str().unwrap_or_else(|| text("message"));
    http::provider_error(OP, kind, message)
}

/// A chunk of OpenAI's stream, as far as it is read: every other field is skipped unread.
#[derive(Deserialize)]
struct WireChunk<'a> {
    /// The choice with index 0 (a request asks for one).
    #[serde(default, borrow, deserialize_with = "first_choice")]
    choices: Option<WireChoice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: Option<WireDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<WireToolCall<'a>>>,
}

#[derive(Deserialize)]
struct WireToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    function: Option<WireFunction<'a>>,
}

#[derive(Default, Deserialize)]
struct WireFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Text<'a>>,
    #[serde(default, borrow)]
    arguments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// Keeps the choice with index 0 of a `choices` list (or `null`), without collecting the list.
fn first_choice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WireChoice<'de>>, D::Error> {
    struct First;

    impl<'de> Visitor<'de> for First {
        type Value = Option<WireChoice<'de>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of choices")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut first = None;
            while let Some(choice) = seq.next_element::<WireChoice<'de>>()? {
                if choice.index == 0 && first.is_none() {
                    first = Some(choice);
                }
            }
            Ok(first)
        }
    }

    d.deserialize_any(First)
}
