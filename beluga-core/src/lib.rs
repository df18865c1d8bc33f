//! Event streams for LLM and agent pipelines.
//!
//! beluga brings the core streaming primitives of the Go framework Beluga AI to Rust:
//!
//! * [`Event<T>`]: the one unit that flows through every stream, with Beluga's six kinds
//!   (`data`, `tool_call`, `tool_result`, `handoff`, `done`, `error`) and metadata.
//! * [`Error`]: structured errors (`op`, `code`, `message`, cause) whose retryability is decided
//!   by the root cause. The [`error`] module explains terminal errors versus error events.
//! * [`Context`]: cancellation, deadline and request-scoped values, passed per call, with a
//!   cancellation check that is one atomic load.
//! * Streams of `Result<Event<T>, Error>` ([`EventResult`]) and their combinators, as methods
//!   of [`EventStreamExt`] and as free functions in [`stream`].
//!
//! # Example
//!
//! A simulated model streams tokens; the consumer keeps the words, upper-cases them, and gives
//! up when the deadline passes.
//!
//! ```
//! use std::time::Duration;
//! use beluga_core::{Context, ErrorCode, Event, EventKind, EventStreamExt};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let ctx = Context::new().with_timeout(Duration::from_millis(250));
//!
//! // One token every 100 ms, forever.
//! let tokens = futures_util::stream::unfold(0_usize, |i| async move {
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//!     let token = ["Hello", ",", " world"][i % 3];
//!     Some((Ok(Event::data(token.to_owned())), i + 1))
//! });
//!
//! let mut stream = std::pin::pin!(
//!     tokens
//!         .filter_events(|ev| ev.payload().is_some_and(|t| t.trim() != ","))
//!         .map_payload(|t| t.to_uppercase())
//!         .cancellable(&ctx)
//! );
//!
//! let mut text = String::new();
//! while let Some(item) = stream.next().await {
//!     match item {
//!         Ok(ev) => match ev.into_kind() {
//!             EventKind::Data(token) => text.push_str(&token),
//!             _ => {}
//!         },
//!         Err(err) => {
//!             assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(text, "HELLO");
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

#[doc(hidden)]
pub mod __private;
pub mod context;
pub mod error;
pub mod event;
pub mod stream;
mod stream_ext;

pub use crate::context::{CancelReason, Context};
pub use crate::error::{Error, ErrorCode, ResultExt};
pub use crate::event::{Event, EventKind, EventType, IntoEvent, Meta, MetaValue};
pub use crate::stream::{EventResult, EventStream};
pub use crate::stream_ext::EventStreamExt;
pub use beluga_macros::stream_producer;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
