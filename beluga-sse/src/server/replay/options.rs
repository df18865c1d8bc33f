//! [`ReplayOptions`]: the bounds of a [`Replay`].

use std::time::Duration;

#[cfg(doc)]
use crate::server::Replay;
use crate::server::SseOptions;

/// The most frames a stream's buffer may be asked to keep.
pub(crate) const MAX_CAPACITY: usize = 1 << 20;

/// The bounds of a [`Replay`]: frames kept per stream, how long a stream lives without a
/// client, how many streams at once, and the [`SseOptions`] of its responses.
///
/// ```
/// use std::time::Duration;
/// use beluga_sse::server::{Replay, ReplayOptions};
///
/// let options = ReplayOptions::new()
///     .capacity(256)
///     .grace(Duration::from_secs(10))
///     .max_streams(1_000);
/// assert_eq!(options.capacity_frames(), 256);
/// let replay = Replay::new(options).unwrap();
/// # drop(replay);
/// ```
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub(crate) capacity: usize,
    pub(crate) grace: Duration,
    pub(crate) max_streams: usize,
    pub(crate) sse: SseOptions,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            capacity: 1024,
            grace: Duration::from_secs(30),
            max_streams: 10_000,
            sse: SseOptions::default(),
        }
    }
}

impl ReplayOptions {
    /// The defaults: 1,024 frames per stream, 30 seconds of grace, 10,000 streams, the default
    /// [`SseOptions`].
    ///
    /// ```
    /// let options = beluga_sse::server::ReplayOptions::new();
    /// assert_eq!(options.capacity_frames(), 1024);
    /// assert_eq!(options.grace_period().as_secs(), 30);
    /// assert_eq!(options.max_stream_count(), 10_000);
    /// ```
    pub fn new() -> Self {
        ReplayOptions::default()
    }

    /// How many frames each stream keeps for a client that resumes: from 1 to 2^20.
    /// [`Replay::new`] refuses any other value.
    ///
    /// ```
    /// let options = beluga_sse::server::ReplayOptions::new().capacity(64);
    /// assert_eq!(options.capacity_frames(), 64);
    /// ```
    #[must_use]
    pub fn capacity(mut self, frames: usize) -> Self {
        self.capacity = frames;
        self
    }

    /// How long a stream lives with no client connected, running or finished, before it is
    /// dropped (see the [policy](Replay#policy)). Zero drops a running stream as soon as its
    /// last client goes away, as [`serve`](crate::serve) does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = beluga_sse::server::ReplayOptions::new().grace(Duration::ZERO);
    /// assert_eq!(options.grace_period(), Duration::ZERO);
    /// ```
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How many streams the replay holds at once, running or waiting out their grace period;
    /// starting one more is refused with `provider_unavailable`. At least 1.
    ///
    /// ```
    /// let options = beluga_sse::server::ReplayOptions::new().max_streams(10);
    /// assert_eq!(options.max_stream_count(), 10);
    /// ```
    #[must_use]
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.max_streams = streams;
        self
    }

    /// The options of the responses (the keep-alive interval).
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_sse::server::{ReplayOptions, SseOptions};
    /// let options = ReplayOptions::new().sse(SseOptions::new().keep_alive(Duration::from_secs(5)));
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn sse(mut self, sse: SseOptions) -> Self {
        self.sse = sse;
        self
    }

    /// The frames kept per stream.
    ///
    /// ```
    /// assert_eq!(beluga_sse::server::ReplayOptions::new().capacity_frames(), 1024);
    /// ```
    pub fn capacity_frames(&self) -> usize {
        self.capacity
    }

    /// The grace period.
    ///
    /// ```
    /// assert_eq!(beluga_sse::server::ReplayOptions::new().grace_period().as_secs(), 30);
    /// ```
    pub fn grace_period(&self) -> Duration {
        self.grace
    }

    /// The most streams held at once.
    ///
    /// ```
    /// assert_eq!(beluga_sse::server::ReplayOptions::new().max_stream_count(), 10_000);
    /// ```
    pub fn max_stream_count(&self) -> usize {
        self.max_streams
    }
}
