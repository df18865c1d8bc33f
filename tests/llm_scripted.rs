//! `ScriptedModel`: how turns are chunked, delays on Tokio's paused clock, cancellation and
//! deadlines during a delay, failures, and running out of script.

use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, EventStreamExt, Runnable};
use beluga_llm::error::is_truncated;
use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message, ToolCallDelta, Usage};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::{ChatModelExt, ChatStreamExt};
use beluga_tests::alive_tasks;
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new("", vec![Message::user(text)])
}

async fn chunks(model: &ScriptedModel) -> Vec<ChatChunk> {
    let collected = model
        .stream(Context::new(), ask("?"))
        .collect_events()
        .await;
    assert!(collected.error.is_none(), "{:?}", collected.error);
    assert!(collected.events.last().unwrap().is_done());
    collected.data().cloned().collect()
}

#[tokio::test]
async fn text_is_streamed_a_word_at_a_time_then_the_finish_with_the_usage() {
    let model =
        ScriptedModel::new([Turn::text("  Hello,\tbig  world!\n").with_usage(Usage::new(9, 4))]);
    let chunks = chunks(&model).await;
    let deltas: Vec<&str> = chunks.iter().map(|c| c.delta.as_str()).collect();
    assert_eq!(deltas, ["  Hello,", "\tbig", "  world!", "\n", ""]);
    let last = chunks.last().unwrap();
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert_eq!(last.usage, Some(Usage::new(9, 4)));
    assert!(
        chunks[..4]
            .iter()
            .all(|c| c.finish_reason.is_none() && c.usage.is_none())
    );
}

#[tokio::test]
async fn tool_calls_stream_as_pieces_and_reassemble_exactly() {
    let arguments = json!({"city": "Tromsø", "days": [1, 2, 3], "note": "ünïcödé 😀 text"});
    let model = ScriptedModel::repeating(
        Turn::new()
            .with_tool_call("c1", "forecast", arguments.clone())
            .with_tool_call("c2", "now", json!({})),
    );
    let chunks = chunks(&model).await;
    let pieces: Vec<&ToolCallDelta> = chunks.iter().flat_map(|c| &c.tool_call_deltas).collect();
    assert_eq!(pieces[0], &ToolCallDelta::start(0, "c1", "forecast"));
    let text: String = pieces
        .iter()
        .filter(|d| d.index == 0)
        .map(|d| d.arguments.as_str())
        .collect();
    assert_eq!(text, arguments.to_string());
    assert!(
        pieces.iter().all(|d| d.arguments.chars().count() <= 8),
        "fragments of at most 8 characters"
    );
    assert!(
        pieces.len() > 6,
        "the arguments are split: {}",
        pieces.len()
    );
    assert_eq!(
        chunks.last().unwrap().finish_reason,
        Some(FinishReason::ToolCalls)
    );

    let response = model.generate(Context::new(), ask("?")).await.unwrap();
    assert_eq!(response.tool_calls()[0].arguments, arguments);
    assert_eq!(response.tool_calls()[1].name, "now");
}

#[tokio::test]
async fn finish_reason_truncation_and_failure_are_scripted() {
    let model = ScriptedModel::new([
        Turn::text("on and on").with_finish_reason(FinishReason::Length),
        Turn::text("cut").truncated().with_usage(Usage::new(1, 1)),
        Turn::text("Hel").failing_with(Error::new(ErrorCode::ProviderUnavailable, "reset")),
        Turn::from_chunks(vec![ChatChunk::text("raw")]),
    ]);
    let long = model.generate(Context::new(), ask("1")).await.unwrap();
    assert_eq!(long.finish_reason, FinishReason::Length);

    // Truncated: the usage still comes, on a chunk of its own, but no finish reason.
    let collected = model
        .stream(Context::new(), ask("2"))
        .collect_events()
        .await;
    assert!(collected.data().all(|c| c.finish_reason.is_none()));
    assert_eq!(
        collected.data().last().unwrap().usage,
        Some(Usage::new(1, 1))
    );
    assert!(collected.events.last().unwrap().is_done());

    let collected = model
        .stream(Context::new(), ask("3"))
        .collect_events()
        .await;
    assert_eq!(collected.data().count(), 1);
    assert_eq!(collected.error.unwrap().message(), "reset");

    // Chunks as given: no finish chunk added.
    let err = model.generate(Context::new(), ask("4")).await.unwrap_err();
    assert!(is_truncated(&err));
}

#[tokio::test]
async fn turns_are_taken_in_order_on_the_first_poll_and_the_script_can_run_out() {
    let model = ScriptedModel::new([Turn::text("first"), Turn::text("second")]);
    // Created, never polled: nothing taken, nothing recorded.
    drop(model.stream(Context::new(), ask("ignored")));
    assert_eq!(model.remaining(), 2);
    assert!(model.requests().is_empty());

    assert_eq!(
        model
            .generate(Context::new(), ask("a"))
            .await
            .unwrap()
            .text(),
        "first"
    );
    assert_eq!(
        model
            .generate(Context::new(), ask("b"))
            .await
            .unwrap()
            .text(),
        "second"
    );
    let err = model.generate(Context::new(), ask("c")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(
        err.message().contains("no turn left: 2 were scripted"),
        "{err}"
    );

    let asked: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.messages[0].content().to_owned())
        .collect();
    assert_eq!(asked, ["a", "b", "c"]);

    let again = ScriptedModel::repeating(Turn::text("same"));
    for _ in 0..3 {
        assert_eq!(
            again
                .generate(Context::new(), ask("?"))
                .await
                .unwrap()
                .text(),
            "same"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn delays_follow_tokio_s_clock() {
    let model =
        ScriptedModel::new([Turn::text("a b c d").with_token_delay(Duration::from_millis(250))]);
    let start = Instant::now();
    let mut stream = std::pin::pin!(model.stream(Context::new(), ask("?")));
    let mut arrivals = Vec::new();
    while let Some(item) = stream.next().await {
        if item.unwrap().is_data() {
            arrivals.push(start.elapsed().as_millis());
        }
    }
    // Four words and the finish chunk, each after its pause.
    assert_eq!(arrivals, [250, 500, 750, 1000, 1250]);
}

#[tokio::test(start_paused = true)]
async fn cancellation_and_deadlines_end_the_stream_during_a_delay() {
    let slow = || {
        ScriptedModel::repeating(Turn::text("a b c").with_token_delay(Duration::from_secs(3600)))
    };

    let model = slow();
    let ctx = Context::new();
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        canceller.cancel();
    });
    let start = Instant::now();
    let collected = model.stream(ctx, ask("?")).collect_events().await;
    assert_eq!(collected.error.unwrap().code(), ErrorCode::Cancelled);
    assert!(collected.events.is_empty());
    assert_eq!(start.elapsed(), Duration::from_millis(30));

    let model = slow();
    let ctx = Context::new().with_timeout(Duration::from_millis(40));
    let start = Instant::now();
    let err = model.generate(ctx, ask("?")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert!(
        start.elapsed() < Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_is_spawned() {
    let before = alive_tasks();
    let model =
        ScriptedModel::repeating(Turn::text("one two").with_tool_call("c1", "now", json!({})));
    let mut stream = std::pin::pin!(
        model
            .stream(Context::new(), ask("?"))
            .accumulate_tool_calls()
    );
    while let Some(item) = stream.next().await {
        item.unwrap();
        assert_eq!(alive_tasks(), before);
    }
}
