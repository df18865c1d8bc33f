//! The tree behind [`Context`](super::Context): one node per derived context, links from each
//! parent to its live children, and the cancellation that runs down them.

use std::any::Any;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

use slab::Slab;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(super) const LIVE: u8 = 0;
pub(super) const CANCELLED: u8 = 1;
pub(super) const DEADLINE: u8 = 2;
pub(super) const NO_SLOT: usize = usize::MAX;

/// One context in the tree. Clones of a `Context` share a node; derived contexts get their own.
pub(super) struct Node {
    /// `LIVE`, `CANCELLED` or `DEADLINE`. Written only under `links`, read lock-free.
    pub(super) state: AtomicU8,
    pub(super) parent: Option<Arc<Node>>,
    /// Key of this node in `parent.links.children`, or `NO_SLOT`.
    pub(super) slot: AtomicUsize,
    /// The effective deadline: the earlier of this node's own and its parent's.
    pub(super) deadline: Option<Instant>,
    /// Whether `deadline` is this node's own (earlier than the parent's): observing it cancels
    /// this node, so every context sharing the deadline sees it.
    pub(super) owns_deadline: bool,
    /// The token this context (or an ancestor) was made from, watched like a deadline.
    pub(super) token: Option<CancellationToken>,
    pub(super) links: Mutex<Links>,
    pub(super) values: Values,
}

/// What a cancel must reach: live children and parked waiters. A cancel drains the waiters;
/// children stay until they are dropped. Nothing is inserted once the node is cancelled.
#[derive(Default)]
pub(super) struct Links {
    pub(super) children: Slab<Weak<Node>>,
    pub(super) waiters: Slab<Waker>,
}

/// The nodes a cancel has yet to reach, last in first out: the first few inline, so that a
/// cancel reaching a few children allocates nothing.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) inline: [Option<Arc<Node>>; 4],
    pub(super) len: usize,
    pub(super) more: Vec<Arc<Node>>,
}

impl Pending {
    pub(super) fn push(&mut self, node: Arc<Node>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(node);
                self.len += 1;
            }
            None => self.more.push(node),
        }
    }

    pub(super) fn pop(&mut self) -> Option<Arc<Node>> {
        if let Some(node) = self.more.pop() {
            return Some(node);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline[self.len].take()
    }
}

#[derive(Clone, Default)]
pub(super) struct Values {
    pub(super) request_id: Option<Arc<str>>,
    pub(super) session_id: Option<Arc<str>>,
    pub(super) ext: Option<Arc<ValueEntry>>,
}

pub(super) struct ValueEntry {
    pub(super) value: Box<dyn Any + Send + Sync>,
    pub(super) next: Option<Arc<ValueEntry>>,
}

impl Drop for ValueEntry {
    fn drop(&mut self) {
        // Release the entries behind this one in a loop rather than by recursion, so that
        // dropping the last handle to a long chain of values cannot overflow the stack.
        let mut next = self.next.take();
        while let Some(entry) = next {
            match Arc::try_unwrap(entry) {
                // `entry` is dropped at the end of this arm with nothing behind it to recurse into.
                Ok(mut entry) => next = entry.next.take(),
                Err(_) => break,
            }
        }
    }
}

pub(super) fn lock(links: &Mutex<Links>) -> MutexGuard<'_, Links> {
    // A panic while holding this lock cannot leave `Links` half-updated (every critical section
    // is a single slab operation, or a cancel's reads of the children and drain of the
    // waiters), so a poisoned lock is still consistent.
    links
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Node {
    pub(super) fn root(token: Option<CancellationToken>) -> Arc<Node> {
        Arc::new(Node {
            state: AtomicU8::new(LIVE),
            parent: None,
            slot: AtomicUsize::new(NO_SLOT),
            deadline: None,
            owns_deadline: false,
            token,
            links: Mutex::new(Links::default()),
            values: Values::default(),
        })
    }

    pub(super) fn child(
        parent: &Arc<Node>,
        deadline: Option<Instant>,
        values: Values,
    ) -> Arc<Node> {
        let (effective, owns) = match (parent.deadline, deadline) {
            (Some(p), Some(own)) if own < p => (Some(own), true),
            (None, Some(own)) => (Some(own), true),
            (p, _) => (p, false),
        };
        let node = Arc::new(Node {
            state: AtomicU8::new(LIVE),
            parent: Some(Arc::clone(parent)),
            slot: AtomicUsize::new(NO_SLOT),
            deadline: effective,
            owns_deadline: owns,
            token: parent.token.clone(),
            links: Mutex::new(Links::default()),
            values,
        });
        {
            // The parent's state is written under this lock, so either we see it cancelled
            // here, or it will find (and cancel) us in its children.
            let mut links = lock(&parent.links);
            let parent_state = parent.state.load(Ordering::Relaxed);
            if parent_state == LIVE {
                let key = links.children.insert(Arc::downgrade(&node));
                node.slot.store(key, Ordering::Relaxed);
            } else {
                node.state.store(parent_state, Ordering::Release);
            }
        }
        if owns
            && node.state.load(Ordering::Relaxed) == LIVE
            && effective.is_some_and(|d| Instant::now() >= d)
        {
            node.cancel(DEADLINE);
        }
        node
    }

    pub(super) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Marks this node and all its descendants as ended with `reason`, then wakes every waiter.
    /// Iterative, so a deep chain of contexts cannot overflow the stack; allocates nothing for a
    /// node with a few children and no waiters.
    pub(super) fn cancel(&self, reason: u8) {
        let mut pending = Pending::default();
        let mut wakers: Vec<Waker> = Vec::new();
        self.cancel_one(reason, &mut pending, &mut wakers);
        while let Some(node) = pending.pop() {
            node.cancel_one(reason, &mut pending, &mut wakers);
        }
        for waker in wakers {
            waker.wake();
        }
    }

    /// Ends this node (unless it has ended already), queues its live children and takes its
    /// waiters' wakers. The children stay registered: each leaves the slab when it is dropped,
    /// as it would have without the cancel. Nothing is dropped under the lock.
    pub(super) fn cancel_one(&self, reason: u8, pending: &mut Pending, wakers: &mut Vec<Waker>) {
        let mut links = lock(&self.links);
        if self.state.load(Ordering::Relaxed) != LIVE {
            return;
        }
        self.state.store(reason, Ordering::Release);
        for (_, child) in &links.children {
            if let Some(child) = child.upgrade() {
                pending.push(child);
            }
        }
        if !links.waiters.is_empty() {
            wakers.extend(links.waiters.drain());
        }
    }

    /// The node whose own deadline this node inherits: observing the deadline cancels it, so
    /// every context that shares the deadline sees it.
    pub(super) fn deadline_owner(&self) -> Option<&Node> {
        self.deadline?;
        let mut node = self;
        while !node.owns_deadline {
            node = node.parent.as_deref()?;
        }
        Some(node)
    }

    /// Ends this node if its deadline has passed (one clock read) or its token was cancelled.
    /// Returns whether the node has ended.
    pub(super) fn observe(&self) -> bool {
        if self.state() != LIVE {
            return true;
        }
        if self
            .token
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            self.cancel(CANCELLED);
            return true;
        }
        match self.deadline_owner() {
            Some(owner) if owner.deadline.is_some_and(|d| Instant::now() >= d) => {
                owner.cancel(DEADLINE);
                true
            }
            _ => false,
        }
    }

    pub(super) fn unregister_child(&self, slot: usize) {
        let mut links = lock(&self.links);
        links.children.try_remove(slot);
        if links.children.is_empty() && links.children.capacity() > 64 {
            // After a burst of children, give the memory back.
            links.children = Slab::new();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Leave the parent, then release it. Done in a loop rather than by recursion so that
        // dropping the last handle to a deep chain of contexts cannot overflow the stack.
        let mut slot = *self.slot.get_mut();
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            if slot != NO_SLOT {
                node.unregister_child(slot);
            }
            match Arc::try_unwrap(node) {
                Ok(mut node) => {
                    // `node` is dropped at the end of this arm with no parent left to recurse into.
                    slot = *node.slot.get_mut();
                    parent = node.parent.take();
                }
                Err(_) => break,
            }
        }
    }
}
