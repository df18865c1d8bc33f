//! `OpenAiCompatible` against a real HTTP server on 127.0.0.1 (axum) serving OpenAI's
//! chat-completions stream: text, tool calls in pieces, usage, keep-alives, errors in and out
//! of the stream, stalls, retries, cancellation that reaches the network, and a slow consumer.
//! No mock of the client: the provider's own code talks to the server.

use std::pin::pin;
use std::time::Duration;

use beluga_core::runnable::{BatchOptions, RetryPolicy};
use beluga_core::{
    Context, Error, ErrorCode, Event, EventKind, EventStreamExt, Runnable, RunnableExt,
};
use beluga_llm::error::is_truncated;
use beluga_llm::openai::OpenAiCompatible;
use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message, ToolDefinition, Usage};
use beluga_llm::{ChatModelExt, ChatStreamExt};
use beluga_net_tests::{alive_tasks, eventually};
use futures_util::StreamExt;
use serde_json::json;

#[path = "llm_http/mod.rs"]
mod llm_http;

use llm_http::{
    Piece, Reply, Server, data, done, openai_chunk, openai_finish, openai_text, openai_tool,
    openai_usage,
};

fn model(server: &Server) -> OpenAiCompatible {
    OpenAiCompatible::new(server.url(), "test-model").with_api_key("sk-test")
}

fn request() -> ChatRequest {
    ChatRequest::new("", vec![Message::user("Say hello.")])
}

/// Every event of one call, and its terminal error.
async fn run(model: &OpenAiCompatible, ctx: Context) -> (Vec<Event<ChatChunk>>, Option<Error>) {
    let collected = model.stream(ctx, request()).collect_events().await;
    (collected.events, collected.error)
}

fn texts(events: &[Event<ChatChunk>]) -> String {
    events
        .iter()
        .filter_map(Event::payload)
        .map(|c| c.delta.as_str())
        .collect()
}

#[tokio::test]
async fn plain_text_streams_in_order_with_the_finish_reason_and_a_usage_only_last_chunk() {
    let server = Server::start([Reply::sse([
        openai_chunk(&json!({"role": "assistant", "content": ""}), None),
        openai_text("Hel"),
        openai_text("lo, "),
        openai_text("world\n\"quoted\""),
        openai_finish("stop"),
        openai_usage(12, 5),
        done(),
    ])])
    .await;
    let model = model(&server);
    let (events, error) = run(&model, Context::new()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(texts(&events), "Hello, world\n\"quoted\"");
    // Three text chunks, the finish, the usage; the role-only chunk gives nothing.
    let chunks: Vec<&ChatChunk> = events.iter().filter_map(Event::payload).collect();
    assert_eq!(chunks.len(), 5);
    assert_eq!(chunks[3].finish_reason, Some(FinishReason::Stop));
    assert_eq!(chunks[4].usage, Some(Usage::new(12, 5)));
    assert!(events.last().unwrap().is_done());

    let response = model.generate(Context::new(), request()).await;
    assert_eq!(
        response.unwrap_err().code(),
        ErrorCode::ProviderUnavailable,
        "the second call found no reply scripted (500)"
    );

    let sent = server.requests();
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(sent[0].body["model"], "test-model");
    assert_eq!(sent[0].body["stream"], true);
    assert_eq!(
        sent[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(
        sent[0].body["messages"],
        json!([{"role": "user", "content": "Say hello."}])
    );
}

#[tokio::test]
async fn generate_assembles_the_answer_from_the_stream() {
    let server = Server::start([Reply::sse([
        openai_text("Fjords: "),
        openai_text("Geiranger."),
        openai_finish("length"),
        openai_usage(30, 4),
        done(),
    ])])
    .await;
    let response = model(&server)
        .generate(Context::new(), request())
        .await
        .unwrap();
    assert_eq!(response.text(), "Fjords: Geiranger.");
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(response.usage, Some(Usage::new(30, 4)));
}

#[tokio::test]
async fn tool_call_arguments_split_across_many_chunks_assemble_into_one_call() {
    let arguments = r#"{"city": "Tromsø", "unit": "celsius", "days": [1, 2, 3]}"#;
    let mut body = vec![
        openai_text("Let me check."),
        openai_tool(0, Some("call_1"), Some("get_weather"), ""),
    ];
    // One character per chunk (on char boundaries: `ø` is two bytes).
    body.extend(
        arguments
            .chars()
            .map(|c| openai_tool(0, None, None, &c.to_string())),
    );
    body.extend([openai_finish("tool_calls"), openai_usage(50, 20), done()]);
    let server = Server::start([Reply::sse(body.clone()), Reply::sse(body)]).await;
    let model = model(&server);
    let weather = ToolDefinition::new("get_weather", "Weather.", json!({"type": "object"}));
    let request = request().with_tools(vec![weather]);

    let events = model
        .stream(Context::new(), request.clone())
        .accumulate_tool_calls()
        .collect_events()
        .await;
    assert!(events.error.is_none());
    let calls: Vec<_> = events
        .events
        .iter()
        .filter_map(|e| match e.kind() {
            EventKind::ToolCall(chunk) => chunk.tool_call.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_1");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(
        calls[0].arguments,
        serde_json::from_str::<serde_json::Value>(arguments).unwrap()
    );

    let response = model.generate(Context::new(), request).await.unwrap();
    assert_eq!(response.text(), "Let me check.");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.tool_calls()[0].arguments["city"], "Tromsø");
    let sent = server.requests();
    assert_eq!(sent[0].body["tools"][0]["type"], "function");
    assert_eq!(sent[0].body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn an_index_reused_for_a_new_id_starts_a_new_call() {
    // Some gateways number every call 0: the ids tell them apart.
    let server = Server::start([Reply::sse([
        openai_tool(0, Some("call_a"), Some("now"), "{}"),
        openai_tool(0, Some("call_b"), Some("add"), r#"{"a": 1,"#),
        openai_tool(0, None, None, r#" "b": 2}"#),
        openai_finish("tool_calls"),
        done(),
    ])])
    .await;
    let response = model(&server)
        .generate(Context::new(), request())
        .await
        .unwrap();
    let calls = response.tool_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_a", "now")
    );
    assert_eq!(
        (calls[1].id.as_str(), calls[1].name.as_str()),
        ("call_b", "add")
    );
    assert_eq!(calls[1].arguments, json!({"a": 1, "b": 2}));
}

#[tokio::test]
async fn keep_alive_comments_and_pings_give_no_events() {
    let server = Server::start([Reply::sse([
        ": keep-alive\n\n".to_owned(),
        openai_text("a"),
        ": OPENROUTER PROCESSING\n\n".to_owned(),
        "event: ping\ndata: {}\n\n".to_owned(),
        openai_text("b"),
        ": keep-alive\n\n".to_owned(),
        openai_finish("stop"),
        done(),
    ])])
    .await;
    let (events, error) = run(&model(&server), Context::new()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events.len(), 4, "a, b, the finish, done: {events:?}");
    assert_eq!(texts(&events), "ab");
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_the_providers_code_after_the_text() {
    let server = Server::start([
        Reply::sse([
            openai_text("Partial "),
            data(&json!({"error": {"message": "The server is overloaded", "type": "server_error"}})),
            openai_text("never read"),
        ]),
        Reply::sse([
            openai_text("x"),
            "event: error\ndata: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"rate_limit_error\"}}\n\n"
                .to_owned(),
        ]),
    ])
    .await;
    let model = model(&server);
    let (events, error) = run(&model, Context::new()).await;
    assert_eq!(texts(&events), "Partial ");
    let error = error.expect("the stream ends with the error");
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(error.op(), "openai.chat");
    assert!(
        error.message().contains("The server is overloaded"),
        "{error}"
    );

    let (_, error) = run(&model, Context::new()).await;
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::RateLimit);
    assert!(error.message().contains("Rate limit reached"), "{error}");
}

#[tokio::test]
async fn malformed_json_ends_the_stream_with_a_clear_error() {
    let server = Server::start([Reply::sse([
        openai_text("Fine so far."),
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"unterminated\n\n"
            .to_owned(),
        openai_text("never read"),
    ])])
    .await;
    let (events, error) = run(&model(&server), Context::new()).await;
    assert_eq!(texts(&events), "Fine so far.");
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert!(error.message().contains("cannot be read"), "{error}");
    assert!(
        error.message().contains("unterminated"),
        "quotes the data: {error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stall_past_the_idle_timeout_ends_with_deadline_exceeded_and_closes_the_connection() {
    let server = Server::start([Reply::Stream(vec![
        Piece::Text(openai_text("Thinking")),
        Piece::Stall,
    ])])
    .await;
    let model = model(&server).with_idle_timeout(Duration::from_secs(5));
    let start = tokio::time::Instant::now();
    let (events, error) = run(&model, Context::new()).await;
    assert_eq!(texts(&events), "Thinking");
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded);
    assert!(error.message().contains("5s"), "{error}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    eventually("the server sees the connection closed", || {
        server.bodies_dropped_early() == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn keep_alive_comments_keep_a_slow_answer_within_the_idle_timeout() {
    let server = Server::start([Reply::Stream(vec![
        Piece::Text(openai_text("Slow")),
        Piece::KeepAlive {
            every: Duration::from_secs(2),
            times: 10,
        },
        Piece::Text(openai_text(" answer")),
        Piece::Text(openai_finish("stop")),
        Piece::Text(done()),
    ])])
    .await;
    let model = model(&server).with_idle_timeout(Duration::from_secs(3));
    let start = tokio::time::Instant::now();
    let (events, error) = run(&model, Context::new()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(texts(&events), "Slow answer");
    assert!(
        start.elapsed() >= Duration::from_secs(20),
        "20 s of keep-alives"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_retried_by_batch_after_the_delay_and_then_succeeds() {
    let server = Server::start([
        Reply::Status {
            status: 429,
            headers: vec![("retry-after", "3".to_owned())],
            body: json!({"error": {"message": "Rate limit reached", "type": "requests"}})
                .to_string(),
        },
        Reply::sse([openai_text("ok"), openai_finish("stop"), done()]),
    ])
    .await;
    let model = model(&server);
    let options = BatchOptions::default().with_retry(
        RetryPolicy::new(3)
            .unwrap()
            .with_initial_backoff(Duration::from_millis(10))
            .with_jitter(0.0),
    );
    let start = tokio::time::Instant::now();
    let results = model.batch(&Context::new(), [request()], &options).await;
    let last = results[0]
        .as_ref()
        .expect("succeeded on the second attempt");
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert_eq!(server.requests().len(), 2);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3_100),
        "Retry-After: 3 waited out, not the 10 ms backoff: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_is_an_auth_error_and_is_not_retried() {
    let server = Server::start([
        Reply::error(401, "Incorrect API key provided: sk-test"),
        Reply::sse([openai_text("never"), openai_finish("stop"), done()]),
    ])
    .await;
    let options = BatchOptions::default().with_retry(RetryPolicy::new(5).unwrap());
    let results = model(&server)
        .batch(&Context::new(), [request()], &options)
        .await;
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.code(), ErrorCode::Auth);
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "openai.chat [auth_error]: HTTP 401 Unauthorized: Incorrect API key provided: sk-test"
    );
    assert_eq!(server.requests().len(), 1, "never retried");
}

#[tokio::test]
async fn failed_statuses_map_onto_codes_with_the_providers_message() {
    let cases = [
        (400, ErrorCode::InvalidInput),
        (403, ErrorCode::Auth),
        (404, ErrorCode::NotFound),
        (408, ErrorCode::Timeout),
        (422, ErrorCode::InvalidInput),
        (500, ErrorCode::ProviderUnavailable),
        (502, ErrorCode::ProviderUnavailable),
        (503, ErrorCode::ProviderUnavailable),
        (504, ErrorCode::Timeout),
    ];
    let replies = cases
        .iter()
        .map(|(status, _)| Reply::error(*status, &format!("status {status} from the test")));
    let server = Server::start(replies).await;
    let model = model(&server);
    for (status, code) in cases {
        let (_, error) = run(&model, Context::new()).await;
        let error = error.unwrap();
        assert_eq!(error.code(), code, "HTTP {status}");
        assert!(
            error.message().starts_with(&format!("HTTP {status} ")),
            "{error}"
        );
        assert!(
            error
                .message()
                .ends_with(&format!("status {status} from the test")),
            "{error}"
        );
    }
    // A 503 with an HTTP-date Retry-After carries the delay too.
    let at = httpdate_in(Duration::from_secs(120));
    let server = Server::start([Reply::Status {
        status: 503,
        headers: vec![("retry-after", at)],
        body: "upstream overloaded".to_owned(),
    }])
    .await;
    let (_, error) = run(&self::model(&server), Context::new()).await;
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert!(error.message().ends_with("upstream overloaded"), "{error}");
    let delay = error.retry_after().unwrap();
    assert!(
        delay > Duration::from_secs(110) && delay <= Duration::from_secs(120),
        "{delay:?}"
    );
}

fn httpdate_in(delay: Duration) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + delay)
}

#[tokio::test]
async fn the_server_closing_mid_stream_is_a_retryable_error_after_the_text_received() {
    let server = Server::start([
        // Cut: the chunked body never ends.
        // (The pause lets the text reach the client before the cut.)
        Reply::Stream(vec![
            Piece::Text(openai_text("Half an ")),
            Piece::Pause(Duration::from_millis(50)),
            Piece::Cut,
        ]),
        // A clean end of the body, but no finish reason and no [DONE]: truncated.
        Reply::sse([openai_text("Half an "), openai_text("answer")]),
    ])
    .await;
    let model = model(&server);
    let (events, error) = run(&model, Context::new()).await;
    assert_eq!(texts(&events), "Half an ");
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert!(error.is_retryable());
    assert!(error.message().contains("connection failed"), "{error:#}");

    let (events, error) = run(&model, Context::new()).await;
    assert_eq!(texts(&events), "Half an answer");
    let error = error.unwrap();
    assert!(is_truncated(&error), "{error:#}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_refused_connection_is_provider_unavailable() {
    // Bind a port, then free it: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let model = OpenAiCompatible::new(format!("http://{addr}/v1"), "m");
    let (_, error) = run(&model, Context::new()).await;
    let error = error.unwrap();
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert!(error.message().contains("cannot connect"), "{error:#}");
}

#[tokio::test]
async fn dropping_the_stream_mid_answer_closes_the_connection_and_leaves_no_task() {
    let server = Server::start([Reply::Stream(vec![
        Piece::Text(openai_text("Hel")),
        Piece::Text(openai_text("lo")),
        Piece::Stall,
    ])])
    .await;
    let baseline = alive_tasks();
    let model = model(&server);
    {
        let mut stream = pin!(model.stream(Context::new(), request()));
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.payload().unwrap().delta, "Hel");
        assert!(alive_tasks() > baseline, "the connection's tasks run");
        assert_eq!(server.bodies_dropped_early(), 0);
    }
    eventually("the server sees the connection closed", || {
        server.bodies_dropped_early() == 1
    })
    .await;
    eventually("every task of the call has ended", || {
        alive_tasks() == baseline
    })
    .await;
}

#[tokio::test]
async fn cancelling_the_context_mid_answer_closes_the_connection_before_the_stream_is_dropped() {
    let server = Server::start([Reply::Stream(vec![
        Piece::Text(openai_text("Hel")),
        Piece::Stall,
    ])])
    .await;
    let baseline = alive_tasks();
    let model = model(&server);
    let ctx = Context::new();
    let mut stream = pin!(model.stream(ctx.clone(), request()));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.payload().unwrap().delta, "Hel");
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        canceller.cancel();
    });
    // Parked waiting for the stalled server; the cancellation wakes it.
    let end = stream.next().await.unwrap().unwrap_err();
    assert_eq!(end.code(), ErrorCode::Cancelled);
    eventually("the server sees the connection closed", || {
        server.bodies_dropped_early() == 1
    })
    .await;
    eventually("every task of the call has ended", || {
        alive_tasks() == baseline
    })
    .await;
    assert!(
        stream.next().await.is_none(),
        "fused after the terminal item"
    );
}

#[tokio::test]
async fn a_slow_consumer_holds_the_server_back_instead_of_buffering_the_answer() {
    // 8,192 events of 16 KiB: 128 MiB that the server would send at once if it could.
    let event = openai_text(&"x".repeat(16 * 1024));
    let count = 8_192;
    let total = event.len() * count;
    let server = Server::start([Reply::Stream(vec![
        Piece::Flood { text: event, count },
        Piece::Text(openai_finish("stop")),
        Piece::Text(done()),
    ])])
    .await;
    let model = model(&server);
    let mut stream = pin!(model.stream(Context::new(), request()));
    for _ in 0..10 {
        let chunk = stream.next().await.unwrap().unwrap();
        assert_eq!(chunk.payload().unwrap().delta.len(), 16 * 1024);
    }
    // The consumer stops reading; the server pushes what the connection takes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ahead = server.produced();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = server.produced();
    eprintln!("produced while the consumer paused: {ahead} bytes, then {later}, of {total}");
    assert_eq!(
        ahead, later,
        "the server is held back: it produces nothing more"
    );
    // Socket buffers on this machine take up to 32 MiB (receive) + 4 MiB (send).
    assert!(
        later < 48 * 1024 * 1024,
        "at most the connection's buffers ahead, not the whole answer: {later} of {total}"
    );
    // Reading on releases the server again.
    for _ in 0..100 {
        stream.next().await.unwrap().unwrap();
    }
    eventually("the server produces again", || server.produced() > later).await;
}
