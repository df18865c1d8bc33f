//! The publisher: pulls the producer no faster than JetStream acknowledges, listens for cancels
//! and for consumers' presence, sends the items the producer has ready together in one message,
//! and stores one terminal item whatever happens.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use beluga_core::{Context, Error, ErrorCode, Event};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::CancelPolicy;
use crate::relay::{Inner, cancel_requested, unavailable};
use crate::wire::{self, Encoded, ItemKind};

/// How long to wait before sending again when a send could not even be queued.
const RESEND_PAUSE: Duration = Duration::from_millis(50);

/// How often a disconnected publisher looks whether the client is connected again.
const RECONNECT_POLL: Duration = Duration::from_millis(10);

/// What a [`publish`](crate::Relay::publish) stored.
///
/// ```no_run
/// use beluga_core::{Context, Event};
/// use beluga_nats::Ending;
/// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
/// let answer = [Ok(Event::done_with(42_u32))];
/// let published = relay
///     .publish(&Context::new(), "req-8", |_| futures_util::stream::iter(answer))
///     .await?;
/// assert_eq!(published.items(), 1);
/// assert_eq!(published.ending(), &Ending::Done);
/// assert!(published.last_sequence().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    items: u64,
    messages: u64,
    first_sequence: Option<u64>,
    last_sequence: Option<u64>,
    ending: Ending,
}

impl Published {
    /// How many items were stored, the terminal one (or the end marker) included.
    ///
    /// ```no_run
    /// # fn demo(p: beluga_nats::Published) { let n: u64 = p.items(); }
    /// ```
    pub fn items(&self) -> u64 {
        self.items
    }

    /// How many JetStream messages held them: fewer than [`items`](Published::items) when
    /// items ready together were [batched](crate::RelayConfig::with_max_batch_items).
    ///
    /// ```no_run
    /// # fn demo(p: beluga_nats::Published) { assert!(p.messages() <= p.items()); }
    /// ```
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The JetStream sequence of the message holding the first item.
    ///
    /// ```no_run
    /// # fn demo(p: beluga_nats::Published) { let first: Option<u64> = p.first_sequence(); }
    /// ```
    pub fn first_sequence(&self) -> Option<u64> {
        self.first_sequence
    }

    /// The JetStream sequence of the message holding the last item.
    ///
    /// ```no_run
    /// # fn demo(p: beluga_nats::Published) { let last: Option<u64> = p.last_sequence(); }
    /// ```
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// How the stream ended.
    ///
    /// ```no_run
    /// # fn demo(p: beluga_nats::Published) {
    /// if let beluga_nats::Ending::Failed(err) = p.ending() { eprintln!("{err:#}") }
    /// # }
    /// ```
    pub fn ending(&self) -> &Ending {
        &self.ending
    }
}

/// How a published stream ended.
///
/// ```
/// use beluga_nats::Ending;
/// assert_ne!(Ending::Done, Ending::CancelledByConsumer);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Ending {
    /// The producer ended with a `done` event.
    Done,
    /// The producer ended with this terminal error (a cancelled `ctx` included).
    Failed(Error),
    /// The producer's stream ended without a terminal item.
    Ended,
    /// A consumer cancelled the stream.
    CancelledByConsumer,
    /// No consumer was attached for as long as [`CancelPolicy::WhenUnwatched`] allows.
    Unwatched,
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// A message sent and not yet acknowledged: its items, kept to send it again unchanged.
struct InFlight {
    /// The stream index of its first item.
    first: u64,
    count: usize,
    last: ItemKind,
    body: Bytes,
    ack: AckFuture,
    /// The client's connection count when it was sent.
    epoch: u64,
}

fn connects(inner: &Inner) -> u64 {
    inner.client.statistics().connects.load(Ordering::Relaxed)
}

/// Where a publish sends its messages.
struct Target<'a> {
    inner: &'a Inner,
    subject: &'a str,
    msg_id: &'a str,
}

impl Target<'_> {
    /// Sends a message of `count` items from `first` on; one that could not be queued comes
    /// back as a failed acknowledgement after a short pause, so the ack path retries it like
    /// any other.
    async fn send(&self, first: u64, count: usize, last: ItemKind, body: Bytes) -> InFlight {
        let epoch = connects(self.inner);
        let mut message = PublishMessage::build()
            .payload(body.clone())
            .headers(wire::headers(self.msg_id, first, count, last));
        if first == 0 {
            // Only one publisher per id: the first item is refused when the subject has items.
            message = message.expected_last_subject_sequence(0);
        }
        let ack: AckFuture = match self
            .inner
            .js
            .send_publish(self.subject.to_owned(), message)
            .await
        {
            Ok(ack) => ack.into_future(),
            Err(err) => Box::pin(async move {
                tokio::time::sleep(RESEND_PAUSE).await;
                Err(err)
            }),
        };
        InFlight {
            first,
            count,
            last,
            body,
            ack,
            epoch,
        }
    }

    /// Sends `entry` again, unchanged: same items, same `Nats-Msg-Id`.
    fn resend(&self, entry: &InFlight) -> impl Future<Output = InFlight> + Send + '_ {
        // The future does not borrow `entry`: an ack future is not `Sync`.
        self.send(entry.first, entry.count, entry.last, entry.body.clone())
    }

    /// Sends `batch` as one message, its first item at `first`.
    async fn send_batch(&self, first: u64, batch: &[Staged]) -> InFlight {
        let bodies: Vec<Bytes> = batch.iter().map(|s| s.body.clone()).collect();
        let last = batch.last().map_or(ItemKind::Event, |s| s.kind);
        self.send(first, batch.len(), last, wire::body(&bodies))
            .await
    }
}

/// An item pulled from the producer and encoded, waiting to be sent.
struct Staged {
    body: Bytes,
    kind: ItemKind,
    /// How the stream ends, for its terminal item.
    ending: Option<Ending>,
}

fn stage<T: Serialize>(item: Option<Result<Event<T>, Error>>) -> Staged {
    let Encoded {
        kind,
        body,
        terminal,
        unsendable,
    } = wire::encode(item.as_ref());
    let ending = terminal.then(|| match (item, unsendable) {
        (_, Some(err)) | (Some(Err(err)), None) => Ending::Failed(err),
        (None, None) => Ending::Ended,
        (Some(Ok(_)), None) => Ending::Done,
    });
    Staged { body, kind, ending }
}

/// Pulls what the producer has ready now, without waiting: at least one item (else
/// `Pending`), at most `max_items`, and no more than `max_bytes` of bodies unless the first
/// is larger alone. An item that would overflow the batch is kept in `carry` for the next one;
/// a terminal item ends the batch and drops the producer.
fn poll_batch<T, S>(
    source: &mut Option<Pin<Box<S>>>,
    carry: &mut Option<Staged>,
    max_items: usize,
    max_bytes: usize,
    cx: &mut TaskContext<'_>,
) -> Poll<Vec<Staged>>
where
    T: Serialize,
    S: Stream<Item = Result<Event<T>, Error>> + ?Sized,
{
    let mut batch: Vec<Staged> = Vec::new();
    let mut bytes = 0;
    if let Some(staged) = carry.take() {
        bytes = staged.body.len();
        batch.push(staged);
    }
    while batch.len() < max_items && batch.last().is_none_or(|s| s.ending.is_none()) {
        let Some(producer) = source.as_mut() else {
            break;
        };
        let Poll::Ready(item) = producer.as_mut().poll_next(cx) else {
            break;
        };
        let staged = stage(item);
        if staged.ending.is_some() {
            *source = None;
        }
        // Bodies are joined by one byte.
        let joined = bytes + 1 + staged.body.len();
        if !batch.is_empty() && joined > max_bytes {
            *carry = Some(staged);
            break;
        }
        bytes = if batch.is_empty() {
            staged.body.len()
        } else {
            joined
        };
        batch.push(staged);
    }
    if batch.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(batch)
    }
}

fn poll_front(
    window: &mut VecDeque<InFlight>,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<PublishAck, PublishError>> {
    match window.front_mut() {
        Some(front) => front.ack.as_mut().poll(cx),
        None => Poll::Pending,
    }
}

fn poll_sub(
    sub: &mut Option<async_nats::Subscriber>,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<async_nats::Message>> {
    match sub {
        Some(s) => s.poll_next_unpin(cx),
        None => Poll::Pending,
    }
}

/// Which consumers are attached, from their presence messages.
struct Watchers {
    after: Duration,
    timeout: Duration,
    seen: HashMap<String, Instant>,
    unwatched_since: Option<Instant>,
}

impl Watchers {
    fn on_message(&mut self, payload: &[u8], now: Instant) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        if let Some(uid) = text.strip_prefix('+') {
            self.seen.insert(uid.to_owned(), now);
            self.unwatched_since = None;
        } else if let Some(uid) = text.strip_prefix('-') {
            self.seen.remove(uid);
            if self.seen.is_empty() {
                self.unwatched_since = Some(now);
            }
        }
    }

    /// Forgets consumers not heard from in time; true when no one has watched for `after`.
    fn unwatched(&mut self, now: Instant) -> bool {
        let timeout = self.timeout;
        self.seen
            .retain(|_, last| now.duration_since(*last) < timeout);
        if self.seen.is_empty() {
            let since = *self.unwatched_since.get_or_insert(now);
            now.duration_since(since) >= self.after
        } else {
            false
        }
    }
}

fn cancelled_by(reason: &str) -> Error {
    Error::new(ErrorCode::Cancelled, format!("cancelled {reason}")).with_op("nats.publish")
}

#[allow(clippy::too_many_lines)] // one select loop: its arms read best side by side
pub(crate) async fn run<T, S, F>(
    inner: &Inner,
    ctx: &Context,
    id: &str,
    make: F,
) -> Result<Published, Error>
where
    T: Serialize,
    S: Stream<Item = Result<Event<T>, Error>>,
    F: FnOnce(Context) -> S,
{
    let config = &inner.config;
    let subject = config.items_subject(id);
    // `<stream id>:<unique token>`: retries of this publish share it, another publisher's don't.
    let new_inbox = inner.client.new_inbox();
    let token = new_inbox.rsplit('.').next().unwrap_or(&new_inbox);
    let msg_id = format!("{id}:{token}");
    let child = ctx.child();

    // Listen before looking for a stored cancel, so that no cancel falls in between.
    let mut cancels = inner
        .client
        .subscribe(config.cancel_subject(id))
        .await
        .map_err(|e| unavailable("nats.publish", "cannot listen for cancels", e))?;
    let mut watchers = match config.cancel_policy() {
        CancelPolicy::WhenUnwatched(after) => Some(Watchers {
            after,
            timeout: config.presence_interval() * 3,
            seen: HashMap::new(),
            unwatched_since: Some(Instant::now()),
        }),
        CancelPolicy::Explicit => None,
    };
    let mut presence = match watchers {
        Some(_) => Some(
            inner
                .client
                .subscribe(config.presence_subject(id))
                .await
                .map_err(|e| unavailable("nats.publish", "cannot listen for consumers", e))?,
        ),
        None => None,
    };
    let alive = config.alive_subject(id);
    let mut tick = tokio::time::interval(config.presence_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut source = Some(Box::pin(make(child.clone())));
    let mut ending = None;
    // The item to store in place of the producer's own terminal, once it is dropped.
    let mut stop: Option<(Error, Ending)> = None;
    if cancel_requested(inner, id).await? {
        stop = Some((
            cancelled_by("by a consumer before the publish started"),
            Ending::CancelledByConsumer,
        ));
    }

    let target = Target {
        inner,
        subject: &subject,
        msg_id: &msg_id,
    };
    // A batch stays well under what the server accepts in one message.
    let max_batch_bytes = match inner.client.server_info().max_payload {
        0 => config.max_batch_bytes(),
        max_payload => config.max_batch_bytes().min(max_payload / 2),
    };
    let mut window: VecDeque<InFlight> = VecDeque::new();
    // Items in `window`: what `max_in_flight` bounds.
    let mut in_flight = 0_usize;
    // An item pulled from the producer that did not fit in the last batch.
    let mut carry: Option<Staged> = None;
    let mut next_index = 0_u64;
    let mut messages = 0_u64;
    let mut first_sequence = None;
    let mut last_sequence = None;
    let mut last_progress = Instant::now();
    let mut ctx_cancelled = pin!(child.cancelled());
    // The connection count the window was last checked against.
    let mut checked_epoch = connects(inner);

    loop {
        if let Some((err, end)) = stop.take() {
            // Drop the producer first: its body stops now, whatever it was waiting for.
            child.cancel();
            source = None;
            // An item already pulled is stored, as every item pulled before it.
            if let Some(staged) = carry.take() {
                let batch = [staged];
                window.push_back(target.send_batch(next_index, &batch).await);
                let [staged] = batch;
                in_flight += 1;
                next_index += 1;
                messages += 1;
                ending = staged.ending;
            }
            if ending.is_none() {
                let enc = wire::encode_error(&err);
                window.push_back(target.send(next_index, 1, enc.kind, enc.body).await);
                in_flight += 1;
                next_index += 1;
                messages += 1;
                ending = Some(end);
            }
        }
        if ending.is_some() && window.is_empty() {
            break;
        }
        // Nothing is sent while the client is disconnected: it would queue the item for the
        // next connection, ahead of earlier items lost with the old one.
        let connected = inner.client.connection_state() == State::Connected;
        let epoch = connects(inner);
        if connected && epoch != checked_epoch {
            checked_epoch = epoch;
            let stale = window.iter().position(|f| f.epoch != epoch);
            if let Some(first) = stale {
                // Sent on a connection that is gone: each may or may not be stored. Send them
                // again, in order, on this one, each message with the items it had: JetStream
                // stores the lost ones and knows the others by their `Nats-Msg-Id`, so the
                // order on the subject stays the order of the stream.
                for entry in window.iter_mut().skip(first) {
                    *entry = target.resend(entry).await;
                }
            }
            // A cancel sent while this client was away reached no subscription: look for the
            // stored one.
            if ending.is_none() && cancel_requested(inner, id).await.unwrap_or(false) {
                stop = Some((cancelled_by("by a consumer"), Ending::CancelledByConsumer));
                continue;
            }
        }
        // One item at a time until the first is stored: it is the one that claims the id.
        let limit = if first_sequence.is_some() {
            config.max_in_flight()
        } else {
            1
        };
        let room = connected
            && ending.is_none()
            && in_flight < limit
            && (source.is_some() || carry.is_some());
        let max_items = config.max_batch_items().min(limit - in_flight.min(limit));

        tokio::select! {
            biased;
            Some(_) = cancels.next() => {
                if ending.is_none() {
                    stop = Some((cancelled_by("by a consumer"), Ending::CancelledByConsumer));
                }
            }
            err = &mut ctx_cancelled, if source.is_some() => {
                // `ctx` was cancelled (or its deadline passed) and the producer has not ended
                // on its own yet: end it here, with the context's error.
                stop = Some((err.clone(), Ending::Failed(err)));
            }
            ack = poll_fn(|cx| poll_front(&mut window, cx)) => {
                let now = Instant::now();
                match ack {
                    Ok(ack) => {
                        let front = window.pop_front().expect("an acknowledged message is in the window");
                        in_flight -= front.count;
                        if front.first == 0 {
                            first_sequence = Some(ack.sequence);
                        }
                        last_sequence = Some(ack.sequence);
                        last_progress = now;
                    }
                    Err(err) if err.kind() == PublishErrorKind::WrongLastSequence
                        && window.front().is_some_and(|f| f.first == 0) =>
                    {
                        child.cancel();
                        return Err(Error::new(
                            ErrorCode::InvalidInput,
                            format!("stream id `{id}` is already published: ids are single-use"),
                        )
                        .with_op("nats.publish"));
                    }
                    Err(err) if now.duration_since(last_progress) >= config.stall_timeout() => {
                        child.cancel();
                        return Err(unavailable(
                            "nats.publish",
                            format!(
                                "JetStream acknowledged nothing for {:?}: gave up after {} of the \
                                 stream's items; its consumers will report a timeout",
                                config.stall_timeout(),
                                window.front().map_or(0, |f| f.first),
                            ),
                            err,
                        ));
                    }
                    Err(_) => {
                        let front = window.front_mut().expect("a failed message is in the window");
                        *front = target.resend(front).await;
                    }
                }
            }
            batch = poll_fn(|cx| poll_batch(&mut source, &mut carry, max_items, max_batch_bytes, cx)), if room => {
                let first = next_index;
                next_index += batch.len() as u64;
                in_flight += batch.len();
                messages += 1;
                window.push_back(target.send_batch(first, &batch).await);
                if let Some(end) = batch.into_iter().last().and_then(|s| s.ending) {
                    ending = Some(end);
                }
            }
            () = tokio::time::sleep(RECONNECT_POLL), if !connected => {}
            Some(message) = poll_fn(|cx| poll_sub(&mut presence, cx)) => {
                if let Some(w) = watchers.as_mut() {
                    w.on_message(&message.payload, Instant::now());
                }
            }
            _ = tick.tick(), if ending.is_none() => {
                // Tells consumers the producer is alive, however long it takes between items.
                let _ = inner.client.publish(alive.clone(), bytes::Bytes::new()).await;
                if watchers.as_mut().is_some_and(|w| w.unwatched(Instant::now())) {
                    stop = Some((cancelled_by("because no consumer was attached"), Ending::Unwatched));
                }
            }
        }
    }
    Ok(Published {
        items: next_index,
        messages,
        first_sequence,
        last_sequence,
        ending: ending.unwrap_or(Ending::Ended),
    })
}
