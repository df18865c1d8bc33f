//! `beluga-llm`'s `tracing` feature: a traced chat model opens one span per call with
//! OpenTelemetry's GenAI attribute names (checked name by name and value by value on a
//! scripted answer with usage and a finish reason), the terminal error's code, a consumer that
//! drops the stream, and hooks that log inside the span.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, Event, EventResult, EventStreamExt, Runnable};
use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message, Usage};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::trace::ChatSpan;
use beluga_llm::{ChatModelExt, ChatStreamExt, Hooks};
use beluga_tests::capture::{Value, capture};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tracing::Level;

fn value(v: impl Into<Value>) -> Value {
    v.into()
}

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("Weather in Oslo?")])
}

#[tokio::test(start_paused = true)]
async fn a_chat_call_has_one_span_with_the_gen_ai_names_and_values() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([Turn::text("It is sunny.")
        .with_usage(Usage::new(31, 4))
        .with_token_delay(Duration::from_millis(40))])
    .traced()
    .with_provider("scripted");
    let ctx = Context::new().with_request_id("req-42");
    let request = ask("small-model")
        .with_max_tokens(256)
        .with_temperature(0.2);

    let collected = model.stream(ctx, request).collect_events().await;
    assert!(collected.error.is_none());
    let chunks = collected.data().count();
    assert_eq!(chunks, 4, "three words and the finish");

    let span = captured.span("chat");
    assert_eq!(span.target, "beluga_llm::trace");
    assert_eq!(span.level, Level::INFO);
    assert_eq!(
        span.declared,
        [
            "beluga.request_id",
            "beluga.session_id",
            "beluga.time_to_first_item_ms",
            "beluga.items",
            "beluga.error_events",
            "beluga.outcome",
            "error.type",
            "otel.status_code",
            "otel.status_description",
            "otel.name",
            "otel.kind",
            "beluga.time_to_first_token_ms",
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.request.max_tokens",
            "gen_ai.request.temperature",
            "server.address",
            "server.port",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.response.finish_reasons",
        ]
    );
    assert_eq!(
        span.fields,
        fields(&[
            ("otel.name", value("chat small-model")),
            ("otel.kind", value("client")),
            ("gen_ai.operation.name", value("chat")),
            ("gen_ai.provider.name", value("scripted")),
            ("gen_ai.request.model", value("small-model")),
            ("gen_ai.request.max_tokens", value(256_i64)),
            ("gen_ai.request.temperature", value(0.2)),
            ("gen_ai.usage.input_tokens", value(31_i64)),
            ("gen_ai.usage.output_tokens", value(4_i64)),
            ("gen_ai.response.finish_reasons", value(r#"["stop"]"#)),
            ("beluga.request_id", value("req-42")),
            ("beluga.time_to_first_item_ms", value(40.0)),
            ("beluga.time_to_first_token_ms", value(40.0)),
            ("beluga.items", value(5_i64)),
            ("beluga.error_events", value(0_i64)),
            ("beluga.outcome", value("done")),
        ])
    );
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
    assert!(span.closed);
}

#[tokio::test]
async fn usage_reports_are_merged_and_a_request_without_a_model_is_named_chat() {
    let (captured, _guard) = capture();
    // Usage in two reports, as Anthropic sends it: the prompt first, the answer at the end.
    let model = ScriptedModel::new([Turn::from_chunks(vec![
        beluga_llm::ChatChunk::text("Hi").with_usage(Usage::new(12, 1)),
        beluga_llm::ChatChunk::finished(FinishReason::Length).with_usage(Usage::new(0, 9)),
    ])]);
    let request = ask("");
    let span = ChatSpan::new(&request);
    let ctx = Context::new();
    let collected = model
        .stream(ctx.clone(), request)
        .traced_with(span, &ctx)
        .collect_events()
        .await;
    assert!(collected.error.is_none());

    let span = captured.span("chat");
    assert_eq!(span.fields["otel.name"], value("chat"));
    assert!(!span.fields.contains_key("gen_ai.request.model"));
    assert!(!span.fields.contains_key("gen_ai.provider.name"));
    assert!(!span.fields.contains_key("gen_ai.request.max_tokens"));
    assert_eq!(span.recorded("gen_ai.usage.input_tokens"), [value(12_i64)]);
    assert_eq!(span.recorded("gen_ai.usage.output_tokens"), [value(9_i64)]);
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
    assert_eq!(
        span.fields["gen_ai.response.finish_reasons"],
        value(r#"["length"]"#)
    );
}

#[tokio::test]
async fn a_failing_call_records_the_error_code() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([Turn::text("Partial")
        .failing_with(Error::new(ErrorCode::RateLimit, "slow down").with_op("scripted"))])
    .traced();
    let err = model
        .generate(Context::new(), ask("small-model"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);

    let span = captured.span("chat");
    assert_eq!(span.fields["error.type"], value("rate_limit"));
    assert_eq!(span.fields["otel.status_code"], value("error"));
    assert_eq!(
        span.fields["otel.status_description"],
        value("scripted [rate_limit]: slow down")
    );
    assert_eq!(span.fields["beluga.outcome"], value("error"));
    assert_eq!(
        span.fields["beluga.items"],
        value(2_i64),
        "the chunk, then the error"
    );
    assert!(!span.fields.contains_key("gen_ai.response.finish_reasons"));
    assert!(span.closed);
}

#[tokio::test]
async fn a_truncated_answer_through_hooks_ends_the_span_with_its_error() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([Turn::text("It is").truncated()])
        .with_hooks(Hooks::new())
        .traced();
    let err = model.generate(Context::new(), ask("m")).await.unwrap_err();
    assert!(beluga_llm::error::is_truncated(&err));
    let span = captured.span("chat");
    assert_eq!(span.fields["error.type"], value("provider_unavailable"));
    assert_eq!(span.fields["beluga.outcome"], value("error"));
}

#[tokio::test]
async fn a_truncated_answer_without_hooks_is_a_failure_too() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([Turn::text("It is").truncated()]).traced();
    let err = model.generate(Context::new(), ask("m")).await.unwrap_err();
    assert!(beluga_llm::error::is_truncated(&err));
    let span = captured.span("chat");
    assert_eq!(
        span.fields["beluga.outcome"],
        value("done"),
        "the stream did end with done"
    );
    assert_eq!(span.fields["error.type"], value("provider_unavailable"));
    assert_eq!(span.fields["otel.status_code"], value("error"));
    assert_eq!(
        span.fields["otel.status_description"],
        value(err.to_string().as_str())
    );
    assert!(!span.fields.contains_key("gen_ai.response.finish_reasons"));
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
}

/// A model that reports an `error` event in the middle of its answer, then goes on.
struct ReportsAnError;

impl Runnable for ReportsAnError {
    type Input = ChatRequest;
    type Output = ChatChunk;

    fn stream(
        &self,
        _ctx: Context,
        _request: ChatRequest,
    ) -> impl Stream<Item = EventResult<ChatChunk>> + Send + '_ {
        futures_util::stream::iter([
            Ok(Event::data(
                ChatChunk::text("Checking").with_usage(Usage::new(7, 0)),
            )),
            Ok(Event::error(
                Error::new(ErrorCode::ToolFailed, "lookup failed").with_op("tool"),
            )),
            Ok(Event::data(
                ChatChunk::finished(FinishReason::Stop).with_usage(Usage::new(0, 3)),
            )),
            Ok(Event::done()),
        ])
    }
}

#[tokio::test]
async fn generate_failing_at_an_error_event_fails_the_span() {
    let (captured, _guard) = capture();
    let err = ReportsAnError
        .traced()
        .generate(Context::new(), ask("m"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ToolFailed);
    let span = captured.span("chat");
    assert_eq!(
        span.fields["beluga.outcome"],
        value("dropped"),
        "generate stopped there"
    );
    assert_eq!(span.fields["error.type"], value("tool_failed"));
    assert_eq!(span.fields["otel.status_code"], value("error"));
    assert_eq!(
        span.fields["otel.status_description"],
        value("tool [tool_failed]: lookup failed")
    );
    assert_eq!(
        span.recorded("gen_ai.usage.input_tokens"),
        [value(7_i64)],
        "the usage so far"
    );
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
}

#[tokio::test(start_paused = true)]
async fn a_consumer_that_drops_the_stream_closes_the_span_as_dropped() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([Turn::text("one two three four")
        .with_usage(Usage::new(5, 4))
        .with_token_delay(Duration::from_millis(10))])
    .traced();
    {
        let mut stream = pin!(model.stream(Context::new(), ask("m")));
        assert!(stream.next().await.unwrap().is_ok());
        assert!(stream.next().await.unwrap().is_ok());
        assert!(!captured.span("chat").closed);
    }
    let span = captured.span("chat");
    assert!(span.closed);
    assert_eq!(span.fields["beluga.outcome"], value("dropped"));
    assert_eq!(span.fields["beluga.items"], value(2_i64));
    assert_eq!(span.fields["beluga.time_to_first_item_ms"], value(10.0));
    assert!(
        !span.fields.contains_key("gen_ai.usage.input_tokens"),
        "the usage comes with the finish, which never came"
    );
    assert!(!span.fields.contains_key("gen_ai.response.finish_reasons"));
}

#[tokio::test]
async fn hooks_and_tool_calls_happen_inside_the_span() {
    let (captured, _guard) = capture();
    let hooks = Hooks::new()
        .on_tool_call(|_ctx, call| tracing::info!(tool = %call.name, "tool call"))
        .on_done(|_ctx, info| tracing::info!(reason = %info.finish_reason, "done"));
    let model = ScriptedModel::new([Turn::text("Let me check.").with_tool_call(
        "c1",
        "get_weather",
        json!({"city": "Oslo"}),
    )])
    .with_hooks(hooks)
    .traced();
    let response = model.generate(Context::new(), ask("m")).await.unwrap();
    assert_eq!(response.tool_calls().len(), 1);

    let span = captured.span("chat");
    assert_eq!(
        span.fields["gen_ai.response.finish_reasons"],
        value(r#"["tool_calls"]"#)
    );
    let logged: Vec<_> = captured
        .events()
        .into_iter()
        .map(|e| (e.fields["message"].clone(), e.span))
        .collect();
    assert_eq!(
        logged,
        [
            (value("tool call"), Some(span.id)),
            (value("done"), Some(span.id))
        ]
    );
}

#[tokio::test]
async fn each_call_has_its_own_span() {
    let (captured, _guard) = capture();
    let model = ScriptedModel::repeating(Turn::text("Again.")).traced();
    for id in ["a", "b", "c"] {
        let ctx = Context::new().with_request_id(id);
        model.generate(ctx, ask("m")).await.unwrap();
    }
    let ids: Vec<_> = captured
        .spans_named("chat")
        .into_iter()
        .map(|s| {
            assert!(s.closed);
            s.fields["beluga.request_id"].clone()
        })
        .collect();
    assert_eq!(ids, [value("a"), value("b"), value("c")]);
}

#[tokio::test(start_paused = true)]
async fn the_time_to_the_first_token_skips_a_usage_only_chunk() {
    let (captured, _guard) = capture();
    // As Anthropic starts: a chunk with the prompt's usage and no text, then the text.
    let model = ScriptedModel::new([Turn::from_chunks(vec![
        ChatChunk::default().with_usage(Usage::new(12, 0)),
        ChatChunk::text("Hi"),
        ChatChunk::finished(FinishReason::Stop).with_usage(Usage::new(0, 1)),
    ])
    .with_token_delay(Duration::from_millis(10))])
    .traced();
    model.generate(Context::new(), ask("m")).await.unwrap();
    let span = captured.span("chat");
    assert_eq!(
        span.fields["beluga.time_to_first_item_ms"],
        value(10.0),
        "the first data event"
    );
    assert_eq!(
        span.recorded("beluga.time_to_first_token_ms"),
        [value(20.0)],
        "the first chunk with text"
    );

    // A tool call's first piece is a first token too; an answer without any has none.
    let (captured, _guard) = capture();
    let model = ScriptedModel::new([
        Turn::text("").with_tool_call("c1", "get_weather", json!({})),
        Turn::from_chunks(vec![ChatChunk::finished(FinishReason::Stop)]),
    ])
    .traced();
    model.generate(Context::new(), ask("m")).await.unwrap();
    model.generate(Context::new(), ask("m")).await.unwrap();
    let spans = captured.spans_named("chat");
    assert!(
        spans[0]
            .fields
            .contains_key("beluga.time_to_first_token_ms")
    );
    assert!(
        !spans[1]
            .fields
            .contains_key("beluga.time_to_first_token_ms")
    );
}

#[tokio::test]
async fn a_chat_stream_cut_before_its_finish_is_truncated() {
    let (captured, _guard) = capture();
    let request = ask("m");
    let ctx = Context::new();
    let cut = futures_util::stream::iter([Ok(Event::data(ChatChunk::text("It is")))]);
    let err = cut
        .traced_with(ChatSpan::new(&request), &ctx)
        .collect_response()
        .await
        .unwrap_err();
    assert!(beluga_llm::error::is_truncated(&err));
    let span = captured.span("chat");
    assert_eq!(span.fields["beluga.outcome"], value("ended"));
    assert_eq!(span.fields["error.type"], value("provider_unavailable"));
    assert_eq!(span.fields["otel.status_code"], value("error"));
}
