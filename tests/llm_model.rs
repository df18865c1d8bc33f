//! `ChatModel`: `generate` is assembled from the stream, truncated streams are errors, the
//! runnable compositions apply, and hooks run in order on the stream path, `generate`'s
//! included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beluga_core::runnable::{BatchOptions, ParallelOutput, parallel};
use beluga_core::{
    Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt, Runnable,
    RunnableExt, stream, stream_producer,
};
use beluga_llm::error::is_truncated;
use beluga_llm::hooks::{ChatHooks, DoneInfo};
use beluga_llm::schema::{
    AssistantMessage, ChatChunk, ChatRequest, FinishReason, Message, ToolCall, ToolCallDelta,
    ToolResult, Usage,
};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::{BoxChatModel, ChatModel, ChatModelExt, ChatStreamExt, Hooks};
use futures_util::{Stream, StreamExt};
use serde_json::json;

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new("test-model", vec![Message::user(text)])
}

/// A model that streams the given items as they are.
struct Replay(Vec<EventResult<ChatChunk>>);

impl Runnable for Replay {
    type Input = ChatRequest;
    type Output = ChatChunk;
    fn stream(
        &self,
        _ctx: Context,
        _request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        futures_util::stream::iter(self.0.clone())
    }
}

#[tokio::test]
async fn generate_assembles_what_the_stream_says() {
    let model = ScriptedModel::repeating(
        Turn::text("Let me check the weather.")
            .with_tool_call(
                "c1",
                "get_weather",
                json!({"city": "Oslo", "units": "metric"}),
            )
            .with_tool_call("c2", "get_time", json!({"tz": "Europe/Oslo"}))
            .with_usage(Usage::new(120, 31).with_cached_tokens(64)),
    );
    let response = model.generate(Context::new(), ask("?")).await.unwrap();

    // The same answer, read from the stream by hand.
    let collected = model
        .stream(Context::new(), ask("?"))
        .collect_events()
        .await;
    assert!(collected.error.is_none());
    let text: String = collected.data().map(|c| c.delta.as_str()).collect();
    let finish = collected.data().find_map(|c| c.finish_reason.clone());
    let usage = collected.data().find_map(|c| c.usage);

    assert_eq!(response.text(), text);
    assert_eq!(response.text(), "Let me check the weather.");
    assert_eq!(Some(response.finish_reason.clone()), finish);
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, usage);
    assert_eq!(
        response.tool_calls(),
        [
            ToolCall::new(
                "c1",
                "get_weather",
                json!({"city": "Oslo", "units": "metric"})
            ),
            ToolCall::new("c2", "get_time", json!({"tz": "Europe/Oslo"})),
        ]
    );
    assert_eq!(response.into_message().role(), beluga_llm::Role::Assistant);
}

#[tokio::test]
async fn a_stream_without_a_finish_reason_is_truncated_not_a_success() {
    // `done` without a finish reason.
    let model = Replay(vec![
        Ok(Event::data(ChatChunk::text("The answer is"))),
        Ok(Event::data(
            ChatChunk::default().with_usage(Usage::new(5, 3)),
        )),
        Ok(Event::done()),
    ]);
    let err = model.generate(Context::new(), ask("?")).await.unwrap_err();
    assert!(is_truncated(&err));
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert!(err.is_retryable());
    assert_eq!(err.op(), "llm.generate");

    // No terminal item at all.
    let model = Replay(vec![Ok(Event::data(ChatChunk::text("The answer is")))]);
    assert!(is_truncated(
        &model.generate(Context::new(), ask("?")).await.unwrap_err()
    ));

    // A scripted truncation, through hooks: the stream itself ends with the error.
    let model = ScriptedModel::new([Turn::text("cut off").truncated()]).with_hooks(Hooks::new());
    let collected = model
        .stream(Context::new(), ask("?"))
        .collect_events()
        .await;
    assert_eq!(collected.data().count(), 2);
    assert!(!collected.events.iter().any(Event::is_done));
    let err = collected.error.unwrap();
    assert!(is_truncated(&err));
    assert_eq!(err.op(), "llm.stream");

    // The finish reason may come before the usage: that is complete.
    let model = Replay(vec![
        Ok(Event::data(ChatChunk::finished(FinishReason::Stop))),
        Ok(Event::data(
            ChatChunk::default().with_usage(Usage::new(5, 3)),
        )),
        Ok(Event::done()),
    ]);
    let response = model.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(response.usage, Some(Usage::new(5, 3)));
}

#[tokio::test]
async fn generate_returns_the_first_error() {
    let terminal = Replay(vec![
        Ok(Event::data(ChatChunk::text("Hel"))),
        Err(Error::new(ErrorCode::RateLimit, "429")),
    ]);
    let err = terminal
        .generate(Context::new(), ask("?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);

    let reported = Replay(vec![
        Ok(Event::data(ChatChunk::text("Hel"))),
        Ok(Event::error(Error::new(ErrorCode::GuardBlocked, "flagged"))),
        Ok(Event::data(ChatChunk::finished(FinishReason::Stop))),
        Ok(Event::done()),
    ]);
    let err = reported
        .generate(Context::new(), ask("?"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::GuardBlocked);

    let cancelled = Context::new();
    cancelled.cancel();
    let model = ScriptedModel::new([Turn::text("never")]);
    let err = model.generate(cancelled, ask("?")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
}

#[tokio::test]
async fn generate_stops_reading_at_done() {
    // Anything after `done` would be a broken stream; generate never reads it.
    let model = Replay(vec![
        Ok(Event::data(ChatChunk::finished(FinishReason::Stop))),
        Ok(Event::done()),
        Err(Error::new(ErrorCode::Internal, "read past done")),
    ]);
    let response = model.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

/// A chat model written as a `#[stream_producer]` behind `#[derive(Runnable)]`.
#[derive(beluga_core::Runnable)]
#[runnable(input = ChatRequest, output = ChatChunk, stream = run)]
struct Echo;

impl Echo {
    #[stream_producer]
    fn run(
        &self,
        ctx: Context,
        request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        let last = request
            .messages
            .last()
            .map(|m| m.content().to_owned())
            .unwrap_or_default();
        for word in last.split_inclusive(' ') {
            emit!(ChatChunk::text(word));
        }
        emit!(ChatChunk::finished(FinishReason::Stop));
    }
}

fn is_chat_model(_: &impl ChatModel) {}

/// Builds the request for a topic.
struct Prompt;

impl Runnable for Prompt {
    type Input = String;
    type Output = ChatRequest;
    fn stream(
        &self,
        _ctx: Context,
        topic: String,
    ) -> impl Stream<Item = EventResult<ChatRequest>> + Send + '_ {
        stream::iter([ask(&format!("tell me about {topic}"))])
    }
}

#[tokio::test]
async fn derived_runnables_are_chat_models_and_compose() {
    is_chat_model(&Echo);
    let response = Echo
        .generate(Context::new(), ask("say it back"))
        .await
        .unwrap();
    assert_eq!(response.text(), "say it back");

    // pipe: a prompt step feeds the model; the piped stream is a chunk stream.
    let piped = Prompt.pipe(Echo);
    let response = piped
        .stream(Context::new(), "fjords".to_owned())
        .collect_response()
        .await
        .unwrap();
    assert_eq!(response.text(), "tell me about fjords");

    // parallel: both models' chunks come out tagged by branch.
    let both = parallel((
        ScriptedModel::repeating(Turn::text("left side")),
        ScriptedModel::repeating(Turn::text("right side")),
    ));
    let collected = both.stream(Context::new(), ask("?")).collect_events().await;
    assert!(collected.error.is_none());
    for branch in 0..2 {
        let text: String = collected
            .data()
            .filter_map(|out| match out {
                ParallelOutput::Item { branch: b, value } if *b == branch => {
                    Some(value.delta.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(text, ["left side", "right side"][branch]);
    }

    // batch: one result per request, in order (invoke's result: the last chunk).
    let model = ScriptedModel::new([Turn::text("a"), Turn::text("b"), Turn::text("c")]);
    let results = model
        .batch(
            &Context::new(),
            [ask("1"), ask("2"), ask("3")],
            &BatchOptions::default().with_max_concurrency(1).unwrap(),
        )
        .await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().finish_reason == Some(FinishReason::Stop))
    );
    assert_eq!(model.requests().len(), 3);

    // boxed: one type for any model.
    let models: Vec<BoxChatModel<'static>> = vec![
        Echo.boxed(),
        ScriptedModel::repeating(Turn::text("scripted")).boxed(),
        Echo.with_hooks(Hooks::new()).boxed(),
    ];
    let mut texts = Vec::new();
    for model in &models {
        texts.push(
            model
                .generate(Context::new(), ask("echo"))
                .await
                .unwrap()
                .message
                .content,
        );
    }
    assert_eq!(texts, ["echo", "scripted", "echo"]);
}

/// Records every hook call as a line.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl ChatHooks for Recorder {
    fn on_start(&self, _ctx: &Context, request: &ChatRequest) -> Result<(), Error> {
        self.push(format!("start {}", request.messages.len()));
        Ok(())
    }
    fn on_chunk(&self, _ctx: &Context, chunk: &ChatChunk) {
        match &chunk.finish_reason {
            Some(reason) => self.push(format!("chunk finish {reason}")),
            None => self.push(format!("chunk {:?}", chunk.delta)),
        }
    }
    fn on_tool_call(&self, _ctx: &Context, call: &ToolCall) {
        self.push(format!("tool_call {} {}", call.id, call.arguments));
    }
    fn on_tool_result(&self, _ctx: &Context, result: &ToolResult) {
        self.push(format!("tool_result {}", result.call_id));
    }
    fn on_done(&self, _ctx: &Context, info: &DoneInfo) {
        let usage = info.usage.map(|u| u.total_tokens());
        self.push(format!("done {} {usage:?}", info.finish_reason));
    }
    fn on_error(&self, _ctx: &Context, error: &Error) {
        self.push(format!("error {}", error.code()));
    }
}

fn tool_turn() -> Turn {
    Turn::text("Checking now.")
        .with_tool_call("c9", "now", json!({"tz": "UTC"}))
        .with_usage(Usage::new(40, 12))
}

#[tokio::test]
async fn hooks_run_in_stream_order_and_generate_runs_through_them() {
    let expected = [
        "start 4",
        "tool_result c1",
        "tool_result c2",
        "chunk \"Checking\"",
        "chunk \" now.\"",
        "chunk finish tool_calls",
        "tool_call c9 {\"tz\":\"UTC\"}",
        "done tool_calls Some(52)",
    ];
    // The request delivers two results (the tool messages after the assistant's turn); the
    // earlier result was delivered on a previous call and does not count again.
    let request = ChatRequest::new(
        "m",
        vec![
            Message::tool_result("c0", "old"),
            AssistantMessage::new("")
                .with_tool_calls(vec![
                    ToolCall::new("c1", "now", json!({})),
                    ToolCall::new("c2", "now", json!({})),
                ])
                .into(),
            Message::tool_result("c1", "12:00"),
            Message::tool_result("c2", "13:00"),
        ],
    );

    // Through the stream.
    let recorder = Recorder::default();
    let model = ScriptedModel::repeating(tool_turn()).with_hooks(recorder.clone());
    let mut seen_by_consumer = Vec::new();
    let mut stream = std::pin::pin!(model.stream(Context::new(), request.clone()));
    while let Some(item) = stream.next().await {
        let event = item.unwrap();
        // Each hook has run by the time its event comes out.
        seen_by_consumer.push(recorder.log().len());
        if let EventKind::ToolCall(chunk) = event.kind() {
            assert_eq!(chunk.tool_call.as_ref().unwrap().id, "c9");
        }
    }
    assert_eq!(recorder.log(), expected);
    // "Checking", " now.", the finish chunk, the tool call, done.
    assert_eq!(seen_by_consumer, [4, 5, 6, 7, 8]);

    // Through generate: the same hooks, in the same order.
    let recorder = Recorder::default();
    let model = ScriptedModel::repeating(tool_turn()).with_hooks(recorder.clone());
    let response = model.generate(Context::new(), request).await.unwrap();
    assert_eq!(recorder.log(), expected);
    assert_eq!(response.tool_calls().len(), 1);
}

#[tokio::test]
async fn exactly_one_of_done_or_error_ends_every_call() {
    async fn run(turn: Turn, ctx: Context) -> Vec<String> {
        let recorder = Recorder::default();
        let model = ScriptedModel::new([turn]).with_hooks(recorder.clone());
        let _ = model.generate(ctx, ask("?")).await;
        recorder.log()
    }
    let ended = |log: &[String]| {
        log.iter()
            .filter(|l| l.starts_with("done") || l.starts_with("error"))
            .cloned()
            .collect::<Vec<_>>()
    };

    let log = run(Turn::text("fine"), Context::new()).await;
    assert_eq!(ended(&log), ["done stop None"]);

    let log = run(Turn::text("cut").truncated(), Context::new()).await;
    assert_eq!(ended(&log), ["error provider_unavailable"]);

    let failing = Turn::text("Hel").failing_with(Error::new(ErrorCode::RateLimit, "429"));
    let log = run(failing, Context::new()).await;
    assert_eq!(ended(&log), ["error rate_limit"]);

    let cancelled = Context::new();
    cancelled.cancel();
    let log = run(Turn::text("never"), cancelled).await;
    assert_eq!(log, ["start 1", "error cancelled"]);

    // An invalid call is reported (the stream goes on) and the call still ends once.
    let bad = Turn::new()
        .with_chunk(
            ChatChunk::default()
                .with_tool_call_delta(ToolCallDelta::start(0, "c1", "add").with_arguments("{")),
        )
        .with_finish_reason(FinishReason::ToolCalls);
    let recorder = Recorder::default();
    let model = ScriptedModel::new([bad]).with_hooks(recorder.clone());
    let collected = model
        .stream(Context::new(), ask("?"))
        .collect_events()
        .await;
    assert!(collected.error.is_none());
    assert_eq!(
        recorder.log(),
        [
            "start 1",
            "chunk finish tool_calls",
            "error invalid_input",
            "done tool_calls None"
        ]
    );
}

#[tokio::test]
async fn a_failing_on_start_ends_the_stream_without_calling_the_model() {
    let recorder = Recorder::default();
    let refuse = Hooks::new().on_start(|_ctx, request| {
        if request.model.is_empty() {
            Err(Error::new(ErrorCode::InvalidInput, "no model named"))
        } else {
            Ok(())
        }
    });
    let model = ScriptedModel::new([Turn::text("hi")]).with_hooks((refuse, recorder.clone()));
    let err = model
        .generate(
            Context::new(),
            ChatRequest::new("", vec![Message::user("?")]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(model.model().requests().is_empty(), "the model was called");
    assert_eq!(model.model().remaining(), 1);
    // The second hooks never started, but hear about the error.
    assert_eq!(recorder.log(), ["error invalid_input"]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_calls_no_further_hook_and_nothing_runs_before_the_first_poll() {
    let recorder = Recorder::default();
    let model = ScriptedModel::new([
        Turn::text("one two three four").with_token_delay(Duration::from_millis(10))
    ])
    .with_hooks(recorder.clone());

    let unpolled = model.stream(Context::new(), ask("?"));
    drop(unpolled);
    assert!(recorder.log().is_empty());
    assert_eq!(model.model().remaining(), 1);

    let mut stream = Box::pin(model.stream(Context::new(), ask("?")));
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        recorder.log(),
        ["start 1", "chunk \"one\"", "chunk \" two\""]
    );
}

#[tokio::test]
async fn hooks_stack_and_each_layer_sees_every_call_once() {
    let inner = Recorder::default();
    let outer = Recorder::default();
    let model = ScriptedModel::repeating(tool_turn())
        .with_hooks(inner.clone())
        .with_hooks(outer.clone());
    let response = model.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(response.tool_calls().len(), 1);
    assert_eq!(inner.log(), outer.log());
    assert_eq!(
        inner
            .log()
            .iter()
            .filter(|l| l.starts_with("tool_call"))
            .count(),
        1
    );

    // Shared hooks through an `Arc`.
    let shared = Arc::new(Recorder::default());
    let a = ScriptedModel::repeating(Turn::text("a")).with_hooks(Arc::clone(&shared));
    let b = ScriptedModel::repeating(Turn::text("b")).with_hooks(Arc::clone(&shared));
    a.generate(Context::new(), ask("?")).await.unwrap();
    b.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(
        shared
            .log()
            .iter()
            .filter(|l| l.starts_with("done"))
            .count(),
        2
    );
}

#[tokio::test]
async fn tool_result_events_on_the_stream_reach_the_hook() {
    let recorder = Recorder::default();
    let model = Replay(vec![
        Ok(Event::tool_result(ChatChunk::from_tool_result(
            ToolResult::new("c5", "done"),
        ))),
        Ok(Event::data(ChatChunk::finished(FinishReason::Stop))),
        Ok(Event::done()),
    ])
    .with_hooks(recorder.clone());
    model.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(
        recorder.log(),
        [
            "start 1",
            "tool_result c5",
            "chunk finish stop",
            "done stop None"
        ]
    );
}
