//! Helpers shared by the tests that talk over the network: a server on 127.0.0.1 and a proxy
//! whose connections can be cut. The helpers every test uses come from `beluga-tests`.
//!
//! These tests live in their own package so that the HTTP stack they need (axum, reqwest, TLS)
//! stays out of `beluga-tests`, whose trybuild cases compile against its dependencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use beluga_tests::*;

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
