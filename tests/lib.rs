//! Shared helpers for beluga's integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts how many times it has been dropped: put one inside a producer to prove the producer
/// was dropped, and when.
#[derive(Debug)]
pub struct DropGuard(Arc<AtomicUsize>);

impl DropGuard {
    /// A guard and the counter it bumps when dropped.
    pub fn new() -> (DropGuard, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        (DropGuard(Arc::clone(&count)), count)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many times the guards sharing `count` were dropped.
pub fn drops(count: &AtomicUsize) -> usize {
    count.load(Ordering::SeqCst)
}

/// How many tasks are alive on the current Tokio runtime.
///
/// # Panics
///
/// Outside a Tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Yields to the runtime until `done()` holds; fails the test after five seconds of real time
/// instead of hanging (also under the paused clock, which does not move `std` time).
///
/// # Panics
///
/// When `done()` still does not hold after five seconds, naming `what` it waited for.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Lets every other task on the runtime run until it parks.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// Serves `app` on a new port of 127.0.0.1 (one task: the accept loop) and returns its address.
///
/// # Panics
///
/// When no port can be bound.
pub async fn serve_on_loopback(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` whose open connections can be cut, as a
/// network failure would: both sides are closed at once.
#[derive(Debug, Clone)]
pub struct CuttableProxy {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    cut: Arc<tokio::sync::Notify>,
    connections: Arc<AtomicUsize>,
}

impl CuttableProxy {
    /// Starts the proxy.
    ///
    /// # Panics
    ///
    /// When no port can be bound.
    pub async fn start(upstream: std::net::SocketAddr) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let proxy = CuttableProxy {
            addr: listener.local_addr().expect("local address"),
            cut: Arc::new(tokio::sync::Notify::new()),
            connections: Arc::new(AtomicUsize::new(0)),
        };
        let (cut, connections) = (Arc::clone(&proxy.cut), Arc::clone(&proxy.connections));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let cut = Arc::clone(&cut);
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        proxy
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
