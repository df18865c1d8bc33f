//! Producer and consumers in separate OS processes, through a real `nats-server -js` on
//! 127.0.0.1: reading, resuming after a killed consumer, a killed producer, a restarted broker,
//! and cancellation that drops the producer in the other process.
//!
//! The peer processes are this test binary run again with `peer --ignored --exact` and the
//! role in `BELUGA_NATS_PEER`; they talk back in lines on stdout.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beluga_core::{Context, Error, ErrorCode, Event, stream_producer};
use beluga_nats::{Position, RelayConfig};
use futures_util::{Stream, StreamExt};
use support::{NatsServer, relay};

const PEER: &str = "BELUGA_NATS_PEER";

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints `DROPPED <unix nanos>` when the producer's body is dropped.
struct SayDropped;

impl Drop for SayDropped {
    fn drop(&mut self) {
        say(&format!("DROPPED {}", unix_nanos()));
    }
}

/// `n` numbers in bursts of `burst` (ready together: the publisher batches them), a burst
/// every `every`.
#[stream_producer]
fn numbers(
    ctx: Context,
    n: u64,
    every: Duration,
    burst: u64,
) -> impl Stream<Item = Result<Event<u64>, Error>> {
    let _guard = SayDropped;
    say("STARTED");
    for i in 0..n {
        if i % burst == 0 {
            tokio::time::sleep(every).await;
        }
        emit!(i);
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("peer: {name} is not set"))
}

fn env_ms(name: &str) -> Duration {
    Duration::from_millis(env(name).parse().expect("milliseconds"))
}

fn peer_config() -> RelayConfig {
    RelayConfig::new()
        .with_idle_timeout(env_ms("IDLE_MS"))
        .with_ack_timeout(env_ms("ACK_MS"))
        .with_stall_timeout(Duration::from_secs(30))
}

/// The peer process's entry point; does nothing unless started by a test below.
#[test]
#[ignore = "a peer process that the other tests start"]
fn peer() {
    let Ok(role) = std::env::var(PEER) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let relay = relay(&env("NATS_URL"), peer_config()).await;
        let id = env("STREAM_ID");
        match role.as_str() {
            "producer" => {
                let n = env("ITEMS").parse().expect("a count");
                let every = env_ms("EVERY_MS");
                let burst = std::env::var("BURST").map_or(1, |b| b.parse().expect("a count"));
                match relay
                    .publish(&Context::new(), &id, |ctx| numbers(ctx, n, every, burst))
                    .await
                {
                    Ok(published) => {
                        eprintln!(
                            "producer: {} items in {} messages",
                            published.items(),
                            published.messages()
                        );
                        say(&format!("PUBLISHED {:?}", published.ending()));
                    }
                    Err(err) => say(&format!("PUBLISH-ERROR {err:#}")),
                }
            }
            "consumer" => {
                let position = match env("POSITION").as_str() {
                    "start" => Position::Start,
                    position => position.parse().expect("a position"),
                };
                let mut events = relay
                    .subscribe::<u64>(&id, position)
                    .await
                    .expect("subscribe");
                while let Some(item) = events.next().await {
                    let position = events.position();
                    match item {
                        Ok(ev) => say(&format!(
                            "ITEM {position} {}",
                            serde_json::to_string(&ev).unwrap()
                        )),
                        Err(err) => say(&format!("ERR {} {err:#}", err.code())),
                    }
                }
                say("END");
            }
            other => panic!("unknown peer role {other}"),
        }
    });
}

/// A peer process and its stdout, line by line.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn start(role: &str, server: &NatsServer, id: &str, vars: &[(&str, &str)]) -> Peer {
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .args([
                "peer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(PEER, role)
            .env("NATS_URL", server.url())
            .env("STREAM_ID", id)
            .env("IDLE_MS", "10000")
            .env("ACK_MS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start a peer process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`, keeping every line seen.
    fn wait_for(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(why) => panic!(
                    "no line starting with {prefix:?} within {within:?} ({why}); lines so far: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for `n` items in all.
    fn wait_items(&mut self, n: usize, within: Duration) {
        while self.items().len() < n {
            self.wait_for("ITEM ", within);
        }
    }

    /// Kills the process (SIGKILL) and keeps the lines it printed before.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
    }

    /// Waits for the process to exit by itself.
    fn wait_exit(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.child.try_wait().expect("peer status").is_none() {
            assert!(
                Instant::now() < deadline,
                "peer did not exit; lines: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
    }

    /// The `(position, event JSON)` of every item line seen.
    fn items(&self) -> Vec<(String, String)> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("ITEM "))
            .map(|rest| {
                let (position, json) = rest.split_once(' ').expect("ITEM <position> <json>");
                (position.to_owned(), json.to_owned())
            })
            .collect()
    }

    fn line(&self, prefix: &str) -> Option<&str> {
        self.seen
            .iter()
            .find(|l| l.starts_with(prefix))
            .map(String::as_str)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data(i: u64) -> String {
    serde_json::to_string(&Event::data(i)).unwrap()
}

fn done() -> String {
    serde_json::to_string(&Event::<u64>::done()).unwrap()
}

fn whole_stream(n: u64) -> Vec<String> {
    (0..n).map(data).chain([done()]).collect()
}

fn payloads(items: &[(String, String)]) -> Vec<String> {
    items.iter().map(|(_, json)| json.clone()).collect()
}

/// A position's `(sequence, index)`, which order the items of a stream.
fn key(position: &str) -> (u64, u32) {
    match position.parse().expect("a position") {
        Position::After { sequence, index } => (sequence, index),
        _ => (0, 0),
    }
}

#[test]
fn two_consumer_processes_read_a_producer_process_whole() {
    let server = NatsServer::start();
    let mut early = Peer::start("consumer", &server, "s1", &[("POSITION", "start")]);
    let mut producer = Peer::start(
        "producer",
        &server,
        "s1",
        &[("ITEMS", "100"), ("EVERY_MS", "2")],
    );
    producer.wait_for("STARTED", Duration::from_secs(20));
    // The second consumer joins mid-stream, from the start: it reads the same stream whole.
    early.wait_items(30, Duration::from_secs(20));
    let mut late = Peer::start("consumer", &server, "s1", &[("POSITION", "start")]);
    producer.wait_for("PUBLISHED", Duration::from_secs(20));
    assert_eq!(producer.line("PUBLISHED"), Some("PUBLISHED Done"));
    for consumer in [&mut early, &mut late] {
        consumer.wait_for("END", Duration::from_secs(20));
        assert_eq!(payloads(&consumer.items()), whole_stream(100));
        assert!(consumer.line("ERR").is_none());
    }
    // Both read the same items at the same sequences.
    assert_eq!(early.items(), late.items());
}

#[test]
fn a_killed_consumer_process_is_resumed_by_a_new_one_with_nothing_lost_or_repeated() {
    let server = NatsServer::start();
    let mut producer = Peer::start(
        "producer",
        &server,
        "s2",
        &[("ITEMS", "150"), ("EVERY_MS", "30"), ("BURST", "4")],
    );
    let mut first = Peer::start("consumer", &server, "s2", &[("POSITION", "start")]);
    first.wait_items(40, Duration::from_secs(20));
    first.kill();
    let before = first.items();
    assert!(first.line("END").is_none(), "killed mid-stream");
    let (last_position, _) = before.last().expect("items before the kill").clone();
    let mut second = Peer::start("consumer", &server, "s2", &[("POSITION", &last_position)]);
    second.wait_for("END", Duration::from_secs(30));
    let after = second.items();
    let mut all = payloads(&before);
    all.extend(payloads(&after));
    assert_eq!(
        all,
        whole_stream(150),
        "{} before the kill, {} after",
        before.len(),
        after.len()
    );
    // Positions only grow across the two processes.
    let keys: Vec<(u64, u32)> = before.iter().chain(&after).map(|(p, _)| key(p)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    producer.wait_for("PUBLISHED", Duration::from_secs(20));
}

#[test]
fn a_consumer_process_resumes_from_the_middle_of_a_batch() {
    let server = NatsServer::start();
    let mut producer = Peer::start(
        "producer",
        &server,
        "s6",
        &[("ITEMS", "200"), ("EVERY_MS", "5"), ("BURST", "10")],
    );
    let mut whole = Peer::start("consumer", &server, "s6", &[("POSITION", "start")]);
    whole.wait_for("END", Duration::from_secs(30));
    producer.wait_for("PUBLISHED", Duration::from_secs(20));
    let all = whole.items();
    assert_eq!(payloads(&all), whole_stream(200));
    // An item with items of the same message on both sides of it.
    let cut = (1..all.len() - 1)
        .find(|&i| {
            let (seq, index) = key(&all[i].0);
            index > 0 && key(&all[i + 1].0) == (seq, index + 1)
        })
        .expect("a message of several items");
    let mut rest = Peer::start("consumer", &server, "s6", &[("POSITION", &all[cut].0)]);
    rest.wait_for("END", Duration::from_secs(30));
    assert_eq!(rest.items(), all[cut + 1..], "resumed after {}", all[cut].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_this_process_drops_the_producer_in_another() {
    let server = NatsServer::start();
    let mut producer = Peer::start(
        "producer",
        &server,
        "s3",
        &[("ITEMS", "1000000"), ("EVERY_MS", "5")],
    );
    let relay = relay(&server.url(), RelayConfig::new()).await;
    let mut events = relay.subscribe::<u64>("s3", Position::Start).await.unwrap();
    for i in 0..5 {
        assert_eq!(events.next().await.unwrap().unwrap(), Event::data(i));
    }
    let sent_at = unix_nanos();
    events.cancel().await.unwrap();
    let dropped = tokio::task::spawn_blocking(move || {
        let line = producer.wait_for("DROPPED", Duration::from_secs(5));
        producer.wait_exit(Duration::from_secs(10));
        (line, producer.line("PUBLISHED").map(str::to_owned))
    })
    .await
    .unwrap();
    let dropped_at: u128 = dropped.0["DROPPED ".len()..].parse().unwrap();
    let latency = Duration::from_nanos(u64::try_from(dropped_at.saturating_sub(sent_at)).unwrap());
    eprintln!("cancel sent -> producer dropped in the other process: {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    assert_eq!(dropped.1.as_deref(), Some("PUBLISHED CancelledByConsumer"));
    // This consumer reads on to the terminal `cancelled` error.
    let rest: Vec<_> = events.collect().await;
    assert_eq!(
        rest.last().unwrap().as_ref().unwrap_err().code(),
        ErrorCode::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_process_killed_mid_stream_is_reported_after_the_idle_timeout() {
    let server = NatsServer::start();
    let mut producer = Peer::start(
        "producer",
        &server,
        "s4",
        &[("ITEMS", "1000000"), ("EVERY_MS", "5")],
    );
    let relay = relay(
        &server.url(),
        RelayConfig::new().with_idle_timeout(Duration::from_secs(1)),
    )
    .await;
    let mut events = relay.subscribe::<u64>("s4", Position::Start).await.unwrap();
    for i in 0..10 {
        assert_eq!(events.next().await.unwrap().unwrap(), Event::data(i));
    }
    producer.kill();
    let killed_at = Instant::now();
    let mut next = 10;
    let err = loop {
        match events
            .next()
            .await
            .expect("a terminal item, never a silent end")
        {
            Ok(event) => {
                assert_eq!(event, Event::data(next));
                next += 1;
            }
            Err(err) => break err,
        }
    };
    assert_eq!(err.code(), ErrorCode::Timeout, "{err:#}");
    // The countdown runs from the last item, which may have come just before the kill.
    assert!(killed_at.elapsed() >= Duration::from_millis(900));
    assert!(events.next().await.is_none());
}

#[test]
fn a_broker_restarted_mid_stream_resumes_or_ends_with_a_clear_error() {
    let mut server = NatsServer::start();
    let mut producer = Peer::start(
        "producer",
        &server,
        "s5",
        &[
            ("ITEMS", "200"),
            ("EVERY_MS", "50"),
            ("BURST", "5"),
            ("ACK_MS", "500"),
        ],
    );
    let mut consumer = Peer::start("consumer", &server, "s5", &[("POSITION", "start")]);
    consumer.wait_items(50, Duration::from_secs(20));
    server.restart();
    consumer.wait_for("END", Duration::from_secs(60));
    producer.wait_for("PUBLISH", Duration::from_secs(60));
    let items = payloads(&consumer.items());
    // Whatever happened, what came is the stream's beginning, in order, once.
    assert_eq!(
        items,
        whole_stream(200)[..items.len()],
        "not a clean prefix"
    );
    let ended = consumer.line("ERR").map(str::to_owned);
    match &ended {
        None => assert_eq!(items.len(), 201, "a silent truncation"),
        Some(line) => {
            let code = line.split(' ').nth(1).unwrap_or_default();
            assert!(
                ["not_found", "timeout", "provider_unavailable"].contains(&code),
                "{line}"
            );
        }
    }
    eprintln!(
        "broker restart: consumer read {} of 201 items, ended with {:?}; producer: {:?}",
        items.len(),
        ended,
        producer.line("PUBLISH")
    );
}
