//! [`OpenAiChunks`]: a chat stream as OpenAI chat-completions chunks.

use std::time::{SystemTime, UNIX_EPOCH};

use beluga_core::{Error, Event, EventKind, Meta};
use beluga_llm::schema::{ChatChunk, FinishReason, ToolCall, ToolCallDelta, Usage};
use serde::Serialize;

use crate::encoding::{Encoding, random_hex};
use crate::frame::Frame;

/// OpenAI's chat-completions stream: `chat.completion.chunk` objects and `data: [DONE]`, so
/// that any OpenAI client library reads a beluga chat stream as it reads OpenAI's.
///
/// For a stream of [`ChatChunk`] events:
///
/// * a `data` chunk becomes one `chat.completion.chunk` whose `choices[0].delta` has the text
///   (`content`) and the tool-call pieces (`tool_calls`, with `index`, `id`, `type`,
///   `function.name` and `function.arguments`), and whose `finish_reason` is the chunk's (a
///   reason outside OpenAI's `stop`, `length`, `tool_calls`, `content_filter` is sent as
///   `stop`); the first chunk's delta also has `"role":"assistant"`;
/// * usage becomes a chunk of its own with empty `choices` and `usage` (`prompt_tokens`,
///   `completion_tokens`, `total_tokens`, the cached and reasoning token details), as OpenAI
///   sends it with `stream_options.include_usage`; a `done` event's token counts
///   ([`Event::with_tokens`]) are sent that way when no chunk carried usage;
/// * a `tool_call` event (a completed [`ToolCall`]) becomes one tool-call piece with the whole
///   arguments, unless the call's pieces were sent already;
/// * `done` (its final chunk first, if it has one) is followed by `data: [DONE]`;
/// * the terminal error is `data: {"error":{"message":…,"type":…,"param":null,"code":…}}`,
///   with the beluga code as `type` and `code`, and no `[DONE]`, which OpenAI clients raise as
///   an API error;
/// * `tool_result`, `handoff` and reported `error` events have no place in this format and are
///   left out; a stream that ends without a terminal item ends without `[DONE]`, so a client
///   can tell it was cut short.
///
/// ```
/// use beluga_core::Event;
/// use beluga_llm::schema::ChatChunk;
/// use beluga_sse::{Encoding, Frame};
/// use beluga_sse::encoding::OpenAiChunks;
///
/// let mut openai = OpenAiChunks::new("gpt-4o-mini").with_id("chatcmpl-1").with_created(1_700_000_000);
/// let mut frames = Vec::new();
/// openai.event(&Event::data(ChatChunk::text("Hi")), &mut frames).unwrap();
/// openai.event(&Event::done(), &mut frames).unwrap();
/// assert_eq!(frames, [
///     Frame::message(r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#),
///     Frame::message("[DONE]"),
/// ]);
/// ```
#[derive(Clone, Debug)]
pub struct OpenAiChunks {
    id: String,
    model: String,
    created: u64,
    /// The role goes on the first chunk only.
    role_sent: bool,
    /// The index of the next call sent whole: after every index sent so far.
    next_call: u32,
    /// The ids of the calls sent so far, in pieces or whole.
    sent_calls: Vec<String>,
    usage_sent: bool,
}

impl OpenAiChunks {
    /// The chunks of one answer of `model`, with a random `chatcmpl-…` id and the current time
    /// as `created`.
    ///
    /// ```
    /// let openai = beluga_sse::encoding::OpenAiChunks::new("llama3");
    /// # drop(openai);
    /// ```
    pub fn new(model: impl Into<String>) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        OpenAiChunks {
            id: format!("chatcmpl-{}", random_hex()),
            model: model.into(),
            created,
            role_sent: false,
            next_call: 0,
            sent_calls: Vec::new(),
            usage_sent: false,
        }
    }

    /// Sets the chunks' `id`.
    ///
    /// ```
    /// let openai = beluga_sse::encoding::OpenAiChunks::new("m").with_id("chatcmpl-42");
    /// # drop(openai);
    /// ```
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the chunks' `created` time, in seconds since the Unix epoch.
    ///
    /// ```
    /// let openai = beluga_sse::encoding::OpenAiChunks::new("m").with_created(0);
    /// # drop(openai);
    /// ```
    #[must_use]
    pub fn with_created(mut self, unix_seconds: u64) -> Self {
        self.created = unix_seconds;
        self
    }

    fn frame(&self, choices: Vec<Choice<'_>>, usage: Option<UsageRepr>) -> Frame {
        let chunk = ChunkRepr {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        // Strings, numbers and the arguments' JSON value: this does not fail.
        Frame::message(serde_json::to_string(&chunk).unwrap_or_default())
    }

    fn chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<Frame>) {
        for piece in &chunk.tool_call_deltas {
            self.next_call = self.next_call.max(piece.index.saturating_add(1));
            if let Some(id) = piece.id.as_ref().filter(|id| !self.sent_calls.contains(id)) {
                self.sent_calls.push(id.clone());
            }
        }
        let tool_calls: Vec<ToolCallRepr<'_>> = chunk
            .tool_call_deltas
            .iter()
            .map(ToolCallRepr::from)
            .collect();
        if !chunk.delta.is_empty() || !tool_calls.is_empty() || chunk.finish_reason.is_some() {
            let delta = DeltaRepr {
                role: self.role(),
                content: (!chunk.delta.is_empty()).then_some(chunk.delta.as_str()),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            };
            let choice = Choice {
                index: 0,
                delta,
                finish_reason: chunk.finish_reason.as_ref().map(openai_reason),
            };
            out.push(self.frame(vec![choice], None));
        }
        if let Some(usage) = &chunk.usage {
            self.usage(usage, out);
        }
    }

    fn tool_call(&mut self, call: &ToolCall, out: &mut Vec<Frame>) {
        if self.sent_calls.contains(&call.id) {
            // Its pieces went out already: a client assembles it from them.
            return;
        }
        self.sent_calls.push(call.id.clone());
        let arguments = serde_json::to_string(&call.arguments).unwrap_or_default();
        let piece = ToolCallRepr {
            index: self.next_call,
            id: Some(&call.id),
            kind: Some("function"),
            function: FunctionRepr {
                name: Some(&call.name),
                arguments: &arguments,
            },
        };
        self.next_call = self.next_call.saturating_add(1);
        let delta = DeltaRepr {
            role: self.role(),
            content: None,
            tool_calls: Some(vec![piece]),
        };
        let choice = Choice {
            index: 0,
            delta,
            finish_reason: None,
        };
        out.push(self.frame(vec![choice], None));
    }

    fn usage(&mut self, usage: &Usage, out: &mut Vec<Frame>) {
        self.usage_sent = true;
        out.push(self.frame(Vec::new(), Some(UsageRepr::from(usage))));
    }

    fn role(&mut self) -> Option<&'static str> {
        (!std::mem::replace(&mut self.role_sent, true)).then_some("assistant")
    }
}

impl Encoding<ChatChunk> for OpenAiChunks {
    fn event(&mut self, event: &Event<ChatChunk>, out: &mut Vec<Frame>) -> Result<(), Error> {
        match event.kind() {
            EventKind::Data(chunk) => self.chunk(chunk, out),
            EventKind::ToolCall(chunk) => match &chunk.tool_call {
                Some(call) => self.tool_call(call, out),
                None => self.chunk(chunk, out),
            },
            EventKind::ToolResult(_) | EventKind::Handoff(_) | EventKind::Error(_) => {}
            EventKind::Done(last) => {
                if let Some(chunk) = last {
                    self.chunk(chunk, out);
                }
                if let Some(usage) = meta_usage(event.meta()).filter(|_| !self.usage_sent) {
                    self.usage(&usage, out);
                }
                out.push(Frame::message("[DONE]"));
            }
        }
        Ok(())
    }

    fn error(&mut self, error: &Error, out: &mut Vec<Frame>) {
        let body = ErrorBody {
            error: ErrorRepr {
                message: error.to_string(),
                kind: error.code().as_str(),
                param: None,
                code: error.code().as_str(),
            },
        };
        out.push(Frame::message(
            serde_json::to_string(&body).unwrap_or_default(),
        ));
    }

    fn cut(&mut self, _out: &mut Vec<Frame>) {}
}

/// The usage in a `done` event's metadata, if it has both token counts.
pub(crate) fn meta_usage(meta: &Meta) -> Option<Usage> {
    Some(Usage::new(meta.input_tokens()?, meta.output_tokens()?))
}

/// OpenAI's name for a finish reason; one it does not have is `stop`.
fn openai_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

#[derive(Serialize)]
struct ChunkRepr<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageRepr>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: DeltaRepr<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct DeltaRepr<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallRepr<'a>>>,
}

#[derive(Serialize)]
struct ToolCallRepr<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionRepr<'a>,
}

impl<'a> From<&'a ToolCallDelta> for ToolCallRepr<'a> {
    fn from(delta: &'a ToolCallDelta) -> Self {
        ToolCallRepr {
            index: delta.index,
            id: delta.id.as_deref(),
            kind: delta.id.is_some().then_some("function"),
            function: FunctionRepr {
                name: delta.name.as_deref(),
                arguments: &delta.arguments,
            },
        }
    }
}

#[derive(Serialize)]
struct FunctionRepr<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct UsageRepr {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<CachedRepr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningRepr>,
}

#[derive(Serialize)]
struct CachedRepr {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningRepr {
    reasoning_tokens: u64,
}

impl From<&Usage> for UsageRepr {
    fn from(usage: &Usage) -> Self {
        UsageRepr {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens(),
            prompt_tokens_details: (usage.cached_tokens > 0).then_some(CachedRepr {
                cached_tokens: usage.cached_tokens,
            }),
            completion_tokens_details: (usage.reasoning_tokens > 0).then_some(ReasoningRepr {
                reasoning_tokens: usage.reasoning_tokens,
            }),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorRepr,
}

#[derive(Serialize)]
struct ErrorRepr {
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<()>,
    code: &'static str,
}
