//! A scripted SSE server for the provider tests: a real axum server on 127.0.0.1 that answers
//! each request with the next scripted reply, records what it was sent, and counts the bytes
//! it produced and the response bodies that were dropped before their end (their connection
//! closed under them). The providers' real code talks to it over real sockets.

#![allow(dead_code, reason = "each test file uses its own part")]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// One piece of a streamed body.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    /// These bytes, as one write.
    Text(String),
    /// Wait this long (Tokio's clock) before the next piece.
    Pause(Duration),
    /// Send nothing more, and never end.
    Stall,
    /// Fail the body: the connection is cut without the end of the chunked body.
    Cut,
    /// These bytes `count` times, as fast as the connection takes them.
    Flood { text: String, count: usize },
    /// The comment `: keep-alive` every `every`, `times` times.
    KeepAlive { every: Duration, times: usize },
}

/// What the server answers one request with.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A failed status with headers and a body.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// `200 OK`, `text/event-stream`, with a body streamed piece by piece.
    Stream(Vec<Piece>),
}

impl Reply {
    /// A failed status with a JSON error body in OpenAI's and Anthropic's shape.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: json!({"error": {"message": message, "type": "test_error"}}).to_string(),
        }
    }

    /// A stream of these texts, one write each.
    pub(crate) fn sse(texts: impl IntoIterator<Item = String>) -> Reply {
        Reply::Stream(texts.into_iter().map(Piece::Text).collect())
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    bodies_dropped_early: AtomicUsize,
    bodies_finished: AtomicUsize,
    produced: AtomicUsize,
}

/// The running server.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts the server on a new port of 127.0.0.1 (one task: the accept loop); it answers
    /// the requests with `replies` in order, then with 500.
    pub(crate) async fn start(replies: impl IntoIterator<Item = Reply>) -> Server {
        let shared = Arc::new(Shared::default());
        shared.replies.lock().unwrap().extend(replies);
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, shared }
    }

    /// The base URL the providers append their paths to.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many streamed bodies were dropped before their end: the client went away.
    pub(crate) fn bodies_dropped_early(&self) -> usize {
        self.shared.bodies_dropped_early.load(Ordering::SeqCst)
    }

    /// How many streamed bodies were sent to their end.
    pub(crate) fn bodies_finished(&self) -> usize {
        self.shared.bodies_finished.load(Ordering::SeqCst)
    }

    /// The bytes of streamed bodies handed to the connection so far.
    pub(crate) fn produced(&self) -> usize {
        self.shared.produced.load(Ordering::SeqCst)
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let reply = shared.replies.lock().unwrap().pop_front();
    match reply {
        None => status_response(500, &[], "no reply scripted".to_owned()),
        Some(Reply::Status {
            status,
            headers,
            body,
        }) => status_response(status, &headers, body),
        Some(Reply::Stream(pieces)) => {
            let feed = Feed {
                pieces: pieces.into(),
                guard: BodyGuard {
                    shared: Arc::clone(&shared),
                    finished: false,
                },
            };
            let body = futures_util::stream::unfold(feed, Feed::next);
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}

fn status_response(status: u16, headers: &[(&'static str, String)], body: String) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(body)).unwrap()
}

/// Counts the body as dropped early unless it was sent to its end.
struct BodyGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.shared.bodies_finished
        } else {
            &self.shared.bodies_dropped_early
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

struct Feed {
    pieces: VecDeque<Piece>,
    guard: BodyGuard,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Feed)> {
        loop {
            let Some(piece) = self.pieces.pop_front() else {
                self.guard.finished = true;
                return None;
            };
            match piece {
                Piece::Text(text) => return Some((Ok(self.produce(text)), self)),
                Piece::Pause(delay) => tokio::time::sleep(delay).await,
                Piece::Stall => std::future::pending::<()>().await,
                Piece::Cut => return Some((Err(std::io::Error::other("cut by the test")), self)),
                Piece::Flood { text, count } => {
                    if count > 1 {
                        self.pieces.push_front(Piece::Flood {
                            text: text.clone(),
                            count: count - 1,
                        });
                    }
                    if count > 0 {
                        return Some((Ok(self.produce(text)), self));
                    }
                }
                Piece::KeepAlive { every, times } => {
                    if times > 0 {
                        tokio::time::sleep(every).await;
                        self.pieces.push_front(Piece::KeepAlive {
                            every,
                            times: times - 1,
                        });
                        return Some((Ok(self.produce(": keep-alive\n\n".to_owned())), self));
                    }
                }
            }
        }
    }

    fn produce(&self, text: String) -> Bytes {
        self.guard
            .shared
            .produced
            .fetch_add(text.len(), Ordering::SeqCst);
        Bytes::from(text)
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI's stream
// ---------------------------------------------------------------------------------------------

/// One `data:` event.
pub(crate) fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// A chat-completions chunk with this delta and finish reason, as OpenAI writes it.
pub(crate) fn openai_chunk(delta: &Value, finish_reason: Option<&str>) -> String {
    data(&json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_766_000_000,
        "model": "test-model",
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
    }))
}

/// A text delta.
pub(crate) fn openai_text(text: &str) -> String {
    openai_chunk(&json!({"content": text}), None)
}

/// The chunk with the finish reason.
pub(crate) fn openai_finish(reason: &str) -> String {
    openai_chunk(&json!({}), Some(reason))
}

/// The usage-only final chunk (`choices` empty), as `stream_options.include_usage` asks.
pub(crate) fn openai_usage(prompt: u64, completion: u64) -> String {
    data(&json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_766_000_000,
        "model": "test-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }))
}

/// A tool-call piece.
pub(crate) fn openai_tool(
    index: u32,
    id: Option<&str>,
    name: Option<&str>,
    arguments: &str,
) -> String {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = id.into();
        call["type"] = "function".into();
    }
    if let Some(name) = name {
        call["function"]["name"] = name.into();
    }
    openai_chunk(&json!({"tool_calls": [call]}), None)
}

/// The end marker.
pub(crate) fn done() -> String {
    "data: [DONE]\n\n".to_owned()
}

// ---------------------------------------------------------------------------------------------
// Anthropic's stream
// ---------------------------------------------------------------------------------------------

/// One named event.
pub(crate) fn event(name: &str, value: &Value) -> String {
    format!("event: {name}\ndata: {value}\n\n")
}

/// `message_start` with these input tokens (and cache reads).
pub(crate) fn anthropic_start(input: u64, cache_read: u64) -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": "msg_test", "type": "message", "role": "assistant", "content": [],
            "model": "claude-test", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_read_input_tokens": cache_read,
                      "cache_creation_input_tokens": 0, "output_tokens": 1},
        }}),
    )
}

/// A text block's start, one delta per text, and its stop.
pub(crate) fn anthropic_text_block(index: u32, texts: &[&str]) -> Vec<String> {
    let mut events = vec![event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}}),
    )];
    events.extend(texts.iter().map(|text| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
        )
    }));
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
    events
}

/// A `tool_use` block's start, one `input_json_delta` per fragment, and its stop.
pub(crate) fn anthropic_tool_block(
    index: u32,
    id: &str,
    name: &str,
    fragments: &[&str],
) -> Vec<String> {
    let mut events = vec![event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    )];
    events.extend(fragments.iter().map(|fragment| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": fragment}}),
        )
    }));
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
    events
}

/// `message_delta` with the stop reason and output tokens, then `message_stop`.
pub(crate) fn anthropic_end(stop_reason: &str, output: u64) -> Vec<String> {
    vec![
        event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": output}}),
        ),
        event("message_stop", &json!({"type": "message_stop"})),
    ]
}

/// A `ping` event.
pub(crate) fn anthropic_ping() -> String {
    event("ping", &json!({"type": "ping"}))
}
