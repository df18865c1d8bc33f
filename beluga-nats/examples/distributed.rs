//! One producer process and two consumer processes on one machine, through NATS JetStream.
//!
//! ```sh
//! cargo run --example distributed
//! ```
//!
//! starts a `nats-server -js` on a free port of 127.0.0.1 (or uses `$NATS_URL`), then runs this
//! program three more times as separate processes: a producer that streams an answer token by
//! token under a request id, a "ui" consumer that prints the text as it comes, and an "audit"
//! consumer that joins late, reads the same stream from the start and prints every event with
//! its position (the JetStream sequence of its message, and its index there when the message
//! holds several; after the request id, the SSE event id). On several machines, run the roles by hand
//! against one server:
//!
//! ```sh
//! cargo run --example distributed -- producer nats://HOST:4222 req-1
//! cargo run --example distributed -- ui       nats://HOST:4222 req-1
//! cargo run --example distributed -- audit    nats://HOST:4222 req-1
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use beluga_core::{Context, Error, Event, EventKind, stream_producer};
use beluga_nats::{Position, Relay, RelayConfig};
use futures_util::{Stream, StreamExt};

/// A simulated model: one token every 40 ms, then `done`.
#[stream_producer]
fn answer(ctx: Context) -> impl Stream<Item = Result<Event<String>, Error>> {
    let text = "Streams cross machines through JetStream: every item once, in order, \
                resumable by sequence, cancellable from any consumer.";
    for word in text.split_inclusive(' ') {
        tokio::time::sleep(Duration::from_millis(40)).await;
        emit!(word.to_owned());
    }
}

async fn connect(url: &str) -> Relay {
    let client = async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    Relay::new(client, RelayConfig::new())
        .await
        .unwrap_or_else(|e| panic!("cannot set up the relay: {e:#}"))
}

async fn run_role(role: &str, url: &str, id: &str) {
    let relay = connect(url).await;
    match role {
        "producer" => {
            let published = relay.publish(&Context::new(), id, answer).await;
            match published {
                Ok(p) => println!(
                    "published {} items in {} messages (sequences {:?}..={:?}), ending {:?}",
                    p.items(),
                    p.messages(),
                    p.first_sequence(),
                    p.last_sequence(),
                    p.ending()
                ),
                Err(e) => println!("publish failed: {e:#}"),
            }
        }
        "ui" => {
            let mut events = relay
                .subscribe::<String>(id, Position::Start)
                .await
                .expect("subscribe");
            let mut out = std::io::stdout();
            while let Some(item) = events.next().await {
                match item.map(Event::into_kind) {
                    Ok(EventKind::Data(token)) => {
                        print!("{token}");
                        let _ = out.flush();
                    }
                    Ok(EventKind::Done(_)) => println!("\n[done]"),
                    Ok(_) => {}
                    Err(e) => println!("\n[failed: {e:#}]"),
                }
            }
        }
        "audit" => {
            // Joins late, reads from the start: its own position, the same items.
            tokio::time::sleep(Duration::from_millis(800)).await;
            let mut events = relay
                .subscribe::<String>(id, Position::Start)
                .await
                .expect("subscribe");
            while let Some(item) = events.next().await {
                let id = events.position();
                match item {
                    Ok(ev) => println!("id={id} {}", serde_json::to_string(&ev).unwrap()),
                    Err(e) => println!("id={id} error {e:#}"),
                }
            }
        }
        other => panic!("unknown role {other}: use producer, ui or audit"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    if let [role, url, id] = args.as_slice() {
        runtime.block_on(run_role(role, url, id));
        return;
    }

    // No arguments: start a server (unless NATS_URL is set) and the three processes.
    let server = std::env::var("NATS_URL")
        .is_err()
        .then(support::NatsServer::start);
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| server.as_ref().expect("started").url());
    println!("NATS JetStream at {url}");
    let id = format!("req-{}", std::process::id());
    let exe = std::env::current_exe().expect("this program");
    let children: Vec<_> = ["producer", "ui", "audit"]
        .into_iter()
        .map(|role| {
            let mut child = Command::new(&exe)
                .args([role, &url, &id])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a process");
            let stdout = child.stdout.take().expect("piped");
            let pid = child.id();
            let echo = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    println!("[{role} pid {pid}] {line}");
                }
            });
            (child, echo)
        })
        .collect();
    for (mut child, echo) in children {
        let _ = child.wait();
        let _ = echo.join();
    }
}
