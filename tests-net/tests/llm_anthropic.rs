//! `Anthropic` against a real HTTP server on 127.0.0.1 (axum) serving the Messages stream:
//! `message_start`, text and `tool_use` blocks with `input_json_delta`, `message_delta` usage,
//! pings, error events, malformed JSON, failed statuses, a stall, and cancellation that reaches
//! the network. No mock of the client.

use std::pin::pin;
use std::time::Duration;

use beluga_core::runnable::{BatchOptions, RetryPolicy};
use beluga_core::{Context, Error, ErrorCode, Event, EventStreamExt, Runnable, RunnableExt};
use beluga_llm::anthropic::Anthropic;
use beluga_llm::error::is_truncated;
use beluga_llm::schema::{
    AssistantMessage, ChatChunk, ChatRequest, FinishReason, Message, ToolCall, ToolDefinition,
    Usage,
};
use beluga_llm::{ChatModelExt, ChatStreamExt};
use beluga_net_tests::{alive_tasks, eventually};
use futures_util::StreamExt;
use serde_json::json;

#[path = "llm_http/mod.rs"]
mod llm_http;

use llm_http::{
    Piece, Reply, Server, anthropic_end, anthropic_ping, anthropic_start, anthropic_text_block,
    anthropic_tool_block, event,
};

fn model(server: &Server) -> Anthropic {
    Anthropic::new("claude-test")
        .with_base_url(server.url())
        .with_api_key("sk-ant-test")
}

fn request() -> ChatRequest {
    ChatRequest::new("", vec![Message::user("Say hello.")])
}

async fn run(model: &Anthropic) -> (Vec<Event<ChatChunk>>, Option<Error>) {
    let collected = model
        .stream(Context::new(), request())
        .collect_events()
        .await;
    (collected.events, collected.error)
}

fn texts(events: &[Event<ChatChunk>]) -> String {
    events
        .iter()
        .filter_map(Event::payload)
        .map(|c| c.delta.as_str())
        .collect()
}

fn answer(parts: impl IntoIterator<Item = Vec<String>>) -> Reply {
    Reply::sse(parts.into_iter().flatten())
}

#[tokio::test]
async fn text_with_pings_streams_in_order_with_usage_and_the_stop_reason() {
    let server = Server::start([answer([
        vec![anthropic_start(20, 100), anthropic_ping()],
        anthropic_text_block(0, &["Hel", "lo, ", "world\n\"quoted\""]),
        vec![anthropic_ping()],
        anthropic_end("end_turn", 7),
    ])])
    .await;
    let (events, error) = run(&model(&server)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(texts(&events), "Hello, world\n\"quoted\"");
    let chunks: Vec<&ChatChunk> = events.iter().filter_map(Event::payload).collect();
    // Cache reads count as input and are reported as cached.
    assert_eq!(
        chunks[0].usage,
        Some(Usage::new(120, 1).with_cached_tokens(100))
    );
    let last = chunks.last().unwrap();
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert_eq!(last.usage, Some(Usage::new(120, 7).with_cached_tokens(100)));
    assert_eq!(chunks.len(), 5, "usage, three texts, the end: {chunks:?}");
    assert!(events.last().unwrap().is_done());

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-test");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.body["model"], "claude-test");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["max_tokens"], 4096);
}

#[tokio::test]
async fn tool_use_arguments_split_across_many_deltas_assemble_into_one_call_per_block() {
    let arguments = r#"{"city": "Tromsø", "days": [1, 2]}"#;
    let fragments: Vec<String> = arguments.chars().map(String::from).collect();
    let fragments: Vec<&str> = fragments.iter().map(String::as_str).collect();
    let server = Server::start([answer([
        vec![anthropic_start(40, 0)],
        anthropic_text_block(0, &["Checking both."]),
        // Block indices 1 and 2 are the calls 0 and 1.
        anthropic_tool_block(1, "toolu_a", "get_weather", &fragments),
        anthropic_tool_block(2, "toolu_b", "now", &[]),
        anthropic_end("tool_use", 30),
    ])])
    .await;
    let weather = ToolDefinition::new("get_weather", "Weather.", json!({"type": "object"}));
    let response = model(&server)
        .generate(Context::new(), request().with_tools(vec![weather]))
        .await
        .unwrap();
    assert_eq!(response.text(), "Checking both.");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, Some(Usage::new(40, 30)));
    let calls = response.tool_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0],
        ToolCall::new(
            "toolu_a",
            "get_weather",
            serde_json::from_str(arguments).unwrap()
        )
    );
    assert_eq!(calls[1], ToolCall::new("toolu_b", "now", json!({})));
    let sent = &server.requests()[0];
    assert_eq!(
        sent.body["tools"][0]["input_schema"],
        json!({"type": "object"})
    );
}

#[tokio::test]
async fn a_conversation_with_tool_results_is_sent_as_alternating_turns() {
    let server = Server::start([answer([
        vec![anthropic_start(1, 0)],
        anthropic_text_block(0, &["ok"]),
        anthropic_end("end_turn", 1),
    ])])
    .await;
    let calls = vec![
        ToolCall::new("toolu_a", "get_weather", json!({"city": "Oslo"})),
        ToolCall::new("toolu_b", "now", json!({})),
    ];
    let request = ChatRequest::new(
        "claude-other",
        vec![
            Message::system("Be brief."),
            Message::user("Weather and time in Oslo?"),
            AssistantMessage::new("").with_tool_calls(calls).into(),
            Message::tool_result("toolu_a", "18°C"),
            beluga_llm::ToolResult::error("toolu_b", "clock offline").into(),
        ],
    )
    .with_stop(vec!["END".to_owned()]);
    model(&server)
        .generate(Context::new(), request)
        .await
        .unwrap();
    let body = &server.requests()[0].body;
    assert_eq!(body["model"], "claude-other", "the request's model wins");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Weather and time in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "clock offline", "is_error": true},
            ]},
        ])
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_its_code() {
    let overloaded = event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let limited = event(
        "error",
        &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}),
    );
    let server = Server::start([
        answer([
            vec![anthropic_start(5, 0)],
            anthropic_text_block(0, &["Partial "]),
            vec![overloaded],
        ]),
        answer([vec![anthropic_start(5, 0), limited]]),
    ])
    .await;
    let model = model(&server);
    let (events, error) = run(&model).await;
    assert_eq!(texts(&events), "Partial ");
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(error.op(), "anthropic.messages");
    assert!(
        error.message().contains("overloaded_error: Overloaded"),
        "{error}"
    );
    let (_, error) = run(&model).await;
    assert_eq!(error.unwrap().code(), ErrorCode::RateLimit);
}

#[tokio::test]
async fn malformed_json_and_a_truncated_body_end_the_stream_with_clear_errors() {
    let server = Server::start([
        answer([
            vec![anthropic_start(5, 0)],
            anthropic_text_block(0, &["Fine."]),
            vec!["event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"x\n\n".to_owned()],
        ]),
        // No message_delta, no message_stop: the body just ends.
        answer([vec![anthropic_start(5, 0)], anthropic_text_block(0, &["Half"])]),
    ])
    .await;
    let model = model(&server);
    let (events, error) = run(&model).await;
    assert_eq!(texts(&events), "Fine.");
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert!(error.message().contains("cannot be read"), "{error}");
    let (events, error) = run(&model).await;
    assert_eq!(texts(&events), "Half");
    assert!(is_truncated(&error.unwrap()));
}

#[tokio::test(start_paused = true)]
async fn statuses_map_onto_codes_and_a_529_with_retry_after_is_retried() {
    let server = Server::start([
        Reply::error(401, "invalid x-api-key"),
        Reply::error(400, "max_tokens: must be at most 8192"),
        Reply::Status {
            status: 529,
            headers: vec![("retry-after", "2".to_owned())],
            body: json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                .to_string(),
        },
        answer([
            vec![anthropic_start(3, 0)],
            anthropic_text_block(0, &["ok"]),
            anthropic_end("end_turn", 1),
        ]),
    ])
    .await;
    let model = model(&server);
    let (_, error) = run(&model).await;
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::Auth);
    assert!(error.message().ends_with("invalid x-api-key"), "{error}");
    let (_, error) = run(&model).await;
    assert_eq!(error.unwrap().code(), ErrorCode::InvalidInput);

    let options = BatchOptions::default().with_retry(
        RetryPolicy::new(3)
            .unwrap()
            .with_initial_backoff(Duration::from_millis(10))
            .with_jitter(0.0),
    );
    let start = tokio::time::Instant::now();
    let results = model.batch(&Context::new(), [request()], &options).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After waited out"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_stall_past_the_idle_timeout_ends_with_deadline_exceeded() {
    let mut pieces: Vec<Piece> = [anthropic_start(5, 0), anthropic_ping()]
        .into_iter()
        .map(Piece::Text)
        .collect();
    pieces.push(Piece::Stall);
    let server = Server::start([Reply::Stream(pieces)]).await;
    let model = model(&server).with_idle_timeout(Duration::from_secs(10));
    let (_, error) = run(&model).await;
    assert_eq!(error.unwrap().code(), ErrorCode::DeadlineExceeded);
    eventually("the server sees the connection closed", || {
        server.bodies_dropped_early() == 1
    })
    .await;
}

#[tokio::test]
async fn dropping_the_stream_or_cancelling_its_context_closes_the_connection() {
    let start = || {
        let mut pieces: Vec<Piece> = [anthropic_start(5, 0)]
            .into_iter()
            .chain(anthropic_text_block(0, &["Hel"]))
            .map(Piece::Text)
            .collect();
        pieces.push(Piece::Stall);
        Reply::Stream(pieces)
    };
    let server = Server::start([start(), start()]).await;
    let baseline = alive_tasks();
    let model = model(&server);
    {
        let stream = model
            .stream(Context::new(), request())
            .accumulate_tool_calls();
        let mut stream = pin!(stream);
        stream.next().await.unwrap().unwrap(); // usage
        stream.next().await.unwrap().unwrap(); // "Hel"
    }
    eventually(
        "the server sees the dropped stream's connection closed",
        || server.bodies_dropped_early() == 1,
    )
    .await;

    let ctx = Context::new();
    let mut stream = pin!(model.stream(ctx.clone(), request()));
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    ctx.cancel();
    assert_eq!(
        stream.next().await.unwrap().unwrap_err().code(),
        ErrorCode::Cancelled
    );
    eventually(
        "the server sees the cancelled stream's connection closed",
        || server.bodies_dropped_early() == 2,
    )
    .await;
    eventually("every task of the calls has ended", || {
        alive_tasks() == baseline
    })
    .await;
}
