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
