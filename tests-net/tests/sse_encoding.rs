//! SSE out in Beluga's JSON shape, byte for byte, from a real server on 127.0.0.1 to a real
//! HTTP client; and the same bodies read back by `beluga_sse::client` with a local stream's
//! semantics (one terminal item, codes preserved).

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use beluga_core::{Context, Error, ErrorCode, Event, EventResult, EventStreamExt};
use beluga_net_tests::serve_on_loopback;
use beluga_sse::BelugaJson;
use beluga_sse::server::SseOptions;
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

/// The fixed stream: text, a tool call, its result, a reported error, `done` with usage.
fn answer() -> Vec<EventResult<Value>> {
    vec![
        Ok(Event::data(json!("Hel"))),
        Ok(Event::data(json!("lo"))),
        Ok(Event::tool_call(json!({
            "id": "call_1",
            "name": "weather",
            "arguments": {"city": "Paris"}
        }))),
        Ok(Event::tool_result(
            json!({"id": "call_1", "output": "18°C, sunny"}),
        )),
        Ok(Event::error(
            Error::new(ErrorCode::ToolFailed, "forecast unavailable").with_op("tool.forecast"),
        )),
        Ok(Event::done_with(json!("Hello")).with_tokens(12, 5)),
    ]
}

const ANSWER_BODY: &str = concat!(
    "id: 1\n",
    "data: {\"type\":\"data\",\"payload\":\"Hel\"}\n",
    "\n",
    "id: 2\n",
    "data: {\"type\":\"data\",\"payload\":\"lo\"}\n",
    "\n",
    "id: 3\n",
    "data: {\"type\":\"tool_call\",\"payload\":{\"arguments\":{\"city\":\"Paris\"},\"id\":\"call_1\",\"name\":\"weather\"}}\n",
    "\n",
    "id: 4\n",
    "data: {\"type\":\"tool_result\",\"payload\":{\"id\":\"call_1\",\"output\":\"18°C, sunny\"}}\n",
    "\n",
    "id: 5\n",
    "data: {\"type\":\"error\",\"error\":{\"code\":\"tool_failed\",\"op\":\"tool.forecast\",\"message\":\"forecast unavailable\"}}\n",
    "\n",
    "id: 6\n",
    "data: {\"type\":\"done\",\"payload\":\"Hello\",\"meta\":{\"input_tokens\":12,\"output_tokens\":5}}\n",
    "\n",
);

/// Text, then a terminal error with a cause.
fn failing() -> Vec<EventResult<Value>> {
    vec![
        Ok(Event::data(json!("Hel"))),
        Err(
            Error::new(ErrorCode::ProviderUnavailable, "upstream failed")
                .with_op("llm.stream")
                .with_source(Error::new(ErrorCode::RateLimit, "slow down").with_op("openai.chat")),
        ),
    ]
}

const FAILING_BODY: &str = concat!(
    "id: 1\n",
    "data: {\"type\":\"data\",\"payload\":\"Hel\"}\n",
    "\n",
    "id: 2\n",
    "event: error\n",
    "data: {\"code\":\"provider_unavailable\",\"op\":\"llm.stream\",\"message\":\"upstream failed\",\"source\":{\"code\":\"rate_limit\",\"op\":\"openai.chat\",\"message\":\"slow down\"}}\n",
    "\n",
);

/// One event, then the end without a terminal item.
fn cut_short() -> Vec<EventResult<Value>> {
    vec![Ok(Event::data(json!(1)))]
}

const CUT_BODY: &str = concat!(
    "id: 1\n",
    "data: {\"type\":\"data\",\"payload\":1}\n",
    "\n",
    "id: 2\n",
    "event: end\n",
    "data: {}\n",
    "\n",
);

fn app() -> Router {
    Router::new()
        .route(
            "/answer",
            get(async || {
                beluga_sse::serve(&Context::new(), BelugaJson, |_| {
                    futures_util::stream::iter(answer())
                })
            }),
        )
        .route(
            "/failing",
            get(async || {
                beluga_sse::serve(&Context::new(), BelugaJson, |_| {
                    futures_util::stream::iter(failing())
                })
            }),
        )
        .route(
            "/cut",
            get(async || {
                beluga_sse::serve(&Context::new(), BelugaJson, |_| {
                    futures_util::stream::iter(cut_short())
                })
            }),
        )
        .route(
            "/panics",
            get(async || {
                beluga_sse::serve(&Context::new(), BelugaJson, |_| {
                    futures_util::stream::iter([0, 1]).map(|i| -> EventResult<u8> {
                        assert!(i == 0, "the model fell over");
                        Ok(Event::data(i))
                    })
                })
            }),
        )
        .route(
            "/unserializable",
            get(async || {
                // JSON map keys must be strings: this payload cannot be written.
                let payload = std::collections::BTreeMap::from([((1, 2), "x")]);
                beluga_sse::serve(&Context::new(), BelugaJson, move |_| {
                    beluga_core::stream::iter([payload])
                })
            }),
        )
        .route(
            "/slow",
            get(async || {
                SseOptions::new()
                    .keep_alive(Duration::from_millis(20))
                    .serve(&Context::new(), BelugaJson, |_| slow())
            }),
        )
}

/// One event, then nothing for a while, then `done`.
fn slow() -> impl Stream<Item = EventResult<u8>> + Send + 'static {
    futures_util::stream::unfold(0, |i| async move {
        match i {
            0 => Some((Ok(Event::data(7)), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok(Event::done()), 2))
            }
            _ => None,
        }
    })
}

async fn body(url: &str) -> (reqwest::header::HeaderMap, String) {
    let response = reqwest::get(url).await.expect("GET");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn beluga_json_bodies_byte_for_byte() {
    let addr = serve_on_loopback(app()).await;

    let (headers, answer) = body(&format!("http://{addr}/answer")).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(answer, ANSWER_BODY);

    let (_, failing) = body(&format!("http://{addr}/failing")).await;
    assert_eq!(failing, FAILING_BODY);

    let (_, cut) = body(&format!("http://{addr}/cut")).await;
    assert_eq!(cut, CUT_BODY);
}

#[tokio::test]
async fn a_panic_or_an_unwritable_payload_ends_the_body_with_an_internal_error() {
    let addr = serve_on_loopback(app()).await;

    let (_, panics) = body(&format!("http://{addr}/panics")).await;
    assert_eq!(
        panics,
        concat!(
            "id: 1\n",
            "data: {\"type\":\"data\",\"payload\":0}\n",
            "\n",
            "id: 2\n",
            "event: error\n",
            "data: {\"code\":\"internal\",\"op\":\"sse.serve\",\"message\":\"the event stream panicked: the model fell over\"}\n",
            "\n",
        )
    );

    let (_, unserializable) = body(&format!("http://{addr}/unserializable")).await;
    assert_eq!(
        unserializable,
        concat!(
            "id: 1\n",
            "event: error\n",
            "data: {\"code\":\"internal\",\"op\":\"sse.encode\",\"message\":\"the event's payload does not serialize to JSON\",\"source\":{\"message\":\"key must be a string\"}}\n",
            "\n",
        )
    );
}

#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let addr = serve_on_loopback(app()).await;
    let (_, slow) = body(&format!("http://{addr}/slow")).await;
    // The events, with at least one keep-alive comment between them and nothing else.
    let first = "id: 1\ndata: {\"type\":\"data\",\"payload\":7}\n\n";
    let last = "id: 2\ndata: {\"type\":\"done\"}\n\n";
    let comments = slow
        .strip_prefix(first)
        .and_then(|rest| rest.strip_suffix(last))
        .unwrap_or_else(|| panic!("unexpected body {slow:?}"));
    assert!(!comments.is_empty(), "no keep-alive in {slow:?}");
    assert_eq!(comments.replace(":\n\n", ""), "", "body {slow:?}");
}

#[tokio::test]
async fn the_client_reads_each_body_back_with_a_local_streams_semantics() {
    let addr = serve_on_loopback(app()).await;
    let http = reqwest::Client::new();
    let read = |path: &str| {
        beluga_sse::client::read::<Value>(&Context::new(), http.get(format!("http://{addr}{path}")))
            .collect_events()
    };

    // Every event as it was, `done` with its metadata last, no error.
    let answer_back = read("/answer").await;
    let expected: Vec<Event<Value>> = answer().into_iter().map(Result::unwrap).collect();
    assert_eq!(answer_back.events, expected);
    assert!(answer_back.error.is_none());

    // The terminal error with its code, op, message and cause.
    let failing_back = read("/failing").await;
    assert_eq!(failing_back.events, [Event::data(json!("Hel"))]);
    let err = failing_back.error.expect("the terminal error");
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(err.root_code(), ErrorCode::RateLimit);
    assert_eq!(
        format!("{err:#}"),
        "llm.stream [provider_unavailable]: upstream failed: openai.chat [rate_limit]: slow down"
    );

    // A stream that ended without a terminal item ends so here too.
    let cut_back = read("/cut").await;
    assert_eq!(cut_back.events, [Event::data(json!(1))]);
    assert!(cut_back.error.is_none());
}

#[tokio::test]
async fn exactly_one_terminal_item_then_none() {
    let addr = serve_on_loopback(app()).await;
    let http = reqwest::Client::new();
    for (path, terminal_is_err) in [("/answer", false), ("/failing", true)] {
        let stream = beluga_sse::client::read::<Value>(
            &Context::new(),
            http.get(format!("http://{addr}{path}")),
        );
        let mut stream = std::pin::pin!(stream);
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item);
        }
        let last = items.last().expect("items");
        assert_eq!(last.is_err(), terminal_is_err, "{path}");
        let terminals = items
            .iter()
            .filter(|i| i.as_ref().map_or(true, Event::is_done))
            .count();
        assert_eq!(terminals, 1, "{path}");
        assert!(stream.next().await.is_none(), "{path}: fused");
    }
}

#[tokio::test]
async fn error_responses_and_unreachable_servers_are_terminal_errors_with_codes() {
    let app = Router::new()
        .route(
            "/refused",
            get(async || {
                beluga_sse::server::HttpError(
                    Error::new(ErrorCode::Auth, "bad token").with_op("gateway"),
                )
            }),
        )
        .route(
            "/plain-429",
            get(async || (axum::http::StatusCode::TOO_MANY_REQUESTS, "busy")),
        )
        .route("/not-sse", get(async || "hello"));
    let addr = serve_on_loopback(app).await;
    let http = reqwest::Client::new();
    let read = |url: String| {
        beluga_sse::client::read::<Value>(&Context::new(), http.get(url)).collect_events()
    };

    let refused = read(format!("http://{addr}/refused")).await;
    let err = refused.error.expect("error");
    assert!(refused.events.is_empty());
    assert_eq!(err.code(), ErrorCode::Auth);
    assert_eq!(err.to_string(), "gateway [auth_error]: bad token");

    let busy = read(format!("http://{addr}/plain-429"))
        .await
        .error
        .expect("error");
    assert_eq!(busy.code(), ErrorCode::RateLimit);
    assert!(busy.message().contains("busy"), "{busy}");

    let not_sse = read(format!("http://{addr}/not-sse"))
        .await
        .error
        .expect("error");
    assert_eq!(not_sse.code(), ErrorCode::InvalidInput);
    assert!(not_sse.message().contains("text/event-stream"), "{not_sse}");

    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = read(format!("http://{dead}/x")).await.error.expect("error");
    assert_eq!(unreachable.code(), ErrorCode::ProviderUnavailable);
}

#[tokio::test]
async fn cancelling_the_readers_context_ends_it_with_cancelled() {
    let app = Router::new().route(
        "/forever",
        get(async || {
            beluga_sse::serve(&Context::new(), BelugaJson, |_| {
                futures_util::stream::iter([Ok::<_, Error>(Event::data(1_u8))])
                    .chain(futures_util::stream::pending())
            })
        }),
    );
    let addr = serve_on_loopback(app).await;
    let ctx = Context::new();
    let stream = beluga_sse::client::read::<u8>(
        &ctx,
        reqwest::Client::new().get(format!("http://{addr}/forever")),
    );
    let mut stream = std::pin::pin!(stream);
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));
    ctx.cancel();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(stream.next().await.is_none());
}
