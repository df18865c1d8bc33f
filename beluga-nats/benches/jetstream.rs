//! Event streams through NATS JetStream on loopback against the same stream in-process:
//! events per second, added latency per event, and the publisher's memory while the broker is
//! stalled. Starts its own `nats-server -js` (see `tests/support`).
//!
//! ```sh
//! cargo bench -p beluga-nats --bench jetstream            # everything
//! cargo bench -p beluga-nats --bench jetstream -- rate    # one part: rate, latency, cancel, memory
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beluga_core::{Context, Error, Event, stream_producer};
use beluga_nats::{Ending, Position, Relay, RelayConfig, Storage};
use futures_util::{Stream, StreamExt};
use support::{NatsServer, relay};

/// `n` events as fast as the consumer takes them.
#[stream_producer]
fn burst(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        emit!(i);
    }
}

/// `n` events, one every `every`, each carrying the time it was made (ns since `base`).
#[stream_producer]
fn stamped(
    ctx: Context,
    n: u64,
    every: Duration,
    base: Instant,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let mut tick = tokio::time::interval(every);
    for _ in 0..n {
        tick.tick().await;
        emit!(u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
}

/// Endless 1 KiB events, counting what was produced.
#[stream_producer]
fn endless(
    ctx: Context,
    produced: Arc<AtomicU64>,
) -> impl Stream<Item = Result<Event<String>, Error>> {
    let kib = "x".repeat(1024);
    loop {
        produced.fetch_add(1, Ordering::Relaxed);
        emit!(kib.clone());
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

/// Publishes `n` events and reads them back live (publisher and consumer on their own
/// connections): events per second from the publish's start to the consumer's `done`, and
/// items per JetStream message.
async fn through_jetstream(url: &str, config: RelayConfig, n: u64, id: &str) -> (f64, f64) {
    let publisher = relay(url, config.clone()).await;
    let consumer = relay(url, config).await;
    let events = consumer
        .subscribe::<u64>(id, Position::Start)
        .await
        .expect("subscribe");
    let start = Instant::now();
    let id = id.to_owned();
    let publishing = tokio::spawn(async move {
        publisher
            .publish(&Context::new(), &id, |ctx| burst(ctx, n))
            .await
    });
    let count = events.count().await;
    let elapsed = start.elapsed();
    let outcome = publishing.await.expect("publish task").expect("publish");
    assert_eq!(outcome.ending(), &Ending::Done);
    assert_eq!(count as u64, n + 1);
    #[allow(clippy::cast_precision_loss)]
    let rate = (n + 1) as f64 / elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_message = outcome.items() as f64 / outcome.messages() as f64;
    (rate, per_message)
}

/// The hand-written baseline: the same JSON bodies published with async-nats directly (256
/// acknowledgements in flight) and read back with an ordered push consumer, no beluga layer.
async fn raw_async_nats(url: &str, n: u64, per_message: u64, round: usize) -> f64 {
    use async_nats::jetstream::{self, consumer::push, stream};
    use futures_util::stream::FuturesOrdered;
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: format!("RAW{per_message}_{round}"),
            subjects: vec![format!("raw{per_message}_{round}.>")],
            ..stream::Config::default()
        })
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("raw{per_message}_{round}.x"),
            ..push::OrderedConfig::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    // One event per message, or a JSON array of `per_message` events.
    let messages_sent = n / per_message;
    let bodies: Vec<bytes::Bytes> = (0..messages_sent)
        .map(|m| {
            let events: Vec<Event<u64>> = (0..per_message)
                .map(|k| Event::data(m * per_message + k))
                .collect();
            if per_message == 1 {
                serde_json::to_vec(&events[0]).expect("json").into()
            } else {
                serde_json::to_vec(&events).expect("json").into()
            }
        })
        .collect();
    let subject = format!("raw{per_message}_{round}.x");
    let start = Instant::now();
    let publishing = tokio::spawn(async move {
        let mut acks = FuturesOrdered::new();
        for body in bodies {
            if acks.len() >= 256 {
                let ack: Result<_, async_nats::jetstream::context::PublishError> =
                    acks.next().await.expect("an ack");
                ack.expect("acknowledged");
            }
            acks.push_back(
                js.publish(subject.clone(), body)
                    .await
                    .expect("publish")
                    .into_future(),
            );
        }
        while let Some(ack) = acks.next().await {
            ack.expect("acknowledged");
        }
    });
    for _ in 0..messages_sent {
        let message = messages.next().await.expect("a message").expect("no error");
        if per_message > 1 {
            let events: Vec<Event<u64>> = serde_json::from_slice(&message.payload).expect("json");
            assert_eq!(events.len() as u64, per_message);
        }
    }
    let elapsed = start.elapsed();
    publishing.await.expect("publisher");
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / elapsed.as_secs_f64();
    rate
}

/// How many times each rate case runs in one process; the median is reported (one run of
/// 50,000 batched events takes some 50 ms, short enough for one scheduling hiccup to halve it).
const ROUNDS: usize = 5;

fn median_of(rounds: usize, mut run: impl FnMut(usize) -> f64) -> f64 {
    let mut rates: Vec<f64> = (0..rounds).map(&mut run).collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn rate() {
    let n = 50_000;
    let rt = runtime();
    // In-process: the same producer, read directly by its consumer.
    let in_process = rt.block_on(async {
        let start = Instant::now();
        let count = burst(Context::new(), n).count().await;
        assert_eq!(count as u64, n + 1);
        #[allow(clippy::cast_precision_loss)]
        let rate = (n + 1) as f64 / start.elapsed().as_secs_f64();
        rate
    });
    // In-process with the wire encoding: each event to JSON and back.
    let encoded = rt.block_on(async {
        let start = Instant::now();
        let count = burst(Context::new(), n)
            .map(|item| {
                let json = serde_json::to_vec(&item.expect("no error")).expect("encode");
                serde_json::from_slice::<Event<u64>>(&json).expect("decode")
            })
            .count()
            .await;
        assert_eq!(count as u64, n + 1);
        #[allow(clippy::cast_precision_loss)]
        let rate = (n + 1) as f64 / start.elapsed().as_secs_f64();
        rate
    });
    println!(
        "rate: {n} u64 events, publisher and consumer in one process on two connections; \
         the median of {ROUNDS} runs per case"
    );
    println!("| case | events/s | vs in-process | vs async-nats by hand | items per message |");
    println!("|---|---:|---:|---:|---:|");
    println!("| in-process, consumer reads the producer | {in_process:.0} | 1 | | |");
    println!(
        "| in-process, each event to JSON and back | {encoded:.0} | {:.4} | | |",
        encoded / in_process
    );
    let server = NatsServer::start();
    let url = server.url();
    let raw = median_of(ROUNDS, |round| {
        rt.block_on(raw_async_nats(&url, n, 1, round))
    });
    println!(
        "| async-nats by hand (same JSON bodies, 256 acks in flight, ordered push consumer) | {raw:.0} | {:.4} | 1 | 1 |",
        raw / in_process
    );
    for per_message in [16, 64] {
        let batched = median_of(ROUNDS, |round| {
            rt.block_on(raw_async_nats(&url, n, per_message, round))
        });
        println!(
            "| async-nats by hand, {per_message} events per message (a JSON array) | {batched:.0} | {:.4} | {:.2} | {per_message} |",
            batched / in_process,
            batched / raw
        );
    }
    // (storage, max_in_flight, max_batch_items); 1,024 and 64 are the defaults.
    let cases = [
        ("file", Storage::File, 1, 1),
        ("file", Storage::File, 16, 1),
        ("file", Storage::File, 16, 64),
        ("file", Storage::File, 256, 1),
        ("file", Storage::File, 256, 16),
        ("file", Storage::File, 256, 64),
        ("file", Storage::File, 1024, 1),
        ("file", Storage::File, 1024, 64),
        ("file", Storage::File, 4096, 64),
        ("memory", Storage::Memory, 1024, 1),
        ("memory", Storage::Memory, 1024, 64),
    ];
    for (i, (name, storage, in_flight, batch)) in cases.into_iter().enumerate() {
        let config = RelayConfig::new()
            .with_stream_name(format!("BENCH_{i}"))
            .with_subject_prefix(format!("bench{i}"))
            .with_storage(storage)
            .with_max_in_flight(in_flight)
            .with_max_batch_items(batch);
        let count = if in_flight == 1 { n / 10 } else { n };
        let mut per_message = 0.0;
        let rate = median_of(ROUNDS, |round| {
            let id = format!("rate-{round}");
            let (rate, items_per_message) =
                rt.block_on(through_jetstream(&url, config.clone(), count, &id));
            per_message = items_per_message;
            rate
        });
        let batching = if batch == 1 {
            "batching off".to_owned()
        } else {
            format!("max_batch_items {batch}")
        };
        println!(
            "| beluga-nats, JetStream {name} storage, max_in_flight {in_flight}, {batching} | {rate:.0} | {:.4} | {:.2} | {per_message:.1} |",
            rate / in_process,
            rate / raw
        );
        let _ = std::io::stdout().flush();
    }
}

fn latency() {
    let n = 2_000;
    let every = Duration::from_millis(1);
    let rt = runtime();
    let server = NatsServer::start();
    let url = server.url();
    let through = |batch: usize| {
        rt.block_on(async {
            let config = RelayConfig::new()
                .with_stream_name(format!("LATENCY{batch}"))
                .with_subject_prefix(format!("lat{batch}"))
                .with_max_batch_items(batch);
            let publisher = relay(&url, config.clone()).await;
            let consumer = relay(&url, config).await;
            let mut events = consumer
                .subscribe::<u64>("lat", Position::Start)
                .await
                .expect("subscribe");
            let base = Instant::now();
            let publishing = tokio::spawn(async move {
                publisher
                    .publish(&Context::new(), "lat", |ctx| stamped(ctx, n, every, base))
                    .await
            });
            let mut gaps = Vec::new();
            while let Some(item) = events.next().await {
                if let Some(&made) = item.expect("no error").payload() {
                    let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    gaps.push(Duration::from_nanos(now.saturating_sub(made)));
                }
            }
            publishing.await.expect("task").expect("publish");
            gaps
        })
    };
    let unbatched = through(1);
    let batched = through(RelayConfig::new().max_batch_items());
    let local = rt.block_on(async {
        let base = Instant::now();
        let mut gaps = Vec::new();
        let mut events = std::pin::pin!(stamped(Context::new(), n, every, base));
        while let Some(item) = events.next().await {
            if let Some(&made) = item.expect("no error").payload() {
                let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                gaps.push(Duration::from_nanos(now.saturating_sub(made)));
            }
        }
        gaps
    });
    println!("latency: {n} events one every {every:?}, made -> read by the consumer");
    println!("| case | p50 | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, mut gaps) in [
        ("in-process", local),
        ("JetStream, file storage, batching off", unbatched),
        (
            "JetStream, file storage, batching on (the default)",
            batched,
        ),
    ] {
        gaps.sort();
        println!(
            "| {name} | {:?} | {:?} | {:?} | {:?} |",
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.9),
            percentile(&gaps, 0.99),
            gaps.last().copied().unwrap_or_default()
        );
    }
}

/// Sets the time it was dropped: when the publisher dropped the producer's body.
struct DroppedAt(Arc<std::sync::Mutex<Option<Instant>>>);

impl Drop for DroppedAt {
    fn drop(&mut self) {
        *self.0.lock().expect("not poisoned") = Some(Instant::now());
    }
}

/// Events every millisecond until cancelled, its drop time recorded.
#[stream_producer]
fn until_cancelled(
    ctx: Context,
    guard: DroppedAt,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let _guard = guard;
    let mut i = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        emit!(i);
        i += 1;
    }
}

fn cancel() {
    let rounds = 50;
    let rt = runtime();
    let server = NatsServer::start();
    let url = server.url();
    let mut latencies = rt.block_on(async {
        let config = RelayConfig::new()
            .with_stream_name("CANCEL")
            .with_subject_prefix("cancel");
        let publisher = relay(&url, config.clone()).await;
        let consumer = relay(&url, config).await;
        let mut latencies = Vec::new();
        for round in 0..rounds {
            let id = format!("c{round}");
            let dropped = Arc::new(std::sync::Mutex::new(None));
            let guard = DroppedAt(dropped.clone());
            let publisher = publisher.clone();
            let publish_id = id.clone();
            let task = tokio::spawn(async move {
                publisher
                    .publish(&Context::new(), &publish_id, |ctx| {
                        until_cancelled(ctx, guard)
                    })
                    .await
            });
            let mut events = consumer
                .subscribe::<u64>(&id, Position::Start)
                .await
                .expect("subscribe");
            for _ in 0..3 {
                events.next().await.expect("an item").expect("no error");
            }
            let sent = Instant::now();
            events.cancel().await.expect("cancel");
            let outcome = task.await.expect("task").expect("publish");
            assert_eq!(outcome.ending(), &Ending::CancelledByConsumer);
            let at = dropped.lock().expect("not poisoned").expect("dropped");
            latencies.push(at.saturating_duration_since(sent));
        }
        latencies
    });
    latencies.sort();
    println!(
        "cancel: {rounds} rounds, consumer's cancel() called -> producer's body dropped by the publisher (two connections, one process)"
    );
    println!("| p50 | p90 | max |");
    println!("|---:|---:|---:|");
    println!(
        "| {:?} | {:?} | {:?} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies.last().copied().unwrap_or_default()
    );
}

/// The child process of `memory`: publishes [`endless`] and reports what it produced.
fn stalled_publisher(url: &str, in_flight: usize) {
    let rt = runtime();
    rt.block_on(async {
        let config = RelayConfig::new()
            .with_stream_name("STALL")
            .with_subject_prefix("stall")
            .with_max_in_flight(in_flight)
            .with_stall_timeout(Duration::from_secs(600))
            .with_max_bytes(256 << 20);
        let relay: Relay = relay(url, config).await;
        let produced = Arc::new(AtomicU64::new(0));
        let counter = produced.clone();
        tokio::spawn(async move {
            loop {
                println!("produced {}", counter.load(Ordering::Relaxed));
                let _ = std::io::stdout().flush();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let id = format!("stall-{in_flight}");
        let _ = relay
            .publish(&Context::new(), &id, |ctx| endless(ctx, produced))
            .await;
    });
}

fn memory() {
    println!(
        "memory: a publisher of endless 1 KiB events; the broker is stopped (SIGSTOP) for 5 s"
    );
    println!(
        "| max_in_flight | RSS before the stall | max RSS during the stall | events produced during the stall |"
    );
    println!("|---:|---:|---:|---:|");
    for in_flight in [16, 256, 1024, 4096] {
        let server = NatsServer::start();
        let mut child = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .env("BENCH_ROLE", "stalled-publisher")
            .env("NATS_URL", server.url())
            .env("IN_FLIGHT", in_flight.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the publisher");
        let stdout = child.stdout.take().expect("piped");
        let last = Arc::new(AtomicU64::new(0));
        let seen = last.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(n) = line.strip_prefix("produced ").and_then(|n| n.parse().ok()) {
                    seen.store(n, Ordering::Relaxed);
                }
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        let before = rss_kib(child.id());
        server.pause();
        std::thread::sleep(Duration::from_millis(300));
        let at_stall = last.load(Ordering::Relaxed);
        let mut max_rss = before;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(250));
            max_rss = max_rss.max(rss_kib(child.id()));
        }
        let during = last.load(Ordering::Relaxed) - at_stall;
        server.resume();
        let _ = child.kill();
        let _ = child.wait();
        println!(
            "| {in_flight} | {:.1} MiB | {:.1} MiB | {during} |",
            f64::from(u32::try_from(before).unwrap_or(u32::MAX)) / 1024.0,
            f64::from(u32::try_from(max_rss).unwrap_or(u32::MAX)) / 1024.0,
        );
    }
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("stalled-publisher") {
        let url = std::env::var("NATS_URL").expect("NATS_URL");
        let in_flight = std::env::var("IN_FLIGHT")
            .expect("IN_FLIGHT")
            .parse()
            .expect("a count");
        stalled_publisher(&url, in_flight);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then this only
    // checks that the in-process producer yields what the cases expect.
    if !std::env::args().any(|a| a == "--bench") {
        let rt = runtime();
        let count = rt.block_on(burst(Context::new(), 10).count());
        assert_eq!(count, 11);
        return;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("rate") {
        rate();
    }
    if wanted("latency") {
        latency();
    }
    if wanted("cancel") {
        cancel();
    }
    if wanted("memory") {
        memory();
    }
}
