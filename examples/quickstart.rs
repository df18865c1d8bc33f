//! Quickstart: stream tokens from a simulated model, clean them up with `filter_events` and
//! `map_payload`, and cut the answer off with a deadline, printing each token as it arrives.
//!
//! Run it with `cargo run --example quickstart`. No network: the model is a script.

use std::io::Write as _;
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt};
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
        script.push(Event::done());
        SimulatedModel {
            script,
            token_delay: Duration::from_millis(60),
        }
    }

    /// The model's answer as an event stream. It knows nothing about deadlines: the caller's
    /// `Context` cuts it off from outside.
    fn stream(&self, prompt: &str) -> impl Stream<Item = EventResult<String>> + use<> {
        assert!(!prompt.is_empty(), "the model needs a prompt");
        let delay = self.token_delay;
        futures_util::stream::iter(self.script.clone()).then(move |event| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Error>(event)
        })
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
        .stream("What is the refund policy?")
        // Drop keep-alive padding...
        .filter_events(|ev| !matches!(ev.kind(), EventKind::Data(t) if t.is_empty()))
        // ...strip markdown emphasis...
        .map_payload(|token| token.replace("**", ""))
        // ...and end the stream, dropping the model, the moment the deadline passes.
        .cancellable(&ctx);
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
