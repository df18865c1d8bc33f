//! Event streams over HTTP: serve any beluga event stream as server-sent events with axum, and
//! read a beluga SSE endpoint back into an event stream.
//!
//! * [`serve`] turns an event stream into an axum response: keep-alive comments, an `id` on
//!   every event, and an [`Encoding`] ([`BelugaJson`], beluga's own JSON shape). When the
//!   client goes away the producer is dropped and its [`Context`](beluga_core::Context)
//!   cancelled at once. A stream of `(id, item)` pairs is sent with the source's ids
//!   ([`server::ServedItem`]): a source that can go on after any id it gave (beluga-nats's
//!   relay) makes a resumable server that keeps no state.
//! * [`server::Replay`] serves streams that a client can resume with `Last-Event-ID` after a
//!   lost connection, from a bounded buffer per stream.
//! * [`client::read`] reads a beluga SSE endpoint back into a stream of
//!   `Result<Event<T>, Error>` with the semantics of a local stream: exactly one terminal item,
//!   error codes preserved, and resuming after a lost connection when told where, with the
//!   last id it received sent back as it is.
//!
//! # Features
//!
//! * `server` (default): [`serve`] and [`server`], with axum.
//! * `client` (default): [`client`], with reqwest (rustls) and eventsource-stream.
//!
//! The encodings ([`encoding`], [`Frame`], [`EventId`]) need neither. `beluga-core` alone
//! compiles no HTTP stack; this crate is where it comes in.
//!
//! # Example
//!
//! A server that streams an answer, and a client that reads it back.
//!
//! ```
//! use axum::{Router, routing::get};
//! use beluga_core::{Context, Event, EventResult, EventStreamExt, stream_producer};
//! use beluga_sse::BelugaJson;
//! use futures_util::Stream;
//!
//! #[stream_producer]
//! fn answer(ctx: Context) -> impl Stream<Item = EventResult<String>> + Send + 'static {
//!     for word in ["Hello", ",", " world"] {
//!         emit!(word.to_owned());
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route(
//!     "/answer",
//!     get(async || beluga_sse::serve(&Context::new(), BelugaJson, answer)),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let url = format!("http://{}/answer", listener.local_addr().unwrap());
//! tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
//!
//! let http = reqwest::Client::new();
//! let events = beluga_sse::client::read::<String>(&Context::new(), http.get(&url));
//! let collected = events.collect_events().await;
//! assert_eq!(collected.data().cloned().collect::<String>(), "Hello, world");
//! assert_eq!(collected.events.last(), Some(&Event::done()));
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

#[cfg(feature = "client")]
pub mod client;
pub mod encoding;
mod frame;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod source;

pub use crate::encoding::{BelugaJson, Encoding};
pub use crate::frame::{EventId, Frame};
#[cfg(feature = "server")]
pub use crate::server::{SseResponse, serve};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "server", feature = "client", feature = "llm"))]
pub struct ReadmeDoctests;
