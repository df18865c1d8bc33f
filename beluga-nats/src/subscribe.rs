//! The consumer: a JetStream ordered consumer read as an ordinary event stream, with the index
//! check that turns a lost item into an error and the idle timeout that turns a dead producer
//! into one.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig, OrderedErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use beluga_core::{Error, ErrorCode, Event, EventResult};
use futures_util::future::BoxFuture;
use futures_util::stream::FusedStream;
use futures_util::{Stream, StreamExt};
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::sync::oneshot;
use tokio::time::{Instant, Interval, Sleep};

use crate::relay::{Relay, unavailable};
use crate::wire::{self, ItemKind};

/// Where a [`subscribe`](Relay::subscribe) starts reading.
///
/// ```
/// use beluga_nats::Position;
///
/// // An SSE client reconnecting with `Last-Event-ID: 1234`.
/// let last_event_id = "1234";
/// let position = last_event_id.parse().map_or(Position::Start, Position::After);
/// assert_eq!(position, Position::After(1234));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Position {
    /// From the first item.
    #[default]
    Start,
    /// After the item with this JetStream sequence (a [`RemoteStream::last_sequence`] seen
    /// earlier, the SSE `Last-Event-ID`): the next item, no gap and no duplicate. JetStream
    /// counts from 1, so `After(0)` is [`Start`](Position::Start), as SSE position 0 is
    /// "before the first event".
    After(u64),
}

/// An event stream published on another machine, read through JetStream: the stream of
/// [`Relay::subscribe`].
///
/// It yields the producer's items once each and in order, then its terminal item (a `done`
/// event or an `Err`, with the error's code, op, message and causes as the producer had them),
/// then `None` forever. Where the remote stream cannot be read whole, it ends with an error,
/// never silently:
///
/// * `timeout` when neither an item nor the publisher's heartbeat came for the
///   [idle timeout](crate::RelayConfig::with_idle_timeout) (the producer died without a terminal
///   item, never started, or the broker is unreachable); a producer that is merely slow keeps
///   its consumers waiting as long as it runs;
/// * `not_found` when an item is missing (removed by the stream's age or count limits before
///   it was read, or lost while the broker restarted);
/// * `provider_unavailable` when JetStream refuses to deliver;
/// * `invalid_input` when an item does not decode as `Event<T>`.
///
/// [`last_sequence`](RemoteStream::last_sequence) is the JetStream sequence of the item just
/// yielded: an SSE server sends it as the event id, and a consumer that restarts passes it
/// back as [`Position::After`]. Dropping the stream detaches this consumer (which matters to
/// [`CancelPolicy::WhenUnwatched`](crate::CancelPolicy::WhenUnwatched)) and leaves the producer
/// running; [`cancel`](RemoteStream::cancel) stops it.
#[must_use = "streams do nothing unless polled"]
pub struct RemoteStream<T> {
    messages: Option<Ordered>,
    /// A new consumer being created, after the connection to the broker came back.
    reopen: Option<BoxFuture<'static, Ordered>>,
    /// Where a new consumer starts when no item has been read yet.
    start: DeliverPolicy,
    subject: String,
    /// The client's connection count when the consumer was created.
    connects: u64,
    reconnect_check: Interval,
    /// The publisher's heartbeats: each one resets the idle timeout.
    alive: Option<async_nats::Subscriber>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    next_index: u64,
    last_sequence: Option<u64>,
    done: bool,
    id: String,
    relay: Relay,
    /// Dropping it tells the presence task to send a detach and end.
    presence: Option<oneshot::Sender<()>>,
    items: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for RemoteStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStream")
            .field("id", &self.id)
            .field("next_index", &self.next_index)
            .field("last_sequence", &self.last_sequence)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn not_found(message: String) -> Error {
    Error::new(ErrorCode::NotFound, message).with_op("nats.subscribe")
}

pub(crate) async fn open<T: DeserializeOwned>(
    relay: &Relay,
    id: &str,
    position: Position,
) -> Result<RemoteStream<T>, Error> {
    let inner = &relay.inner;
    let config = &inner.config;
    let subject = config.items_subject(id);
    let position = match position {
        Position::After(0) => Position::Start,
        other => other,
    };
    let (deliver_policy, next_index, ended) = match position {
        Position::Start => (DeliverPolicy::All, 0, false),
        Position::After(sequence) => {
            let message = match inner.stream.get_raw_message(sequence).await {
                Ok(message) => message,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Err(not_found(format!(
                        "position {sequence} of stream `{id}` is not stored: it expired or never \
                         existed"
                    )));
                }
                Err(e) => {
                    return Err(unavailable(
                        "nats.subscribe",
                        "cannot read the resume position",
                        e,
                    ));
                }
            };
            if message.subject.as_str() != subject {
                return Err(not_found(format!(
                    "position {sequence} is not an item of stream `{id}`"
                )));
            }
            let index = wire::index(Some(&message.headers))?;
            let ended = match wire::kind(Some(&message.headers))? {
                ItemKind::Event => serde_json::from_slice::<Event<IgnoredAny>>(&message.payload)
                    .is_ok_and(|ev| ev.is_done()),
                ItemKind::Error | ItemKind::End => true,
            };
            (
                DeliverPolicy::ByStartSequence {
                    start_sequence: sequence + 1,
                },
                index + 1,
                ended,
            )
        }
    };

    let mut stream = RemoteStream {
        messages: None,
        reopen: None,
        start: deliver_policy,
        subject: subject.clone(),
        connects: inner.client.statistics().connects.load(Ordering::Relaxed),
        reconnect_check: tokio::time::interval(RECONNECT_CHECK),
        alive: None,
        idle: Box::pin(tokio::time::sleep(config.idle_timeout())),
        idle_timeout: config.idle_timeout(),
        next_index,
        last_sequence: match position {
            Position::Start => None,
            Position::After(sequence) => Some(sequence),
        },
        done: ended,
        id: id.to_owned(),
        relay: relay.clone(),
        presence: None,
        items: PhantomData,
    };
    if ended {
        return Ok(stream);
    }

    // Listen for the publisher's heartbeats before reading, so none falls in between.
    stream.alive = Some(
        inner
            .client
            .subscribe(config.alive_subject(id))
            .await
            .map_err(|e| unavailable("nats.subscribe", "cannot listen for the publisher", e))?,
    );
    let messages = consume(relay.clone(), subject, deliver_policy).await?;
    stream.messages = Some(messages);
    stream.presence = Some(spawn_presence(relay, id));
    Ok(stream)
}

/// How often a consumer checks whether its client has reconnected to the broker.
const RECONNECT_CHECK: Duration = Duration::from_millis(250);

/// A JetStream ordered push consumer of `subject` from `policy`: JetStream flow-controls it,
/// and the client recreates it from the last delivered item when heartbeats stop.
async fn consume(relay: Relay, subject: String, policy: DeliverPolicy) -> Result<Ordered, Error> {
    let inner = &relay.inner;
    let consumer = inner
        .stream
        .create_consumer(OrderedConfig {
            deliver_subject: inner.client.new_inbox(),
            filter_subject: subject,
            deliver_policy: policy,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| unavailable("nats.subscribe", "cannot create a JetStream consumer", e))?;
    consumer
        .messages()
        .await
        .map_err(|e| unavailable("nats.subscribe", "cannot read from JetStream", e))
}

/// [`consume`] again until it works (a restarted broker may need a moment for JetStream); the
/// stream's idle timeout bounds the attempts.
async fn reconsume(relay: Relay, subject: String, policy: DeliverPolicy) -> Ordered {
    let mut pause = Duration::from_millis(50);
    loop {
        if let Ok(messages) = consume(relay.clone(), subject.clone(), policy).await {
            return messages;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Tells the publisher, every presence interval, that this consumer is attached, and that it
/// has left once the returned sender is dropped.
fn spawn_presence(relay: &Relay, id: &str) -> oneshot::Sender<()> {
    let (leave, mut left) = oneshot::channel::<()>();
    let client = relay.inner.client.clone();
    let subject = relay.inner.config.presence_subject(id);
    let uid = client.new_inbox();
    let mut tick = tokio::time::interval(relay.inner.config.presence_interval());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut left => {
                    // Best effort: a consumer that cannot say goodbye times out instead.
                    let _ = client.publish(subject, format!("-{uid}").into()).await;
                    let _ = client.flush().await;
                    return;
                }
                _ = tick.tick() => {
                    let _ = client.publish(subject.clone(), format!("+{uid}").into()).await;
                }
            }
        }
    });
    leave
}

impl<T> RemoteStream<T> {
    /// The stream's id.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let s = relay.subscribe::<String>("req-7", beluga_nats::Position::Start).await?;
    /// assert_eq!(s.id(), "req-7");
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The JetStream sequence of the last item yielded (the position it was resumed from
    /// before the first): the SSE event id, and what [`Position::After`] takes to resume.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let mut s = relay.subscribe::<String>("req-7", beluga_nats::Position::Start).await?;
    /// if let Some(_item) = s.next().await {
    ///     let event_id = s.last_sequence().expect("an item was read");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// Cancels the remote producer (see [`Relay::cancel`]). This stream goes on to its
    /// terminal item, the publisher's `cancelled` error unless the producer finished first.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let s = relay.subscribe::<String>("req-7", beluga_nats::Position::Start).await?;
    /// s.cancel().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cancel(&self) -> Result<(), Error> {
        self.relay.cancel(&self.id).await
    }

    /// Ends the stream: the consumer and the presence task go at once.
    fn finish(&mut self) {
        self.done = true;
        self.messages = None;
        self.reopen = None;
        self.presence = None;
        self.alive = None;
    }

    /// After the client reconnected (a restarted broker has lost its consumers), starts a new
    /// consumer right after the last item read.
    fn check_reconnect(&mut self, cx: &mut TaskContext<'_>) {
        while self.reconnect_check.poll_tick(cx).is_ready() {
            let client = &self.relay.inner.client;
            let connects = client.statistics().connects.load(Ordering::Relaxed);
            if connects != self.connects {
                self.connects = connects;
                let policy = match self.last_sequence {
                    Some(sequence) => DeliverPolicy::ByStartSequence {
                        start_sequence: sequence + 1,
                    },
                    None => self.start,
                };
                self.messages = None;
                self.reopen = Some(Box::pin(reconsume(
                    self.relay.clone(),
                    self.subject.clone(),
                    policy,
                )));
            }
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<EventResult<T>>> {
        self.finish();
        Poll::Ready(Some(Err(err)))
    }
}

impl<T: DeserializeOwned> RemoteStream<T> {
    /// What a received message means: `None` to skip it (an item already yielded).
    fn accept(
        &mut self,
        message: &async_nats::jetstream::Message,
    ) -> Option<Poll<Option<EventResult<T>>>> {
        let headers = message.headers.as_ref();
        let index = match wire::index(headers) {
            Ok(index) => index,
            Err(err) => return Some(self.fail(err)),
        };
        if index < self.next_index {
            return None;
        }
        if index > self.next_index {
            let err = not_found(format!(
                "items {}..{index} of stream `{}` are missing: removed by the stream's age or \
                 count limits before they were read, or lost while the broker restarted",
                self.next_index, self.id
            ));
            return Some(self.fail(err));
        }
        let item = match wire::decode::<T>(headers, &message.payload) {
            Ok(decoded) => decoded,
            Err(err) => return Some(self.fail(err)),
        };
        self.next_index += 1;
        if let Ok(info) = message.info() {
            self.last_sequence = Some(info.stream_sequence);
        }
        let terminal = match &item {
            None | Some(Err(_)) => true,
            Some(Ok(event)) => event.is_done(),
        };
        if terminal {
            self.finish();
        }
        Some(Poll::Ready(item))
    }
}

impl<T: DeserializeOwned> Stream for RemoteStream<T> {
    type Item = Result<Event<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        this.check_reconnect(cx);
        if let Some(reopen) = this.reopen.as_mut()
            && let Poll::Ready(messages) = reopen.as_mut().poll(cx)
        {
            this.reopen = None;
            this.messages = Some(messages);
        }
        while let Some(messages) = this.messages.as_mut() {
            match messages.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                    if let Some(poll) = this.accept(&message) {
                        return poll;
                    }
                }
                // Transient: the consumer is recreated on the next poll.
                Poll::Ready(Some(Err(e))) if e.kind() == OrderedErrorKind::MissingHeartbeat => {}
                Poll::Ready(Some(Err(e))) => {
                    let err = unavailable("nats.subscribe", "JetStream stopped delivering", e);
                    return this.fail(err);
                }
                Poll::Ready(None) => {
                    let err = Error::new(
                        ErrorCode::ProviderUnavailable,
                        "the JetStream consumer closed before the stream's terminal item",
                    )
                    .with_op("nats.subscribe");
                    return this.fail(err);
                }
                Poll::Pending => break,
            }
        }
        let mut heard = false;
        while let Some(alive) = this.alive.as_mut() {
            match alive.poll_next_unpin(cx) {
                Poll::Ready(Some(_)) => heard = true,
                Poll::Ready(None) => this.alive = None,
                Poll::Pending => break,
            }
        }
        if heard {
            let deadline = Instant::now() + this.idle_timeout;
            this.idle.as_mut().reset(deadline);
        }
        if this.idle.as_mut().poll(cx).is_ready() {
            let err = Error::new(
                ErrorCode::Timeout,
                format!(
                    "no item of stream `{}` and no sign of its publisher for {:?}: the producer \
                     stopped without a terminal item, has not started, or the broker is \
                     unreachable",
                    this.id, this.idle_timeout
                ),
            )
            .with_op("nats.subscribe");
            return this.fail(err);
        }
        Poll::Pending
    }
}

impl<T: DeserializeOwned> FusedStream for RemoteStream<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}
