//! Who waits for what: the wakers of consumers waiting for the source or for room, and waking
//! them without letting one panicking waker stop the rest.

use std::sync::atomic::Ordering;
use std::task::{Wake, Waker};

#[cfg(beluga_loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(beluga_loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(beluga_loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(beluga_loom))]
use std::sync::{Mutex, MutexGuard};

/// The consumers' wakers, and the waker the source is polled with: waking it wakes every
/// waiting consumer, so none depends on another one's task to be polled.
pub(super) struct Waiters {
    pub(super) waiting: AtomicUsize,
    /// Set by every wake, so that a wake that comes while the source is being polled (before
    /// anyone is registered) is not lost.
    pub(super) notified: AtomicBool,
    pub(super) wakers: Mutex<Vec<Option<Waker>>>,
}

impl Waiters {
    /// Registers consumer `index`'s `waker`; returns the waker it replaces, for the caller to
    /// drop once it holds no lock (a waker's drop is not ours to run under a lock).
    #[must_use]
    pub(super) fn register(&self, index: usize, waker: &Waker) -> Option<Waker> {
        let mut wakers = lock(&self.wakers);
        let slot = &mut wakers[index];
        if slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return None;
        }
        let replaced = slot.replace(waker.clone());
        if replaced.is_none() {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        replaced
    }

    /// Registers a consumer whose source poll came back `Pending` (called under the state's
    /// lock, so that no other consumer pulls meanwhile). Returns the waker replaced, and whether
    /// the source woke during that poll: then the caller wakes its task at once, once it holds
    /// no lock.
    #[must_use]
    pub(super) fn register_after_poll(&self, index: usize, waker: &Waker) -> (Option<Waker>, bool) {
        let replaced = self.register(index, waker);
        (replaced, self.notified.swap(false, Ordering::SeqCst))
    }

    pub(super) fn forget(&self, index: usize) {
        // Only this consumer registers its own slot, so if nothing is registered, its slot is
        // empty.
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut wakers = lock(&self.wakers);
        let forgotten = wakers[index].take();
        if forgotten.is_some() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        drop(wakers);
        drop(forgotten);
    }

    /// Moves every registered waker into `out`, to be woken once no lock is held.
    #[inline]
    pub(super) fn drain_into(&self, out: &mut Vec<Waker>) {
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.drain_slow(out);
        }
    }

    /// [`drain_into`](Self::drain_into)'s work. Wakers of one task are not weeded out here,
    /// where dropping one would run its destructor under the lock: [`wake_all`] wakes each task
    /// once, then drops them.
    #[inline(never)]
    pub(super) fn drain_slow(&self, out: &mut Vec<Waker>) {
        let mut wakers = lock(&self.wakers);
        for slot in wakers.iter_mut() {
            if let Some(waker) = slot.take() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                out.push(waker);
            }
        }
    }

    /// Clears `notified` before the source is polled, so that a wake that comes while it is
    /// polled, before anyone registers, is kept. Written only if set: a wake that sets it just
    /// after the read costs at worst one spurious wake-up, and the usual case (a ready source
    /// that never wakes) writes nothing.
    #[inline]
    pub(super) fn reset_notified(&self) {
        if self.notified.load(Ordering::SeqCst) {
            self.notified.store(false, Ordering::SeqCst);
        }
    }
}

impl Wake for Waiters {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        // A consumer's wake that panics keeps no other from being woken: the first panic comes
        // out once all have been.
        let mut panic = None;
        // Wake in chunks taken under the lock and woken outside it, without allocating. Each
        // chunk's scan goes on where the last one stopped: every consumer registered before this
        // wake is found, once; one that registers meanwhile sees `notified` and wakes itself.
        let mut start = 0;
        loop {
            let mut chunk: [Option<Waker>; 8] = Default::default();
            let mut taken = 0;
            if self.waiting.load(Ordering::SeqCst) != 0 {
                let mut wakers = lock(&self.wakers);
                for slot in wakers.iter_mut().skip(start) {
                    if taken == chunk.len() {
                        break;
                    }
                    start += 1;
                    if let Some(waker) = slot.take() {
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        chunk[taken] = Some(waker);
                        taken += 1;
                    }
                }
            }
            for waker in chunk.into_iter().flatten() {
                wake_catching(|| waker.wake(), &mut panic);
            }
            if taken < 8 {
                break;
            }
        }
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic (the only
    // user code run under the lock is the source's `poll_next` and items' `clone`, whose panics
    // are caught and undone, and wakers' `clone`, made before the state it is for changes;
    // destructors of the source, of items and of wakers run once the lock is released), so a
    // poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wakes the wakers collected under a lock, then drops them. A waker that wakes the same task as
/// the one before it is skipped (consumers on one task, drained at once with `join!`, share it:
/// one wake polls them all); checking only the one before keeps the cost of a wake-up per
/// consumer flat, however many consumers there are. A wake that panics
/// keeps no other task from being woken: the first panic comes out once all have been.
#[inline]
pub(super) fn wake_all(wakers: &mut Vec<Waker>) {
    if !wakers.is_empty() {
        wake_each(wakers);
    }
}

/// [`wake_all`]'s work, out of line: the `catch_unwind`s stay out of the polls' code.
#[inline(never)]
pub(super) fn wake_each(wakers: &mut Vec<Waker>) {
    let mut panic = None;
    let mut last: Option<&Waker> = None;
    for waker in wakers.iter() {
        if !last.is_some_and(|w| w.will_wake(waker)) {
            wake_catching(|| waker.wake_by_ref(), &mut panic);
        }
        last = Some(waker);
    }
    wakers.clear();
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `wake`, keeping the first panic of a run of wakes in `first`.
#[inline]
pub(super) fn wake_catching(
    wake: impl FnOnce(),
    first: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(wake)) {
        first.get_or_insert(panic);
    }
}
