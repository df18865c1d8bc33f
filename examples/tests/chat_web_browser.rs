//! The chat-web example in a real browser: a headless Chromium, driven through chromedriver,
//! opens the page of a server started in-process, asks a question, and sees the answer arrive
//! in pieces with the tool call shown; then Stop is clicked mid-answer, and the server's own
//! counters must show the answer's producer dropped and no chunk sent after it.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `$CHROME_BIN` and `$CHROMEDRIVER`), and
//! fails without them. Run with `cargo test -p beluga-examples --features browser --test
//! chat_web_browser`; `.ci/run` does, after installing both.

use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use beluga_examples::chat_web::{ChatApp, Stats};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use serde_json::json;

/// The model's pause before each chunk: long enough that the test clicks Stop well before the
/// answer ends (it has about 100 chunks), short enough for a quick test.
const TOKEN_DELAY: Duration = Duration::from_millis(80);
/// How long a step may take on a slow, busy machine before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);
/// How often the test reads the page.
const POLL: Duration = Duration::from_millis(15);

/// A chromedriver process, killed on drop (with the browser it started, once its session is
/// closed).
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The first of these that exists, else a clear failure.
fn find(what: &str, env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let found = candidates.iter().map(Path::new).find(|path| path.exists());
    let Some(path) = found else {
        panic!(
            "{what} not found (looked at ${env}, then {candidates:?}): install Debian's \
             `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`; \
             .ci/run does) or set ${env}"
        )
    };
    path.to_path_buf()
}

fn start_chromedriver() -> Chromedriver {
    let binary = find(
        "chromedriver",
        "CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    let mut child = Command::new(&binary)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
    // It says which port it chose: "ChromeDriver was started successfully on port N."
    let stdout = child.stdout.take().expect("chromedriver's stdout is piped");
    let (port_tx, port_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
            {
                port_tx.send(Ok(port)).ok();
            } else {
                said.push(line);
            }
        }
        // Ended without saying it (or the port was already sent and this send goes nowhere).
        port_tx.send(Err(said.join("\n"))).ok();
    });
    let mut driver = Chromedriver { child, port: 0 };
    driver.port = match port_rx.recv_timeout(PATIENCE) {
        Ok(Ok(port)) => port,
        Ok(Err(said)) => panic!("chromedriver exited without starting; it said:\n{said}"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("chromedriver did not start within {PATIENCE:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            unreachable!("the reader sends before it ends")
        }
    };
    driver
}

/// Opens a session: a headless Chromium. `--no-sandbox` because CI runs as root.
async fn open_browser(driver: &Chromedriver) -> Client {
    let chromium = find(
        "chromium",
        "CHROME_BIN",
        &[
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ],
    );
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                "--window-size=1000,800",
            ],
        }),
    );
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let webdriver = format!("http://127.0.0.1:{}", driver.port);
    let connect = builder.connect(&webdriver);
    match tokio::time::timeout(PATIENCE * 2, connect).await {
        Ok(Ok(client)) => client,
        Ok(Err(err)) => panic!("chromedriver could not start {}: {err}", chromium.display()),
        Err(elapsed) => panic!(
            "the browser did not start within {:?} ({elapsed})",
            PATIENCE * 2
        ),
    }
}

/// What the test reads off the page.
#[derive(Debug, Deserialize)]
struct Page {
    /// The latest answer's text parts, joined.
    text: String,
    /// The latest answer's tool-call boxes, as shown.
    tools: Vec<String>,
    /// The tool boxes that show a result.
    tool_results: usize,
    /// `idle`, `streaming`, `done`, `stopped`, ...
    status: String,
}

async fn read_page(client: &Client) -> Page {
    let script = r##"
        const answers = document.querySelectorAll("#messages .assistant");
        const answer = answers[answers.length - 1];
        const all = (selector) => answer ? [...answer.querySelectorAll(selector)] : [];
        return {
            text: all(".text").map((el) => el.textContent).join(""),
            tools: all(".tool").map((el) => el.innerText),
            tool_results: all(".tool .output").length,
            status: document.getElementById("status").dataset.state,
        };
    "##;
    let value = client
        .execute(script, Vec::new())
        .await
        .expect("read the page");
    serde_json::from_value(value).expect("the page's state")
}

/// Polls `stats` until `done` holds, or fails after `within`, saying what it saw.
async fn wait_for_stats(
    app: &ChatApp,
    within: Duration,
    what: &str,
    done: impl Fn(&Stats) -> bool,
) -> Stats {
    let start = Instant::now();
    loop {
        let stats = app.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}; the server's counters: {stats:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Opens the page, types a question and clicks Send.
async fn ask(client: &Client, app: &ChatApp, url: &str) {
    client.goto(url).await.expect("open the page");
    let prompt = client
        .find(Locator::Css("#prompt"))
        .await
        .expect("the prompt box");
    prompt.clear().await.expect("clear the prompt");
    prompt
        .send_keys("What should I wear in Tromso tonight?")
        .await
        .expect("type a question");
    assert_eq!(app.stats(), Stats::default(), "nothing asked yet");
    client
        .find(Locator::Css("#send"))
        .await
        .expect("the Send button")
        .click()
        .await
        .expect("click Send");
}

/// Watches the answer grow: every distinct text the page shows, in order, until it has shown
/// the tool's result and then at least three more steps of text. Fails if the text does not
/// arrive in pieces, each appended to the last, or the tool call is not shown.
async fn watch_the_answer(client: &Client, app: &ChatApp) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut steps_after_tool = 0;
    let start = Instant::now();
    let page = loop {
        let page = read_page(client).await;
        assert!(
            page.status == "streaming" || page.status == "idle",
            "the answer ended before the test could stop it (status {:?}, text {:?}, server {:?})",
            page.status,
            page.text,
            app.stats()
        );
        if seen.last() != Some(&page.text) {
            seen.push(page.text.clone());
            if page.tool_results > 0 {
                steps_after_tool += 1;
            }
        }
        if steps_after_tool >= 3 {
            break page;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the page did not show a tool result and then text arriving in three steps within \
             {PATIENCE:?}; it showed {seen:?}, and now {page:?}; the server: {:?}",
            app.stats()
        );
        tokio::time::sleep(POLL).await;
    };
    let texts: Vec<&String> = seen.iter().filter(|text| !text.is_empty()).collect();
    assert!(
        texts.len() >= 4,
        "the text should arrive in pieces; the page showed {seen:?}"
    );
    for pair in texts.windows(2) {
        assert!(
            pair[1].starts_with(pair[0].as_str()) && pair[1].len() > pair[0].len(),
            "each piece should be appended to what was there: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    let tool = page.tools.first().expect("a tool call box");
    for shown in ["get_weather", r#"{"city":"Tromsø"}"#, "light snow"] {
        assert!(
            tool.contains(shown),
            "the tool call should show {shown:?}: {tool:?}"
        );
    }
    seen
}

/// Clicks Stop mid-answer: the server must drop the answer's producer (stopped, not finished)
/// and send nothing more, and the page must stop growing.
async fn stop_mid_answer(client: &Client, app: &ChatApp, steps: usize) {
    let before = app.stats();
    assert_eq!(
        (
            before.started,
            before.running,
            before.finished,
            before.stopped
        ),
        (1, 1, 0, 0),
        "one answer streaming: {before:?}"
    );
    let stop = client
        .find(Locator::Css("#stop"))
        .await
        .expect("the Stop button");
    let clicked = Instant::now();
    stop.click().await.expect("click Stop");

    // The server drops the producer: stopped, not finished.
    let stopped = wait_for_stats(
        app,
        Duration::from_secs(10),
        "Stop should drop the answer's producer on the server",
        |s| s.stopped == 1 || s.finished == 1,
    )
    .await;
    let after = clicked.elapsed();
    assert_eq!(
        (stopped.running, stopped.finished, stopped.stopped),
        (0, 0, 1),
        "Stop should drop the producer before its end: {stopped:?}"
    );
    eprintln!(
        "the producer was dropped within {after:?} of clicking Stop (the WebDriver command \
         included), after {} chunks; the page showed the text in {} steps",
        stopped.chunks, steps
    );

    // Nothing is sent after that, and the page stays as it was.
    let page_at_stop = read_page(client).await;
    tokio::time::sleep(TOKEN_DELAY * 10).await;
    let later = app.stats();
    assert_eq!(later, stopped, "no chunk after the producer was dropped");
    let page_later = read_page(client).await;
    assert_eq!(page_later.status, "stopped", "{page_later:?}");
    assert_eq!(
        page_later.text, page_at_stop.text,
        "the text stopped growing"
    );
    assert!(
        !page_later.text.contains("best chance."),
        "the answer was stopped before its end: {:?}",
        page_later.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_streams_the_answer_and_stop_reaches_the_server() {
    let app = ChatApp::new().with_token_delay(TOKEN_DELAY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}/", listener.local_addr().expect("local address"));
    let server = tokio::spawn(axum::serve(listener, app.router()).into_future());

    let driver = start_chromedriver();
    let client = open_browser(&driver).await;
    let outcome = AssertUnwindSafe(tokio::time::timeout(PATIENCE * 4, async {
        ask(&client, &app, &url).await;
        let seen = watch_the_answer(&client, &app).await;
        stop_mid_answer(&client, &app, seen.len()).await;
    }))
    .catch_unwind()
    .await;
    // Close the browser whatever happened, then report.
    client.close().await.ok();
    drop(driver);
    server.abort();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the browser test took longer than {:?}", PATIENCE * 4),
        Err(panic) => resume_unwind(panic),
    }
}
