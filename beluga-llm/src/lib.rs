//! Chat models for beluga: the chat schema, and (in the modules to come) a `ChatModel`
//! runnable, tool-call accumulation, hooks and a scripted model.
//!
//! * [`schema`]: messages with their roles, tool calls and results, tool definitions, the
//!   [`ChatRequest`], the streamed [`ChatChunk`] (text
//!   delta, tool-call deltas, [`FinishReason`], [`Usage`])
//!   and the assembled [`ChatResponse`].
//!
//! This crate depends on `beluga-core`, serde and `serde_json`; it knows no HTTP. Providers
//! that speak to a model over the network build on it.
//!
//! # Example
//!
//! ```
//! use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message};
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![Message::user("Say hello.")]);
//! let chunks = [ChatChunk::text("Hel"), ChatChunk::text("lo"), ChatChunk::finished(FinishReason::Stop)];
//! let text: String = chunks.iter().map(|c| c.delta.as_str()).collect();
//! assert_eq!((request.messages.len(), text.as_str()), (1, "Hello"));
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod schema;

pub use crate::schema::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, FinishReason, Message, Role, ToolCall,
    ToolCallDelta, ToolChoice, ToolDefinition, ToolResult, Usage,
};
