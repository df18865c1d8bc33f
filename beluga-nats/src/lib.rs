//! beluga event streams across machines, on NATS JetStream.
//!
//! When one machine is not enough (the agent runs on a worker pool, the SSE front end on other
//! machines, several consumers want the same answer), a [`Relay`] carries an event stream from
//! the machine that produces it to every machine that reads it, with the guarantees of a local
//! stream:
//!
//! * [`Relay::publish`] stores a producer's items in JetStream under a subject per stream,
//!   pulling the producer no faster than JetStream acknowledges (at most
//!   [`max_in_flight`](RelayConfig::with_max_in_flight) items unacknowledged), so a slow or
//!   stalled broker does not grow the publisher's memory. Items the producer has ready
//!   together travel in one message ([`max_batch_items`](RelayConfig::with_max_batch_items)),
//!   several times faster for small events; an item that comes alone is sent alone at once.
//! * [`Relay::subscribe`] reads it back, in another process or on another machine, as an
//!   ordinary event stream ([`RemoteStream`]): every item once and in order, exactly one
//!   terminal item with its error code, and an error (never a silent end) when the producer
//!   died (its publisher's heartbeats stopped), an item expired, or the broker is gone.
//! * [`RemoteStream::position`] names each item read (the JetStream sequence of its message and
//!   its index there; after the stream's id, it is the SSE event id: [`ItemId`]), and
//!   [`Relay::subscribe`] resumes
//!   after it: a consumer that restarts goes on with no gap and no duplicate, also from the
//!   middle of a batch.
//! * Any number of consumers read one stream, each at its own position; a slow one holds back
//!   only itself, within JetStream's limits.
//! * [`Relay::cancel`] (or [`RemoteStream::cancel`]) cancels the producer's [`Context`] on the
//!   machine that runs it and drops its body; with [`CancelPolicy::WhenUnwatched`], so does
//!   every consumer going away.
//! * Items expire by age, count or size ([`RelayConfig`]), so nothing grows forever.
//!
//! JetStream does the storing, ordering, replay and fan-out; this crate adds the event
//! encoding (beluga-core's serde form of each event or terminal error, one per line of a
//! message), the batching, the checks, and the control messages.
//!
//! # Example
//!
//! ```no_run
//! use beluga_core::{Context, Error, Event, stream_producer};
//! use beluga_nats::{Position, Relay, RelayConfig};
//! use futures_util::{Stream, StreamExt};
//!
//! #[stream_producer]
//! fn answer(ctx: Context) -> impl Stream<Item = Result<Event<String>, Error>> {
//!     for token in ["Hello", ", ", "world"] {
//!         emit!(token.to_owned());
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Error> {
//! let client = async_nats::connect("127.0.0.1:4222").await.expect("a NATS server");
//! let relay = Relay::new(client, RelayConfig::new()).await?;
//!
//! // On the worker: publish under the request id.
//! let worker = relay.clone();
//! tokio::spawn(async move { worker.publish(&Context::new(), "req-1", answer).await });
//!
//! // Anywhere else: read it, and resume after the last position seen if the reader restarts.
//! let mut events = relay.subscribe::<String>("req-1", Position::Start).await?;
//! while let Some(item) = events.next().await {
//!     println!("{} {:?}", events.position(), item?); // `7`, `8`, `8.1`, …
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # A stateless SSE front end
//!
//! An SSE server in front of JetStream keeps no state: [`RemoteStream::with_ids`] pairs each
//! item with its [`ItemId`], `<id>:<position>` (such as `req-1:812.3`), which beluga-sse's
//! `serve` sends as the event's id, and a reconnecting client's `Last-Event-ID` turns back
//! into the position to subscribe from ([`Position::from_last_event_id`]; without the header,
//! the start). Any instance can serve any reconnect. A malformed id, or one of another stream,
//! is an `invalid_input` error, which beluga-sse's `HttpError` answers with 400.
//!
//! ```no_run
//! use axum::extract::{Path, State};
//! use axum::response::IntoResponse;
//! use axum::{Router, routing::get};
//! use beluga_core::Context;
//! use beluga_nats::{Position, Relay};
//! use beluga_sse::BelugaJson;
//! use beluga_sse::server::{HttpError, LastEventId};
//!
//! // `GET /events/{id}`: a new reader, or one reconnecting with its `Last-Event-ID`.
//! async fn events(
//!     State(relay): State<Relay>,
//!     Path(id): Path<String>,
//!     LastEventId(last): LastEventId,
//! ) -> Result<impl IntoResponse, HttpError> {
//!     let from = Position::from_last_event_id(&id, last.as_deref())?;
//!     let answer = relay.subscribe::<String>(&id, from).await?;
//!     Ok(beluga_sse::serve(&Context::new(), BelugaJson, |_| answer.with_ids()))
//! }
//!
//! # fn app(relay: Relay) -> Router {
//! Router::new().route("/events/{id}", get(events)).with_state(relay)
//! # }
//! ```
//!
//! beluga-sse's client (`Reader::resume`) sends the last id it received back as it is, so it
//! resumes through whichever instance its resume request reaches.
//!
//! # On the wire
//!
//! Items of stream `id` go to subject `<prefix>.ev.<id>`. A message holds one item, or several
//! that the producer had ready together. Each item is what beluga-sse's JSON encoding sends as
//! the `data:` of one frame: `beluga-core`'s serde form of the event, of the terminal error, or
//! `{}` for a stream that ended without a terminal item. Headers:
//!
//! | header | value |
//! |---|---|
//! | `Beluga-Index` | the stream index of the message's first item, from 0 |
//! | `Beluga-Count` | how many items the message holds; absent for one |
//! | `Beluga-Item` | the kind of the message's last item, named as that encoding names the frame: `event` (an unnamed frame), `error` or `end`; the items before it are events |
//! | `Nats-Msg-Id` | `<id>:<publish id>:<index of the first item>`: JetStream de-duplicates a retried publish |
//!
//! The body of a message of one item is that item's JSON; of several, their JSON joined by
//! `\n` (JSON text never holds a raw line break), the last one possibly the terminal item:
//!
//! ```text
//! Beluga-Index: 1
//! Beluga-Count: 3
//! Beluga-Item: event
//! Nats-Msg-Id: req-1:Xj3…:1
//!
//! {"type":"data","payload":"lo"}
//! {"type":"data","payload":", wor"}
//! {"type":"done"}
//! ```
//!
//! With [`max_batch_items`](RelayConfig::with_max_batch_items) 1 every message holds one item
//! and has no `Beluga-Count`.
//!
//! Cancels go to `<prefix>.cancel.<id>` (stored, so a cancel sent before the publisher starts
//! still counts), consumers' presence to `<prefix>.presence.<id>` and the publisher's heartbeat
//! to `<prefix>.alive.<id>` (neither stored).

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod ids;
mod publish;
mod relay;
mod subscribe;
mod wire;

pub use crate::config::{CancelPolicy, RelayConfig, Storage};
pub use crate::ids::{ItemId, WithIds};
pub use crate::publish::{Ending, Published};
pub use crate::relay::Relay;
pub use crate::subscribe::{Position, RemoteStream};

#[cfg(doc)]
use beluga_core::Context;
