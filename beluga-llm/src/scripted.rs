//! [`ScriptedModel`]: a chat model that replays scripted [`Turn`]s, offline. The examples'
//! and tests' default model.
//!
//! Each call takes the next turn and streams it as a provider would: the text in word-sized
//! chunks, each tool call as a start piece and its arguments' JSON in fragments, then a chunk
//! with the finish reason and the usage. A turn can also be cut short ([`Turn::truncated`]),
//! fail ([`Turn::failing_with`]), or pause before every chunk ([`Turn::with_token_delay`],
//! on Tokio's clock, so paused-clock tests run instantly). The stream honours its
//! [`Context`]: cancellation or a deadline ends it at once, even during a pause.
//!
//! ```
//! use beluga_core::{Context, EventStreamExt, Runnable};
//! use beluga_llm::schema::{ChatRequest, Message};
//! use beluga_llm::scripted::{ScriptedModel, Turn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let model = ScriptedModel::new([Turn::text("Hello there, traveller.")]);
//! let request = ChatRequest::new("", vec![Message::user("hi")]);
//! let chunks = model.stream(Context::new(), request).collect_events().await;
//! let deltas: Vec<&str> = chunks.data().map(|c| c.delta.as_str()).collect();
//! assert_eq!(deltas, ["Hello", " there,", " traveller.", ""]); // the last one finishes
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, EventResult, Runnable, stream};
use futures_core::Stream;
use serde_json::Value;

use crate::schema::{ChatChunk, ChatRequest, FinishReason, ToolCallDelta, Usage};

/// The size, in characters, of the fragments a scripted tool call's arguments are sent in.
const ARGUMENT_FRAGMENT: usize = 8;

/// One scripted answer: what a [`ScriptedModel`] streams for one call.
///
/// ```
/// use std::time::Duration;
/// use beluga_llm::schema::{FinishReason, Usage};
/// use beluga_llm::scripted::Turn;
/// use serde_json::json;
///
/// let answer = Turn::text("Sunny in Oslo.").with_usage(Usage::new(30, 4));
/// let tool_use = Turn::text("Let me check.")
///     .with_tool_call("call_1", "get_weather", json!({"city": "Oslo"}))
///     .with_tool_call("call_2", "get_weather", json!({"city": "Bergen"})); // finishes with tool_calls
/// let slow = Turn::text("one two three").with_token_delay(Duration::from_millis(50));
/// let cut = Turn::text("The answer is").truncated();
/// let long = Turn::text("On and on").with_finish_reason(FinishReason::Length);
/// # drop((answer, tool_use, slow, cut, long));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Turn {
    chunks: Vec<ChatChunk>,
    next_index: u32,
    finish: Finish,
    usage: Option<Usage>,
    error: Option<Error>,
    token_delay: Duration,
}

/// How a turn ends.
#[derive(Clone, Debug, Default)]
enum Finish {
    /// `tool_calls` if the turn calls a tool, else `stop`.
    #[default]
    Auto,
    Reason(FinishReason),
    /// No finish chunk: the chunks say it themselves, or the turn is truncated.
    Omitted,
}

impl Turn {
    /// A turn with nothing in it yet (it still finishes, with `stop`).
    ///
    /// ```
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::new().then_text("hi");
    /// # drop(turn);
    /// ```
    pub fn new() -> Self {
        Turn::default()
    }

    /// A turn that answers `text`, streamed a word at a time (each chunk is a word with the
    /// whitespace before it).
    ///
    /// ```
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("Hello, world!"); // chunks "Hello," and " world!", then the finish
    /// # drop(turn);
    /// ```
    pub fn text(text: &str) -> Self {
        Turn::new().then_text(text)
    }

    /// The same turn with more text after what it has.
    ///
    /// ```
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("Hello").then_text(" again");
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn then_text(mut self, text: &str) -> Self {
        self.chunks.extend(split_words(text).map(ChatChunk::text));
        self
    }

    /// The same turn with one more tool call: a chunk that starts it (id and name), then its
    /// arguments' JSON text in fragments of up to 8 characters. Calls are numbered 0, 1, ...
    /// in the order they are added. A turn with a tool call finishes with `tool_calls` unless
    /// told otherwise.
    ///
    /// ```
    /// use beluga_llm::scripted::Turn;
    /// use serde_json::json;
    /// let turn = Turn::new().with_tool_call("c1", "add", json!({"a": 1, "b": 2}));
    /// # drop(turn);
    /// ```
    #[must_use]
    // By value, so that `json!(..)` can be written in place.
    #[allow(clippy::needless_pass_by_value)]
    pub fn with_tool_call(mut self, id: &str, name: &str, arguments: Value) -> Self {
        let index = self.next_index;
        self.next_index += 1;
        self.chunks
            .push(ChatChunk::default().with_tool_call_delta(ToolCallDelta::start(index, id, name)));
        let json = arguments.to_string();
        let mut rest = json.as_str();
        while !rest.is_empty() {
            let end = rest
                .char_indices()
                .nth(ARGUMENT_FRAGMENT)
                .map_or(rest.len(), |(at, _)| at);
            let (fragment, tail) = rest.split_at(end);
            self.chunks.push(
                ChatChunk::default()
                    .with_tool_call_delta(ToolCallDelta::arguments(index, fragment)),
            );
            rest = tail;
        }
        self
    }

    /// The same turn with one more chunk, as it is: for pieces the other methods do not
    /// produce (interleaved calls, a reused index, invalid arguments).
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, ToolCallDelta};
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::new()
    ///     .with_chunk(ChatChunk::default().with_tool_call_delta(ToolCallDelta::start(0, "c1", "add")))
    ///     .with_chunk(ChatChunk::default().with_tool_call_delta(ToolCallDelta::arguments(0, "{oops")));
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn with_chunk(mut self, chunk: ChatChunk) -> Self {
        if chunk.finish_reason.is_some() {
            self.finish = Finish::Omitted;
        }
        self.chunks.push(chunk);
        self
    }

    /// A turn of exactly these chunks: no finish chunk is added (include one, or the answer
    /// is truncated).
    ///
    /// ```
    /// use beluga_llm::schema::{ChatChunk, FinishReason};
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::from_chunks(vec![ChatChunk::text("Hi").with_finish_reason(FinishReason::Stop)]);
    /// # drop(turn);
    /// ```
    pub fn from_chunks(chunks: Vec<ChatChunk>) -> Self {
        Turn {
            chunks,
            finish: Finish::Omitted,
            ..Turn::default()
        }
    }

    /// The same turn, finishing with this reason.
    ///
    /// ```
    /// use beluga_llm::schema::FinishReason;
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("and so").with_finish_reason(FinishReason::Length);
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn with_finish_reason(mut self, reason: FinishReason) -> Self {
        self.finish = Finish::Reason(reason);
        self
    }

    /// The same turn, reporting this usage (on the finish chunk, or on a chunk of its own
    /// when there is none).
    ///
    /// ```
    /// use beluga_llm::schema::Usage;
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("Hi").with_usage(Usage::new(8, 1));
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The same turn, cut off: it ends with `done` but no finish reason, as a dropped
    /// connection does.
    ///
    /// ```
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("The answer is").truncated();
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn truncated(mut self) -> Self {
        self.finish = Finish::Omitted;
        self
    }

    /// The same turn, failing with `error` after its chunks (no finish chunk).
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("Hel").failing_with(Error::new(ErrorCode::ProviderUnavailable, "reset"));
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn failing_with(mut self, error: Error) -> Self {
        self.error = Some(error);
        self
    }

    /// The same turn, pausing `delay` before each chunk (a `tokio::time::sleep`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_llm::scripted::Turn;
    /// let turn = Turn::text("slow and steady").with_token_delay(Duration::from_millis(20));
    /// # drop(turn);
    /// ```
    #[must_use]
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The chunks the turn streams, in order.
    fn into_chunks(self) -> (Vec<ChatChunk>, Option<Error>, Duration) {
        let Turn {
            mut chunks,
            next_index,
            finish,
            usage,
            error,
            token_delay,
        } = self;
        if error.is_none() {
            let reason = match finish {
                Finish::Auto if next_index > 0 => Some(FinishReason::ToolCalls),
                Finish::Auto => Some(FinishReason::Stop),
                Finish::Reason(reason) => Some(reason),
                Finish::Omitted => None,
            };
            let last = match reason {
                Some(reason) => Some(ChatChunk::finished(reason)),
                None => usage.map(|_| ChatChunk::default()),
            };
            if let Some(mut last) = last {
                last.usage = usage;
                chunks.push(last);
            }
        }
        (chunks, error, token_delay)
    }
}

/// Splits text into words, each with the whitespace before it.
fn split_words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        let end = rest[word_start..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |at| word_start + at);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// A chat model that replays scripted [`Turn`]s, one per call, in order; offline and
/// deterministic. See the [module docs](self).
///
/// A call after the last turn fails with an `internal` error saying the script ran out, unless
/// the model is [`repeating`](ScriptedModel::repeating). The requests it received are kept,
/// for tests to inspect ([`requests`](ScriptedModel::requests)).
///
/// ```
/// use beluga_core::Context;
/// use beluga_llm::schema::{ChatRequest, Message};
/// use beluga_llm::scripted::{ScriptedModel, Turn};
/// use beluga_llm::ChatModelExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new([Turn::text("first"), Turn::text("second")]);
/// let ask = |text: &str| ChatRequest::new("", vec![Message::user(text)]);
/// assert_eq!(model.generate(Context::new(), ask("a")).await.unwrap().text(), "first");
/// assert_eq!(model.generate(Context::new(), ask("b")).await.unwrap().text(), "second");
/// assert!(model.generate(Context::new(), ask("c")).await.is_err());
/// assert_eq!(model.requests().len(), 3);
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptedModel {
    turns: Mutex<VecDeque<Turn>>,
    repeat: Option<Turn>,
    scripted: usize,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    /// A model that answers with these turns, one per call.
    ///
    /// ```
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// let model = ScriptedModel::new([Turn::text("Hello!")]);
    /// assert_eq!(model.remaining(), 1);
    /// ```
    pub fn new(turns: impl IntoIterator<Item = Turn>) -> Self {
        let turns: VecDeque<Turn> = turns.into_iter().collect();
        ScriptedModel {
            scripted: turns.len(),
            turns: Mutex::new(turns),
            repeat: None,
            requests: Mutex::new(Vec::new()),
        }
    }

    /// A model that answers every call with `turn`.
    ///
    /// ```
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// let model = ScriptedModel::repeating(Turn::text("Again."));
    /// # drop(model);
    /// ```
    pub fn repeating(turn: Turn) -> Self {
        ScriptedModel {
            repeat: Some(turn),
            ..ScriptedModel::new([])
        }
    }

    /// How many scripted turns are left (not counting a repeating one).
    ///
    /// ```
    /// use beluga_llm::scripted::{ScriptedModel, Turn};
    /// assert_eq!(ScriptedModel::new([Turn::text("a"), Turn::text("b")]).remaining(), 2);
    /// ```
    pub fn remaining(&self) -> usize {
        lock(&self.turns).len()
    }

    /// The requests received so far, oldest first.
    ///
    /// ```
    /// use beluga_llm::scripted::ScriptedModel;
    /// assert!(ScriptedModel::new([]).requests().is_empty());
    /// ```
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    fn next_turn(&self) -> Result<Turn, Error> {
        if let Some(turn) = lock(&self.turns).pop_front() {
            return Ok(turn);
        }
        self.repeat.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::Internal,
                format!(
                    "the scripted model has no turn left: {} were scripted",
                    self.scripted
                ),
            )
            .with_op("scripted.chat")
        })
    }
}

/// Locks a mutex, ignoring poisoning: the data (a queue, a log) is valid after any panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runnable for ScriptedModel {
    type Input = ChatRequest;
    type Output = ChatChunk;

    fn stream(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        // Nothing happens until the first poll: then the request is kept and a turn taken.
        stream::produce(&ctx, async move |mut e| {
            lock(&self.requests).push(request);
            let (chunks, error, delay) = self.next_turn()?.into_chunks();
            for chunk in chunks {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                e.emit(chunk).await;
            }
            match error {
                Some(error) => Err(error),
                None => Ok(()),
            }
        })
    }
}
