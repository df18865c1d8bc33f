//! The chat schema: messages, tools, the request, the stream chunk and the assembled response.
//!
//! Every type is plain data with public fields, `Clone`, `PartialEq` and serde support, so a
//! provider builds them directly and a consumer matches on them. The JSON shape is beluga's own
//! (providers translate to and from their wire formats); optional and empty fields are left out.
//!
//! A conversation is a list of [`Message`]s; a [`ChatRequest`] sends it to a model with the
//! [`ToolDefinition`]s it may call. The model answers with a stream of [`ChatChunk`]s: text
//! deltas, [`ToolCallDelta`]s, a [`FinishReason`] and [`Usage`]. The chunks of one answer
//! assemble into a [`ChatResponse`].
//!
//! ```
//! use beluga_llm::schema::{ChatRequest, Message, ToolDefinition};
//! use serde_json::json;
//!
//! let weather = ToolDefinition::new(
//!     "get_weather",
//!     "The current weather in a city.",
//!     json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
//! );
//! let request = ChatRequest::new(
//!     "gpt-4o-mini",
//!     vec![Message::system("Be brief."), Message::user("Weather in Oslo?")],
//! )
//! .with_tools(vec![weather])
//! .with_max_tokens(200);
//!
//! let json = serde_json::to_value(&request).unwrap();
//! assert_eq!(json["messages"][1], json!({"role": "user", "content": "Weather in Oslo?"}));
//! assert_eq!(json["tools"][0]["name"], "get_weather");
//! ```

use std::fmt;

use beluga_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Who wrote a [`Message`].
///
/// ```
/// use beluga_llm::schema::{Message, Role};
/// assert_eq!(Message::user("hi").role(), Role::User);
/// assert_eq!(Role::Tool.as_str(), "tool");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `system`: instructions for the model.
    System,
    /// `user`: the person (or program) talking to the model.
    User,
    /// `assistant`: the model itself.
    Assistant,
    /// `tool`: the result of a tool the model called.
    Tool,
}

impl Role {
    /// The role's wire name: `"system"`, `"user"`, `"assistant"` or `"tool"`.
    ///
    /// ```
    /// use beluga_llm::schema::Role;
    /// assert_eq!(Role::Assistant.as_str(), "assistant");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation. Each role carries what that role can say: an assistant
/// message may hold tool calls, a tool message answers one call by its id.
///
/// In JSON the role is a `role` field beside the others:
/// `{"role": "user", "content": "hi"}`, `{"role": "tool", "call_id": "c1", "content": "18°C"}`.
///
/// ```
/// use beluga_llm::schema::{AssistantMessage, Message, Role, ToolCall, ToolResult};
/// use serde_json::json;
///
/// let call = ToolCall::new("c1", "get_weather", json!({"city": "Oslo"}));
/// let history = vec![
///     Message::system("Be brief."),
///     Message::user("Weather in Oslo?"),
///     AssistantMessage::new("").with_tool_calls(vec![call]).into(),
///     Message::tool_result("c1", "18°C, clear"),
/// ];
/// let roles: Vec<Role> = history.iter().map(Message::role).collect();
/// assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::Tool]);
/// assert_eq!(history[3].content(), "18°C, clear");
///
/// let json = serde_json::to_value(&history).unwrap();
/// assert_eq!(json[3], json!({"role": "tool", "call_id": "c1", "content": "18°C, clear"}));
/// assert_eq!(json[2]["tool_calls"][0]["arguments"], json!({"city": "Oslo"}));
/// assert_eq!(serde_json::from_value::<Vec<Message>>(json).unwrap(), history);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// Instructions for the model.
    System {
        /// The instructions.
        content: String,
    },
    /// What the user says.
    User {
        /// The text.
        content: String,
    },
    /// What the model said: text, tool calls, or both.
    Assistant(AssistantMessage),
    /// The result of one tool call, sent back to the model.
    Tool(ToolResult),
}

impl Message {
    /// A `system` message.
    ///
    /// ```
    /// use beluga_llm::schema::{Message, Role};
    /// assert_eq!(Message::system("Be brief.").role(), Role::System);
    /// ```
    pub fn system(content: impl Into<String>) -> Self {
        Message::System {
            content: content.into(),
        }
    }

    /// A `user` message.
    ///
    /// ```
    /// use beluga_llm::schema::Message;
    /// assert_eq!(Message::user("hello").content(), "hello");
    /// ```
    pub fn user(content: impl Into<String>) -> Self {
        Message::User {
            content: content.into(),
        }
    }

    /// An `assistant` message with text and no tool calls.
    ///
    /// ```
    /// use beluga_llm::schema::{Message, Role};
    /// let m = Message::assistant("Hello!");
    /// assert_eq!((m.role(), m.content()), (Role::Assistant, "Hello!"));
    /// ```
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::Assistant(AssistantMessage::new(content))
    }

    /// A `tool` message: the result of the call with id `call_id`.
    ///
    /// ```
    /// use beluga_llm::schema::{Message, Role};
    /// let m = Message::tool_result("call_1", "42");
    /// assert_eq!(m.role(), Role::Tool);
    /// ```
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message::Tool(ToolResult::new(call_id, content))
    }

    /// Who wrote the message.
    ///
    /// ```
    /// use beluga_llm::schema::{Message, Role};
    /// assert_eq!(Message::assistant("ok").role(), Role::Assistant);
    /// ```
    pub fn role(&self) -> Role {
        match self {
            Message::System { .. } => Role::System,
            Message::User { .. } => Role::User,
            Message::Assistant(_) => Role::Assistant,
            Message::Tool(_) => Role::Tool,
        }
    }

    /// The text of the message (a tool message's result text).
    ///
    /// ```
    /// use beluga_llm::schema::Message;
    /// assert_eq!(Message::system("rules").content(), "rules");
    /// ```
    pub fn content(&self) -> &str {
        match self {
            Message::System { content } | Message::User { content } => content,
            Message::Assistant(m) => &m.content,
            Message::Tool(r) => &r.content,
        }
    }

    /// The tool calls of an assistant message; empty for every other role.
    ///
    /// ```
    /// use beluga_llm::schema::{AssistantMessage, Message, ToolCall};
    /// use serde_json::json;
    /// let m: Message = AssistantMessage::new("")
    ///     .with_tool_calls(vec![ToolCall::new("c1", "now", json!({}))])
    ///     .into();
    /// assert_eq!(m.tool_calls()[0].name, "now");
    /// assert!(Message::user("hi").tool_calls().is_empty());
    /// ```
    pub fn tool_calls(&self) -> &[ToolCall] {
        match self {
            Message::Assistant(m) => &m.tool_calls,
            _ => &[],
        }
    }
}

impl From<AssistantMessage> for Message {
    fn from(message: AssistantMessage) -> Self {
        Message::Assistant(message)
    }
}

impl From<ToolResult> for Message {
    fn from(result: ToolResult) -> Self {
        Message::Tool(result)
    }
}

/// What the model said in one turn: text, tool calls, or both. The message of a
/// [`ChatResponse`], and the `assistant` variant of [`Message`].
///
/// ```
/// use beluga_llm::schema::{AssistantMessage, ToolCall};
/// use serde_json::json;
///
/// let m = AssistantMessage::new("Let me check.")
///     .with_tool_calls(vec![ToolCall::new("c1", "get_weather", json!({"city": "Oslo"}))]);
/// assert!(m.has_tool_calls());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// The text; empty when the model only called tools.
    #[serde(default)]
    pub content: String,
    /// The tools the model asked to call, in the order it produced them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl AssistantMessage {
    /// A message with this text and no tool calls.
    ///
    /// ```
    /// use beluga_llm::schema::AssistantMessage;
    /// assert_eq!(AssistantMessage::new("hi").content, "hi");
    /// ```
    pub fn new(content: impl Into<String>) -> Self {
        AssistantMessage {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// The same message with these tool calls.
    ///
    /// ```
    /// use beluga_llm::schema::{AssistantMessage, ToolCall};
    /// use serde_json::json;
    /// let m = AssistantMessage::new("").with_tool_calls(vec![ToolCall::new("c1", "now", json!({}))]);
    /// assert_eq!(m.tool_calls.len(), 1);
    /// ```
    #[must_use]
    pub fn with_tool_calls(mut self, tool_calls: Vec<ToolCall>) -> Self {
        self.tool_calls = tool_calls;
        self
    }

    /// Whether the model asked for at least one tool.
    ///
    /// ```
    /// use beluga_llm::schema::AssistantMessage;
    /// assert!(!AssistantMessage::new("done").has_tool_calls());
    /// ```
    pub fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}

/// A complete tool call: the model asks for the tool `name` with these `arguments`.
///
/// The arguments are parsed JSON; the tool-call accumulator builds a `ToolCall` only from
/// arguments that parse.
///
/// ```
/// use beluga_llm::schema::ToolCall;
/// use serde::Deserialize;
/// use serde_json::json;
///
/// #[derive(Deserialize)]
/// struct Args {
///     city: String,
/// }
///
/// let call = ToolCall::new("call_1", "get_weather", json!({"city": "Oslo"}));
/// let args: Args = call.arguments_as().unwrap();
/// assert_eq!(args.city, "Oslo");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; the [`ToolResult`] answering it carries the same id.
    /// Empty when the provider sent none.
    pub id: String,
    /// The tool's name, as in its [`ToolDefinition`].
    pub name: String,
    /// The arguments, as parsed JSON (an object for every tool with parameters).
    pub arguments: Value,
}

impl ToolCall {
    /// A tool call.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCall;
    /// use serde_json::json;
    /// let call = ToolCall::new("c1", "add", json!({"a": 1, "b": 2}));
    /// assert_eq!(call.arguments["b"], 2);
    /// ```
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }

    /// The arguments deserialized into `T`, or an `invalid_input` error naming the tool and
    /// the call.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// use beluga_llm::schema::ToolCall;
    /// use serde_json::json;
    ///
    /// let call = ToolCall::new("c1", "add", json!({"a": 1, "b": "two"}));
    /// let err = call.arguments_as::<std::collections::HashMap<String, i64>>().unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidInput);
    /// assert!(err.message().contains("`add`"));
    /// ```
    pub fn arguments_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.arguments).map_err(|err| {
            Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "the arguments of tool call `{}` (id `{}`) do not fit the tool: {err}",
                    self.name, self.id
                ),
            )
            .with_op("llm.tool_call")
        })
    }
}

/// The result of one tool call, sent back to the model as a `tool` [`Message`].
///
/// ```
/// use beluga_llm::schema::{Message, ToolResult};
/// let ok = ToolResult::new("call_1", "18°C");
/// let failed = ToolResult::error("call_2", "city not found");
/// assert!(!ok.is_error && failed.is_error);
/// let message: Message = failed.into();
/// assert_eq!(message.content(), "city not found");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the [`ToolCall`] this answers.
    pub call_id: String,
    /// What the tool returned, as text (JSON text for structured results).
    pub content: String,
    /// Whether the tool failed; `content` then says why. Providers that cannot say so send the
    /// content alone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference.
fn is_false(value: &bool) -> bool {
    !*value
}

impl ToolResult {
    /// A successful result.
    ///
    /// ```
    /// use beluga_llm::schema::ToolResult;
    /// assert_eq!(ToolResult::new("c1", "ok").call_id, "c1");
    /// ```
    pub fn new(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ToolResult {
            call_id: call_id.into(),
            content: content.into(),
            is_error: false,
        }
    }

    /// A failed call: `content` says what went wrong, for the model to read.
    ///
    /// ```
    /// use beluga_llm::schema::ToolResult;
    /// assert!(ToolResult::error("c1", "timeout").is_error);
    /// ```
    pub fn error(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ToolResult {
            is_error: true,
            ..ToolResult::new(call_id, content)
        }
    }
}

/// A tool the model may call: its name, what it does, and its parameters as a JSON schema.
///
/// ```
/// use beluga_llm::schema::ToolDefinition;
/// use serde_json::json;
///
/// let tool = ToolDefinition::new(
///     "add",
///     "Adds two integers.",
///     json!({
///         "type": "object",
///         "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
///         "required": ["a", "b"]
///     }),
/// );
/// assert_eq!(tool.parameters["required"][1], "b");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The name the model calls it by.
    pub name: String,
    /// What the tool does, for the model to decide when to call it.
    #[serde(default)]
    pub description: String,
    /// A JSON schema of the arguments (`{"type": "object", "properties": ...}`).
    pub parameters: Value,
}

impl ToolDefinition {
    /// A tool definition.
    ///
    /// ```
    /// use beluga_llm::schema::ToolDefinition;
    /// use serde_json::json;
    /// let now = ToolDefinition::new("now", "The current time.", json!({"type": "object"}));
    /// assert_eq!(now.name, "now");
    /// ```
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// Whether and which tool the model must call.
///
/// In JSON: `"auto"`, `"none"`, `"required"` or `{"tool": "name"}`.
///
/// ```
/// use beluga_llm::schema::ToolChoice;
/// assert_eq!(serde_json::to_string(&ToolChoice::Required).unwrap(), r#""required""#);
/// assert_eq!(
///     serde_json::to_string(&ToolChoice::Tool("add".into())).unwrap(),
///     r#"{"tool":"add"}"#,
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the providers' default when tools are given).
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// A request to a chat model: the conversation, the tools it may call, and sampling settings.
///
/// Build it with [`ChatRequest::new`] and the `with_` methods; every field is public too.
/// Settings left at `None` (or empty) use the provider's default.
///
/// ```
/// use beluga_llm::schema::{ChatRequest, Message, ToolChoice};
///
/// let request = ChatRequest::new("llama3.2", vec![Message::user("Name three fjords.")])
///     .with_temperature(0.2)
///     .with_max_tokens(100)
///     .with_stop(vec!["\n\n".to_owned()])
///     .with_tool_choice(ToolChoice::None);
/// assert_eq!(request.messages.len(), 1);
/// assert_eq!(request.temperature, Some(0.2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model's name at the provider (`"gpt-4o-mini"`, `"claude-sonnet-4-5"`); empty uses
    /// the model the provider was configured with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The most tokens the answer may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sequences that end the answer when the model produces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// A request for `model` with these messages and no tools.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatRequest, Message};
    /// let request = ChatRequest::new("gpt-4o-mini", vec![Message::user("hi")]);
    /// assert_eq!(request.model, "gpt-4o-mini");
    /// assert!(request.tools.is_empty());
    /// ```
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            ..ChatRequest::default()
        }
    }

    /// The same request with these tools.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatRequest, ToolDefinition};
    /// use serde_json::json;
    /// let tool = ToolDefinition::new("now", "The time.", json!({"type": "object"}));
    /// let request = ChatRequest::new("m", vec![]).with_tools(vec![tool]);
    /// assert_eq!(request.tools.len(), 1);
    /// ```
    #[must_use]
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// The same request with this tool choice.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatRequest, ToolChoice};
    /// let request = ChatRequest::new("m", vec![]).with_tool_choice(ToolChoice::Required);
    /// assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    /// ```
    #[must_use]
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// The same request with this sampling temperature.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// assert_eq!(ChatRequest::new("m", vec![]).with_temperature(0.0).temperature, Some(0.0));
    /// ```
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The same request with this limit on the answer's tokens.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// assert_eq!(ChatRequest::new("m", vec![]).with_max_tokens(64).max_tokens, Some(64));
    /// ```
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// The same request with these stop sequences.
    ///
    /// ```
    /// use beluga_llm::schema::ChatRequest;
    /// let request = ChatRequest::new("m", vec![]).with_stop(vec!["END".to_owned()]);
    /// assert_eq!(request.stop, ["END"]);
    /// ```
    #[must_use]
    pub fn with_stop(mut self, stop: Vec<String>) -> Self {
        self.stop = stop;
        self
    }
}

/// A piece of a tool call as it streams: providers send the id and name first, then the
/// arguments' JSON text in fragments.
///
/// `index` says which call of the answer a piece belongs to, so parallel calls can interleave.
/// A piece with an `id` other than the one its index holds starts a new call there (some
/// gateways reuse index 0 for every call). Providers that send no index use 0 and rely on the
/// ids. [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls) assembles the
/// pieces into [`ToolCall`]s.
///
/// ```
/// use beluga_llm::schema::ToolCallDelta;
/// let first = ToolCallDelta::start(0, "call_1", "get_weather");
/// let more = ToolCallDelta::arguments(0, r#"{"city":"#);
/// assert_eq!(first.id.as_deref(), Some("call_1"));
/// assert_eq!(more.arguments, r#"{"city":"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Which call of the answer this piece belongs to.
    #[serde(default)]
    pub index: u32,
    /// The call's id, on the piece that starts it (repeating it is harmless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's name, on the piece that starts the call (repeating it is harmless; pieces
    /// of a name sent in fragments are joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next fragment of the arguments' JSON text; may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arguments: String,
}

impl ToolCallDelta {
    /// The piece that starts call `index`: its id and the tool's name.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// let d = ToolCallDelta::start(1, "call_2", "add");
    /// assert_eq!((d.index, d.name.as_deref()), (1, Some("add")));
    /// ```
    pub fn start(index: u32, id: impl Into<String>, name: impl Into<String>) -> Self {
        ToolCallDelta {
            index,
            id: Some(id.into()),
            name: Some(name.into()),
            arguments: String::new(),
        }
    }

    /// A fragment of call `index`'s arguments.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// let d = ToolCallDelta::arguments(0, "{}");
    /// assert_eq!(d.id, None);
    /// ```
    pub fn arguments(index: u32, fragment: impl Into<String>) -> Self {
        ToolCallDelta {
            index,
            arguments: fragment.into(),
            ..ToolCallDelta::default()
        }
    }

    /// The same piece with this arguments fragment.
    ///
    /// ```
    /// use beluga_llm::schema::ToolCallDelta;
    /// let d = ToolCallDelta::start(0, "c1", "now").with_arguments("{}");
    /// assert_eq!(d.arguments, "{}");
    /// ```
    #[must_use]
    pub fn with_arguments(mut self, fragment: impl Into<String>) -> Self {
        self.arguments = fragment.into();
        self
    }
}

/// Why the model stopped.
///
/// Serialized as a string: `"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`, or the
/// provider's own word for anything else. [`FinishReason::from_provider`] maps the names
/// providers use onto these; deserializing does the same.
///
/// A stream that ends without any finish reason was cut off: `generate` reports it as a
/// truncated answer, not as a success (see [`crate::error`]).
///
/// ```
/// use beluga_llm::schema::FinishReason;
/// assert_eq!(FinishReason::from_provider("end_turn"), FinishReason::Stop);
/// assert_eq!(FinishReason::from_provider("tool_use"), FinishReason::ToolCalls);
/// assert_eq!(FinishReason::from_provider("pause_turn"), FinishReason::Other("pause_turn".into()));
/// assert_eq!(serde_json::to_string(&FinishReason::Length).unwrap(), r#""length""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// `stop`: the answer is complete (or a stop sequence was produced).
    Stop,
    /// `length`: the answer hit the token limit.
    Length,
    /// `tool_calls`: the model stopped to have tools called.
    ToolCalls,
    /// `content_filter`: the provider withheld content, or the model refused.
    ContentFilter,
    /// Any other reason, in the provider's words.
    Other(String),
}

impl FinishReason {
    /// Maps a provider's finish or stop reason (case-insensitively) onto a `FinishReason`:
    ///
    /// | provider's words | reason |
    /// |---|---|
    /// | `stop`, `end_turn`, `stop_sequence`, `eos` | [`Stop`](FinishReason::Stop) |
    /// | `length`, `max_tokens`, `model_length`, `model_context_window_exceeded` | [`Length`](FinishReason::Length) |
    /// | `tool_calls`, `tool_use`, `function_call` | [`ToolCalls`](FinishReason::ToolCalls) |
    /// | `content_filter`, `refusal`, `safety` | [`ContentFilter`](FinishReason::ContentFilter) |
    /// | anything else | [`Other`](FinishReason::Other), as written |
    ///
    /// ```
    /// use beluga_llm::schema::FinishReason;
    /// assert_eq!(FinishReason::from_provider("MAX_TOKENS"), FinishReason::Length);
    /// assert_eq!(FinishReason::from_provider("refusal"), FinishReason::ContentFilter);
    /// ```
    pub fn from_provider(reason: &str) -> Self {
        const TABLE: &[(&str, FinishReason)] = &[
            ("stop", FinishReason::Stop),
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("eos", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("max_tokens", FinishReason::Length),
            ("model_length", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("tool_use", FinishReason::ToolCalls),
            ("function_call", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("refusal", FinishReason::ContentFilter),
            ("safety", FinishReason::ContentFilter),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(reason))
            .map_or_else(
                || FinishReason::Other(reason.to_owned()),
                |(_, r)| r.clone(),
            )
    }

    /// The reason's name: `"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`, or the
    /// provider's words for [`Other`](FinishReason::Other).
    ///
    /// ```
    /// use beluga_llm::schema::FinishReason;
    /// assert_eq!(FinishReason::ToolCalls.as_str(), "tool_calls");
    /// assert_eq!(FinishReason::Other("pause_turn".into()).as_str(), "pause_turn");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(reason) => reason,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FinishReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FinishReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let reason = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(FinishReason::from_provider(&reason))
    }
}

/// Token counts of one call.
///
/// `cached_tokens` are the input tokens served from the provider's prompt cache and are
/// included in `input_tokens`; `reasoning_tokens` are the output tokens spent on hidden
/// reasoning and are included in `output_tokens`. Providers that count otherwise (Anthropic
/// reports cache reads beside its input tokens) are converted to these meanings.
///
/// Counts in a stream are running totals: a later report of the same call supersedes an
/// earlier one, field by field ([`Usage::merge`]).
///
/// ```
/// use beluga_llm::schema::Usage;
/// let usage = Usage::new(1_200, 80).with_cached_tokens(1_024).with_reasoning_tokens(32);
/// assert_eq!(usage.total_tokens(), 1_280);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the request (prompt), cached ones included.
    #[serde(default)]
    pub input_tokens: u64,
    /// Tokens of the answer, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Input and output counts, nothing cached, no reasoning.
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// assert_eq!(Usage::new(10, 2).output_tokens, 2);
    /// ```
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }

    /// The same counts with this many cached input tokens.
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// assert_eq!(Usage::new(10, 2).with_cached_tokens(8).cached_tokens, 8);
    /// ```
    #[must_use]
    pub fn with_cached_tokens(mut self, cached_tokens: u64) -> Self {
        self.cached_tokens = cached_tokens;
        self
    }

    /// The same counts with this many reasoning tokens.
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// assert_eq!(Usage::new(10, 2).with_reasoning_tokens(1).reasoning_tokens, 1);
    /// ```
    #[must_use]
    pub fn with_reasoning_tokens(mut self, reasoning_tokens: u64) -> Self {
        self.reasoning_tokens = reasoning_tokens;
        self
    }

    /// Input plus output tokens (saturating).
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// assert_eq!(Usage::new(10, 2).total_tokens(), 12);
    /// ```
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Folds a later report of the same call into this one. Reports are running totals, so
    /// each field keeps the larger count: a report that carries only the output tokens (zero
    /// input) does not erase the input tokens reported before.
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// let mut usage = Usage::new(100, 1); // at the start: the prompt
    /// usage.merge(&Usage::new(0, 57)); // at the end: the answer
    /// assert_eq!(usage, Usage::new(100, 57));
    /// ```
    pub fn merge(&mut self, later: &Usage) {
        self.input_tokens = self.input_tokens.max(later.input_tokens);
        self.output_tokens = self.output_tokens.max(later.output_tokens);
        self.cached_tokens = self.cached_tokens.max(later.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(later.reasoning_tokens);
    }
}

/// One item of a chat model's stream: the payload of its events.
///
/// A provider's `data` events carry what the model sent: a text delta, tool-call pieces, and
/// on the last chunks the finish reason and the usage (any of them may be empty). After
/// [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls), each completed call
/// is a `tool_call` event whose chunk holds it in [`tool_call`](ChatChunk::tool_call), and
/// the pieces are gone from the `data` chunks. A `tool_result` event's chunk holds a
/// [`ToolResult`] in [`tool_result`](ChatChunk::tool_result), for streams that also carry the
/// results of the calls (an agent loop's).
///
/// A provider builds its chunks with the constructors, or with field syntax and
/// `..ChatChunk::default()`, so that fields added later need no change.
///
/// ```
/// use beluga_core::Event;
/// use beluga_llm::schema::{ChatChunk, FinishReason, ToolCallDelta, Usage};
///
/// let events = [
///     Event::data(ChatChunk::text("Hel")),
///     Event::data(ChatChunk::text("lo")),
///     Event::data(ChatChunk::default().with_tool_call_delta(ToolCallDelta::start(0, "c1", "now"))),
///     Event::data(ChatChunk::finished(FinishReason::ToolCalls).with_usage(Usage::new(9, 3))),
///     Event::done(),
/// ];
/// let text: String = events.iter().filter_map(|e| e.payload()).map(|c| c.delta.as_str()).collect();
/// assert_eq!(text, "Hello");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The next piece of the answer's text; empty when this chunk carries none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delta: String,
    /// Pieces of tool calls, by index and id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_call_deltas: Vec<ToolCallDelta>,
    /// Why the model stopped, on the chunk that says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Token counts so far, on the chunks that report them (running totals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// A completed tool call, on `tool_call` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCall>,
    /// A tool's result, on `tool_result` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<ToolResult>,
}

impl ChatChunk {
    /// A chunk with a text delta.
    ///
    /// ```
    /// use beluga_llm::schema::ChatChunk;
    /// assert_eq!(ChatChunk::text("Hi").delta, "Hi");
    /// ```
    pub fn text(delta: impl Into<String>) -> Self {
        ChatChunk {
            delta: delta.into(),
            ..ChatChunk::default()
        }
    }

    /// A chunk that carries the finish reason.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// assert_eq!(ChatChunk::finished(FinishReason::Stop).finish_reason, Some(FinishReason::Stop));
    /// ```
    pub fn finished(reason: FinishReason) -> Self {
        ChatChunk {
            finish_reason: Some(reason),
            ..ChatChunk::default()
        }
    }

    /// The chunk of a `tool_call` event: one completed call.
    ///
    /// ```
    /// use beluga_core::Event;
    /// use beluga_llm::schema::{ChatChunk, ToolCall};
    /// use serde_json::json;
    /// let event = Event::tool_call(ChatChunk::from_tool_call(ToolCall::new("c1", "now", json!({}))));
    /// assert_eq!(event.payload().and_then(|c| c.tool_call.as_ref()).map(|c| c.name.as_str()), Some("now"));
    /// ```
    pub fn from_tool_call(call: ToolCall) -> Self {
        ChatChunk {
            tool_call: Some(call),
            ..ChatChunk::default()
        }
    }

    /// The chunk of a `tool_result` event: one tool's result.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, ToolResult};
    /// let chunk = ChatChunk::from_tool_result(ToolResult::new("c1", "12:00"));
    /// assert_eq!(chunk.tool_result.unwrap().content, "12:00");
    /// ```
    pub fn from_tool_result(result: ToolResult) -> Self {
        ChatChunk {
            tool_result: Some(result),
            ..ChatChunk::default()
        }
    }

    /// The same chunk with one more tool-call piece.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, ToolCallDelta};
    /// let chunk = ChatChunk::default().with_tool_call_delta(ToolCallDelta::arguments(0, "{}"));
    /// assert_eq!(chunk.tool_call_deltas.len(), 1);
    /// ```
    #[must_use]
    pub fn with_tool_call_delta(mut self, delta: ToolCallDelta) -> Self {
        self.tool_call_deltas.push(delta);
        self
    }

    /// The same chunk with this finish reason.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// let chunk = ChatChunk::text(".").with_finish_reason(FinishReason::Stop);
    /// assert_eq!(chunk.finish_reason, Some(FinishReason::Stop));
    /// ```
    #[must_use]
    pub fn with_finish_reason(mut self, reason: FinishReason) -> Self {
        self.finish_reason = Some(reason);
        self
    }

    /// The same chunk with these token counts.
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, Usage};
    /// let chunk = ChatChunk::default().with_usage(Usage::new(5, 1));
    /// assert_eq!(chunk.usage.map(|u| u.total_tokens()), Some(6));
    /// ```
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Whether the chunk carries nothing at all.
    ///
    /// ```
    /// use beluga_llm::schema::ChatChunk;
    /// assert!(ChatChunk::default().is_empty());
    /// assert!(!ChatChunk::text("x").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.delta.is_empty()
            && self.tool_call_deltas.is_empty()
            && self.finish_reason.is_none()
            && self.usage.is_none()
            && self.tool_call.is_none()
            && self.tool_result.is_none()
    }
}

/// The assembled answer of one call: the assistant's message, why the model stopped, and the
/// token counts (when the provider reported them).
///
/// `generate` builds it from the stream; see [`ChatModelExt::generate`](crate::ChatModelExt::generate).
///
/// ```
/// use beluga_llm::schema::{AssistantMessage, ChatResponse, FinishReason, Message, Usage};
///
/// let response = ChatResponse {
///     message: AssistantMessage::new("Hello!"),
///     finish_reason: FinishReason::Stop,
///     usage: Some(Usage::new(12, 3)),
/// };
/// assert_eq!(response.text(), "Hello!");
/// let mut history = vec![Message::user("hi")];
/// history.push(response.into_message());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// What the model said.
    pub message: AssistantMessage,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// The token counts, when the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// The answer's text.
    ///
    /// ```
    /// use beluga_llm::schema::{AssistantMessage, ChatResponse, FinishReason};
    /// let r = ChatResponse { message: AssistantMessage::new("ok"), finish_reason: FinishReason::Stop, usage: None };
    /// assert_eq!(r.text(), "ok");
    /// ```
    pub fn text(&self) -> &str {
        &self.message.content
    }

    /// The tool calls the model asked for.
    ///
    /// ```
    /// use beluga_llm::schema::{AssistantMessage, ChatResponse, FinishReason};
    /// let r = ChatResponse { message: AssistantMessage::new("ok"), finish_reason: FinishReason::Stop, usage: None };
    /// assert!(r.tool_calls().is_empty());
    /// ```
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.message.tool_calls
    }

    /// The assistant's message, to append to the conversation.
    ///
    /// ```
    /// use beluga_llm::schema::{AssistantMessage, ChatResponse, FinishReason, Role};
    /// let r = ChatResponse { message: AssistantMessage::new("ok"), finish_reason: FinishReason::Stop, usage: None };
    /// assert_eq!(r.into_message().role(), Role::Assistant);
    /// ```
    pub fn into_message(self) -> Message {
        Message::Assistant(self.message)
    }
}
