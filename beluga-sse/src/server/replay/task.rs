//! The task that runs one resumable stream.

use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use beluga_core::EventResult;
use futures_core::Stream;
use tokio::time::Instant;

use crate::encoding::Encoding;
use crate::server::replay::Hub;
use crate::server::replay::stream::{Shared, lock};
use crate::source::Source;

/// The task of one stream: runs the producer into the buffer while there is room, ends it
/// when its context ends, and frees the stream when it has had no reader for the grace period.
pub(crate) async fn pump<S, E, T>(
    shared: Arc<Shared>,
    hub: Weak<Hub>,
    source: Source<S, E, T>,
    grace: Duration,
) where
    S: Stream<Item = EventResult<T>>,
    E: Encoding<T>,
{
    let mut source = pin!(source);
    let mut cancelled = pin!(shared.ctx.cancelled());
    let mut frames = Vec::new();
    loop {
        let mut changed = pin!(shared.changed.notified());
        changed.as_mut().enable();
        let (room, expiry) = {
            let state = lock(&shared.state);
            let expiry = state.readers.is_empty().then(|| state.idle_since + grace);
            (state.has_room(shared.capacity), expiry)
        };
        let ended = source.is_ended();
        if expiry.is_some_and(|at| at <= Instant::now()) {
            if expire(&shared, &hub) {
                break;
            }
            continue;
        }
        tokio::select! {
            biased;
            err = &mut cancelled, if !ended => {
                // The context ended while the producer did not notice (or cannot: a plain
                // stream); end the stream with the context's error all the same.
                source.as_mut().end_with(&err, &mut frames);
            }
            _ = std::future::poll_fn(|cx| source.as_mut().poll_frames(cx, &mut frames)), if room && !ended => {}
            () = &mut changed => {}
            () = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now)), if expiry.is_some() => {}
        }
        if !frames.is_empty() || source.is_ended() != ended {
            let mut state = lock(&shared.state);
            state.push(&mut frames, shared.capacity);
            state.finished = source.is_ended();
        }
        if source.is_ended() && !ended {
            // Whatever the producer started with its context ends with it.
            shared.ctx.cancel();
        }
    }
    shared.ctx.cancel();
}

/// Frees the stream if it still has no reader; returns whether it did. The hub's lock is
/// taken first, as [`Replay::resume`] does, so a reader cannot attach to a freed stream.
fn expire(shared: &Shared, hub: &Weak<Hub>) -> bool {
    let Some(hub) = hub.upgrade() else {
        return true;
    };
    let mut streams = lock(&hub.streams);
    if !lock(&shared.state).readers.is_empty() {
        return false;
    }
    streams.remove(&shared.id);
    true
}
