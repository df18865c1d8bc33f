//! Load: one server process holding 1,000 concurrent SSE streams on loopback.
//!
//! `cargo bench -p beluga-sse --bench sse_load` starts this binary a second time as the server
//! (its own process, so that its memory is its own), opens the streams from this process with
//! `beluga_sse::client::read`, and reports:
//!
//! * the server's memory per open stream (resident set size with the streams open, minus before
//!   them, divided by their number);
//! * events per second received over the measurement window, and the time between two events
//!   of one stream (p50, p99, max) while every producer emits one event per interval;
//! * how long after the clients disconnect (all at once, by cancelling their context) the
//!   server's last producer is dropped, seen from the server's live-producer count.
//!
//! It runs three times: the same producer served by a hand-written axum `Sse` handler (the
//! baseline), with `serve`, and with `Replay` (grace 0, so a disconnect drops the producer at
//! once). Settings: `STREAMS` (1000), `INTERVAL_MS` (20), `SECONDS` (10).
//! Without `--bench` (as `cargo test --all-targets` runs it) it checks the same on 20 streams
//! for one second.

#![allow(
    clippy::cast_precision_loss,
    reason = "reported figures: counts and microseconds far below 2^52"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use beluga_core::{Context, EventResult, stream_producer};
use beluga_sse::BelugaJson;
use beluga_sse::server::{Replay, ReplayOptions};
use futures_util::{Stream, StreamExt};

const ROLE: &str = "BELUGA_SSE_LOAD_ROLE";

/// Producers alive in the server.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a producer alive while it exists.
struct Live;

impl Live {
    fn new() -> Live {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One event per `every`, forever: a model streaming tokens.
#[stream_producer]
fn ticks(ctx: Context, every: Duration) -> impl Stream<Item = EventResult<u64>> + Send + 'static {
    let _live = Live::new();
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0_u64;
    loop {
        interval.tick().await;
        emit!(n);
        n += 1;
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server's resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let every = Duration::from_millis(setting("INTERVAL_MS", 20));
        let replay = Replay::new(
            ReplayOptions::new()
                .grace(Duration::ZERO)
                .max_streams(100_000),
        )
        .expect("replay options");
        let app = Router::new()
            .route(
                "/stream",
                get(move || async move {
                    beluga_sse::serve(&Context::new(), BelugaJson, move |ctx| ticks(ctx, every))
                }),
            )
            .route(
                "/baseline",
                get(move || async move {
                    // What a team writes by hand with axum: the same producer, each event's
                    // JSON as an SSE event with an id, keep-alive; no beluga-sse.
                    let events = ticks(Context::new(), every).enumerate().map(|(i, item)| {
                        let data = match item {
                            Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                            Err(err) => serde_json::to_string(&err).unwrap_or_default(),
                        };
                        Ok::<_, std::convert::Infallible>(
                            Event::default().id((i + 1).to_string()).data(data),
                        )
                    });
                    Sse::new(events).keep_alive(KeepAlive::new())
                }),
            )
            .route(
                "/replay",
                get(move || async move {
                    replay
                        .start(&Context::new(), BelugaJson, move |ctx| ticks(ctx, every))
                        .map_err(beluga_sse::server::HttpError)
                }),
            )
            .route(
                "/stats",
                get(async || {
                    let tasks = tokio::runtime::Handle::current()
                        .metrics()
                        .num_alive_tasks();
                    format!("{} {} {}", LIVE.load(Ordering::SeqCst), rss_kib(), tasks)
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("PORT {}", listener.local_addr().expect("address").port());
        axum::serve(listener, app).await.expect("serve");
    });
}

struct Stats {
    live: usize,
    rss_kib: u64,
    tasks: usize,
}

async fn stats(http: &reqwest::Client, base: &str) -> Stats {
    let text = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .expect("stats")
        .text()
        .await
        .expect("stats body");
    let mut parts = text.split(' ').map(|p| p.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    let live = usize::try_from(next()).unwrap_or(usize::MAX);
    let rss_kib = next();
    let tasks = usize::try_from(next()).unwrap_or(usize::MAX);
    Stats {
        live,
        rss_kib,
        tasks,
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index into a slice of at most millions"
    )]
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Opens `streams` streams on `path`, measures, disconnects them all; prints one table row.
/// Panics when a stream received nothing or a producer outlived its client by 10 seconds.
async fn scenario(base: &str, path: &str, streams: usize, window: Duration) {
    let http = reqwest::Client::new();
    let before = stats(&http, base).await;
    let root = Context::new();
    let started = std::sync::Arc::new(AtomicUsize::new(0));
    let origin = Instant::now();
    let mut readers = Vec::with_capacity(streams);
    for _ in 0..streams {
        let stream = beluga_sse::client::read::<u64>(&root, http.get(format!("{base}{path}")));
        let started = std::sync::Arc::clone(&started);
        readers.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            // Arrival times, in microseconds since `origin`.
            let mut arrivals: Vec<u64> = Vec::new();
            while let Some(item) = stream.next().await {
                if item.is_err() {
                    break;
                }
                if arrivals.is_empty() {
                    started.fetch_add(1, Ordering::SeqCst);
                }
                arrivals.push(u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            (arrivals, Instant::now())
        }));
    }
    while started.load(Ordering::SeqCst) < streams {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open = stats(&http, base).await;
    let from = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    tokio::time::sleep(window).await;
    let to = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    let during = stats(&http, base).await;

    // Every client goes away at once.
    let cancelled_at = Instant::now();
    root.cancel();
    let mut events = 0_u64;
    let mut gaps = Vec::new();
    let mut last_closed = cancelled_at;
    for reader in readers {
        let (arrivals, closed) = reader.await.expect("reader");
        last_closed = last_closed.max(closed);
        let in_window: Vec<u64> = arrivals
            .into_iter()
            .filter(|t| (from..to).contains(t))
            .collect();
        events += in_window.len() as u64;
        gaps.extend(in_window.windows(2).map(|w| w[1] - w[0]));
    }
    let clients_closed = last_closed - cancelled_at;
    let mut zero = None;
    while cancelled_at.elapsed() < Duration::from_secs(10) {
        if stats(&http, base).await.live == 0 {
            zero = Some(cancelled_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stats(&http, base).await;

    assert!(events > 0, "{path}: no event received");
    assert_eq!(after.live, 0, "{path}: producers outlived their clients");
    gaps.sort_unstable();
    let per_stream_kib = open.rss_kib.saturating_sub(before.rss_kib) as f64 / streams as f64;
    let per_stream_end_kib = during.rss_kib.saturating_sub(before.rss_kib) as f64 / streams as f64;
    let rate = events as f64 / Duration::from_micros(to - from).as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "| `{path}` | {streams} | {live} | {per_stream_kib:.1} KiB ({per_stream_end_kib:.1} KiB after {secs} s) | {rate:.0} | {p50:.1} / {p99:.1} / {max:.1} ms | {closed:.0} ms | {dropped} | {tasks_before} → {tasks_open} → {tasks_after} |",
        live = open.live,
        secs = window.as_secs(),
        p50 = ms(percentile(&gaps, 0.50)),
        p99 = ms(percentile(&gaps, 0.99)),
        max = ms(gaps.last().copied().unwrap_or(0)),
        closed = clients_closed.as_secs_f64() * 1000.0,
        dropped = zero.map_or_else(
            || format!("not within 10 s ({} left)", after.live),
            |z| format!("{:.0} ms", z.as_secs_f64() * 1000.0)
        ),
        tasks_before = before.tasks,
        tasks_open = open.tasks,
        tasks_after = after.tasks,
    );
}

fn start_server() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(ROLE, "server")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let stdout = child.stdout.take().expect("server stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server's port");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .expect("PORT line")
        .to_owned();
    (child, format!("http://127.0.0.1:{port}"))
}

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("server") {
        server();
        return;
    }
    let measure = std::env::args().any(|arg| arg == "--bench");
    let (streams, seconds) = if measure { (1000, 10) } else { (20, 1) };
    let streams = usize::try_from(setting("STREAMS", streams)).unwrap_or(1000);
    let window = Duration::from_secs(setting("SECONDS", seconds));
    let interval = setting("INTERVAL_MS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{streams} streams, one event per {interval} ms each, measured over {} s",
        window.as_secs()
    );
    println!(
        "| route | streams | producers live | server memory per open stream | events/s received | gap between events p50 / p99 / max | all clients closed after | last producer dropped after | server tasks before → open → after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for path in ["/baseline", "/stream", "/replay"] {
        let (mut child, base) = start_server();
        runtime.block_on(scenario(&base, path, streams, window));
        let _ = child.kill();
        let _ = child.wait();
    }
}
