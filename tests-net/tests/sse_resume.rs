//! Resuming a stream after a lost connection: `Replay` on a real server on 127.0.0.1, the
//! connection cut by a TCP proxy in between, `beluga_sse::client::Reader` resuming with
//! `Last-Event-ID`, also ids that come from the source, opaque to the client. And the replay's
//! policy on its own, under the paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use beluga_core::{Context, ErrorCode, Event, EventResult, EventStreamExt, stream_producer};
use beluga_net_tests::{CuttableProxy, DropGuard, drops, serve_on_loopback, settle};
use beluga_sse::BelugaJson;
use beluga_sse::client::Reader;
use beluga_sse::server::{HttpError, LastEventId, Replay, ReplayOptions};
use futures_util::{Stream, StreamExt};
use tokio::sync::Notify;

/// Emits `1..=before`, waits for `gate`, then emits the next `after` numbers.
#[stream_producer]
fn numbers(
    ctx: Context,
    before: u32,
    after: u32,
    gate: Arc<Notify>,
) -> impl Stream<Item = EventResult<u32>> + Send + 'static {
    for i in 1..=before {
        emit!(i);
    }
    if after > 0 {
        gate.notified().await;
    }
    for i in before + 1..=before + after {
        emit!(i);
    }
}

/// The expected events: `1..=n` and `done`.
fn counted(n: u32) -> Vec<Event<u32>> {
    (1..=n)
        .map(Event::data)
        .chain(std::iter::once(Event::done()))
        .collect()
}

#[derive(Clone)]
struct Server {
    replay: Replay,
    before: u32,
    after: u32,
    /// Lets the producer go on after `before` events.
    gate: Arc<Notify>,
    /// `/resume-gated` waits for this before resuming.
    resume_gate: Arc<Notify>,
    starts: Arc<AtomicUsize>,
    resumes: Arc<AtomicUsize>,
    last_stream: Arc<Mutex<Option<String>>>,
}

impl Server {
    fn new(options: ReplayOptions, before: u32, after: u32) -> Server {
        Server {
            replay: Replay::new(options).unwrap(),
            before,
            after,
            gate: Arc::new(Notify::new()),
            resume_gate: Arc::new(Notify::new()),
            starts: Arc::default(),
            resumes: Arc::default(),
            last_stream: Arc::default(),
        }
    }

    fn stream_id(&self) -> String {
        self.last_stream
            .lock()
            .unwrap()
            .clone()
            .expect("a stream was started")
    }

    fn app(&self) -> Router {
        Router::new()
            .route("/chat", post(chat))
            .route("/resume", get(resume))
            .route("/resume-gated", get(resume_gated))
            .route("/events", get(events))
            .with_state(self.clone())
    }
}

async fn chat(State(server): State<Server>) -> Result<impl IntoResponse, HttpError> {
    server.starts.fetch_add(1, Ordering::SeqCst);
    let (before, after, gate) = (server.before, server.after, Arc::clone(&server.gate));
    let response = server
        .replay
        .start(&Context::new(), BelugaJson, move |ctx| {
            numbers(ctx, before, after, gate)
        })?;
    *server.last_stream.lock().unwrap() = response.stream_id().map(str::to_owned);
    Ok(response)
}

async fn resume(
    State(server): State<Server>,
    LastEventId(id): LastEventId,
) -> Result<impl IntoResponse, HttpError> {
    server.resumes.fetch_add(1, Ordering::SeqCst);
    Ok(server.replay.resume(id.as_deref().unwrap_or_default())?)
}

async fn resume_gated(
    State(server): State<Server>,
    LastEventId(id): LastEventId,
) -> Result<impl IntoResponse, HttpError> {
    server.resume_gate.notified().await;
    server.resumes.fetch_add(1, Ordering::SeqCst);
    Ok(server.replay.resume(id.as_deref().unwrap_or_default())?)
}

/// One URL for starting and resuming, as a browser's `EventSource` uses it.
async fn events(
    State(server): State<Server>,
    LastEventId(id): LastEventId,
) -> Result<impl IntoResponse, HttpError> {
    let (before, after, gate) = (server.before, server.after, Arc::clone(&server.gate));
    let starts = Arc::clone(&server.starts);
    Ok(server
        .replay
        .start_or_resume(id.as_deref(), &Context::new(), BelugaJson, move |ctx| {
            starts.fetch_add(1, Ordering::SeqCst);
            numbers(ctx, before, after, gate)
        })?)
}

#[tokio::test]
async fn a_dropped_connection_resumes_with_no_gap_and_no_duplicate() {
    let server = Server::new(ReplayOptions::new(), 3, 3);
    let addr = serve_on_loopback(server.app()).await;
    let proxy = CuttableProxy::start(addr).await;
    let http = reqwest::Client::new();
    let resume_url = format!("http://{}/resume", proxy.addr);
    let stream = Reader::new(http.post(format!("http://{}/chat", proxy.addr)))
        .resume({
            let http = http.clone();
            move || http.get(&resume_url)
        })
        .resume_delay(Duration::from_millis(20))
        .read::<u32>(&Context::new());
    let mut stream = std::pin::pin!(stream);

    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(stream.next().await.unwrap().unwrap());
    }
    proxy.cut();
    // The producer goes on while the client is away.
    server.gate.notify_one();
    while let Some(item) = stream.next().await {
        events.push(item.expect("no error"));
    }
    assert_eq!(events, counted(6));
    assert_eq!(
        server.starts.load(Ordering::SeqCst),
        1,
        "never started again"
    );
    assert_eq!(server.resumes.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.connections(), 2);
}

/// Emits `count` strings of about 2 KiB, numbered, as fast as they are taken.
#[stream_producer]
fn bulky(ctx: Context, count: u32) -> impl Stream<Item = EventResult<String>> + Send + 'static {
    for i in 1..=count {
        emit!(format!("{i:05}{}", "x".repeat(2048)));
    }
}

#[tokio::test]
async fn cuts_with_events_in_flight_lose_nothing_and_repeat_nothing() {
    // 2,000 events of 2 KiB as fast as the server can write them: more than the sockets' and
    // the proxy's buffers hold, so each cut loses events that were sent and not received. The
    // buffer keeps them all, whatever the sockets held when the cuts came.
    let replay = Replay::new(ReplayOptions::new().capacity(4_096)).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let resumes = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/chat",
            post({
                let (replay, starts) = (replay.clone(), Arc::clone(&starts));
                async move || {
                    starts.fetch_add(1, Ordering::SeqCst);
                    replay
                        .start(&Context::new(), BelugaJson, |ctx| bulky(ctx, 2_000))
                        .map_err(HttpError)
                }
            }),
        )
        .route(
            "/resume",
            get({
                let (replay, resumes) = (replay.clone(), Arc::clone(&resumes));
                async move |LastEventId(id): LastEventId| {
                    resumes.fetch_add(1, Ordering::SeqCst);
                    replay
                        .resume(id.as_deref().unwrap_or_default())
                        .map_err(HttpError)
                }
            }),
        );
    let addr = serve_on_loopback(app).await;
    let proxy = CuttableProxy::start(addr).await;
    let http = reqwest::Client::new();
    let resume_url = format!("http://{}/resume", proxy.addr);
    let stream = Reader::new(http.post(format!("http://{}/chat", proxy.addr)))
        .resume({
            let http = http.clone();
            move || http.get(&resume_url)
        })
        .resume_delay(Duration::from_millis(5))
        .read::<String>(&Context::new());
    let mut stream = std::pin::pin!(stream);
    let mut numbers = Vec::new();
    let mut done = 0;
    while let Some(item) = stream.next().await {
        let event = item.expect("no error");
        match event.payload() {
            Some(text) => numbers.push(text[..5].parse::<u32>().unwrap()),
            None => done += 1,
        }
        if [100, 700, 1_300].contains(&numbers.len()) && event.payload().is_some() {
            proxy.cut();
        }
    }
    assert_eq!(numbers, (1..=2_000).collect::<Vec<_>>());
    assert_eq!(done, 1);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    let resume_count = resumes.load(Ordering::SeqCst);
    assert!((1..=3).contains(&resume_count), "{resume_count} resumes");
}

#[tokio::test]
async fn a_resumed_body_byte_for_byte() {
    let server = Server::new(ReplayOptions::new(), 3, 0);
    let addr = serve_on_loopback(server.app()).await;
    let http = reqwest::Client::new();
    let started = http
        .post(format!("http://{addr}/chat"))
        .send()
        .await
        .unwrap();
    let id = started.headers()["x-beluga-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, server.stream_id());
    let full = started.text().await.unwrap();
    assert_eq!(
        full,
        format!(
            "id: {id}:1\ndata: {{\"type\":\"data\",\"payload\":1}}\n\n\
             id: {id}:2\ndata: {{\"type\":\"data\",\"payload\":2}}\n\n\
             id: {id}:3\ndata: {{\"type\":\"data\",\"payload\":3}}\n\n\
             id: {id}:4\ndata: {{\"type\":\"done\"}}\n\n"
        )
    );

    // After event 2: events 3 and 4, with the same ids and bytes.
    let resumed = http
        .get(format!("http://{addr}/resume"))
        .header("last-event-id", format!("{id}:2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert_eq!(resumed.headers()["x-beluga-stream-id"], id.as_str());
    assert_eq!(
        resumed.text().await.unwrap(),
        format!(
            "id: {id}:3\ndata: {{\"type\":\"data\",\"payload\":3}}\n\n\
             id: {id}:4\ndata: {{\"type\":\"done\"}}\n\n"
        )
    );

    // After the last event: an empty body that ends at once.
    let at_end = http
        .get(format!("http://{addr}/resume"))
        .header("last-event-id", format!("{id}:4"))
        .send()
        .await
        .unwrap();
    assert_eq!(at_end.text().await.unwrap(), "");
}

#[tokio::test]
async fn without_a_resume_route_a_lost_connection_is_an_error_and_the_start_is_never_retried() {
    let server = Server::new(ReplayOptions::new(), 3, 3);
    let addr = serve_on_loopback(server.app()).await;
    let proxy = CuttableProxy::start(addr).await;
    let http = reqwest::Client::new();
    let stream = beluga_sse::client::read::<u32>(
        &Context::new(),
        http.post(format!("http://{}/chat", proxy.addr)),
    );
    let mut stream = std::pin::pin!(stream);
    for i in 1..=3 {
        assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(i));
    }
    proxy.cut();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    let id = server.stream_id();
    assert_eq!(
        err.message(),
        format!("the connection closed after event `{id}:3`, before the stream's end")
    );
    assert!(stream.next().await.is_none());
    assert_eq!(server.starts.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test]
async fn resuming_after_the_buffer_moved_on_is_a_clear_not_found() {
    // 11 frames, 4 kept. Client A is cut after event 2, the last one the producer made before
    // waiting for the gate; client B (another tab, connected
    // before the cut) reads the whole stream, which lets the buffer move on; A's resume comes
    // too late.
    let server = Server::new(ReplayOptions::new().capacity(4), 2, 8);
    let addr = serve_on_loopback(server.app()).await;
    let proxy = CuttableProxy::start(addr).await;
    let http = reqwest::Client::new();
    let gated = format!("http://{}/resume-gated", proxy.addr);
    let a = Reader::new(http.post(format!("http://{}/chat", proxy.addr)))
        .resume({
            let http = http.clone();
            move || http.get(&gated)
        })
        .resume_delay(Duration::from_millis(1))
        .read::<u32>(&Context::new());
    let mut a = Box::pin(a);
    for i in 1..=2 {
        assert_eq!(a.next().await.unwrap().unwrap(), Event::data(i));
    }
    let id = server.stream_id();
    let b = http
        .get(format!("http://{addr}/resume"))
        .header("last-event-id", format!("{id}:0"))
        .send()
        .await
        .unwrap();
    proxy.cut();
    let a_rest = tokio::spawn(async move { a.next().await });

    server.gate.notify_one();
    let b = b.text().await.unwrap();
    assert!(b.starts_with(&format!("id: {id}:1\n")), "{b}");
    assert!(
        b.ends_with(&format!("id: {id}:11\ndata: {{\"type\":\"done\"}}\n\n")),
        "{b}"
    );

    server.resume_gate.notify_one();
    let err = a_rest.await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(
        err.message(),
        format!(
            "event 3 of stream `{id}` is no longer in the replay buffer, which holds events 8 to 11"
        )
    );
    assert_eq!(server.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_malformed_and_future_ids_are_refused_with_json_errors() {
    let server = Server::new(ReplayOptions::new(), 2, 0);
    let addr = serve_on_loopback(server.app()).await;
    let http = reqwest::Client::new();
    let _ = http
        .post(format!("http://{addr}/chat"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = server.stream_id();
    let resume = async |last: &str| {
        let response = http
            .get(format!("http://{addr}/resume"))
            .header("last-event-id", last)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json_body().await;
        (status, body)
    };

    let (status, body) = resume("0123abcd:1").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(
        body["message"],
        "stream `0123abcd` is unknown or has expired"
    );

    let (status, body) = resume("17").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_input");

    let (status, body) = resume("not an id").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "event id `not an id` is not `position` or `stream:position`"
    );

    let (status, body) = resume(&format!("{id}:9")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        format!("event 9 of stream `{id}` has not been sent: the stream is at event 3")
    );
}

trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        assert_eq!(self.headers()["content-type"], "application/json");
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

#[tokio::test]
async fn a_request_with_last_event_id_never_starts_a_stream() {
    let server = Server::new(ReplayOptions::new(), 2, 0);
    let addr = serve_on_loopback(server.app()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/events");

    let first = http.get(&url).send().await.unwrap();
    let id = first.headers()["x-beluga-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    first.text().await.unwrap();
    assert_eq!(server.starts.load(Ordering::SeqCst), 1);

    // The same URL with the header resumes ...
    let again = http
        .get(&url)
        .header("last-event-id", format!("{id}:1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.starts_with(&format!("id: {id}:2\n")), "{again}");
    // ... and a header that cannot be resumed is refused, not taken for a new request.
    let refused = http
        .get(&url)
        .header("last-event-id", "feed:1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(server.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_full_replay_refuses_new_streams_and_the_client_sees_why() {
    let server = Server::new(ReplayOptions::new().max_streams(1), 1, 1);
    let addr = serve_on_loopback(server.app()).await;
    let http = reqwest::Client::new();
    let first =
        beluga_sse::client::read::<u32>(&Context::new(), http.post(format!("http://{addr}/chat")));
    let mut first = std::pin::pin!(first);
    assert_eq!(first.next().await.unwrap().unwrap(), Event::data(1));

    let second =
        beluga_sse::client::read::<u32>(&Context::new(), http.post(format!("http://{addr}/chat")))
            .collect_events()
            .await;
    let err = second.error.expect("refused");
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(
        err.message(),
        "the server holds its maximum of 1 resumable streams"
    );
    assert_eq!(
        server.starts.load(Ordering::SeqCst),
        2,
        "each request sent once"
    );
}

#[tokio::test]
async fn cancel_ends_the_stream_for_its_clients_with_cancelled() {
    let server = Server::new(ReplayOptions::new(), 1, 1);
    let addr = serve_on_loopback(server.app()).await;
    let http = reqwest::Client::new();
    let stream =
        beluga_sse::client::read::<u32>(&Context::new(), http.post(format!("http://{addr}/chat")));
    let mut stream = std::pin::pin!(stream);
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));
    assert!(server.replay.cancel(&server.stream_id()));
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(stream.next().await.is_none());
}

/// The body of a replay response as a stream of text chunks, read without a server.
fn frames(response: impl IntoResponse) -> impl Stream<Item = String> {
    response
        .into_response()
        .into_body()
        .into_data_stream()
        .map(|chunk| String::from_utf8(chunk.unwrap().to_vec()).unwrap())
}

/// Emits `0..` forever, counting the items it made, holding a drop guard.
#[stream_producer]
fn counter(
    ctx: Context,
    taken: Arc<AtomicUsize>,
    guard: DropGuard,
) -> impl Stream<Item = EventResult<usize>> + Send + 'static {
    let _guard = guard;
    let mut i = 0;
    loop {
        taken.fetch_add(1, Ordering::SeqCst);
        emit!(i);
        i += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn with_no_client_the_producer_runs_to_the_buffers_bound_and_waits() {
    let replay = Replay::new(ReplayOptions::new().capacity(5)).unwrap();
    let taken = Arc::new(AtomicUsize::new(0));
    let (guard, _drops) = DropGuard::new();
    let response = replay
        .start(&Context::new(), BelugaJson, {
            let taken = Arc::clone(&taken);
            move |ctx| counter(ctx, taken, guard)
        })
        .unwrap();
    let id = response.stream_id().unwrap().to_owned();
    drop(response);
    settle().await;
    // Five frames in the buffer, and the producer parked on the sixth.
    assert_eq!(taken.load(Ordering::SeqCst), 5);

    // A client that comes back reads them all, and the producer goes on behind it.
    let mut body = std::pin::pin!(frames(replay.resume(&format!("{id}:0")).unwrap()));
    for position in 1..=8 {
        let frame = body.next().await.unwrap();
        assert_eq!(
            frame,
            format!(
                "id: {id}:{position}\ndata: {{\"type\":\"data\",\"payload\":{}}}\n\n",
                position - 1
            )
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_without_a_client_lives_for_the_grace_period_then_is_dropped() {
    let grace = Duration::from_secs(10); // the sleeps below count in it
    let replay = Replay::new(ReplayOptions::new().grace(grace)).unwrap();
    let (guard, dropped) = DropGuard::new();
    let ctx_seen = Arc::new(Mutex::new(None));
    let response = replay
        .start(&Context::new(), BelugaJson, {
            let ctx_seen = Arc::clone(&ctx_seen);
            move |ctx| {
                *ctx_seen.lock().unwrap() = Some(ctx.clone());
                counter(ctx, Arc::default(), guard)
            }
        })
        .unwrap();
    let id = response.stream_id().unwrap().to_owned();
    let mut body = Box::pin(frames(response));
    assert!(
        body.next()
            .await
            .unwrap()
            .starts_with(&format!("id: {id}:1\n"))
    );
    drop(body); // the client goes away after event 1

    // Back within the grace period: the stream is there, and goes on after event 1.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(drops(&dropped), 0);
    let mut body = Box::pin(frames(replay.resume(&format!("{id}:1")).unwrap()));
    assert!(
        body.next()
            .await
            .unwrap()
            .starts_with(&format!("id: {id}:2\n"))
    );
    drop(body);

    // Away for longer: the producer is dropped, its context cancelled, the stream freed.
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    settle().await;
    assert_eq!(drops(&dropped), 0);
    assert_eq!(replay.len(), 1);
    tokio::time::sleep(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(drops(&dropped), 1);
    assert!(ctx_seen.lock().unwrap().as_ref().unwrap().is_cancelled());
    assert!(replay.is_empty());
    let err = replay.resume(&format!("{id}:2")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(
        err.message(),
        format!("stream `{id}` is unknown or has expired")
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_stream_is_kept_for_the_grace_period_for_a_late_reload() {
    let grace = Duration::from_secs(30);
    let replay = Replay::new(ReplayOptions::new().grace(grace)).unwrap();
    let response = replay
        .start(&Context::new(), BelugaJson, |_| {
            beluga_core::stream::iter([1, 2])
        })
        .unwrap();
    let id = response.stream_id().unwrap().to_owned();
    let body: Vec<String> = frames(response).collect().await;
    assert_eq!(body.len(), 3);
    tokio::time::sleep(grace / 2).await;
    let again: Vec<String> = frames(replay.resume(&format!("{id}:0")).unwrap())
        .collect()
        .await;
    assert_eq!(again, body);
    tokio::time::sleep(grace + Duration::from_millis(1)).await;
    settle().await;
    assert!(replay.is_empty());
}

/// Opaque ids that no beluga type parses: a source names its items with them, and a server
/// that keeps no state resumes from whichever the client sends back.
const TOKENS: [&str; 6] = ["t:a", "t:a.1", "🙂 é", "x/y:7.3", "with spaces", "end"];

/// `/log`: the items after the `Last-Event-ID` (all without one), each with its token as its
/// id (the `done` takes the last). The first connection stops after three items and hangs, as
/// a stream whose connection is lost mid-way.
async fn log(
    State(seen): State<Arc<Mutex<Vec<Option<String>>>>>,
    LastEventId(last): LastEventId,
) -> Result<impl IntoResponse, HttpError> {
    seen.lock().unwrap().push(last.clone());
    let from = match &last {
        None => 0,
        Some(id) => {
            TOKENS.iter().position(|t| t == id).ok_or_else(|| {
                beluga_core::Error::new(ErrorCode::InvalidInput, format!("unknown id {id:?}"))
            })? + 1
        }
    };
    let items = (from..TOKENS.len()).map(|i| {
        let event = if i + 1 == TOKENS.len() {
            Event::done()
        } else {
            Event::data(u32::try_from(i).unwrap())
        };
        (TOKENS[i], Ok(event))
    });
    let items: Vec<(&str, EventResult<u32>)> = if last.is_none() {
        items.take(3).collect()
    } else {
        items.collect()
    };
    // The first connection then waits forever (`pending`); a resume ends.
    let stream = futures_util::stream::iter(items)
        .chain(futures_util::stream::pending().take(usize::from(last.is_none())));
    Ok(beluga_sse::serve(&Context::new(), BelugaJson, |_| stream))
}

#[tokio::test]
async fn ids_from_the_source_are_opaque_to_the_client_which_sends_back_the_last_exactly() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/log", get(log))
        .with_state(Arc::clone(&seen));
    let addr = serve_on_loopback(app).await;
    let proxy = CuttableProxy::start(addr).await;
    let http = reqwest::Client::new();
    let stream = Reader::new(http.get(format!("http://{}/log", proxy.addr)))
        .resume({
            let http = http.clone();
            move || http.get(format!("http://{addr}/log"))
        })
        .resume_delay(Duration::from_millis(20))
        .read::<u32>(&Context::new());
    let mut stream = std::pin::pin!(stream);
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(stream.next().await.unwrap().unwrap());
    }
    proxy.cut();
    while let Some(item) = stream.next().await {
        events.push(item.expect("no error"));
    }
    let expected: Vec<Event<u32>> = (0..5)
        .map(Event::data)
        .chain(std::iter::once(Event::done()))
        .collect();
    assert_eq!(events, expected);
    // The resume sent the third id back byte for byte (UTF-8 and all).
    assert_eq!(
        *seen.lock().unwrap(),
        [None, Some("🙂 é".to_owned())],
        "one start, one resume"
    );

    // And from any id: the items after it.
    let rest: Vec<_> = beluga_sse::client::read::<u32>(
        &Context::new(),
        http.get(format!("http://{addr}/log"))
            .header("last-event-id", "x/y:7.3"),
    )
    .collect()
    .await;
    assert_eq!(rest, [Ok(Event::data(4)), Ok(Event::done())]);
}
