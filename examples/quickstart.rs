//! Quickstart: a simulated model written as a `#[stream_producer]` streams tokens; the consumer
//! cleans them up with `filter_events` and `map_payload` and prints each one as it arrives,
//! until the caller's deadline cuts the answer off.
//!
//! Run it with `cargo run --example quickstart`. No network: the model is a script.

use std::io::Write as _;
use std::time::Duration;

use beluga_core::{
    Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt, stream_producer,
};
use futures_util::{Stream, StreamExt};

/// A stand-in for an LLM provider: replays a scripted answer, one token every 60 ms, the way a
/// streaming chat API delivers it (with keep-alive padding and markdown markers).
struct SimulatedModel {
    script: Vec<Event<String>>,
    token_delay: Duration,
}

impl SimulatedModel {
    fn new() -> Self {
        let words = |text: &str| -> Vec<Event<String>> {
            text.split_inclusive(' ')
                .map(|word| Event::data(word.to_owned()).with_tokens(0, 1))
                .collect()
        };
        let mut script = words("The **refund** policy allows returns within 30 days. ");
        // The provider's keep-alive padding: an empty chunk.
        script.push(Event::data(String::new()));
        script.extend(words("Let me check your order. "));
        script.push(Event::tool_call(r#"orders.lookup {"id": 4471}"#.to_owned()));
        script.push(Event::tool_result(r#"{"eligible": true}"#.to_owned()));
        script.extend(words(
            "Your order **#4471** qualifies, so I have started the refund. It should reach \
             your card in 3 to 5 business days.",
        ));
        SimulatedModel {
            script,
            token_delay: Duration::from_millis(60),
        }
    }

    /// The model's answer as an event stream, written as a producer: it `emit!`s each chunk
    /// after a delay, and knows nothing about deadlines. The `Context` argument does: the
    /// stream ends with `deadline_exceeded` (and this body is dropped, mid-`sleep`) the moment
    /// the caller's time is up.
    #[stream_producer]
    fn stream<'a>(
        &'a self,
        ctx: &Context,
        prompt: &'a str,
    ) -> impl Stream<Item = EventResult<String>> + 'a {
        if prompt.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "the model needs a prompt",
            ));
        }
        for event in &self.script {
            tokio::time::sleep(self.token_delay).await;
            emit!(event.clone());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let model = SimulatedModel::new();
    // The caller gives the whole answer 1.5 s; the model would need about 2.5 s.
    let ctx = Context::new()
        .with_request_id("req-4471")
        .with_timeout(Duration::from_millis(1500));

    let answer = model
        .stream(&ctx, "What is the refund policy?")
        // Drop keep-alive padding...
        .filter_events(|ev| !matches!(ev.kind(), EventKind::Data(t) if t.is_empty()))
        // ...and strip markdown emphasis.
        .map_payload(|token| token.replace("**", ""));
    let mut answer = std::pin::pin!(answer);

    println!("request {}:", ctx.request_id().unwrap_or("-"));
    let mut output_tokens = 0;
    while let Some(item) = answer.next().await {
        match item {
            Ok(event) => {
                output_tokens += event.meta().output_tokens().unwrap_or(0);
                match event.into_kind() {
                    EventKind::Data(token) => print!("{token}"),
                    EventKind::ToolCall(call) => print!("\n  [tool call] {call}"),
                    EventKind::ToolResult(result) => println!("\n  [tool result] {result}"),
                    EventKind::Handoff(agent) => println!("\n  [handoff to {agent}]"),
                    EventKind::Done(_) => println!("\n[done]"),
                    EventKind::Error(err) => println!("\n  [reported] {err}"),
                }
                std::io::stdout().flush().expect("stdout is writable");
            }
            Err(err) if err.code() == ErrorCode::DeadlineExceeded => {
                println!("\n[cut off] {err} after {output_tokens} tokens");
            }
            Err(err) => println!("\n[failed] {err:#}"),
        }
    }
}
