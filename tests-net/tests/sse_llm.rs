//! The chat encodings of `beluga-sse` (feature `llm`): OpenAI chat-completions chunks and the
//! Vercel AI SDK UI message stream, byte for byte from a real server on 127.0.0.1, and the
//! OpenAI encoding read back by a real OpenAI client library (async-openai).

use std::fmt::Write as _;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
    FinishReason as OpenAiFinish,
};
use axum::Router;
use axum::routing::{MethodRouter, get, post};
use beluga_core::{Context, Error, ErrorCode, Event, EventResult};
use beluga_llm::schema::{ChatChunk, FinishReason, ToolCall, ToolCallDelta, ToolResult, Usage};
use beluga_net_tests::serve_on_loopback;
use beluga_sse::encoding::{OpenAiChunks, VercelUiStream};
use futures_util::StreamExt;
use serde_json::json;

/// An agent's answer: text, a tool call streamed in pieces and then completed, the tool's
/// result, a reported error, more text, the finish reason with usage, `done`.
fn answer() -> Vec<EventResult<ChatChunk>> {
    vec![
        Ok(Event::data(ChatChunk::text("Hel"))),
        Ok(Event::data(ChatChunk::text("lo"))),
        Ok(Event::data(ChatChunk::default().with_tool_call_delta(
            ToolCallDelta::start(0, "call_1", "get_weather").with_arguments(r#"{"city":"#),
        ))),
        Ok(Event::data(ChatChunk::default().with_tool_call_delta(
            ToolCallDelta::arguments(0, r#""Paris"}"#),
        ))),
        Ok(Event::data(ChatChunk::finished(FinishReason::ToolCalls))),
        Ok(Event::tool_call(ChatChunk::from_tool_call(ToolCall::new(
            "call_1",
            "get_weather",
            json!({"city": "Paris"}),
        )))),
        Ok(Event::tool_result(ChatChunk::from_tool_result(
            ToolResult::new("call_1", "18°C, sunny"),
        ))),
        Ok(Event::error(
            Error::new(ErrorCode::ToolFailed, "forecast unavailable").with_op("tool.forecast"),
        )),
        Ok(Event::data(ChatChunk::text("It is sunny."))),
        Ok(Event::data(
            ChatChunk::finished(FinishReason::Stop).with_usage(Usage::new(12, 5)),
        )),
        Ok(Event::done()),
    ]
}

/// Text, then the terminal error.
fn failing() -> Vec<EventResult<ChatChunk>> {
    vec![
        Ok(Event::data(ChatChunk::text("Hel"))),
        Err(Error::new(ErrorCode::RateLimit, "slow down").with_op("llm")),
    ]
}

/// Text, then the end without a terminal item.
fn cut_short() -> Vec<EventResult<ChatChunk>> {
    vec![Ok(Event::data(ChatChunk::text("Hel")))]
}

/// `done` with a final chunk, and usage only in the event's token counts.
fn done_with_tokens() -> Vec<EventResult<ChatChunk>> {
    vec![Ok(Event::done_with(ChatChunk::text("Hi")).with_tokens(3, 1))]
}

fn openai() -> OpenAiChunks {
    OpenAiChunks::new("beluga-test")
        .with_id("chatcmpl-test")
        .with_created(1_700_000_000)
}

fn vercel() -> VercelUiStream {
    VercelUiStream::new().with_message_id("msg-test")
}

fn openai_route(items: fn() -> Vec<EventResult<ChatChunk>>) -> MethodRouter {
    get(move || async move {
        beluga_sse::serve(&Context::new(), openai(), move |_| {
            futures_util::stream::iter(items())
        })
    })
}

fn vercel_route(items: fn() -> Vec<EventResult<ChatChunk>>) -> MethodRouter {
    get(move || async move {
        beluga_sse::serve(&Context::new(), vercel(), move |_| {
            futures_util::stream::iter(items())
        })
    })
}

fn app() -> Router {
    Router::new()
        .route("/openai/answer", openai_route(answer))
        .route("/openai/failing", openai_route(failing))
        .route("/openai/cut", openai_route(cut_short))
        .route("/openai/tokens", openai_route(done_with_tokens))
        .route("/vercel/answer", vercel_route(answer))
        .route("/vercel/failing", vercel_route(failing))
        .route("/vercel/cut", vercel_route(cut_short))
        .route("/vercel/tokens", vercel_route(done_with_tokens))
        // What an OpenAI client posts to, under two bases.
        .route(
            "/v1/chat/completions",
            post(async || {
                beluga_sse::serve(&Context::new(), openai(), |_| {
                    futures_util::stream::iter(answer())
                })
            }),
        )
        .route(
            "/failing/v1/chat/completions",
            post(async || {
                beluga_sse::serve(&Context::new(), openai(), |_| {
                    futures_util::stream::iter(failing())
                })
            }),
        )
}

async fn body(addr: std::net::SocketAddr, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

/// The SSE body for `data` lines numbered from 1.
fn sse(data: &[&str]) -> String {
    let mut body = String::new();
    for (i, d) in data.iter().enumerate() {
        writeln!(body, "id: {}\ndata: {d}\n", i + 1).unwrap();
    }
    body
}

const CHUNK: &str = r#"{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1700000000,"model":"beluga-test","#;

#[tokio::test]
async fn openai_chunks_byte_for_byte() {
    let addr = serve_on_loopback(app()).await;
    let c = |rest: &str| format!("{CHUNK}{rest}");

    let (headers, answer) = body(addr, "/openai/answer").await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(headers.get("x-vercel-ai-ui-message-stream").is_none());
    let expected = [
        c(
            r#""choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
        ),
        c(r#""choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#),
        c(
            r#""choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
        ),
        c(
            r#""choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
        ),
        c(r#""choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#),
        c(r#""choices":[{"index":0,"delta":{"content":"It is sunny."},"finish_reason":null}]}"#),
        c(r#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        c(r#""choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#),
        "[DONE]".to_owned(),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(answer, sse(&expected));

    let (_, failing) = body(addr, "/openai/failing").await;
    assert_eq!(
        failing,
        sse(&[
            &c(
                r#""choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#
            ),
            r#"{"error":{"message":"llm [rate_limit]: slow down","type":"rate_limit","param":null,"code":"rate_limit"}}"#,
        ])
    );

    // Cut short: no `[DONE]`, so a client can tell.
    let (_, cut) = body(addr, "/openai/cut").await;
    assert_eq!(
        cut,
        sse(&[&c(
            r#""choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#
        )])
    );

    let (_, tokens) = body(addr, "/openai/tokens").await;
    assert_eq!(
        tokens,
        sse(&[
            &c(
                r#""choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#
            ),
            &c(
                r#""choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#
            ),
            "[DONE]",
        ])
    );
}

#[tokio::test]
async fn vercel_ui_message_stream_byte_for_byte() {
    let addr = serve_on_loopback(app()).await;

    let (headers, answer) = body(addr, "/vercel/answer").await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-vercel-ai-ui-message-stream"], "v1");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(
        answer,
        sse(&[
            r#"{"type":"start","messageId":"msg-test"}"#,
            r#"{"type":"start-step"}"#,
            r#"{"type":"text-start","id":"text-1"}"#,
            r#"{"type":"text-delta","id":"text-1","delta":"Hel"}"#,
            r#"{"type":"text-delta","id":"text-1","delta":"lo"}"#,
            r#"{"type":"text-end","id":"text-1"}"#,
            r#"{"type":"tool-input-start","toolCallId":"call_1","toolName":"get_weather"}"#,
            r#"{"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"{\"city\":"}"#,
            r#"{"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"\"Paris\"}"}"#,
            r#"{"type":"tool-input-available","toolCallId":"call_1","toolName":"get_weather","input":{"city":"Paris"}}"#,
            r#"{"type":"tool-output-available","toolCallId":"call_1","output":"18°C, sunny"}"#,
            r#"{"type":"error","errorText":"tool.forecast [tool_failed]: forecast unavailable"}"#,
            r#"{"type":"finish-step"}"#,
            r#"{"type":"start-step"}"#,
            r#"{"type":"text-start","id":"text-2"}"#,
            r#"{"type":"text-delta","id":"text-2","delta":"It is sunny."}"#,
            r#"{"type":"text-end","id":"text-2"}"#,
            r#"{"type":"finish-step"}"#,
            r#"{"type":"finish","messageMetadata":{"finishReason":"stop","usage":{"inputTokens":12,"outputTokens":5,"totalTokens":17}}}"#,
            "[DONE]",
        ])
    );

    let (_, failing) = body(addr, "/vercel/failing").await;
    assert_eq!(
        failing,
        sse(&[
            r#"{"type":"start","messageId":"msg-test"}"#,
            r#"{"type":"start-step"}"#,
            r#"{"type":"text-start","id":"text-1"}"#,
            r#"{"type":"text-delta","id":"text-1","delta":"Hel"}"#,
            r#"{"type":"error","errorText":"llm [rate_limit]: slow down"}"#,
            "[DONE]",
        ])
    );

    let (_, cut) = body(addr, "/vercel/cut").await;
    assert_eq!(
        cut,
        sse(&[
            r#"{"type":"start","messageId":"msg-test"}"#,
            r#"{"type":"start-step"}"#,
            r#"{"type":"text-start","id":"text-1"}"#,
            r#"{"type":"text-delta","id":"text-1","delta":"Hel"}"#,
            r#"{"type":"abort"}"#,
            "[DONE]",
        ])
    );

    let (_, tokens) = body(addr, "/vercel/tokens").await;
    assert_eq!(
        tokens,
        sse(&[
            r#"{"type":"start","messageId":"msg-test"}"#,
            r#"{"type":"start-step"}"#,
            r#"{"type":"text-start","id":"text-1"}"#,
            r#"{"type":"text-delta","id":"text-1","delta":"Hi"}"#,
            r#"{"type":"text-end","id":"text-1"}"#,
            r#"{"type":"finish-step"}"#,
            r#"{"type":"finish","messageMetadata":{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}}"#,
            "[DONE]",
        ])
    );
}

fn openai_client(base: String) -> async_openai::Client<OpenAIConfig> {
    async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key("sk-test"),
    )
}

fn request() -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("beluga-test")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Weather in Paris?")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_openai_client_library_reads_the_openai_encoding() {
    let addr = serve_on_loopback(app()).await;
    let client = openai_client(format!("http://{addr}/v1"));
    let mut stream = client.chat().create_stream(request()).await.unwrap();

    let mut text = String::new();
    let mut arguments = String::new();
    let mut calls = Vec::new();
    let mut finishes = Vec::new();
    let mut usage = None;
    let mut roles = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk async-openai understands");
        assert_eq!(chunk.id, "chatcmpl-test");
        assert_eq!(chunk.model, "beluga-test");
        assert_eq!(chunk.object, "chat.completion.chunk");
        if let Some(u) = chunk.usage {
            usage = Some((u.prompt_tokens, u.completion_tokens, u.total_tokens));
        }
        for choice in chunk.choices {
            roles += usize::from(choice.delta.role.is_some());
            text.push_str(choice.delta.content.as_deref().unwrap_or_default());
            for call in choice.delta.tool_calls.unwrap_or_default() {
                if let Some(id) = call.id {
                    let name = call.function.as_ref().and_then(|f| f.name.clone());
                    calls.push((call.index, id, name.unwrap_or_default()));
                }
                if let Some(f) = call.function {
                    arguments.push_str(f.arguments.as_deref().unwrap_or_default());
                }
            }
            finishes.extend(choice.finish_reason);
        }
    }
    assert_eq!(text, "HelloIt is sunny.");
    assert_eq!(calls, [(0, "call_1".to_owned(), "get_weather".to_owned())]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(finishes, [OpenAiFinish::ToolCalls, OpenAiFinish::Stop]);
    assert_eq!(usage, Some((12, 5, 17)));
    assert_eq!(roles, 1);
}

#[tokio::test]
async fn an_openai_client_library_raises_the_terminal_error() {
    let addr = serve_on_loopback(app()).await;
    let client = openai_client(format!("http://{addr}/failing/v1"));
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.choices[0].delta.content.as_deref(), Some("Hel"));
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("slow down"), "{err}");
    assert!(stream.next().await.is_none());
}

/// beluga's own OpenAI-compatible provider, pointed at a beluga server that serves the OpenAI
/// encoding: the round trip keeps the text, the tool call, both finish reasons and the usage.
#[tokio::test]
async fn the_beluga_llm_provider_reads_the_openai_encoding() {
    use beluga_core::{EventKind, EventStreamExt, Runnable};
    use beluga_llm::ChatStreamExt;
    use beluga_llm::openai::OpenAiCompatible;
    use beluga_llm::schema::{ChatRequest, Message};

    let addr = serve_on_loopback(app()).await;
    let model = OpenAiCompatible::new(format!("http://{addr}/v1"), "beluga-test");
    let request = ChatRequest::new("beluga-test", vec![Message::user("Weather in Paris?")]);
    let collected = model
        .stream(Context::new(), request)
        .accumulate_tool_calls()
        .collect_events()
        .await;
    assert!(collected.error.is_none(), "{:?}", collected.error);

    let mut text = String::new();
    let mut calls = Vec::new();
    let mut finishes = Vec::new();
    let mut usage = None;
    let mut done = 0;
    for event in collected.events {
        match event.into_kind() {
            EventKind::Data(chunk) => {
                text.push_str(&chunk.delta);
                finishes.extend(chunk.finish_reason);
                usage = chunk.usage.or(usage);
            }
            EventKind::ToolCall(chunk) => calls.extend(chunk.tool_call),
            EventKind::Done(_) => done += 1,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(text, "HelloIt is sunny.");
    assert_eq!(
        calls,
        [ToolCall::new(
            "call_1",
            "get_weather",
            json!({"city": "Paris"})
        )]
    );
    assert_eq!(finishes, [FinishReason::ToolCalls, FinishReason::Stop]);
    let usage = usage.expect("the usage chunk");
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 5));
    assert_eq!(done, 1);
}

/// The terminal error of the OpenAI encoding comes back from beluga's provider as an error
/// with the code it was sent with, after the text before it.
#[tokio::test]
async fn the_beluga_llm_provider_keeps_the_terminal_errors_code() {
    use beluga_core::{EventStreamExt, Runnable};
    use beluga_llm::openai::OpenAiCompatible;
    use beluga_llm::schema::{ChatRequest, Message};

    let addr = serve_on_loopback(app()).await;
    let model = OpenAiCompatible::new(format!("http://{addr}/failing/v1"), "beluga-test");
    let request = ChatRequest::new("beluga-test", vec![Message::user("Weather in Paris?")]);
    let collected = model.stream(Context::new(), request).collect_events().await;
    let text: String = collected
        .events
        .iter()
        .filter_map(Event::payload)
        .map(|c| c.delta.as_str())
        .collect();
    assert_eq!(text, "Hel");
    let err = collected.error.expect("the terminal error");
    assert_eq!(err.code(), ErrorCode::RateLimit, "{err:#}");
    assert!(err.to_string().contains("slow down"), "{err:#}");
}
