//! What a stream's task and its readers share (the buffer), and [`ReplayReader`], one
//! client's reading of it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};

use axum::response::sse;
use beluga_core::Context;
use futures_core::Stream;
use slab::Slab;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::frame::Frame;
#[cfg(doc)]
use crate::server::Replay;
use crate::server::sse_event;

/// One stream: what its task and its readers share.
pub(crate) struct Shared {
    pub(crate) id: String,
    /// The producer's context, a child of the one given to `start`.
    pub(crate) ctx: Context,
    pub(crate) headers: &'static [(&'static str, &'static str)],
    pub(crate) capacity: usize,
    /// Wakes the task: a reader moved on, came or went.
    pub(crate) changed: Notify,
    pub(crate) state: Mutex<State>,
}

pub(crate) struct State {
    /// The buffer: the frames at positions `first..first + frames.len()` (counted from 1).
    pub(crate) frames: VecDeque<Frame>,
    pub(crate) first: u64,
    /// The stream's last frame is in the buffer.
    pub(crate) finished: bool,
    pub(crate) readers: Slab<ReaderSlot>,
    /// The furthest position any reader was sent up to (exclusive).
    pub(crate) handed: u64,
    /// Since when no reader has been connected (meaningful while `readers` is empty).
    pub(crate) idle_since: Instant,
}

pub(crate) struct ReaderSlot {
    /// The next position this reader is sent.
    pub(crate) position: u64,
    pub(crate) waker: Option<Waker>,
}

impl State {
    pub(crate) fn next(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    /// Frames before this position may be dropped from the buffer: every connected reader has
    /// been sent them, or with none connected, some reader was.
    fn low_water(&self) -> u64 {
        self.readers
            .iter()
            .map(|(_, r)| r.position)
            .min()
            .unwrap_or(self.handed)
    }

    pub(crate) fn has_room(&self, capacity: usize) -> bool {
        self.frames.len() < capacity || self.first < self.low_water()
    }

    pub(crate) fn push(&mut self, frames: &mut Vec<Frame>, capacity: usize) {
        self.frames.extend(frames.drain(..));
        let low_water = self.low_water();
        while self.frames.len() > capacity && self.first < low_water {
            self.frames.pop_front();
            self.first += 1;
        }
        for (_, reader) in &mut self.readers {
            if let Some(waker) = reader.waker.take() {
                waker.wake();
            }
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; should it, the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stream for [`Replay`]'s responses: one client's reading of a resumable stream, from the
/// stream's buffer, with ids `stream:position`.
///
/// Dropping it (the server does when the client goes away) leaves the stream running; see the
/// [policy](Replay#policy).
///
/// ```
/// use beluga_core::{Context, stream};
/// use beluga_sse::BelugaJson;
/// use beluga_sse::server::{Replay, ReplayOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let replay = Replay::new(ReplayOptions::new()).unwrap();
/// let response = replay.start(&Context::new(), BelugaJson, |_| stream::iter(["a"])).unwrap();
/// drop(response); // the client went away
/// assert_eq!(replay.len(), 1); // the stream waits for it during the grace period
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct ReplayReader {
    pub(crate) shared: Arc<Shared>,
    pub(crate) key: usize,
    /// The next position this reader is sent.
    pub(crate) position: u64,
}

impl Stream for ReplayReader {
    type Item = Result<sse::Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let mut state = lock(&this.shared.state);
        let State {
            frames,
            first,
            finished,
            readers,
            handed,
            ..
        } = &mut *state;
        let Some(offset) = this.position.checked_sub(*first) else {
            // Cannot happen: the buffer keeps what a connected reader has not been sent.
            return Poll::Ready(None);
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if let Some(frame) = frames.get(offset) {
            let id = format!("{}:{}", this.shared.id, this.position);
            let event = sse_event(frame, Some(&id));
            this.position += 1;
            *handed = (*handed).max(this.position);
            let full = frames.len() >= this.shared.capacity;
            if let Some(slot) = readers.get_mut(this.key) {
                slot.position = this.position;
            }
            drop(state);
            if full {
                // The task may be waiting for this reader to move on.
                this.shared.changed.notify_one();
            }
            return Poll::Ready(Some(Ok(event)));
        }
        if *finished {
            return Poll::Ready(None);
        }
        if let Some(slot) = readers.get_mut(this.key) {
            match &mut slot.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                waker => *waker = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

impl Drop for ReplayReader {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared.state);
            if state.readers.contains(self.key) {
                state.readers.remove(self.key);
            }
            if state.readers.is_empty() {
                state.idle_since = Instant::now();
            }
        }
        self.shared.changed.notify_one();
    }
}

impl fmt::Debug for ReplayReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayReader")
            .field("stream", &self.shared.id)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}
