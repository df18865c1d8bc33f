//! What a [`Relay`](crate::Relay) is set up with: where streams are kept, how long, and how the
//! publisher and the consumers behave.

use std::time::Duration;

use beluga_core::{Error, ErrorCode};

use crate::wire;

/// When the publisher cancels its producer, besides a consumer's explicit
/// [`cancel`](crate::Relay::cancel), which always works.
///
/// ```
/// use std::time::Duration;
/// use beluga_nats::{CancelPolicy, RelayConfig};
///
/// // Stop generating once no consumer has been attached for 5 seconds.
/// let config = RelayConfig::new()
///     .with_cancel_policy(CancelPolicy::WhenUnwatched(Duration::from_secs(5)));
/// assert_eq!(
///     config.cancel_policy(),
///     CancelPolicy::WhenUnwatched(Duration::from_secs(5))
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CancelPolicy {
    /// Only an explicit cancel stops the producer: consumers may come and go (an audit log that
    /// reads the stream later still finds it whole). The default.
    #[default]
    Explicit,
    /// Also stop the producer once no consumer has been attached for this long, counted from
    /// the start of the publish too. A consumer is attached from the moment it subscribes until
    /// it is dropped, or until it has not been heard from for three
    /// [presence intervals](RelayConfig::with_presence_interval) (its process died).
    WhenUnwatched(Duration),
}

/// Where the JetStream stream keeps items, one of JetStream's storage types.
///
/// ```
/// use beluga_nats::{RelayConfig, Storage};
/// let config = RelayConfig::new().with_storage(Storage::Memory);
/// assert_eq!(config.storage(), Storage::Memory);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Storage {
    /// On disk: items survive a broker restart. The default.
    #[default]
    File,
    /// In memory: faster, lost when the broker restarts.
    Memory,
}

/// The settings of a [`Relay`](crate::Relay): the JetStream stream it keeps event streams in,
/// their limits (so nothing grows forever), and the publisher's and consumers' timings.
///
/// Every event stream is one subject, `<prefix>.ev.<id>`, of one JetStream stream (named
/// [`stream_name`](RelayConfig::with_stream_name)), whose limits apply to all of them: items
/// older than [`max_age`](RelayConfig::with_max_age) are removed, and so are the oldest items of
/// an event stream beyond [`max_items_per_stream`](RelayConfig::with_max_items_per_stream) and
/// the oldest of all beyond [`max_items`](RelayConfig::with_max_items) or
/// [`max_bytes`](RelayConfig::with_max_bytes). A consumer that reaches a removed item gets a
/// clear error, never a stream with a hole. JetStream counts messages: with
/// [batching](RelayConfig::with_max_batch_items) a message may hold several items, and the
/// count limits then keep at least as many items as they say (the byte limit is exact).
///
/// ```
/// use std::time::Duration;
/// use beluga_nats::RelayConfig;
///
/// let config = RelayConfig::new()
///     .with_subject_prefix("agents.prod")
///     .with_max_age(Duration::from_secs(600))
///     .with_max_items_per_stream(100_000)
///     .with_idle_timeout(Duration::from_secs(20));
/// assert_eq!(config.subject_prefix(), "agents.prod");
/// assert_eq!(config.max_age(), Duration::from_secs(600));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    stream_name: String,
    subject_prefix: String,
    storage: Storage,
    max_age: Duration,
    max_items_per_stream: Option<u64>,
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    max_in_flight: usize,
    max_batch_items: usize,
    max_batch_bytes: usize,
    ack_timeout: Duration,
    stall_timeout: Duration,
    idle_timeout: Duration,
    presence_interval: Duration,
    cancel_policy: CancelPolicy,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            stream_name: "BELUGA_EVENTS".to_owned(),
            subject_prefix: "beluga".to_owned(),
            storage: Storage::File,
            max_age: Duration::from_secs(3600),
            max_items_per_stream: None,
            max_items: None,
            max_bytes: None,
            max_in_flight: 1024,
            max_batch_items: 64,
            max_batch_bytes: 64 * 1024,
            ack_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            presence_interval: Duration::from_secs(1),
            cancel_policy: CancelPolicy::Explicit,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $with:ident, $field:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $with(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    };
}

impl RelayConfig {
    /// The defaults: stream `BELUGA_EVENTS` on subjects `beluga.>`, on disk, items kept one
    /// hour, 1,024 items in flight, items that are ready together sent up to 64 (and 64 KiB) per
    /// message, acknowledgements awaited 5 s, the publisher giving up
    /// after 30 s without one, consumers reporting a silent publisher after 10 s, presence and
    /// heartbeats every second, [`CancelPolicy::Explicit`].
    ///
    /// ```
    /// let config = beluga_nats::RelayConfig::new();
    /// assert_eq!(config.stream_name(), "BELUGA_EVENTS");
    /// assert_eq!(config.max_in_flight(), 1024);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The JetStream stream's name (no spaces, `.`, `*` or `>`).
    ///
    /// ```
    /// let c = beluga_nats::RelayConfig::new().with_stream_name("AGENT_RUNS");
    /// assert_eq!(c.stream_name(), "AGENT_RUNS");
    /// ```
    #[must_use]
    pub fn with_stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }

    /// The first tokens of every subject: items go to `<prefix>.ev.<id>`, cancels to
    /// `<prefix>.cancel.<id>`, consumers' presence to `<prefix>.presence.<id>`, the
    /// publisher's heartbeat to `<prefix>.alive.<id>`.
    ///
    /// ```
    /// let c = beluga_nats::RelayConfig::new().with_subject_prefix("tenant1.beluga");
    /// assert_eq!(c.subject_prefix(), "tenant1.beluga");
    /// ```
    #[must_use]
    pub fn with_subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    setter!(
        /// Where items are stored.
        ///
        /// ```
        /// use beluga_nats::{RelayConfig, Storage};
        /// assert_eq!(RelayConfig::new().storage(), Storage::File);
        /// ```
        with_storage, storage: Storage
    );
    setter!(
        /// How long an item is kept (JetStream's `max_age`). Must not be zero.
        ///
        /// ```
        /// use std::time::Duration;
        /// let c = beluga_nats::RelayConfig::new().with_max_age(Duration::from_secs(60));
        /// assert_eq!(c.max_age(), Duration::from_secs(60));
        /// ```
        with_max_age, max_age: Duration
    );
    setter!(
        /// How many items the publisher may have sent and not had acknowledged before it waits:
        /// the bound on its memory when the broker is slow or stalled (about this many items,
        /// whatever their batching), and on how far it pulls the producer ahead of JetStream.
        /// Items, not messages: a batch of 64 items counts 64. The default, 1,024, keeps 16
        /// full batches in flight; with 1 KiB events it holds about 1 MiB. 1 to 65,536.
        ///
        /// ```
        /// let c = beluga_nats::RelayConfig::new().with_max_in_flight(32);
        /// assert_eq!(c.max_in_flight(), 32);
        /// ```
        with_max_in_flight, max_in_flight: usize
    );
    setter!(
        /// At most this many items per JetStream message. When the producer has several items
        /// ready at once (it yields again without waiting), the publisher sends them in one
        /// message, which carries small events several times faster; it never waits for a
        /// batch to fill, so an item that comes alone is sent alone at once, and a token
        /// stream's latency is that of unbatched messages. 1 turns batching off: one message
        /// per item. A batch also stays within [`max_in_flight`](RelayConfig::with_max_in_flight)
        /// and [`max_batch_bytes`](RelayConfig::with_max_batch_bytes). 1 to 65,536.
        ///
        /// ```
        /// // One message per item, as a reader that expects no `Beluga-Count` header needs.
        /// let c = beluga_nats::RelayConfig::new().with_max_batch_items(1);
        /// assert_eq!(c.max_batch_items(), 1);
        /// ```
        with_max_batch_items, max_batch_items: usize
    );
    setter!(
        /// At most this many bytes of item bodies per batched message (a single item larger
        /// than this is still sent, alone). The publisher also keeps every batch under half
        /// the server's `max_payload` (1 MiB by default), so a batch is never refused where
        /// its items alone would be accepted. At least 1.
        ///
        /// ```
        /// let c = beluga_nats::RelayConfig::new().with_max_batch_bytes(16 * 1024);
        /// assert_eq!(c.max_batch_bytes(), 16 * 1024);
        /// ```
        with_max_batch_bytes, max_batch_bytes: usize
    );
    setter!(
        /// How long one acknowledgement (and any JetStream API request) is awaited before the
        /// publish is retried; a retried item is stored once (it carries a `Nats-Msg-Id`).
        ///
        /// ```
        /// use std::time::Duration;
        /// let c = beluga_nats::RelayConfig::new().with_ack_timeout(Duration::from_secs(1));
        /// assert_eq!(c.ack_timeout(), Duration::from_secs(1));
        /// ```
        with_ack_timeout, ack_timeout: Duration
    );
    setter!(
        /// How long the publisher goes on without any acknowledgement before it gives up: it
        /// then drops its producer and returns a `provider_unavailable` error.
        ///
        /// ```
        /// use std::time::Duration;
        /// let c = beluga_nats::RelayConfig::new().with_stall_timeout(Duration::from_secs(10));
        /// assert_eq!(c.stall_timeout(), Duration::from_secs(10));
        /// ```
        with_stall_timeout, stall_timeout: Duration
    );
    setter!(
        /// How long a consumer waits for the next item, or for a sign of life from the
        /// publisher (sent every [presence interval](RelayConfig::with_presence_interval) while
        /// it runs, however slow its producer), before it ends with a `timeout` error: the
        /// producer died without a terminal item, never started, or the broker is gone.
        ///
        /// ```
        /// use std::time::Duration;
        /// let c = beluga_nats::RelayConfig::new().with_idle_timeout(Duration::from_secs(90));
        /// assert_eq!(c.idle_timeout(), Duration::from_secs(90));
        /// ```
        with_idle_timeout, idle_timeout: Duration
    );
    setter!(
        /// How often a consumer tells the publisher it is still attached (used by
        /// [`CancelPolicy::WhenUnwatched`]), and the publisher tells consumers it is alive
        /// (so a slow producer is not taken for a dead one). Keep it well below the idle
        /// timeout.
        ///
        /// ```
        /// use std::time::Duration;
        /// let c = beluga_nats::RelayConfig::new().with_presence_interval(Duration::from_millis(200));
        /// assert_eq!(c.presence_interval(), Duration::from_millis(200));
        /// ```
        with_presence_interval, presence_interval: Duration
    );
    setter!(
        /// When the publisher stops its producer besides an explicit cancel.
        ///
        /// ```
        /// use beluga_nats::{CancelPolicy, RelayConfig};
        /// assert_eq!(RelayConfig::new().cancel_policy(), CancelPolicy::Explicit);
        /// ```
        with_cancel_policy, cancel_policy: CancelPolicy
    );

    /// Keeps at most this many messages per event stream (JetStream's
    /// `max_msgs_per_subject`), the oldest removed first: this many items unbatched, more when
    /// items were [batched](RelayConfig::with_max_batch_items).
    ///
    /// ```
    /// let c = beluga_nats::RelayConfig::new().with_max_items_per_stream(10_000);
    /// assert_eq!(c.max_items_per_stream(), Some(10_000));
    /// ```
    #[must_use]
    pub fn with_max_items_per_stream(mut self, max: u64) -> Self {
        self.max_items_per_stream = Some(max);
        self
    }

    /// Keeps at most this many messages in all (JetStream's `max_msgs`), the oldest removed
    /// first: this many items unbatched, more when items were batched.
    ///
    /// ```
    /// let c = beluga_nats::RelayConfig::new().with_max_items(1_000_000);
    /// assert_eq!(c.max_items(), Some(1_000_000));
    /// ```
    #[must_use]
    pub fn with_max_items(mut self, max: u64) -> Self {
        self.max_items = Some(max);
        self
    }

    /// Keeps at most this many bytes in all (JetStream's `max_bytes`), the oldest removed first.
    ///
    /// ```
    /// let c = beluga_nats::RelayConfig::new().with_max_bytes(1 << 30);
    /// assert_eq!(c.max_bytes(), Some(1 << 30));
    /// ```
    #[must_use]
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = Some(max);
        self
    }

    /// The JetStream stream's name.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().stream_name(), "BELUGA_EVENTS");
    /// ```
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// The subject prefix.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().subject_prefix(), "beluga");
    /// ```
    pub fn subject_prefix(&self) -> &str {
        &self.subject_prefix
    }

    /// Where items are stored.
    ///
    /// ```
    /// use beluga_nats::{RelayConfig, Storage};
    /// assert_eq!(RelayConfig::new().storage(), Storage::File);
    /// ```
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// How long an item is kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(beluga_nats::RelayConfig::new().max_age(), Duration::from_secs(3600));
    /// ```
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The item limit per event stream, if any.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_items_per_stream(), None);
    /// ```
    pub fn max_items_per_stream(&self) -> Option<u64> {
        self.max_items_per_stream
    }

    /// The item limit of the whole JetStream stream, if any.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_items(), None);
    /// ```
    pub fn max_items(&self) -> Option<u64> {
        self.max_items
    }

    /// The byte limit of the whole JetStream stream, if any.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_bytes(), None);
    /// ```
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Items in flight before the publisher waits.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_in_flight(), 1024);
    /// ```
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Items per message at most (1: no batching).
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_batch_items(), 64);
    /// ```
    pub fn max_batch_items(&self) -> usize {
        self.max_batch_items
    }

    /// Bytes of item bodies per batched message at most.
    ///
    /// ```
    /// assert_eq!(beluga_nats::RelayConfig::new().max_batch_bytes(), 65_536);
    /// ```
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes
    }

    /// How long one acknowledgement is awaited.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(beluga_nats::RelayConfig::new().ack_timeout(), Duration::from_secs(5));
    /// ```
    pub fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    /// How long the publisher goes on without an acknowledgement.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(beluga_nats::RelayConfig::new().stall_timeout(), Duration::from_secs(30));
    /// ```
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// How long a consumer waits for the next item.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(beluga_nats::RelayConfig::new().idle_timeout(), Duration::from_secs(10));
    /// ```
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How often a consumer reports its presence.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(beluga_nats::RelayConfig::new().presence_interval(), Duration::from_secs(1));
    /// ```
    pub fn presence_interval(&self) -> Duration {
        self.presence_interval
    }

    /// When the publisher cancels its producer besides an explicit cancel.
    ///
    /// ```
    /// use beluga_nats::{CancelPolicy, RelayConfig};
    /// assert_eq!(RelayConfig::new().cancel_policy(), CancelPolicy::Explicit);
    /// ```
    pub fn cancel_policy(&self) -> CancelPolicy {
        self.cancel_policy
    }

    /// Refuses settings JetStream or the publisher cannot work with.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let invalid = |what: String| Err(Error::new(ErrorCode::InvalidInput, what).with_op("nats"));
        wire::check_prefix(&self.subject_prefix)?;
        if self.stream_name.is_empty()
            || self
                .stream_name
                .chars()
                .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace())
        {
            return invalid(format!(
                "stream name {:?} must be non-empty, without `.`, `*`, `>` or whitespace",
                self.stream_name
            ));
        }
        if !(1..=65_536).contains(&self.max_in_flight) {
            return invalid(format!(
                "max_in_flight must be 1 to 65536, not {}",
                self.max_in_flight
            ));
        }
        if !(1..=65_536).contains(&self.max_batch_items) {
            return invalid(format!(
                "max_batch_items must be 1 to 65536, not {}",
                self.max_batch_items
            ));
        }
        if self.max_batch_bytes == 0 {
            return invalid("max_batch_bytes must not be zero".to_owned());
        }
        for (name, value) in [
            ("max_age", self.max_age),
            ("ack_timeout", self.ack_timeout),
            ("stall_timeout", self.stall_timeout),
            ("idle_timeout", self.idle_timeout),
            ("presence_interval", self.presence_interval),
        ] {
            if value.is_zero() {
                return invalid(format!("{name} must not be zero"));
            }
        }
        for (name, value) in [
            ("max_items_per_stream", self.max_items_per_stream),
            ("max_items", self.max_items),
            ("max_bytes", self.max_bytes),
        ] {
            if value.is_some_and(|v| v == 0 || i64::try_from(v).is_err()) {
                return invalid(format!("{name} must be 1 to i64::MAX"));
            }
        }
        Ok(())
    }

    pub(crate) fn items_subject(&self, id: &str) -> String {
        format!("{}.ev.{id}", self.subject_prefix)
    }

    pub(crate) fn cancel_subject(&self, id: &str) -> String {
        format!("{}.cancel.{id}", self.subject_prefix)
    }

    pub(crate) fn alive_subject(&self, id: &str) -> String {
        format!("{}.alive.{id}", self.subject_prefix)
    }

    pub(crate) fn presence_subject(&self, id: &str) -> String {
        format!("{}.presence.{id}", self.subject_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_with_invalid_input() {
        assert!(RelayConfig::new().check().is_ok());
        let bad = [
            RelayConfig::new().with_max_in_flight(0),
            RelayConfig::new().with_max_in_flight(70_000),
            RelayConfig::new().with_max_batch_items(0),
            RelayConfig::new().with_max_batch_items(70_000),
            RelayConfig::new().with_max_batch_bytes(0),
            RelayConfig::new().with_stream_name("a.b"),
            RelayConfig::new().with_subject_prefix("a.*"),
            RelayConfig::new().with_idle_timeout(Duration::ZERO),
            RelayConfig::new().with_max_items(0),
            RelayConfig::new().with_max_bytes(u64::MAX),
        ];
        for config in bad {
            let err = config.check().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{config:?}");
        }
    }
}
