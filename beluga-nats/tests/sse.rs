//! A stateless SSE front end in front of JetStream, with real servers on 127.0.0.1: a
//! `nats-server -js`, axum front ends serving `RemoteStream::with_ids`, and beluga-sse's client
//! reading through a proxy whose connection is cut mid-stream, then resuming through a second,
//! freshly started front end.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use beluga_core::{Context, Error, ErrorCode, Event, stream_producer};
use beluga_nats::{ItemId, Position, Relay, RelayConfig};
use beluga_net_tests::CuttableProxy;
use beluga_sse::BelugaJson;
use beluga_sse::client::Reader;
use beluga_sse::server::{HttpError, LastEventId};
use futures_util::{Stream, StreamExt};
use support::NatsServer;

const STREAM: &str = "answer";
const ITEMS: u64 = 400;

/// `n` numbers in bursts of `burst` ready together (the publisher batches each burst), a
/// burst every `every`.
#[stream_producer]
fn bursts(
    ctx: Context,
    n: u64,
    burst: u64,
    every: Duration,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        if i % burst == 0 {
            tokio::time::sleep(every).await;
        }
        emit!(i);
    }
}

fn config() -> RelayConfig {
    RelayConfig::new()
        .with_idle_timeout(Duration::from_secs(5))
        .with_max_batch_items(8)
}

/// One front-end instance: its own relay (its own NATS connection), and the `Last-Event-ID`
/// of every request it got. It keeps nothing else.
#[derive(Clone)]
struct Front {
    relay: Relay,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

/// `GET /events/{id}`: the stream from the start, or after the request's `Last-Event-ID`.
async fn events(
    State(front): State<Front>,
    Path(id): Path<String>,
    LastEventId(last): LastEventId,
) -> Result<impl IntoResponse, HttpError> {
    front.seen.lock().unwrap().push(last.clone());
    let from = Position::from_last_event_id(&id, last.as_deref())?;
    let answer = front.relay.subscribe::<u64>(&id, from).await?;
    Ok(beluga_sse::serve(&Context::new(), BelugaJson, |_| {
        answer.with_ids()
    }))
}

struct FrontEnd {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FrontEnd {
    async fn start(nats_url: &str) -> FrontEnd {
        let front = Front {
            relay: support::relay(nats_url, config()).await,
            seen: Arc::default(),
        };
        let seen = Arc::clone(&front.seen);
        let app = Router::new()
            .route("/events/{id}", get(events))
            .with_state(front);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FrontEnd { addr, seen, accept }
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

fn numbers_then_done(n: u64) -> Vec<Result<Event<u64>, Error>> {
    (0..n)
        .map(|i| Ok(Event::data(i)))
        .chain([Ok(Event::done())])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_sse_reader_resumes_through_a_fresh_front_end_with_every_event_once() {
    let nats = NatsServer::start();
    // The producer's machine.
    let publisher = support::relay(&nats.url(), config()).await;
    let publishing = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), STREAM, |ctx| {
                bursts(ctx, ITEMS, 10, Duration::from_millis(20))
            })
            .await
    });

    // The first front end, reached through a proxy that can cut the connection.
    let first = FrontEnd::start(&nats.url()).await;
    let proxy = CuttableProxy::start(first.addr).await;
    // Where the reader resumes: nowhere yet (a refused connection is retried), then the
    // second front end, started after the cut.
    let resume_url = Arc::new(Mutex::new("http://127.0.0.1:1/".to_owned()));
    let http = reqwest::Client::new();
    let reader = {
        let (http, resume_url) = (http.clone(), Arc::clone(&resume_url));
        Reader::new(http.get(format!("http://{}/events/{STREAM}", proxy.addr)))
            .resume(move || http.get(resume_url.lock().unwrap().as_str()))
            .max_resumes(20)
            .resume_delay(Duration::from_millis(20))
            .read::<u64>(&Context::new())
    };
    let mut reader = std::pin::pin!(reader);

    let mut got = Vec::new();
    while got.len() < 100 {
        got.push(reader.next().await.expect("an event before the cut"));
    }
    // Mid-stream: the connection is cut, and the first front end goes away for good.
    proxy.cut();
    first.accept.abort();
    let second = FrontEnd::start(&nats.url()).await;
    *resume_url.lock().unwrap() = format!("http://{}/events/{STREAM}", second.addr);
    while let Some(item) = reader.next().await {
        got.push(item);
    }

    // Every event exactly once, in order, and one terminal item.
    let expected = numbers_then_done(ITEMS);
    if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
        panic!(
            "item {i}: got {:?}, expected {:?} ({} items, expected {})",
            got.get(i),
            expected.get(i),
            got.len(),
            expected.len()
        );
    }
    assert_eq!(reader.next().await, None);
    let stored = publishing.await.unwrap().unwrap();
    assert_eq!(stored.items(), ITEMS + 1);

    // The first front end served the start; the second, fresh one, only the resume, from the
    // id of the last event the reader had received: `answer:<position>`.
    assert_eq!(first.seen(), [None]);
    let seen = second.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let last: ItemId = seen[0]
        .as_deref()
        .expect("a Last-Event-ID")
        .parse()
        .unwrap();
    assert_eq!(last.stream(), STREAM);
    // The ids are the relay's positions: read the stream directly to place the resume point.
    let reference = support::relay(&nats.url(), config()).await;
    let mut direct = reference
        .subscribe::<u64>(STREAM, Position::Start)
        .await
        .unwrap();
    let mut positions = Vec::new();
    while direct.next().await.is_some() {
        positions.push(direct.position());
    }
    let resumed_after = positions
        .iter()
        .position(|p| *p == last.position())
        .expect("the Last-Event-ID names an item of the stream");
    assert!(
        (99..positions.len() - 1).contains(&resumed_after),
        "the cut came mid-stream, after the 100 events read: resumed after item {resumed_after}"
    );
    // Batching was on: items in the middle of messages, whose ids are `<sequence>.<index>`.
    let mid_batch: Vec<Position> = positions
        .iter()
        .copied()
        .filter(|p| matches!(p, Position::After { index, .. } if *index > 0))
        .collect();
    assert!(mid_batch.len() > positions.len() / 2, "{positions:?}");

    // Any instance resumes from the middle of a message: the events after it, once each.
    let cut = positions.iter().position(|p| *p == mid_batch[7]).unwrap();
    let id = ItemId::new(STREAM, positions[cut]).to_string();
    assert!(id.contains('.'), "{id}");
    let rest: Vec<_> = beluga_sse::client::read::<u64>(
        &Context::new(),
        http.get(format!("http://{}/events/{STREAM}", second.addr))
            .header("last-event-id", &id),
    )
    .collect()
    .await;
    assert_eq!(
        rest,
        numbers_then_done(ITEMS)[cut + 1..],
        "resumed after {id}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_last_event_id_is_a_clear_400() {
    let nats = NatsServer::start();
    let front = FrontEnd::start(&nats.url()).await;
    let url = format!("http://{}/events/{STREAM}", front.addr);
    let http = reqwest::Client::new();
    for (bad, says) in [
        ("answer:12.x", "not digits"),
        ("12.3", "no `:`"),
        ("other:12", "names stream `other`"),
        ("answer:0.3", "sequence 0"),
        ("a b:12", "subject token"),
    ] {
        let response = http
            .get(&url)
            .header("last-event-id", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["code"], "invalid_input", "{bad}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{bad}: {message}");
        // beluga-sse's client ends with that error, code and message intact.
        let items: Vec<_> = beluga_sse::client::read::<u64>(
            &Context::new(),
            http.get(&url).header("last-event-id", bad),
        )
        .collect()
        .await;
        assert_eq!(items.len(), 1, "{bad}");
        let err = items[0].as_ref().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad}");
        assert!(err.message().contains(says), "{bad}: {err}");
    }
}
