//! Chat: a model streams its answer token by token, asks for a tool, gets the result and
//! answers; hooks report each call's finish reason and token usage.
//!
//! Run it with `cargo run --example chat`. No network: the model is a scripted one that
//! replays its answers with a delay per token, the way a provider streams them.

use std::io::Write as _;
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, EventKind, Runnable, RunnableExt};
use beluga_llm::schema::{
    AssistantMessage, ChatRequest, Message, ToolCall, ToolDefinition, ToolResult, Usage,
};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::{BoxChatModel, ChatModelExt, ChatStreamExt, Hooks};
use futures_util::StreamExt;
use serde_json::json;

/// The model, with hooks that report every call's end.
fn model() -> BoxChatModel<'static> {
    let delay = Duration::from_millis(40);
    let scripted = ScriptedModel::new([
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
    ]);
    let hooks = Hooks::new()
        .on_done(|_ctx, info| {
            let usage = info.usage.unwrap_or_default();
            println!(
                "\n  [finished: {}; tokens: {} in ({} cached), {} out]",
                info.finish_reason, usage.input_tokens, usage.cached_tokens, usage.output_tokens
            );
        })
        .on_error(|_ctx, err| eprintln!("\n  [failed: {err:#}]"));
    RunnableExt::boxed(scripted.with_hooks(hooks))
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
    let model = model();
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
