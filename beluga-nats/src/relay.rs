//! [`Relay`]: one JetStream stream that event streams are published to, consumed from and
//! cancelled through.

use std::fmt;
use std::sync::Arc;

use async_nats::jetstream;
use async_nats::jetstream::stream::{Config, DiscardPolicy, LastRawMessageErrorKind, StorageType};
use beluga_core::{Context, Error, ErrorCode, Event};
use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{RelayConfig, Storage};
use crate::publish::{self, Published};
use crate::subscribe::{self, Position, RemoteStream};
use crate::wire;

/// Event streams across machines, kept in one NATS JetStream stream.
///
/// A producer's machine [`publish`](Relay::publish)es a stream under an id (a request id, for
/// instance); any number of machines [`subscribe`](Relay::subscribe) to it, each from its own
/// position, and any of them can [`cancel`](Relay::cancel) it, which cancels the producer's
/// [`Context`] and drops its body on the machine that runs it. Cheap to clone.
///
/// ```no_run
/// use beluga_core::{Context, EventStreamExt, stream};
/// use beluga_nats::{Position, Relay, RelayConfig};
/// use futures_util::StreamExt;
///
/// # async fn demo() -> Result<(), beluga_core::Error> {
/// let client = async_nats::connect("127.0.0.1:4222").await.expect("nats");
/// let relay = Relay::new(client, RelayConfig::new()).await?;
///
/// // The producer's machine.
/// let publisher = relay.clone();
/// tokio::spawn(async move {
///     let ctx = Context::new();
///     publisher
///         .publish(&ctx, "req-42", |_ctx| stream::iter(["Hel", "lo"].map(String::from)))
///         .await
/// });
///
/// // Any other machine: the same items, in order, ending with `done`.
/// let answer = relay.subscribe::<String>("req-42", Position::Start).await?;
/// let text: Vec<String> = answer.payloads().filter_map(|t| async { t.ok() }).collect().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Relay {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) stream: jetstream::stream::Stream,
    pub(crate) config: RelayConfig,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(
    op: &'static str,
    message: impl Into<std::borrow::Cow<'static, str>>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(ErrorCode::ProviderUnavailable, message)
        .with_op(op)
        .with_source(source)
}

fn limit(value: Option<u64>) -> i64 {
    // `RelayConfig::check` has refused values above `i64::MAX`; -1 is JetStream's "no limit".
    value.and_then(|v| i64::try_from(v).ok()).unwrap_or(-1)
}

impl Relay {
    /// Sets up the JetStream stream described by `config` on the client's server (creating it,
    /// or updating its limits) and returns a relay that uses it.
    ///
    /// Fails with `invalid_input` on settings JetStream cannot take (see
    /// [`RelayConfig`]), and `provider_unavailable` when the server cannot be reached or has no
    /// JetStream.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), beluga_core::Error> {
    /// let client = async_nats::connect("127.0.0.1:4222").await.expect("nats");
    /// let relay = beluga_nats::Relay::new(client, beluga_nats::RelayConfig::new()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(client: async_nats::Client, config: RelayConfig) -> Result<Self, Error> {
        config.check()?;
        let js = jetstream::context::ContextBuilder::new()
            .timeout(config.ack_timeout())
            .build(client.clone());
        let prefix = config.subject_prefix();
        let stream_config = Config {
            name: config.stream_name().to_owned(),
            subjects: vec![format!("{prefix}.ev.>"), format!("{prefix}.cancel.>")],
            storage: match config.storage() {
                Storage::File => StorageType::File,
                Storage::Memory => StorageType::Memory,
            },
            max_age: config.max_age(),
            max_messages_per_subject: limit(config.max_items_per_stream()),
            max_messages: limit(config.max_items()),
            max_bytes: limit(config.max_bytes()),
            discard: DiscardPolicy::Old,
            num_replicas: 1,
            ..Config::default()
        };
        js.create_or_update_stream(stream_config)
            .await
            .map_err(|e| {
                unavailable(
                    "nats.setup",
                    format!("cannot set up JetStream stream `{}`", config.stream_name()),
                    e,
                )
            })?;
        let stream = js.get_stream(config.stream_name()).await.map_err(|e| {
            unavailable(
                "nats.setup",
                format!("cannot open JetStream stream `{}`", config.stream_name()),
                e,
            )
        })?;
        Ok(Relay {
            inner: Arc::new(Inner {
                client,
                js,
                stream,
                config,
            }),
        })
    }

    /// The settings this relay was made with.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) {
    /// assert_eq!(relay.config().subject_prefix(), "beluga");
    /// # }
    /// ```
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// The NATS client this relay uses.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) {
    /// let client: &async_nats::Client = relay.client();
    /// # }
    /// ```
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Publishes the stream that `make` returns under `id`, and returns once its last item is
    /// stored.
    ///
    /// `make` is handed a child of `ctx`; build the producer with it. The publisher cancels
    /// that child, and drops the producer at once, when a consumer [cancels](Relay::cancel)
    /// the stream (also a cancel sent before the publish started), when the
    /// [`CancelPolicy`](crate::CancelPolicy) says no one is watching, or when `ctx` itself is
    /// cancelled; it then stores a terminal `cancelled` error in its place, so every consumer
    /// learns why the stream ended.
    ///
    /// Batching: when the producer has several items ready at once (it yields again without
    /// waiting), they go in one message, up to
    /// [`max_batch_items`](RelayConfig::with_max_batch_items) and
    /// [`max_batch_bytes`](RelayConfig::with_max_batch_bytes); a terminal item may end a
    /// batch. The publisher never waits for a batch to fill: an item that comes alone is sent
    /// alone, at once, so a token stream sees no added latency. Consumers read the items one
    /// by one, each with its own [position](RemoteStream::position).
    ///
    /// Flow control: the producer is pulled only while fewer than
    /// [`max_in_flight`](RelayConfig::with_max_in_flight) items (items, not messages) await
    /// JetStream's acknowledgement, so a slow or stalled broker slows the producer down
    /// instead of growing memory. A message whose acknowledgement does not come is sent again
    /// with the same items (JetStream stores it once); after
    /// [`stall_timeout`](RelayConfig::with_stall_timeout) without any acknowledgement the
    /// publish gives up. Nothing is sent while the client is disconnected, and after a
    /// reconnect the unacknowledged messages are sent again, in order, before any new one, so
    /// that a restarted broker keeps the stream's order.
    ///
    /// Each item is stored as it is: events as events, the producer's terminal `Err` as a
    /// terminal error (code, op, message and causes), and a producer that ends without a
    /// terminal item ends the remote stream the same way. An event that cannot be serialized
    /// ends the stream with an `invalid_input` error.
    ///
    /// Returns what was published ([`Published`]). Fails with `invalid_input` for a bad id or
    /// an id already published, and `provider_unavailable` when JetStream cannot be reached
    /// or stops acknowledging; the producer has been dropped then too.
    ///
    /// ```no_run
    /// use beluga_core::{Context, stream};
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let ctx = Context::new().with_request_id("req-7");
    /// // Two `data` events, then `done`.
    /// let published = relay.publish(&ctx, "req-7", |_ctx| stream::iter([1_u32, 2])).await?;
    /// assert_eq!(published.items(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish<T, S, F>(
        &self,
        ctx: &Context,
        id: &str,
        make: F,
    ) -> Result<Published, Error>
    where
        T: Serialize,
        S: Stream<Item = Result<Event<T>, Error>>,
        F: FnOnce(Context) -> S,
    {
        wire::check_id(id)?;
        publish::run(&self.inner, ctx, id, make).await
    }

    /// Consumes the stream published under `id`, from `position`, as an ordinary event stream.
    ///
    /// Every item comes once and in order, then the one terminal item (or the end, for a
    /// producer that ended without one), then `None`. The stream may be subscribed to before
    /// or after its publisher starts, and by any number of consumers, each with its own
    /// position. See [`RemoteStream`] for the errors it ends with and for resuming.
    ///
    /// `position` is [`Position::Start`] or the [position](RemoteStream::position) of an item
    /// read earlier (from an SSE `Last-Event-ID`: [`Position::from_last_event_id`]): the stream goes on with the item after
    /// it, also when that item is in the middle of a message of several.
    ///
    /// Fails with `invalid_input` for a bad id or a position with sequence 0 and an index,
    /// `not_found` when resuming from a position that is not an item of this stream (or has
    /// expired), and `provider_unavailable` when JetStream cannot be reached.
    ///
    /// ```no_run
    /// use beluga_nats::Position;
    /// use futures_util::StreamExt;
    /// # async fn demo(relay: beluga_nats::Relay, last_event_id: Option<&str>) -> Result<(), beluga_core::Error> {
    /// // From the start, or after the event an SSE client saw last.
    /// let from = Position::from_last_event_id("req-7", last_event_id)?;
    /// let mut answer = relay.subscribe::<String>("req-7", from).await?.with_ids();
    /// while let Some((event_id, item)) = answer.next().await {
    ///     // `event_id` (`req-7:812.3`) is the SSE event id of `item`.
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        id: &str,
        position: Position,
    ) -> Result<RemoteStream<T>, Error> {
        wire::check_id(id)?;
        subscribe::open(self, id, position).await
    }

    /// Cancels the stream published under `id`: its publisher cancels the producer's
    /// [`Context`], drops the producer, and ends the stream with a `cancelled` error for every
    /// consumer.
    ///
    /// The cancel is stored in JetStream before this returns, so it also reaches a publisher
    /// that has not started yet. Cancelling a stream that has ended does nothing.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// relay.cancel("req-7").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cancel(&self, id: &str) -> Result<(), Error> {
        wire::check_id(id)?;
        let subject = self.inner.config.cancel_subject(id);
        let ack = self
            .inner
            .js
            .publish(subject, "cancel".into())
            .await
            .map_err(|e| unavailable("nats.cancel", "cannot send the cancel", e))?;
        ack.await
            .map_err(|e| unavailable("nats.cancel", "JetStream did not store the cancel", e))?;
        Ok(())
    }
}

/// Whether a cancel for `id` is stored.
pub(crate) async fn cancel_requested(inner: &Inner, id: &str) -> Result<bool, Error> {
    let subject = inner.config.cancel_subject(id);
    match inner.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
        Err(e) => Err(unavailable(
            "nats.publish",
            "cannot read the stream's cancel subject",
            e,
        )),
    }
}
