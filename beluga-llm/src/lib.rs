//! Chat models for beluga: the chat schema, a [`ChatModel`] runnable whose `generate` is
//! assembled from its stream, tool-call accumulation for any chunk stream, hooks on the stream
//! path, and a scripted model for offline examples and tests.
//!
//! * [`schema`]: messages with their roles, tool calls and results, tool definitions, the
//!   [`ChatRequest`], the streamed [`ChatChunk`] (text delta, tool-call deltas,
//!   [`FinishReason`], [`Usage`]) and the assembled [`ChatResponse`].
//! * [`ChatModel`]: any [`Runnable`](beluga_core::Runnable) from a `ChatRequest` to `ChatChunk`
//!   events, so `pipe`, `parallel`, `batch` and `#[derive(Runnable)]` apply.
//!   [`ChatModelExt::generate`] drives the stream into a `ChatResponse` (a stream that ends
//!   without a finish reason is a [truncated](error::truncated) answer, an error), and
//!   [`ChatModelExt::with_hooks`] puts [`ChatHooks`] on the stream path; with the `tracing`
//!   feature, `ChatModelExt::traced` opens one `tracing` span per call with OpenTelemetry's
//!   GenAI attribute names (see the `trace` module).
//! * [`ChatStreamExt`] for any chunk stream:
//!   [`accumulate_tool_calls`](ChatStreamExt::accumulate_tool_calls) turns tool-call pieces
//!   into one `tool_call` event per call (or an `error` event for invalid JSON), and
//!   [`collect_response`](ChatStreamExt::collect_response) assembles the answer.
//! * [`scripted`]: [`ScriptedModel`](scripted::ScriptedModel) replays scripted turns, with
//!   optional per-token delays on Tokio's clock.
//! * Providers over HTTP (the `http` feature, on by default):
//!   [`OpenAiCompatible`](openai::OpenAiCompatible) for the OpenAI chat-completions stream
//!   (OpenAI, Ollama, vLLM, llama.cpp's server, mistral.rs, LM Studio, most gateways) and
//!   [`Anthropic`](anthropic::Anthropic) for Anthropic's Messages stream, read on the
//!   consumer's task; [`http`] maps their failures onto beluga's error codes.
//!
//! This crate depends on `beluga-core`, serde and `serde_json`, and with the `http` feature on
//! `reqwest` (rustls), `eventsource-stream`, `bytes` and `httpdate`. Without the feature it
//! knows no HTTP: `default-features = false` keeps the schema, the model trait and the
//! scripted model alone. The `tracing` feature (off by default) adds `tracing`.
//!
//! # Talking to a real model
//!
//! ```no_run
//! use beluga_core::Context;
//! use beluga_llm::openai::OpenAiCompatible;
//! use beluga_llm::schema::{ChatRequest, Message};
//! use beluga_llm::ChatModelExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! let model = OpenAiCompatible::new("http://localhost:11434/v1", "llama3.2"); // Ollama
//! // let model = OpenAiCompatible::openai("gpt-4o-mini").with_api_key(key);
//! // let model = beluga_llm::anthropic::Anthropic::new("claude-sonnet-4-5").with_api_key(key);
//! let request = ChatRequest::new("", vec![Message::user("Name three fjords.")]);
//! let answer = model.generate(Context::new(), request).await?;
//! println!("{} ({:?})", answer.text(), answer.usage);
//! # Ok(())
//! # }
//! ```
//!
//! The modules form layers, each importing only from those before it: [`schema`], [`error`],
//! [`tool_calls`], the response builder, the stream methods, [`hooks`], `trace` (feature
//! `tracing`), the model traits, and [`scripted`].
//!
//! # Example
//!
//! A scripted model asks for a tool; the consumer streams the text as it comes, runs the tool
//! when its call is complete, and sends the result back.
//!
//! ```
//! use beluga_core::{Context, EventKind, Runnable};
//! use beluga_llm::schema::{ChatRequest, Message, ToolDefinition};
//! use beluga_llm::scripted::{ScriptedModel, Turn};
//! use beluga_llm::{ChatModelExt, ChatStreamExt};
//! use futures_util::StreamExt;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), beluga_core::Error> {
//! let model = ScriptedModel::new([
//!     Turn::text("Let me check.").with_tool_call("call_1", "get_weather", json!({"city": "Oslo"})),
//!     Turn::text("It is 18°C and clear in Oslo."),
//! ]);
//! let weather = ToolDefinition::new(
//!     "get_weather",
//!     "The current weather in a city.",
//!     json!({"type": "object", "properties": {"city": {"type": "string"}}}),
//! );
//! let mut messages = vec![Message::user("Weather in Oslo?")];
//! let request = ChatRequest::new("", messages.clone()).with_tools(vec![weather.clone()]);
//!
//! // Stream the first answer: text as it comes, each tool call once complete.
//! let mut stream = std::pin::pin!(model.stream(Context::new(), request).accumulate_tool_calls());
//! let mut calls = Vec::new();
//! while let Some(event) = stream.next().await {
//!     match event?.into_kind() {
//!         EventKind::Data(chunk) => print!("{}", chunk.delta),
//!         EventKind::ToolCall(chunk) => calls.extend(chunk.tool_call),
//!         EventKind::Error(err) => return Err(err),
//!         _ => {}
//!     }
//! }
//! assert_eq!(calls[0].arguments["city"], "Oslo");
//!
//! // Run the tool, send the result, and take the second answer whole.
//! messages.push(Message::Assistant(beluga_llm::AssistantMessage::new("Let me check.").with_tool_calls(calls)));
//! messages.push(Message::tool_result("call_1", "18°C, clear"));
//! let request = ChatRequest::new("", messages).with_tools(vec![weather]);
//! let answer = model.generate(Context::new(), request).await?;
//! assert_eq!(answer.text(), "It is 18°C and clear in Oslo.");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

#[cfg(feature = "http")]
pub mod anthropic;
pub mod error;
pub mod hooks;
#[cfg(feature = "http")]
pub mod http;
mod model;
#[cfg(feature = "http")]
pub mod openai;
mod response;
pub mod schema;
pub mod scripted;
mod stream_ext;
pub mod tool_calls;
#[cfg(feature = "tracing")]
pub mod trace;
#[cfg(feature = "http")]
mod wire;

pub use crate::hooks::{ChatHooks, DoneInfo, Hooks, WithHooks};
pub use crate::model::{BoxChatModel, ChatModel, ChatModelExt};
pub use crate::response::ResponseBuilder;
pub use crate::schema::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, FinishReason, Message, Role, ToolCall,
    ToolCallDelta, ToolChoice, ToolDefinition, ToolResult, Usage,
};
pub use crate::stream_ext::ChatStreamExt;
pub use crate::tool_calls::{AccumulateToolCalls, PartialToolCall, ToolCallAccumulator};
#[cfg(feature = "tracing")]
pub use crate::trace::{ChatSpan, TracedModel};
