//! [`VercelUiStream`]: a chat stream as the Vercel AI SDK's UI message stream (v1).

use beluga_core::{Error, Event, EventKind};
use beluga_llm::schema::{ChatChunk, FinishReason, ToolCall, ToolCallDelta, ToolResult, Usage};
use serde::Serialize;
use serde_json::Value;

use crate::encoding::openai::meta_usage;
use crate::encoding::{Encoding, random_hex};
use crate::frame::Frame;

/// The Vercel AI SDK's UI message stream, protocol v1 (AI SDK 5 and later), so that a
/// `useChat` front end reads a beluga chat stream unchanged.
///
/// The response carries `x-vercel-ai-ui-message-stream: v1`. Each part is one unnamed frame
/// whose data is the part's JSON, and the stream ends with `data: [DONE]`. For a stream of
/// [`ChatChunk`] events:
///
/// * the first event opens the message (`start` with its `messageId`) and a step
///   (`start-step`);
/// * text deltas are a text part: `text-start`, `text-delta`s, `text-end` (closed by a tool
///   call, a finish reason or the end), with ids `text-1`, `text-2`, …;
/// * tool-call pieces are `tool-input-start` and `tool-input-delta`s; a finish reason or the
///   completed call (a `tool_call` event) makes the input available
///   (`tool-input-available` with the parsed arguments), once per call;
/// * a `tool_result` event is `tool-output-available` (or `tool-output-error` for a failed
///   tool) in the same step;
/// * a finish reason ends the step: content after it starts a new one (`finish-step`,
///   `start-step`), as the AI SDK's own multi-step answers do;
/// * `done` closes what is open and sends `finish`, with `messageMetadata` holding the
///   `finishReason` (in the AI SDK's words: `stop`, `length`, `tool-calls`,
///   `content-filter`, `other`) and the `usage` (`inputTokens`, `outputTokens`,
///   `totalTokens`, from the chunks or the `done` event's token counts) when known;
/// * a reported `error` event and the terminal error are `error` parts; a stream that ends
///   without a terminal item ends with `abort`. Then `[DONE]`.
///
/// Error texts reach the browser: by default an error's `Display`
/// (`op [code]: message`, without its causes). [`with_error_text`](Self::with_error_text)
/// changes that, to hide internal details for one.
///
/// ```
/// use beluga_core::Event;
/// use beluga_llm::schema::ChatChunk;
/// use beluga_sse::{Encoding, Frame};
/// use beluga_sse::encoding::VercelUiStream;
///
/// let mut ui = VercelUiStream::new().with_message_id("msg-1");
/// let mut frames = Vec::new();
/// ui.event(&Event::data(ChatChunk::text("Hi")), &mut frames).unwrap();
/// ui.event(&Event::done(), &mut frames).unwrap();
/// let data: Vec<&str> = frames.iter().map(Frame::data).collect();
/// assert_eq!(data, [
///     r#"{"type":"start","messageId":"msg-1"}"#,
///     r#"{"type":"start-step"}"#,
///     r#"{"type":"text-start","id":"text-1"}"#,
///     r#"{"type":"text-delta","id":"text-1","delta":"Hi"}"#,
///     r#"{"type":"text-end","id":"text-1"}"#,
///     r#"{"type":"finish-step"}"#,
///     r#"{"type":"finish"}"#,
///     "[DONE]",
/// ]);
/// ```
#[derive(Clone, Debug)]
pub struct VercelUiStream {
    message_id: String,
    error_text: fn(&Error) -> String,
    started: bool,
    step: Step,
    /// The open text part's id.
    text: Option<String>,
    texts: u32,
    /// Tool inputs of the current step, built from pieces, not yet available.
    inputs: Vec<Input>,
    /// The calls whose input has been made available.
    available: Vec<String>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    None,
    Open,
    /// A finish reason came: content after it starts a new step.
    Finished,
}

#[derive(Clone, Debug)]
struct Input {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

impl Default for VercelUiStream {
    fn default() -> Self {
        VercelUiStream::new()
    }
}

impl VercelUiStream {
    /// The parts of one assistant message, with a random `msg-…` id.
    ///
    /// ```
    /// let ui = beluga_sse::encoding::VercelUiStream::new();
    /// # drop(ui);
    /// ```
    pub fn new() -> Self {
        VercelUiStream {
            message_id: format!("msg-{}", random_hex()),
            error_text: |err| err.to_string(),
            started: false,
            step: Step::None,
            text: None,
            texts: 0,
            inputs: Vec::new(),
            available: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// Sets the message's id (the `start` part's `messageId`).
    ///
    /// ```
    /// let ui = beluga_sse::encoding::VercelUiStream::new().with_message_id("msg-42");
    /// # drop(ui);
    /// ```
    #[must_use]
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = id.into();
        self
    }

    /// Sets how an error becomes the `errorText` the browser sees.
    ///
    /// ```
    /// use beluga_sse::encoding::VercelUiStream;
    /// let ui = VercelUiStream::new().with_error_text(|err| format!("Something went wrong ({}).", err.code()));
    /// # drop(ui);
    /// ```
    #[must_use]
    pub fn with_error_text(mut self, error_text: fn(&Error) -> String) -> Self {
        self.error_text = error_text;
        self
    }

    fn push(out: &mut Vec<Frame>, part: &Part<'_>) {
        // Strings and JSON values: this does not fail.
        out.push(Frame::message(
            serde_json::to_string(part).unwrap_or_default(),
        ));
    }

    fn start(&mut self, out: &mut Vec<Frame>) {
        if !self.started {
            self.started = true;
            Self::push(
                out,
                &Part::Start {
                    message_id: &self.message_id,
                },
            );
        }
    }

    /// Before text or a tool input: the message and a step are open.
    fn content(&mut self, out: &mut Vec<Frame>) {
        self.start(out);
        match self.step {
            Step::Open => {}
            Step::Finished => {
                Self::push(out, &Part::FinishStep);
                Self::push(out, &Part::StartStep);
            }
            Step::None => Self::push(out, &Part::StartStep),
        }
        self.step = Step::Open;
    }

    fn close_text(&mut self, out: &mut Vec<Frame>) {
        if let Some(id) = self.text.take() {
            Self::push(out, &Part::TextEnd { id: &id });
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Frame>) {
        if self.text.is_none() {
            self.content(out);
            self.texts += 1;
            let id = format!("text-{}", self.texts);
            Self::push(out, &Part::TextStart { id: &id });
            self.text = Some(id);
        }
        if let Some(id) = &self.text {
            Self::push(out, &Part::TextDelta { id, delta });
        }
    }

    fn tool_piece(&mut self, piece: &ToolCallDelta, out: &mut Vec<Frame>) {
        let current = self.inputs.iter().rposition(|i| i.index == piece.index);
        let starts = match (&piece.id, current) {
            (Some(id), Some(at)) => self.inputs[at].id != *id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let at = if starts {
            self.close_text(out);
            self.content(out);
            let input = Input {
                index: piece.index,
                id: piece.id.clone().unwrap_or_default(),
                name: piece.name.clone().unwrap_or_default(),
                arguments: String::new(),
            };
            Self::push(
                out,
                &Part::ToolInputStart {
                    tool_call_id: &input.id,
                    tool_name: &input.name,
                },
            );
            self.inputs.push(input);
            self.inputs.len() - 1
        } else if let Some(at) = current {
            at
        } else {
            // A piece of a call that never started: nothing to attach it to.
            return;
        };
        if !piece.arguments.is_empty() {
            let input = &mut self.inputs[at];
            input.arguments.push_str(&piece.arguments);
            Self::push(
                out,
                &Part::ToolInputDelta {
                    tool_call_id: &input.id,
                    input_text_delta: &piece.arguments,
                },
            );
        }
    }

    /// Makes every tool input built from pieces available, its arguments parsed (or, when
    /// they are not JSON, as the text that came).
    fn inputs_available(&mut self, out: &mut Vec<Frame>) {
        for input in std::mem::take(&mut self.inputs) {
            let arguments = if input.arguments.trim().is_empty() {
                Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&input.arguments)
                    .unwrap_or_else(|_| Value::String(input.arguments.clone()))
            };
            Self::push(
                out,
                &Part::ToolInputAvailable {
                    tool_call_id: &input.id,
                    tool_name: &input.name,
                    input: &arguments,
                },
            );
            self.available.push(input.id);
        }
    }

    fn tool_call(&mut self, call: &ToolCall, out: &mut Vec<Frame>) {
        if self.available.contains(&call.id) {
            return;
        }
        if let Some(at) = self.inputs.iter().position(|i| i.id == call.id) {
            self.inputs.remove(at);
        } else {
            self.close_text(out);
            self.content(out);
            Self::push(
                out,
                &Part::ToolInputStart {
                    tool_call_id: &call.id,
                    tool_name: &call.name,
                },
            );
        }
        Self::push(
            out,
            &Part::ToolInputAvailable {
                tool_call_id: &call.id,
                tool_name: &call.name,
                input: &call.arguments,
            },
        );
        self.available.push(call.id.clone());
    }

    fn tool_result(&mut self, result: &ToolResult, out: &mut Vec<Frame>) {
        self.start(out);
        if result.is_error {
            Self::push(
                out,
                &Part::ToolOutputError {
                    tool_call_id: &result.call_id,
                    error_text: &result.content,
                },
            );
        } else {
            Self::push(
                out,
                &Part::ToolOutputAvailable {
                    tool_call_id: &result.call_id,
                    output: &Value::String(result.content.clone()),
                },
            );
        }
    }

    fn chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<Frame>) {
        if !chunk.delta.is_empty() {
            self.text(&chunk.delta, out);
        }
        for piece in &chunk.tool_call_deltas {
            self.tool_piece(piece, out);
        }
        if let Some(call) = &chunk.tool_call {
            self.tool_call(call, out);
        }
        if let Some(result) = &chunk.tool_result {
            self.tool_result(result, out);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(*usage);
        }
        if let Some(reason) = &chunk.finish_reason {
            self.close_text(out);
            self.inputs_available(out);
            self.finish_reason = Some(reason.clone());
            if self.step == Step::Open {
                self.step = Step::Finished;
            }
        }
    }

    fn error_part(&mut self, error: &Error, out: &mut Vec<Frame>) {
        self.start(out);
        let text = (self.error_text)(error);
        Self::push(out, &Part::Error { error_text: &text });
    }
}

impl Encoding<ChatChunk> for VercelUiStream {
    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("x-vercel-ai-ui-message-stream", "v1")]
    }

    fn event(&mut self, event: &Event<ChatChunk>, out: &mut Vec<Frame>) -> Result<(), Error> {
        match event.kind() {
            EventKind::Data(chunk) | EventKind::ToolCall(chunk) | EventKind::ToolResult(chunk) => {
                self.chunk(chunk, out);
            }
            EventKind::Handoff(_) => {}
            EventKind::Error(err) => self.error_part(err, out),
            EventKind::Done(last) => {
                if let Some(chunk) = last {
                    self.chunk(chunk, out);
                }
                if self.usage.is_none() {
                    self.usage = meta_usage(event.meta());
                }
                self.start(out);
                self.close_text(out);
                self.inputs_available(out);
                if self.step != Step::None {
                    Self::push(out, &Part::FinishStep);
                }
                let metadata = Metadata {
                    finish_reason: self.finish_reason.as_ref().map(ai_sdk_reason),
                    usage: self.usage.as_ref().map(UsageRepr::from),
                };
                let has_metadata = metadata.finish_reason.is_some() || metadata.usage.is_some();
                Self::push(
                    out,
                    &Part::Finish {
                        message_metadata: has_metadata.then_some(metadata),
                    },
                );
                out.push(Frame::message("[DONE]"));
            }
        }
        Ok(())
    }

    fn error(&mut self, error: &Error, out: &mut Vec<Frame>) {
        self.error_part(error, out);
        out.push(Frame::message("[DONE]"));
    }

    fn cut(&mut self, out: &mut Vec<Frame>) {
        self.start(out);
        Self::push(out, &Part::Abort);
        out.push(Frame::message("[DONE]"));
    }
}

/// The AI SDK's name for a finish reason.
fn ai_sdk_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool-calls",
        FinishReason::ContentFilter => "content-filter",
        FinishReason::Other(_) => "other",
    }
}

/// The parts this encoding sends, in the AI SDK's shape: `type` first, camelCase fields.
#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
enum Part<'a> {
    Start {
        message_id: &'a str,
    },
    StartStep,
    TextStart {
        id: &'a str,
    },
    TextDelta {
        id: &'a str,
        delta: &'a str,
    },
    TextEnd {
        id: &'a str,
    },
    ToolInputStart {
        tool_call_id: &'a str,
        tool_name: &'a str,
    },
    ToolInputDelta {
        tool_call_id: &'a str,
        input_text_delta: &'a str,
    },
    ToolInputAvailable {
        tool_call_id: &'a str,
        tool_name: &'a str,
        input: &'a Value,
    },
    ToolOutputAvailable {
        tool_call_id: &'a str,
        output: &'a Value,
    },
    ToolOutputError {
        tool_call_id: &'a str,
        error_text: &'a str,
    },
    FinishStep,
    Finish {
        #[serde(skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Metadata>,
    },
    Error {
        error_text: &'a str,
    },
    Abort,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageRepr>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_field_names, reason = "the AI SDK's names")]
struct UsageRepr {
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
}

impl From<&Usage> for UsageRepr {
    fn from(usage: &Usage) -> Self {
        UsageRepr {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens(),
        }
    }
}
