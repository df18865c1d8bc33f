//! The relay against a real `nats-server -js` on 127.0.0.1, publisher and consumers in one
//! process on separate connections: semantics, resume, fan-out, cancellation, flow control,
//! limits.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, Event, stream_producer};
use beluga_nats::{CancelPolicy, Ending, Position, Relay, RelayConfig, Storage};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use support::{DropGuard, NatsServer, relay};

/// `n` numbers, one every `every`, counting what it produced in `produced`.
#[stream_producer]
fn numbers(
    ctx: Context,
    n: u64,
    every: Duration,
    guard: DropGuard,
    produced: Arc<AtomicU64>,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let _guard = guard;
    for i in 0..n {
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
        produced.store(i + 1, Ordering::SeqCst);
        emit!(i);
    }
}

/// `n` numbers in bursts of `burst` that are ready together (the publisher sends each burst in
/// as few messages as its batch limits allow), a burst every `every`.
#[stream_producer]
fn bursts(
    ctx: Context,
    n: u64,
    burst: u64,
    every: Duration,
    guard: DropGuard,
    produced: Arc<AtomicU64>,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let _guard = guard;
    for i in 0..n {
        if i % burst == 0 && !every.is_zero() {
            tokio::time::sleep(every).await;
        }
        produced.store(i + 1, Ordering::SeqCst);
        emit!(i);
    }
}

fn probe() -> (DropGuard, Arc<AtomicBool>, Arc<AtomicU64>) {
    let dropped = Arc::new(AtomicBool::new(false));
    (
        DropGuard(dropped.clone()),
        dropped,
        Arc::new(AtomicU64::new(0)),
    )
}

#[allow(clippy::unnecessary_wraps)] // an item of an event stream
fn ok<T>(event: Event<T>) -> Result<Event<T>, Error> {
    Ok(event)
}

fn config() -> RelayConfig {
    RelayConfig::new()
        .with_idle_timeout(Duration::from_secs(5))
        .with_presence_interval(Duration::from_millis(100))
}

async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn collect<T: serde::de::DeserializeOwned>(
    relay: &Relay,
    id: &str,
    position: Position,
) -> Vec<Result<Event<T>, Error>> {
    relay
        .subscribe::<T>(id, position)
        .await
        .unwrap()
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_and_the_terminal_error_cross_unchanged() {
    let server = NatsServer::start();
    let publisher = relay(&server.url(), config()).await;
    let consumer = relay(&server.url(), config()).await;
    let error = Error::new(ErrorCode::RateLimit, "slow down")
        .with_op("llm.chat")
        .with_source(Error::new(ErrorCode::Timeout, "upstream").with_op("http"));
    let items: Vec<Result<Event<Value>, Error>> = vec![
        Ok(Event::data(json!({"delta": "Hel"}))
            .with_trace_id("t-1")
            .with_tokens(3, 1)),
        Ok(Event::tool_call(json!({"name": "search"}))),
        Ok(Event::tool_result(json!([1, 2]))),
        Ok(Event::handoff(json!("billing"))),
        Ok(Event::error(Error::new(
            ErrorCode::ToolFailed,
            "reported, not terminal",
        ))),
        Err(error.clone()),
    ];
    let sent = items.clone();
    let outcome = publisher
        .publish(&Context::new(), "kinds", move |_| {
            futures_util::stream::iter(sent)
        })
        .await
        .unwrap();
    assert_eq!(outcome.items(), 6);
    assert_eq!(outcome.ending(), &Ending::Failed(error.clone()));

    let got = collect::<Value>(&consumer, "kinds", Position::Start).await;
    assert_eq!(got, items);
    let err = got.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);
    assert_eq!(err.root_code(), ErrorCode::Timeout);
    assert_eq!(format!("{err:#}"), format!("{error:#}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_without_a_terminal_item_ends_the_remote_stream_the_same_way() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    let outcome = relay
        .publish(&Context::new(), "plain", |_| {
            futures_util::stream::iter([ok(Event::data(1_u32)), ok(Event::data(2))])
        })
        .await
        .unwrap();
    assert_eq!(outcome.ending(), &Ending::Ended);
    assert_eq!(
        collect::<u32>(&relay, "plain", Position::Start).await,
        [Ok(Event::data(1)), Ok(Event::data(2))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fan_out_each_consumer_gets_everything_and_a_slow_one_holds_back_no_one() {
    let server = NatsServer::start();
    let publisher = relay(&server.url(), config()).await;
    let readers = relay(&server.url(), config()).await;
    let n = 300;
    // Consumers subscribe before the publisher starts; one of them reads slowly.
    let fast = readers
        .subscribe::<u64>("fan", Position::Start)
        .await
        .unwrap();
    let fast2 = readers
        .subscribe::<u64>("fan", Position::Start)
        .await
        .unwrap();
    let slow = readers
        .subscribe::<u64>("fan", Position::Start)
        .await
        .unwrap();
    let fast = tokio::spawn(fast.collect::<Vec<_>>());
    let fast2 = tokio::spawn(fast2.collect::<Vec<_>>());
    let slow = tokio::spawn(
        slow.then(|item| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            item
        })
        .collect::<Vec<_>>(),
    );
    let (guard, dropped, _) = probe();
    let started = tokio::time::Instant::now();
    let outcome = publisher
        .publish(&Context::new(), "fan", |ctx| {
            numbers(ctx, n, Duration::ZERO, guard, Arc::new(AtomicU64::new(0)))
        })
        .await
        .unwrap();
    let publish_time = started.elapsed();
    assert_eq!(outcome.ending(), &Ending::Done);
    assert!(dropped.load(Ordering::SeqCst));
    let expected: Vec<Result<Event<u64>, Error>> = (0..n)
        .map(|i| Ok(Event::data(i)))
        .chain([Ok(Event::done())])
        .collect();
    assert_eq!(fast.await.unwrap(), expected);
    assert_eq!(fast2.await.unwrap(), expected);
    assert_eq!(slow.await.unwrap(), expected);
    // The slow reader needs at least n * 5 ms; the producer did not wait for it.
    assert!(
        started.elapsed() >= Duration::from_millis(n * 5) && publish_time < started.elapsed() / 2,
        "publish took {publish_time:?} of {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_after_any_position_continues_with_no_gap_and_no_duplicate() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    // Another stream interleaved in the same JetStream stream: sequences are not contiguous.
    let other = relay.clone();
    let noise = tokio::spawn(async move {
        other
            .publish(&Context::new(), "noise", |_| {
                futures_util::stream::iter((0..50_u32).map(|i| ok(Event::data(i))))
            })
            .await
    });
    let (guard, _, produced) = probe();
    relay
        .publish(&Context::new(), "resume", |ctx| {
            numbers(ctx, 40, Duration::from_micros(200), guard, produced)
        })
        .await
        .unwrap();
    noise.await.unwrap().unwrap();

    assert_eq!(
        collect::<u64>(
            &relay,
            "resume",
            Position::After {
                sequence: 0,
                index: 0
            }
        )
        .await
        .len(),
        41,
        "position 0 is the start"
    );
    let mut whole = relay
        .subscribe::<u64>("resume", Position::Start)
        .await
        .unwrap();
    let mut positions = Vec::new();
    let mut items = Vec::new();
    while let Some(item) = whole.next().await {
        items.push(item);
        positions.push(whole.position());
    }
    assert_eq!(items.len(), 41);
    for (cut, position) in positions.iter().enumerate() {
        let rest = collect::<u64>(&relay, "resume", *position).await;
        assert_eq!(
            rest,
            items[cut + 1..],
            "resumed after item {cut} (position {position})"
        );
    }
}

fn numbers_then_done(n: u64) -> Vec<Result<Event<u64>, Error>> {
    (0..n)
        .map(|i| ok(Event::data(i)))
        .chain([ok(Event::done())])
        .collect()
}

/// Reads a stream whole, with the position of each item.
async fn read_with_positions(
    relay: &Relay,
    id: &str,
) -> (Vec<Result<Event<u64>, Error>>, Vec<Position>) {
    let mut events = relay.subscribe::<u64>(id, Position::Start).await.unwrap();
    let (mut items, mut positions) = (Vec::new(), Vec::new());
    while let Some(item) = events.next().await {
        items.push(item);
        positions.push(events.position());
    }
    (items, positions)
}

fn key(position: Position) -> (u64, u32) {
    match position {
        Position::After { sequence, index } => (sequence, index),
        _ => (0, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_events_travel_batched_and_come_out_one_by_one_in_order() {
    let server = NatsServer::start();
    let publisher = relay(&server.url(), config()).await;
    let consumer = relay(&server.url(), config()).await;
    let n = 20_000;
    // Read live, while the publisher runs.
    let reading = {
        let consumer = consumer.clone();
        tokio::spawn(async move { read_with_positions(&consumer, "many").await })
    };
    let (guard, dropped, _) = probe();
    let outcome = publisher
        .publish(&Context::new(), "many", |ctx| {
            numbers(ctx, n, Duration::ZERO, guard, Arc::new(AtomicU64::new(0)))
        })
        .await
        .unwrap();
    assert_eq!(outcome.ending(), &Ending::Done);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(outcome.items(), n + 1);
    // A producer that is always ready fills batches (64 items by default).
    assert!(
        outcome.messages() * 16 < outcome.items(),
        "{} messages for {} items",
        outcome.messages(),
        outcome.items()
    );
    let (items, positions) = reading.await.unwrap();
    assert!(items == numbers_then_done(n), "{} items", items.len());
    // Each item has its own position, in stream order, several in one message.
    let keys: Vec<(u64, u32)> = positions.iter().map(|p| key(*p)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert!(keys.iter().any(|&(_, index)| index == 63));
    assert!(keys.iter().all(|&(_, index)| index < 64));
    // Read again later, from the store: the same.
    assert_eq!(
        read_with_positions(&consumer, "many").await,
        (items, positions)
    );

    // Batching off: one message per item, the same items.
    let unbatched = relay(&server.url(), config().with_max_batch_items(1)).await;
    let outcome = unbatched
        .publish(&Context::new(), "one-by-one", |_| {
            futures_util::stream::iter((0..300).map(|i| ok(Event::data(i))))
        })
        .await
        .unwrap();
    // 300 events and the end marker.
    assert_eq!((outcome.items(), outcome.messages()), (301, 301));
    let (items, positions) = read_with_positions(&consumer, "one-by-one").await;
    assert_eq!(items.len(), 300);
    assert!(positions.iter().all(|p| key(*p).1 == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_comes_alone_goes_alone_and_batches_keep_their_byte_limit() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    // One item every 10 ms: the publisher never waits for more, each goes alone; `done` is
    // ready with the last one and rides with it.
    let (guard, _, produced) = probe();
    let outcome = relay
        .publish(&Context::new(), "alone", |ctx| {
            numbers(ctx, 20, Duration::from_millis(10), guard, produced)
        })
        .await
        .unwrap();
    assert_eq!((outcome.items(), outcome.messages()), (21, 20));
    assert_eq!(
        collect::<u64>(&relay, "alone", Position::Start).await,
        numbers_then_done(20)
    );

    // Bodies of 27 to 30 bytes, at most 100 bytes of them per message: 3 per message (the item
    // that does not fit waits for the next one).
    let small = support::relay(&server.url(), config().with_max_batch_bytes(100)).await;
    let (guard, _, produced) = probe();
    let outcome = small
        .publish(&Context::new(), "bytes", |ctx| {
            numbers(ctx, 3_000, Duration::ZERO, guard, produced)
        })
        .await
        .unwrap();
    assert_eq!(outcome.items(), 3_001);
    assert!((1_000..=1_100).contains(&outcome.messages()), "{outcome:?}");
    let (items, positions) = read_with_positions(&relay, "bytes").await;
    assert!(items == numbers_then_done(3_000));
    assert!(positions.iter().all(|p| key(*p).1 < 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_the_middle_of_a_batch_continues_with_no_gap_and_no_duplicate() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config().with_max_batch_items(8)).await;
    let (guard, _, produced) = probe();
    relay
        .publish(&Context::new(), "mid", |ctx| {
            bursts(ctx, 60, 20, Duration::from_millis(20), guard, produced)
        })
        .await
        .unwrap();
    let (items, positions) = read_with_positions(&relay, "mid").await;
    assert_eq!(items, numbers_then_done(60));
    assert!(positions.iter().filter(|p| key(**p).1 > 0).count() > 30);
    for (cut, position) in positions.iter().enumerate() {
        // As an SSE server does: the id sent, then the `Last-Event-ID` sent back.
        let last_event_id = position.to_string();
        let resumed: Position = last_event_id.parse().unwrap();
        assert_eq!(resumed, *position);
        let mut rest = relay.subscribe::<u64>("mid", resumed).await.unwrap();
        assert_eq!(rest.position(), *position);
        let mut got = Vec::new();
        let mut got_positions = Vec::new();
        while let Some(item) = rest.next().await {
            got.push(item);
            got_positions.push(rest.position());
        }
        assert_eq!(got, items[cut + 1..], "resumed after {last_event_id}");
        assert_eq!(got_positions, positions[cut + 1..]);
    }
    // An index past the message's items, and an index without a sequence.
    let (sequence, _) = key(positions[10]);
    let err = relay
        .subscribe::<u64>("mid", Position::After { sequence, index: 8 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.message().contains("item(s)"), "{err}");
    let err = relay
        .subscribe::<u64>(
            "mid",
            Position::After {
                sequence: 0,
                index: 3,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_readable_on_the_wire_headers_and_one_json_item_per_line() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    let items = [
        ok(Event::data(1_u32)),
        ok(Event::data(2)),
        ok(Event::data(3)),
        ok(Event::done()),
    ];
    let outcome = relay
        .publish(&Context::new(), "wire", |_| {
            futures_util::stream::iter(items)
        })
        .await
        .unwrap();
    // The first item goes alone (it claims the id); the rest were ready together.
    assert_eq!((outcome.items(), outcome.messages()), (4, 2));
    let client = async_nats::connect(server.url()).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream("BELUGA_EVENTS")
        .await
        .unwrap();
    let first = stream
        .get_raw_message(outcome.first_sequence().unwrap())
        .await
        .unwrap();
    assert_eq!(first.subject.as_str(), "beluga.ev.wire");
    assert_eq!(first.headers.get("Beluga-Index").unwrap().as_str(), "0");
    assert!(first.headers.get("Beluga-Count").is_none());
    assert_eq!(
        &first.payload[..],
        serde_json::to_vec(&Event::data(1_u32)).unwrap()
    );
    let batch = stream
        .get_raw_message(outcome.last_sequence().unwrap())
        .await
        .unwrap();
    let header = |name: &str| batch.headers.get(name).unwrap().as_str().to_owned();
    assert_eq!(header("Beluga-Index"), "1");
    assert_eq!(header("Beluga-Count"), "3");
    assert_eq!(header("Beluga-Item"), "event");
    assert!(header("Nats-Msg-Id").starts_with("wire:") && header("Nats-Msg-Id").ends_with(":1"));
    let lines: Vec<Event<u32>> = batch
        .payload
        .split(|&b| b == b'\n')
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(lines, [Event::data(2), Event::data(3), Event::done()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_resume_position_or_id_is_a_clear_error() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    relay
        .publish(&Context::new(), "a", |_| {
            futures_util::stream::iter([ok(Event::data(1_u8))])
        })
        .await
        .unwrap();
    let published_b = relay
        .publish(&Context::new(), "b", |_| {
            futures_util::stream::iter([ok(Event::data(1_u8))])
        })
        .await
        .unwrap();
    let err = relay
        .subscribe::<u8>(
            "a",
            Position::After {
                sequence: published_b.last_sequence().unwrap(),
                index: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.message().contains("not an item of stream `a`"), "{err}");
    let err = relay
        .subscribe::<u8>(
            "a",
            Position::After {
                sequence: 9_999,
                index: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = relay
        .subscribe::<u8>("a.b", Position::Start)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    // An id is single-use: a second publisher is refused and its producer dropped.
    let (guard, dropped, _) = probe();
    let err = relay
        .publish(&Context::new(), "a", |ctx| {
            numbers(ctx, 3, Duration::ZERO, guard, Arc::new(AtomicU64::new(0)))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.message().contains("already published"), "{err}");
    assert!(dropped.load(Ordering::SeqCst));
    // A payload of the wrong type.
    let mut wrong = relay
        .subscribe::<String>("a", Position::Start)
        .await
        .unwrap();
    assert_eq!(
        wrong.next().await.unwrap().unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    assert!(wrong.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_producer_is_reported_after_the_idle_timeout() {
    let server = NatsServer::start();
    let relay = relay(
        &server.url(),
        config().with_idle_timeout(Duration::from_millis(400)),
    )
    .await;
    let started = tokio::time::Instant::now();
    let got = collect::<u8>(&relay, "nobody", Position::Start).await;
    assert_eq!(got.len(), 1);
    let err = got[0].as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert!(
        err.message().contains("stopped without a terminal item"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_cancel_cancels_the_context_and_drops_the_producer() {
    let server = NatsServer::start();
    let publisher = relay(&server.url(), config()).await;
    let consumer = relay(&server.url(), config()).await;
    let (guard, dropped, _) = probe();
    let seen_cancel = Arc::new(AtomicBool::new(false));
    let seen = seen_cancel.clone();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "endless", move |ctx: Context| {
                let watch = ctx.clone();
                tokio::spawn(async move {
                    watch.cancelled().await;
                    seen.store(true, Ordering::SeqCst);
                });
                numbers(
                    ctx,
                    u64::MAX,
                    Duration::from_millis(2),
                    guard,
                    Arc::new(AtomicU64::new(0)),
                )
            })
            .await
    });
    let mut events = consumer
        .subscribe::<u64>("endless", Position::Start)
        .await
        .unwrap();
    for i in 0..5 {
        assert_eq!(events.next().await.unwrap().unwrap(), Event::data(i));
    }
    let cancelled_at = tokio::time::Instant::now();
    events.cancel().await.unwrap();
    eventually("the producer is dropped", Duration::from_secs(2), || {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    let latency = cancelled_at.elapsed();
    // The watcher on the producer's context runs on its own task: it may see it just after.
    eventually(
        "the producer's context is cancelled",
        Duration::from_secs(2),
        || seen_cancel.load(Ordering::SeqCst),
    )
    .await;
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.ending(), &Ending::CancelledByConsumer);
    // The consumer reads on to the terminal `cancelled` error.
    let rest: Vec<_> = events.collect().await;
    let err = rest.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(rest[..rest.len() - 1].iter().all(Result::is_ok));
    eprintln!("cancel to drop (one process, two connections): {latency:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_cancel_reaches_a_producer_whose_items_are_batched() {
    let server = NatsServer::start();
    let publisher = relay(&server.url(), config()).await;
    let consumer = relay(&server.url(), config()).await;
    let (guard, dropped, produced) = probe();
    let seen_cancel = Arc::new(AtomicBool::new(false));
    let seen = seen_cancel.clone();
    let counter = produced.clone();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "bursts", move |ctx: Context| {
                let watch = ctx.clone();
                tokio::spawn(async move {
                    watch.cancelled().await;
                    seen.store(true, Ordering::SeqCst);
                });
                bursts(ctx, u64::MAX, 32, Duration::from_millis(5), guard, counter)
            })
            .await
    });
    let mut events = consumer
        .subscribe::<u64>("bursts", Position::Start)
        .await
        .unwrap();
    for i in 0..100 {
        assert_eq!(events.next().await.unwrap().unwrap(), Event::data(i));
    }
    assert!(key(events.position()).1 > 0, "read from a batch");
    events.cancel().await.unwrap();
    eventually("the producer is dropped", Duration::from_secs(2), || {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    eventually(
        "the producer's context is cancelled",
        Duration::from_secs(2),
        || seen_cancel.load(Ordering::SeqCst),
    )
    .await;
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.ending(), &Ending::CancelledByConsumer);
    assert!(outcome.messages() < outcome.items() / 4, "{outcome:?}");
    // Every item the producer made is stored, in order, then the `cancelled` error.
    let rest: Vec<_> = events.collect().await;
    let (err, events_after) = rest.split_last().unwrap();
    assert_eq!(err.as_ref().unwrap_err().code(), ErrorCode::Cancelled);
    let after: Vec<_> = events_after.iter().map(|e| e.clone().unwrap()).collect();
    let made = produced.load(Ordering::SeqCst);
    assert_eq!(after, (100..made).map(Event::data).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_sent_before_the_publish_starts_still_counts() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    relay.cancel("early").await.unwrap();
    let (guard, dropped, produced) = probe();
    let outcome = relay
        .publish(&Context::new(), "early", |ctx| {
            numbers(ctx, 10, Duration::ZERO, guard, produced.clone())
        })
        .await
        .unwrap();
    assert_eq!(outcome.ending(), &Ending::CancelledByConsumer);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(produced.load(Ordering::SeqCst), 0, "the producer never ran");
    let got = collect::<u64>(&relay, "early", Position::Start).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap_err().code(), ErrorCode::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publishers_own_context_ends_the_stream_with_its_error() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    let ctx = Context::new();
    let (guard, dropped, _) = probe();
    let publishing = {
        let (relay, ctx) = (relay.clone(), ctx.clone());
        tokio::spawn(async move {
            // A producer that never looks at its context.
            relay
                .publish(&ctx, "ctx", move |_| {
                    let _guard = guard;
                    futures_util::stream::iter([ok(Event::data(1_u8))])
                        .chain(futures_util::stream::pending())
                })
                .await
        })
    };
    let mut events = relay.subscribe::<u8>("ctx", Position::Start).await.unwrap();
    assert_eq!(events.next().await.unwrap().unwrap(), Event::data(1));
    ctx.cancel();
    let outcome = publishing.await.unwrap().unwrap();
    assert!(matches!(outcome.ending(), Ending::Failed(e) if e.code() == ErrorCode::Cancelled));
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(
        events.next().await.unwrap().unwrap_err().code(),
        ErrorCode::Cancelled
    );
    assert!(events.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_unwatched_the_last_consumer_leaving_stops_the_producer() {
    let server = NatsServer::start();
    let policy =
        config().with_cancel_policy(CancelPolicy::WhenUnwatched(Duration::from_millis(300)));
    let publisher = relay(&server.url(), policy).await;
    let consumer = relay(&server.url(), config()).await;
    let (guard, dropped, _) = probe();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "watched", |ctx| {
                numbers(
                    ctx,
                    u64::MAX,
                    Duration::from_millis(5),
                    guard,
                    Arc::new(AtomicU64::new(0)),
                )
            })
            .await
    });
    let mut a = consumer
        .subscribe::<u64>("watched", Position::Start)
        .await
        .unwrap();
    let mut b = consumer
        .subscribe::<u64>("watched", Position::Start)
        .await
        .unwrap();
    for _ in 0..3 {
        a.next().await.unwrap().unwrap();
        b.next().await.unwrap().unwrap();
    }
    drop(a);
    // One consumer is still there: the producer goes on well past the grace period.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!dropped.load(Ordering::SeqCst));
    b.next().await.unwrap().unwrap();
    let left_at = tokio::time::Instant::now();
    drop(b);
    eventually("the producer is dropped", Duration::from_secs(3), || {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    assert!(left_at.elapsed() >= Duration::from_millis(300));
    assert_eq!(task.await.unwrap().unwrap().ending(), &Ending::Unwatched);
}

/// How many items of `subject` JetStream stored before `before`, by the time it stored each
/// message.
async fn items_stored_before(url: &str, subject: &str, before: std::time::SystemTime) -> u64 {
    use async_nats::jetstream::consumer::push::OrderedConfig;
    let before = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let client = async_nats::connect(url).await.unwrap();
    let stream = async_nats::jetstream::new(client.clone())
        .get_stream("BELUGA_EVENTS")
        .await
        .unwrap();
    let mut messages = stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: subject.to_owned(),
            ..OrderedConfig::default()
        })
        .await
        .unwrap()
        .messages()
        .await
        .unwrap();
    let mut items = 0;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(1), messages.next()).await
    {
        let message = message.unwrap();
        let info = message.info().unwrap();
        if u128::try_from(info.published.unix_timestamp_nanos()).unwrap() >= before {
            break;
        }
        items += message
            .headers
            .as_ref()
            .and_then(|h| h.get("Beluga-Count"))
            .map_or(1, |c| c.as_str().parse::<u64>().unwrap());
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_stops_pulling_the_producer_and_a_resumed_one_finishes_the_stream() {
    let server = NatsServer::start();
    let max_in_flight = 16;
    let publisher = relay(
        &server.url(),
        config()
            .with_max_in_flight(max_in_flight)
            .with_ack_timeout(Duration::from_millis(500))
            .with_stall_timeout(Duration::from_secs(20)),
    )
    .await;
    let n = 20_000;
    let (guard, _, produced) = probe();
    let counter = produced.clone();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "stall", |ctx| {
                numbers(ctx, n, Duration::ZERO, guard, counter)
            })
            .await
    });
    eventually("the producer is running", Duration::from_secs(5), || {
        produced.load(Ordering::SeqCst) > 1_000
    })
    .await;
    server.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_stall = produced.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let later = produced.load(Ordering::SeqCst);
    assert_eq!(
        at_stall, later,
        "the producer was pulled while nothing was acknowledged"
    );
    assert!(later < n, "the stream had not finished before the stall");
    let resumed_at = std::time::SystemTime::now();
    server.resume();
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.ending(), &Ending::Done);
    // Items were batched (at most 16 per message: the in-flight bound counts items).
    assert!(outcome.messages() * 4 < outcome.items(), "{outcome:?}");
    // Nothing is stored while the broker is stopped: what was stored before the resume is
    // what was acknowledged before the stall, at most, and the producer was pulled no further
    // than `max_in_flight` items beyond it (and one item that did not fit the last batch).
    // Counting messages instead would allow 16 batches of 64.
    let stored = items_stored_before(&server.url(), "beluga.ev.stall", resumed_at).await;
    assert!(
        at_stall <= stored + max_in_flight as u64 + 1,
        "{at_stall} items made, {stored} stored before the stall"
    );
    let consumer = relay(&server.url(), config()).await;
    let got = collect::<u64>(&consumer, "stall", Position::Start).await;
    let expected: Vec<_> = (0..n)
        .map(|i| ok(Event::data(i)))
        .chain([ok(Event::done())])
        .collect();
    assert!(got == expected, "{} items, not {}", got.len(), n + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stays_stalled_makes_the_publish_fail_and_drops_the_producer() {
    let server = NatsServer::start();
    let publisher = relay(
        &server.url(),
        config()
            .with_max_in_flight(4)
            .with_ack_timeout(Duration::from_millis(200))
            .with_stall_timeout(Duration::from_secs(1)),
    )
    .await;
    let (guard, dropped, produced) = probe();
    let counter = produced.clone();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "dead", |ctx| {
                numbers(ctx, u64::MAX, Duration::from_millis(1), guard, counter)
            })
            .await
    });
    eventually("the producer is running", Duration::from_secs(5), || {
        produced.load(Ordering::SeqCst) > 20
    })
    .await;
    server.pause();
    let err = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the publish gives up")
        .unwrap()
        .unwrap_err();
    server.resume();
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert!(err.message().contains("acknowledged nothing"), "{err}");
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_remove_old_items_and_a_reader_that_reaches_them_gets_an_error() {
    let server = NatsServer::start();
    let relay = relay(
        &server.url(),
        config()
            .with_stream_name("LIMITED")
            .with_storage(Storage::Memory)
            .with_max_items_per_stream(5)
            .with_max_age(Duration::from_secs(1))
            // One item per message, so that the count limit counts items.
            .with_max_batch_items(1),
    )
    .await;
    relay
        .publish(&Context::new(), "long", |_| {
            futures_util::stream::iter((0..10_u32).map(|i| ok(Event::data(i))))
        })
        .await
        .unwrap();
    // Count: only the last 5 items (of 10 and the end) are kept, and the reader is told about
    // the others.
    let got = collect::<u32>(&relay, "long", Position::Start).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let err = got[0].as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(
        err.message()
            .contains("items 0..6 of stream `long` are missing"),
        "{err}"
    );
    // Age: after a second nothing is left.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("LIMITED").await.unwrap();
    assert!(stream.info().await.unwrap().state.messages > 0);
    eventually_async(Duration::from_secs(5), || {
        let mut stream = stream.clone();
        async move { stream.info().await.unwrap().state.messages == 0 }
    })
    .await;
}

async fn eventually_async<F, Fut>(within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_between_items_loses_nothing_and_the_reader_goes_on() {
    let mut server = NatsServer::start();
    let config = config().with_ack_timeout(Duration::from_millis(500));
    let publisher = relay(&server.url(), config.clone()).await;
    let consumer = relay(&server.url(), config).await;
    let n = 150;
    let (guard, _, produced) = probe();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "restart", |ctx| {
                numbers(ctx, n, Duration::from_millis(10), guard, produced)
            })
            .await
    });
    let mut events = consumer
        .subscribe::<u64>("restart", Position::Start)
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut longest_gap = Duration::ZERO;
    let mut last = tokio::time::Instant::now();
    while let Some(item) = events.next().await {
        longest_gap = longest_gap.max(last.elapsed());
        last = tokio::time::Instant::now();
        got.push(item);
        if got.len() == 40 {
            server.restart();
        }
    }
    let expected: Vec<_> = (0..n)
        .map(|i| ok(Event::data(i)))
        .chain([ok(Event::done())])
        .collect();
    assert!(got == expected, "{:?}", got.last());
    assert_eq!(task.await.unwrap().unwrap().ending(), &Ending::Done);
    eprintln!("broker restart: longest wait for an item {longest_gap:?}");
    assert!(longest_gap < Duration::from_secs(3), "{longest_gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_stream_loses_no_batched_item_and_the_reader_goes_on() {
    let mut server = NatsServer::start();
    let config = config().with_ack_timeout(Duration::from_millis(500));
    let publisher = relay(&server.url(), config.clone()).await;
    let consumer = relay(&server.url(), config).await;
    let n = 2_000;
    let (guard, _, produced) = probe();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "restart-batched", |ctx| {
                bursts(ctx, n, 20, Duration::from_millis(10), guard, produced)
            })
            .await
    });
    let mut events = consumer
        .subscribe::<u64>("restart-batched", Position::Start)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(item) = events.next().await {
        got.push(item);
        // In the middle of a message of several items.
        if got.len() == 510 {
            assert!(key(events.position()).1 > 0, "{}", events.position());
            server.restart();
        }
    }
    assert!(got == numbers_then_done(n), "{:?}", got.last());
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.ending(), &Ending::Done);
    assert!(outcome.messages() < outcome.items() / 4, "{outcome:?}");
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_publishers_leave_no_task_behind() {
    let server = NatsServer::start();
    let relay = relay(&server.url(), config()).await;
    // Settle the client's own tasks first.
    relay
        .publish(&Context::new(), "warm", |_| {
            futures_util::stream::iter([ok(Event::done_with(0_u8))])
        })
        .await
        .unwrap();
    collect::<u8>(&relay, "warm", Position::Start).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = alive_tasks();
    for round in 0..5 {
        let id = format!("tasks-{round}");
        let (guard, dropped, _) = probe();
        let publisher = relay.clone();
        let publish_id = id.clone();
        let task = tokio::spawn(async move {
            publisher
                .publish(&Context::new(), &publish_id, |ctx| {
                    numbers(
                        ctx,
                        u64::MAX,
                        Duration::from_millis(1),
                        guard,
                        Arc::new(AtomicU64::new(0)),
                    )
                })
                .await
        });
        // One consumer reads to the end, one is dropped mid-stream.
        let whole = relay.subscribe::<u64>(&id, Position::Start).await.unwrap();
        let mut partial = relay.subscribe::<u64>(&id, Position::Start).await.unwrap();
        partial.next().await.unwrap().unwrap();
        drop(partial);
        relay.cancel(&id).await.unwrap();
        let items: Vec<_> = whole.collect().await;
        assert_eq!(
            items.last().unwrap().as_ref().unwrap_err().code(),
            ErrorCode::Cancelled
        );
        task.await.unwrap().unwrap();
        assert!(dropped.load(Ordering::SeqCst));
    }
    eventually(
        "every consumer's and publisher's task ended",
        Duration::from_secs(5),
        || alive_tasks() <= before,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_producer_is_not_taken_for_a_dead_one() {
    let server = NatsServer::start();
    // Items 1.2 s apart, an idle timeout of 0.5 s: the publisher's heartbeats keep the
    // consumer waiting.
    let config = config().with_idle_timeout(Duration::from_millis(500));
    let publisher = relay(&server.url(), config.clone()).await;
    let consumer = relay(&server.url(), config).await;
    let (guard, _, produced) = probe();
    let task = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), "slow", |ctx| {
                numbers(ctx, 3, Duration::from_millis(1_200), guard, produced)
            })
            .await
    });
    let got = collect::<u64>(&consumer, "slow", Position::Start).await;
    assert_eq!(
        got,
        [
            ok(Event::data(0)),
            ok(Event::data(1)),
            ok(Event::data(2)),
            ok(Event::done())
        ]
    );
    task.await.unwrap().unwrap();
}
