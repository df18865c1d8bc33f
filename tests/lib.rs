//! Shared helpers for beluga's integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
