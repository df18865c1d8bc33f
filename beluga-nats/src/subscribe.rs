//! The consumer: a JetStream ordered consumer read as an ordinary event stream, with the index
//! check that turns a lost item into an error and the idle timeout that turns a dead producer
//! into one.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig, OrderedErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use beluga_core::{Error, ErrorCode, Event, EventResult};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FusedStream;
use futures_util::{Stream, StreamExt};
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::sync::oneshot;
use tokio::time::{Instant, Interval, Sleep};

use crate::relay::{Inner, Relay, unavailable};
use crate::wire::{self, ItemKind};

/// Where an item of a relayed stream is, and where a [`subscribe`](Relay::subscribe) starts
/// reading: from the start, or right after an item.
///
/// An item is named by the JetStream sequence of the message that holds it and its index in
/// that message (several items ready together travel in one message, see
/// [`max_batch_items`](crate::RelayConfig::with_max_batch_items)).
/// [`RemoteStream::position`] gives the position of each item read; a consumer that restarts
/// passes it back and goes on with the next item, no gap and no duplicate, also from the middle
/// of a message.
///
/// Its string form, after the stream's id, is the SSE event id ([`ItemId`](crate::ItemId),
/// `req-1:1234.3`: the `Last-Event-ID` a client sends back): `0` for the start, `<sequence>` for the first item of a message, `<sequence>.<index>` for another one
/// (`1234.3`: the fourth item of message 1234; not a decimal number). Parsing accepts exactly
/// that (digits only, no sign or spaces) and fails with `invalid_input` otherwise, and what it
/// returns prints back as the same position. Positions written before messages held several
/// items are plain sequences, and read as index 0 of their message: the item they named.
///
/// ```
/// use beluga_nats::Position;
///
/// // The position in an SSE client's `Last-Event-ID: req-1:1234.3`.
/// let position: Position = "1234.3".parse().unwrap();
/// assert_eq!(position, Position::After { sequence: 1234, index: 3 });
/// assert_eq!(position.to_string(), "1234.3");
/// assert_eq!("1234".parse::<Position>().unwrap(), Position::After { sequence: 1234, index: 0 });
/// assert_eq!("0".parse::<Position>().unwrap(), Position::Start);
/// assert_eq!(Position::Start.to_string(), "0");
///
/// let err = "12.x".parse::<Position>().unwrap_err();
/// assert_eq!(err.code(), beluga_core::ErrorCode::InvalidInput);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Position {
    /// From the first item (string form `0`, as SSE position 0 is "before the first event").
    #[default]
    Start,
    /// After the item at `index` of the message with JetStream sequence `sequence`: the next
    /// item, no gap and no duplicate. JetStream counts from 1: `After { sequence: 0, index: 0 }`
    /// is [`Start`](Position::Start).
    After {
        /// The JetStream sequence of the message holding the item.
        sequence: u64,
        /// The item's index in that message, from 0.
        index: u32,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Position::Start => f.write_str("0"),
            Position::After { sequence, index: 0 } => write!(f, "{sequence}"),
            Position::After { sequence, index } => write!(f, "{sequence}.{index}"),
        }
    }
}

impl FromStr for Position {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            let shown: String = s.chars().take(64).collect();
            let more = if shown.len() < s.len() { "…" } else { "" };
            Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "{shown:?}{more} is not a stream position ({why}): expected `0`, \
                     `<sequence>` or `<sequence>.<index>`, in decimal digits"
                ),
            )
            .with_op("nats.position")
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let (sequence, index) = match s.split_once('.') {
            Some((sequence, index)) => (sequence, Some(index)),
            None => (s, None),
        };
        if !digits(sequence) || index.is_some_and(|i| !digits(i)) {
            return Err(bad("not digits"));
        }
        let sequence: u64 = sequence
            .parse()
            .map_err(|_| bad("the sequence is too large"))?;
        let index: u32 = index
            .map_or(Ok(0), str::parse)
            .map_err(|_| bad("the index is too large"))?;
        match (sequence, index) {
            (0, 0) => Ok(Position::Start),
            (0, _) => Err(bad("sequence 0 is the start, which has no index")),
            (sequence, index) => Ok(Position::After { sequence, index }),
        }
    }
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
/// [`position`](RemoteStream::position) is the position of the item just yielded: an SSE
/// server sends it in the event id ([`with_ids`](RemoteStream::with_ids)), and a consumer that restarts passes it back to
/// [`Relay::subscribe`]. Messages that hold several items are read one item at a time, each
/// with its own position. Dropping the stream detaches this consumer (which matters to
/// [`CancelPolicy::WhenUnwatched`](crate::CancelPolicy::WhenUnwatched)) and leaves the producer
/// running; [`cancel`](RemoteStream::cancel) stops it.
#[must_use = "streams do nothing unless polled"]
pub struct RemoteStream<T> {
    messages: Option<Ordered>,
    /// A new consumer being created, after the connection to the broker came back.
    reopen: Option<BoxFuture<'static, Ordered>>,
    /// Where a new consumer starts: after the last message taken (its remaining items are in
    /// `batch`), or where the stream was opened.
    resume_from: DeliverPolicy,
    /// The message being read, with items still to yield.
    batch: Option<Batch>,
    subject: String,
    /// The client's connection count when the consumer was created.
    connects: u64,
    reconnect_check: Interval,
    /// The publisher's heartbeats: each one resets the idle timeout.
    alive: Option<async_nats::Subscriber>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    next_index: u64,
    position: Position,
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
            .field("position", &self.position)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A message taken from the consumer, read one item at a time.
struct Batch {
    payload: Bytes,
    header: wire::Header,
    sequence: u64,
    /// The index in the message of the next item to yield.
    offset: u32,
    /// Where that item's body starts in `payload`.
    start: usize,
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
        Position::After {
            sequence: 0,
            index: 0,
        } => Position::Start,
        Position::After { sequence: 0, .. } => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("position {position} names no item: JetStream sequences start at 1"),
            )
            .with_op("nats.subscribe"));
        }
        other => other,
    };
    let (deliver_policy, next_index, ended) = match position {
        Position::After { sequence, index } => {
            resume_point(inner, id, &subject, position, sequence, index).await?
        }
        _ => (DeliverPolicy::All, 0, false),
    };

    let mut stream = RemoteStream {
        messages: None,
        reopen: None,
        resume_from: deliver_policy,
        batch: None,
        subject: subject.clone(),
        connects: inner.client.statistics().connects.load(Ordering::Relaxed),
        reconnect_check: tokio::time::interval(RECONNECT_CHECK),
        alive: None,
        idle: Box::pin(tokio::time::sleep(config.idle_timeout())),
        idle_timeout: config.idle_timeout(),
        next_index,
        position,
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

/// Where a stream resumed after item `index` of message `sequence` starts: the consumer's
/// policy, the stream index of the next item, and whether that item was the terminal one.
async fn resume_point(
    inner: &Inner,
    id: &str,
    subject: &str,
    position: Position,
    sequence: u64,
    index: u32,
) -> Result<(DeliverPolicy, u64, bool), Error> {
    let message = match inner.stream.get_raw_message(sequence).await {
        Ok(message) => message,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Err(not_found(format!(
                "position {position} of stream `{id}` is not stored: it expired or never \
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
            "position {position} is not an item of stream `{id}`"
        )));
    }
    let header = wire::header(Some(&message.headers))?;
    if index >= header.count {
        return Err(not_found(format!(
            "position {position} is not an item of stream `{id}`: message {sequence} \
             holds {} item(s)",
            header.count
        )));
    }
    let last = index + 1 == header.count;
    let ended = last
        && match header.last {
            // The last item's body is the last line.
            ItemKind::Event => message
                .payload
                .rsplit(|&b| b == b'\n')
                .next()
                .and_then(|body| serde_json::from_slice::<Event<IgnoredAny>>(body).ok())
                .is_some_and(|ev| ev.is_done()),
            ItemKind::Error | ItemKind::End => true,
        };
    // The rest of a message read from its middle comes with it again: the items
    // already read are skipped by their index.
    let start_sequence = if last { sequence + 1 } else { sequence };
    Ok((
        DeliverPolicy::ByStartSequence { start_sequence },
        header.first + u64::from(index) + 1,
        ended,
    ))
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

    /// The position of the last item yielded (before the first, the position the stream was
    /// opened at): in the SSE event id of that item ([`with_ids`](RemoteStream::with_ids)), and what [`Relay::subscribe`] takes to go on
    /// with the next one.
    ///
    /// ```no_run
    /// use beluga_nats::Position;
    /// use futures_util::StreamExt;
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let mut s = relay.subscribe::<String>("req-7", Position::Start).await?;
    /// if let Some(_item) = s.next().await {
    ///     let event_id = s.position().to_string(); // e.g. `1234` or `1234.3`
    ///     // Later, maybe in another process: the items after that one.
    ///     let rest = relay.subscribe::<String>("req-7", event_id.parse()?).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn position(&self) -> Position {
        self.position
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
        self.batch = None;
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
                self.messages = None;
                self.reopen = Some(Box::pin(reconsume(
                    self.relay.clone(),
                    self.subject.clone(),
                    self.resume_from,
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
    /// Takes a received message: `None` to skip it (its items were all yielded), else its
    /// first item not yielded yet.
    fn accept(
        &mut self,
        message: &async_nats::jetstream::Message,
    ) -> Option<Poll<Option<EventResult<T>>>> {
        let header = match wire::header(message.headers.as_ref()) {
            Ok(header) => header,
            Err(err) => return Some(self.fail(err)),
        };
        if header.first + u64::from(header.count) <= self.next_index {
            return None;
        }
        if header.first > self.next_index {
            let err = not_found(format!(
                "items {}..{} of stream `{}` are missing: removed by the stream's age or \
                 count limits before they were read, or lost while the broker restarted",
                self.next_index, header.first, self.id
            ));
            return Some(self.fail(err));
        }
        let sequence = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => {
                let err = Error::new(
                    ErrorCode::Internal,
                    format!("a message of this stream came without its JetStream sequence: {e}"),
                )
                .with_op("nats.subscribe");
                return Some(self.fail(err));
            }
        };
        // Items before `next_index` were yielded (from an earlier delivery of this message, or
        // before the position the stream resumed from): skip them.
        let skip = u32::try_from(self.next_index - header.first).unwrap_or(u32::MAX);
        let mut start = 0;
        for offset in 0..skip {
            match wire::item_at(&message.payload, start, offset, header.count) {
                Ok((_, next)) => start = next,
                Err(err) => return Some(self.fail(err)),
            }
        }
        self.batch = Some(Batch {
            payload: message.payload.clone(),
            header,
            sequence,
            offset: skip,
            start,
        });
        // Whatever happens to the connection now, this message's other items are in `batch`.
        self.resume_from = DeliverPolicy::ByStartSequence {
            start_sequence: sequence + 1,
        };
        self.next_item()
    }

    /// The next item of the message being read, if any.
    fn next_item(&mut self) -> Option<Poll<Option<EventResult<T>>>> {
        let batch = self.batch.as_mut()?;
        let offset = batch.offset;
        let header = batch.header;
        let decoded = wire::item_at(&batch.payload, batch.start, offset, header.count).and_then(
            |(body, next)| {
                let index = header.first + u64::from(offset);
                let item = wire::decode::<T>(header.kind_at(offset), index, body)?;
                Ok((item, next))
            },
        );
        let (item, next) = match decoded {
            Ok(decoded) => decoded,
            Err(err) => return Some(self.fail(err)),
        };
        self.position = Position::After {
            sequence: batch.sequence,
            index: offset,
        };
        if offset + 1 == header.count {
            self.batch = None;
        } else {
            batch.offset += 1;
            batch.start = next;
        }
        self.next_index += 1;
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
        if let Some(poll) = this.next_item() {
            return poll;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_back() {
        let cases = [
            ("0", Position::Start),
            (
                "1",
                Position::After {
                    sequence: 1,
                    index: 0,
                },
            ),
            (
                "1234.3",
                Position::After {
                    sequence: 1234,
                    index: 3,
                },
            ),
            (
                "18446744073709551615.4294967295",
                Position::After {
                    sequence: u64::MAX,
                    index: u32::MAX,
                },
            ),
        ];
        for (text, position) in cases {
            assert_eq!(text.parse::<Position>().unwrap(), position, "{text}");
            assert_eq!(position.to_string(), text);
        }
        // A position written before batching is a plain sequence: index 0 of its message.
        assert_eq!(
            "77".parse::<Position>().unwrap(),
            Position::After {
                sequence: 77,
                index: 0
            }
        );
        // Not canonical, still read; printed in the canonical form.
        assert_eq!("12.0".parse::<Position>().unwrap().to_string(), "12");
        assert_eq!(
            Position::After {
                sequence: 0,
                index: 0
            }
            .to_string(),
            "0"
        );
    }

    #[test]
    fn a_bad_position_is_a_clear_invalid_input_error() {
        let long = "9".repeat(500);
        for bad in [
            "",
            " 12",
            "12 ",
            "+12",
            "-1",
            "12.",
            ".3",
            "1.2.3",
            "abc",
            "req-1:12",
            "0.3",
            "18446744073709551616",
            "12.4294967296",
            &long,
        ] {
            let err = bad.parse::<Position>().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad:?}");
            assert!(
                err.message().contains("is not a stream position"),
                "{bad:?}: {err}"
            );
            assert!(err.message().len() < 250, "{bad:?}: {err}");
        }
        let err = "0.3".parse::<Position>().unwrap_err();
        assert!(err.message().contains("sequence 0 is the start"), "{err}");
    }
}
