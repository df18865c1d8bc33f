//! [`Anthropic`]: Anthropic's Messages stream; and [`decode`], its server-sent events turned
//! into chunk events.
//!
//! ```no_run
//! use beluga_core::Context;
//! use beluga_llm::anthropic::Anthropic;
//! use beluga_llm::schema::{ChatRequest, Message};
//! use beluga_llm::ChatModelExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! let key = std::env::var("ANTHROPIC_API_KEY").unwrap_or_default();
//! let model = Anthropic::new("claude-sonnet-4-5").with_api_key(key);
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
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{self, Decoder, Endpoint, Step};
use crate::schema::{
    ChatChunk, ChatRequest, FinishReason, Message, ToolCallDelta, ToolChoice, Usage,
};
use crate::wire::{Text, non_empty};

/// Anthropic's API: `https://api.anthropic.com/v1`.
///
/// ```
/// use beluga_llm::anthropic::{ANTHROPIC_BASE_URL, Anthropic};
/// assert_eq!(Anthropic::new("claude-sonnet-4-5").base_url(), ANTHROPIC_BASE_URL);
/// ```
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";

/// The `anthropic-version` header sent with every request.
///
/// ```
/// assert_eq!(beluga_llm::anthropic::ANTHROPIC_VERSION, "2023-06-01");
/// ```
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The `max_tokens` sent when a request sets none (Anthropic requires one).
///
/// ```
/// assert_eq!(beluga_llm::anthropic::DEFAULT_MAX_TOKENS, 4096);
/// ```
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

const OP: &str = "anthropic.messages";

/// A Claude model behind Anthropic's Messages API: `POST {base_url}/messages` with
/// `"stream": true`, read as server-sent events.
///
/// It is a [`Runnable`] from a [`ChatRequest`] to [`ChatChunk`] events, so it is a
/// [`ChatModel`](crate::ChatModel). Its stream yields a `data` event for each text delta,
/// each tool call's start (id and name) and each piece of its `input_json_delta`
/// (numbered 0, 1, ... in the order the calls start), the usage from `message_start` and
/// `message_delta` (running totals; cache reads are counted in the input tokens and reported
/// as cached), and the stop reason; then `done` at `message_stop`. `ping` events and
/// thinking blocks give nothing; an `error` event ends the stream with its code.
///
/// The request is sent when the stream is first polled and read as the consumer polls, on the
/// consumer's task; dropping the stream or cancelling its context closes the connection at
/// once. Errors are mapped as the [`http`] module says (529 `overloaded` is
/// `provider_unavailable`).
///
/// System messages become the top-level `system` text; tool results become `tool_result`
/// blocks of a user turn, and consecutive messages of one role are merged into one turn, as
/// the API requires.
///
/// ```
/// use std::time::Duration;
/// use beluga_llm::anthropic::Anthropic;
///
/// let claude = Anthropic::new("claude-sonnet-4-5")
///     .with_api_key("sk-ant-...")
///     .with_idle_timeout(Duration::from_secs(60));
/// assert_eq!(claude.model(), "claude-sonnet-4-5");
/// assert!(!format!("{claude:?}").contains("sk-ant"), "the key is never printed");
/// ```
#[derive(Clone, Debug)]
pub struct Anthropic {
    endpoint: Endpoint,
    default_max_tokens: u32,
}

impl Anthropic {
    /// The model `model` on Anthropic's API ([`ANTHROPIC_BASE_URL`]); add the key with
    /// [`with_api_key`](Self::with_api_key).
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// assert_eq!(Anthropic::new("claude-haiku-4-5").model(), "claude-haiku-4-5");
    /// ```
    pub fn new(model: impl Into<String>) -> Self {
        let mut endpoint = Endpoint::new(ANTHROPIC_BASE_URL);
        endpoint.model = model.into();
        Anthropic {
            endpoint,
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// The model traced (feature `tracing`), as
    /// [`ChatModelExt::traced`](crate::ChatModelExt::traced) does, with what the provider
    /// knows on every span: `anthropic` in `gen_ai.provider.name`, the base URL's host and
    /// port in `server.address` and `server.port`, and its model in `gen_ai.request.model`
    /// when a request names none. This method, not the trait's, is the one `model.traced()`
    /// calls on an `Anthropic`; a model wrapped first (with hooks) gets the trait's, which
    /// knows none of this (add it with the [`TracedModel`](crate::trace::TracedModel)
    /// methods).
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// let model = Anthropic::new("claude-sonnet-4-5").traced();
    /// assert_eq!(model.model().model(), "claude-sonnet-4-5");
    /// ```
    #[cfg(feature = "tracing")]
    pub fn traced(self) -> crate::trace::TracedModel<Self> {
        let traced = self.endpoint.traced(Some("anthropic"));
        traced(self)
    }

    /// Sends requests to `base_url` (a proxy or gateway that speaks the Messages API) instead;
    /// `/messages` is appended to it.
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// let proxied = Anthropic::new("claude-sonnet-4-5").with_base_url("http://127.0.0.1:4000/v1/");
    /// assert_eq!(proxied.base_url(), "http://127.0.0.1:4000/v1");
    /// ```
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        let base_url: String = base_url.into();
        base_url
            .trim_end_matches('/')
            .clone_into(&mut self.endpoint.base_url);
        self
    }

    /// Sends `key` as the `x-api-key` header (an empty key sends nothing).
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// let model = Anthropic::new("claude-sonnet-4-5").with_api_key(std::env::var("ANTHROPIC_API_KEY").unwrap_or_default());
    /// # let _ = model;
    /// ```
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.endpoint.api_key = Some(key.into()).filter(|k| !k.is_empty());
        self
    }

    /// Sends this header with every request (an `anthropic-beta` flag, a gateway's header);
    /// an invalid name or value is an `invalid_input` error.
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// let model = Anthropic::new("claude-sonnet-4-5")
    ///     .with_header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")
    ///     .unwrap();
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
    /// unless set. Anthropic sends `ping` events while a long answer is prepared, and they count.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_llm::anthropic::Anthropic;
    /// let model = Anthropic::new("claude-opus-4-1").with_idle_timeout(Duration::from_secs(300));
    /// assert_eq!(model.idle_timeout(), Duration::from_secs(300));
    /// ```
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.endpoint.idle_timeout = idle_timeout;
        self
    }

    /// Uses this HTTP client (its proxy, TLS and pool settings) instead of a default one.
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// let client = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
    /// let model = Anthropic::new("claude-sonnet-4-5").with_client(client);
    /// # let _ = model;
    /// ```
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.endpoint.client = client.into();
        self
    }

    /// The `max_tokens` sent when a request sets none ([`DEFAULT_MAX_TOKENS`] unless set).
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// use beluga_llm::schema::ChatRequest;
    /// let model = Anthropic::new("claude-sonnet-4-5").with_default_max_tokens(1024);
    /// assert_eq!(model.request_body(&ChatRequest::new("", vec![]))["max_tokens"], 1024);
    /// ```
    #[must_use]
    pub fn with_default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = max_tokens;
        self
    }

    /// The URL that `/messages` is appended to.
    ///
    /// ```
    /// use beluga_llm::anthropic::{ANTHROPIC_BASE_URL, Anthropic};
    /// assert_eq!(Anthropic::new("m").base_url(), ANTHROPIC_BASE_URL);
    /// ```
    pub fn base_url(&self) -> &str {
        &self.endpoint.base_url
    }

    /// The model used when a request names none.
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// assert_eq!(Anthropic::new("m").model(), "m");
    /// ```
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// The idle timeout (see [`with_idle_timeout`](Self::with_idle_timeout)).
    ///
    /// ```
    /// use beluga_llm::{anthropic::Anthropic, http};
    /// assert_eq!(Anthropic::new("m").idle_timeout(), http::DEFAULT_IDLE_TIMEOUT);
    /// ```
    pub fn idle_timeout(&self) -> Duration {
        self.endpoint.idle_timeout
    }

    /// The JSON body sent for `request`: the Messages API's shape.
    ///
    /// ```
    /// use beluga_llm::anthropic::Anthropic;
    /// use beluga_llm::schema::{AssistantMessage, ChatRequest, Message, ToolCall, ToolChoice, ToolDefinition};
    /// use serde_json::json;
    ///
    /// let model = Anthropic::new("claude-sonnet-4-5");
    /// let call = ToolCall::new("toolu_1", "get_weather", json!({"city": "Oslo"}));
    /// let request = ChatRequest::new("", vec![
    ///     Message::system("Be brief."),
    ///     Message::user("Weather in Oslo?"),
    ///     AssistantMessage::new("Let me check.").with_tool_calls(vec![call]).into(),
    ///     Message::tool_result("toolu_1", "18°C"),
    /// ])
    /// .with_tools(vec![ToolDefinition::new("get_weather", "The weather.", json!({"type": "object"}))])
    /// .with_tool_choice(ToolChoice::Required);
    /// let body = model.request_body(&request);
    /// assert_eq!(body["system"], "Be brief.");
    /// assert_eq!(body["max_tokens"], 4096);
    /// assert_eq!(body["messages"][1]["content"][1], json!({
    ///     "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"},
    /// }));
    /// assert_eq!(body["messages"][2], json!({"role": "user", "content": [
    ///     {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
    /// ]}));
    /// assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
    /// assert_eq!(body["tool_choice"], json!({"type": "any"}));
    /// ```
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), self.endpoint.model(&request.model).into());
        body.insert(
            "max_tokens".into(),
            request.max_tokens.unwrap_or(self.default_max_tokens).into(),
        );
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::System { content } => Some(content.as_str()),
                _ => None,
            })
            .collect();
        if !system.is_empty() {
            body.insert("system".into(), system.join("\n\n").into());
        }
        body.insert("messages".into(), turns(&request.messages).into());
        body.insert("stream".into(), true.into());
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            });
            body.insert("tools".into(), tools.collect());
        }
        if let Some(choice) = &request.tool_choice {
            let choice = match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if let Some(temperature) = request.temperature {
            body.insert("temperature".into(), temperature.into());
        }
        if !request.stop.is_empty() {
            body.insert("stop_sequences".into(), request.stop.clone().into());
        }
        Value::Object(body)
    }

    fn auth(&self) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = &self.endpoint.api_key {
            let mut value = HeaderValue::from_str(key).map_err(|_| {
                Error::new(
                    ErrorCode::InvalidInput,
                    "the API key has characters a header cannot carry",
                )
                .with_op(OP)
            })?;
            value.set_sensitive(true);
            headers.insert("x-api-key", value);
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
            .post(OP, "/messages", self.auth()?, body)
            .await?;
        http::pump(
            e,
            AnthropicDecoder::default(),
            response.bytes_stream(),
            self.endpoint.idle_timeout,
        )
        .await
    }
}

impl Runnable for Anthropic {
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

/// Turns the bytes of an Anthropic Messages stream into chunk events, as [`Anthropic`] does
/// with a response body: the same code, for a body obtained some other way.
///
/// See [`Anthropic`] for what each event gives. The stream ends with `done` at
/// `message_stop`, or when the body ends after a stop reason; a body that ends before is a
/// [truncated](crate::error::truncated) answer. An `error` event, JSON that cannot be read, a
/// failing body and an idle gap longer than `idle_timeout` end it with an `Err`.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use beluga_core::{Context, EventStreamExt};
/// use beluga_llm::anthropic::decode;
/// use beluga_llm::schema::{FinishReason, Usage};
/// use bytes::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = concat!(
///     "event: message_start\n",
///     "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
///     "event: content_block_start\n",
///     "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
///     "event: ping\n",
///     "data: {\"type\":\"ping\"}\n\n",
///     "event: content_block_delta\n",
///     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\n",
///     "event: message_delta\n",
///     "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
///     "event: message_stop\n",
///     "data: {\"type\":\"message_stop\"}\n\n",
/// );
/// let bytes = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from_static(body.as_bytes()))]);
/// let events = decode(&Context::new(), bytes, Duration::from_secs(60)).collect_events().await;
/// let chunks: Vec<_> = events.events.iter().filter_map(|e| e.payload()).collect();
/// assert_eq!(chunks[0].usage, Some(Usage::new(12, 1)));
/// assert_eq!(chunks[1].delta, "Hi!");
/// assert_eq!(chunks[2].finish_reason, Some(FinishReason::Stop));
/// assert_eq!(chunks[2].usage, Some(Usage::new(12, 3)));
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
        http::pump(&mut e, AnthropicDecoder::default(), body, idle_timeout).await
    })
}

/// The conversation as Messages API turns: system messages left out (they go to `system`),
/// consecutive messages of one role merged into one turn of content blocks.
fn turns(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message {
            Message::System { .. } => continue,
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant(m) => {
                let mut blocks = Vec::with_capacity(1 + m.tool_calls.len());
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                blocks.extend(m.tool_calls.iter().map(|call| {
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
                }));
                ("assistant", blocks)
            }
            Message::Tool(result) => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": result.call_id,
                    "content": result.content,
                });
                if result.is_error {
                    block["is_error"] = true.into();
                }
                ("user", vec![block])
            }
        };
        match turns.last_mut() {
            Some((last, merged)) if *last == role => merged.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, blocks)| {
            // A turn that is one text block is sent as plain text.
            let content = match blocks.as_slice() {
                [only] if only["type"] == "text" => only["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

/// The chunk events of one Anthropic answer.
#[derive(Debug, Default)]
struct AnthropicDecoder {
    /// The content-block index of each tool call, in the order they started: a call's
    /// position here is its [`ToolCallDelta::index`].
    tool_blocks: Vec<u32>,
    usage: Usage,
    finished: bool,
}

impl AnthropicDecoder {
    fn tool_index(&self, block: u32) -> Option<u32> {
        let position = self.tool_blocks.iter().position(|b| *b == block)?;
        u32::try_from(position).ok()
    }

    fn usage_chunk(&mut self, usage: &WireUsage) -> ChatChunk {
        let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
        let input = usage.input_tokens.map(|input| {
            input
                .saturating_add(cache_read)
                .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0))
        });
        let report = Usage::new(input.unwrap_or(0), usage.output_tokens.unwrap_or(0))
            .with_cached_tokens(cache_read);
        self.usage.merge(&report);
        ChatChunk::default().with_usage(self.usage)
    }
}

impl Decoder for AnthropicDecoder {
    const OP: &'static str = OP;

    fn event(&mut self, event: &eventsource_stream::Event) -> Result<Step, Error> {
        let data = event.data.as_str();
        let read = |err: serde_json::Error| http::malformed(OP, data, &err);
        // Without an `event:` line the name is "message": the JSON's `type` says it then.
        let kind = if event.event == "message" {
            serde_json::from_str::<Kind<'_>>(data).map_err(read)?.kind.0
        } else {
            std::borrow::Cow::Borrowed(event.event.as_str())
        };
        let step = match kind.as_ref() {
            "content_block_delta" => {
                let wire: BlockDelta<'_> = serde_json::from_str(data).map_err(read)?;
                match wire.delta.kind.as_str() {
                    "text_delta" => match non_empty(wire.delta.text) {
                        Some(text) => Step::Chunk(ChatChunk::text(text)),
                        None => Step::Skip,
                    },
                    "input_json_delta" => {
                        match (self.tool_index(wire.index), wire.delta.partial_json) {
                            (Some(index), Some(json)) if !json.as_str().is_empty() => {
                                Step::Chunk(ChatChunk::default().with_tool_call_delta(
                                    ToolCallDelta::arguments(index, json.into_string()),
                                ))
                            }
                            _ => Step::Skip,
                        }
                    }
                    // Thinking, signatures, citations: not part of the chunk.
                    _ => Step::Skip,
                }
            }
            "content_block_start" => {
                let wire: BlockStart<'_> = serde_json::from_str(data).map_err(read)?;
                let block = wire.content_block;
                match block.kind.as_str() {
                    "tool_use" => {
                        let index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                        self.tool_blocks.push(wire.index);
                        let mut delta = ToolCallDelta::start(
                            index,
                            block.id.map(Text::into_string).unwrap_or_default(),
                            block.name.map(Text::into_string).unwrap_or_default(),
                        );
                        // A start that already holds arguments (not sent by the API today).
                        if let Some(input) = block
                            .input
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            delta.arguments = input.to_string();
                        }
                        Step::Chunk(ChatChunk::default().with_tool_call_delta(delta))
                    }
                    "text" => match non_empty(block.text) {
                        Some(text) => Step::Chunk(ChatChunk::text(text)),
                        None => Step::Skip,
                    },
                    _ => Step::Skip,
                }
            }
            "message_start" => {
                let wire: MessageStart = serde_json::from_str(data).map_err(read)?;
                match wire.message.usage {
                    Some(usage) => Step::Chunk(self.usage_chunk(&usage)),
                    None => Step::Skip,
                }
            }
            "message_delta" => {
                let wire: MessageDelta<'_> = serde_json::from_str(data).map_err(read)?;
                let mut chunk = match wire.usage {
                    Some(usage) => self.usage_chunk(&usage),
                    None => ChatChunk::default(),
                };
                if let Some(reason) = wire.delta.and_then(|d| d.stop_reason) {
                    self.finished = true;
                    chunk.finish_reason = Some(FinishReason::from_provider(reason.as_str()));
                }
                if chunk.is_empty() {
                    Step::Skip
                } else {
                    Step::Chunk(chunk)
                }
            }
            "message_stop" => Step::Done,
            "error" => {
                let value: Value = serde_json::from_str(data).map_err(read)?;
                let error = value.get("error").unwrap_or(&value);
                let text = |key| error.get(key).and_then(Value::as_str).unwrap_or("");
                return Err(http::provider_error(OP, text("type"), text("message")));
            }
            // `ping`, `content_block_stop`, and event types added later.
            _ => Step::Skip,
        };
        Ok(step)
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow)]
    delta: WireDelta<'a>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default, borrow)]
    partial_json: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow)]
    content_block: WireBlock<'a>,
}

#[derive(Deserialize)]
struct WireBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    name: Option<Text<'a>>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartedMessage,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(default, borrow)]
    delta: Option<StopDelta<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct StopDelta<'a> {
    #[serde(default, borrow)]
    stop_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[allow(clippy::struct_field_names, reason = "the API's names")]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}
