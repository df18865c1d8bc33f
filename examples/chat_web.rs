//! The server behind `cargo run --example chat-web`: a page that streams a model's answer into
//! the browser token by token, shows its tool calls, and stops it with a button.
//!
//! [`ChatApp::router`] serves three routes:
//!
//! * `GET /`: the page (`chat_web/page.html`, plain HTML and JavaScript, no build step). It
//!   posts the prompt with `fetch`, reads the response body as it arrives, and appends each
//!   text delta; its Stop button aborts the request, which closes the connection.
//! * `POST /api/chat` (JSON `{"prompt": "..."}`): the answer as the Vercel AI SDK UI message
//!   stream, served by [`beluga_sse::serve`]. The model is a [`ScriptedModel`] that calls a
//!   weather tool and then answers, a token at a time; the server runs the tool between the
//!   two turns, and the tool's result goes out in the same stream.
//! * `GET /stats`: what the server's producers did ([`Stats`], as JSON), so that a person
//!   (the page shows it) or a test can see that Stop reached the server: the producer of a
//!   stopped answer is dropped, and no chunk is sent after that.
//!
//! The browser test (`tests/chat_web_browser.rs`, feature `browser`) drives this page in a
//! headless Chromium against a server started in-process.
//!
//! ```
//! use beluga_examples::chat_web::ChatApp;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let app = ChatApp::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("open http://{}/", listener.local_addr()?);
//! tokio::spawn(axum::serve(listener, app.router()).into_future());
//! assert_eq!(app.stats().started, 0); // no answer asked for yet
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use beluga_core::{Context, Error, ErrorCode, Event, EventKind, EventResult, Runnable, stream};
use beluga_llm::ToolCallAccumulator;
use beluga_llm::schema::{
    AssistantMessage, ChatChunk, ChatRequest, Message, ToolCall, ToolDefinition, ToolResult, Usage,
};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_sse::encoding::VercelUiStream;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The page: plain HTML and JavaScript.
const PAGE: &str = include_str!("chat_web/page.html");

/// How many model calls one answer may take (each tool round is one).
const MAX_ROUNDS: usize = 4;

/// The chat server: its routes, and the counters its producers keep. Clones share the
/// counters.
///
/// ```
/// use std::time::Duration;
/// use beluga_examples::chat_web::ChatApp;
///
/// let app = ChatApp::new().with_token_delay(Duration::from_millis(20));
/// let router: axum::Router = app.router();
/// # drop(router);
/// ```
#[derive(Clone, Debug)]
pub struct ChatApp {
    counters: Arc<Counters>,
    token_delay: Duration,
}

impl Default for ChatApp {
    fn default() -> Self {
        ChatApp::new()
    }
}

impl ChatApp {
    /// A server whose model pauses 60 ms before each chunk, about the pace of a hosted model.
    ///
    /// ```
    /// let app = beluga_examples::chat_web::ChatApp::new();
    /// assert_eq!(app.token_delay(), std::time::Duration::from_millis(60));
    /// ```
    pub fn new() -> Self {
        ChatApp {
            counters: Arc::default(),
            token_delay: Duration::from_millis(60),
        }
    }

    /// The same server, with the model pausing `delay` before each chunk.
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = beluga_examples::chat_web::ChatApp::new().with_token_delay(Duration::from_millis(5));
    /// assert_eq!(app.token_delay(), Duration::from_millis(5));
    /// ```
    #[must_use]
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The pause before each chunk of the model's answer.
    ///
    /// ```
    /// let app = beluga_examples::chat_web::ChatApp::new();
    /// assert!(!app.token_delay().is_zero());
    /// ```
    pub fn token_delay(&self) -> Duration {
        self.token_delay
    }

    /// The routes: the page at `/`, the answer stream at `POST /api/chat`, the counters at
    /// `/stats`.
    ///
    /// ```
    /// use beluga_examples::chat_web::ChatApp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// tokio::spawn(axum::serve(listener, ChatApp::new().router()).into_future());
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(async || Html(PAGE)))
            .route("/api/chat", post(chat))
            .route("/stats", get(stats))
            .with_state(self.clone())
    }

    /// What the producers have done so far.
    ///
    /// ```
    /// use beluga_examples::chat_web::{ChatApp, Stats};
    /// assert_eq!(ChatApp::new().stats(), Stats::default());
    /// ```
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

/// What the server's answer producers have done, as `GET /stats` reports it.
///
/// An answer's producer is *finished* when it sent its end (the answer's last part, or an
/// error), and *stopped* when it was dropped before that: the client went away (the page's
/// Stop button) and the response dropped it. `chunks` counts the events all producers handed
/// to their responses.
///
/// ```
/// use beluga_examples::chat_web::Stats;
///
/// let stats = Stats::default();
/// assert_eq!(serde_json::to_string(&stats).unwrap(),
///     r#"{"started":0,"running":0,"finished":0,"stopped":0,"chunks":0}"#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Producers started (one per answer asked for).
    pub started: u64,
    /// Producers started and neither finished nor stopped yet.
    pub running: u64,
    /// Producers that sent their stream's end.
    pub finished: u64,
    /// Producers dropped before their stream's end.
    pub stopped: u64,
    /// Events the producers handed to their responses, all answers together.
    pub chunks: u64,
}

#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    finished: AtomicU64,
    stopped: AtomicU64,
    chunks: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        // Ends are read before starts, so that `running` never looks negative.
        let finished = self.finished.load(Ordering::SeqCst);
        let stopped = self.stopped.load(Ordering::SeqCst);
        let chunks = self.chunks.load(Ordering::SeqCst);
        let started = self.started.load(Ordering::SeqCst);
        Stats {
            started,
            running: started.saturating_sub(finished + stopped),
            finished,
            stopped,
            chunks,
        }
    }
}

/// Held by a producer's stream: counts what it hands out, and on drop whether it got to its
/// end.
struct Probe {
    counters: Arc<Counters>,
    ended: bool,
}

impl Probe {
    fn start(counters: &Arc<Counters>) -> Self {
        counters.started.fetch_add(1, Ordering::SeqCst);
        Probe {
            counters: Arc::clone(counters),
            ended: false,
        }
    }

    fn sent<T>(&mut self, item: &EventResult<T>) {
        self.counters.chunks.fetch_add(1, Ordering::SeqCst);
        let terminal = match item {
            Ok(event) => event.is_done(),
            Err(_) => true,
        };
        self.ended |= terminal;
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let counter = if self.ended {
            &self.counters.finished
        } else {
            &self.counters.stopped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// The body of `POST /api/chat`.
#[derive(Debug, Deserialize)]
struct Ask {
    prompt: String,
}

async fn chat(State(app): State<ChatApp>, Json(ask): Json<Ask>) -> impl IntoResponse {
    beluga_sse::serve(&Context::new(), VercelUiStream::new(), move |ctx| {
        let mut probe = Probe::start(&app.counters);
        answer(&ctx, ask.prompt, app.token_delay).map(move |item| {
            probe.sent(&item);
            item
        })
    })
}

async fn stats(State(app): State<ChatApp>) -> Json<Stats> {
    Json(app.stats())
}

/// The answer to `prompt`: the model streams, the server runs the tools it asks for and sends
/// their results back to it, until it answers without a tool call. Every model chunk goes out
/// as it comes (tool-call pieces included, so the page shows a call as it is written), then
/// each tool's result.
fn answer(
    ctx: &Context,
    prompt: String,
    token_delay: Duration,
) -> impl Stream<Item = EventResult<ChatChunk>> + Send + 'static + use<> {
    let model_ctx = ctx.clone();
    let model = scripted_model(token_delay);
    stream::produce(ctx, async move |mut e| {
        let mut messages = vec![
            Message::system("You are a concise travel assistant."),
            Message::user(prompt),
        ];
        for _ in 0..MAX_ROUNDS {
            let request = ChatRequest::new("", messages.clone()).with_tools(vec![weather_tool()]);
            let mut chunks = std::pin::pin!(model.stream(model_ctx.clone(), request));
            let mut calls = ToolCallAccumulator::new();
            let mut reply = AssistantMessage::default();
            while let Some(event) = chunks.next().await {
                let event = event?;
                if let EventKind::Data(chunk) = event.kind() {
                    reply.content.push_str(&chunk.delta);
                    for piece in &chunk.tool_call_deltas {
                        calls.push_delta(piece.clone());
                    }
                } else if event.is_done() {
                    // This model call is over, not the answer.
                    break;
                }
                e.emit(event).await;
            }
            calls.finish();
            while let Some(call) = calls.pop_completed() {
                reply.tool_calls.push(call?);
            }
            let round_calls = reply.tool_calls.clone();
            messages.push(reply.into());
            if round_calls.is_empty() {
                return Ok(());
            }
            for call in &round_calls {
                let result = run_tool(call);
                e.emit(Event::tool_result(ChatChunk::from_tool_result(
                    result.clone(),
                )))
                .await;
                messages.push(result.into());
            }
        }
        Err(Error::new(
            ErrorCode::BudgetExhausted,
            "the model kept calling tools",
        ))
    })
}

/// The model: it looks the weather up, then answers at some length, a word per chunk.
fn scripted_model(token_delay: Duration) -> ScriptedModel {
    ScriptedModel::new([
        Turn::text("Let me look up the weather in Tromsø for you.")
            .with_tool_call("call_1", "get_weather", json!({"city": "Tromsø"}))
            .with_usage(Usage::new(182, 27))
            .with_token_delay(token_delay),
        Turn::text(
            "It is 4°C with light snow in Tromsø right now. The snow should ease off by the \
             evening, but the wind off the fjord makes it feel colder than it is, so bring a \
             warm coat, a hat and gloves, and good boots with some grip: the pavements in the \
             centre are icy in the mornings. If you are hoping to see the northern lights, \
             the clouds are forecast to clear after midnight, and a short drive out of town, \
             away from the street lights, gives you the best chance.",
        )
        .with_usage(Usage::new(231, 92).with_cached_tokens(182))
        .with_token_delay(token_delay),
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

/// The tools: a weather lookup that would call a weather service.
fn run_tool(call: &ToolCall) -> ToolResult {
    #[derive(Deserialize)]
    struct Args {
        city: String,
    }
    if call.name != "get_weather" {
        return ToolResult::error(&call.id, format!("there is no tool `{}`", call.name));
    }
    match call.arguments_as::<Args>() {
        Ok(args) if args.city == "Tromsø" => {
            ToolResult::new(&call.id, r#"{"temp_c": 4, "sky": "light snow"}"#)
        }
        Ok(args) => ToolResult::error(&call.id, format!("no station in {}", args.city)),
        Err(err) => ToolResult::error(&call.id, err.to_string()),
    }
}
