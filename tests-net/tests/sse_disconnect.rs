//! A client that goes away drops the producer and cancels its context at once: real server
//! on 127.0.0.1, real HTTP client, a drop guard in the producer and the runtime's task count.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use beluga_core::{Context, Event, stream};
use beluga_net_tests::{alive_tasks, eventually, serve_on_loopback, settle};
use beluga_sse::BelugaJson;
use beluga_sse::server::{Replay, ReplayOptions};
use futures_util::StreamExt;

/// Records when it is dropped, and hands out the producer's context.
#[derive(Clone, Default)]
struct Probe {
    dropped_at: Arc<Mutex<Option<Instant>>>,
    ctx: Arc<Mutex<Option<Context>>>,
}

struct Stamp(Arc<Mutex<Option<Instant>>>);

impl Drop for Stamp {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

impl Probe {
    fn dropped_at(&self) -> Option<Instant> {
        *self.dropped_at.lock().unwrap()
    }

    fn ctx(&self) -> Context {
        self.ctx
            .lock()
            .unwrap()
            .clone()
            .expect("the producer started")
    }

    /// A producer that emits one event and then waits forever, holding a drop stamp.
    fn producer(
        &self,
        ctx: &Context,
    ) -> impl futures_util::Stream<Item = beluga_core::EventResult<String>> + Send + 'static + use<>
    {
        *self.ctx.lock().unwrap() = Some(ctx.clone());
        let stamp = Stamp(Arc::clone(&self.dropped_at));
        // A plain stream, which never looks at its context: only the drop can stop it.
        futures_util::stream::iter([Ok(Event::data("first".to_owned()))])
            .chain(futures_util::stream::pending())
            .map(move |item| {
                let _held = &stamp;
                item
            })
    }
}

/// Opens the stream, reads its first event, closes the connection; returns when it closed.
async fn read_first_event_and_leave(url: &str) -> Instant {
    let http = reqwest::Client::new();
    let mut response = http.get(url).send().await.expect("GET");
    let first = response
        .chunk()
        .await
        .expect("chunk")
        .expect("a first chunk");
    assert!(
        String::from_utf8_lossy(&first).contains("first"),
        "{first:?}"
    );
    let closed_at = Instant::now();
    drop(response);
    drop(http);
    closed_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_drops_the_producer_and_cancels_its_context() {
    let probe = Probe::default();
    let app = Router::new().route(
        "/answer",
        get({
            let probe = probe.clone();
            async move || beluga_sse::serve(&Context::new(), BelugaJson, |ctx| probe.producer(&ctx))
        }),
    );
    let addr = serve_on_loopback(app).await;
    settle().await;
    let baseline = alive_tasks();

    let closed_at = read_first_event_and_leave(&format!("http://{addr}/answer")).await;
    eventually("the producer is dropped", || probe.dropped_at().is_some()).await;
    let latency = probe
        .dropped_at()
        .unwrap()
        .saturating_duration_since(closed_at);
    eprintln!("client closed -> producer dropped: {latency:?}");
    assert!(
        probe.ctx().is_cancelled(),
        "the producer's context is cancelled"
    );
    eventually("the connection's task ends", || alive_tasks() <= baseline).await;
    assert_eq!(alive_tasks(), baseline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_context_is_not_cancelled_only_the_producers_child() {
    let request_ctx = Context::new();
    let probe = Probe::default();
    let app = Router::new().route(
        "/answer",
        get({
            let (probe, request_ctx) = (probe.clone(), request_ctx.clone());
            async move || beluga_sse::serve(&request_ctx, BelugaJson, |ctx| probe.producer(&ctx))
        }),
    );
    let addr = serve_on_loopback(app).await;
    read_first_event_and_leave(&format!("http://{addr}/answer")).await;
    eventually("the producer is dropped", || probe.dropped_at().is_some()).await;
    assert!(probe.ctx().is_cancelled());
    assert!(!request_ctx.is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_stream_leaves_no_task_behind() {
    let app = Router::new().route(
        "/short",
        get(async || beluga_sse::serve(&Context::new(), BelugaJson, |_| stream::iter([1, 2, 3]))),
    );
    let addr = serve_on_loopback(app).await;
    settle().await;
    let baseline = alive_tasks();
    for _ in 0..10 {
        let http = reqwest::Client::new();
        let body = http
            .get(format!("http://{addr}/short"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.ends_with("data: {\"type\":\"done\"}\n\n"), "{body}");
    }
    eventually("every connection's task ends", || alive_tasks() <= baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_grace_a_resumable_stream_is_dropped_when_its_last_client_goes_away() {
    let probe = Probe::default();
    let replay = Replay::new(ReplayOptions::new().grace(Duration::ZERO)).unwrap();
    let app = Router::new().route(
        "/answer",
        get({
            let (probe, replay) = (probe.clone(), replay.clone());
            async move || {
                replay
                    .start(&Context::new(), BelugaJson, |ctx| probe.producer(&ctx))
                    .unwrap()
            }
        }),
    );
    let addr = serve_on_loopback(app).await;
    settle().await;
    let baseline = alive_tasks();

    let closed_at = read_first_event_and_leave(&format!("http://{addr}/answer")).await;
    eventually("the producer is dropped", || probe.dropped_at().is_some()).await;
    let latency = probe
        .dropped_at()
        .unwrap()
        .saturating_duration_since(closed_at);
    eprintln!("client closed -> resumable producer dropped: {latency:?}");
    assert!(probe.ctx().is_cancelled());
    eventually("the stream is freed", || replay.is_empty()).await;
    // The connection's task and the stream's own task are gone.
    eventually("no task is left", || alive_tasks() <= baseline).await;
}
