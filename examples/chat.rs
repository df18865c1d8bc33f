//! Chat: a model streams its answer token by token, asks for a tool, gets the result and
//! answers; hooks report each call's finish reason and token usage.
//!
//! Run it with `cargo run --example chat`. With no environment variables set it runs offline:
//! it starts an HTTP server on 127.0.0.1 inside the process that streams a scripted answer in
//! OpenAI's chat-completions shape, and talks to it with the real `OpenAiCompatible` provider.
//! To talk to a real model instead, name it with environment variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `BELUGA_PROVIDER` | `openai` (any OpenAI-compatible server; the default) or `anthropic` |
//! | `BELUGA_BASE_URL` | the server, e.g. `http://localhost:11434/v1` for Ollama (default: the provider's own API) |
//! | `BELUGA_API_KEY` | the key, if the server needs one |
//! | `BELUGA_MODEL` | the model (default: `gpt-4o-mini`, or `claude-sonnet-4-5` for Anthropic) |
//!
//! ```text
//! BELUGA_BASE_URL=http://localhost:11434/v1 BELUGA_MODEL=llama3.2 cargo run --example chat
//! BELUGA_PROVIDER=anthropic BELUGA_API_KEY=sk-ant-... cargo run --example chat
//! ```

use std::io::Write as _;
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, EventKind, Runnable, RunnableExt};
use beluga_llm::anthropic::Anthropic;
use beluga_llm::openai::{OPENAI_BASE_URL, OpenAiCompatible};
use beluga_llm::schema::{
    AssistantMessage, ChatRequest, Message, ToolCall, ToolDefinition, ToolResult, Usage,
};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::{BoxChatModel, ChatModelExt, ChatStreamExt, Hooks};
use futures_util::StreamExt;
use serde_json::json;

/// The model, with hooks that report every call's end: the one the environment names, or the
/// real OpenAI-compatible provider talking to a scripted server on loopback.
async fn model() -> Result<BoxChatModel<'static>, Error> {
    let hooks = Hooks::new()
        .on_done(|_ctx, info| {
            let usage = info.usage.unwrap_or_default();
            println!(
                "\n  [finished: {}; tokens: {} in ({} cached), {} out]",
                info.finish_reason, usage.input_tokens, usage.cached_tokens, usage.output_tokens
            );
        })
        .on_error(|_ctx, err| eprintln!("\n  [failed: {err:#}]"));
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (provider, base_url) = (var("BELUGA_PROVIDER"), var("BELUGA_BASE_URL"));
    let key = var("BELUGA_API_KEY").unwrap_or_default();
    let model = match provider.as_deref() {
        Some("anthropic") => {
            let name = var("BELUGA_MODEL").unwrap_or_else(|| "claude-sonnet-4-5".to_owned());
            let mut model = Anthropic::new(name).with_api_key(key);
            if let Some(base_url) = base_url {
                model = model.with_base_url(base_url);
            }
            println!(
                "(Anthropic at {}, model {})",
                model.base_url(),
                model.model()
            );
            RunnableExt::boxed(model.with_hooks(hooks))
        }
        Some("openai") | None if provider.is_some() || base_url.is_some() => {
            let name = var("BELUGA_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_owned());
            let base_url = base_url.unwrap_or_else(|| OPENAI_BASE_URL.to_owned());
            let model = OpenAiCompatible::new(base_url, name).with_api_key(key);
            println!(
                "(OpenAI-compatible server at {}, model {})",
                model.base_url(),
                model.model()
            );
            RunnableExt::boxed(model.with_hooks(hooks))
        }
        None => {
            let base_url = offline::serve(scripted()).await?;
            let model = OpenAiCompatible::new(base_url, "scripted");
            println!("(offline: a scripted server at {})", model.base_url());
            RunnableExt::boxed(model.with_hooks(hooks))
        }
        Some(other) => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("BELUGA_PROVIDER is `{other}`, expected `openai` or `anthropic`"),
            ));
        }
    };
    Ok(model)
}

/// What the offline server answers: the tool call, then the answer with the tool's result.
fn scripted() -> ScriptedModel {
    let delay = Duration::from_millis(40);
    ScriptedModel::new([
        Turn::text("Let me look up the weather in Tromsø for you.")
            .with_tool_call("call_1", "get_weather", json!({"city": "Tromsø"}))
            .with_usage(Usage::new(182, 27))
            .with_token_delay(delay),
        Turn::text(
            "It is 4°C with light snow in Tromsø right now, so bring a warm coat and \
             good boots if you are heading out.",
        )
        .with_usage(Usage::new(231, 30).with_cached_tokens(182))
        .with_token_delay(delay),
    ])
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition::new(
        "get_weather",
        "The current weather in a city.",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    )
}

/// The tool itself: a lookup that would call a weather service.
fn get_weather(call: &ToolCall) -> ToolResult {
    #[derive(serde::Deserialize)]
    struct Args {
        city: String,
    }
    match call.arguments_as::<Args>() {
        Ok(args) if args.city == "Tromsø" => {
            ToolResult::new(&call.id, r#"{"temp_c": 4, "sky": "light snow"}"#)
        }
        Ok(args) => ToolResult::error(&call.id, format!("no station in {}", args.city)),
        Err(err) => ToolResult::error(&call.id, err.to_string()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let model = model().await?;
    let ctx = Context::new().with_timeout(Duration::from_secs(30));
    let mut messages = vec![
        Message::system("You are a concise travel assistant."),
        Message::user("What's the weather like in Tromsø?"),
    ];
    println!("> {}", messages[1].content());

    // Stream each answer; run the tools it asks for and send their results back, until the
    // model answers without calling a tool.
    for _ in 0..4 {
        let request = ChatRequest::new("", messages.clone()).with_tools(vec![weather_tool()]);
        let mut stream = std::pin::pin!(model.stream(ctx.clone(), request).accumulate_tool_calls());
        let mut answer = AssistantMessage::default();
        print!("< ");
        while let Some(event) = stream.next().await {
            match event?.into_kind() {
                EventKind::Data(chunk) => {
                    print!("{}", chunk.delta);
                    std::io::stdout().flush().ok();
                    answer.content.push_str(&chunk.delta);
                }
                EventKind::ToolCall(chunk) => {
                    let call = chunk.tool_call.expect("a tool_call event holds its call");
                    print!("\n  [tool call: {}({})]", call.name, call.arguments);
                    answer.tool_calls.push(call);
                }
                // A call the model got wrong (invalid JSON): give up on this answer.
                EventKind::Error(err) => return Err(err),
                _ => {}
            }
        }
        let calls = answer.tool_calls.clone();
        messages.push(answer.into());
        if calls.is_empty() {
            return Ok(());
        }
        for call in &calls {
            let result = match call.name.as_str() {
                "get_weather" => get_weather(call),
                other => ToolResult::error(&call.id, format!("there is no tool `{other}`")),
            };
            println!("  [tool result: {}]", result.content);
            messages.push(result.into());
        }
    }
    Err(Error::new(
        ErrorCode::BudgetExhausted,
        "the model kept calling tools",
    ))
}

/// The offline server: OpenAI's chat-completions stream, replayed from a scripted model.
mod offline {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::response::Response;
    use beluga_core::{Context, Error, ErrorCode, Runnable, stream};
    use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason};
    use beluga_llm::scripted::ScriptedModel;
    use futures_util::StreamExt;
    use serde_json::{Value, json};

    /// Serves `model` on a new port of 127.0.0.1; returns the base URL.
    pub(crate) async fn serve(model: ScriptedModel) -> Result<String, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| Error::from_source(ErrorCode::Internal, "chat.offline", err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| Error::from_source(ErrorCode::Internal, "chat.offline", err))?;
        let app = Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(Arc::new(model));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("http://{addr}/v1"))
    }

    /// One call: the scripted model's next turn, each chunk as a `data:` event, then `[DONE]`.
    async fn complete(State(model): State<Arc<ScriptedModel>>, body: Bytes) -> Response {
        // The conversation is not read: the script decides.
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        let request = ChatRequest::new(body["model"].as_str().unwrap_or_default(), Vec::new());
        let lines = stream::produce(&Context::new(), async move |mut e| {
            let mut turn = std::pin::pin!(model.stream(Context::new(), request));
            while let Some(event) = turn.next().await {
                let text = match event {
                    Ok(event) => event.payload().map(encode).unwrap_or_default(),
                    Err(err) => data(
                        &json!({"error": {"message": err.to_string(), "type": "server_error"}}),
                    ),
                };
                e.emit(text).await;
            }
            e.emit("data: [DONE]\n\n".to_owned()).await;
            Ok(())
        });
        let events = lines.filter_map(|item| {
            let text = item.ok().and_then(beluga_core::Event::into_payload);
            std::future::ready(text.map(Ok::<_, std::convert::Infallible>))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap_or_default()
    }

    fn data(value: &Value) -> String {
        format!("data: {value}\n\n")
    }

    /// One chunk in OpenAI's shape (and the usage as its own last chunk, as OpenAI sends it).
    fn encode(chunk: &ChatChunk) -> String {
        let mut delta = json!({});
        if !chunk.delta.is_empty() {
            delta["content"] = chunk.delta.clone().into();
        }
        if !chunk.tool_call_deltas.is_empty() {
            let calls: Vec<Value> = chunk
                .tool_call_deltas
                .iter()
                .map(|d| {
                    let mut call =
                        json!({"index": d.index, "function": {"arguments": d.arguments}});
                    if let Some(id) = &d.id {
                        call["id"] = id.clone().into();
                        call["type"] = "function".into();
                    }
                    if let Some(name) = &d.name {
                        call["function"]["name"] = name.clone().into();
                    }
                    call
                })
                .collect();
            delta["tool_calls"] = calls.into();
        }
        let finish = chunk.finish_reason.as_ref().map(FinishReason::as_str);
        let mut out = data(&json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "model": "scripted",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }));
        if let Some(usage) = chunk.usage {
            out.push_str(&data(&json!({
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "model": "scripted",
                "choices": [],
                "usage": {
                    "prompt_tokens": usage.input_tokens,
                    "completion_tokens": usage.output_tokens,
                    "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
                },
            })));
        }
        out
    }
}
